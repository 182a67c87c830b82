// JPEG XL through libjxl (0.7) as `cjxl -d D -e 7` makes it from an 8-bit RGB PNG without
// colour chunks: the image declared sRGB with rendering intent perceptual (as cjxl declares it),
// XYB (lossy) coding at Butteraugli distance D, effort 7, every other setting libjxl's default,
// a bare codestream (no container). The setting is D × 100 (1 … 2500, distance 0.01 … 25); 0 is
// lossless, as `cjxl -d 0` (modular, the original profile kept). Encoding and decoding run on
// one thread (libjxl's output does not depend on the thread count).
#include <jxl/decode.h>
#include <jxl/decode_cxx.h>
#include <jxl/encode.h>
#include <jxl/encode_cxx.h>

#include <string>

#include "common/limits.h"
#include "eval/codecs/composite.h"
#include "eval/codecs/image_codec.h"

namespace tok1d {
namespace {

constexpr JxlPixelFormat kRgb8 = {3, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};
constexpr JxlPixelFormat kRgba8 = {4, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};

StatusOr<std::vector<uint8_t>> EncodeJxl(const Image& image, int setting) {
  if (setting < 0 || setting > 2500) {
    return InvalidArgumentError("JPEG XL distance×100 " + std::to_string(setting) +
                                " is not in 0..2500");
  }
  if (image.width == 0 || image.height == 0 ||
      image.rgb.size() != size_t{image.width} * image.height * 3) {
    return InvalidArgumentError("JPEG XL: empty image or wrong pixel count");
  }
  const bool lossless = setting == 0;
  JxlEncoderPtr encoder = JxlEncoderMake(nullptr);
  if (encoder == nullptr) return InternalError("libjxl: out of memory");
  JxlEncoder* enc = encoder.get();

  JxlBasicInfo info;
  JxlEncoderInitBasicInfo(&info);
  info.xsize = image.width;
  info.ysize = image.height;
  info.bits_per_sample = 8;
  info.exponent_bits_per_sample = 0;
  info.num_color_channels = 3;
  info.num_extra_channels = 0;
  info.alpha_bits = 0;
  info.uses_original_profile = lossless ? JXL_TRUE : JXL_FALSE;
  JxlColorEncoding color;
  JxlColorEncodingSetToSRGB(&color, /*is_gray=*/JXL_FALSE);
  color.rendering_intent = JXL_RENDERING_INTENT_PERCEPTUAL;  // what cjxl declares for such a PNG
  JxlEncoderFrameSettings* frame = JxlEncoderFrameSettingsCreate(enc, nullptr);
  if (JxlEncoderSetBasicInfo(enc, &info) != JXL_ENC_SUCCESS ||
      JxlEncoderSetColorEncoding(enc, &color) != JXL_ENC_SUCCESS || frame == nullptr ||
      JxlEncoderFrameSettingsSetOption(frame, JXL_ENC_FRAME_SETTING_EFFORT, 7) != JXL_ENC_SUCCESS ||
      (lossless ? JxlEncoderSetFrameLossless(frame, JXL_TRUE)
                : JxlEncoderSetFrameDistance(frame, static_cast<float>(setting) / 100.0f)) !=
          JXL_ENC_SUCCESS ||
      JxlEncoderAddImageFrame(frame, &kRgb8, image.rgb.data(), image.rgb.size()) !=
          JXL_ENC_SUCCESS) {
    return InternalError("libjxl: encoder setup failed (error " +
                         std::to_string(static_cast<int>(JxlEncoderGetError(enc))) + ")");
  }
  JxlEncoderCloseInput(enc);

  std::vector<uint8_t> bytes(64 * 1024);
  size_t used = 0;
  for (;;) {
    uint8_t* next = bytes.data() + used;
    size_t avail = bytes.size() - used;
    const JxlEncoderStatus status = JxlEncoderProcessOutput(enc, &next, &avail);
    used = static_cast<size_t>(next - bytes.data());
    if (status == JXL_ENC_SUCCESS) break;
    if (status != JXL_ENC_NEED_MORE_OUTPUT) {
      return InternalError("libjxl: encoding failed (error " +
                           std::to_string(static_cast<int>(JxlEncoderGetError(enc))) + ")");
    }
    bytes.resize(bytes.size() * 2);
  }
  bytes.resize(used);
  return bytes;
}

StatusOr<Image> DecodeJxl(std::span<const uint8_t> bytes) {
  JxlDecoderPtr decoder = JxlDecoderMake(nullptr);
  if (decoder == nullptr) return InternalError("libjxl: out of memory");
  JxlDecoder* dec = decoder.get();
  if (JxlDecoderSubscribeEvents(dec, JXL_DEC_BASIC_INFO | JXL_DEC_FULL_IMAGE) != JXL_DEC_SUCCESS ||
      JxlDecoderSetUnpremultiplyAlpha(dec, JXL_TRUE) != JXL_DEC_SUCCESS ||
      JxlDecoderSetInput(dec, bytes.data(), bytes.size()) != JXL_DEC_SUCCESS) {
    return InternalError("libjxl: decoder setup failed");
  }
  JxlDecoderCloseInput(dec);
  Image image;
  bool alpha = false;
  std::vector<uint8_t> rgba;  // with alpha: decoded here, then composited into image.rgb
  for (;;) {
    const JxlDecoderStatus status = JxlDecoderProcessInput(dec);
    switch (status) {
      case JXL_DEC_BASIC_INFO: {
        JxlBasicInfo info;
        if (JxlDecoderGetBasicInfo(dec, &info) != JXL_DEC_SUCCESS) {
          return CorruptError("libjxl: cannot read the JPEG XL header");
        }
        TOK1D_RETURN_IF_ERROR(CheckPixelLimit(info.xsize, info.ysize, kDefaultMaxPixels));
        image.width = info.xsize;
        image.height = info.ysize;
        alpha = info.alpha_bits != 0;
        break;
      }
      case JXL_DEC_NEED_IMAGE_OUT_BUFFER: {
        const JxlPixelFormat& format = alpha ? kRgba8 : kRgb8;
        const size_t pixels = size_t{image.width} * image.height;
        std::vector<uint8_t>& buffer = alpha ? rgba : image.rgb;
        size_t size = 0;
        if (JxlDecoderImageOutBufferSize(dec, &format, &size) != JXL_DEC_SUCCESS ||
            size != pixels * format.num_channels) {
          return UnsupportedError("libjxl: cannot decode this JPEG XL file to 8-bit RGB");
        }
        buffer.resize(size);
        if (JxlDecoderSetImageOutBuffer(dec, &format, buffer.data(), size) != JXL_DEC_SUCCESS) {
          return UnsupportedError("libjxl: cannot decode this JPEG XL file to 8-bit RGB");
        }
        break;
      }
      case JXL_DEC_FULL_IMAGE:  // the first frame
        if (alpha) {
          image.rgb.resize(size_t{image.width} * image.height * 3);
          CompositeOverWhite(rgba.data(), size_t{image.width} * image.height, image.rgb.data());
        }
        return image;
      case JXL_DEC_NEED_MORE_INPUT:
        return CorruptError("JPEG XL file is truncated");
      case JXL_DEC_SUCCESS:
        return CorruptError("JPEG XL file has no image");
      default:
        return CorruptError("cannot decode JPEG XL file (damaged or truncated)");
    }
  }
}

class JxlCodec final : public ImageCodec {
 public:
  std::string_view name() const override { return "jxl"; }
  std::string_view setting_name() const override { return "distance×100"; }
  std::vector<int> default_settings() const override {
    return {2500, 2000, 1600, 1300, 1000, 800, 600, 450, 300, 200, 150, 100, 50};
  }
  StatusOr<std::vector<uint8_t>> Encode(const Image& image, int setting) const override {
    return EncodeJxl(image, setting);
  }
  StatusOr<Image> Decode(std::span<const uint8_t> bytes) const override { return DecodeJxl(bytes); }
  bool Recognizes(std::span<const uint8_t> bytes) const override {
    const JxlSignature signature = JxlSignatureCheck(bytes.data(), bytes.size());
    return signature == JXL_SIG_CODESTREAM || signature == JXL_SIG_CONTAINER;
  }
};

}  // namespace

std::unique_ptr<ImageCodec> MakeJxlCodec() { return std::make_unique<JxlCodec>(); }

}  // namespace tok1d
