// Image quality metrics of a decoded image against its original, and rate in bits per pixel.
//
// Definitions (docs/sweep.md compares them with reference implementations):
//   - PSNR over all R, G, B samples, peak 255; infinity when the images are equal.
//   - PSNR-Y on full-range BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (unrounded), peak 255.
//   - SSIM (Wang et al. 2004): Gaussian window 11 × 11, σ 1.5, valid positions only (no
//     padding), K1 0.01, K2 0.03, L 255; computed per R, G, B channel, then averaged over the
//     channels (as pytorch_msssim and tf.image do).
//   - MS-SSIM (Wang et al. 2003): 5 scales with weights 0.0448 0.2856 0.3001 0.2363 0.1333; the
//     contrast-structure term at scales 1–4 and the full SSIM at scale 5, each clamped at 0, per
//     channel, then averaged over channels (pytorch_msssim's formula). Between scales the image
//     is halved by 2 × 2 averaging; an odd row or column count is first made even by repeating
//     the last row or column (tf.image's symmetric padding). Needs both sides ≥ 176 (= 11 · 2⁴,
//     the window must fit at the coarsest scale); smaller images give NaN.
#pragma once

#include <cstdint>

#include "tok1d/image.h"
#include "tok1d/status.h"

namespace tok1d {

// Every metric takes two images of the same size; sizes are checked by the caller
// (QualityOf checks and returns kInvalidArgument).

// PSNR in dB over all RGB samples; infinity when the images are equal.
double Psnr(const Image& original, const Image& decoded);
// PSNR in dB of BT.601 luma; infinity when the lumas are equal.
double PsnrY(const Image& original, const Image& decoded);
// Mean SSIM over R, G, B. NaN if a side is shorter than the 11-pixel window.
double Ssim(const Image& original, const Image& decoded);
// Mean MS-SSIM over R, G, B. NaN if a side is shorter than 176 pixels.
double MsSsim(const Image& original, const Image& decoded);

// The smallest side MsSsim accepts.
inline constexpr uint32_t kMsSsimMinSide = 176;

struct Quality {
  double psnr = 0;
  double psnr_y = 0;
  double ssim = 0;
  double msssim = 0;
};

// All four metrics; kInvalidArgument if the sizes differ.
StatusOr<Quality> QualityOf(const Image& original, const Image& decoded);

// 8 · bytes / (width · height): the rate of a whole file.
double BitsPerPixel(uint64_t bytes, uint32_t width, uint32_t height);

}  // namespace tok1d
