#include "eval/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <set>

#include <time.h>

#include "eval/codecs/image_codec.h"
#include "eval/resample.h"
#include "eval/svg_plot.h"
#include "imageio/image_io.h"
#include "metrics/butteraugli.h"
#include "metrics/metrics.h"
#include "metrics/ssimulacra2.h"

namespace tok1d {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// CPU time of the calling thread in milliseconds: what a metric costs, whatever else the
// machine runs meanwhile.
double ThreadCpuMilliseconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) * 1e-6;
}

SweepRow NewRow(const std::string& image, const std::string& codec, uint32_t scale, int setting) {
  SweepRow row;
  row.image = image;
  row.codec = codec;
  row.scale = scale;
  row.setting = setting;
  return row;
}

// Decodes one tok1d file of the sweep and scores it.
StatusOr<SweepRow> ScoreTok1d(SweepRow row, const Image& image, Session& session,
                              const EncodeResult& file, double encode_ms,
                              const std::vector<SweepMetric>& metrics) {
  row.encode_ms = encode_ms;
  const Clock::time_point decode_start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(const DecodeResult decoded, session.Decode(file.t1d));
  row.decode_ms = MillisecondsSince(decode_start);
  row.bytes = file.t1d.size();
  TOK1D_ASSIGN_OR_RETURN(row.quality,
                         SweepQualityOf(image, decoded.image, metrics, &row.metric_ms));
  return row;
}

// tok1d's curve names at one effort level.
std::string Tok1dCurve(const char* base, uint32_t effort) {
  return effort == 0 ? std::string(base) : std::string(base) + "-e" + std::to_string(effort);
}

Status SweepTok1d(const std::string& name, const Image& image, Session& session,
                  const SweepSettings& settings, uint32_t effort,
                  const std::function<void(SweepRow)>& add) {
  // At effort 0 every count is a trim of one encoding at K (the encoder computes all K tokens
  // of a tile whatever is kept), so the encode time of the ladder is that of any one count;
  // above, each count is searched on its own and the time is the ladder's.
  const Clock::time_point encode_start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(const std::vector<EncodeResult> files,
                         session.EncodeTokenLadder(image, settings.tokens, effort));
  const double encode_ms = MillisecondsSince(encode_start) /
                           (effort == 0 ? 1.0 : static_cast<double>(settings.tokens.size()));
  std::vector<uint64_t> budgets;
  for (size_t i = 0; i < settings.tokens.size(); ++i) {
    TOK1D_ASSIGN_OR_RETURN(SweepRow row,
                           ScoreTok1d(NewRow(name, Tok1dCurve("tok1d", effort), 1,
                                             static_cast<int>(settings.tokens[i])),
                                      image, session, files[i], encode_ms, settings.metrics));
    budgets.push_back(row.bytes);
    add(std::move(row));
  }
  if (!settings.adaptive) return OkStatus();
  // Adaptive allocation within the uniform files' sizes, so each pair compares at one
  // budget. Its measuring decodes are counted in every row's encode time: one encode at one
  // budget needs them all.
  const Clock::time_point allocate_start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(const std::vector<EncodeResult> adaptive,
                         session.EncodeBudgets(image, budgets, Allocation::kAdaptive, effort));
  const double allocate_ms =
      MillisecondsSince(allocate_start) / (effort == 0 ? 1.0 : static_cast<double>(budgets.size()));
  for (size_t i = 0; i < settings.tokens.size(); ++i) {
    TOK1D_ASSIGN_OR_RETURN(SweepRow row,
                           ScoreTok1d(NewRow(name, Tok1dCurve("tok1d-adaptive", effort), 1,
                                             static_cast<int>(settings.tokens[i])),
                                      image, session, adaptive[i], allocate_ms, settings.metrics));
    add(std::move(row));
  }
  return OkStatus();
}

