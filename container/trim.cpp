// Trimming: keeping a prefix of each tile's layers, on a TokenFile or on the bytes of a file
// (which copies the kept layers' coded bytes without decoding them).
#include <algorithm>
#include <string>

#include "container/chunks.h"
#include "container/parse.h"
#include "container/restoration.h"
#include "container/t1d.h"
#include "container/write.h"

namespace tok1d {
namespace {

// A trimmed file's minor version is what it still uses (the writer raises it from 0), so
// trimming a file equals encoding it at the smaller counts: counts that were a palette (1.5)
// may have become equal. A newer minor version than this writer's is kept with its extension.
uint8_t MinorVersionAfterTrim(uint8_t minor_version) {
  return minor_version > kT1dMinorVersion ? minor_version : 0;
}

}  // namespace

using t1d_internal::AssembleFile;
using t1d_internal::ExtraChunks;
using t1d_internal::kSpanType;
using t1d_internal::ParsedFile;
using t1d_internal::ParseFile;
using t1d_internal::TypeName;

StatusOr<TokenFile> TrimLayers(TokenFile file, std::span<const uint32_t> counts) {
  if (counts.size() != file.header.layers_per_tile.size() || file.tokens.size() != counts.size() ||
      (!file.refinements.empty() && file.refinements.size() != counts.size())) {
    return InvalidArgumentError("trim needs one layer count per tile (" +
                                std::to_string(file.header.layers_per_tile.size()) + "), got " +
                                std::to_string(counts.size()));
  }
  t1d_internal::TrimRestoration(file.header, counts, &file.restoration);
  for (size_t t = 0; t < counts.size(); ++t) {
    if (counts[t] > file.header.layers_per_tile[t]) {
      return InvalidArgumentError(
          "tile " + std::to_string(t) + " has " + std::to_string(file.header.layers_per_tile[t]) +
          " layers; trim cannot add layers (asked for " + std::to_string(counts[t]) + ")");
    }
    file.tokens[t].resize(
        std::min<size_t>(file.tokens[t].size(), file.header.TokensInLayers(counts[t])));
    if (!file.refinements.empty()) {
      file.refinements[t].resize(
          std::min<size_t>(file.refinements[t].size(), file.header.RefinementsInLayers(counts[t])));
    }
    file.header.layers_per_tile[t] = counts[t];
  }
  file.header.minor_version = MinorVersionAfterTrim(file.header.minor_version);
  return file;
}

StatusOr<TokenFile> TrimTokens(TokenFile file, uint32_t k) {
  std::vector<uint32_t> counts(file.tokens.size());
  for (size_t t = 0; t < counts.size(); ++t) {
    counts[t] = std::min<uint32_t>(static_cast<uint32_t>(file.tokens[t].size()), k);
  }
  return TrimTokens(std::move(file), counts);
}

StatusOr<TokenFile> TrimTokens(TokenFile file, std::span<const uint32_t> counts) {
  if (counts.size() != file.tokens.size()) {
    return InvalidArgumentError("trim needs one token count per tile (" +
                                std::to_string(file.tokens.size()) + "), got " +
                                std::to_string(counts.size()));
  }
  std::vector<uint32_t> layers(counts.size());
  for (size_t t = 0; t < counts.size(); ++t) {
    if (counts[t] > file.tokens[t].size()) {
      return InvalidArgumentError(
          "tile " + std::to_string(t) + " has " + std::to_string(file.tokens[t].size()) +
          " tokens; trim cannot add tokens (asked for " + std::to_string(counts[t]) + ")");
    }
    // A tile cut short (a truncated file) keeps only the layers it has.
    layers[t] = std::min(file.header.LayersForTokens(counts[t]), file.header.layers_per_tile[t]);
  }
  return TrimLayers(std::move(file), layers);
}

StatusOr<std::vector<uint8_t>> TrimT1dBytes(std::span<const uint8_t> bytes, uint32_t k,
                                            const ReadOptions& options) {
  ReadOptions lenient = options;
  lenient.allow_truncated = true;
  TOK1D_ASSIGN_OR_RETURN(ParsedFile parsed, ParseFile(bytes, lenient));
  T1dHeader header = std::move(parsed.header);
  // The maps of the tiles that keep their layers stay (bound to the new counts).
  Restoration restoration = t1d_internal::ReadRestoration(parsed.extras, header, nullptr);
  std::vector<uint32_t> counts = header.layers_per_tile;
  for (uint32_t& count : counts) count = std::min(count, k);
  t1d_internal::TrimRestoration(header, counts, &restoration);
  header.layers_per_tile = std::move(counts);
  header.minor_version = MinorVersionAfterTrim(header.minor_version);
  const uint32_t kept_layers = header.layer_count();
  if (kept_layers > parsed.layers.size()) {
    return TruncatedError("file is truncated after " + std::to_string(parsed.layers.size()) +
                          " token layers; it can be trimmed to at most that many layers");
  }
  const std::vector<T1dChunk> extras = ExtraChunks(parsed);
  const auto layers = std::span(parsed.layers).first(kept_layers);
  const std::vector<T1dLayerChunk>& chunks = parsed.layout.layer_chunks;
  if (chunks.empty() || chunks[0].type != TypeName(kSpanType)) {
    return AssembleFile(header, extras, layers, nullptr, restoration);
  }
  // Whole spans before layer k; the span that holds layer k-1 keeps its first layers.
  std::vector<uint32_t> spans;
  for (const T1dLayerChunk& chunk : chunks) {
    if (chunk.first_layer >= kept_layers) break;
    spans.push_back(std::min(chunk.layers, kept_layers - chunk.first_layer));
  }
  return AssembleFile(header, extras, layers, &spans, restoration);
}

}  // namespace tok1d
