// SSIMULACRA 2.1 (Jon Sneyers, Cloudinary; 2.1 of April 2023): a full-reference perceptual
// metric. 100 means identical; lower is worse, with no lower bound (heavily distorted images
// score below 0). Rough guide from the reference tool: 90 very high, 70 high, 50 medium,
// 30 low quality. It is not symmetric: the first argument is the reference.
//
// Definition (as in libjxl tools/ssimulacra2.cc, which is the same as cloudinary/ssimulacra2
// 2.1):
//   - Both images are taken as sRGB and linearised with libjxl's rational-polynomial sRGB
//     curve (what libjxl's colour management uses for sRGB input).
//   - Six scales, 1:1 to 1:32. Scale k+1 is a 2 × 2 box average of scale k in linear RGB
//     (an odd last row/column is repeated), computed only while scale k has both sides ≥ 8.
//     Images with a side under 113 pixels get fewer than six scales; like the reference, the
//     weights are then taken in order, so the later scales' weights shift onto other terms.
//   - At each scale, linear RGB → XYB (libjxl's opsin absorbance matrix, bias and cube root),
//     rescaled to about 0..1: X' = 14·X + 0.42, Y' = Y + 0.01, B' = B − Y + 0.55.
//   - Per channel, with a recursive Gaussian blur of σ 1.5 (Charalampidis 2016, zero outside
//     the image; libjxl's FastGaussian):
//       SSIM error map  1 − (1 − (μ1 − μ2)²) · (2σ12 + C2) / (σ1² + σ2² + C2), C2 = 0.0009,
//                       clamped at 0 (SSIM without the luminance denominator);
//       edge maps       d = (1 + |I2 − μ2|) / (1 + |I1 − μ1|) − 1: artifact = max(d, 0),
//                       detail lost = max(−d, 0).
//   - 6 scales × 3 channels × 3 maps × {1-norm (mean), 4-norm} = 108 numbers, a weighted sum
//     with the fitted 2.1 weights, then the fitted mapping
//       s = 0.9562382616834844 · sum; s = 2.326765642916932 s − 0.020884521182843837 s²
//           + 6.248496625763138e-05 s³; score = 100 − 10 · s^0.6276336467831387 (100 if s ≤ 0).
//
// Arithmetic follows the reference operation by operation: float where it uses float, its fast
// cube root, and the fused multiply-adds of its SIMD code (one FMA instruction where the CPU
// has FMA, checked at run time on x86-64; otherwise emulated in double, which gives the same
// result except in rare double-rounding cases). On the 32 reference pairs of
// ../shared/metrics-reference the scores equal libjxl's to all 8 printed decimals, on both
// paths.
//
// Cost (one thread, x86-64, GCC 12): about 0.2 s per megapixel at -O3 with FMA, 0.35 s at -O2,
// 0.4 s without FMA; memory about 90 bytes per pixel.
#pragma once

#include <cstdint>

#include "tok1d/image.h"
#include "tok1d/status.h"

namespace tok1d {

// The smallest side Ssimulacra2 accepts (the reference tool refuses smaller images).
inline constexpr uint32_t kSsimulacra2MinSide = 8;

// SSIMULACRA 2.1 score of `distorted` against `reference`. kInvalidArgument when the sizes
// differ or a side is shorter than 8 pixels. (The reference tool `ssimulacra2` refuses such
// images with "Minimum image size is 8x8 pixels"; its library function would compute no scale
// at all and return 100 whatever the pixels, which is why they are refused here.)
StatusOr<double> Ssimulacra2(const Image& reference, const Image& distorted);

}  // namespace tok1d
