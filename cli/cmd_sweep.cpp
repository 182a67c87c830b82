// tok1d sweep: quality against rate of tok1d, JPEG and WebP over a set of images, written as a
// CSV of every run, a JSON summary with BD-rates, and SVG plots (eval/sweep.h does the work).
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "eval/sweep.h"

namespace tok1d::cli {
namespace {

namespace fs = std::filesystem;

struct SweepOptions {
  std::vector<std::string> inputs;
  std::string output_dir;
  bool force = false;
  ModelOptions model;
  std::vector<std::string> codecs = {"tok1d", "jpeg", "webp"};
  std::vector<uint32_t> tokens;  // empty: the defaults
  std::vector<int> jpeg_qualities;
  std::vector<int> webp_qualities;
  std::vector<uint32_t> scales;
  bool no_adaptive = false;
};

constexpr const char* kCsvName = "sweep.csv";
constexpr const char* kSummaryName = "summary.json";
constexpr const char* kPsnrPlotName = "psnr.svg";
constexpr const char* kMsSsimPlotName = "msssim.svg";

bool IsImageName(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* known : {".png", ".jpg", ".jpeg", ".webp", ".ppm", ".pgm", ".pnm"}) {
    if (extension == known) return true;
  }
  return false;
}

// Files as given; folders by their image files (by extension, not recursive); patterns the
// shell left unexpanded through glob(3). Sorted within a folder or pattern, duplicates dropped.
StatusOr<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  auto add = [&paths](std::string path) {
    if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(std::move(path));
  };
  for (const std::string& input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<std::string> found;
      for (const fs::directory_entry& entry : fs::directory_iterator(input, error)) {
        if (entry.is_regular_file() && IsImageName(entry.path())) found.push_back(entry.path().string());
      }
      if (error) return IoError(input + ": cannot list the folder: " + error.message());
      if (found.empty()) return NotFoundError(input + ": no image files (.png, .jpg, .webp, .ppm …)");
      std::sort(found.begin(), found.end());
      for (std::string& path : found) add(std::move(path));
    } else if (fs::exists(input, error)) {
      add(input);
    } else if (input.find_first_of("*?[") != std::string::npos) {
      glob_t matches{};
      const int result = glob(input.c_str(), 0, nullptr, &matches);
      for (size_t i = 0; result == 0 && i < matches.gl_pathc; ++i) add(matches.gl_pathv[i]);
      globfree(&matches);
      if (result != 0) return NotFoundError("no file matches '" + input + "'");
    } else {
      return NotFoundError(input + ": no such file or folder");
    }
  }
  return paths;
}

// The settings: defaults for the model's K, replaced by any list given.
StatusOr<SweepSettings> ChooseSettings(const SweepOptions& options, uint32_t model_tokens) {
  auto wants = [&options](const char* codec) {
    return std::find(options.codecs.begin(), options.codecs.end(), codec) != options.codecs.end();
  };
  SweepSettings settings = DefaultSweepSettings(model_tokens);
  if (!options.tokens.empty()) settings.tokens = options.tokens;
  if (!options.jpeg_qualities.empty()) settings.jpeg_qualities = options.jpeg_qualities;
  if (!options.webp_qualities.empty()) settings.webp_qualities = options.webp_qualities;
  if (!options.scales.empty()) settings.scales = options.scales;
  settings.adaptive = !options.no_adaptive;
  if (!wants("tok1d")) settings.tokens.clear();
  if (!wants("jpeg")) settings.jpeg_qualities.clear();
  if (!wants("webp")) settings.webp_qualities.clear();
  for (uint32_t k : settings.tokens) {
    if (k > model_tokens) {
      return InvalidArgumentError("--tokens " + std::to_string(k) + " is more than the model's " +
                                  std::to_string(model_tokens) + " tokens per tile");
    }
  }
  return settings;
}

// One line on a terminal, redrawn in place: rows done, images done, time left.
class ProgressBar {
 public:
  ProgressBar(bool enabled, size_t total_rows, size_t images)
      : enabled_(enabled), total_(total_rows), images_(images), start_(Clock::now()) {}
  ~ProgressBar() {
    if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void RowDone() { Update(1, 0); }
  void ImageDone() { Update(0, 1); }

 private:
  using Clock = std::chrono::steady_clock;

  void Update(size_t rows, size_t images) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    rows_done_ += rows;
    images_done_ += images;
    const Clock::time_point now = Clock::now();
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(200) && rows_done_ < total_) return;
    last_draw_ = now;
    drawn_ = true;
    constexpr size_t kWidth = 30;
    const size_t filled = total_ == 0 ? kWidth : rows_done_ * kWidth / total_;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double left = rows_done_ == 0 ? 0 : elapsed * static_cast<double>(total_ - rows_done_) /
                                                  static_cast<double>(rows_done_);
    std::fprintf(stderr, "\r\033[Ksweep [%s%s] %zu/%zu runs, %zu/%zu images, %s elapsed, ~%s left",
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                 rows_done_, total_, images_done_, images_, Duration(elapsed).c_str(),
                 Duration(left).c_str());
    std::fflush(stderr);
  }

  static std::string Duration(double seconds) {
    const auto whole = static_cast<long>(seconds);
    char text[32];
    std::snprintf(text, sizeof(text), "%ldm%02lds", whole / 60, whole % 60);
    return text;
  }

  const bool enabled_;
  const size_t total_, images_;
  const Clock::time_point start_;
  std::mutex mutex_;
  size_t rows_done_ = 0, images_done_ = 0;
  Clock::time_point last_draw_;
  bool drawn_ = false;
};

