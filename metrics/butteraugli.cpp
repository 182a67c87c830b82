// Butteraugli through libjxl's public API (see butteraugli.h).
#include "metrics/butteraugli.h"

#include <jxl/butteraugli.h>
#include <jxl/types.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tok1d {
namespace {

// butteraugli_main's defaults.
constexpr float kIntensityTarget = 80.0f;  // nits for an input value of 1.0 (sRGB white)
constexpr float kHfAsymmetry = 1.0f;

struct ApiDeleter {
  void operator()(JxlButteraugliApi* api) const { JxlButteraugliApiDestroy(api); }
};
struct ResultDeleter {
  void operator()(JxlButteraugliResult* result) const { JxlButteraugliResultDestroy(result); }
};

// libjxl's ComputeDistanceP for p = 3 (what butteraugli_main prints as "3-norm"): the mean
// of the 3-, 6- and 12-norms of the distance map, summed in double.
double Norm3(const float* distmap, uint32_t row_stride, uint32_t width, uint32_t height) {
  double sum3 = 0.0;
  double sum6 = 0.0;
  double sum12 = 0.0;
  for (uint32_t y = 0; y < height; ++y) {
    const float* row = distmap + size_t{y} * row_stride;
    for (uint32_t x = 0; x < width; ++x) {
      const double d1 = row[x];
      double d = d1 * d1 * d1;
      sum3 += d;
      d *= d;
      sum6 += d;
      d *= d;
      sum12 += d;
    }
  }
  const double one_per_pixels = 1.0 / (static_cast<double>(width) * height);
  constexpr double p = 3.0;
  double v = 0.0;
  v += std::pow(one_per_pixels * sum3, 1.0 / (p * 1.0));
  v += std::pow(one_per_pixels * sum6, 1.0 / (p * 2.0));
  v += std::pow(one_per_pixels * sum12, 1.0 / (p * 4.0));
  return v / 3.0;
}

}  // namespace

StatusOr<ButteraugliResult> Butteraugli(const Image& reference, const Image& distorted) {
  if (reference.width != distorted.width || reference.height != distorted.height) {
    return InvalidArgumentError(
        "butteraugli: image sizes differ (" + std::to_string(reference.width) + "x" +
        std::to_string(reference.height) + " vs " + std::to_string(distorted.width) + "x" +
        std::to_string(distorted.height) + ")");
  }
  if (reference.width < kButteraugliMinSide || reference.height < kButteraugliMinSide) {
    // libjxl's comparator returns an all-zero distance map ("identical") for such images.
    return InvalidArgumentError("butteraugli: images must be at least 8x8 pixels, got " +
                                std::to_string(reference.width) + "x" +
                                std::to_string(reference.height));
  }
  const size_t bytes = size_t{reference.width} * reference.height * 3;
  if (reference.rgb.size() != bytes || distorted.rgb.size() != bytes) {
    return InvalidArgumentError("butteraugli: pixel buffer size does not match width x height x 3");
  }

  std::unique_ptr<JxlButteraugliApi, ApiDeleter> api(JxlButteraugliApiCreate(nullptr));
  if (api == nullptr) return InternalError("butteraugli: JxlButteraugliApiCreate failed");
  JxlButteraugliApiSetIntensityTarget(api.get(), kIntensityTarget);
  JxlButteraugliApiSetHFAsymmetry(api.get(), kHfAsymmetry);
  // xmul has no setter in the API; its default is 1, as in butteraugli_main.

  // 8-bit interleaved RGB, taken as sRGB by libjxl (floats would be taken as linear).
  const JxlPixelFormat format = {3, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};
  std::unique_ptr<JxlButteraugliResult, ResultDeleter> result(JxlButteraugliCompute(
      api.get(), reference.width, reference.height, &format, reference.rgb.data(),
      reference.rgb.size(), &format, distorted.rgb.data(), distorted.rgb.size()));
  if (result == nullptr) return InternalError("butteraugli: JxlButteraugliCompute failed");

  const float* distmap = nullptr;
  uint32_t row_stride = 0;
  JxlButteraugliResultGetDistmap(result.get(), &distmap, &row_stride);
  if (distmap == nullptr || row_stride < reference.width) {
    return InternalError("butteraugli: libjxl returned no distance map");
  }

  ButteraugliResult out;
  out.max_norm = static_cast<double>(JxlButteraugliResultGetMaxDistance(result.get()));
  out.norm3 = Norm3(distmap, row_stride, reference.width, reference.height);
  return out;
}

}  // namespace tok1d
