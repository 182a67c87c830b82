// tok1d sweep: quality against rate of tok1d and the plug-in codecs (JPEG, WebP, AVIF, JPEG XL)
// over a set of images, written as a CSV of every run, a JSON summary with BD-rates, and SVG
// plots (eval/sweep.h does the work).
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"
#include "eval/codecs/image_codec.h"
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
  std::vector<uint32_t> tokens;                            // empty: the defaults
  std::vector<uint32_t> efforts = {kDefaultEffort};        // tok1d --effort levels
  std::map<std::string, std::vector<int>> codec_settings;  // by plug-in name; empty: defaults
  std::vector<uint32_t> scales;
  std::vector<std::string> metrics;  // empty: all
  bool no_adaptive = false;
};

constexpr const char* kCsvName = "sweep.csv";
constexpr const char* kSummaryName = "summary.json";

// The plots, each written when its metric is measured.
constexpr std::pair<CurveMetric, const char*> kPlots[] = {
    {CurveMetric::kPsnr, "psnr.svg"},
    {CurveMetric::kMsSsim, "msssim.svg"},
    {CurveMetric::kSsimulacra2, "ssimulacra2.svg"},
    {CurveMetric::kButteraugli, "butteraugli.svg"}};

// The settings each plug-in accepts, for the command line's checks (a codec not listed here is
// checked by its Encode when the sweep runs).
constexpr std::tuple<const char*, int, int, const char*> kSettingRanges[] = {
    {"jpeg", 1, 100, "JPEG qualities (default 1 … 95, 20 steps)"},
    {"webp", 0, 100, "WebP qualities (default 0 … 95, 18 steps)"},
    {"avif", 0, 100, "AVIF qualities, as avifenc -q (default 0 … 90, 16 steps)"},
    {"jxl", 0, 2500, "JPEG XL distances × 100, as cjxl -d D/100 (default 2500 … 50, 13 steps)"}};

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
    if (std::find(paths.begin(), paths.end(), path) == paths.end())
      paths.push_back(std::move(path));
  };
  for (const std::string& input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<std::string> found;
      for (const fs::directory_entry& entry : fs::directory_iterator(input, error)) {
        if (entry.is_regular_file() && IsImageName(entry.path()))
          found.push_back(entry.path().string());
      }
      if (error) return IoError(input + ": cannot list the folder: " + error.message());
      if (found.empty())
        return NotFoundError(input + ": no image files (.png, .jpg, .webp, .ppm …)");
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
  // Plug-ins in the order given, each once.
  std::vector<std::string> plug_ins;
  for (const std::string& codec : options.codecs) {
    if (codec != "tok1d" && std::find(plug_ins.begin(), plug_ins.end(), codec) == plug_ins.end()) {
      plug_ins.push_back(codec);
    }
  }
  TOK1D_ASSIGN_OR_RETURN(SweepSettings settings, DefaultSweepSettings(model_tokens, plug_ins));
  if (!options.tokens.empty()) settings.tokens = options.tokens;
  for (SweepCodec& codec : settings.codecs) {
    const auto given = options.codec_settings.find(codec.name);
    if (given != options.codec_settings.end() && !given->second.empty())
      codec.settings = given->second;
  }
  if (!options.scales.empty()) settings.scales = options.scales;
  settings.adaptive = !options.no_adaptive;
  settings.efforts = options.efforts;
  if (std::find(options.codecs.begin(), options.codecs.end(), "tok1d") == options.codecs.end()) {
    settings.tokens.clear();
  }
  if (!options.metrics.empty()) {
    settings.metrics.clear();
    for (const std::string& name : options.metrics) {
      TOK1D_ASSIGN_OR_RETURN(const SweepMetric metric, ParseSweepMetric(name));
      if (!settings.Measures(metric)) settings.metrics.push_back(metric);
    }
    // In column order whatever the order given.
    std::vector<SweepMetric> ordered;
    for (SweepMetric metric : AllSweepMetrics()) {
      if (settings.Measures(metric)) ordered.push_back(metric);
    }
    settings.metrics = ordered;
  }
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
    const double left = rows_done_ == 0 ? 0
                                        : elapsed * static_cast<double>(total_ - rows_done_) /
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
      SessionOptions codec_options = SessionOptionsOf(options.model);
      codec_options.threads = 1;  // parallel across images instead
      StatusOr<std::unique_ptr<Session>> created = Session::Create(model, codec_options);
      if (!created.ok()) return fail(created.status());
      codec = std::move(created).value();
    }
    for (size_t i = next++; i < images.size() && !failed; i = next++) {
      StatusOr<std::vector<SweepRow>> rows =
          SweepImage(images[i].name, images[i].image, codec.get(), settings,
                     [&progress] { progress.RowDone(); });
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
  // Settings first (they name the plots to write), with the model's K where tok1d runs; then
  // the images, so that a bad input fails before hours of work.
  const bool wants_tok1d =
      std::find(options.codecs.begin(), options.codecs.end(), "tok1d") != options.codecs.end();
  std::shared_ptr<const LoadedModel> model;
  if (wants_tok1d) {
    TOK1D_ASSIGN_OR_RETURN(model, LoadChosenModel(options.model));
  }
  TOK1D_ASSIGN_OR_RETURN(const SweepSettings settings,
                         ChooseSettings(options, model ? model->info().max_tokens : 0));
  const std::vector<CurveMetric> measured = CurveMetricsOf(settings);
  std::vector<std::string> outputs = {(directory / kCsvName).string(),
                                      (directory / kSummaryName).string()};
  std::vector<std::pair<CurveMetric, std::string>> plots;
  for (const auto& [metric, name] : kPlots) {
    if (std::find(measured.begin(), measured.end(), metric) == measured.end()) continue;
    plots.emplace_back(metric, (directory / name).string());
    outputs.push_back(plots.back().second);
  }
  for (const std::string& output : outputs)
    TOK1D_RETURN_IF_ERROR(CheckOverwrite(output, options.force));
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
  TOK1D_RETURN_IF_ERROR(
      WriteFileAtomically(outputs[1], Bytes(summary.dump(1) + "\n"), options.force));
  std::string written = std::string(kCsvName) + ", " + kSummaryName;
  for (const auto& [metric, path] : plots) {
    TOK1D_RETURN_IF_ERROR(
        WriteFileAtomically(path, Bytes(SweepPlotSvg(rows, metric)), options.force));
    written += ", " + fs::path(path).filename().string();
  }

  std::string note = std::to_string(images.size()) + " images, " + std::to_string(rows.size()) +
                     " runs -> " + options.output_dir + " (" + written + ")";
  std::vector<std::pair<std::string, std::string>> headlines;
  for (const SweepCodec& codec : settings.codecs)
    headlines.emplace_back("tok1d", codec.name + " best scale");
  headlines.emplace_back("tok1d-adaptive", "tok1d");
  const std::pair<CurveMetric, const char*> headline_metrics[] = {
      {CurveMetric::kPsnr, "PSNR"},
      {CurveMetric::kMsSsim, "MS-SSIM"},
      {CurveMetric::kSsimulacra2, "SSIMULACRA 2"},
      {CurveMetric::kButteraugli, "Butteraugli"}};
  for (const auto& [test, reference] : headlines) {
    std::string line;
    for (const auto& [metric, label] : headline_metrics) {
      const nlohmann::json::json_pointer pointer("/bd_rate/" + CurveMetricName(metric) + "/" +
                                                 test + "/" + reference);
      if (!summary.contains(pointer)) continue;
      line += (line.empty() ? "" : ", ") + std::string(label) + " " + BdRateText(summary[pointer]);
    }
    if (!line.empty()) note += "\nBD-rate of " + test + " vs " + reference + ": " + line;
  }
  console.Note(note);
  return OkStatus();
}

}  // namespace

