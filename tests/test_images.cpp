#include "test_images.h"

#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string_view>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>
#include <webp/mux.h>

namespace tok1d::testing {
namespace {

void AppendPngBytes(png_structp png, png_bytep data, size_t length) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + length);
}

int ChannelsOf(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
      return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return 2;
    case PNG_COLOR_TYPE_RGB:
      return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      return 4;
    case PNG_COLOR_TYPE_PALETTE:
      return 1;
  }
  throw std::invalid_argument("unknown PNG colour type");
}

}  // namespace

std::vector<uint16_t> Pattern(uint32_t width, uint32_t height, int channels, uint32_t limit) {
  std::vector<uint16_t> samples;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        uint32_t value = (x * 37 + y * 101 + static_cast<uint32_t>(c) * 59 + x * y * 7) % limit;
        samples.push_back(static_cast<uint16_t>(value));
      }
    }
  }
  return samples;
}

std::vector<uint8_t> MakePng(uint32_t width, uint32_t height, int color_type, int bit_depth,
                             const std::vector<uint16_t>& samples,
                             const std::vector<uint8_t>& palette,
                             const std::vector<uint16_t>& trns) {
  const int channels = ChannelsOf(color_type);
  // Pack rows first so that nothing with a destructor is created after setjmp.
  const size_t row_bytes = (size_t{width} * static_cast<size_t>(channels * bit_depth) + 7) / 8;
  std::vector<uint8_t> packed(row_bytes * height, 0);
  for (uint32_t y = 0; y < height; ++y) {
    uint8_t* row = &packed[y * row_bytes];
    for (size_t i = 0; i < size_t{width} * static_cast<size_t>(channels); ++i) {
      uint32_t v = samples[y * width * static_cast<size_t>(channels) + i];
      if (bit_depth == 16) {
        row[2 * i] = static_cast<uint8_t>(v >> 8);
        row[2 * i + 1] = static_cast<uint8_t>(v);
      } else {
        size_t bit = i * static_cast<size_t>(bit_depth);
        const auto shift = static_cast<uint32_t>(8 - bit_depth) - static_cast<uint32_t>(bit % 8);
        row[bit / 8] = static_cast<uint8_t>(row[bit / 8] | (v << shift));
      }
    }
  }
  std::vector<png_color> colors;
  for (size_t i = 0; i + 2 < palette.size(); i += 3)
    colors.push_back({palette[i], palette[i + 1], palette[i + 2]});
  std::vector<uint8_t> alpha8(trns.begin(), trns.end());
  png_color_16 trns_color{};
  if (!trns.empty() && color_type == PNG_COLOR_TYPE_GRAY) trns_color.gray = trns[0];
  if (!trns.empty() && color_type == PNG_COLOR_TYPE_RGB) {
    trns_color.red = trns[0];
    trns_color.green = trns[1];
    trns_color.blue = trns[2];
  }
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng failed to write the test image");
  }
  png_set_write_fn(png, &out, AppendPngBytes, nullptr);
  png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_set_PLTE(png, info, colors.data(), static_cast<int>(colors.size()));
  }
  if (!trns.empty()) {
    png_set_tRNS(png, info, alpha8.data(), static_cast<int>(alpha8.size()), &trns_color);
  }
  png_write_info(png, info);
  for (uint32_t y = 0; y < height; ++y) png_write_row(png, &packed[y * row_bytes]);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

namespace {
struct JpegErrors {
  jpeg_error_mgr manager;
  jmp_buf jump;
};
void JpegFail(j_common_ptr cinfo) { longjmp(reinterpret_cast<JpegErrors*>(cinfo->err)->jump, 1); }
}  // namespace