// One plug-in codec at one scale: encode (after the downscale), decode (then upscale back),
// score against the original.
Status SweepPlugIn(const std::string& name, const Image& image, const ImageCodec& codec,
                   const std::vector<int>& codec_settings, uint32_t scale,
                   const std::vector<SweepMetric>& metrics,
                   const std::function<void(SweepRow)>& add) {
  for (int setting : codec_settings) {
    SweepRow row = NewRow(name, std::string(codec.name()), scale, setting);
    const Clock::time_point encode_start = Clock::now();
    const Image scaled = scale == 1 ? Image{}
                                    : DownscaleArea(image, ScaledSide(image.width, scale),
                                                    ScaledSide(image.height, scale));
    TOK1D_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes,
                           codec.Encode(scale == 1 ? image : scaled, setting));
    row.encode_ms = MillisecondsSince(encode_start);
    const Clock::time_point decode_start = Clock::now();
    TOK1D_ASSIGN_OR_RETURN(Image decoded, codec.Decode(bytes));
    if (scale != 1) decoded = UpscaleBicubic(decoded, image.width, image.height);
    row.decode_ms = MillisecondsSince(decode_start);
    row.bytes = bytes.size();
    TOK1D_ASSIGN_OR_RETURN(row.quality, SweepQualityOf(image, decoded, metrics, &row.metric_ms));
    add(std::move(row));
  }
  return OkStatus();
}

std::string FormatNumber(double value, int decimals) {
  if (std::isnan(value)) return "";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// Quotes a CSV field when it needs it (RFC 4180).
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// The value of a metric as a row holds it (Butteraugli: the distance).
double ValueOf(const SweepRow& row, CurveMetric metric) {
  switch (metric) {
    case CurveMetric::kPsnr:
      return row.quality.psnr;
    case CurveMetric::kPsnrY:
      return row.quality.psnr_y;
    case CurveMetric::kSsim:
      return row.quality.ssim;
    case CurveMetric::kMsSsim:
      return row.quality.msssim;
    case CurveMetric::kSsimulacra2:
      return row.quality.ssimulacra2;
    case CurveMetric::kButteraugli:
      return row.quality.butteraugli;
    case CurveMetric::kButteraugli3Norm:
      return row.quality.butteraugli_3norm;
  }
  return kNaN;
}

// Mean of the finite values; NaN when there is none.
double FiniteMean(const std::vector<double>& values) {
  double sum = 0;
  size_t count = 0;
  for (double value : values) {
    if (std::isfinite(value)) {
      sum += value;
      ++count;
    }
  }
  return count == 0 ? kNaN : sum / static_cast<double>(count);
}

// Points as [bpp, value]; `sign` −1 undoes the negation of a lower-is-better metric.
nlohmann::json PointsJson(const std::vector<RatePoint>& points, double sign) {
  nlohmann::json list = nlohmann::json::array();
  for (const RatePoint& point : points) list.push_back({point.bpp, sign * point.quality});
  return list;
}

// BD-rate of `test` against every other curve: the mean of per-image values, and the value
// between the curves averaged over images.
nlohmann::json BdRatesJson(const CurveSet& curves, const std::string& test) {
  const std::vector<std::vector<RatePoint>>& test_curves = curves.at(test);
  const std::vector<RatePoint> test_average = AverageAtEqualRate(test_curves);
  nlohmann::json result = nlohmann::json::object();
  for (const auto& [name, per_image] : curves) {
    if (name == test) continue;
    std::vector<double> values;
    for (size_t i = 0; i < per_image.size() && i < test_curves.size(); ++i) {
      if (std::optional<double> bd = BdRate(per_image[i], test_curves[i])) values.push_back(*bd);
    }
    nlohmann::json entry = {{"images_with_overlap", values.size()},
                            {"mean_over_images", nullptr},
                            {"between_average_curves", nullptr}};
    if (!values.empty()) entry["mean_over_images"] = FiniteMean(values);
    if (std::optional<double> bd = BdRate(AverageAtEqualRate(per_image), test_average)) {
      entry["between_average_curves"] = *bd;
    }
    result[name] = entry;
  }
  return result;
}

// Plot colours by codec: tok1d red and orange, then one colour per plug-in.
std::string ColorOf(const std::string& codec) {
  if (codec == "tok1d") return "#d62728";
  if (codec.starts_with("tok1d")) return "#ff7f0e";
  if (codec == "jpeg") return "#1f77b4";
  if (codec == "webp") return "#2ca02c";
  if (codec == "avif") return "#9467bd";
  if (codec == "jxl") return "#8c564b";
  return "#7f7f7f";
}

}  // namespace

