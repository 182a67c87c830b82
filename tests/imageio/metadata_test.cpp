// ICC profile and EXIF: read from PNG, JPEG and WebP, written back into PNG, and carried in
// .t1d files as zstd-compressed ancillary chunks (codec/metadata.h).
#include <doctest/doctest.h>
#include <webp/mux.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "container/t1d.h"
#include "container/token_files.h"
#include "imageio/image_io.h"
#include "imageio/metadata.h"
#include "test_images.h"

namespace tok1d {
namespace {

using testing::MakeJpeg;
using testing::MakePng;
using testing::MakeWebp;
using testing::Pattern;

constexpr uint32_t kW = 21, kH = 13;

void PutBigEndian32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// A sound ICC.1 profile of `size` bytes (a multiple of 4): a display profile for `space` data,
// PCS XYZ, D50 illuminant, no tags, then filler bytes.
std::vector<uint8_t> TestIccProfile(size_t size, const char* space = "RGB ") {
  std::vector<uint8_t> icc(size);
  for (size_t i = 132; i < size; ++i) icc[i] = static_cast<uint8_t>(i * 7 + 3);
  PutBigEndian32(&icc[0], static_cast<uint32_t>(size));
  PutBigEndian32(&icc[8], 0x04300000);  // version 4.3
  std::memcpy(&icc[12], "mntr", 4);
  std::memcpy(&icc[16], space, 4);
  std::memcpy(&icc[20], "XYZ ", 4);
  std::memcpy(&icc[36], "acsp", 4);
  PutBigEndian32(&icc[68], 0x0000F6D6);  // D50: X 0.9642, Y 1.0, Z 0.8249 (s15Fixed16)
  PutBigEndian32(&icc[72], 0x00010000);
  PutBigEndian32(&icc[76], 0x0000D32D);
  PutBigEndian32(&icc[128], 0);  // tag count
  return icc;
}

// EXIF as PNG's eXIf holds it: a big-endian TIFF header, an empty IFD, filler.
std::vector<uint8_t> TestExif(size_t size) {
  std::vector<uint8_t> exif = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0};
  for (size_t i = exif.size(); i < size; ++i) exif.push_back(static_cast<uint8_t>(i * 13 + 1));
  return exif;
}

Image TestImage() {
  const std::vector<uint16_t> samples = Pattern(kW, kH, 3, 256);
  return Image{kW, kH, std::vector<uint8_t>(samples.begin(), samples.end())};
}

std::vector<uint8_t> TestRgb() { return TestImage().rgb; }

ImageReadOptions WithMetadata() {
  ImageReadOptions options;
  options.read_icc = options.read_exif = true;
  return options;
}

// A JPEG segment: marker, big-endian length (itself included), payload.
std::vector<uint8_t> Segment(uint8_t marker, const std::vector<uint8_t>& payload) {
  const size_t length = payload.size() + 2;
  std::vector<uint8_t> out(4 + payload.size());
  out[0] = 0xFF;
  out[1] = marker;
  out[2] = static_cast<uint8_t>(length >> 8);
  out[3] = static_cast<uint8_t>(length);
  std::copy(payload.begin(), payload.end(), out.begin() + 4);
  return out;
}

// `jpeg` with APP1 Exif and the profile in APP2 ICC_PROFILE segments (ICC.1 annex B.4: at most
// 65519 profile bytes each, numbered from 1) inserted after SOI: written by hand, not by the
// library the reader uses.
std::vector<uint8_t> WithJpegMetadata(std::vector<uint8_t> jpeg, const std::vector<uint8_t>& icc,
                                      const std::vector<uint8_t>& exif) {
  std::vector<uint8_t> segments;
  if (!exif.empty()) {
    std::vector<uint8_t> payload = {'E', 'x', 'i', 'f', 0, 0};
    payload.insert(payload.end(), exif.begin(), exif.end());
    const auto app1 = Segment(0xE1, payload);
    segments.insert(segments.end(), app1.begin(), app1.end());
  }
  const size_t kPerSegment = 65519;
  const size_t count = (icc.size() + kPerSegment - 1) / kPerSegment;
  for (size_t i = 0; i < count; ++i) {
    std::vector<uint8_t> payload = {'I',
                                    'C',
                                    'C',
                                    '_',
                                    'P',
                                    'R',
                                    'O',
                                    'F',
                                    'I',
                                    'L',
                                    'E',
                                    0,
                                    static_cast<uint8_t>(i + 1),
                                    static_cast<uint8_t>(count)};
    const size_t from = i * kPerSegment, to = std::min(icc.size(), from + kPerSegment);
    payload.insert(payload.end(), icc.begin() + static_cast<long>(from),
                   icc.begin() + static_cast<long>(to));
    const auto app2 = Segment(0xE2, payload);
    segments.insert(segments.end(), app2.begin(), app2.end());
  }
  jpeg.insert(jpeg.begin() + 2, segments.begin(), segments.end());
  return jpeg;
}

// `webp` in the extended format with ICCP and EXIF chunks (libwebpmux).
std::vector<uint8_t> WithWebpMetadata(const std::vector<uint8_t>& webp,
                                      const std::vector<uint8_t>& icc,
                                      const std::vector<uint8_t>& exif) {
  const WebPData image{webp.data(), webp.size()};
  WebPMux* mux = WebPMuxCreate(&image, 1);
  REQUIRE(mux != nullptr);
  const WebPData icc_data{icc.data(), icc.size()}, exif_data{exif.data(), exif.size()};
  REQUIRE(WebPMuxSetChunk(mux, "ICCP", &icc_data, 1) == WEBP_MUX_OK);
  REQUIRE(WebPMuxSetChunk(mux, "EXIF", &exif_data, 1) == WEBP_MUX_OK);
  WebPData assembled;
  WebPDataInit(&assembled);
  REQUIRE(WebPMuxAssemble(mux, &assembled) == WEBP_MUX_OK);
  std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
  WebPDataClear(&assembled);
  WebPMuxDelete(mux);
  return out;
}

// The data of the first PNG chunk of `type`, found by walking the chunks.
std::vector<uint8_t> PngChunk(const std::vector<uint8_t>& png, const char* type) {
  for (size_t pos = 8; pos + 12 <= png.size();) {
    const size_t length = uint32_t{png[pos]} << 24 | uint32_t{png[pos + 1]} << 16 |
                          uint32_t{png[pos + 2]} << 8 | png[pos + 3];
    if (std::memcmp(&png[pos + 4], type, 4) == 0) {
      return {png.begin() + static_cast<long>(pos + 8),
              png.begin() + static_cast<long>(pos + 8 + length)};
    }
    pos += 12 + length;
  }
  return {};
}

bool HasWarning(const std::vector<std::string>& warnings, const std::string& part) {
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& w) { return w.find(part) != std::string::npos; });
}

