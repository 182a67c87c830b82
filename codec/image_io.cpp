#include "codec/image_io.h"

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <webp/decode.h>

#include "codec/file_util.h"

namespace tok1d {

namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr uint8_t kJpegSignature[3] = {0xFF, 0xD8, 0xFF};

// (a·b) / 255 rounded to nearest, exact for a, b in 0..255.
inline uint8_t MulDiv255(uint32_t a, uint32_t b) {
  uint32_t t = a * b + 128;
  return static_cast<uint8_t>((t + (t >> 8)) >> 8);
}

// RGBA → RGB over `background`. Returns whether any pixel was not fully opaque.
bool CompositeOverBackground(const uint8_t* rgba, size_t pixels,
                             const std::array<uint8_t, 3>& background, uint8_t* rgb) {
  bool translucent = false;
  for (size_t i = 0; i < pixels; ++i, rgba += 4, rgb += 3) {
    uint32_t alpha = rgba[3];
    translucent |= alpha != 255;
    for (int c = 0; c < 3; ++c) {
      // c·a + bg·(255−a) never exceeds 255·255, so the sum of the two rounded terms is computed
      // in one step to round only once.
      uint32_t t = rgba[c] * alpha + background[static_cast<size_t>(c)] * (255 - alpha) + 128;
      rgb[c] = static_cast<uint8_t>((t + (t >> 8)) >> 8);
    }
  }
  return translucent;
}

void NoteAlpha(const ImageReadOptions& options, bool translucent, ImageInfo* info) {
  info->had_alpha = true;
  info->alpha_composited = translucent;
  if (translucent) {
    const auto& bg = options.background;
    info->warnings.push_back("image has transparency; composited over background rgb(" +
                             std::to_string(bg[0]) + "," + std::to_string(bg[1]) + "," +
                             std::to_string(bg[2]) + ")");
  }
}

// Allocates width × height × channels bytes after the pixel limit check.
Status AllocatePixels(uint32_t width, uint32_t height, uint32_t channels,
                      const ImageReadOptions& options, std::vector<uint8_t>* pixels) {
  TOK1D_RETURN_IF_ERROR(CheckPixelLimit(width, height, options.max_pixels));
  pixels->assign(size_t{width} * height * channels, 0);
  return OkStatus();
}

// Packs RGBA or RGB pixels (as decoded) into `image`, compositing alpha if present.
void FinishRgbOrRgba(std::vector<uint8_t> pixels, bool has_alpha, const ImageReadOptions& options,
                     Image* image, ImageInfo* info) {
  if (!has_alpha) {
    image->rgb = std::move(pixels);
    return;
  }
  size_t count = size_t{image->width} * image->height;
  image->rgb.resize(count * 3);
  bool translucent = CompositeOverBackground(pixels.data(), count, options.background,
                                             image->rgb.data());
  NoteAlpha(options, translucent, info);
}

// ---------------------------------------------------------------------------------------------
// PNG (libpng). libpng reports errors by longjmp; the function that calls setjmp keeps all its
// state in a PngState owned by its caller, so the jump skips no destructors and no locals are
// read after it.

struct PngState {
  std::span<const uint8_t> input;
  size_t offset = 0;
  const ImageReadOptions* options = nullptr;
  Status status;  // set by callbacks and checks; the C++ side builds all messages
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  bool has_alpha = false;
  std::vector<uint8_t> pixels;  // RGB or RGBA, 8 bits
  std::vector<png_bytep> rows;
};

void PngRead(png_structp png, png_bytep out, size_t length) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  if (length > state->input.size() - state->offset) {
    state->status = TruncatedError("PNG file ends early (truncated)");
    png_error(png, "truncated");
  }
  std::memcpy(out, state->input.data() + state->offset, length);
  state->offset += length;
}

