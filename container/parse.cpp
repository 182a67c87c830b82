// Every field read from a file is checked before use, and no allocation is sized by a file
// field that has not been bounded by the input size or by the pixel limit (see "Reader limits"
// in FORMAT.md).
#include "container/parse.h"

#include <string>

#include "container/byte_io.h"
#include "container/header.h"

namespace tok1d::t1d_internal {
namespace {

// Checks a LAYS chunk (FORMAT.md, "LAYS chunk") and appends its layers to `file`.
Status AddLayerSpan(const ChunkView& chunk, uint32_t layer_count, ParsedFile* file) {
  if (file->header.minor_version < kLayerSpanMinorVersion) {
    return CorruptError("layer span chunk in a version 1." +
                        std::to_string(file->header.minor_version) + " file (spans need 1.2)");
  }
  const auto expected = static_cast<uint32_t>(file->layers.size());
  const std::string where = "layer span at byte " + std::to_string(chunk.offset);
  const auto malformed = [&](const ByteReader& r) {
    return r.overrun() ? CorruptError(where + " ends inside its layer lengths")
                       : CorruptError(where +
                                      " has a malformed varint (not minimal, over 32 "
                                      "bits, or reserved bits set)");
  };
  ByteReader r(chunk.data);
  uint32_t first = 0, count = 0;
  if (!r.Varint(&first) || !r.Varint(&count)) return malformed(r);
  if (first != expected) {
    return CorruptError("token layer span starts at layer " + std::to_string(first) +
                        " where layer " + std::to_string(expected) + " of " +
                        std::to_string(layer_count) + " was expected");
  }
  if (count == 0) return CorruptError(where + " holds no layers");
  if (count > layer_count - first) {
    return CorruptError(where + " holds layers " + std::to_string(first) + ".." +
                        std::to_string(uint64_t{first} + count - 1) + " but HEAD declares " +
                        std::to_string(layer_count));
  }
  // count <= layer_count <= 65535 bounds this allocation.
  std::vector<uint32_t> lengths(count);
  uint64_t total = 0;
  for (uint32_t& length : lengths) {
    if (!r.Varint(&length)) return malformed(r);
    total += length;
  }
  if (total != r.remaining()) {
    return CorruptError(where + ": its layer lengths add up to " + std::to_string(total) +
                        " bytes but it holds " + std::to_string(r.remaining()));
  }
  size_t at = chunk.data.size() - r.remaining();
  for (uint32_t i = 0; i < count; ++i) {
    file->layers.push_back(chunk.data.subspan(at, lengths[i]));
    at += lengths[i];
    // The span's framing is charged to its first layer, each length field to its layer.
    uint64_t share = lengths[i] + VarintSize(lengths[i]);
    if (i == 0) share += kChunkOverhead + VarintSize(first) + VarintSize(count);
    file->layout.layer_bytes.push_back(share);
    file->layout.layer_payload_bytes.push_back(lengths[i]);
  }
  file->layout.layer_chunks.push_back({TypeName(kSpanType), first, count, chunk.size});
  return OkStatus();
}

}  // namespace

std::vector<T1dChunk> ExtraChunks(const ParsedFile& file) {
  std::vector<T1dChunk> extras;
  for (const ChunkView& extra : file.extras) {
    if (extra.type == kRestorationType) continue;  // TokenFile::restoration
    extras.push_back(T1dChunk{extra.type, {extra.data.begin(), extra.data.end()}});
  }
  return extras;
}

StatusOr<ParsedFile> ParseFile(std::span<const uint8_t> bytes, const ReadOptions& options) {
  TOK1D_RETURN_IF_ERROR(CheckPreamble(bytes));
  ParsedFile file;
  file.layout.file_bytes = bytes.size();

  ChunkView head;
  TOK1D_ASSIGN_OR_RETURN(ChunkRead head_read, ReadChunk(bytes, kPreambleSize, 0, &head));
  if (head_read == ChunkRead::kIncomplete) return TruncatedError("file ends inside its header");
  if (head.type != kHeadType) {
    return CorruptError("first chunk is '" + TypeName(head.type) + "', expected 'HEAD'");
  }
  if (bytes[10] != 0 || bytes[11] != 0) return CorruptError("reserved preamble bits are set");
  TOK1D_ASSIGN_OR_RETURN(file.header, ParseHeadData(head.data, bytes[9], options.max_pixels));
  file.layout.header_bytes = kPreambleSize + head.size;
  size_t offset = kPreambleSize + head.size;
  {  // an optional REFN chunk right after HEAD: the counts depend on it
    ChunkView refinement;
    TOK1D_ASSIGN_OR_RETURN(ChunkRead read, ReadChunk(bytes, offset, offset, &refinement));
    if (read == ChunkRead::kOk && refinement.type == kRefinementType) {
      TOK1D_RETURN_IF_ERROR(ParseRefinement(refinement, &file.header));
      offset += refinement.size;
      file.layout.header_bytes += refinement.size;
    } else {
      const Status counts = CheckCounts(file.header);
      if (!counts.ok() && read == ChunkRead::kIncomplete) {
        return TruncatedError("file ends inside its header");
      }
      TOK1D_RETURN_IF_ERROR(counts);
    }
  }

  {  // then an optional QSTP chunk
    ChunkView steps;
    TOK1D_ASSIGN_OR_RETURN(ChunkRead read, ReadChunk(bytes, offset, offset, &steps));
    if (read == ChunkRead::kOk && steps.type == kStepsType) {
      TOK1D_RETURN_IF_ERROR(ParseSteps(steps, &file.header));
      offset += steps.size;
      file.layout.header_bytes += steps.size;
    }
  }

  const uint32_t layer_count = file.header.layer_count();
  file.report.layers_declared = layer_count;
  for (;;) {
    ChunkView chunk;
    TOK1D_ASSIGN_OR_RETURN(ChunkRead read, ReadChunk(bytes, offset, offset, &chunk));
    if (read == ChunkRead::kIncomplete) break;
    offset += chunk.size;
    const auto index = static_cast<uint32_t>(file.layers.size());
    if (chunk.type == kLayerType || chunk.type == kSpanType) {
      const std::vector<T1dLayerChunk>& chunks = file.layout.layer_chunks;
      if (!chunks.empty() && chunks.back().type != TypeName(chunk.type)) {
        return CorruptError("file mixes LAYR and LAYS token layer chunks");
      }
    }
    if (chunk.type == kSpanType) {
      TOK1D_RETURN_IF_ERROR(AddLayerSpan(chunk, layer_count, &file));
    } else if (chunk.type == kLayerType) {
      if (chunk.data.size() < kLayerIndexSize)
        return CorruptError("token layer chunk is too short");
      const uint32_t stored_index = ByteReader(chunk.data).U16();
      if (stored_index != index || index >= layer_count) {
        return CorruptError("token layer " + std::to_string(stored_index) + " found where layer " +
                            std::to_string(index) + " of " + std::to_string(layer_count) +
                            " was expected");
      }
      file.layers.push_back(chunk.data.subspan(kLayerIndexSize));
      file.layout.layer_bytes.push_back(chunk.size);
      file.layout.layer_payload_bytes.push_back(chunk.data.size() - kLayerIndexSize);
      file.layout.layer_chunks.push_back({TypeName(kLayerType), index, 1, chunk.size});
    } else if (chunk.type == kDoneType) {
      if (chunk.data.size() != 4) return CorruptError("end chunk has the wrong size");
      const uint32_t done_count = ByteReader(chunk.data).U32();
      if (done_count != layer_count) {
        return CorruptError("end chunk counts " + std::to_string(done_count) +
                            " token layers, HEAD declares " + std::to_string(layer_count));
      }
      if (index != layer_count) {
        return CorruptError("end chunk after " + std::to_string(index) + " of " +
                            std::to_string(layer_count) + " token layers");
      }
      if (offset != bytes.size()) {
        return CorruptError(std::to_string(bytes.size() - offset) +
                            " bytes of unexpected data after the end chunk");
      }
      file.report.layers_complete = index;
      return file;
    } else if (chunk.type == kHeadType) {
      return CorruptError("second HEAD chunk at byte " + std::to_string(chunk.offset));
    } else if (chunk.type == kRefinementType) {
      return CorruptError("refinement chunk at byte " + std::to_string(chunk.offset) +
                          " does not directly follow HEAD");
    } else if (chunk.type == kStepsType) {
      return CorruptError("quantiser step chunk at byte " + std::to_string(chunk.offset) +
                          " does not directly follow HEAD or REFN");
    } else if ((chunk.type[0] & 0x20) != 0) {
      file.extras.push_back(chunk);
      file.layout.extra_bytes += chunk.size;
      file.layout.extra_chunk_types.push_back(TypeName(chunk.type));
      file.layout.extra_chunk_bytes.push_back(chunk.size);
    } else {
      return UnsupportedError("unknown critical chunk '" + TypeName(chunk.type) +
                              "'; the file needs a newer tok1d");
    }
  }

  // The input ended before DONE.
  const auto complete = static_cast<uint32_t>(file.layers.size());
  const std::string what = "file is truncated after " + std::to_string(complete) + " of " +
                           std::to_string(layer_count) + " token layers";
  if (!options.allow_truncated) return TruncatedError(what);
  file.report.truncated = true;
  file.report.layers_complete = complete;
  file.report.warnings.push_back(what + "; decoding what is present");
  return file;
}

}  // namespace tok1d::t1d_internal
