// tok1d batch encode|decode: many files in one run. The model is loaded once; every output
// is written to a temporary file and renamed; existing outputs are skipped, so a re-run resumes;
// a failing file is reported and the others go on; --shard splits the work between machines.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "cli/batch_plan.h"
#include "cli/batch_report.h"
#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"

namespace tok1d::cli {
namespace {

namespace fs = std::filesystem;

enum class Direction { kEncode, kDecode };

struct BatchOptions {
  std::vector<std::string> inputs;
  std::string list_file;
  bool recursive = false;
  std::string base;
  std::string output_dir;
  bool force = false;
  unsigned jobs = 0;  // 0: all cores
  std::string shard;  // "I/N"; empty: everything
  bool json = false;
  size_t group_tiles = 0;  // decode; 0: a GPU's batch size (batch_tiles()), 1 on the CPU
  ModelOptions model;
  EncodeSettings encode;
  DecodeSettings decode;
};

// What folders contribute to each direction (any file named directly is tried).
const std::vector<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".webp",
                                                   ".ppm", ".pgm", ".pnm"};
const std::vector<std::string> kT1dExtensions = {".t1d"};

// Set by SIGINT/SIGTERM: the workers finish the files they hold and start no more.
std::atomic<bool> stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void RequestStop(int) { stop_requested = true; }

// Installs RequestStop for SIGINT and SIGTERM while alive. SA_RESETHAND: a second signal
// stops the process at once (the next run cleans up its temporary files).
class StopOnSignal {
 public:
  StopOnSignal() {
    struct sigaction action {};
    action.sa_handler = RequestStop;
    action.sa_flags = static_cast<int>(SA_RESETHAND);  // 0x80000000 in an int field
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_interrupt_);
    sigaction(SIGTERM, &action, &previous_terminate_);
  }
  ~StopOnSignal() {
    sigaction(SIGINT, &previous_interrupt_, nullptr);
    sigaction(SIGTERM, &previous_terminate_, nullptr);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

 private:
  struct sigaction previous_interrupt_ {};
  struct sigaction previous_terminate_ {};
};

// One converted file, before it is written.
struct Converted {
  std::vector<uint8_t> bytes;
  std::string summary;  // the line the single-file command prints
  nlohmann::json details;
  std::vector<std::string> warnings;
};

// "tokens": per tile (an integer), or their mean when tiles differ; "tokens_min", "tokens_max".
void AddTokenCounts(const TokenCounts& counts, nlohmann::json* details) {
  if (counts.uniform()) {
    (*details)["tokens"] = counts.max;
  } else {
    (*details)["tokens"] = counts.mean;
  }
  (*details)["tokens_min"] = counts.min;
  (*details)["tokens_max"] = counts.max;
}

StatusOr<Converted> EncodeJob(Session& session, const BatchJob& job,
                              const EncodeSettings& settings) {
  TOK1D_ASSIGN_OR_RETURN(InputImage input,
                         ReadInputImage(job.input, settings.metadata, !settings.keep_orientation));
  TOK1D_ASSIGN_OR_RETURN(EncodedImage encoded, EncodeInputImage(session, input, settings));
  Converted converted;
  converted.summary = DescribeEncode(job.input, job.output, encoded);
  converted.details = {{"width", encoded.width},
                       {"height", encoded.height},
                       {"tiles", encoded.tiles},
                       {"bpp", encoded.bpp()}};
  AddTokenCounts(encoded.tokens, &converted.details);
  if (encoded.psnr) converted.details["psnr"] = *encoded.psnr;
  converted.warnings = input.warnings();
  converted.bytes = std::move(encoded.t1d);
  return converted;
}

Converted FromDecoded(const BatchJob& job, DecodedImage decoded) {
  Converted converted;
  converted.summary = DescribeDecode(job.input, job.output, decoded);
  converted.details = {{"width", decoded.width}, {"height", decoded.height}};
  AddTokenCounts(decoded.tokens, &converted.details);
  converted.warnings = std::move(decoded.warnings);
  converted.bytes = std::move(decoded.encoded);
  return converted;
}

// A decode job read and checked, waiting for its group's DecodeMany; or settled already (not
// to be converted, or failed before decoding), with its report.
struct PendingDecode {
  const BatchJob* job = nullptr;
  std::optional<FileReport> report;
  std::vector<uint8_t> t1d;  // the file, read and its structure checked
  size_t tiles = 0;          // of `t1d`
  double seconds = 0;        // spent on it so far
};

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool OutputExists(const BatchJob& job) {
  std::error_code error;
  return fs::exists(fs::symlink_status(job.output, error));
}

// The batch's own outcome, for main's error line and exit status 1; the files' errors have
// been reported one by one.
Status Incomplete(std::string message) { return {StatusCode::kIoError, std::move(message)}; }

// Errors from the library mostly name the file already; the others get its name in front.
std::string NamingTheFile(const std::string& input, const std::string& message) {
  return message.find(input) != std::string::npos ? message : input + ": " + message;
}

class BatchRun {
 public:
  // group_tiles (decode): how many tiles a group of files gathers before it is decoded.
  BatchRun(Direction direction, const BatchOptions& options, size_t group_tiles,
           BatchReporter* reporter)
      : direction_(direction), options_(options), group_tiles_(group_tiles), reporter_(reporter) {}

