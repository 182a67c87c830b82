// AVIF through libavif (0.11) and libaom, as `avifenc -s 6 --min q --max q` makes it from an
// 8-bit RGB PNG: YUV 4:4:4 (avifenc's default for PNG input), 8 bits, full range, BT.601
// matrix, sRGB primaries and transfer signalled (CICP 1/13/6), speed 6, one thread, no alpha.
// The setting is a quality Q 0 … 100 mapped to the quantizer as libavif 1.x maps `-q`:
// q = ((100 − Q) · 63 + 50) / 100, used as both the smallest and the largest quantizer (so
// libavif also sets aom's cq-level to q). avifenc 0.11 has no -q; with --min q --max q it makes
// the same file as this.
//
// The RGB → YUV conversion is libavif's own (avifImageRGBToYUV from RGBA with opaque alpha, as
// avifenc's PNG reader does), so the encoder sees exactly the samples avifenc gives it.
#include <avif/avif.h>

#include <cstring>
#include <memory>
#include <string>

#include "common/limits.h"
#include "eval/codecs/composite.h"
#include "eval/codecs/image_codec.h"

namespace tok1d {
namespace {

struct ImageDeleter {
  void operator()(avifImage* image) const { avifImageDestroy(image); }
};
struct EncoderDeleter {
  void operator()(avifEncoder* encoder) const { avifEncoderDestroy(encoder); }
};
struct DecoderDeleter {
  void operator()(avifDecoder* decoder) const { avifDecoderDestroy(decoder); }
};
using AvifImagePtr = std::unique_ptr<avifImage, ImageDeleter>;

// Frees an avifRGBImage's pixels on every path.
struct RgbPixels {
  avifRGBImage rgb{};
  ~RgbPixels() { avifRGBImageFreePixels(&rgb); }
};
// Frees an avifRWData's bytes on every path.
struct RwData {
  avifRWData data = AVIF_DATA_EMPTY;
  ~RwData() { avifRWDataFree(&data); }
};

std::string AvifError(const char* what, avifResult result, const avifDiagnostics* diag) {
  std::string message = std::string("libavif: ") + what + ": " + avifResultToString(result);
  if (diag != nullptr && diag->error[0] != '\0') message += std::string(" (") + diag->error + ")";
  return message;
}

// libavif 1.x's avifQualityToQuantizer for the colour planes.
int QualityToQuantizer(int quality) { return ((100 - quality) * 63 + 50) / 100; }

class AvifCodec final : public ImageCodec {
 public:
  std::string_view name() const override { return "avif"; }
  std::string_view setting_name() const override { return "quality"; }
  std::vector<int> default_settings() const override {
    return {0, 2, 4, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 60, 75, 90};
  }

