#include "cli/batch_plan.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>
#include <system_error>

#include "common/file_util.h"

namespace tok1d::cli {
namespace fs = std::filesystem;
namespace {

// A file found among the inputs, before its output is named.
struct FoundFile {
  std::string input;
  fs::path base;  // the output is named by the input's path below this; empty: by its file name
  std::string problem;
};

bool IsHidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name.front() == '.';
}

bool HasExtension(const fs::path& path, const std::vector<std::string>& extensions) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(extensions.begin(), extensions.end(), extension) != extensions.end();
}

// The folder without a trailing '/', which would otherwise count as a path element.
fs::path AbsoluteFolder(const fs::path& folder) {
  fs::path absolute = fs::absolute(folder).lexically_normal();
  return absolute.has_filename() ? absolute : absolute.parent_path();
}

StatusOr<std::vector<std::string>> ReadListFile(const std::string& path) {
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  std::vector<std::string> lines;
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

class InputScanner {
 public:
  explicit InputScanner(const BatchPlanOptions& options) : options_(options) {
    std::error_code error;
    if (fs::is_directory(options.output_dir, error)) output_dir_ = options.output_dir;
  }

  void AddInput(const std::string& input) {
    std::error_code error;
    const fs::file_status status = fs::status(input, error);
    if (error || !fs::exists(status)) {
      found_.push_back(
          {input, Base({}), "cannot read it: " + (error ? error.message() : "no such file")});
    } else if (fs::is_directory(status)) {
      ScanFolder(input, Base(input));
    } else {
      found_.push_back({input, Base({}), {}});
    }
  }

  std::vector<FoundFile> TakeFound() { return std::move(found_); }
  std::vector<std::string> TakeNotes() { return std::move(notes_); }

 private:
  fs::path Base(const fs::path& folder) const {
    return options_.base.empty() ? folder : fs::path(options_.base);
  }

  // Adds the convertible files of `folder`, and of its subfolders with -r. Hidden entries (such
  // as temporary files of a killed run) and the output folder are left out; links to folders
  // are not followed, so a link cannot make a loop.
  void ScanFolder(const fs::path& folder, const fs::path& base) {
    std::error_code error;
    fs::directory_iterator entries(folder, error);
    if (error) {
      found_.push_back({folder.string(), base, "cannot read the folder: " + error.message()});
      return;
    }
    size_t subfolders_left_out = 0;
    for (; !error && entries != fs::directory_iterator(); entries.increment(error)) {
      const fs::directory_entry& entry = *entries;
      std::error_code unreadable;  // an entry that cannot be examined is neither kind
      if (IsHidden(entry.path())) continue;
      if (entry.is_directory(unreadable)) {
        if (entry.is_symlink(unreadable) || IsOutputFolder(entry.path())) continue;
        if (options_.recursive) {
          ScanFolder(entry.path(), base);
        } else {
          ++subfolders_left_out;
        }
      } else if (entry.is_regular_file(unreadable) &&
                 HasExtension(entry.path(), options_.input_extensions)) {
        found_.push_back({entry.path().string(), base, {}});
      }
    }
    if (error) {
      found_.push_back({folder.string(), base, "cannot read the folder: " + error.message()});
    }
    if (subfolders_left_out > 0) {
      notes_.push_back(folder.string() + ": " + std::to_string(subfolders_left_out) +
                       (subfolders_left_out == 1 ? " subfolder" : " subfolders") +
                       " not searched (-r searches them)");
    }
  }

  bool IsOutputFolder(const fs::path& folder) const {
    std::error_code error;
    return !output_dir_.empty() && fs::equivalent(folder, output_dir_, error);
  }

  const BatchPlanOptions& options_;
  fs::path output_dir_;  // empty until it exists
  std::vector<FoundFile> found_;
  std::vector<std::string> notes_;
};

// The output path mirrors the input's path below its base; a problem if it is not below it.
BatchJob MakeJob(const FoundFile& found, const BatchPlanOptions& options) {
  BatchJob job;
  job.input = found.input;
  job.problem = found.problem;
  fs::path relative = fs::path(found.input).filename();
  if (!found.base.empty()) {
    relative =
        fs::absolute(found.input).lexically_normal().lexically_relative(AbsoluteFolder(found.base));
    if (relative.empty() || *relative.begin() == "..") {
      if (job.problem.empty()) job.problem = "it is not inside --base " + found.base.string();
      relative = fs::path(found.input).filename();
    }
  }
  relative.replace_extension(options.output_extension);
  job.output = (fs::path(options.output_dir) / relative).string();
  return job;
}

}  // namespace