  // Converts jobs[next…] until none are left or a stop is requested. `codec` is null when no
  // job needs it (all are skipped or failed already).
  void Work(Session* codec, const std::vector<BatchJob>& jobs) {
    if (direction_ == Direction::kDecode) return DecodeInGroups(codec, jobs);
    for (;;) {
      if (stop_requested) return;
      const size_t index = next_job_.fetch_add(1);
      if (index >= jobs.size()) return;
      started_.fetch_add(1);
      reporter_->Add(EncodeOne(codec, jobs[index]));
    }
  }

  size_t started() const { return started_; }

 private:
  // The report of a job that is not to be converted: its planning failed, or its output exists.
  std::optional<FileReport> NotConverted(const BatchJob& job) const {
    FileReport report;
    report.job = &job;
    if (!job.problem.empty()) {
      report.line = job.input + ": " + job.problem;
      return report;
    }
    if (!options_.force && job.output_exists) {
      std::error_code error;
      report.outcome = FileOutcome::kSkipped;
      report.line = job.input + " -> " + job.output + ": skipped, the output exists";
      report.output_bytes = fs::file_size(job.output, error);
      return report;
    }
    return std::nullopt;
  }

  static Status PrepareOutput(const BatchJob& job) {
    TOK1D_RETURN_IF_ERROR(CheckDistinctPaths(job.input, job.output));
    const fs::path folder = fs::path(job.output).parent_path();
    std::error_code mkdir_error;
    if (!folder.empty() && !fs::create_directories(folder, mkdir_error) && mkdir_error) {
      return IoError("cannot create the folder '" + folder.string() +
                     "': " + mkdir_error.message());
    }
    return OkStatus();
  }

  // Writes a converted file and makes its report; `seconds` were spent on it before `start`.
  FileReport Finish(const BatchJob& job, StatusOr<Converted> converted, Clock::time_point start,
                    double seconds) const {
    FileReport report;
    report.job = &job;
    Status status = converted.status();
    if (converted.ok()) {
      status = WriteFileAtomically(job.output, converted->bytes, options_.force);
      if (status.ok()) {
        report.line = std::move(converted->summary);
        report.details = std::move(converted->details);
        report.warnings = std::move(converted->warnings);
        report.output_bytes = converted->bytes.size();
      }
    }
    report.seconds = seconds + SecondsSince(start);
    std::error_code error;
    if (status.ok()) {
      report.outcome = FileOutcome::kDone;
    } else if (!options_.force && OutputExists(job)) {
      // Another process wrote it meanwhile (the rename never replaces without -f).
      report.outcome = FileOutcome::kSkipped;
      report.line = job.input + " -> " + job.output + ": skipped, the output appeared";
      report.output_bytes = fs::file_size(job.output, error);
    } else {
      report.line = NamingTheFile(job.input, status.message());
    }
    return report;
  }

  FileReport EncodeOne(Session* codec, const BatchJob& job) const {
    const auto start = Clock::now();
    if (std::optional<FileReport> report = NotConverted(job)) return std::move(*report);
    StatusOr<Converted> converted = [&]() -> StatusOr<Converted> {
      TOK1D_RETURN_IF_ERROR(PrepareOutput(job));
      return EncodeJob(*codec, job, options_.encode);
    }();
    return Finish(job, std::move(converted), start, 0);
  }

