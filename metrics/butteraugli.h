// Butteraugli (libjxl's psychovisual distance), computed by libjxl itself through its public
// API (jxl/butteraugli.h; link -ljxl). Not a port.
//
// Settings are those of libjxl's `butteraugli_main` with its defaults: the inputs are sRGB
// (8-bit, as tok1d images are), intensity target 80 nits for 1.0 (the API's own default is
// 255, so it is set explicitly), hf_asymmetry 1, xmul 1, no approximate border.
//
//   max_norm  the butteraugli distance: the maximum of the per-pixel distance map, which is
//             what `butteraugli_main REF DIST` prints on its first line. About 1.0 is "just
//             noticeable"; 0 means identical.
//   norm3     what `butteraugli_main` prints as "3-norm": libjxl's ComputeDistanceP with p = 3,
//             which is not the plain 3-norm but the mean of the 3-, 6- and 12-norms of the
//             distance map, ((Σd³/n)^(1/3) + (Σd⁶/n)^(1/6) + (Σd¹²/n)^(1/12)) / 3. Computed
//             here from the distance map the API returns, the same way.
//
// Both are asymmetric: the first argument is the reference. Lower is better.
// Cost: about 0.5 s per megapixel on one core (libjxl 0.7.0, x86-64; no thread pool is used,
// like butteraugli_main); memory about 270 bytes per pixel.
//
// Version: the result depends on the libjxl linked. Debian 12's libjxl 0.7.0 differs from the
// 2023 libjxl (190d44fb) that ../shared/metrics-reference used by up to ~1 % (measured on its
// 32 pairs: max-norm ≤ 0.92 %, 3-norm ≤ 1.19 %); libjxl ≥ 0.9 is expected to agree with that
// reference (see tests/metrics/perceptual_test.cpp).
#pragma once

#include <cstdint>

#include "tok1d/image.h"
#include "tok1d/status.h"

namespace tok1d {

struct ButteraugliResult {
  double max_norm = 0;  // butteraugli distance (max of the distance map)
  double norm3 = 0;     // butteraugli_main's "3-norm"
};

// The smallest side Butteraugli accepts: for smaller images libjxl's comparator does not
// compare at all and returns a distance map of zeros, i.e. "identical", whatever the pixels.
inline constexpr uint32_t kButteraugliMinSide = 8;

// kInvalidArgument when the sizes differ or a side is shorter than 8 pixels; kInternal when
// libjxl fails.
StatusOr<ButteraugliResult> Butteraugli(const Image& reference, const Image& distorted);

}  // namespace tok1d
