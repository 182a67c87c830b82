#include "imageio/image_io.h"

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include "common/file_util.h"
#include "imageio/orientation.h"

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

// ---- metadata -------------------------------------------------------------------------------

constexpr size_t kIccHeaderSize = 128 + 4;  // header and tag count (ICC.1, 7.2 and 7.3)
constexpr uint8_t kExifPrefix[6] = {'E', 'x', 'i', 'f', 0, 0};  // of JPEG's APP1 (and some WebP)

uint32_t BigEndian32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// Keeps what the caller asked for and what can go into an RGB PNG: an ICC profile with a sound
// header for RGB data, EXIF with a TIFF header. Anything else is dropped with a warning.
void KeepMetadata(ImageMetadata found, const ImageReadOptions& options, ImageInfo* info) {
  if (options.read_icc && !found.icc.empty()) {
    const std::vector<uint8_t>& icc = found.icc;
    if (icc.size() < kIccHeaderSize || BigEndian32(icc.data()) != icc.size() ||
        std::memcmp(&icc[36], "acsp", 4) != 0) {
      info->warnings.push_back("its ICC profile is malformed and is not kept");
    } else if (std::memcmp(&icc[16], "RGB ", 4) != 0) {
      std::string space(icc.begin() + 16, icc.begin() + 20);
      while (!space.empty() && space.back() == ' ') space.pop_back();
      for (char& c : space) c = (c >= 0x20 && c <= 0x7E) ? c : '?';
      info->warnings.push_back("its ICC profile is for " + space +
                               " data, not the RGB that tok1d codes, and is not kept");
    } else {
      info->metadata.icc = std::move(found.icc);
    }
  }
  if (options.read_exif && !found.exif.empty()) {
    std::vector<uint8_t>& exif = found.exif;
    if (exif.size() >= sizeof(kExifPrefix) &&
        std::equal(std::begin(kExifPrefix), std::end(kExifPrefix), exif.begin())) {
      exif.erase(exif.begin(), exif.begin() + sizeof(kExifPrefix));
    }
    const bool tiff = exif.size() >= 8 && (std::memcmp(exif.data(), "II*\0", 4) == 0 ||
                                           std::memcmp(exif.data(), "MM\0*", 4) == 0);
    if (tiff) {
      info->metadata.exif = std::move(exif);
    } else {
      info->warnings.push_back("its EXIF data does not start with a TIFF header and is not kept");
    }
  }
}

// EXIF is read for the caller (read_exif) or for its orientation tag.
bool WantExif(const ImageReadOptions& options) {
  return options.read_exif || options.apply_orientation;
}

// Turns `image` upright per the orientation tag in the EXIF found (if asked to), then keeps
// the metadata asked for; kept EXIF then says orientation 1 ("as stored"), which the pixels
// now are.
void FinishMetadata(ImageMetadata found, const ImageReadOptions& options, Image* image,
                    ImageInfo* info) {
  if (options.apply_orientation && !found.exif.empty()) {
    const uint32_t orientation = ExifOrientation(found.exif);
    if (orientation >= 2) {
      OrientUpright(orientation, image);
      info->orientation_applied = orientation;
      ResetExifOrientation(found.exif);
    }
  }
  KeepMetadata(std::move(found), options, info);
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
  bool translucent =
      CompositeOverBackground(pixels.data(), count, options.background, image->rgb.data());
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
  ImageMetadata metadata;   // as found, if asked for
  std::string icc_warning;  // libpng's, when it refuses an iCCP chunk
};

// iCCP and eXIf of `png_info` (before or after the image data), if asked for and not yet seen.
void ReadPngMetadata(png_structp png, png_infop png_info, PngState* state) {
  if (state->options->read_icc && state->metadata.icc.empty() &&
      png_get_valid(png, png_info, PNG_INFO_iCCP) != 0) {
    png_charp name = nullptr;
    int compression = 0;
    png_bytep profile = nullptr;
    png_uint_32 length = 0;
    if (png_get_iCCP(png, png_info, &name, &compression, &profile, &length) != 0) {
      state->metadata.icc.assign(profile, profile + length);
    }
  }
  if (WantExif(*state->options) && state->metadata.exif.empty() &&
      png_get_valid(png, png_info, PNG_INFO_eXIf) != 0) {
    png_bytep exif = nullptr;
    png_uint_32 length = 0;
    if (png_get_eXIf_1(png, png_info, &length, &exif) != 0) {
      state->metadata.exif.assign(exif, exif + length);
    }
  }
}

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

