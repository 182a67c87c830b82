// A .t1d file's chunk sequence, parsed and verified (FORMAT.md, "File structure"): the
// preamble, HEAD, REFN, the token layer chunks (LAYR or LAYS), ancillary chunks and DONE,
// without decoding any layer. Internal to container/.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "container/chunks.h"
#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d::t1d_internal {

// The file's structure, verified, with views into the input bytes.
struct ParsedFile {
  T1dHeader header;
  std::vector<std::span<const uint8_t>> layers;  // coded bytes of layers 0..m-1, unframed
  std::vector<ChunkView> extras;
  T1dLayout layout;
  ReadReport report;
};

// Copies of the ancillary chunks, in file order, but the rstr chunk (TokenFile::restoration).
std::vector<T1dChunk> ExtraChunks(const ParsedFile& file);

// Parses and checks the whole structure of `bytes`; with options.allow_truncated a file cut
// before DONE gives its complete layers and report.truncated.
StatusOr<ParsedFile> ParseFile(std::span<const uint8_t> bytes, const ReadOptions& options);

}  // namespace tok1d::t1d_internal
