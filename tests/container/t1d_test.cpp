#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>

#include "checksum_mode.h"
#include "container/golden.h"
#include "container/t1d.h"
#include "container/token_files.h"

namespace tok1d {
namespace {

using testing::MakeTokenFile;
using testing::MinorWithCounts;
using testing::RandomCounts;
using testing::Rng;
using testing::TokenFileSpec;

std::vector<uint8_t> Write(const TokenFile& file, const LayerCoder* coder = nullptr,
                           const WriteOptions& options = {}) {
  auto bytes = WriteT1d(file, coder, options);
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
  CHECK(a.layers_per_tile == b.layers_per_tile);
}

// A spec per FSQ shape, covering 1 to 32 bits per token and several grids.
std::vector<TokenFileSpec> Specs() {
  std::vector<TokenFileSpec> specs;
  const std::vector<std::vector<uint32_t>> shapes = {
      {2},
      {3},
      {8, 5, 5, 5},
      {7, 5, 5, 5, 5},
      {8, 8, 8, 8},
      {255, 255, 255, 255},
      {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}};
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
      CHECK(back.tokens[t] ==
            std::vector<uint32_t>(file.tokens[t].begin(),
                                  file.tokens[t].begin() + static_cast<long>(kept)));
    }
    CHECK(back.extra_chunks.size() == 1);  // ancillary chunks survive trimming
  }
}