void PngError(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  if (state->status.ok()) state->status = CorruptError(std::string("invalid PNG: ") + message);
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile"

// Returns false on error (state->status says why).
bool DecodePngInto(PngState* state) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, PngError, PngWarning);
  if (png == nullptr) return false;
  png_infop png_info = png_create_info_struct(png);
  if (png_info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &png_info, nullptr);
    return false;
  }
  png_set_read_fn(png, state, PngRead);
  png_read_info(png, png_info);
  png_uint_32 width = 0, height = 0;
  png_get_IHDR(png, png_info, &width, &height, &state->bit_depth, &state->color_type, nullptr,
               nullptr, nullptr);
  state->width = width;
  state->height = height;
  bool has_trns = png_get_valid(png, png_info, PNG_INFO_tRNS) != 0;
  state->has_alpha = (state->color_type & PNG_COLOR_MASK_ALPHA) != 0 || has_trns;
  uint32_t channels = state->has_alpha ? 4 : 3;
  state->status = CheckPixelLimit(width, height, state->options->max_pixels);
  if (!state->status.ok()) {
    png_destroy_read_struct(&png, &png_info, nullptr);
    return false;
  }

  if (state->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (state->color_type == PNG_COLOR_TYPE_GRAY && state->bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  if (has_trns) png_set_tRNS_to_alpha(png);
  if (state->bit_depth == 16) png_set_scale_16(png);  // rounds, unlike png_set_strip_16
  if ((state->color_type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, png_info);
  if (png_get_rowbytes(png, png_info) != size_t{width} * channels) {
    state->status = InternalError("unexpected PNG row size after conversion");
    png_destroy_read_struct(&png, &png_info, nullptr);
    return false;
  }
  state->pixels.resize(size_t{width} * height * channels);
  state->rows.resize(height);
  for (size_t y = 0; y < height; ++y) state->rows[y] = &state->pixels[y * width * channels];
  png_read_image(png, state->rows.data());
  png_read_end(png, nullptr);  // reaches IEND: catches files cut after the image data
  png_destroy_read_struct(&png, &png_info, nullptr);
  return true;
}

StatusOr<Image> DecodePng(std::span<const uint8_t> bytes, const ImageReadOptions& options,
                          ImageInfo* info) {
  PngState state;
  state.input = bytes;
  state.options = &options;
  if (!DecodePngInto(&state)) {
    if (state.status.ok()) return InternalError("libpng could not start");
    return state.status;
  }
  state.rows.clear();
  info->bit_depth = static_cast<uint32_t>(state.bit_depth);
  bool gray = (state.color_type & PNG_COLOR_MASK_COLOR) == 0;
  info->channels = (gray ? 1u : 3u) + (state.has_alpha ? 1u : 0u);
  Image image{state.width, state.height, {}};
  FinishRgbOrRgba(std::move(state.pixels), state.has_alpha, options, &image, info);
  return image;
}

struct PngWriteState {
  std::vector<uint8_t>* out = nullptr;
  std::string error;
};

void PngWrite(png_structp png, png_bytep data, size_t length) {
  auto* state = static_cast<PngWriteState*>(png_get_io_ptr(png));
  state->out->insert(state->out->end(), data, data + length);
}

void PngWriteError(png_structp png, png_const_charp message) {
  static_cast<PngWriteState*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

bool EncodePngInto(const Image& image, PngWriteState* state) {
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, state, PngWriteError, PngWarning);
  if (png == nullptr) return false;
  png_infop png_info = png_create_info_struct(png);
  if (png_info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &png_info);
    return false;
  }
  png_set_write_fn(png, state, PngWrite, nullptr);
  png_set_IHDR(png, png_info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, png_info);
  for (size_t y = 0; y < image.height; ++y) {
    // libpng's API is not const-correct; it does not modify the row.
    png_write_row(png, const_cast<png_bytep>(&image.rgb[y * image.width * 3]));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &png_info);
  return true;
}

// ---------------------------------------------------------------------------------------------
// JPEG (libjpeg-turbo's libjpeg API). Same setjmp discipline as for PNG.

struct JpegErrorManager {
  jpeg_error_mgr manager;  // first member: libjpeg passes a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  errors->manager.format_message(cinfo, errors->message);
  longjmp(errors->jump, 1);
}

void JpegEmitMessage(j_common_ptr cinfo, int level) {
  // Warnings are level -1. A premature end of data is a truncated file, which libjpeg would
  // otherwise pad with grey; other warnings (stray bytes between markers) are harmless.
  auto* errors = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  if (level < 0 && errors->manager.msg_code == JWRN_JPEG_EOF) errors->truncated = true;
}

struct JpegState {
  std::span<const uint8_t> input;
  const ImageReadOptions* options = nullptr;
  JpegErrorManager errors{};
  Status status;
  jpeg_decompress_struct cinfo{};
  uint32_t width = 0, height = 0, components = 0;
  J_COLOR_SPACE color_space = JCS_UNKNOWN;
  bool adobe_inverted = false;
  std::vector<uint8_t> pixels;  // RGB, or CMYK as stored
};

bool DecodeJpegInto(JpegState* state) {
  jpeg_decompress_struct* cinfo = &state->cinfo;
  cinfo->err = jpeg_std_error(&state->errors.manager);
  state->errors.manager.error_exit = JpegErrorExit;
  state->errors.manager.emit_message = JpegEmitMessage;
  if (setjmp(state->errors.jump)) {
    state->status = CorruptError(std::string("invalid JPEG: ") + state->errors.message);
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, state->input.data(), static_cast<unsigned long>(state->input.size()));
  jpeg_read_header(cinfo, TRUE);
  state->status = CheckPixelLimit(cinfo->image_width, cinfo->image_height,
                                  state->options->max_pixels);
  if (!state->status.ok()) {
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  state->color_space = cinfo->jpeg_color_space;
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo->out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo->out_color_space = JCS_CMYK;  // libjpeg turns YCCK into CMYK
      state->adobe_inverted = cinfo->saw_Adobe_marker != 0;
      break;
    default:
      state->status = UnsupportedError("JPEG colour space " +
                                       std::to_string(cinfo->jpeg_color_space) +
                                       " is not supported; convert the image to RGB first");
      jpeg_destroy_decompress(cinfo);
      return false;
  }
  jpeg_start_decompress(cinfo);
  state->width = cinfo->output_width;
  state->height = cinfo->output_height;
  state->components = static_cast<uint32_t>(cinfo->output_components);
  size_t stride = size_t{state->width} * state->components;
  state->pixels.resize(stride * state->height);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = &state->pixels[cinfo->output_scanline * stride];
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  jpeg_destroy_decompress(cinfo);
  if (state->errors.truncated) {
    state->status = TruncatedError("JPEG file ends early (truncated)");
    return false;
  }
  return true;
}

// Photoshop and most software write Adobe CMYK JPEGs with inverted samples (0 = full ink), so
// R = C'·K' / 255 where C' and K' are the stored values; plain CMYK stores ink amounts.
std::vector<uint8_t> CmykToRgb(const std::vector<uint8_t>& cmyk, bool inverted) {
  std::vector<uint8_t> rgb(cmyk.size() / 4 * 3);
  for (size_t i = 0, o = 0; i < cmyk.size(); i += 4, o += 3) {
    uint32_t k = inverted ? cmyk[i + 3] : 255u - cmyk[i + 3];
    for (size_t c = 0; c < 3; ++c) {
      uint32_t v = inverted ? cmyk[i + c] : 255u - cmyk[i + c];
      rgb[o + c] = MulDiv255(v, k);
    }
  }
  return rgb;
}

StatusOr<Image> DecodeJpeg(std::span<const uint8_t> bytes, const ImageReadOptions& options,
                           ImageInfo* info) {
  auto state = std::make_unique<JpegState>();  // jmp_buf and libjpeg state are large
  state->input = bytes;
  state->options = &options;
  if (!DecodeJpegInto(state.get())) return state->status;
  Image image{state->width, state->height, {}};
  if (state->components == 4) {
    image.rgb = CmykToRgb(state->pixels, state->adobe_inverted);
    info->channels = 4;
    info->warnings.push_back(std::string("CMYK JPEG converted to RGB without colour management") +
                             (state->adobe_inverted ? " (Adobe inverted CMYK)" : ""));
  } else {
    image.rgb = std::move(state->pixels);
    info->channels = state->color_space == JCS_GRAYSCALE ? 1 : 3;
  }
  return image;
}

// ---------------------------------------------------------------------------------------------
// WebP (libwebp), still images only.

StatusOr<Image> DecodeWebp(std::span<const uint8_t> bytes, const ImageReadOptions& options,
                           ImageInfo* info) {
  WebPBitstreamFeatures features;
  VP8StatusCode code = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (code == VP8_STATUS_NOT_ENOUGH_DATA) return TruncatedError("WebP file ends early (truncated)");
  if (code != VP8_STATUS_OK) return CorruptError("invalid WebP header");
  if (features.has_animation) {
    return UnsupportedError("animated WebP is not supported; extract one frame first");
  }
  auto width = static_cast<uint32_t>(features.width);
  auto height = static_cast<uint32_t>(features.height);
  bool has_alpha = features.has_alpha != 0;
  uint32_t channels = has_alpha ? 4 : 3;
  std::vector<uint8_t> pixels;
  TOK1D_RETURN_IF_ERROR(AllocatePixels(width, height, channels, options, &pixels));
  int stride = static_cast<int>(width * channels);
  uint8_t* decoded =
      has_alpha ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), pixels.data(), pixels.size(), stride)
                : WebPDecodeRGBInto(bytes.data(), bytes.size(), pixels.data(), pixels.size(), stride);
  if (decoded == nullptr) return CorruptError("invalid or truncated WebP image data");
  info->channels = channels;
  Image image{width, height, {}};
  FinishRgbOrRgba(std::move(pixels), has_alpha, options, &image, info);
  return image;
}

