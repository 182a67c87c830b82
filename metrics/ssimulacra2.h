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
// Arithmetic follows the reference operation by operation, in float where it uses float,
// including its fast cube root and the fused multiply-adds of its SIMD code (on x86-64 these
// are used when the CPU has FMA, checked at run time; without FMA the result differs from the
// reference by up to about 0.06 points, like libjxl's own non-SIMD build).
//
// Cost: about 0.2 s per megapixel on one core of a 2020s x86-64 (see the report in
// tests/metrics/perceptual_test.cpp); memory about 100 bytes per pixel.
#pragma once

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