Subcommand AddSweepCommand(CLI::App& parent) {
  auto options = std::make_shared<SweepOptions>();
  CLI::App* command = parent.add_subcommand(
      "sweep",
      "Measure quality against rate of tok1d, JPEG, WebP, AVIF and JPEG XL on a set of images");
  command->add_option("IMAGES", options->inputs, "image files, folders or quoted patterns")
      ->required();
  command
      ->add_option("-o,--output", options->output_dir,
                   "folder for sweep.csv, summary.json and the plots (psnr.svg, msssim.svg, "
                   "ssimulacra2.svg, butteraugli.svg)")
      ->required();
  command->add_flag("-f,--force", options->force, "overwrite existing results in the folder");
  std::vector<std::string> codec_names = {"tok1d"};
  for (const std::string& name : CodecNames()) codec_names.push_back(name);
  std::string codec_list;
  for (const std::string& name : codec_names) codec_list += (codec_list.empty() ? "" : ",") + name;
  command
      ->add_option("--codecs", options->codecs,
                   "which codecs to run, of " + codec_list + " (default tok1d,jpeg,webp)")
      ->delimiter(',')
      ->check(CLI::IsMember(codec_names));
  std::vector<std::string> metric_names;
  for (SweepMetric metric : AllSweepMetrics()) metric_names.push_back(SweepMetricName(metric));
  command
      ->add_option("--metrics", options->metrics,
                   "which metrics to measure (default all: psnr,psnr_y,ssim,msssim,ssimulacra2,"
                   "butteraugli); the others are left empty")
      ->delimiter(',')
      ->check(CLI::IsMember(metric_names));
  command
      ->add_option("--tokens", options->tokens,
                   "tok1d tokens per tile (default 1,2,4,8,16,32,48,64,96,128 up to the model's K)")
      ->delimiter(',')
      ->check(CLI::Range(1, 65535));
  command
      ->add_option("--effort", options->efforts,
                   "tok1d encode --effort level(s), a comma list (e.g. 0,4,9): each level is a "
                   "curve of its own, tok1d-eN (level 0: tok1d), with its BD-rates against the "
                   "others")
      ->delimiter(',')
      ->check(CLI::Range(0u, kMaxEffort))
      ->capture_default_str();
  command->add_flag("--no-adaptive", options->no_adaptive,
                    "skip tok1d with adaptive token allocation at the uniform files' sizes");
  // One option per plug-in, named as the codec: --jpeg, --webp, --avif, --jxl, …
  for (const std::string& name : CodecNames()) {
    std::vector<int>& values = options->codec_settings[name];
    bool ranged = false;
    for (const auto& [codec, low, high, help] : kSettingRanges) {
      if (name != codec) continue;
      command->add_option("--" + name, values, help)->delimiter(',')->check(CLI::Range(low, high));
      ranged = true;
    }
    if (!ranged) command->add_option("--" + name, values, name + " settings")->delimiter(',');
  }
  command
      ->add_option("--scales", options->scales,
                   "also encode the plug-in codecs shrunk by these factors (default 1,2,4)")
      ->delimiter(',')
      ->check(CLI::Range(1, 64));
  AddModelOptions(command, &options->model);
  AddRefineOption(command, &options->model);
  command->footer(
      "-j sets how many images are swept at once (each on one CPU thread).\n"
      "JPEG: libjpeg-turbo, 4:2:0, optimized Huffman tables (as cjpeg -quality Q -optimize).\n"
      "WebP: libwebp, method 6 (as cwebp -q Q -m 6). AVIF: libavif + aom, speed 6 (as avifenc\n"
      "-s 6 -q Q). JPEG XL: libjxl, effort 7 (as cjxl -d D -e 7). Shrunk variants: area\n"
      "downscale, bicubic upscale back to the original size before scoring.\n"
      "SSIMULACRA 2 and Butteraugli cost far more than the other metrics (docs/sweep.md);\n"
      "--metrics psnr,msssim leaves them out.");
  return {command, [options](const Console& console) { return RunSweep(*options, console); }};
}

}  // namespace tok1d::cli
