#include "codec/entropy_coder.h"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "checksum_mode.h"
#include "codec/entropy/entropy_test_tables.h"
#include "codec/range_coder.h"
#include "codec/safetensors.h"
#include "container/token_files.h"

namespace tok1d {
namespace {

using testing::EntropyTableSpec;
using testing::RandomEntropyTables;
using testing::Rng;
using testing::SampleTokenFile;

// MakeTokenFile's model identity: SHA-256 bytes 0, 1, …, 31.
std::array<uint8_t, 32> TestModelSha() {
  std::array<uint8_t, 32> sha{};
  for (size_t i = 0; i < sha.size(); ++i) sha[i] = static_cast<uint8_t>(i);
  return sha;
}

struct Fixture {
  explicit Fixture(const EntropyTableSpec& spec, uint64_t seed = 1)
      : tables(RandomEntropyTables(spec, seed)), coder(tables, TestModelSha()) {}
  std::shared_ptr<const EntropyTables> tables;
  RangeLayerCoder coder;

  std::vector<uint8_t> Write(TokenFile file, const WriteOptions& options = {}) const {
    file.header.entropy_coder = kRangeCoderId;
    auto bytes = WriteT1d(file, &coder, options);
    REQUIRE_MESSAGE(bytes.ok(), bytes.status().message());
    return *bytes;
  }
  StatusOr<TokenFile> Read(std::span<const uint8_t> bytes, bool allow_truncated = false,
                           ReadReport* report = nullptr) const {
    ReadOptions options;
    options.allow_truncated = allow_truncated;
    return ReadT1d(bytes, options, report, &coder);
  }
};

// A random geometry and random per-tile counts (some tiles empty) for `tables`.
TokenFile RandomFile(const EntropyTables& tables, Rng& rng, uint64_t seed) {
  const uint32_t tile = 16;
  const uint32_t width = 1 + rng.Below(5 * tile), height = 1 + rng.Below(4 * tile);
  const uint32_t tiles = ((width + tile - 1) / tile) * ((height + tile - 1) / tile);
  std::vector<uint32_t> counts;
  const bool uniform = rng.Below(2) == 0;
  const uint32_t uniform_count = 1 + rng.Below(tables.tokens());
  for (uint32_t t = 0; t < tiles; ++t) {
    counts.push_back(uniform ? uniform_count : rng.Below(tables.tokens() + 1));
  }
  if (*std::max_element(counts.begin(), counts.end()) == 0) counts[0] = 1;
  return SampleTokenFile(tables, width, height, tile, counts, seed);
}

// The tokens of `file` with at most `layers` tokens per tile.
std::vector<std::vector<uint32_t>> FirstLayers(const TokenFile& file, uint32_t layers) {
  std::vector<std::vector<uint32_t>> tokens = file.tokens;
  for (auto& tile : tokens) tile.resize(std::min<size_t>(tile.size(), layers));
  return tokens;
}

// Rewrites the checksum of the chunk starting at `offset` (not HEAD) after its data changed.
void FixChecksum(std::vector<uint8_t>* bytes, size_t offset) {
  const uint8_t* length_bytes = bytes->data() + offset + 4;
  const uint32_t length = length_bytes[0] | length_bytes[1] << 8 | length_bytes[2] << 16 |
                          uint32_t{length_bytes[3]} << 24;
  const auto checksum = static_cast<uint32_t>(XXH64(bytes->data() + offset, 8 + length, 0));
  for (size_t i = 0; i < 4; ++i) {
    (*bytes)[offset + 8 + length + i] = static_cast<uint8_t>(checksum >> (8 * i));
  }
}

// Offsets of the LAYR chunks of a file.
std::vector<size_t> LayerChunkOffsets(const std::vector<uint8_t>& bytes) {
  std::vector<size_t> offsets;
  for (size_t pos = 12; pos + 12 <= bytes.size();) {
    const uint32_t length = bytes[pos + 4] | bytes[pos + 5] << 8 | bytes[pos + 6] << 16 |
                            uint32_t{bytes[pos + 7]} << 24;
    if (std::equal(bytes.begin() + static_cast<long>(pos),
                   bytes.begin() + static_cast<long>(pos) + 4, "LAYR")) {
      offsets.push_back(pos);
    }
    pos += 12 + length;
  }
  return offsets;
}

TEST_CASE("Range LayerCoder: random token files round trip exactly") {
  Rng rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    EntropyTableSpec spec;
    spec.tokens = 1 + rng.Below(12);
    spec.fsq_levels.clear();
    uint64_t codebook = 1;
    for (uint32_t d = 0, dims = 1 + rng.Below(6); d < dims; ++d) {
      const uint32_t level = 2 + rng.Below(trial % 10 == 0 ? 254 : 16);
      if (codebook * level > (uint64_t{1} << 31)) break;  // the container's limit is 2^32
      codebook *= level;
      spec.fsq_levels.push_back(level);
    }
    spec.contexts = 1 + rng.Below(5);
    spec.activity_window = rng.Below(spec.tokens + 1);
    spec.prob_bits = kMinProbBits + rng.Below(kMaxProbBits - kMinProbBits + 1);
    if (spec.prob_bits < 10 && trial % 10 == 0) spec.prob_bits = 10;  // 255 levels need room
    const Fixture fixture(spec, static_cast<uint64_t>(trial));
    const TokenFile file = RandomFile(*fixture.tables, rng, static_cast<uint64_t>(trial));
    const std::vector<uint8_t> bytes = fixture.Write(file);
    CHECK(bytes[9] == testing::MinorWithCounts(2, file.header));  // layer spans: format 1.2
    // Without spans the range coder still needs 1.1.
    CHECK(fixture.Write(file, {.layer_spans = false})[9] ==
          testing::MinorWithCounts(1, file.header));
    auto read = fixture.Read(bytes);
    REQUIRE_MESSAGE(read.ok(), read.status().message());
    CHECK(read->tokens == file.tokens);
    CHECK(read->header.entropy_coder == kRangeCoderId);
  }
}

TEST_CASE("Range LayerCoder: quantiser steps merge each level into its nearest grid digit") {
  Rng rng(23);
  for (int trial = 0; trial < 200; ++trial) {
    EntropyTableSpec spec;
    spec.tokens = 2 + rng.Below(8);
    spec.fsq_levels = {2 + rng.Below(16), 2 + rng.Below(16), 2 + rng.Below(6)};
    const Fixture fixture(spec, static_cast<uint64_t>(trial));
    const EntropyTables& tables = *fixture.tables;
    const FsqCodebook& codebook = tables.codebook();
    // The merged distribution of every step: its cells are the levels nearest to each grid
    // digit (ties towards the centre), so it sums the tables' frequencies over them.
    for (uint32_t step = 1; step <= 9; ++step) {
      for (uint32_t d = 0; d < codebook.dims(); ++d) {
        CAPTURE(step);
        CAPTURE(spec.fsq_levels[d]);
        const auto fine = tables.Distribution(1, d, 0);
        CumulativeBuffer buffer;
        uint32_t first = 0;
        const auto merged = tables.StepDistribution(1, d, 0, step, buffer, &first);
        const int centre = static_cast<int>(codebook.centre(d));
        const int levels = static_cast<int>(spec.fsq_levels[d]);
        const auto grid_digit = [&](size_t m) { return static_cast<int>(first + m * step); };
        std::vector<uint32_t> expected(merged.size() - 1, 0);
        for (int level = 0; level < levels; ++level) {
          // The grid digit nearest to the level, the one nearer the centre on a tie.
          size_t best = 0;
          for (size_t m = 1; m + 1 < merged.size(); ++m) {
            const int distance = std::abs(grid_digit(m) - level);
            const int best_distance = std::abs(grid_digit(best) - level);
            if (distance < best_distance ||
                (distance == best_distance &&
                 std::abs(grid_digit(m) - centre) < std::abs(grid_digit(best) - centre))) {
              best = m;
            }
          }
          const auto l = static_cast<size_t>(level);
          expected[best] += fine[l + 1] - fine[l];
        }
        CHECK(merged.front() == 0);
        CHECK(merged.back() == (1u << spec.prob_bits));
        CHECK((first + (merged.size() - 2) * step) < spec.fsq_levels[d]);
        CHECK((static_cast<int>(first) - static_cast<int>(step)) < 0);
        CHECK((first + (merged.size() - 1) * step) >= spec.fsq_levels[d]);
        for (size_t m = 0; m + 1 < merged.size(); ++m) {
          CHECK(merged[m + 1] - merged[m] == expected[m]);
          CHECK(merged[m + 1] > merged[m]);
        }
      }
    }
    // Files whose tokens follow random steps round trip, and a token off its step is refused.
    TokenFile file = RandomFile(tables, rng, static_cast<uint64_t>(trial));
    const uint32_t first_run = rng.Below(spec.tokens);
    file.header.steps.runs = {{first_run, 1 + rng.Below(5)}};
    if (first_run + 1 < spec.tokens)
      file.header.steps.runs.push_back({first_run + 1, 1 + rng.Below(9)});
    testing::SnapToSteps(&file);
    const std::vector<uint8_t> bytes = fixture.Write(file);
    auto read = fixture.Read(bytes);
    REQUIRE_MESSAGE(read.ok(), read.status().message());
    CHECK(read->tokens == file.tokens);
  }
}

TEST_CASE("Range LayerCoder: tokens that the tables call unlikely still round trip") {
  const Fixture fixture(EntropyTableSpec{});
  testing::TokenFileSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.fsq_levels = fixture.tables->fsq_levels();
  spec.max_tokens = fixture.tables->tokens();
  const TokenFile uniform = testing::MakeTokenFile(spec, 5);  // uniform over the codebook
  auto read = fixture.Read(fixture.Write(uniform));
  REQUIRE(read.ok());
  CHECK(read->tokens == uniform.tokens);
}

TEST_CASE("Range LayerCoder: coded size is close to the tables' information content") {
  EntropyTableSpec spec;
  spec.tokens = 16;
  const Fixture fixture(spec);
  const TokenFile file = SampleTokenFile(*fixture.tables, 640, 480, 16, {}, 3);
  double ideal_bits = 0;
  for (const std::vector<uint32_t>& tokens : file.tokens) {
    for (uint32_t j = 0; j < tokens.size(); ++j) {
      uint32_t token = tokens[j];
      const uint32_t context = fixture.tables->Context(j, tokens);
      for (uint32_t d = 0; d < spec.fsq_levels.size(); ++d) {
        const auto cum = fixture.tables->Distribution(j, d, context);
        const uint32_t digit = token % spec.fsq_levels[d];
        token /= spec.fsq_levels[d];
        ideal_bits -= std::log2((cum[digit + 1] - cum[digit]) / std::exp2(spec.prob_bits));
      }
    }
  }
  const std::vector<uint8_t> bytes = fixture.Write(file);
  auto info = ReadT1dHeader(bytes);
  REQUIRE(info.ok());
  uint64_t layer_payload = 0;  // coded bytes, framing excluded
  for (uint64_t size : info->layout.layer_payload_bytes) layer_payload += size;
  const double coded_bits = static_cast<double>(layer_payload) * 8;
  CHECK(coded_bits <= ideal_bits * 1.002 + 16.0 * spec.tokens);
  CHECK(coded_bits >= ideal_bits * 0.99);
}

TEST_CASE("Range LayerCoder: trim on bytes equals trim on tokens") {
  Rng rng(21);
  const Fixture fixture(EntropyTableSpec{});
  for (int trial = 0; trial < 40; ++trial) {
    const TokenFile file = RandomFile(*fixture.tables, rng, static_cast<uint64_t>(trial));
    // One span, one per layer, and a few layers per span.
    constexpr uint32_t kThresholds[] = {kDefaultSpanBytes, 0, 16};
    const WriteOptions options{.span_bytes = kThresholds[trial % 3]};
    const std::vector<uint8_t> bytes = fixture.Write(file, options);
    for (uint32_t k = 1; k <= fixture.tables->tokens(); ++k) {
      auto trimmed = TrimT1dBytes(bytes, k);
      REQUIRE(trimmed.ok());
      auto expected = TrimTokens(file, k);
      REQUIRE(expected.ok());
      // Trimming copies layers verbatim, so it is the file written from trimmed tokens.
      CHECK(*trimmed == fixture.Write(*expected, options));
      auto read = fixture.Read(*trimmed);
      REQUIRE(read.ok());
      CHECK(read->tokens == expected->tokens);
    }
    // Per-tile trim re-codes the layers.
    std::vector<uint32_t> counts = file.header.layers_per_tile;
    for (uint32_t& count : counts) count = rng.Below(count + 1);
    auto cut = TrimTokens(file, counts);
    REQUIRE(cut.ok());
    if (cut->header.layer_count() == 0) continue;
    auto read = fixture.Read(fixture.Write(*cut));
    REQUIRE(read.ok());
    CHECK(read->tokens == cut->tokens);
  }
}

TEST_CASE("Range LayerCoder: a file cut at every byte decodes its complete layers") {
  Rng rng(31);
  const Fixture fixture(EntropyTableSpec{});
  for (int trial = 0; trial < 6; ++trial) {
    const TokenFile file = RandomFile(*fixture.tables, rng, static_cast<uint64_t>(100 + trial));
    const std::vector<uint8_t> bytes =
        fixture.Write(file, {.span_bytes = trial % 2 == 0 ? 0u : 16u});
    for (size_t size = 0; size < bytes.size(); ++size) {
      const std::span<const uint8_t> prefix(bytes.data(), size);
      ReadReport report;
      auto read = fixture.Read(prefix, /*allow_truncated=*/true, &report);
      if (!read.ok()) {
        // Only a cut inside the preamble or HEAD is an error, and a clean one.
        const auto code = read.status().code();
        CHECK((code == StatusCode::kTruncated || code == StatusCode::kCorrupt));
        auto header = ReadT1dHeader(prefix, ReadOptions{.allow_truncated = true});
        CHECK(!header.ok());
        continue;
      }
      CHECK(report.truncated);
      CHECK(read->tokens == FirstLayers(file, report.layers_complete));
      CHECK(fixture.Read(prefix).status().code() == StatusCode::kTruncated);
    }
  }
}

TEST_CASE("Range LayerCoder: damaged layers are reported, never crash") {
  Rng rng(41);
  const Fixture fixture(EntropyTableSpec{});
  int damaged_with_valid_checksum = 0, caught_by_coder = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const TokenFile file = RandomFile(*fixture.tables, rng, static_cast<uint64_t>(200 + trial));
    // LAYR chunks (one layer each) make the coded bytes easy to find; the coder sees the same.
    std::vector<uint8_t> bytes = fixture.Write(file, {.layer_spans = false});
    const std::vector<size_t> layers = LayerChunkOffsets(bytes);
    const size_t chunk = layers[rng.Below(layers.size())];
    const uint32_t length = bytes[chunk + 4] | bytes[chunk + 5] << 8;
    if (length <= 2) continue;  // index only: nothing coded to damage
    const size_t at = chunk + 8 + 2 + rng.Below(length - 2);
    bytes[at] ^= static_cast<uint8_t>(1 + rng.Below(255));

    // As stored: the chunk checksum catches it (fuzzing builds check no checksums,
    // checksum_mode.h: there the forged case below is all there is).
    auto read = fixture.Read(bytes);
    if (testing::kT1dChecksumsVerified) {
      CHECK(read.status().code() == StatusCode::kCorrupt);
      CHECK(read.status().message().find("checksum") != std::string::npos);
    }

    // With the checksum forged, the coder catches it or yields other tokens (the decoder
    // accepts only the encoder's exact output), never a crash or a token outside the codebook.
    FixChecksum(&bytes, chunk);
    ++damaged_with_valid_checksum;
    read = fixture.Read(bytes);
    if (!read.ok()) {
      CHECK(read.status().code() == StatusCode::kCorrupt);
      ++caught_by_coder;
    } else {
      CHECK(read->tokens != file.tokens);
    }
  }
  MESSAGE(caught_by_coder << " of " << damaged_with_valid_checksum
                          << " forged-checksum damages caught by the coder itself");
  CHECK(caught_by_coder > 0);
}