// ---------------------------------------------------------------------------------------------
// Binary PPM (P6) and PGM (P5), per the netpbm specification.

class PnmHeaderParser {
 public:
  explicit PnmHeaderParser(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  // Skips whitespace and '#' comments, then reads a decimal number.
  StatusOr<uint32_t> Number(const char* what) {
    for (;;) {
      if (pos_ >= bytes_.size()) return TruncatedError(std::string("PNM header ends before ") + what);
      uint8_t c = bytes_[pos_];
      if (c == '#') {
        while (pos_ < bytes_.size() && bytes_[pos_] != '\n' && bytes_[pos_] != '\r') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
        ++pos_;
      } else {
        break;
      }
    }
    uint64_t value = 0;
    size_t start = pos_;
    while (pos_ < bytes_.size() && bytes_[pos_] >= '0' && bytes_[pos_] <= '9') {
      value = value * 10 + (bytes_[pos_++] - '0');
      if (value > UINT32_MAX) return CorruptError(std::string("PNM ") + what + " is too large");
    }
    if (pos_ == start) return CorruptError(std::string("PNM header: expected ") + what);
    return static_cast<uint32_t>(value);
  }

  // Exactly one whitespace byte separates the header from the samples.
  Status EndOfHeader() {
    if (pos_ >= bytes_.size()) return TruncatedError("PNM file ends after its header");
    uint8_t c = bytes_[pos_++];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      return CorruptError("PNM header: expected whitespace after maxval");
    }
    return OkStatus();
  }