  StatusOr<std::vector<uint8_t>> Encode(const Image& image, int setting) const override {
    if (setting < 0 || setting > 100) {
      return InvalidArgumentError("AVIF quality " + std::to_string(setting) + " is not in 0..100");
    }
    if (image.width == 0 || image.height == 0 ||
        image.rgb.size() != size_t{image.width} * image.height * 3) {
      return InvalidArgumentError("AVIF: empty image or wrong pixel count");
    }
    AvifImagePtr yuv(avifImageCreate(image.width, image.height, 8, AVIF_PIXEL_FORMAT_YUV444));
    if (yuv == nullptr) return InternalError("libavif: out of memory");
    yuv->yuvRange = AVIF_RANGE_FULL;
    yuv->colorPrimaries = AVIF_COLOR_PRIMARIES_BT709;
    yuv->transferCharacteristics = AVIF_TRANSFER_CHARACTERISTICS_SRGB;
    yuv->matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_BT601;

    RgbPixels pixels;
    avifRGBImageSetDefaults(&pixels.rgb, yuv.get());  // RGBA, 8 bits, as avifenc's PNG reader
    avifRGBImageAllocatePixels(&pixels.rgb);
    for (uint32_t y = 0; y < image.height; ++y) {
      const uint8_t* in = &image.rgb[size_t{y} * image.width * 3];
      uint8_t* out = pixels.rgb.pixels + size_t{y} * pixels.rgb.rowBytes;
      for (uint32_t x = 0; x < image.width; ++x, in += 3, out += 4) {
        out[0] = in[0];
        out[1] = in[1];
        out[2] = in[2];
        out[3] = 255;
      }
    }
    avifResult result = avifImageRGBToYUV(yuv.get(), &pixels.rgb);
    if (result != AVIF_RESULT_OK) return InternalError(AvifError("RGB to YUV", result, nullptr));

    std::unique_ptr<avifEncoder, EncoderDeleter> encoder(avifEncoderCreate());
    if (encoder == nullptr) return InternalError("libavif: out of memory");
    encoder->maxThreads = 1;
    encoder->speed = 6;
    encoder->minQuantizer = encoder->maxQuantizer = QualityToQuantizer(setting);
    encoder->minQuantizerAlpha = encoder->maxQuantizerAlpha = AVIF_QUANTIZER_LOSSLESS;
    RwData output;
    result = avifEncoderWrite(encoder.get(), yuv.get(), &output.data);
    if (result != AVIF_RESULT_OK) {
      return InternalError(AvifError("encoding failed", result, &encoder->diag));
    }
    return std::vector<uint8_t>(output.data.data, output.data.data + output.data.size);
  }

  StatusOr<Image> Decode(std::span<const uint8_t> bytes) const override {
    std::unique_ptr<avifDecoder, DecoderDeleter> decoder(avifDecoderCreate());
    if (decoder == nullptr) return InternalError("libavif: out of memory");
    decoder->maxThreads = 1;
    decoder->ignoreExif = AVIF_TRUE;
    decoder->ignoreXMP = AVIF_TRUE;
    decoder->imageSizeLimit = static_cast<uint32_t>(kDefaultMaxPixels);
    AvifImagePtr yuv(avifImageCreateEmpty());
    if (yuv == nullptr) return InternalError("libavif: out of memory");
    avifResult result = avifDecoderReadMemory(decoder.get(), yuv.get(), bytes.data(), bytes.size());
    if (result != AVIF_RESULT_OK) {
      return CorruptError(AvifError("cannot decode AVIF", result, &decoder->diag));
    }
    TOK1D_RETURN_IF_ERROR(CheckPixelLimit(yuv->width, yuv->height, kDefaultMaxPixels));
    const bool alpha = yuv->alphaPlane != nullptr;
    RgbPixels pixels;
    avifRGBImageSetDefaults(&pixels.rgb, yuv.get());
    pixels.rgb.format = alpha ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB;
    pixels.rgb.depth = 8;
    avifRGBImageAllocatePixels(&pixels.rgb);
    result = avifImageYUVToRGB(yuv.get(), &pixels.rgb);
    if (result != AVIF_RESULT_OK) {
      return UnsupportedError(AvifError("YUV to RGB", result, nullptr));
    }
    Image image{yuv->width, yuv->height,
                std::vector<uint8_t>(size_t{yuv->width} * yuv->height * 3)};
    for (uint32_t y = 0; y < image.height; ++y) {
      const uint8_t* row = pixels.rgb.pixels + size_t{y} * pixels.rgb.rowBytes;
      uint8_t* out = &image.rgb[size_t{y} * image.width * 3];
      if (alpha) {
        CompositeOverWhite(row, image.width, out);
      } else {
        std::memcpy(out, row, size_t{image.width} * 3);
      }
    }
    return image;
  }

  bool Recognizes(std::span<const uint8_t> bytes) const override {
    const avifROData data{bytes.data(), bytes.size()};
    return avifPeekCompatibleFileType(&data) == AVIF_TRUE;
  }
};

}  // namespace

std::unique_ptr<ImageCodec> MakeAvifCodec() { return std::make_unique<AvifCodec>(); }

}  // namespace tok1d