  // Decoding takes files in groups: each worker claims files (reading and checking each) until
  // they hold group_tiles_ tiles, decodes their tiles together (Session::DecodeMany: tiles of
  // several images share the tokenizer's batches), then writes and reports them in the order
  // claimed. A file that would take the group past group_tiles_ waits for the next group, unless
  // the group has no tiles yet; so group_tiles_ 1 decodes one file at a time.
  void DecodeInGroups(Session* codec, const std::vector<BatchJob>& jobs) {
    std::vector<PendingDecode> group;
    std::optional<PendingDecode> held;
    for (;;) {
      group.clear();
      size_t tiles = 0;
      if (held) {
        tiles = held->tiles;
        group.push_back(std::move(*held));
        held.reset();
      }
      while (tiles < group_tiles_ && !stop_requested) {
        const size_t index = next_job_.fetch_add(1);
        if (index >= jobs.size()) break;
        started_.fetch_add(1);
        PendingDecode pending = ReadForDecoding(jobs[index]);
        if (pending.tiles > 0 && tiles > 0 && tiles + pending.tiles > group_tiles_) {
          held = std::move(pending);
          break;
        }
        tiles += pending.tiles;
        group.push_back(std::move(pending));
      }
      if (group.empty()) return;
      DecodeGroup(codec, group);
    }
  }

  PendingDecode ReadForDecoding(const BatchJob& job) const {
    const auto start = Clock::now();
    PendingDecode pending;
    pending.job = &job;
    pending.report = NotConverted(job);
    if (pending.report) return pending;
    Status read = [&]() -> Status {
      TOK1D_RETURN_IF_ERROR(PrepareOutput(job));
      TOK1D_ASSIGN_OR_RETURN(pending.t1d, ReadFileBytes(job.input));
      TOK1D_ASSIGN_OR_RETURN(const T1dInfo info,
                             ReadDecodableHeader(pending.t1d, job.input, options_.decode.strict));
      pending.tiles = info.tiles;
      return OkStatus();
    }();
    if (!read.ok()) {
      pending.report = Finish(job, read, start, 0);
      return pending;
    }
    pending.seconds = SecondsSince(start);
    return pending;
  }

  // Decodes the group's files together, then writes and reports every job of the group. Each
  // file's seconds include its share of the decoding, by tiles.
  void DecodeGroup(Session* codec, std::vector<PendingDecode>& group) const {
    std::vector<std::span<const uint8_t>> files;
    size_t tiles = 0;
    for (const PendingDecode& pending : group) {
      if (pending.report) continue;
      files.push_back(pending.t1d);
      tiles += pending.tiles;
    }
    const auto decode_start = Clock::now();
    std::vector<StatusOr<DecodeResult>> images;
    DecodeOptions decode_options;
    decode_options.max_tokens = options_.decode.tokens;
    decode_options.allow_truncated = !options_.decode.strict;
    if (!files.empty()) images = codec->DecodeMany(files, decode_options);
    const double decode_seconds = SecondsSince(decode_start);
    size_t next = 0;
    for (PendingDecode& pending : group) {
      if (pending.report) {
        reporter_->Add(*pending.report);
        continue;
      }
      const auto start = Clock::now();
      StatusOr<DecodedImage> decoded =
          FinishDecode(pending.job->input, std::move(images[next++]), ImageFormat::kPng);
      pending.t1d = {};
      StatusOr<Converted> converted =
          decoded.ok() ? StatusOr<Converted>(FromDecoded(*pending.job, std::move(decoded).value()))
                       : StatusOr<Converted>(decoded.status());
      const double share = tiles == 0 ? 0
                                      : decode_seconds * static_cast<double>(pending.tiles) /
                                            static_cast<double>(tiles);
      reporter_->Add(Finish(*pending.job, std::move(converted), start, pending.seconds + share));
    }
  }