  size_t position() const { return pos_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 2;  // after "P5"/"P6"
};

StatusOr<Image> DecodePnm(std::span<const uint8_t> bytes, const ImageReadOptions& options,
                          ImageInfo* info) {
  const uint32_t channels = bytes[1] == '6' ? 3 : 1;
  PnmHeaderParser parser(bytes);
  TOK1D_ASSIGN_OR_RETURN(uint32_t width, parser.Number("width"));
  TOK1D_ASSIGN_OR_RETURN(uint32_t height, parser.Number("height"));
  TOK1D_ASSIGN_OR_RETURN(uint32_t maxval, parser.Number("maxval"));
  TOK1D_RETURN_IF_ERROR(parser.EndOfHeader());
  if (maxval == 0 || maxval > 65535) {
    return CorruptError("PNM maxval " + std::to_string(maxval) + " is outside 1..65535");
  }
  TOK1D_RETURN_IF_ERROR(CheckPixelLimit(width, height, options.max_pixels));
  const uint32_t sample_bytes = maxval > 255 ? 2 : 1;
  const size_t samples = size_t{width} * height * channels;
  std::span<const uint8_t> data = bytes.subspan(parser.position());
  if (data.size() < samples * sample_bytes) return TruncatedError("PNM file ends early (truncated)");

  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  for (size_t i = 0; i < samples; ++i) {
    uint32_t value = sample_bytes == 2 ? (uint32_t{data[2 * i]} << 8) | data[2 * i + 1] : data[i];
    if (value > maxval) return CorruptError("PNM sample exceeds maxval");
    auto scaled = static_cast<uint8_t>(maxval == 255 ? value : (value * 255 + maxval / 2) / maxval);
    if (channels == 3) {
      image.rgb[i] = scaled;
    } else {
      std::memset(&image.rgb[3 * i], scaled, 3);
    }
  }
  info->channels = channels;
  info->bit_depth = sample_bytes * 8;
  return image;
}

StatusOr<std::vector<uint8_t>> EncodePpm(const Image& image) {
  std::string header = "P6\n" + std::to_string(image.width) + " " + std::to_string(image.height) +
                       "\n255\n";
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), image.rgb.begin(), image.rgb.end());
  return out;
}