const std::vector<SweepMetric>& AllSweepMetrics() {
  static const std::vector<SweepMetric> metrics = {
      SweepMetric::kPsnr,   SweepMetric::kPsnrY,       SweepMetric::kSsim,
      SweepMetric::kMsSsim, SweepMetric::kSsimulacra2, SweepMetric::kButteraugli};
  return metrics;
}

std::string SweepMetricName(SweepMetric metric) {
  switch (metric) {
    case SweepMetric::kPsnr:
      return "psnr";
    case SweepMetric::kPsnrY:
      return "psnr_y";
    case SweepMetric::kSsim:
      return "ssim";
    case SweepMetric::kMsSsim:
      return "msssim";
    case SweepMetric::kSsimulacra2:
      return "ssimulacra2";
    case SweepMetric::kButteraugli:
      return "butteraugli";
  }
  return "";
}

StatusOr<SweepMetric> ParseSweepMetric(const std::string& name) {
  std::string known;
  for (SweepMetric metric : AllSweepMetrics()) {
    if (SweepMetricName(metric) == name) return metric;
    known += (known.empty() ? "" : ", ") + SweepMetricName(metric);
  }
  return InvalidArgumentError("no metric '" + name + "' (metrics: " + known + ")");
}

bool SweepSettings::Measures(SweepMetric metric) const {
  return std::find(metrics.begin(), metrics.end(), metric) != metrics.end();
}

StatusOr<SweepSettings> DefaultSweepSettings(uint32_t model_tokens,
                                             const std::vector<std::string>& codecs) {
  SweepSettings settings;
  for (uint32_t k : {1u, 2u, 4u, 8u, 16u, 32u, 48u, 64u, 96u, 128u}) {
    if (k < model_tokens) settings.tokens.push_back(k);
  }
  if (model_tokens > 0) settings.tokens.push_back(model_tokens);
  for (const std::string& name : codecs) {
    TOK1D_ASSIGN_OR_RETURN(const std::unique_ptr<ImageCodec> codec, FindCodec(name));
    settings.codecs.push_back({name, codec->default_settings()});
  }
  settings.scales = {1, 2, 4};
  return settings;
}

StatusOr<SweepQuality> SweepQualityOf(const Image& original, const Image& decoded,
                                      const std::vector<SweepMetric>& metrics,
                                      std::vector<double>* metric_ms) {
  if (original.width != decoded.width || original.height != decoded.height) {
    return InvalidArgumentError("the decoded image is " + std::to_string(decoded.width) + "×" +
                                std::to_string(decoded.height) + ", the original " +
                                std::to_string(original.width) + "×" +
                                std::to_string(original.height));
  }
  SweepQuality quality{kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN};
  if (metric_ms != nullptr) metric_ms->assign(AllSweepMetrics().size(), 0.0);
  const uint32_t side = std::min(original.width, original.height);
  for (SweepMetric metric : metrics) {
    const double start = ThreadCpuMilliseconds();
    switch (metric) {
      case SweepMetric::kPsnr:
        quality.psnr = Psnr(original, decoded);
        break;
      case SweepMetric::kPsnrY:
        quality.psnr_y = PsnrY(original, decoded);
        break;
      case SweepMetric::kSsim:
        quality.ssim = Ssim(original, decoded);
        break;
      case SweepMetric::kMsSsim:
        quality.msssim = MsSsim(original, decoded);
        break;
      case SweepMetric::kSsimulacra2:
        if (side >= kSsimulacra2MinSide) {
          TOK1D_ASSIGN_OR_RETURN(quality.ssimulacra2, Ssimulacra2(original, decoded));
        }
        break;
      case SweepMetric::kButteraugli:
        if (side >= kButteraugliMinSide) {
          TOK1D_ASSIGN_OR_RETURN(const ButteraugliResult distance, Butteraugli(original, decoded));
          quality.butteraugli = distance.max_norm;
          quality.butteraugli_3norm = distance.norm3;
        }
        break;
    }
    if (metric_ms != nullptr)
      (*metric_ms)[static_cast<size_t>(metric)] += ThreadCpuMilliseconds() - start;
  }
  return quality;
}