  const Direction direction_;
  const BatchOptions& options_;
  const size_t group_tiles_;
  BatchReporter* reporter_;
  std::atomic<size_t> next_job_{0};
  std::atomic<size_t> started_{0};
};

// The jobs that will run a conversion (not failed already, not skipped): they need the model.
size_t PendingJobs(const std::vector<BatchJob>& jobs, bool force) {
  return static_cast<size_t>(std::count_if(jobs.begin(), jobs.end(), [force](const BatchJob& job) {
    return job.problem.empty() && (force || !job.output_exists);
  }));
}

// One codec per worker over copies of one loaded model (the copies share its weights). With
// several workers each runs the tokenizer on one thread: the cores are already shared out
// between workers.
StatusOr<std::vector<std::unique_ptr<Session>>> OpenWorkerCodecs(const BatchOptions& options,
                                                                 Direction direction,
                                                                 size_t workers,
                                                                 const Console& console) {
  TOK1D_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model, LoadChosenModel(options.model));
  ModelOptions model_options = options.model;
  model_options.threads = workers > 1 ? 1 : 0;
  Console quiet = console;  // the device note and -v line once, not once per worker
  quiet.quiet = true;
  std::vector<std::unique_ptr<Session>> codecs;
  for (size_t i = 0; i < workers; ++i) {
    TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Session> codec,
                           OpenSession(model, model_options, i == 0 ? console : quiet));
    if (i == 0) {
      TOK1D_RETURN_IF_ERROR(direction == Direction::kEncode
                                ? CheckEncodeSettings(options.encode, *codec)
                                : CheckDecodeSettings(options.decode, *codec));
    }
    codecs.push_back(std::move(codec));
  }
  return codecs;
}

Status RunBatch(Direction direction, const BatchOptions& options, const Console& console) {
  const std::string command = direction == Direction::kEncode ? "batch encode" : "batch decode";
  BatchPlanOptions plan_options;
  plan_options.inputs = options.inputs;
  plan_options.list_file = options.list_file;
  plan_options.recursive = options.recursive;
  plan_options.base = options.base;
  plan_options.output_dir = options.output_dir;
  plan_options.input_extensions =
      direction == Direction::kEncode ? kImageExtensions : kT1dExtensions;
  plan_options.output_extension = direction == Direction::kEncode ? ".t1d" : ".png";
  if (!options.shard.empty()) {
    TOK1D_ASSIGN_OR_RETURN(plan_options.shard, ParseShard(options.shard));
  }
  const auto run_started = fs::file_time_type::clock::now();
  TOK1D_ASSIGN_OR_RETURN(BatchPlan plan, PlanBatch(plan_options));
  for (const std::string& note : plan.notes) console.Warning(note);
  if (plan.all_shards_jobs == 0) console.Warning("no files to convert");
  if (!options.shard.empty()) {
    console.Verbose("shard " + options.shard + ": " + std::to_string(plan.jobs.size()) + " of " +
                    std::to_string(plan.all_shards_jobs) + " files");
  }
  const size_t stale = RemoveStaleTemporaryFiles(plan.jobs, run_started);
  if (stale > 0) {
    console.Verbose("removed " + std::to_string(stale) + " temporary files of an earlier run");
  }

  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t workers = std::min<size_t>(options.jobs == 0 ? cores : options.jobs,
                                          PendingJobs(plan.jobs, options.force));
  std::vector<std::unique_ptr<Session>> codecs;
  if (workers > 0) {
    TOK1D_ASSIGN_OR_RETURN(codecs, OpenWorkerCodecs(options, direction, workers, console));
  }

  uint64_t input_bytes = 0;
  for (const BatchJob& job : plan.jobs) input_bytes += job.input_bytes;
  BatchReporter reporter(console, options.json, plan.jobs.size(), input_bytes);
  // Decode groups: --group-tiles; by default one tokenizer batch's worth of tiles on a GPU,
  // one file at a time on the CPU, where grouping measured no faster (docs/batch.md) and
  // would let BLAS sum some products in another order than `tok1d decode` does.
  size_t group_tiles = options.group_tiles;
  if (group_tiles == 0) {
    const bool gpu = !codecs.empty() && codecs[0]->device() != "cpu";
    group_tiles = gpu ? codecs[0]->batch_tiles() : 1;
  }
  if (direction == Direction::kDecode && !codecs.empty()) {
    const std::string batches =
        ", in batches of up to " + std::to_string(codecs[0]->batch_tiles()) + " tiles";
    console.Verbose(group_tiles == 1 ? "decoding one file at a time" + batches
                                     : "decoding files in groups of up to " +
                                           std::to_string(group_tiles) + " tiles" + batches);
  }
  BatchRun run(direction, options, group_tiles, &reporter);
  {
    StopOnSignal stop_on_signal;
    std::vector<std::thread> threads;
    for (size_t i = 1; i < codecs.size(); ++i) {
      threads.emplace_back([&run, &plan, codec = codecs[i].get()] { run.Work(codec, plan.jobs); });
    }
    // The main thread works too; with no codec (nothing pending) it only reports skips.
    run.Work(codecs.empty() ? nullptr : codecs[0].get(), plan.jobs);
    for (std::thread& thread : threads) thread.join();
  }

  const size_t not_started = plan.jobs.size() - run.started();
  reporter.Summarize(command, not_started);
  const BatchTotals totals = reporter.totals();
  if (not_started > 0) {
    return Incomplete("interrupted; run the same command again to convert the " +
                      std::to_string(not_started) + " files not started");
  }
  if (totals.failed > 0) {
    return Incomplete(std::to_string(totals.failed) + " of " + std::to_string(plan.jobs.size()) +
                      (plan.jobs.size() == 1 ? " file" : " files") + " failed");
  }
  return OkStatus();
}