TEST_CASE("Metadata: PNG iCCP and eXIf are written and read back, small and large") {
  for (size_t size : {size_t{256}, size_t{3000}, size_t{200'000}}) {
    CAPTURE(size);
    ImageMetadata metadata{TestIccProfile(size), TestExif(size / 2 + 20)};
    std::vector<std::string> warnings;
    auto png = EncodeImage(TestImage(), ImageFormat::kPng, &metadata, &warnings);
    REQUIRE(png.ok());
    CHECK(warnings.empty());
    CHECK(PngChunk(*png, "eXIf") == metadata.exif);  // stored as is
    CHECK(!PngChunk(*png, "iCCP").empty());          // name and zlib-compressed profile
    ImageInfo info;
    auto image = DecodeImage(*png, WithMetadata(), &info);
    REQUIRE(image.ok());
    CHECK(image->rgb == TestRgb());
    CHECK(info.metadata.icc == metadata.icc);
    CHECK(info.metadata.exif == metadata.exif);
    CHECK(info.warnings.empty());
    // Only what was asked for.
    ImageReadOptions icc_only;
    icc_only.read_icc = true;
    REQUIRE(DecodeImage(*png, icc_only, &info).ok());
    CHECK(info.metadata.icc == metadata.icc);
    CHECK(info.metadata.exif.empty());
    REQUIRE(DecodeImage(*png, {}, &info).ok());
    CHECK(info.metadata.empty());
  }
  // Without metadata the PNG has neither chunk, and PPM output says what it leaves out.
  auto plain = EncodeImage(TestImage(), ImageFormat::kPng);
  REQUIRE(plain.ok());
  CHECK(PngChunk(*plain, "iCCP").empty());
  CHECK(PngChunk(*plain, "eXIf").empty());
  const ImageMetadata metadata{TestIccProfile(200), TestExif(40)};
  std::vector<std::string> warnings;
  REQUIRE(EncodeImage(TestImage(), ImageFormat::kPnm, &metadata, &warnings).ok());
  CHECK(HasWarning(warnings, "PPM output cannot hold"));
}

TEST_CASE("Metadata: JPEG APP2 ICC_PROFILE segments and APP1 Exif are read") {
  const std::vector<uint8_t> jpeg = MakeJpeg(kW, kH, 3, TestRgb());
  for (size_t size : {size_t{560}, size_t{65'520}, size_t{150'000}}) {  // 1, 2 and 3 segments
    CAPTURE(size);
    const std::vector<uint8_t> icc = TestIccProfile(size), exif = TestExif(1000);
    ImageInfo info;
    auto image = DecodeImage(WithJpegMetadata(jpeg, icc, exif), WithMetadata(), &info);
    REQUIRE(image.ok());
    CHECK(info.metadata.icc == icc);
    CHECK(info.metadata.exif == exif);  // without the "Exif\0\0" prefix
    CHECK(image->rgb == DecodeImage(jpeg)->rgb);
  }
  // A CMYK JPEG's profile describes CMYK, not the RGB tok1d codes.
  std::vector<uint8_t> cmyk(size_t{kW} * kH * 4, 100);
  ImageInfo info;
  auto image = DecodeImage(
      WithJpegMetadata(MakeJpeg(kW, kH, 4, cmyk), TestIccProfile(400, "CMYK"), TestExif(30)),
      WithMetadata(), &info);
  REQUIRE(image.ok());
  CHECK(info.metadata.icc.empty());
  CHECK(info.metadata.exif == TestExif(30));
  CHECK(HasWarning(info.warnings, "ICC profile is for CMYK data"));
}

TEST_CASE("Metadata: WebP ICCP and EXIF chunks are read") {
  const std::vector<uint8_t> icc = TestIccProfile(1024), exif = TestExif(300);
  ImageInfo info;
  auto image = DecodeImage(WithWebpMetadata(MakeWebp(kW, kH, 3, TestRgb()), icc, exif),
                           WithMetadata(), &info);
  REQUIRE(image.ok());
  CHECK(image->rgb == TestRgb());  // lossless
  CHECK(info.metadata.icc == icc);
  CHECK(info.metadata.exif == exif);
}

TEST_CASE("Metadata: profiles and EXIF that cannot go into an RGB PNG are not kept") {
  const std::vector<uint8_t> jpeg = MakeJpeg(kW, kH, 3, TestRgb());
  std::vector<uint8_t> bad_magic = TestIccProfile(256);
  bad_magic[36] = 'x';
  std::vector<uint8_t> bad_size = TestIccProfile(256);
  bad_size[2] ^= 1;
  for (const auto& icc : {bad_magic, bad_size, TestIccProfile(256, "GRAY")}) {
    ImageInfo info;
    REQUIRE(DecodeImage(WithJpegMetadata(jpeg, icc, {}), WithMetadata(), &info).ok());
    CHECK(info.metadata.icc.empty());
    CHECK(HasWarning(info.warnings, "ICC profile"));
  }
  std::vector<uint8_t> not_tiff = TestExif(64);
  not_tiff[0] = 'X';
  ImageInfo info;
  REQUIRE(DecodeImage(WithJpegMetadata(jpeg, {}, not_tiff), WithMetadata(), &info).ok());
  CHECK(info.metadata.exif.empty());
  CHECK(HasWarning(info.warnings, "TIFF header"));
  // Nothing is said when nothing was asked for.
  REQUIRE(DecodeImage(WithJpegMetadata(jpeg, bad_magic, not_tiff), {}, &info).ok());
  CHECK(info.warnings.empty());
}

TEST_CASE("Metadata: --metadata lists") {
  auto parse = [](const char* list) { return ParseMetadataList(list); };
  CHECK((parse("all")->icc && parse("all")->exif));
  CHECK((!parse("none")->icc && !parse("none")->exif));
  CHECK((parse("icc")->icc && !parse("icc")->exif));
  CHECK((!parse("exif")->icc && parse("exif")->exif));
  CHECK((parse("exif,icc")->icc && parse("exif,icc")->exif));
  CHECK((parse("none,exif")->exif));
  for (const char* bad : {"", "xmp", "icc,", "ICC", "all exif"}) {
    CAPTURE(bad);
    CHECK(parse(bad).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(parse("icc,xmp").status().message().find("'xmp'") != std::string::npos);
}

TokenFile FileWithMetadata(const ImageMetadata& metadata, const MetadataSelection& selection) {
  TokenFile file = testing::MakeTokenFile(testing::TokenFileSpec{}, 1);
  file.extra_chunks = *MetadataChunks(metadata, selection);
  return file;
}

TEST_CASE("Metadata: zstd chunks round trip through a .t1d file and survive trim") {
  const ImageMetadata metadata{TestIccProfile(3000), TestExif(5000)};
  for (const char* list : {"all", "icc", "exif", "none"}) {
    CAPTURE(list);
    const MetadataSelection selection = *ParseMetadataList(list);
    const TokenFile file = FileWithMetadata(metadata, selection);
    CHECK(file.extra_chunks.size() == size_t{selection.icc} + size_t{selection.exif});
    for (const T1dChunk& chunk : file.extra_chunks) {
      CHECK(chunk.ancillary());
      CHECK(chunk.data.size() < (chunk.type == kIccChunkType ? 3000u : 5000u));  // compressed
    }
    auto bytes = WriteT1d(file);
    REQUIRE(bytes.ok());
    for (const std::vector<uint8_t>& t1d : {*bytes, *TrimT1dBytes(*bytes, 2)}) {
      auto read = ReadT1d(t1d);
      REQUIRE(read.ok());
      std::vector<std::string> warnings;
      const ImageMetadata back = MetadataFromChunks(read->extra_chunks, &warnings);
      CHECK(warnings.empty());
      CHECK(back.icc == (selection.icc ? metadata.icc : std::vector<uint8_t>{}));
      CHECK(back.exif == (selection.exif ? metadata.exif : std::vector<uint8_t>{}));
      auto info = ReadT1dHeader(t1d);
      REQUIRE(info.ok());
      for (const T1dChunk& chunk : info->extra_chunks) {
        CHECK(MetadataChunkContentSize(chunk.data) ==
              (chunk.type == kIccChunkType ? 3000u : 5000u));
      }
    }
  }
  CHECK(MetadataChunkName(kIccChunkType) == "ICC profile");
  CHECK(MetadataChunkName(kExifChunkType) == "EXIF");
  CHECK(MetadataChunkName({'n', 'o', 't', 'e'}).empty());
}

TEST_CASE("Metadata: a chunk that does not decompress is left out with a warning") {
  const ImageMetadata metadata{TestIccProfile(3000), TestExif(5000)};
  const std::vector<T1dChunk> good = *MetadataChunks(metadata, {true, true});
  REQUIRE(good.size() == 2);
  const std::vector<uint8_t> frame = good[0].data;

  std::vector<uint8_t> no_size(ZSTD_compressBound(metadata.icc.size()));
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  const size_t no_size_length = ZSTD_compress2(cctx, no_size.data(), no_size.size(),
                                               metadata.icc.data(), metadata.icc.size());
  ZSTD_freeCCtx(cctx);
  REQUIRE(!ZSTD_isError(no_size_length));
  no_size.resize(no_size_length);

  std::vector<uint8_t> damaged = frame;
  damaged[damaged.size() / 2] ^= 0x5A;
  damaged.back() ^= 0x01;  // the frame's checksum or last block
  std::vector<uint8_t> trailing = frame;
  trailing.push_back(0);
  // A frame header that declares 1 GiB (single segment, 8-byte content size), no blocks.
  const std::vector<uint8_t> huge = {0x28, 0xB5, 0x2F, 0xFD, 0xE0, 0, 0, 0, 0x40, 0, 0, 0, 0};
  const std::vector<uint8_t> truncated(frame.begin(),
                                       frame.begin() + static_cast<long>(frame.size() / 2));

  const struct {
    std::vector<uint8_t> data;
    const char* message;
  } cases[] = {
      {{'n', 'o', 't', ' ', 'z', 's', 't', 'd'}, "not a zstd frame"},
      {{}, "not a zstd frame"},
      {no_size, "without a content size"},
      {damaged, "zstd"},
      {trailing, "after the zstd frame"},
      {huge, "over the limit"},
      {truncated, "zstd"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    const std::vector<T1dChunk> chunks = {{kIccChunkType, c.data}, good[1]};
    std::vector<std::string> warnings;
    const ImageMetadata back = MetadataFromChunks(chunks, &warnings);
    CHECK(back.icc.empty());
    CHECK(back.exif == metadata.exif);  // the other chunk is unaffected
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("chunk 'iccp'") != std::string::npos);
    CHECK(warnings[0].find(c.message) != std::string::npos);
    CHECK(warnings[0].find("ICC profile is left out") != std::string::npos);
    // The file itself is fine: metadata is ancillary.
    TokenFile file = testing::MakeTokenFile(testing::TokenFileSpec{}, 1);
    file.extra_chunks = chunks;
    CHECK(ReadT1d(*WriteT1d(file)).ok());
  }
  // Only the first chunk of a type counts.
  std::vector<std::string> warnings;
  const std::vector<T1dChunk> twice = {good[0], {kIccChunkType, {1, 2, 3}}};
  CHECK(MetadataFromChunks(twice, &warnings).icc == metadata.icc);
  CHECK(warnings.empty());
}

}  // namespace
}  // namespace tok1d