std::string SweepRow::Curve() const {
  return scale == 1 ? codec : codec + " 1/" + std::to_string(scale);
}

size_t RowsPerImage(const SweepSettings& settings) {
  size_t plug_in_settings = 0;
  for (const SweepCodec& codec : settings.codecs) plug_in_settings += codec.settings.size();
  return settings.tokens.size() * (settings.adaptive ? 2 : 1) * settings.efforts.size() +
         plug_in_settings * settings.scales.size();
}

StatusOr<std::vector<SweepRow>> SweepImage(const std::string& name, const Image& image,
                                           Session* codec, const SweepSettings& settings,
                                           const std::function<void()>& on_row) {
  std::vector<SweepRow> rows;
  auto add = [&](SweepRow row) {
    row.bpp = BitsPerPixel(row.bytes, image.width, image.height);
    rows.push_back(std::move(row));
    if (on_row) on_row();
  };
  if (!settings.tokens.empty()) {
    if (codec == nullptr) return InvalidArgumentError("a tok1d sweep needs a model");
    for (uint32_t effort : settings.efforts) {
      TOK1D_RETURN_IF_ERROR(SweepTok1d(name, image, *codec, settings, effort, add));
    }
  }
  for (const SweepCodec& entry : settings.codecs) {
    if (entry.settings.empty()) continue;
    TOK1D_ASSIGN_OR_RETURN(const std::unique_ptr<ImageCodec> plug_in, FindCodec(entry.name));
    for (uint32_t scale : settings.scales) {
      TOK1D_RETURN_IF_ERROR(
          SweepPlugIn(name, image, *plug_in, entry.settings, scale, settings.metrics, add));
    }
  }
  return rows;
}

std::string SweepCsv(const std::vector<SweepRow>& rows) {
  std::string csv =
      "image,codec,scale,setting,bytes,bpp,psnr,psnr_y,ssim,msssim,encode_ms,decode_ms,"
      "ssimulacra2,butteraugli,butteraugli_3norm\n";
  for (const SweepRow& row : rows) {
    csv += CsvField(row.image) + "," + row.codec + "," + std::to_string(row.scale) + "," +
           std::to_string(row.setting) + "," + std::to_string(row.bytes) + "," +
           FormatNumber(row.bpp, 6) + "," + FormatNumber(row.quality.psnr, 4) + "," +
           FormatNumber(row.quality.psnr_y, 4) + "," + FormatNumber(row.quality.ssim, 6) + "," +
           FormatNumber(row.quality.msssim, 6) + "," + FormatNumber(row.encode_ms, 2) + "," +
           FormatNumber(row.decode_ms, 2) + "," + FormatNumber(row.quality.ssimulacra2, 4) + "," +
           FormatNumber(row.quality.butteraugli, 4) + "," +
           FormatNumber(row.quality.butteraugli_3norm, 4) + "\n";
  }
  return csv;
}

std::string CurveMetricName(CurveMetric metric) {
  switch (metric) {
    case CurveMetric::kPsnr:
      return "psnr";
    case CurveMetric::kPsnrY:
      return "psnr_y";
    case CurveMetric::kSsim:
      return "ssim";
    case CurveMetric::kMsSsim:
      return "msssim";
    case CurveMetric::kSsimulacra2:
      return "ssimulacra2";
    case CurveMetric::kButteraugli:
      return "butteraugli";
    case CurveMetric::kButteraugli3Norm:
      return "butteraugli_3norm";
  }
  return "";
}

bool HigherIsBetter(CurveMetric metric) {
  return metric != CurveMetric::kButteraugli && metric != CurveMetric::kButteraugli3Norm;
}

std::vector<CurveMetric> CurveMetricsOf(const SweepSettings& settings) {
  std::vector<CurveMetric> curves;
  for (SweepMetric metric : AllSweepMetrics()) {
    if (!settings.Measures(metric)) continue;
    switch (metric) {
      case SweepMetric::kPsnr:
        curves.push_back(CurveMetric::kPsnr);
        break;
      case SweepMetric::kPsnrY:
        curves.push_back(CurveMetric::kPsnrY);
        break;
      case SweepMetric::kSsim:
        curves.push_back(CurveMetric::kSsim);
        break;
      case SweepMetric::kMsSsim:
        curves.push_back(CurveMetric::kMsSsim);
        break;
      case SweepMetric::kSsimulacra2:
        curves.push_back(CurveMetric::kSsimulacra2);
        break;
      case SweepMetric::kButteraugli:
        curves.push_back(CurveMetric::kButteraugli);
        curves.push_back(CurveMetric::kButteraugli3Norm);
        break;
    }
  }
  return curves;
}

