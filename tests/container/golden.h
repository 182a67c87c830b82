// The golden .t1d files under tests/data/container/: how each is made and what reading it
// must give. tests/container/golden_test.cpp checks the committed files against this table
// byte for byte; t1d_make_golden writes them (cmake --build build --target regenerate-golden).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d::testing {

struct GoldenFile {
  std::string name;  // file name under tests/data/container/
  std::vector<uint8_t> bytes;
  StatusCode expected;           // of ReadT1d with default options (kOk for valid files)
  std::string expected_message;  // a substring of the error message
  std::string description;
};

std::vector<GoldenFile> MakeGoldenFiles();

// MANIFEST.tsv: one line per golden file, for people and other implementations.
std::string GoldenManifest(const std::vector<GoldenFile>& files);

// A stand-in for a later entropy coder (id 7): tokens as u32 each, params "fake".
const LayerCoder& FakeCoder();

// An independent, minimal reading of FORMAT.md's framing, to build damaged files whose
// checksums are right.
struct RawChunk {
  std::string type;
  std::vector<uint8_t> data;
};
struct FramedFile {
  std::vector<uint8_t> preamble;  // 12 bytes
  std::vector<RawChunk> chunks;
};
FramedFile SplitChunks(const std::vector<uint8_t>& file);
std::vector<uint8_t> JoinChunks(const FramedFile& framed);  // checksums recomputed

// LAYS chunk data (FORMAT.md): first layer, layer count, lengths and payloads, each field as
// a one-byte varint (so every value must be below 128), then the payloads.
std::vector<uint8_t> SpanData(uint32_t first, const std::vector<std::vector<uint8_t>>& layers);

}  // namespace tok1d::testing