// Reading: libpng's warnings (e.g. "iCCP: known incorrect sRGB profile") are ignored, but one
// about the iCCP chunk explains a profile it refused (gray in a colour PNG, a damaged one).
void PngReadWarning(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  if (std::strncmp(message, "iCCP", 4) == 0) state->icc_warning = message;
}

// Returns false on error (state->status says why).
bool DecodePngInto(PngState* state) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, PngError, PngReadWarning);
  if (png == nullptr) return false;
  png_infop png_info = png_create_info_struct(png);
  png_infop end_info = png_create_info_struct(png);  // chunks after the image data (eXIf)
  if (png_info == nullptr || end_info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &png_info, &end_info);
    return false;
  }
  png_set_read_fn(png, state, PngRead);
  png_read_info(png, png_info);
  ReadPngMetadata(png, png_info, state);
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
    png_destroy_read_struct(&png, &png_info, &end_info);
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
    png_destroy_read_struct(&png, &png_info, &end_info);
    return false;
  }
  state->pixels.resize(size_t{width} * height * channels);
  state->rows.resize(height);
  for (size_t y = 0; y < height; ++y) state->rows[y] = &state->pixels[y * width * channels];
  png_read_image(png, state->rows.data());
  png_read_end(png, end_info);  // reaches IEND: catches files cut after the image data
  ReadPngMetadata(png, end_info, state);
  png_destroy_read_struct(&png, &png_info, &end_info);
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
  if (options.read_icc && state.metadata.icc.empty() && !state.icc_warning.empty()) {
    info->warnings.push_back("its ICC profile is not kept: libpng refuses it (" +
                             state.icc_warning + ")");
  }
  FinishMetadata(std::move(state.metadata), options, &image, info);
  return image;
}

struct PngWriteState {
  std::vector<uint8_t>* out = nullptr;
  const ImageMetadata* metadata = nullptr;
  std::string error;
  std::string last_warning;           // libpng's
  std::vector<std::string> warnings;  // for the user
};

void PngWriteWarning(png_structp png, png_const_charp message) {
  static_cast<PngWriteState*>(png_get_error_ptr(png))->last_warning = message;
}

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
      png_create_write_struct(PNG_LIBPNG_VER_STRING, state, PngWriteError, PngWriteWarning);
  if (png == nullptr) return false;
  png_infop png_info = png_create_info_struct(png);
  if (png_info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &png_info);
    return false;
  }
  png_set_write_fn(png, state, PngWrite, nullptr);
  png_set_IHDR(png, png_info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (state->metadata != nullptr) {
    // A profile libpng finds unsound is a warning, and left out, not a failed image.
    png_set_benign_errors(png, 1);
    const std::vector<uint8_t>& icc = state->metadata->icc;
    if (!icc.empty() && icc.size() <= UINT32_MAX) {
      png_set_iCCP(png, png_info, "ICC profile", PNG_COMPRESSION_TYPE_BASE, icc.data(),
                   static_cast<png_uint_32>(icc.size()));
      if (png_get_valid(png, png_info, PNG_INFO_iCCP) == 0) {
        state->warnings.push_back("the ICC profile is left out: libpng refuses it (" +
                                  state->last_warning + ")");
      }
    }
    const std::vector<uint8_t>& exif = state->metadata->exif;
    if (!exif.empty() && exif.size() <= UINT32_MAX) {
      // libpng's API is not const-correct; it copies the bytes.
      png_set_eXIf_1(png, png_info, static_cast<png_uint_32>(exif.size()),
                     const_cast<png_bytep>(exif.data()));
    }
  }
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
  ImageMetadata metadata;       // as found, if asked for
};