CurveSet CurvesOf(const std::vector<SweepRow>& rows, CurveMetric metric) {
  // Images in order of first appearance, so that index i is the same image in every curve.
  std::vector<std::string> images;
  for (const SweepRow& row : rows) {
    if (std::find(images.begin(), images.end(), row.image) == images.end())
      images.push_back(row.image);
  }
  const double sign = HigherIsBetter(metric) ? 1.0 : -1.0;
  CurveSet curves;
  for (const SweepRow& row : rows) {
    const size_t image =
        static_cast<size_t>(std::find(images.begin(), images.end(), row.image) - images.begin());
    const RatePoint point{row.bpp, sign * ValueOf(row, metric)};
    std::vector<std::string> names = {row.Curve()};
    if (!row.codec.starts_with("tok1d")) names.push_back(row.codec + " best scale");
    for (const std::string& name : names) {
      std::vector<std::vector<RatePoint>>& per_image = curves[name];
      per_image.resize(images.size());
      per_image[image].push_back(point);
    }
  }
  return curves;
}

std::string SweepPlotSvg(const std::vector<SweepRow>& rows, CurveMetric metric) {
  const CurveSet curves = CurvesOf(rows, metric);
  const double sign = HigherIsBetter(metric) ? 1.0 : -1.0;
  std::vector<PlotCurve> plotted;
  for (const SweepRow& row : rows) {
    const std::string name = row.Curve();
    const bool seen = std::any_of(plotted.begin(), plotted.end(),
                                  [&name](const PlotCurve& curve) { return curve.name == name; });
    if (seen) continue;
    PlotCurve curve;
    curve.name = name;
    curve.points = AverageAtEqualRate(curves.at(name));
    for (RatePoint& point : curve.points) point.quality *= sign;
    const bool tok1d = row.codec.starts_with("tok1d");
    curve.color = ColorOf(row.codec);
    curve.width = tok1d ? 2.5 : 1.5;
    curve.dash = row.scale == 1 ? "" : row.scale == 2 ? "7 4" : "2 3";
    plotted.push_back(std::move(curve));
  }
  std::set<std::string> images;
  for (const SweepRow& row : rows) images.insert(row.image);
  std::string name, axis;
  switch (metric) {
    case CurveMetric::kPsnr:
      name = "PSNR", axis = "PSNR (dB, RGB)";
      break;
    case CurveMetric::kPsnrY:
      name = "PSNR-Y", axis = "PSNR-Y (dB, BT.601 luma)";
      break;
    case CurveMetric::kSsim:
      name = "SSIM", axis = "SSIM (RGB mean)";
      break;
    case CurveMetric::kMsSsim:
      name = "MS-SSIM", axis = "MS-SSIM (RGB mean)";
      break;
    case CurveMetric::kSsimulacra2:
      name = "SSIMULACRA 2", axis = "SSIMULACRA 2 (100: identical)";
      break;
    case CurveMetric::kButteraugli:
      name = "Butteraugli", axis = "Butteraugli distance (max-norm, lower is better)";
      break;
    case CurveMetric::kButteraugli3Norm:
      name = "Butteraugli 3-norm", axis = "Butteraugli 3-norm (lower is better)";
      break;
  }
  const std::string title = name + " against rate, mean of " + std::to_string(images.size()) +
                            " image" + (images.size() == 1 ? "" : "s") + " at equal rate";
  return RateQualitySvg(plotted, {title, axis});
}