struct NamedImage {
  std::string name;
  Image image;
};

// Sweeps every image on `workers` threads, one codec (one CPU thread) each; rows come back in
// image order whatever the threads' timing. Stops at the first error.
StatusOr<std::vector<SweepRow>> SweepAll(const std::vector<NamedImage>& images,
                                         const std::shared_ptr<const LoadedModel>& model,
                                         const SweepOptions& options, const SweepSettings& settings,
                                         unsigned workers, ProgressBar& progress) {
  std::vector<std::vector<SweepRow>> rows_by_image(images.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  Status first_error;
  auto fail = [&](const Status& status) {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (first_error.ok()) first_error = status;
    failed = true;
  };
  auto work = [&]() {
    std::unique_ptr<Session> codec;
    if (!settings.tokens.empty()) {
      SessionOptions codec_options;
      codec_options.device = options.model.device;
      codec_options.threads = 1;  // parallel across images instead
      codec_options.deblock = !options.model.no_deblock;
      codec_options.refine = !options.model.no_refine;
      StatusOr<std::unique_ptr<Session>> created = Session::Create(model, codec_options);
      if (!created.ok()) return fail(created.status());
      codec = std::move(created).value();
    }
    for (size_t i = next++; i < images.size() && !failed; i = next++) {
      StatusOr<std::vector<SweepRow>> rows = SweepImage(
          images[i].name, images[i].image, codec.get(), settings, [&progress] { progress.RowDone(); });
      if (!rows.ok()) return fail(rows.status().WithContext(images[i].name));
      rows_by_image[i] = std::move(rows).value();
      progress.ImageDone();
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& thread : threads) thread.join();
  if (!first_error.ok()) return first_error;
  std::vector<SweepRow> rows;
  for (std::vector<SweepRow>& image_rows : rows_by_image) {
    std::move(image_rows.begin(), image_rows.end(), std::back_inserter(rows));
  }
  return rows;
}

std::span<const uint8_t> Bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::string BdRateText(const nlohmann::json& entry) {
  const nlohmann::json& value = entry["mean_over_images"];
  if (value.is_null()) return "no overlap";
  char text[32];
  std::snprintf(text, sizeof(text), "%+.1f%%", value.get<double>());
  return text;
}

Status RunSweep(const SweepOptions& options, const Console& console) {
  TOK1D_ASSIGN_OR_RETURN(const std::vector<std::string> paths, ExpandInputs(options.inputs));
  const fs::path directory(options.output_dir);
  std::error_code error;
  if (fs::exists(directory, error) && !fs::is_directory(directory, error)) {
    return InvalidArgumentError(options.output_dir + " exists and is not a folder");
  }
  const std::vector<std::string> outputs = {(directory / kCsvName).string(), (directory / kSummaryName).string(),
                                            (directory / kPsnrPlotName).string(),
                                            (directory / kMsSsimPlotName).string()};
  for (const std::string& output : outputs) TOK1D_RETURN_IF_ERROR(CheckOverwrite(output, options.force));

  // Models and images first, so that a bad input fails before hours of work.
  const bool wants_tok1d = std::find(options.codecs.begin(), options.codecs.end(), "tok1d") != options.codecs.end();
  std::shared_ptr<const LoadedModel> model;
  if (wants_tok1d) {
    TOK1D_ASSIGN_OR_RETURN(model, LoadChosenModel(options.model));
  }
  TOK1D_ASSIGN_OR_RETURN(const SweepSettings settings,
                         ChooseSettings(options, model ? model->info().max_tokens : 0));
  std::vector<NamedImage> images;
  for (const std::string& path : paths) {
    ImageInfo info;
    TOK1D_ASSIGN_OR_RETURN(Image image, ReadImage(path, {}, &info));
    for (const std::string& warning : info.warnings) console.Warning(path + ": " + warning);
    images.push_back({path, std::move(image)});
  }

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned workers = static_cast<unsigned>(
      std::min<size_t>(options.model.threads != 0 ? options.model.threads : cores, images.size()));
  console.Verbose("sweep: " + std::to_string(images.size()) + " images, " +
                  std::to_string(RowsPerImage(settings)) + " runs each, " +
                  std::to_string(workers) + " threads");
  std::vector<SweepRow> rows;
  {
    ProgressBar progress(!console.quiet && isatty(STDERR_FILENO) != 0,
                         images.size() * RowsPerImage(settings), images.size());
    TOK1D_ASSIGN_OR_RETURN(rows, SweepAll(images, model, options, settings, workers, progress));
  }

  fs::create_directories(directory, error);
  if (error) return IoError(options.output_dir + ": cannot create the folder: " + error.message());
  const nlohmann::json summary = SweepSummary(rows, settings);
  TOK1D_RETURN_IF_ERROR(WriteFileAtomically(outputs[0], Bytes(SweepCsv(rows)), options.force));
  TOK1D_RETURN_IF_ERROR(WriteFileAtomically(outputs[1], Bytes(summary.dump(1) + "\n"), options.force));
  TOK1D_RETURN_IF_ERROR(WriteFileAtomically(
      outputs[2], Bytes(SweepPlotSvg(rows, SweepMetric::kPsnr)), options.force));
  TOK1D_RETURN_IF_ERROR(WriteFileAtomically(
      outputs[3], Bytes(SweepPlotSvg(rows, SweepMetric::kMsSsim)), options.force));

  std::string note = std::to_string(images.size()) + " images, " + std::to_string(rows.size()) +
                     " runs -> " + options.output_dir + " (" + kCsvName + ", " + kSummaryName +
                     ", " + kPsnrPlotName + ", " + kMsSsimPlotName + ")";
  const std::pair<const char*, const char*> headlines[] = {
      {"tok1d", "jpeg best scale"}, {"tok1d", "webp best scale"}, {"tok1d-adaptive", "tok1d"}};
  for (const auto& [test, reference] : headlines) {
    const nlohmann::json::json_pointer psnr("/bd_rate/psnr/" + std::string(test) + "/" + reference);
    const nlohmann::json::json_pointer msssim("/bd_rate/msssim/" + std::string(test) + "/" + reference);
    if (!summary.contains(psnr)) continue;
    note += std::string("\nBD-rate of ") + test + " vs " + reference + ": PSNR " +
            BdRateText(summary[psnr]) + ", MS-SSIM " + BdRateText(summary[msssim]);
  }
  console.Note(note);
  return OkStatus();
}

}  // namespace

Subcommand AddSweepCommand(CLI::App& parent) {
  auto options = std::make_shared<SweepOptions>();
  CLI::App* command = parent.add_subcommand(
      "sweep", "Measure quality against rate of tok1d, JPEG and WebP on a set of images");
  command->add_option("IMAGES", options->inputs, "image files, folders or quoted patterns")
      ->required();
  command->add_option("-o,--output", options->output_dir,
                      "folder for sweep.csv, summary.json, psnr.svg and msssim.svg")
      ->required();
  command->add_flag("-f,--force", options->force, "overwrite existing results in the folder");
  command->add_option("--codecs", options->codecs, "which codecs to run (default tok1d,jpeg,webp)")
      ->delimiter(',')
      ->check(CLI::IsMember({"tok1d", "jpeg", "webp"}));
  command->add_option("--tokens", options->tokens,
                      "tok1d tokens per tile (default 1,2,4,8,16,32,48,64,96,128 up to the model's K)")
      ->delimiter(',')
      ->check(CLI::Range(1, 65535));
  command->add_flag("--no-adaptive", options->no_adaptive,
                    "skip tok1d with adaptive token allocation at the uniform files' sizes");
  command->add_option("--jpeg", options->jpeg_qualities, "JPEG qualities (default 1 … 95, 20 steps)")
      ->delimiter(',')
      ->check(CLI::Range(1, 100));
  command->add_option("--webp", options->webp_qualities, "WebP qualities (default 0 … 95, 18 steps)")
      ->delimiter(',')
      ->check(CLI::Range(0, 100));
  command->add_option("--scales", options->scales,
                      "also encode JPEG and WebP shrunk by these factors (default 1,2,4)")
      ->delimiter(',')
      ->check(CLI::Range(1, 64));
  AddModelOptions(command, &options->model);
  AddRefineOption(command, &options->model);
  command->footer(
      "-j sets how many images are swept at once (each on one CPU thread).\n"
      "JPEG: libjpeg-turbo, 4:2:0, optimized Huffman tables (as cjpeg -quality Q -optimize).\n"
      "WebP: libwebp, method 6 (as cwebp -q Q -m 6). Shrunk variants: area downscale, bicubic\n"
      "upscale back to the original size before scoring.");
  return {command, [options](const Console& console) { return RunSweep(*options, console); }};
}

}  // namespace tok1d::cli
