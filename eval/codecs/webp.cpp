// WebP (lossy) through libwebp as `cwebp -q Q -m 6` (eval/baselines.h); decoded by imageio.
#include "eval/baselines.h"
#include "eval/codecs/image_codec.h"
#include "imageio/image_io.h"

namespace tok1d {
namespace {

class WebpCodec final : public ImageCodec {
 public:
  std::string_view name() const override { return "webp"; }
  std::string_view setting_name() const override { return "quality"; }
  std::vector<int> default_settings() const override {
    return {0, 1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95};
  }
  StatusOr<std::vector<uint8_t>> Encode(const Image& image, int setting) const override {
    return EncodeWebp(image, setting);
  }
  StatusOr<Image> Decode(std::span<const uint8_t> bytes) const override {
    if (!Recognizes(bytes)) return CorruptError("not a WebP file");
    return DecodeImage(bytes);
  }
  bool Recognizes(std::span<const uint8_t> bytes) const override {
    return DetectImageFormat(bytes) == ImageFormat::kWebp;
  }
};

}  // namespace

std::unique_ptr<ImageCodec> MakeWebpCodec() { return std::make_unique<WebpCodec>(); }

}  // namespace tok1d
