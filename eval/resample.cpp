#include "eval/resample.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace tok1d {
namespace {

// The input pixels one output pixel is made of (along one axis), with their weights.
struct Taps {
  std::vector<size_t> index;
  std::vector<double> weight;  // sums to 1
};

// Output pixel o covers the input interval [o·s, (o+1)·s), s = in / out; each input pixel
// counts with the length of its overlap.
std::vector<Taps> AreaTaps(uint32_t in, uint32_t out) {
  const double scale = static_cast<double>(in) / out;
  std::vector<Taps> taps(out);
  for (uint32_t o = 0; o < out; ++o) {
    const double begin = o * scale, end = (o + 1) * scale;
    const auto last = std::min<size_t>(static_cast<size_t>(std::ceil(end)), in);
    for (auto i = static_cast<size_t>(std::floor(begin)); i < last; ++i) {
      const double overlap =
          std::min(end, static_cast<double>(i + 1)) - std::max(begin, static_cast<double>(i));
      taps[o].index.push_back(i);
      taps[o].weight.push_back(overlap / scale);
    }
  }
  return taps;
}

double KeysCubic(double x) {  // a = −0.5
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// The four nearest input pixels of each output pixel's centre, edge pixels repeated.
std::vector<Taps> CubicTaps(uint32_t in, uint32_t out) {
  const double scale = static_cast<double>(in) / out;
  std::vector<Taps> taps(out);
  for (uint32_t o = 0; o < out; ++o) {
    const double centre = (o + 0.5) * scale - 0.5;
    const auto base = static_cast<long>(std::floor(centre));
    for (long position = base - 1; position <= base + 2; ++position) {
      const long clamped = std::clamp(position, 0L, static_cast<long>(in) - 1);
      taps[o].index.push_back(static_cast<size_t>(clamped));
      taps[o].weight.push_back(KeysCubic(centre - static_cast<double>(position)));
    }
  }
  return taps;
}

// Separable resampling: along rows into doubles, then along columns, rounding once.
Image Resample(const Image& image, uint32_t width, uint32_t height,
               const std::vector<Taps>& columns, const std::vector<Taps>& rows) {
  std::vector<double> horizontal(size_t{width} * image.height * 3);
  for (size_t y = 0; y < image.height; ++y) {
    for (size_t x = 0; x < width; ++x) {
      const Taps& taps = columns[x];
      for (size_t i = 0; i < taps.index.size(); ++i) {
        const uint8_t* pixel = &image.rgb[(y * image.width + taps.index[i]) * 3];
        for (size_t c = 0; c < 3; ++c)
          horizontal[(y * width + x) * 3 + c] += taps.weight[i] * pixel[c];
      }
    }
  }
  Image out{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  for (size_t y = 0; y < height; ++y) {
    const Taps& taps = rows[y];
    for (size_t x = 0; x < width; ++x) {
      for (size_t c = 0; c < 3; ++c) {
        double sum = 0;
        for (size_t i = 0; i < taps.index.size(); ++i) {
          sum += taps.weight[i] * horizontal[(taps.index[i] * width + x) * 3 + c];
        }
        out.rgb[(y * width + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(std::lround(sum), 0L, 255L));
      }
    }
  }
  return out;
}

}  // namespace

Image DownscaleArea(const Image& image, uint32_t width, uint32_t height) {
  return Resample(image, width, height, AreaTaps(image.width, width),
                  AreaTaps(image.height, height));
}

Image UpscaleBicubic(const Image& image, uint32_t width, uint32_t height) {
  return Resample(image, width, height, CubicTaps(image.width, width),
                  CubicTaps(image.height, height));
}

uint32_t ScaledSide(uint32_t side, uint32_t factor) {
  return std::max<uint32_t>(1, (side + factor / 2) / factor);
}

}  // namespace tok1d
