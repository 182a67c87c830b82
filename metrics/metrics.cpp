#include "metrics/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace tok1d {
namespace {

constexpr double kPeak = 255.0;
constexpr int kWindow = 11;
constexpr double kSigma = 1.5;
constexpr double kC1 = (0.01 * kPeak) * (0.01 * kPeak);
constexpr double kC2 = (0.03 * kPeak) * (0.03 * kPeak);
constexpr std::array<double, 5> kMsSsimWeights = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

// One channel as doubles, row-major.
struct Plane {
  size_t width = 0;
  size_t height = 0;
  std::vector<double> values;
  double at(size_t x, size_t y) const { return values[y * width + x]; }
};

Plane Channel(const Image& image, size_t channel) {
  Plane plane{image.width, image.height, {}};
  plane.values.resize(plane.width * plane.height);
  for (size_t i = 0; i < plane.values.size(); ++i) plane.values[i] = image.rgb[i * 3 + channel];
  return plane;
}

double PsnrFromSquaredError(double squared_error, size_t samples) {
  if (squared_error == 0) return std::numeric_limits<double>::infinity();
  const double mse = squared_error / static_cast<double>(samples);
  return 10.0 * std::log10(kPeak * kPeak / mse);
}

double Luma(const uint8_t* rgb) { return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]; }

std::array<double, kWindow> GaussianWindow() {
  std::array<double, kWindow> window{};
  double sum = 0;
  for (int i = 0; i < kWindow; ++i) {
    const double offset = i - kWindow / 2;
    window[static_cast<size_t>(i)] = std::exp(-offset * offset / (2 * kSigma * kSigma));
    sum += window[static_cast<size_t>(i)];
  }
  for (double& weight : window) weight /= sum;
  return window;
}

// Separable Gaussian filtering at valid positions: (w − 10) × (h − 10) outputs.
Plane Blur(const Plane& in) {
  static const std::array<double, kWindow> window = GaussianWindow();
  const size_t out_width = in.width - kWindow + 1, out_height = in.height - kWindow + 1;
  Plane rows{out_width, in.height, std::vector<double>(out_width * in.height)};
  for (size_t y = 0; y < in.height; ++y) {
    for (size_t x = 0; x < out_width; ++x) {
      double sum = 0;
      for (size_t i = 0; i < kWindow; ++i) sum += window[i] * in.at(x + i, y);
      rows.values[y * out_width + x] = sum;
    }
  }
  Plane out{out_width, out_height, std::vector<double>(out_width * out_height)};
  for (size_t y = 0; y < out_height; ++y) {
    for (size_t x = 0; x < out_width; ++x) {
      double sum = 0;
      for (size_t i = 0; i < kWindow; ++i) sum += window[i] * rows.at(x, y + i);
      out.values[y * out_width + x] = sum;
    }
  }
  return out;
}

Plane Product(const Plane& a, const Plane& b) {
  Plane out{a.width, a.height, std::vector<double>(a.values.size())};
  for (size_t i = 0; i < a.values.size(); ++i) out.values[i] = a.values[i] * b.values[i];
  return out;
}

// Means over the valid positions of the SSIM map and of its contrast-structure factor.
struct SsimTerms {
  double ssim = 0;
  double contrast_structure = 0;
};

SsimTerms SsimOfPlanes(const Plane& x, const Plane& y) {
  const Plane mu_x = Blur(x), mu_y = Blur(y);
  const Plane xx = Blur(Product(x, x)), yy = Blur(Product(y, y)), xy = Blur(Product(x, y));
  double ssim_sum = 0, cs_sum = 0;
  for (size_t i = 0; i < mu_x.values.size(); ++i) {
    const double mx = mu_x.values[i], my = mu_y.values[i];
    const double var_x = xx.values[i] - mx * mx, var_y = yy.values[i] - my * my;
    const double cov = xy.values[i] - mx * my;
    const double cs = (2 * cov + kC2) / (var_x + var_y + kC2);
    ssim_sum += (2 * mx * my + kC1) / (mx * mx + my * my + kC1) * cs;
    cs_sum += cs;
  }
  const auto count = static_cast<double>(mu_x.values.size());
  return {ssim_sum / count, cs_sum / count};
}

