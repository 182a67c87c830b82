#include "eval/baselines.h"

#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <webp/encode.h>

namespace tok1d {
namespace {

// libjpeg reports errors by calling error_exit, which must not return: jump back instead.
struct JpegErrors {
  jpeg_error_mgr manager;  // first member: libjpeg passes a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

// Warnings ("quantization tables are too coarse for baseline JPEG" below quality ~25) are
// expected here; libjpeg would print them to stderr.
void JpegIgnoreMessage(j_common_ptr) {}

void JpegErrorExit(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  errors->manager.format_message(cinfo, errors->message);
  longjmp(errors->jump, 1);
}

// Everything that must survive the longjmp lives here, not in locals of the setjmp caller.
struct JpegEncodeState {
  jpeg_compress_struct cinfo{};
  JpegErrors errors{};
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
};

bool CompressJpeg(const Image& image, int quality, JpegEncodeState* state) {
  jpeg_compress_struct* cinfo = &state->cinfo;
  cinfo->err = jpeg_std_error(&state->errors.manager);
  state->errors.manager.error_exit = JpegErrorExit;
  state->errors.manager.output_message = JpegIgnoreMessage;
  if (setjmp(state->errors.jump)) {
    jpeg_destroy_compress(cinfo);
    return false;
  }
  jpeg_create_compress(cinfo);
  jpeg_mem_dest(cinfo, &state->buffer, &state->size);
  cinfo->image_width = image.width;
  cinfo->image_height = image.height;
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);  // YCbCr 4:2:0, JDCT_ISLOW, as cjpeg
  jpeg_set_quality(cinfo, quality, /*force_baseline=*/FALSE);
  cinfo->optimize_coding = TRUE;
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = size_t{image.width} * 3;
  while (cinfo->next_scanline < cinfo->image_height) {
    // libjpeg takes non-const rows but does not write to them.
    JSAMPROW row = const_cast<JSAMPROW>(&image.rgb[cinfo->next_scanline * stride]);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  jpeg_destroy_compress(cinfo);
  return true;
}

}  // namespace

StatusOr<std::vector<uint8_t>> EncodeJpeg(const Image& image, int quality) {
  if (quality < 1 || quality > 100) {
    return InvalidArgumentError("JPEG quality " + std::to_string(quality) + " is not in 1..100");
  }
  JpegEncodeState state;
  const bool ok = CompressJpeg(image, quality, &state);
  std::vector<uint8_t> bytes;
  if (ok) bytes.assign(state.buffer, state.buffer + state.size);
  std::free(state.buffer);  // allocated by jpeg_mem_dest with malloc
  if (!ok) return InternalError(std::string("JPEG encoding failed: ") + state.errors.message);
  return bytes;
}

StatusOr<std::vector<uint8_t>> EncodeWebp(const Image& image, int quality) {
  if (quality < 0 || quality > 100) {
    return InvalidArgumentError("WebP quality " + std::to_string(quality) + " is not in 0..100");
  }
  WebPConfig config;
  WebPPicture picture;
  if (!WebPConfigInit(&config) || !WebPPictureInit(&picture)) {
    return InternalError("libwebp: version mismatch between headers and library");
  }
  config.quality = static_cast<float>(quality);
  config.method = 6;
  picture.width = static_cast<int>(image.width);
  picture.height = static_cast<int>(image.height);
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  const bool ok =
      WebPPictureImportRGB(&picture, image.rgb.data(), static_cast<int>(image.width * 3)) &&
      WebPEncode(&config, &picture);
  const int error = picture.error_code;
  WebPPictureFree(&picture);
  std::vector<uint8_t> bytes(writer.mem, writer.mem + writer.size);
  WebPMemoryWriterClear(&writer);
  if (!ok)
    return InternalError("WebP encoding failed (libwebp error " + std::to_string(error) + ")");
  return bytes;
}

}  // namespace tok1d
