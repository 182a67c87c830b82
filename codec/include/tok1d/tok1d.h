// tok1d: an image codec built on a learned 1D token representation.
//
// The public API of the tok1d library, in one include:
//   - Status / StatusOr<T> error handling            (codec/status.h)
//   - Image, image reading and writing                (codec/image_io.h)
//   - quality metrics: PSNR, SSIM, MS-SSIM, bpp       (codec/metrics.h)
//   - whole-file input and atomic output              (codec/file_util.h)
//   - the .t1d token container: read, write, trim     (container/t1d.h, container/FORMAT.md)
//   - the model, and the codec: image ↔ token file    (codec/model.h, codec/codec.h)
//   - version and compiled backends                   (below)
#pragma once

#include "codec/codec.h"
#include "codec/file_util.h"
#include "codec/image_io.h"
#include "codec/metrics.h"
#include "codec/model.h"
#include "codec/status.h"
#include "container/t1d.h"
#include "kernels/backend.h"
#include "tok1d/version.h"

namespace tok1d {

inline constexpr const char* kVersionString = TOK1D_VERSION_STRING;

}  // namespace tok1d
