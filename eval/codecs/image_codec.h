// Image codecs that tok1d is compared with (tok1d sweep, docs/sweep.md), behind one interface:
// a name, a ladder of settings, encode at a setting to the bytes of a file, decode those bytes.
//
// Each codec makes the files its reference command-line tool makes at the same setting, byte
// for byte (tests/eval/codecs_test.cpp checks the sizes against the tools when installed):
//   jpeg  libjpeg-turbo, `cjpeg -quality Q -optimize`        setting: quality 1 … 100
//   webp  libwebp,       `cwebp -q Q -m 6`                   setting: quality 0 … 100
//   avif  libavif + aom, `avifenc -s 6 --min q --max q`      setting: quality 0 … 100, mapped to
//         the AV1 quantizer q = ((100 − Q) · 63 + 50) / 100 as libavif 1.x's `avifenc -q Q`
//   jxl   libjxl,        `cjxl -d D -e 7`                    setting: distance D × 100, 0 … 2500
//                                                            (0: lossless, as `cjxl -d 0`)
//
// Adding a codec: one file that defines `std::unique_ptr<ImageCodec> MakeXxxCodec()`, one line
// in the list in registry.cpp, and the file in eval/codecs/CMakeLists.txt.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tok1d/image.h"
#include "tok1d/status.h"

namespace tok1d {

class ImageCodec {
 public:
  virtual ~ImageCodec() = default;

  // Lower-case, as on the command line: "jpeg", "webp", "avif", "jxl".
  virtual std::string_view name() const = 0;
  // What the integer setting means, for help texts and reports: "quality", "distance×100".
  virtual std::string_view setting_name() const = 0;
  // The settings a sweep runs by default, from the lowest quality (smallest file) up.
  virtual std::vector<int> default_settings() const = 0;

  // The whole file at `setting`; kInvalidArgument if the setting is out of range.
  virtual StatusOr<std::vector<uint8_t>> Encode(const Image& image, int setting) const = 0;
  // A file of this codec's format (any file its tool decodes, not only Encode's) as 8-bit sRGB;
  // the first frame of an animation; transparency composited over white, as imageio does.
  // kCorrupt or kUnsupported for what it cannot decode.
  virtual StatusOr<Image> Decode(std::span<const uint8_t> bytes) const = 0;
  // Whether `bytes` start like a file of this codec's format (magic bytes only).
  virtual bool Recognizes(std::span<const uint8_t> bytes) const = 0;

 protected:
  ImageCodec() = default;
  ImageCodec(const ImageCodec&) = default;
  ImageCodec& operator=(const ImageCodec&) = default;
};

// Every codec of this build, in a fixed order (jpeg, webp, avif, jxl).
std::vector<std::unique_ptr<ImageCodec>> AllCodecs();

// The names of AllCodecs(), in the same order.
std::vector<std::string> CodecNames();

// The codec called `name`; kNotFound (naming the codecs there are) if there is none.
StatusOr<std::unique_ptr<ImageCodec>> FindCodec(std::string_view name);

// Decodes a file of any codec that recognizes it; kUnsupported if none does.
StatusOr<Image> DecodeWithAnyCodec(std::span<const uint8_t> bytes);

}  // namespace tok1d
