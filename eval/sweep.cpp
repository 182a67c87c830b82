#include "eval/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "eval/baselines.h"
#include "eval/resample.h"
#include "eval/svg_plot.h"

namespace tok1d {
namespace {

using Clock = std::chrono::steady_clock;

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
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
                              const EncodeResult& file, double encode_ms) {
  row.encode_ms = encode_ms;
  const Clock::time_point decode_start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(const DecodeResult decoded, session.Decode(file.t1d));
  row.decode_ms = MillisecondsSince(decode_start);
  row.bytes = file.t1d.size();
  TOK1D_ASSIGN_OR_RETURN(row.quality, QualityOf(image, decoded.image));
  return row;
}

Status SweepTok1d(const std::string& name, const Image& image, Session& session,
                  const SweepSettings& settings, const std::function<void(SweepRow)>& add) {
  // Every count is a trim of one encoding at K (the encoder computes all K tokens of a tile
  // whatever is kept), so the encode time of the ladder is that of any one count.
  const Clock::time_point encode_start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(const std::vector<EncodeResult> files,
                         session.EncodeTokenLadder(image, settings.tokens));
  const double encode_ms = MillisecondsSince(encode_start);
  std::vector<uint64_t> budgets;
  for (size_t i = 0; i < settings.tokens.size(); ++i) {
    TOK1D_ASSIGN_OR_RETURN(
        SweepRow row, ScoreTok1d(NewRow(name, "tok1d", 1, static_cast<int>(settings.tokens[i])),
                                 image, session, files[i], encode_ms));
    budgets.push_back(row.bytes);
    add(std::move(row));
  }
  if (!settings.adaptive) return OkStatus();
  // Adaptive allocation within the uniform files' sizes, so each pair compares at one
  // budget. Its measuring decodes are counted in every row's encode time: one encode at one
  // budget needs them all.
  const Clock::time_point allocate_start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(const std::vector<EncodeResult> adaptive,
                         session.EncodeBudgets(image, budgets, Allocation::kAdaptive));
  const double allocate_ms = MillisecondsSince(allocate_start);
  for (size_t i = 0; i < settings.tokens.size(); ++i) {
    TOK1D_ASSIGN_OR_RETURN(
        SweepRow row,
        ScoreTok1d(NewRow(name, "tok1d-adaptive", 1, static_cast<int>(settings.tokens[i])), image,
                   session, adaptive[i], allocate_ms));
    add(std::move(row));
  }
  return OkStatus();
}

using BaselineEncoder = StatusOr<std::vector<uint8_t>> (*)(const Image&, int);

Status SweepBaseline(const std::string& name, const Image& image, const std::string& codec_name,
                     BaselineEncoder encode, const std::vector<int>& qualities, uint32_t scale,
                     const std::function<void(SweepRow)>& add) {
  for (int quality : qualities) {
    SweepRow row = NewRow(name, codec_name, scale, quality);
    const Clock::time_point encode_start = Clock::now();
    const Image scaled = scale == 1 ? Image{} : DownscaleArea(image, ScaledSide(image.width, scale),
                                                             ScaledSide(image.height, scale));
    TOK1D_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes, encode(scale == 1 ? image : scaled, quality));
    row.encode_ms = MillisecondsSince(encode_start);
    const Clock::time_point decode_start = Clock::now();
    TOK1D_ASSIGN_OR_RETURN(Image decoded, DecodeImage(bytes));
    if (scale != 1) decoded = UpscaleBicubic(decoded, image.width, image.height);
    row.decode_ms = MillisecondsSince(decode_start);
    row.bytes = bytes.size();
    TOK1D_ASSIGN_OR_RETURN(row.quality, QualityOf(image, decoded));
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

double MetricOf(const SweepRow& row, SweepMetric metric) {
  return metric == SweepMetric::kPsnr ? row.quality.psnr : row.quality.msssim;
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
  return count == 0 ? std::nan("") : sum / static_cast<double>(count);
}

nlohmann::json PointsJson(const std::vector<RatePoint>& points) {
  nlohmann::json list = nlohmann::json::array();
  for (const RatePoint& point : points) list.push_back({point.bpp, point.quality});
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

}  // namespace

SweepSettings DefaultSweepSettings(uint32_t model_tokens) {
  SweepSettings settings;
  for (uint32_t k : {1u, 2u, 4u, 8u, 16u, 32u, 48u, 64u, 96u, 128u}) {
    if (k < model_tokens) settings.tokens.push_back(k);
  }
  if (model_tokens > 0) settings.tokens.push_back(model_tokens);
  settings.jpeg_qualities = {1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95};
  settings.webp_qualities = {0, 1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95};
  settings.scales = {1, 2, 4};
  return settings;
}

std::string SweepRow::Curve() const {
  return scale == 1 ? codec : codec + " 1/" + std::to_string(scale);
}

size_t RowsPerImage(const SweepSettings& settings) {
  return settings.tokens.size() * (settings.adaptive ? 2 : 1) +
         (settings.jpeg_qualities.size() + settings.webp_qualities.size()) * settings.scales.size();
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
    TOK1D_RETURN_IF_ERROR(SweepTok1d(name, image, *codec, settings, add));
  }
  for (uint32_t scale : settings.scales) {
    TOK1D_RETURN_IF_ERROR(SweepBaseline(name, image, "jpeg", EncodeJpeg, settings.jpeg_qualities,
                                        scale, add));
  }
  for (uint32_t scale : settings.scales) {
    TOK1D_RETURN_IF_ERROR(SweepBaseline(name, image, "webp", EncodeWebp, settings.webp_qualities,
                                        scale, add));
  }
  return rows;
}

std::string SweepCsv(const std::vector<SweepRow>& rows) {
  std::string csv = "image,codec,scale,setting,bytes,bpp,psnr,psnr_y,ssim,msssim,encode_ms,decode_ms\n";
  for (const SweepRow& row : rows) {
    csv += CsvField(row.image) + "," + row.codec + "," + std::to_string(row.scale) + "," +
           std::to_string(row.setting) + "," + std::to_string(row.bytes) + "," +
           FormatNumber(row.bpp, 6) + "," + FormatNumber(row.quality.psnr, 4) + "," +
           FormatNumber(row.quality.psnr_y, 4) + "," + FormatNumber(row.quality.ssim, 6) + "," +
           FormatNumber(row.quality.msssim, 6) + "," + FormatNumber(row.encode_ms, 2) + "," +
           FormatNumber(row.decode_ms, 2) + "\n";
  }
  return csv;
}

CurveSet CurvesOf(const std::vector<SweepRow>& rows, SweepMetric metric) {
  // Images in order of first appearance, so that index i is the same image in every curve.
  std::vector<std::string> images;
  for (const SweepRow& row : rows) {
    if (std::find(images.begin(), images.end(), row.image) == images.end()) images.push_back(row.image);
  }
  CurveSet curves;
  for (const SweepRow& row : rows) {
    const size_t image = static_cast<size_t>(std::find(images.begin(), images.end(), row.image) - images.begin());
    const RatePoint point{row.bpp, MetricOf(row, metric)};
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

std::string SweepPlotSvg(const std::vector<SweepRow>& rows, SweepMetric metric) {
  const CurveSet curves = CurvesOf(rows, metric);
  std::vector<PlotCurve> plotted;
  for (const SweepRow& row : rows) {
    const std::string name = row.Curve();
    const bool seen = std::any_of(plotted.begin(), plotted.end(),
                                  [&name](const PlotCurve& curve) { return curve.name == name; });
    if (seen) continue;
    PlotCurve curve;
    curve.name = name;
    curve.points = AverageAtEqualRate(curves.at(name));
    const bool tok1d = row.codec.starts_with("tok1d");
    curve.color = row.codec == "tok1d" ? "#d62728"
                  : tok1d              ? "#ff7f0e"
                  : row.codec == "jpeg" ? "#1f77b4"
                                        : "#2ca02c";
    curve.width = tok1d ? 2.5 : 1.5;
    curve.dash = row.scale == 1 ? "" : row.scale == 2 ? "7 4" : "2 3";
    plotted.push_back(std::move(curve));
  }
  const bool psnr = metric == SweepMetric::kPsnr;
  std::set<std::string> images;
  for (const SweepRow& row : rows) images.insert(row.image);
  const std::string title = std::string(psnr ? "PSNR" : "MS-SSIM") + " against rate, mean of " +
                            std::to_string(images.size()) + " image" + (images.size() == 1 ? "" : "s") +
                            " at equal rate";
  return RateQualitySvg(plotted, {title, psnr ? "PSNR (dB, RGB)" : "MS-SSIM (RGB mean)"});
}

nlohmann::json SweepSummary(const std::vector<SweepRow>& rows, const SweepSettings& settings) {
  std::set<std::string> images;
  for (const SweepRow& row : rows) images.insert(row.image);
  nlohmann::json summary = {
      {"images", images.size()},
      {"settings",
       {{"tokens", settings.tokens},
        {"jpeg_qualities", settings.jpeg_qualities},
        {"webp_qualities", settings.webp_qualities},
        {"scales", settings.scales}}}};

  // Mean of every column per (curve, setting), in row order.
  nlohmann::json means = nlohmann::json::array();
  std::vector<std::pair<std::string, int>> keys;
  for (const SweepRow& row : rows) {
    const std::pair<std::string, int> key{row.Curve(), row.setting};
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  for (const auto& [curve, setting] : keys) {
    std::vector<double> bpp, psnr, psnr_y, ssim, msssim, encode_ms, decode_ms;
    for (const SweepRow& row : rows) {
      if (row.Curve() != curve || row.setting != setting) continue;
      bpp.push_back(row.bpp);
      psnr.push_back(row.quality.psnr);
      psnr_y.push_back(row.quality.psnr_y);
      ssim.push_back(row.quality.ssim);
      msssim.push_back(row.quality.msssim);
      encode_ms.push_back(row.encode_ms);
      decode_ms.push_back(row.decode_ms);
    }
    means.push_back({{"curve", curve}, {"setting", setting}, {"images", bpp.size()},
                     {"bpp", FiniteMean(bpp)}, {"psnr", FiniteMean(psnr)},
                     {"psnr_y", FiniteMean(psnr_y)}, {"ssim", FiniteMean(ssim)},
                     {"msssim", FiniteMean(msssim)}, {"encode_ms", FiniteMean(encode_ms)},
                     {"decode_ms", FiniteMean(decode_ms)}});
  }
  summary["mean_by_setting"] = means;

  for (const auto& [metric, key] : {std::pair{SweepMetric::kPsnr, "psnr"},
                                    std::pair{SweepMetric::kMsSsim, "msssim"}}) {
    const CurveSet curves = CurvesOf(rows, metric);
    nlohmann::json averaged = nlohmann::json::object();
    for (const auto& [name, per_image] : curves) averaged[name] = PointsJson(AverageAtEqualRate(per_image));
    summary["average_curves"][key] = averaged;
    for (const auto& [name, per_image] : curves) {
      if (name.starts_with("tok1d")) summary["bd_rate"][key][name] = BdRatesJson(curves, name);
    }
  }
  return summary;
}

}  // namespace tok1d