nlohmann::json SweepSummary(const std::vector<SweepRow>& rows, const SweepSettings& settings) {
  std::set<std::string> images;
  for (const SweepRow& row : rows) images.insert(row.image);
  nlohmann::json codecs = nlohmann::json::object();
  for (const SweepCodec& codec : settings.codecs) codecs[codec.name] = codec.settings;
  nlohmann::json metrics = nlohmann::json::array();
  for (SweepMetric metric : settings.metrics) metrics.push_back(SweepMetricName(metric));
  nlohmann::json summary = {{"images", images.size()},
                            {"settings",
                             {{"tokens", settings.tokens},
                              {"codecs", codecs},
                              {"scales", settings.scales},
                              {"metrics", metrics}}}};
  // The keys of earlier summaries, for the codecs that had them.
  if (codecs.contains("jpeg")) summary["settings"]["jpeg_qualities"] = codecs["jpeg"];
  if (codecs.contains("webp")) summary["settings"]["webp_qualities"] = codecs["webp"];

  // Mean of every column per (curve, setting), in row order.
  const std::vector<CurveMetric> all_columns = {CurveMetric::kPsnr,
                                                CurveMetric::kPsnrY,
                                                CurveMetric::kSsim,
                                                CurveMetric::kMsSsim,
                                                CurveMetric::kSsimulacra2,
                                                CurveMetric::kButteraugli,
                                                CurveMetric::kButteraugli3Norm};
  nlohmann::json means = nlohmann::json::array();
  std::vector<std::pair<std::string, int>> keys;
  for (const SweepRow& row : rows) {
    const std::pair<std::string, int> key{row.Curve(), row.setting};
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  for (const auto& [curve, setting] : keys) {
    std::vector<double> bpp, encode_ms, decode_ms;
    std::vector<std::vector<double>> columns(all_columns.size());
    for (const SweepRow& row : rows) {
      if (row.Curve() != curve || row.setting != setting) continue;
      bpp.push_back(row.bpp);
      for (size_t c = 0; c < all_columns.size(); ++c)
        columns[c].push_back(ValueOf(row, all_columns[c]));
      encode_ms.push_back(row.encode_ms);
      decode_ms.push_back(row.decode_ms);
    }
    nlohmann::json entry = {
        {"curve", curve}, {"setting", setting}, {"images", bpp.size()}, {"bpp", FiniteMean(bpp)}};
    for (size_t c = 0; c < all_columns.size(); ++c) {
      entry[CurveMetricName(all_columns[c])] = FiniteMean(columns[c]);
    }
    entry["encode_ms"] = FiniteMean(encode_ms);
    entry["decode_ms"] = FiniteMean(decode_ms);
    means.push_back(entry);
  }
  summary["mean_by_setting"] = means;

  // What each metric cost: CPU milliseconds (of the sweeping thread) per megapixel scored, over
  // every row.
  nlohmann::json cost = nlohmann::json::object();
  for (SweepMetric metric : settings.metrics) {
    double ms = 0, megapixels = 0;
    for (const SweepRow& row : rows) {
      const size_t index = static_cast<size_t>(metric);
      if (index >= row.metric_ms.size() || row.bpp <= 0) continue;
      ms += row.metric_ms[index];
      megapixels += static_cast<double>(row.bytes) * 8.0 / row.bpp / 1e6;
    }
    cost[SweepMetricName(metric)] = megapixels > 0 ? ms / megapixels : kNaN;
  }
  summary["metric_ms_per_megapixel"] = cost;

  summary["bd_rate_note"] =
      "BD-rate of each tok1d curve (test) against every other curve (reference), in percent of "
      "the reference's rate at equal quality: negative means tok1d needs fewer bits. For "
      "butteraugli and butteraugli_3norm, where lower is better, the BD-rate is computed on the "
      "negated distance; their average_curves hold the distance itself.";
  for (CurveMetric metric : CurveMetricsOf(settings)) {
    const std::string key = CurveMetricName(metric);
    const CurveSet curves = CurvesOf(rows, metric);
    const double sign = HigherIsBetter(metric) ? 1.0 : -1.0;
    nlohmann::json averaged = nlohmann::json::object();
    for (const auto& [name, per_image] : curves) {
      averaged[name] = PointsJson(AverageAtEqualRate(per_image), sign);
    }
    summary["average_curves"][key] = averaged;
    for (const auto& [name, per_image] : curves) {
      if (name.starts_with("tok1d")) summary["bd_rate"][key][name] = BdRatesJson(curves, name);
    }
  }
  return summary;
}

}  // namespace tok1d