Status CheckImageShape(const Image& image) {
  if (image.width == 0 || image.height == 0) return InvalidArgumentError("image is empty");
  if (image.rgb.size() != size_t{image.width} * image.height * 3) {
    return InvalidArgumentError("image buffer size does not match its width and height");
  }
  return OkStatus();
}

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         std::equal(suffix.rbegin(), suffix.rend(), text.rbegin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
}

}  // namespace

std::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "png";
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kPnm: return "pnm";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

ImageFormat DetectImageFormat(std::span<const uint8_t> bytes) {
  auto starts_with = [&](std::span<const uint8_t> magic) {
    return bytes.size() >= magic.size() && std::equal(magic.begin(), magic.end(), bytes.begin());
  };
  if (starts_with(kPngSignature)) return ImageFormat::kPng;
  if (starts_with(kJpegSignature)) return ImageFormat::kJpeg;
  if (bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 &&
      std::memcmp(bytes.data() + 8, "WEBP", 4) == 0) {
    return ImageFormat::kWebp;
  }
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) {
    return ImageFormat::kPnm;
  }
  return ImageFormat::kUnknown;
}

StatusOr<Image> DecodeImage(std::span<const uint8_t> bytes, const ImageReadOptions& options,
                            ImageInfo* info) {
  ImageInfo local_info;
  if (info == nullptr) info = &local_info;
  *info = ImageInfo{};
  info->format = DetectImageFormat(bytes);
  switch (info->format) {
    case ImageFormat::kPng: return DecodePng(bytes, options, info);
    case ImageFormat::kJpeg: return DecodeJpeg(bytes, options, info);
    case ImageFormat::kWebp: return DecodeWebp(bytes, options, info);
    case ImageFormat::kPnm: return DecodePnm(bytes, options, info);
    case ImageFormat::kUnknown: break;
  }
  if (bytes.empty()) return CorruptError("file is empty, not an image");
  return UnsupportedError("not a PNG, JPEG, WebP or binary PPM/PGM image");
}

StatusOr<Image> ReadImage(const std::string& path, const ImageReadOptions& options,
                          ImageInfo* info) {
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  StatusOr<Image> image = DecodeImage(bytes, options, info);
  if (!image.ok()) return image.status().WithContext(IsStdio(path) ? "<stdin>" : path);
  return image;
}

StatusOr<std::vector<uint8_t>> EncodeImage(const Image& image, ImageFormat format) {
  TOK1D_RETURN_IF_ERROR(CheckImageShape(image));
  if (format == ImageFormat::kPnm) return EncodePpm(image);
  if (format != ImageFormat::kPng) {
    return UnsupportedError(std::string("cannot write ") + std::string(ImageFormatName(format)) +
                            " images; use .png or .ppm");
  }
  std::vector<uint8_t> out;
  PngWriteState state{&out, {}};
  if (!EncodePngInto(image, &state)) return InternalError("PNG encoding failed: " + state.error);
  return out;
}

ImageFormat OutputFormatForPath(const std::string& path) {
  if (EndsWith(path, ".ppm") || EndsWith(path, ".pnm")) return ImageFormat::kPnm;
  return ImageFormat::kPng;
}

Status WriteImage(const Image& image, const std::string& path, bool force, ImageFormat format) {
  if (format == ImageFormat::kUnknown) format = OutputFormatForPath(path);
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeImage(image, format));
  return WriteFileAtomically(path, bytes, force);
}

}  // namespace tok1d