StatusOr<Shard> ParseShard(std::string_view text) {
  const auto usage = [text] {
    return InvalidArgumentError("--shard wants I/N with 0 <= I < N (e.g. 0/4), not '" +
                                std::string(text) + "'");
  };
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return usage();
  Shard shard;
  const std::string_view index = text.substr(0, slash), count = text.substr(slash + 1);
  const auto parse = [](std::string_view digits, uint32_t* value) {
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), *value);
    return !digits.empty() && error == std::errc() && end == digits.data() + digits.size();
  };
  if (!parse(index, &shard.index) || !parse(count, &shard.count) || shard.count == 0 ||
      shard.index >= shard.count) {
    return usage();
  }
  return shard;
}

StatusOr<BatchPlan> PlanBatch(const BatchPlanOptions& options) {
  std::vector<std::string> inputs = options.inputs;
  if (!options.list_file.empty()) {
    TOK1D_ASSIGN_OR_RETURN(std::vector<std::string> listed, ReadListFile(options.list_file));
    inputs.insert(inputs.end(), listed.begin(), listed.end());
  }
  InputScanner scanner(options);
  for (const std::string& input : inputs) scanner.AddInput(input);
  std::vector<FoundFile> found = scanner.TakeFound();

  // Sorted bytewise, so every machine that is given the same inputs makes the same list.
  std::sort(found.begin(), found.end(),
            [](const FoundFile& a, const FoundFile& b) { return a.input < b.input; });
  found.erase(
      std::unique(found.begin(), found.end(),
                  [](const FoundFile& a, const FoundFile& b) { return a.input == b.input; }),
      found.end());

  BatchPlan plan;
  plan.notes = scanner.TakeNotes();
  plan.all_shards_jobs = found.size();
  // Collisions are settled on the whole list, before sharding, so that every shard agrees on
  // which input owns an output.
  std::map<std::string, std::string> owner_of_output;
  for (size_t i = 0; i < found.size(); ++i) {
    BatchJob job = MakeJob(found[i], options);
    const auto [owner, inserted] = owner_of_output.emplace(job.output, job.input);
    if (!inserted && job.problem.empty()) {
      job.problem = "its output " + job.output + " is also the output of " + owner->second;
    }
    if (i % options.shard.count != options.shard.index) continue;
    std::error_code error;
    if (job.problem.empty()) job.input_bytes = fs::file_size(job.input, error);
    if (error) job.input_bytes = 0;
    job.output_exists = fs::exists(fs::symlink_status(job.output, error));
    plan.jobs.push_back(std::move(job));
  }
  return plan;
}

size_t RemoveStaleTemporaryFiles(const std::vector<BatchJob>& jobs, fs::file_time_type started) {
  std::map<fs::path, std::set<std::string>> outputs_by_folder;
  for (const BatchJob& job : jobs) {
    if (!job.problem.empty()) continue;
    const fs::path output(job.output);
    outputs_by_folder[output.parent_path()].insert(output.filename().string());
  }
  size_t removed = 0;
  for (const auto& [folder, names] : outputs_by_folder) {
    std::error_code error;
    fs::directory_iterator entries(folder.empty() ? fs::path(".") : folder, error);
    for (; !error && entries != fs::directory_iterator(); entries.increment(error)) {
      const fs::directory_entry& entry = *entries;
      const std::string output = OutputNameOfTemporaryFile(entry.path().filename().string());
      if (output.empty() || names.count(output) == 0) continue;
      std::error_code ignored;
      if (entry.is_regular_file(ignored) && entry.last_write_time(ignored) < started &&
          fs::remove(entry.path(), ignored)) {
        ++removed;
      }
    }
  }
  return removed;
}

}  // namespace tok1d::cli