std::vector<uint8_t> MakeJpeg(uint32_t width, uint32_t height, int channels,
                              const std::vector<uint8_t>& samples, bool ycck) {
  jpeg_compress_struct cinfo{};
  JpegErrors errors{};
  cinfo.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = JpegFail;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (setjmp(errors.jump)) {
    jpeg_destroy_compress(&cinfo);
    throw std::runtime_error("libjpeg failed to write the test image");
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  if (ycck) jpeg_set_colorspace(&cinfo, JCS_YCCK);
  jpeg_set_quality(&cinfo, 95, TRUE);
  cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = 1;  // no chroma subsampling
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    auto* row = const_cast<JSAMPLE*>(
        &samples[size_t{cinfo.next_scanline} * width * static_cast<size_t>(channels)]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::vector<uint8_t> out(buffer, buffer + size);
  free(buffer);
  return out;
}

std::vector<uint8_t> MakeWebp(uint32_t width, uint32_t height, int channels,
                              const std::vector<uint8_t>& samples) {
  uint8_t* buffer = nullptr;
  const int w = static_cast<int>(width), h = static_cast<int>(height);
  size_t size = channels == 4 ? WebPEncodeLosslessRGBA(samples.data(), w, h, w * 4, &buffer)
                              : WebPEncodeLosslessRGB(samples.data(), w, h, w * 3, &buffer);
  if (size == 0) throw std::runtime_error("libwebp failed to write the test image");
  std::vector<uint8_t> out(buffer, buffer + size);
  WebPFree(buffer);
  return out;
}

namespace {

// Appends `value` in `size` bytes, big- or little-endian.
void PutUint(std::vector<uint8_t>* out, uint32_t value, size_t size, bool big_endian) {
  for (size_t i = 0; i < size; ++i) {
    const size_t shift = 8 * (big_endian ? size - 1 - i : i);
    out->push_back(static_cast<uint8_t>(value >> shift));
  }
}

// Appends the bytes of `text` (byte by byte: GCC 12 warns wrongly about vector::insert here).
void PutBytes(std::vector<uint8_t>* out, std::string_view text) {
  for (char c : text) out->push_back(static_cast<uint8_t>(c));
}

// CRC-32 of PNG chunks (ISO 3309, as in the PNG specification's annex D).
uint32_t Crc32(const uint8_t* data, size_t size, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace

std::vector<uint8_t> MakeExifWithOrientation(uint32_t orientation, bool big_endian,
                                             bool long_type) {
  std::vector<uint8_t> exif;
  const auto u16 = [&](uint32_t v) { PutUint(&exif, v, 2, big_endian); };
  const auto u32 = [&](uint32_t v) { PutUint(&exif, v, 4, big_endian); };
  PutBytes(&exif, big_endian ? "MM" : "II");
  u16(42);
  u32(8);  // IFD0
  constexpr uint32_t kEntries = 3;
  const uint32_t data_offset = 8 + 2 + kEntries * 12 + 4;
  u16(kEntries);
  u16(0x010F);  // Make: ASCII, 6 bytes, stored after the IFD
  u16(2);
  u32(6);
  u32(data_offset);
  u16(0x0112);  // Orientation
  if (long_type) {
    u16(4);
    u32(1);
    u32(orientation);
  } else {
    u16(3);
    u32(1);
    u16(orientation);
    u16(0);
  }
  u16(0x011A);  // XResolution: RATIONAL, after Make
  u16(5);
  u32(1);
  u32(data_offset + 6);
  u32(0);  // no IFD1
  PutBytes(&exif, std::string_view("tok1d\0", 6));
  u32(72);
  u32(1);
  return exif;
}

std::vector<uint8_t> WithJpegExif(std::vector<uint8_t> jpeg, const std::vector<uint8_t>& exif) {
  std::vector<uint8_t> segment = {0xFF, 0xE1};
  PutUint(&segment, static_cast<uint32_t>(2 + 6 + exif.size()), 2, true);
  PutBytes(&segment, std::string_view("Exif\0\0", 6));
  for (uint8_t byte : exif) segment.push_back(byte);
  jpeg.insert(jpeg.begin() + 2, segment.begin(), segment.end());
  return jpeg;
}

std::vector<uint8_t> WithPngExif(const std::vector<uint8_t>& png, const std::vector<uint8_t>& exif,
                                 bool after_image_data) {
  std::vector<uint8_t> chunk;
  PutUint(&chunk, static_cast<uint32_t>(exif.size()), 4, true);
  PutBytes(&chunk, "eXIf");
  for (uint8_t byte : exif) chunk.push_back(byte);
  PutUint(&chunk, Crc32(chunk.data() + 4, chunk.size() - 4), 4, true);
  constexpr size_t kAfterIhdr = 8 + 8 + 13 + 4;  // signature, IHDR
  constexpr size_t kIendSize = 12;
  if (png.size() < kAfterIhdr + kIendSize) throw std::invalid_argument("not a PNG");
  const size_t at = after_image_data ? png.size() - kIendSize : kAfterIhdr;
  std::vector<uint8_t> out(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(at));
  out.insert(out.end(), chunk.begin(), chunk.end());
  out.insert(out.end(), png.begin() + static_cast<std::ptrdiff_t>(at), png.end());
  return out;
}

std::vector<uint8_t> WithWebpExif(const std::vector<uint8_t>& webp,
                                  const std::vector<uint8_t>& exif) {
  const WebPData image{webp.data(), webp.size()};
  WebPMux* mux = WebPMuxCreate(&image, 1);
  if (mux == nullptr) throw std::runtime_error("libwebpmux cannot read the test image");
  const WebPData exif_data{exif.data(), exif.size()};
  WebPData assembled;
  WebPDataInit(&assembled);
  const bool ok = WebPMuxSetChunk(mux, "EXIF", &exif_data, 1) == WEBP_MUX_OK &&
                  WebPMuxAssemble(mux, &assembled) == WEBP_MUX_OK;
  WebPMuxDelete(mux);
  if (!ok) throw std::runtime_error("libwebpmux failed to add EXIF");
  std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
  WebPDataClear(&assembled);
  return out;
}

}  // namespace tok1d::testing
