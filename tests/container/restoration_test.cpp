// The rstr chunk (FORMAT.md): round trips, its place in the file, trimming, and files whose
// chunk no longer fits their tokens or is damaged (decoded without it, with a warning).
#include <doctest/doctest.h>

#include <string>

#include "container/t1d.h"
#include "container/token_files.h"

namespace tok1d {
namespace {

using testing::MakeTokenFile;
using testing::RandomCounts;
using testing::Rng;
using testing::TokenFileSpec;

TokenFileSpec Spec() {
  TokenFileSpec spec;
  spec.width = 50;
  spec.height = 33;  // 4 × 3 tiles of 16
  spec.max_tokens = 6;
  return spec;
}

// Maps on every other tile, with values from small to the largest allowed.
Restoration SomeMaps(size_t tiles, uint64_t seed) {
  Rng rng(seed);
  Restoration restoration;
  restoration.tiles.resize(tiles);
  for (size_t t = 0; t < tiles; t += 2) {
    TileRestoration& map = restoration.tiles[t];
    map.used = true;
    for (int32_t& v : map.offset) v = static_cast<int32_t>(rng.Next() % 9) - 4;
    for (int32_t& v : map.matrix) v = static_cast<int32_t>(rng.Next() % 41) - 20;
  }
  restoration.tiles[0].matrix[4] = kRestorationMaxValue;
  restoration.tiles[0].offset[2] = -kRestorationMaxValue;
  return restoration;
}

std::vector<uint8_t> Write(const TokenFile& file) {
  auto bytes = WriteT1d(file);
  REQUIRE_MESSAGE(bytes.ok(), bytes.status().message());
  return *bytes;
}

bool SameMaps(const Restoration& a, const Restoration& b) {
  if (a.tiles.size() != b.tiles.size() || a.offset_step != b.offset_step ||
      a.matrix_shift != b.matrix_shift) {
    return false;
  }
  for (size_t t = 0; t < a.tiles.size(); ++t) {
    if (a.tiles[t].used != b.tiles[t].used) return false;
    if (a.tiles[t].used &&
        (a.tiles[t].offset != b.tiles[t].offset || a.tiles[t].matrix != b.tiles[t].matrix)) {
      return false;
    }
  }
  return true;
}

// The byte offset of the first chunk of `type` (after the 12-byte preamble), or 0.
size_t ChunkOffset(const std::vector<uint8_t>& bytes, const std::string& type) {
  size_t at = 12;
  while (at + 8 <= bytes.size()) {
    if (std::string(bytes.begin() + static_cast<long>(at),
                    bytes.begin() + static_cast<long>(at) + 4) == type)
      return at;
    const uint32_t length = bytes[at + 4] | bytes[at + 5] << 8 | bytes[at + 6] << 16 |
                            static_cast<uint32_t>(bytes[at + 7]) << 24;
    at += 12 + length;
  }
  return 0;
}

TEST_CASE("rstr: maps round trip, and the chunk comes last before DONE") {
  Rng rng(5);
  for (int round = 0; round < 10; ++round) {
    TokenFileSpec spec = Spec();
    spec.counts = RandomCounts(spec, rng);
    TokenFile file = MakeTokenFile(spec, rng.Next());
    file.restoration = SomeMaps(file.tokens.size(), rng.Next());
    file.restoration.offset_step = static_cast<uint8_t>(1 + round);
    file.restoration.matrix_shift = static_cast<uint8_t>(round);
    const std::vector<uint8_t> bytes = Write(file);
    ReadReport report;
    auto back = ReadT1d(bytes, {}, &report);
    REQUIRE(back.ok());
    CHECK(report.warnings.empty());
    CHECK(SameMaps(back->restoration, file.restoration));
    CHECK(back->extra_chunks.empty());  // the chunk is the restoration, not an extra chunk
    const size_t rstr = ChunkOffset(bytes, "rstr");
    REQUIRE(rstr > 0);
    CHECK(ChunkOffset(bytes, "DONE") > rstr);
    CHECK(ChunkOffset(bytes, "LAYS") < rstr);
  }
}

TEST_CASE("rstr: no chunk when no tile uses its map") {
  TokenFile file = MakeTokenFile(Spec(), 3);
  const std::vector<uint8_t> plain = Write(file);
  file.restoration.tiles.resize(file.tokens.size());  // all unused
  CHECK(Write(file) == plain);
  CHECK(ChunkOffset(plain, "rstr") == 0);
}

TEST_CASE("rstr: the writer refuses maps that do not fit the file") {
  TokenFile file = MakeTokenFile(Spec(), 3);
  file.restoration = SomeMaps(file.tokens.size() - 1, 1);
  CHECK(WriteT1d(file).status().code() == StatusCode::kInvalidArgument);
  file.restoration = SomeMaps(file.tokens.size(), 1);
  file.restoration.tiles[0].offset[0] = kRestorationMaxValue + 1;
  CHECK(WriteT1d(file).status().code() == StatusCode::kInvalidArgument);
  file.restoration = SomeMaps(file.tokens.size(), 1);
  file.restoration.offset_step = 0;
  CHECK(WriteT1d(file).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("rstr: trimming keeps the maps of the tiles it does not cut, on tokens and on bytes") {
  Rng rng(11);
  TokenFileSpec spec = Spec();
  spec.counts = RandomCounts(spec, rng);
  TokenFile file = MakeTokenFile(spec, 8);
  file.restoration = SomeMaps(file.tokens.size(), 9);
  const std::vector<uint8_t> bytes = Write(file);
  for (uint32_t k = 1; k <= spec.max_tokens; ++k) {
    CAPTURE(k);
    auto by_tokens = TrimTokens(file, k);
    REQUIRE(by_tokens.ok());
    auto by_bytes = TrimT1dBytes(bytes, k);
    REQUIRE(by_bytes.ok());
    CHECK(*by_bytes == Write(*by_tokens));
    ReadReport report;
    auto back = ReadT1d(*by_bytes, {}, &report);
    REQUIRE(back.ok());
    CHECK(report.warnings.empty());
    bool any = false;
    for (size_t t = 0; t < file.tokens.size(); ++t) {
      const bool cut = file.tokens[t].size() > k;
      const bool kept = !back->restoration.tiles.empty() && back->restoration.tiles[t].used;
      CHECK(kept == (!cut && file.restoration.tiles[t].used));
      any = any || kept;
    }
    CHECK((ChunkOffset(*by_bytes, "rstr") != 0) == any);
  }
}

TEST_CASE("rstr: a chunk fitted for other counts, damaged or unknown is left out with a warning") {
  TokenFile file = MakeTokenFile(Spec(), 4);
  file.restoration = SomeMaps(file.tokens.size(), 2);
  const std::vector<uint8_t> bytes = Write(file);
  const size_t rstr = ChunkOffset(bytes, "rstr");
  REQUIRE(rstr > 0);
  // A trimmer that does not know the chunk copies it (ancillary chunks are kept) and changes
  // the counts: the chunk's binding no longer matches.
  TokenFile trimmed_plain = *TrimTokens(file, 3);
  trimmed_plain.restoration = {};
  std::vector<uint8_t> stale = Write(trimmed_plain);
  const size_t done = ChunkOffset(stale, "DONE");
  const size_t rstr_end = ChunkOffset(bytes, "DONE");
  stale.insert(stale.begin() + static_cast<long>(done), bytes.begin() + static_cast<long>(rstr),
               bytes.begin() + static_cast<long>(rstr_end));
  ReadReport report;
  auto back = ReadT1d(stale, {}, &report);
  REQUIRE(back.ok());
  CHECK(back->restoration.tiles.empty());
  REQUIRE(report.warnings.size() == 1);
  CHECK(report.warnings[0].find("other tile counts") != std::string::npos);
  // Bad fields inside a chunk whose checksum holds are the writer's doing: warned, not fatal.
  // Here an unknown method (byte 4 of the data), written as an extra chunk.
  T1dChunk unknown{{'r', 's', 't', 'r'}, {0, 0, 0, 0, 7, 8, 5, 0, 0}};
  TokenFile with_unknown = file;
  with_unknown.restoration = {};
  with_unknown.extra_chunks.push_back(unknown);
  report = {};
  back = ReadT1d(Write(with_unknown), {}, &report);
  REQUIRE(back.ok());
  CHECK(back->restoration.tiles.empty());
  REQUIRE(report.warnings.size() == 1);
  CHECK(report.warnings[0].find("colour restoration not used") != std::string::npos);
}

TEST_CASE("rstr: a truncated file keeps the maps of its whole tiles only") {
  TokenFile file = MakeTokenFile(Spec(), 6);
  file.restoration = SomeMaps(file.tokens.size(), 3);
  const std::vector<uint8_t> bytes = Write(file);
  // Cut just before DONE: every layer is there, the file is still truncated.
  const size_t done = ChunkOffset(bytes, "DONE");
  ReadOptions lenient;
  lenient.allow_truncated = true;
  ReadReport report;
  auto back = ReadT1d(std::span(bytes).first(done), lenient, &report);
  REQUIRE(back.ok());
  CHECK(report.truncated);
  CHECK(SameMaps(back->restoration, file.restoration));
  // Cut inside the layers: the rstr chunk is gone with them.
  auto cut = ReadT1d(std::span(bytes).first(bytes.size() / 2), lenient, &report);
  REQUIRE(cut.ok());
  CHECK(cut->restoration.tiles.empty());
}

}  // namespace
}  // namespace tok1d
