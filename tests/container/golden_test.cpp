#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "checksum_mode.h"
#include "container/golden.h"
#include "container/t1d.h"
#include "container/token_files.h"

namespace tok1d {
namespace {

const std::filesystem::path kGoldenDir = std::filesystem::path(TOK1D_TEST_DATA_DIR) / "container";
constexpr const char* kRegenerate =
    "if the format change is intended, bump the version in container/FORMAT.md and run "
    "'cmake --build build --target regenerate-golden'";

std::vector<uint8_t> ReadGolden(const std::string& name) {
  std::ifstream in(kGoldenDir / name, std::ios::binary);
  REQUIRE_MESSAGE(in, "missing golden file " << name << "; " << kRegenerate);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("Golden files match their generator byte for byte and read as expected") {
  const auto files = testing::MakeGoldenFiles();
  for (const auto& golden : files) {
    CAPTURE(golden.name);
    const std::vector<uint8_t> committed = ReadGolden(golden.name);
    CHECK_MESSAGE(committed == golden.bytes,
                  golden.name << " differs from its generator; " << kRegenerate);
    auto file = ReadT1d(committed);
    if (!testing::kT1dChecksumsVerified && golden.expected_message == "checksum mismatch") {
      // A fuzzing build lets the damaged file past its checksum (checksum_mode.h).
      CHECK(file.status().message().find("checksum") == std::string::npos);
      continue;
    }
    CHECK(file.status().code() == golden.expected);
    CHECK_MESSAGE(file.status().message().find(golden.expected_message) != std::string::npos,
                  "message: " << file.status().message());
  }
  const std::vector<uint8_t> manifest = ReadGolden("MANIFEST.tsv");
  CHECK(std::string(manifest.begin(), manifest.end()) == testing::GoldenManifest(files));

  std::set<std::string> listed = {"MANIFEST.tsv"};
  for (const auto& golden : files) listed.insert(golden.name);
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    CHECK_MESSAGE(listed.count(entry.path().filename().string()) == 1,
                  "unlisted file in tests/data/container: " << entry.path().filename());
  }
}

TEST_CASE("Golden files: trim, future minor version, other coder, truncation") {
  auto tiled = ReadT1d(ReadGolden("valid_per_tile_counts.t1d"));
  REQUIRE(tiled.ok());
  CHECK(tiled->header.layers_per_tile == std::vector<uint32_t>{5, 0, 3, 1, 5, 2});
  CHECK(tiled->header.alpha_composited);
  REQUIRE(tiled->extra_chunks.size() == 1);
  CHECK(tiled->extra_chunks[0].type_name() == "noTe");
  auto trimmed = TrimTokens(*tiled, 2);
  REQUIRE(trimmed.ok());
  CHECK(*WriteT1d(*trimmed, nullptr, {.layer_spans = false}) ==
        ReadGolden("valid_trimmed_to_2.t1d"));

  auto future = ReadT1d(ReadGolden("valid_future_minor.t1d"));
  REQUIRE(future.ok());
  CHECK(future->header.minor_version == kT1dMinorVersion + 1);
  CHECK(future->header.head_extension == std::vector<uint8_t>{0xAB, 0xCD});
  // Trimming keeps the newer minor version's extension and chunks.
  auto future_trimmed = ReadT1d(*TrimT1dBytes(ReadGolden("valid_future_minor.t1d"), 1));
  REQUIRE(future_trimmed.ok());
  CHECK(future_trimmed->header.head_extension == future->header.head_extension);
  CHECK(future_trimmed->extra_chunks.size() == 1);

  auto other = ReadGolden("valid_other_coder.t1d");
  CHECK(ReadT1dHeader(other).ok());
  CHECK(ReadT1d(other, {}, nullptr, &testing::FakeCoder()).ok());

  ReadOptions progressive;
  progressive.allow_truncated = true;
  ReadReport report;
  auto partial = ReadT1d(ReadGolden("truncated_in_layer_3.t1d"), progressive, &report);
  REQUIRE(partial.ok());
  CHECK(report.truncated);
  CHECK(report.layers_complete == 3);
  CHECK(partial->header.layers_per_tile == std::vector<uint32_t>{3, 0, 3, 1, 3, 2});
  for (size_t t = 0; t < partial->tokens.size(); ++t) {
    CHECK(
        std::equal(partial->tokens[t].begin(), partial->tokens[t].end(), tiled->tokens[t].begin()));
  }
}

TEST_CASE("Golden files of version 1.2: spans read, trim and truncate like the 1.0 files") {
  const auto tiled = ReadT1d(ReadGolden("valid_per_tile_counts.t1d"));
  REQUIRE(tiled.ok());
  const std::vector<uint8_t> spans_bytes = ReadGolden("valid_spans.t1d");
  CHECK(spans_bytes[9] == 2);
  auto spans = ReadT1d(spans_bytes);
  REQUIRE(spans.ok());
  CHECK(spans->header.minor_version == 2);
  CHECK(spans->tokens == tiled->tokens);
  CHECK(spans->extra_chunks.size() == 1);
  // The same tokens written again by this writer, and the 1.0 file converted.
  CHECK(*WriteT1d(*spans, nullptr, {.span_bytes = 8}) == spans_bytes);
  auto info = ReadT1dHeader(spans_bytes);
  REQUIRE(info.ok());
  REQUIRE(info->layout.layer_chunks.size() == 3);
  CHECK(info->layout.layer_chunks[1].first_layer == 1);
  CHECK(info->layout.layer_chunks[1].layers == 2);
  CHECK(info->layout.layer_payload_bytes == std::vector<uint64_t>{9, 7, 5, 4, 4});

  // Trim keeps span 0 and cuts span 1, copying payload bytes; the same as writing trimmed tokens.
  const std::vector<uint8_t> trimmed = ReadGolden("valid_spans_trimmed_to_2.t1d");
  CHECK(*TrimT1dBytes(spans_bytes, 2) == trimmed);
  CHECK(*WriteT1d(*TrimTokens(*tiled, 2), nullptr, {.span_bytes = 8}) == trimmed);
  auto trimmed_info = ReadT1dHeader(trimmed);
  REQUIRE(trimmed_info.ok());
  CHECK(trimmed_info->layout.layer_chunks.size() == 2);
  CHECK(trimmed_info->layout.layer_chunks[1].layers == 1);

  ReadOptions progressive;
  progressive.allow_truncated = true;
  ReadReport report;
  auto partial = ReadT1d(ReadGolden("truncated_in_span_2.t1d"), progressive, &report);
  REQUIRE(partial.ok());
  CHECK(report.truncated);
  CHECK(report.layers_complete == 1);
  CHECK(partial->header.layers_per_tile == std::vector<uint32_t>{1, 0, 1, 1, 1, 1});

  auto minimal = ReadT1d(ReadGolden("valid_minimal_spans.t1d"));
  REQUIRE(minimal.ok());
  CHECK(minimal->tokens == ReadT1d(ReadGolden("valid_minimal.t1d"))->tokens);
}

TEST_CASE("Golden files: refinement layers read, trim and rewrite as the generator made them") {
  testing::TokenFileSpec spec;
  spec.width = 40;
  spec.height = 20;
  spec.fsq_levels = {7, 5, 5, 5, 5};
  spec.refinement = {2, {0, 2}};
  spec.counts = {7, 0, 3, 1, 10, 2};
  const TokenFile made = testing::MakeTokenFile(spec, 5);
  auto refined = ReadT1d(ReadGolden("valid_refinement.t1d"));
  REQUIRE(refined.ok());
  CHECK(refined->header.minor_version == 3);
  CHECK(refined->header.refinement == spec.refinement);
  CHECK(refined->tokens == made.tokens);
  CHECK(refined->refinements == made.refinements);
  // layers t0 r0 t1 t2 r1 t3 …: 7 layers hold 5 tokens and 2 refinements, 3 layers 2 and 1.
  CHECK(refined->header.tokens_per_tile() == std::vector<uint32_t>{5, 0, 2, 1, 8, 1});
  CHECK(refined->refinements[0].size() == 2);
  CHECK(refined->refinements[2].size() == 1);
  CHECK(refined->header.LayersForTokens(2) == 3);
  CHECK(refined->header.LayersForTokens(3) == 5);

  // Trimming to 2 tokens keeps 3 layers, on the bytes and on the tokens alike.
  auto trimmed = TrimTokens(*refined, 2);
  REQUIRE(trimmed.ok());
  CHECK(trimmed->header.layers_per_tile == std::vector<uint32_t>{3, 0, 3, 1, 3, 2});
  CHECK(*WriteT1d(*trimmed) == ReadGolden("valid_refinement_trimmed_to_2.t1d"));
  CHECK(*WriteT1d(*refined) == ReadGolden("valid_refinement.t1d"));

  // One layer (token 0 alone) keeps no refinement layer: no REFN chunk (the counts, a palette,
  // make it 1.5), and the same bytes whether the bytes or the tokens are trimmed.
  const std::vector<uint8_t> token_only = ReadGolden("valid_refinement_trimmed_to_1.t1d");
  CHECK(*TrimT1dBytes(ReadGolden("valid_refinement.t1d"), 1) == token_only);
  const std::vector<uint32_t> one_layer = {1, 0, 1, 1, 1, 1};
  CHECK(*WriteT1d(*TrimLayers(*refined, one_layer)) == token_only);
  CHECK(testing::SplitChunks(token_only).chunks[1].type != "REFN");
  auto token_only_file = ReadT1d(token_only);
  REQUIRE(token_only_file.ok());
  CHECK(token_only_file->header.minor_version == kCountsPaletteMinorVersion);
  CHECK(token_only_file->header.refinement.bits == 0);
  CHECK(token_only_file->header.layers_per_tile == one_layer);
  CHECK(token_only_file->tokens == TrimLayers(*refined, one_layer)->tokens);
  CHECK(*WriteT1d(*token_only_file) == token_only);  // rewriting a file without REFN

  // Progressive reading of a cut file keeps whole layers of both kinds.
  const std::vector<uint8_t> bytes = ReadGolden("valid_refinement.t1d");
  ReadOptions lenient;
  lenient.allow_truncated = true;
  auto cut = ReadT1d(std::span(bytes).first(bytes.size() - 20), lenient);
  REQUIRE(cut.ok());
  CHECK(cut->tokens.size() == 6);
}

TEST_CASE(
    "Golden files: the rstr chunk's maps read back; unbound, they are left out; trim drops cut "
    "tiles") {
  ReadReport report;
  auto restored = ReadT1d(ReadGolden("valid_restoration.t1d"), {}, &report);
  REQUIRE(restored.ok());
  CHECK(report.warnings.empty());
  REQUIRE(restored->restoration.tiles.size() == 6);
  CHECK(restored->restoration.tiles[0].used);
  CHECK(restored->restoration.tiles[2].matrix[6] == 40);
  CHECK(restored->restoration.tiles[4].offset[0] == -7);
  CHECK_FALSE(restored->restoration.tiles[1].used);
  // The same tokens as the file without the chunk.
  auto plain = ReadT1d(ReadGolden("valid_per_tile_counts.t1d"));
  REQUIRE(plain.ok());
  CHECK(restored->tokens == plain->tokens);

  report = {};
  auto unbound = ReadT1d(ReadGolden("valid_restoration_unbound.t1d"), {}, &report);
  REQUIRE(unbound.ok());
  CHECK(unbound->restoration.tiles.empty());
  REQUIRE(report.warnings.size() == 1);
  CHECK(report.warnings[0].find("other tile counts") != std::string::npos);

  // Trimming to 2 tokens cuts tiles 0, 2 and 4, the three with maps: no chunk is left, and the
  // file is the plain file trimmed.
  auto trimmed = TrimT1dBytes(ReadGolden("valid_restoration.t1d"), 2);
  REQUIRE(trimmed.ok());
  CHECK(*trimmed == ReadGolden("valid_trimmed_to_2.t1d"));
}

}  // namespace
}  // namespace tok1d