// 2 × 2 averaging; an odd last row or column is repeated first (tf.image's padding).
Plane Halve(const Plane& in) {
  const size_t out_width = (in.width + 1) / 2, out_height = (in.height + 1) / 2;
  Plane out{out_width, out_height, std::vector<double>(out_width * out_height)};
  for (size_t y = 0; y < out_height; ++y) {
    const size_t y0 = 2 * y, y1 = std::min(2 * y + 1, in.height - 1);
    for (size_t x = 0; x < out_width; ++x) {
      const size_t x0 = 2 * x, x1 = std::min(2 * x + 1, in.width - 1);
      out.values[y * out_width + x] =
          (in.at(x0, y0) + in.at(x1, y0) + in.at(x0, y1) + in.at(x1, y1)) / 4;
    }
  }
  return out;
}

double MsSsimOfPlanes(Plane x, Plane y) {
  double product = 1;
  for (size_t scale = 0; scale < kMsSsimWeights.size(); ++scale) {
    const SsimTerms terms = SsimOfPlanes(x, y);
    const bool last = scale + 1 == kMsSsimWeights.size();
    const double term = std::max(last ? terms.ssim : terms.contrast_structure, 0.0);
    product *= std::pow(term, kMsSsimWeights[scale]);
    if (!last) {
      x = Halve(x);
      y = Halve(y);
    }
  }
  return product;
}

template <typename PlaneMetric>
double MeanOverChannels(const Image& original, const Image& decoded, PlaneMetric metric) {
  double sum = 0;
  for (size_t channel = 0; channel < 3; ++channel) {
    sum += metric(Channel(original, channel), Channel(decoded, channel));
  }
  return sum / 3;
}

}  // namespace

double Psnr(const Image& original, const Image& decoded) {
  double squared_error = 0;
  for (size_t i = 0; i < original.rgb.size(); ++i) {
    const double difference = static_cast<double>(original.rgb[i]) - decoded.rgb[i];
    squared_error += difference * difference;
  }
  return PsnrFromSquaredError(squared_error, original.rgb.size());
}

double PsnrY(const Image& original, const Image& decoded) {
  double squared_error = 0;
  const size_t pixels = original.rgb.size() / 3;
  for (size_t p = 0; p < pixels; ++p) {
    const double difference = Luma(&original.rgb[p * 3]) - Luma(&decoded.rgb[p * 3]);
    squared_error += difference * difference;
  }
  return PsnrFromSquaredError(squared_error, pixels);
}

double Ssim(const Image& original, const Image& decoded) {
  if (std::min(original.width, original.height) < kWindow) return std::nan("");
  return MeanOverChannels(original, decoded,
                          [](const Plane& x, const Plane& y) { return SsimOfPlanes(x, y).ssim; });
}

double MsSsim(const Image& original, const Image& decoded) {
  if (std::min(original.width, original.height) < kMsSsimMinSide) return std::nan("");
  return MeanOverChannels(original, decoded, MsSsimOfPlanes);
}

StatusOr<Quality> QualityOf(const Image& original, const Image& decoded) {
  if (original.width != decoded.width || original.height != decoded.height ||
      original.rgb.size() != decoded.rgb.size()) {
    return InvalidArgumentError("cannot compare a " + std::to_string(original.width) + "x" +
                                std::to_string(original.height) + " image with a " +
                                std::to_string(decoded.width) + "x" +
                                std::to_string(decoded.height) + " one");
  }
  return Quality{Psnr(original, decoded), PsnrY(original, decoded), Ssim(original, decoded),
                 MsSsim(original, decoded)};
}

double BitsPerPixel(uint64_t bytes, uint32_t width, uint32_t height) {
  return 8.0 * static_cast<double>(bytes) / (static_cast<double>(width) * height);
}

}  // namespace tok1d