// The ICC profile (APP2 "ICC_PROFILE" segments, joined by libjpeg-turbo) and the first APP1
// "Exif" segment, from the markers jpeg_read_header saved.
void ReadJpegMetadata(JpegState* state) {
  jpeg_decompress_struct* cinfo = &state->cinfo;
  if (state->options->read_icc) {
    JOCTET* icc = nullptr;
    unsigned int length = 0;
    if (jpeg_read_icc_profile(cinfo, &icc, &length)) {
      state->metadata.icc.assign(icc, icc + length);
      std::free(icc);  // malloc'ed by libjpeg-turbo
    }
  }
  if (WantExif(*state->options)) {
    for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker != nullptr;
         marker = marker->next) {
      if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= sizeof(kExifPrefix) &&
          std::memcmp(marker->data, kExifPrefix, sizeof(kExifPrefix)) == 0) {
        state->metadata.exif.assign(marker->data, marker->data + marker->data_length);
        break;
      }
    }
  }
}

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
  if (state->options->read_icc) jpeg_save_markers(cinfo, JPEG_APP0 + 2, 0xFFFF);
  if (WantExif(*state->options)) jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(cinfo, TRUE);
  ReadJpegMetadata(state);
  state->status =
      CheckPixelLimit(cinfo->image_width, cinfo->image_height, state->options->max_pixels);
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
      state->status =
          UnsupportedError("JPEG colour space " + std::to_string(cinfo->jpeg_color_space) +
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
  FinishMetadata(std::move(state->metadata), options, &image, info);
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
      has_alpha
          ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), pixels.data(), pixels.size(), stride)
          : WebPDecodeRGBInto(bytes.data(), bytes.size(), pixels.data(), pixels.size(), stride);
  if (decoded == nullptr) return CorruptError("invalid or truncated WebP image data");
  info->channels = channels;
  Image image{width, height, {}};
  FinishRgbOrRgba(std::move(pixels), has_alpha, options, &image, info);
  if (options.read_icc || WantExif(options)) {
    // The ICCP and EXIF chunks of the extended format (VP8X), through the demuxer.
    ImageMetadata found;
    WebPData data{bytes.data(), bytes.size()};
    WebPDemuxer* demux = WebPDemux(&data);
    if (demux != nullptr) {
      WebPChunkIterator chunk;
      if (options.read_icc && WebPDemuxGetChunk(demux, "ICCP", 1, &chunk) != 0) {
        found.icc.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
        WebPDemuxReleaseChunkIterator(&chunk);
      }
      if (WantExif(options) && WebPDemuxGetChunk(demux, "EXIF", 1, &chunk) != 0) {
        found.exif.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
        WebPDemuxReleaseChunkIterator(&chunk);
      }
      WebPDemuxDelete(demux);
    }
    FinishMetadata(std::move(found), options, &image, info);
  }
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
      if (pos_ >= bytes_.size())
        return TruncatedError(std::string("PNM header ends before ") + what);
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
  if (data.size() < samples * sample_bytes)
    return TruncatedError("PNM file ends early (truncated)");

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
  std::string header =
      "P6\n" + std::to_string(image.width) + " " + std::to_string(image.height) + "\n255\n";
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
         std::equal(suffix.rbegin(), suffix.rend(), text.rbegin(), [](char a, char b) {
           return a == std::tolower(static_cast<unsigned char>(b));
         });
}

}  // namespace

std::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kPnm:
      return "pnm";
    case ImageFormat::kUnknown:
      break;
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
    case ImageFormat::kPng:
      return DecodePng(bytes, options, info);
    case ImageFormat::kJpeg:
      return DecodeJpeg(bytes, options, info);
    case ImageFormat::kWebp:
      return DecodeWebp(bytes, options, info);
    case ImageFormat::kPnm:
      return DecodePnm(bytes, options, info);
    case ImageFormat::kUnknown:
      break;
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

StatusOr<std::vector<uint8_t>> EncodeImage(const Image& image, ImageFormat format,
                                           const ImageMetadata* metadata,
                                           std::vector<std::string>* warnings) {
  TOK1D_RETURN_IF_ERROR(CheckImageShape(image));
  const bool has_metadata = metadata != nullptr && !metadata->empty();
  if (format == ImageFormat::kPnm) {
    if (has_metadata && warnings != nullptr) {
      warnings->push_back("PPM output cannot hold the ICC profile or EXIF; they are left out");
    }
    return EncodePpm(image);
  }
  if (format != ImageFormat::kPng) {
    return UnsupportedError(std::string("cannot write ") + std::string(ImageFormatName(format)) +
                            " images; use .png or .ppm");
  }
  std::vector<uint8_t> out;
  PngWriteState state{&out, has_metadata ? metadata : nullptr, {}, {}, {}};
  if (!EncodePngInto(image, &state)) return InternalError("PNG encoding failed: " + state.error);
  if (warnings != nullptr) {
    warnings->insert(warnings->end(), state.warnings.begin(), state.warnings.end());
  }
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
