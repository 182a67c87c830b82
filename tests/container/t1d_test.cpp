#include <doctest/doctest.h>

#include <algorithm>

#include "container/golden.h"
#include "container/t1d.h"
#include "container/token_files.h"

namespace tok1d {
namespace {

using testing::MakeTokenFile;
using testing::RandomCounts;
using testing::Rng;
using testing::TokenFileSpec;

std::vector<uint8_t> Write(const TokenFile& file, const LayerCoder* coder = nullptr) {
  auto bytes = WriteT1d(file, coder);
  REQUIRE_MESSAGE(bytes.ok(), bytes.status().message());
  return *bytes;
}

TokenFile Read(std::span<const uint8_t> bytes, const LayerCoder* coder = nullptr) {
  auto file = ReadT1d(bytes, {}, nullptr, coder);
  REQUIRE_MESSAGE(file.ok(), file.status().message());
  return *file;
}

void CheckSameHeader(const T1dHeader& a, const T1dHeader& b) {
  CHECK(a.width == b.width);
  CHECK(a.height == b.height);
  CHECK(a.tile_size == b.tile_size);
  CHECK(a.tile_cols == b.tile_cols);
  CHECK(a.tile_rows == b.tile_rows);
  CHECK(a.alpha_composited == b.alpha_composited);
  CHECK(a.background == b.background);
  CHECK(a.model.name == b.model.name);
  CHECK(a.model.sha256 == b.model.sha256);
  CHECK(a.fsq_levels == b.fsq_levels);
  CHECK(a.max_tokens == b.max_tokens);
  CHECK(a.entropy_coder == b.entropy_coder);
  CHECK(a.coder_params == b.coder_params);
  CHECK(a.tokens_per_tile == b.tokens_per_tile);
}

// A spec per FSQ shape, covering 1 to 32 bits per token and several grids.
std::vector<TokenFileSpec> Specs() {
  std::vector<TokenFileSpec> specs;
  const std::vector<std::vector<uint32_t>> shapes = {
      {2}, {3}, {8, 5, 5, 5}, {7, 5, 5, 5, 5}, {8, 8, 8, 8}, {255, 255, 255, 255}, {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}};
  uint32_t size = 1;
  for (const auto& levels : shapes) {
    TokenFileSpec spec;
    spec.fsq_levels = levels;
    spec.width = size;
    spec.height = 70 - size;
    spec.tile_size = 16;
    spec.max_tokens = 1 + size % 9;
    specs.push_back(spec);
    size += 11;
  }
  return specs;
}

TEST_CASE("Round trip: uniform counts, 1 to 32 bits per token") {
  uint64_t seed = 10;
  for (TokenFileSpec spec : Specs()) {
    CAPTURE(spec.fsq_levels.size());
    TokenFile file = MakeTokenFile(spec, seed++);
    file.tokens[0][0] = static_cast<uint32_t>(file.header.codebook_size() - 1);  // largest token
    TokenFile back = Read(Write(file));
    CheckSameHeader(back.header, file.header);
    CHECK(back.tokens == file.tokens);
  }
}

TEST_CASE("Round trip: random per-tile counts, alpha, ancillary chunks") {
  Rng rng(42);
  for (int round = 0; round < 40; ++round) {
    TokenFileSpec spec = Specs()[static_cast<size_t>(round) % Specs().size()];
    spec.counts = RandomCounts(spec, rng);
    TokenFile file = MakeTokenFile(spec, rng.Next());
    file.header.alpha_composited = round % 2 == 0;
    if (file.header.alpha_composited) file.header.background = {1, 2, 3};
    if (round % 3 == 0) file.extra_chunks.push_back({{'e', 'X', 'i', 'f'}, {9, 8, 7}});
    TokenFile back = Read(Write(file));
    CheckSameHeader(back.header, file.header);
    CHECK(back.tokens == file.tokens);
    REQUIRE(back.extra_chunks.size() == file.extra_chunks.size());
    if (!back.extra_chunks.empty()) CHECK(back.extra_chunks[0].data == file.extra_chunks[0].data);
  }
}

TEST_CASE("Trim on bytes equals trim on tokens, for every k") {
  Rng rng(7);
  TokenFileSpec spec;
  spec.width = 50;
  spec.height = 33;
  spec.max_tokens = 6;
  spec.counts = RandomCounts(spec, rng);
  TokenFile file = MakeTokenFile(spec, 99);
  file.extra_chunks.push_back({{'i', 'C', 'C', 'P'}, {1, 2}});
  const std::vector<uint8_t> bytes = Write(file);
  for (uint32_t k = 0; k <= spec.max_tokens + 1; ++k) {
    CAPTURE(k);
    auto by_bytes = TrimT1dBytes(bytes, k);
    REQUIRE(by_bytes.ok());
    auto by_tokens = TrimTokens(file, k);
    REQUIRE(by_tokens.ok());
    CHECK(*by_bytes == Write(*by_tokens));
    TokenFile back = Read(*by_bytes);
    for (size_t t = 0; t < file.tokens.size(); ++t) {
      const size_t kept = std::min<size_t>(file.tokens[t].size(), k);
      CHECK(back.tokens[t] == std::vector<uint32_t>(file.tokens[t].begin(), file.tokens[t].begin() + static_cast<long>(kept)));
    }
    CHECK(back.extra_chunks.size() == 1);  // ancillary chunks survive trimming
  }
}

TEST_CASE("Trim to per-tile counts keeps prefixes and refuses to grow") {
  Rng rng(8);
  TokenFileSpec spec;
  spec.width = 64;
  spec.height = 16;
  TokenFile file = MakeTokenFile(spec, 5);
  std::vector<uint32_t> counts = {8, 0, 3, 5};
  auto trimmed = TrimTokens(file, counts);
  REQUIRE(trimmed.ok());
  TokenFile back = Read(Write(*trimmed));
  CHECK(back.header.tokens_per_tile == counts);
  for (size_t t = 0; t < counts.size(); ++t) {
    CHECK(std::equal(back.tokens[t].begin(), back.tokens[t].end(), file.tokens[t].begin()));
  }
  CHECK(TrimTokens(*trimmed, std::vector<uint32_t>{8, 1, 3, 5}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(TrimTokens(file, std::vector<uint32_t>{1, 2}).status().code() ==
        StatusCode::kInvalidArgument);
}

// A small file with everything in it: per-tile counts, an ancillary chunk, zero-count tiles.
std::vector<uint8_t> SmallFile(TokenFile* out = nullptr) {
  TokenFileSpec spec;
  spec.width = 40;
  spec.height = 17;
  spec.max_tokens = 4;
  spec.counts = {3, 0, 1, 4, 2, 3};
  TokenFile file = MakeTokenFile(spec, 11);
  file.extra_chunks.push_back({{'n', 'o', 't', 'e'}, {'x'}});
  if (out != nullptr) *out = file;
  return Write(file);
}

TEST_CASE("A truncated file yields its complete layers at every cut, never a crash") {
  TokenFile original;
  const std::vector<uint8_t> bytes = SmallFile(&original);
  const uint64_t header_bytes = ReadT1dHeader(bytes)->layout.header_bytes;
  uint32_t previous_layers = 0;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    std::span<const uint8_t> prefix(bytes.data(), cut);
    CHECK_FALSE(ReadT1d(prefix).ok());
    ReadOptions options;
    options.allow_truncated = true;
    ReadReport report;
    auto file = ReadT1d(prefix, options, &report);
    if (!file.ok()) {
      // Only a cut inside the preamble or HEAD leaves nothing to decode.
      CHECK(cut < header_bytes);
      CHECK((file.status().code() == StatusCode::kTruncated || cut == 0));
      continue;
    }
    CHECK(report.truncated);
    CHECK(report.layers_declared == 4);
    CHECK(report.layers_complete <= report.layers_declared);
    CHECK(report.layers_complete >= previous_layers);
    CHECK(report.warnings.size() == 1);
    previous_layers = report.layers_complete;
    for (size_t t = 0; t < original.tokens.size(); ++t) {
      const size_t kept = std::min<size_t>(original.tokens[t].size(), report.layers_complete);
      CHECK(file->header.tokens_per_tile[t] == kept);
      CHECK(file->tokens[t] == std::vector<uint32_t>(original.tokens[t].begin(), original.tokens[t].begin() + static_cast<long>(kept)));
    }
  }
  CHECK(previous_layers == 4);  // the longest cut ends inside DONE, after all layers
}

TEST_CASE("A flipped bit anywhere in a file is detected") {
  const std::vector<uint8_t> bytes = SmallFile();
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    CAPTURE(bit);
    std::vector<uint8_t> damaged = bytes;
    damaged[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    CHECK_FALSE(ReadT1d(damaged).ok());
    CHECK_FALSE(ReadT1dHeader(damaged).ok());
    // Progressive reading may take a damaged length for a cut file, but must say so.
    ReadOptions options;
    options.allow_truncated = true;
    ReadReport report;
    auto lenient = ReadT1d(damaged, options, &report);
    CHECK((!lenient.ok() || report.truncated));
  }
}

TEST_CASE("Unknown major versions are refused, newer minor versions read") {
  std::vector<uint8_t> bytes = SmallFile();
  bytes[8] = 2;
  auto file = ReadT1d(bytes);
  CHECK(file.status().code() == StatusCode::kUnsupported);
  CHECK(file.status().message().find("newer tok1d") != std::string::npos);
  CHECK(ReadT1dHeader(bytes).status().code() == StatusCode::kUnsupported);
}

TEST_CASE("ReadT1dHeader reports sizes without decoding, for any coder") {
  TokenFile original;
  const std::vector<uint8_t> bytes = SmallFile(&original);
  auto info = ReadT1dHeader(bytes);
  REQUIRE(info.ok());
  CheckSameHeader(info->header, original.header);
  CHECK(info->layout.file_bytes == bytes.size());
  CHECK(info->layout.layer_bytes.size() == 4);
  CHECK(info->layout.extra_chunk_types == std::vector<std::string>{"note"});
  uint64_t sum = info->layout.header_bytes + info->layout.extra_bytes + 16;  // + DONE
  for (uint64_t b : info->layout.layer_bytes) sum += b;
  CHECK(sum == bytes.size());
}

TEST_CASE("Files of an unknown coder: structure readable, tokens need the coder") {
  TokenFile file = MakeTokenFile(TokenFileSpec{}, 3);
  file.header.entropy_coder = testing::FakeCoder().id();
  file.header.coder_params = {'f', 'a', 'k', 'e'};
  CHECK(WriteT1d(file).status().code() == StatusCode::kInvalidArgument);  // no coder given
  const std::vector<uint8_t> bytes = Write(file, &testing::FakeCoder());
  CHECK(ReadT1dHeader(bytes).ok());
  auto unsupported = ReadT1d(bytes);
  CHECK(unsupported.status().code() == StatusCode::kUnsupported);
  CHECK(Read(bytes, &testing::FakeCoder()).tokens == file.tokens);
  auto trimmed = TrimT1dBytes(bytes, 3);  // uniform trim copies layers: no coder needed
  REQUIRE(trimmed.ok());
  TokenFile back = Read(*trimmed, &testing::FakeCoder());
  CHECK(back.tokens[0] == std::vector<uint32_t>(file.tokens[0].begin(), file.tokens[0].begin() + 3));
}

// Codes token j as its difference from token j-1 of the same tile: shows that a coder sees
// earlier layers while encoding and decoding.
class DeltaCoder final : public LayerCoder {
 public:
  uint8_t id() const override { return 9; }
  Status CheckHeader(const T1dHeader&) const override { return OkStatus(); }
  StatusOr<std::vector<uint8_t>> EncodeLayer(const LayerContext& c,
                                             std::span<const uint32_t> tokens) const override {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const uint32_t previous = c.layer == 0 ? 0 : c.tokens[c.tiles[i]][c.layer - 1];
      const uint64_t n = c.header.codebook_size();
      const uint32_t delta = static_cast<uint32_t>((tokens[i] + n - previous) % n);
      for (int b = 0; b < 4; ++b) out.push_back(static_cast<uint8_t>(delta >> (8 * b)));
    }
    return out;
  }
  Status DecodeLayer(const LayerContext& c, std::span<const uint8_t> coded,
                     std::span<uint32_t> tokens) const override {
    if (coded.size() != 4 * tokens.size()) return CorruptError("bad delta layer");
    for (size_t i = 0; i < tokens.size(); ++i) {
      REQUIRE(c.tokens[c.tiles[i]].size() == c.layer);
      const uint32_t previous = c.layer == 0 ? 0 : c.tokens[c.tiles[i]][c.layer - 1];
      const uint32_t delta = coded[4 * i] | coded[4 * i + 1] << 8 | coded[4 * i + 2] << 16 |
                             uint32_t{coded[4 * i + 3]} << 24;
      tokens[i] = static_cast<uint32_t>((uint64_t{delta} + previous) % c.header.codebook_size());
    }
    return OkStatus();
  }
};

TEST_CASE("A context coder sees the tokens of earlier layers") {
  Rng rng(3);
  TokenFileSpec spec;
  spec.width = 48;
  spec.height = 48;
  spec.counts = RandomCounts(spec, rng);
  TokenFile file = MakeTokenFile(spec, 4);
  DeltaCoder coder;
  file.header.entropy_coder = coder.id();
  CHECK(Read(Write(file, &coder), &coder).tokens == file.tokens);
}

TEST_CASE("The writer refuses inconsistent token files") {
  TokenFile good = MakeTokenFile(TokenFileSpec{}, 1);
  auto refuse = [](TokenFile file, StatusCode code) { CHECK(WriteT1d(file).status().code() == code); };
  TokenFile bad = good;
  bad.tokens[0][0] = 1000;  // codebook is 1000
  refuse(bad, StatusCode::kInvalidArgument);
  bad = good;
  bad.tokens[0].pop_back();
  refuse(bad, StatusCode::kInvalidArgument);
  bad = good;
  bad.header.tile_cols = 2;
  refuse(bad, StatusCode::kCorrupt);
  bad = good;
  bad.header.fsq_levels = {1, 5};
  refuse(bad, StatusCode::kCorrupt);
  bad = good;
  bad.header.model.name = "";
  refuse(bad, StatusCode::kCorrupt);
  bad = good;
  bad.header.tokens_per_tile = {9};
  refuse(bad, StatusCode::kCorrupt);
  bad = good;
  bad.extra_chunks.push_back({{'I', 'C', 'C', 'P'}, {}});  // critical: not allowed as extra
  refuse(bad, StatusCode::kInvalidArgument);
  bad = good;
  bad.header.head_extension = {1};  // needs a newer minor version
  refuse(bad, StatusCode::kCorrupt);
}

TEST_CASE("Reader limits come from the header, before allocation") {
  TokenFileSpec spec;
  spec.width = 64;
  spec.height = 64;
  const std::vector<uint8_t> bytes = Write(MakeTokenFile(spec, 1));
  ReadOptions options;
  options.max_pixels = 64 * 64 - 1;
  CHECK(ReadT1d(bytes, options).status().code() == StatusCode::kTooLarge);
  options.max_pixels = 64 * 64;
  CHECK(ReadT1d(bytes, options).ok());
  // A strip 1 pixel high in 4096-pixel tiles covers far more than 4x its pixels.
  spec.width = 20000;
  spec.height = 1;
  spec.tile_size = 4096;
  spec.max_tokens = 1;
  auto strip = Write(MakeTokenFile(spec, 1));
  options.max_pixels = 1'000'000;
  CHECK(ReadT1d(strip, options).status().code() == StatusCode::kTooLarge);
}

}  // namespace
}  // namespace tok1d
