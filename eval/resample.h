// Resizing for the downscaled baseline variants of tok1d sweep: shrink before encoding, enlarge
// the decoded image back to the original size for scoring.
#pragma once

#include <cstdint>

#include "imageio/image_io.h"

namespace tok1d {

// Area (box) filter: each output pixel is the mean of the input area it covers, partial pixels
// weighted by coverage (as OpenCV INTER_AREA and Pillow BOX); rounded to nearest. For an
// integer factor this is the plain average of each factor × factor block.
Image DownscaleArea(const Image& image, uint32_t width, uint32_t height);

// Bicubic convolution (Keys, a = −0.5, as Pillow BICUBIC), pixel centres aligned
// (x_in = (x_out + 0.5) · w_in / w_out − 0.5), edge pixels repeated, clamped and rounded.
Image UpscaleBicubic(const Image& image, uint32_t width, uint32_t height);

// The size of `side` shrunk by `factor`: round(side / factor), at least 1.
uint32_t ScaledSide(uint32_t side, uint32_t factor);

}  // namespace tok1d