TEST_CASE("Range LayerCoder: the header must name the tables' model and shape") {
  const Fixture fixture(EntropyTableSpec{});
  TokenFile file = SampleTokenFile(*fixture.tables, 32, 32, 16, {}, 1);
  file.header.entropy_coder = kRangeCoderId;
  TokenFile other = file;
  other.header.model.sha256[0] ^= 1;
  CHECK(WriteT1d(other, &fixture.coder).status().code() == StatusCode::kModelMismatch);
  other = file;
  other.header.coder_params = {1};
  CHECK(WriteT1d(other, &fixture.coder).status().code() == StatusCode::kCorrupt);
  // Reading a range-coded file without the coder: structure readable, tokens unsupported.
  const std::vector<uint8_t> bytes = fixture.Write(file);
  CHECK(ReadT1dHeader(bytes).ok());
  CHECK(ReadT1d(bytes).status().code() == StatusCode::kUnsupported);
}

// ---- loading tables from a model file ----

StatusOr<std::shared_ptr<const EntropyTables>> LoadEdited(
    const EntropyTableSpec& spec,
    const std::function<void(std::map<std::string, testing::TestTensor>&,
                             std::map<std::string, std::string>&)>& edit) {
  std::map<std::string, testing::TestTensor> tensors;
  std::map<std::string, std::string> metadata;
  testing::AddRandomEntropyTables(spec, 1, &tensors, &metadata);
  edit(tensors, metadata);
  static std::vector<uint8_t> bytes;  // the parsed file refers to them
  bytes = testing::WriteSafetensors(tensors, metadata);
  auto file = ParseSafetensors(bytes);
  REQUIRE(file.ok());
  return EntropyTables::Load(*file, spec.tokens, spec.fsq_levels);
}