void AddBatchOptions(CLI::App* command, BatchOptions* options, std::string_view inputs_are) {
  command->add_option("INPUTS", options->inputs,
                      std::string(inputs_are) + ", or folders of them (-r: with subfolders)");
  command
      ->add_option("--from-list", options->list_file,
                   "read more INPUTS from FILE, one path per line ('-' reads standard input)")
      ->type_name("FILE");
  command
      ->add_option("-o,--output", options->output_dir,
                   "output folder; the outputs mirror the inputs' places below their folders")
      ->type_name("DIR")
      ->required();
  command->add_flag("-f,--force", options->force,
                    "convert again files whose output exists (default: skip them)");
  command->add_flag("-r,--recursive", options->recursive, "search the subfolders of folders");
  command
      ->add_option("--base", options->base,
                   "name each output by its input's path below FOLDER (default: below the "
                   "folder given; a file given by name goes to the output folder's top)")
      ->type_name("FOLDER");
  command
      ->add_option("-j,--jobs", options->jobs,
                   "files converted at once (default: all cores); the model is loaded once")
      ->type_name("N")
      ->check(CLI::Range(1, 1024));
  command
      ->add_option("--shard", options->shard,
                   "convert only slice I of N of the sorted file list (0 <= I < N), for "
                   "running one batch on many machines")
      ->type_name("I/N")
      ->check([](const std::string& text) {
        StatusOr<Shard> shard = ParseShard(text);
        return shard.ok() ? std::string() : shard.status().message();
      });
  command->add_flag("--json", options->json, "write one JSON record per file to standard output");
  AddModelChoiceOptions(command, &options->model);
  command->parse_complete_callback([command, options] {
    if (options->inputs.empty() && options->list_file.empty()) {
      throw CLI::RequiredError(command->get_name() + ": INPUTS or --from-list");
    }
  });
}

}  // namespace

Subcommand AddBatchCommand(CLI::App& parent) {
  auto options = std::make_shared<BatchOptions>();
  CLI::App* batch = parent.add_subcommand(
      "batch", "Encode or decode many files: folders, lists, in parallel, resumable");
  batch->require_subcommand(1);
  batch->fallthrough();  // -q/-v may follow
  CLI::App* encode =
      batch->add_subcommand("encode", "Encode images to .t1d files in an output folder");
  AddBatchOptions(encode, options.get(), "image files (PNG, JPEG, WebP, PPM)");
  AddEncodeSettings(encode, &options->encode);
  AddRefineOption(encode, &options->model);
  encode->fallthrough();
  CLI::App* decode =
      batch->add_subcommand("decode", "Decode .t1d files to PNG images in an output folder");
  AddBatchOptions(decode, options.get(), ".t1d files");
  AddDecodeSettings(decode, &options->decode);
  decode
      ->add_option("--group-tiles", options->group_tiles,
                   "gather files until they hold N tiles and decode their tiles together "
                   "(default: a batch, 256 tiles, on a GPU; 1, one file at a time, on the "
                   "CPU)")
      ->type_name("N")
      ->check(CLI::Range(1, 1 << 20));
  decode->fallthrough();
  return {batch, [options, encode](const Console& console) {
            return RunBatch(encode->parsed() ? Direction::kEncode : Direction::kDecode, *options,
                            console);
          }};
}

}  // namespace tok1d::cli