TEST_CASE("Counts: a palette where it is smaller, and LayerCountsBytes is what HEAD spends") {
  TokenFileSpec spec;
  spec.width = 16 * 24;  // 24 tiles, a Kodak image's
  spec.max_tokens = 64;
  const auto head_bytes = [](const TokenFile& file) {
    return testing::SplitChunks(Write(file)).chunks[0].data.size();
  };
  const TokenFile uniform = MakeTokenFile(spec, 1);
  const size_t uniform_head = head_bytes(uniform);
  CHECK(LayerCountsBytes(uniform.header.layers_per_tile) == 2);
  struct Case {
    std::vector<uint32_t> counts;
    size_t bytes;  // after counts_mode
  };
  std::vector<Case> cases;
  std::vector<uint32_t> trimmed(24, 64);  // the search's trims: 3 counts, 2 bits a tile
  trimmed[3] = 48, trimmed[17] = 32;
  cases.push_back({trimmed, 1 + 2 * 3 + 6});
  std::vector<uint32_t> two(24, 8);  // 1 bit a tile
  two[0] = 6;
  cases.push_back({two, 1 + 2 * 2 + 3});
  std::vector<uint32_t> distinct(24);  // every count different: a u16 per tile is smaller
  for (uint32_t t = 0; t < 24; ++t) distinct[t] = 40 + t;
  cases.push_back({distinct, 2 * 24});
  std::vector<uint32_t> nine(24);  // 9 counts: 4 bits a tile, 1 + 18 + 12 = 31 < 48
  for (uint32_t t = 0; t < 24; ++t) nine[t] = 10 + t % 9;
  cases.push_back({nine, 31});
  for (const Case& c : cases) {
    CAPTURE(c.counts);
    CHECK(LayerCountsBytes(c.counts) == c.bytes);
    const TokenFile file = *TrimLayers(uniform, c.counts);
    const std::vector<uint8_t> bytes = Write(file);
    CHECK(testing::SplitChunks(bytes).chunks[0].data.size() == uniform_head - 2 + c.bytes);
    CHECK(bytes[9] == (c.bytes < 2 * 24 ? kCountsPaletteMinorVersion : 2));
    const TokenFile back = Read(bytes);
    CHECK(back.header.layers_per_tile == c.counts);
    CHECK(back.tokens == file.tokens);
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
  CHECK(back.header.layers_per_tile == counts);
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
      CHECK(file->header.layers_per_tile[t] == kept);
      CHECK(file->tokens[t] ==
            std::vector<uint32_t>(original.tokens[t].begin(),
                                  original.tokens[t].begin() + static_cast<long>(kept)));
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
    if (!testing::kT1dChecksumsVerified) {
      // A fuzzing build (checksum_mode.h) lets most flips past the checksums: reading must
      // still stay in bounds, which its sanitizers check.
      (void)ReadT1d(damaged);
      (void)ReadT1dHeader(damaged);
      continue;
    }
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
  CHECK(back.tokens[0] ==
        std::vector<uint32_t>(file.tokens[0].begin(), file.tokens[0].begin() + 3));
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
  auto refuse = [](TokenFile file, StatusCode code) {
    CHECK(WriteT1d(file).status().code() == code);
  };
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
  bad.header.layers_per_tile = {9};
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

// ---- version 1.2: LAYS layer spans ---------------------------------------------------------

// Span thresholds from one layer per span to one span for the whole file.
constexpr uint32_t kSpanThresholds[] = {0, 1, 5, 16, 64, 300, kDefaultSpanBytes, UINT32_MAX};

// Files with many layers and tiles: random counts, 1 to 32 bits per token, a 247-tile grid.
std::vector<TokenFile> SpanTestFiles() {
  std::vector<TokenFile> files;
  Rng rng(77);
  uint64_t seed = 500;
  for (TokenFileSpec spec : Specs()) {
    spec.max_tokens = 12;
    spec.counts = RandomCounts(spec, rng);
    files.push_back(MakeTokenFile(spec, seed++));
  }
  TokenFileSpec large;
  large.width = 300;
  large.height = 200;
  large.max_tokens = 9;
  files.push_back(MakeTokenFile(large, seed++));
  large.counts = RandomCounts(large, rng);
  files.push_back(MakeTokenFile(large, seed++));
  return files;
}

// The layout is consistent, the spans cover the layers in order, and the writer's policy held:
// every span but the last reached `threshold`, none had before its last layer.
void CheckSpanLayout(const T1dLayout& layout, uint64_t file_size, uint32_t layers,
                     uint32_t threshold) {
  CHECK(layout.header_bytes + layout.layer_chunk_bytes() + layout.extra_bytes + 16 == file_size);
  REQUIRE(layout.layer_payload_bytes.size() == layers);
  uint32_t next = 0;
  uint64_t chunk_bytes = 0;
  for (size_t c = 0; c < layout.layer_chunks.size(); ++c) {
    const T1dLayerChunk& chunk = layout.layer_chunks[c];
    CHECK(chunk.type == "LAYS");
    CHECK(chunk.first_layer == next);
    REQUIRE(chunk.layers >= 1);
    next += chunk.layers;
    chunk_bytes += chunk.bytes;
    uint64_t payload = 0;
    for (uint32_t j = chunk.first_layer; j < next; ++j) payload += layout.layer_payload_bytes[j];
    if (c + 1 < layout.layer_chunks.size()) CHECK(payload >= threshold);
    if (chunk.layers > 1) CHECK(payload - layout.layer_payload_bytes[next - 1] < threshold);
  }
  CHECK(next == layers);
  CHECK(chunk_bytes == layout.layer_chunk_bytes());
}

TEST_CASE("Spans: round trips at many tile, layer and span sizes; the layout adds up") {
  for (const TokenFile& file : SpanTestFiles()) {
    CAPTURE(file.header.fsq_levels.size());
    CAPTURE(file.header.tile_count());
    for (uint32_t threshold : kSpanThresholds) {
      CAPTURE(threshold);
      const std::vector<uint8_t> bytes = Write(file, nullptr, {.span_bytes = threshold});
      CHECK(bytes[9] == 2);
      TokenFile back = Read(bytes);
      CheckSameHeader(back.header, file.header);
      CHECK(back.tokens == file.tokens);
      auto info = ReadT1dHeader(bytes);
      REQUIRE(info.ok());
      CheckSpanLayout(info->layout, bytes.size(), file.header.layer_count(), threshold);
      if (threshold == 0) CHECK(info->layout.layer_chunks.size() == file.header.layer_count());
      if (threshold == UINT32_MAX && file.header.layer_count() > 0) {
        CHECK(info->layout.layer_chunks.size() == 1);
      }
    }
  }
}

TEST_CASE("Spans: 1.0 files still read, and their layers re-framed in spans are the same bytes") {
  for (const TokenFile& file : SpanTestFiles()) {
    const std::vector<uint8_t> legacy = Write(file, nullptr, {.layer_spans = false});
    CHECK(legacy[9] == MinorWithCounts(0, file.header));
    auto legacy_info = ReadT1dHeader(legacy);
    REQUIRE(legacy_info.ok());
    for (const T1dLayerChunk& chunk : legacy_info->layout.layer_chunks) CHECK(chunk.type == "LAYR");
    CHECK(legacy_info->layout.layer_framing_bytes() == 14 * file.header.layer_count());
    const std::vector<uint8_t> spans = Write(file);
    auto spans_info = ReadT1dHeader(spans);
    REQUIRE(spans_info.ok());
    CHECK(spans_info->layout.layer_payload_bytes == legacy_info->layout.layer_payload_bytes);
    CHECK(Read(legacy).tokens == Read(spans).tokens);
    if (file.header.layer_count() >= 2) CHECK(spans.size() < legacy.size());
    // Trimming keeps a file's framing and version.
    auto trimmed = TrimT1dBytes(legacy, 1);
    REQUIRE(trimmed.ok());
    CHECK((*trimmed)[9] == MinorWithCounts(0, TrimTokens(file, 1)->header));
    CHECK(*trimmed == Write(*TrimTokens(file, 1), nullptr, {.layer_spans = false}));
  }
}

TEST_CASE("Spans: trim at every k keeps whole spans and cuts one, without re-coding") {
  for (const TokenFile& file : SpanTestFiles()) {
    for (uint32_t threshold : kSpanThresholds) {
      CAPTURE(threshold);
      const WriteOptions options{.span_bytes = threshold};
      const std::vector<uint8_t> bytes = Write(file, nullptr, options);
      const T1dLayout layout = ReadT1dHeader(bytes)->layout;
      for (uint32_t k = 0; k <= file.header.max_tokens + 1; ++k) {
        CAPTURE(k);
        auto trimmed = TrimT1dBytes(bytes, k);
        REQUIRE(trimmed.ok());
        CHECK(*trimmed == Write(*TrimTokens(file, k), nullptr, options));
        auto info = ReadT1dHeader(*trimmed);
        REQUIRE(info.ok());
        const uint32_t kept = std::min(k, file.header.layer_count());
        CHECK(info->layout.layer_payload_bytes ==
              std::vector<uint64_t>(layout.layer_payload_bytes.begin(),
                                    layout.layer_payload_bytes.begin() + kept));
        // Each span of the trimmed file starts where one of the original did, no longer.
        for (size_t c = 0; c < info->layout.layer_chunks.size(); ++c) {
          const T1dLayerChunk& cut = info->layout.layer_chunks[c];
          REQUIRE(c < layout.layer_chunks.size());
          CHECK(cut.first_layer == layout.layer_chunks[c].first_layer);
          CHECK(cut.layers <= layout.layer_chunks[c].layers);
          if (c + 1 < info->layout.layer_chunks.size())
            CHECK(cut.bytes == layout.layer_chunks[c].bytes);
        }
      }
    }
  }
}

TEST_CASE("Spans: a file cut at every byte yields the layers of its complete spans") {
  TokenFileSpec spec;
  spec.width = 100;
  spec.height = 40;
  spec.max_tokens = 7;
  Rng rng(5);
  spec.counts = RandomCounts(spec, rng);
  TokenFile original = MakeTokenFile(spec, 6);
  original.extra_chunks.push_back({{'n', 'o', 't', 'e'}, {'y'}});
  const std::vector<uint8_t> bytes = Write(original, nullptr, {.span_bytes = 12});
  const T1dLayout layout = ReadT1dHeader(bytes)->layout;
  REQUIRE(layout.layer_chunks.size() >= 3);
  std::vector<uint32_t> boundaries = {0};
  for (const T1dLayerChunk& chunk : layout.layer_chunks) {
    boundaries.push_back(chunk.first_layer + chunk.layers);
  }
  const uint32_t layers = original.header.layer_count();
  std::set<uint32_t> seen;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    std::span<const uint8_t> prefix(bytes.data(), cut);
    CHECK(ReadT1d(prefix).status().code() != StatusCode::kOk);
    ReadOptions options;
    options.allow_truncated = true;
    ReadReport report;
    auto file = ReadT1d(prefix, options, &report);
    if (!file.ok()) {
      CHECK(cut < layout.header_bytes);
      continue;
    }
    CHECK(report.truncated);
    CHECK(std::find(boundaries.begin(), boundaries.end(), report.layers_complete) !=
          boundaries.end());
    seen.insert(report.layers_complete);
    for (size_t t = 0; t < original.tokens.size(); ++t) {
      const size_t kept = std::min<size_t>(original.tokens[t].size(), report.layers_complete);
      CHECK(file->tokens[t] ==
            std::vector<uint32_t>(original.tokens[t].begin(),
                                  original.tokens[t].begin() + static_cast<long>(kept)));
    }
    // A partial download trims to a complete file of what it holds.
    if (report.layers_complete > 0) {
      auto trimmed = TrimT1dBytes(prefix, report.layers_complete);
      REQUIRE(trimmed.ok());
      CHECK(Read(*trimmed).tokens == file->tokens);
    }
  }
  CHECK(seen.size() == boundaries.size());  // every span boundary is reached
  CHECK(*seen.rbegin() == layers);
}

// `bytes` with chunk `index` (0 = HEAD) replaced by `data`, checksums recomputed.
std::vector<uint8_t> WithChunkData(const std::vector<uint8_t>& bytes, size_t index,
                                   std::vector<uint8_t> data, std::string type = "LAYS") {
  testing::FramedFile framed = testing::SplitChunks(bytes);
  framed.chunks.at(index) = {std::move(type), std::move(data)};
  return testing::JoinChunks(framed);
}

void CheckCorrupt(const std::vector<uint8_t>& bytes, const std::string& message) {
  CAPTURE(message);
  for (bool allow_truncated : {false, true}) {
    ReadOptions options;
    options.allow_truncated = allow_truncated;
    auto file = ReadT1d(bytes, options);
    CHECK(file.status().code() == StatusCode::kCorrupt);
    CHECK_MESSAGE(file.status().message().find(message) != std::string::npos,
                  file.status().message());
    CHECK(ReadT1dHeader(bytes, options).status().code() == StatusCode::kCorrupt);
    CHECK(TrimT1dBytes(bytes, 1, options).status().code() == StatusCode::kCorrupt);
  }
}

TEST_CASE("Spans: damaged span fields are refused as corrupt") {
  // 48x16, 3 tiles of 8 tokens, 10 bits each: layers of 4 bytes; spans of 2 layers.
  TokenFileSpec spec;
  spec.width = 48;
  const std::vector<uint8_t> bytes = Write(MakeTokenFile(spec, 9), nullptr, {.span_bytes = 8});
  const testing::FramedFile framed = testing::SplitChunks(bytes);
  REQUIRE(framed.chunks.size() == 6);                        // HEAD, 4 spans, DONE
  const std::vector<uint8_t>& span = framed.chunks[2].data;  // layers 2 and 3
  REQUIRE(span.size() == 4 + 8);
  CHECK(span[0] == 2);
  CHECK(span[1] == 2);
  CHECK(span[2] == 4);
  const std::vector<uint8_t> payload(span.begin() + 4, span.end());
  const auto with = [&](std::vector<uint8_t> fields) {
    fields.insert(fields.end(), payload.begin(), payload.end());
    return WithChunkData(bytes, 2, fields);
  };
  CHECK(ReadT1d(with({2, 2, 4, 4})).ok());
  CheckCorrupt(with({2, 0}), "holds no layers");
  CheckCorrupt(with({2, 0, 4, 4}), "holds no layers");
  CheckCorrupt(with({2, 2, 4, 5}), "add up to 9 bytes but it holds 8");
  CheckCorrupt(with({2, 2, 4, 3}), "add up to 7 bytes but it holds 8");
  CheckCorrupt(with({2, 2, 0x80, 0x80, 0x80, 0x80, 0x10}), "malformed varint");  // 2^32
  CheckCorrupt(with({2, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}), "malformed varint");  // reserved bits
  CheckCorrupt(with({2, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), "malformed varint");  // 6 bytes
  CheckCorrupt(with({2, 2, 0x84, 0x00, 4}), "malformed varint");  // 4 in two bytes
  CheckCorrupt(with({0x82, 0x00, 2, 4, 4}), "malformed varint");
  CheckCorrupt(WithChunkData(bytes, 2, {}), "ends inside its layer lengths");
  CheckCorrupt(WithChunkData(bytes, 2, {2}), "ends inside its layer lengths");
  CheckCorrupt(WithChunkData(bytes, 2, {2, 2, 4}), "ends inside its layer lengths");
  CheckCorrupt(WithChunkData(bytes, 2, {2, 2, 0x84}), "ends inside its layer lengths");
  CheckCorrupt(with({3, 2, 4, 4}), "starts at layer 3 where layer 2");
  CheckCorrupt(with({1, 2, 4, 4}), "starts at layer 1 where layer 2");
  // The last span claims a ninth layer of 0 bytes.
  std::vector<uint8_t> last = framed.chunks[4].data;
  last[1] = 3;
  last.insert(last.begin() + 4, 0);
  CheckCorrupt(WithChunkData(bytes, 4, last), "holds layers 6..8 but HEAD declares 8");
  // Layers 2 and 3 as LAYR chunks between spans.
  testing::FramedFile mixed = framed;
  std::vector<uint8_t> layr2 = {2, 0}, layr3 = {3, 0};
  layr2.insert(layr2.end(), payload.begin(), payload.begin() + 4);
  layr3.insert(layr3.end(), payload.begin() + 4, payload.end());
  mixed.chunks[2] = {"LAYR", layr2};
  mixed.chunks.insert(mixed.chunks.begin() + 3, {"LAYR", layr3});
  CheckCorrupt(testing::JoinChunks(mixed), "mixes LAYR and LAYS");
  // Spans in a file that says 1.1 or 1.0.
  for (uint8_t minor : {uint8_t{0}, uint8_t{1}}) {
    testing::FramedFile old = framed;
    old.preamble[9] = minor;
    CheckCorrupt(testing::JoinChunks(old), "spans need 1.2");
  }
}

TEST_CASE(
    "Spans: any byte of a span changed under a valid checksum is refused or read, never a crash") {
  TokenFileSpec spec;
  spec.width = 48;
  spec.fsq_levels = {2, 2, 2};  // 3 bits: few tokens outside the codebook to catch damage
  const std::vector<uint8_t> bytes = Write(MakeTokenFile(spec, 10), nullptr, {.span_bytes = 3});
  const testing::FramedFile framed = testing::SplitChunks(bytes);
  for (size_t index = 1; index + 1 < framed.chunks.size(); ++index) {
    const std::vector<uint8_t>& data = framed.chunks[index].data;
    for (size_t at = 0; at <= data.size(); ++at) {
      for (uint8_t value : std::initializer_list<uint8_t>{0x00, 0x01, 0x07, 0x7F, 0x80, 0xFF}) {
        CAPTURE(index);
        CAPTURE(at);
        std::vector<uint8_t> changed = data;
        if (at == data.size()) {
          changed.push_back(value);
        } else {
          changed[at] = value;
        }
        const std::vector<uint8_t> damaged = WithChunkData(bytes, index, changed);
        for (bool allow_truncated : {false, true}) {
          ReadOptions options;
          options.allow_truncated = allow_truncated;
          auto file = ReadT1d(damaged, options);
          CHECK((file.ok() || file.status().code() == StatusCode::kCorrupt));
          (void)TrimT1dBytes(damaged, 4, options);
        }
      }
    }
  }
}

TEST_CASE("layer roles, LayersForTokens and TokensInLayers agree for any plan") {
  T1dHeader header;
  header.max_tokens = 9;
  header.fsq_levels = {5, 5};
  for (const Refinement& plan : {Refinement{}, Refinement{2, {0}}, Refinement{1, {0, 2, 2, 8}},
                                 Refinement{3, {3, 4, 5, 6, 7, 8, 8, 8, 8}}}) {
    header.refinement = plan;
    REQUIRE(CheckRefinement(plan, header.max_tokens, 2).ok());
    const std::vector<LayerRole> roles = header.LayerRoles();
    REQUIRE(roles.size() == header.max_layers());
    for (uint32_t layers = 0; layers <= header.max_layers() + 2; ++layers) {
      CAPTURE(layers);
      uint32_t tokens = 0;
      for (uint32_t j = 0; j < std::min<size_t>(layers, roles.size()); ++j)
        tokens += roles[j].refinement ? 0u : 1u;
      CHECK(header.TokensInLayers(layers) == tokens);
      CHECK(header.RefinementsInLayers(layers) == std::min(layers, header.max_layers()) - tokens);
    }
    for (uint32_t k = 0; k <= header.max_tokens; ++k) {
      // k tokens end just before token k's layer, or with the last refinement.
      uint32_t layers = 0, seen = 0;
      while (layers < roles.size() && (roles[layers].refinement || seen < k)) {
        seen += roles[layers].refinement ? 0u : 1u;
        ++layers;
      }
      CHECK(header.LayersForTokens(k) == layers);
    }
  }
}

}  // namespace
}  // namespace tok1d
