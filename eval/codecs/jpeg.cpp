// JPEG through libjpeg-turbo as `cjpeg -quality Q -optimize` (eval/baselines.h); decoded by
// imageio.
#include "eval/baselines.h"
#include "eval/codecs/image_codec.h"
#include "imageio/image_io.h"

namespace tok1d {
namespace {

class JpegCodec final : public ImageCodec {
 public:
  std::string_view name() const override { return "jpeg"; }
  std::string_view setting_name() const override { return "quality"; }
  std::vector<int> default_settings() const override {
    return {1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95};
  }
  StatusOr<std::vector<uint8_t>> Encode(const Image& image, int setting) const override {
    return EncodeJpeg(image, setting);
  }
  StatusOr<Image> Decode(std::span<const uint8_t> bytes) const override {
    if (!Recognizes(bytes)) return CorruptError("not a JPEG file");
    return DecodeImage(bytes);
  }
  bool Recognizes(std::span<const uint8_t> bytes) const override {
    return DetectImageFormat(bytes) == ImageFormat::kJpeg;
  }
};

}  // namespace

std::unique_ptr<ImageCodec> MakeJpegCodec() { return std::make_unique<JpegCodec>(); }

}  // namespace tok1d