TEST_CASE("Entropy tables: malformed tables are refused, absent or newer ones ignored") {
  const EntropyTableSpec spec;
  using Tensors = std::map<std::string, testing::TestTensor>;
  using Metadata = std::map<std::string, std::string>;
  auto ok = LoadEdited(spec, [](Tensors&, Metadata&) {});
  REQUIRE(ok.ok());
  CHECK(*ok != nullptr);

  auto none = LoadEdited(spec, [](Tensors& t, Metadata& m) { t.clear(), m.clear(); });
  REQUIRE(none.ok());
  CHECK(*none == nullptr);
  auto newer = LoadEdited(spec, [](Tensors&, Metadata& m) { m["entropy"] = R"({"version": 2})"; });
  REQUIRE(newer.ok());
  CHECK(*newer == nullptr);

  auto refused = [&](const char* what, const std::function<void(Tensors&, Metadata&)>& edit) {
    auto tables = LoadEdited(spec, edit);
    CHECK_MESSAGE(tables.status().code() == StatusCode::kCorrupt, what);
  };
  refused("tensors without metadata", [](Tensors&, Metadata& m) { m.clear(); });
  refused("metadata not JSON", [](Tensors&, Metadata& m) { m["entropy"] = "{\"version\": 1,"; });
  refused("prob_bits out of range", [](Tensors&, Metadata& m) {
    m["entropy"] = R"({"version": 1, "prob_bits": 20, "contexts": 3, "activity_window": 2})";
  });
  refused("contexts disagree with the tensors", [](Tensors&, Metadata& m) {
    m["entropy"] = R"({"version": 1, "prob_bits": 15, "contexts": 4, "activity_window": 2})";
  });
  refused("window above K", [](Tensors&, Metadata& m) {
    m["entropy"] = R"({"version": 1, "prob_bits": 15, "contexts": 3, "activity_window": 9})";
  });
  refused("missing frequencies", [](Tensors& t, Metadata&) { t.erase("entropy.frequencies"); });
  refused("wrong dtype",
          [](Tensors& t, Metadata&) { t["entropy.activity_thresholds"].dtype = "U32"; });
  refused("a level with frequency 0", [](Tensors& t, Metadata&) {
    auto& data = t["entropy.frequencies"].data;
    data[0] = data[1] = 0;
  });
  refused("frequencies do not sum to 2^prob_bits",
          [](Tensors& t, Metadata&) { t["entropy.frequencies"].data[0] ^= 1; });
  refused("frequency beyond a dimension's levels", [](Tensors& t, Metadata&) {
    // Dimension 1 has 5 of 8 levels: its entry for level 5 must be 0.
    auto& data = t["entropy.frequencies"].data;
    data[2 * (3 * 8 + 5)] = 1;
  });
  refused("decreasing thresholds", [](Tensors& t, Metadata&) {
    auto& data = t["entropy.activity_thresholds"].data;
    data[0] = 0xFF, data[4] = 0;
  });
}

}  // namespace
}  // namespace tok1d
