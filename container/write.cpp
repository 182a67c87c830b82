// Writing a .t1d file: WriteT1d checks a TokenFile, codes its layers (token layers with the
// LayerCoder, refinement layers fixed-width) and frames them (write.h).
#include "container/write.h"

#include <algorithm>
#include <string>

#include "container/byte_io.h"
#include "container/chunks.h"
#include "container/header.h"
#include "container/restoration.h"

namespace tok1d {
namespace t1d_internal {
namespace {

// The largest coded layer the writer accepts: it fits a LAYR chunk and a one-layer span.
constexpr uint64_t kMaxLayerBytes = UINT32_MAX - 3 * kMaxVarintSize;

}  // namespace

std::vector<uint32_t> GroupLayers(std::span<const std::span<const uint8_t>> layers,
                                  uint32_t span_bytes) {
  std::vector<uint32_t> spans;
  uint64_t payload = 0, data = 0;
  uint32_t count = 0;
  for (const std::span<const uint8_t>& layer : layers) {
    const uint64_t cost = layer.size() + kMaxVarintSize;
    if (count > 0 && data + cost > UINT32_MAX) {
      spans.push_back(count);
      payload = data = count = 0;
    }
    if (count == 0) data = 2 * kMaxVarintSize;
    ++count;
    payload += layer.size();
    data += cost;
    if (payload >= span_bytes) {
      spans.push_back(count);
      payload = data = count = 0;
    }
  }
  if (count > 0) spans.push_back(count);
  return spans;
}

std::vector<uint8_t> AssembleFile(const T1dHeader& header, std::span<const T1dChunk> extras,
                                  std::span<const std::span<const uint8_t>> layers,
                                  const std::vector<uint32_t>* spans,
                                  const Restoration& restoration) {
  std::vector<uint8_t> out(std::begin(kSignature), std::end(kSignature));
  ByteWriter writer(&out);
  writer.U8(header.major_version);
  uint8_t minor = std::max(header.minor_version, MinorVersionForCoder(header.entropy_coder));
  if (spans != nullptr) minor = std::max(minor, kLayerSpanMinorVersion);
  if (header.refinement.bits != 0) minor = std::max(minor, kRefinementMinorVersion);
  if (!header.steps.empty()) minor = std::max(minor, kStepsMinorVersion);
  if (CountsMode(header.layers_per_tile) == kCountsPaletteMode) {
    minor = std::max(minor, kCountsPaletteMinorVersion);
  }
  writer.U8(minor);
  writer.U16(0);  // reserved
  AppendChunk(kHeadType, SerializeHeadData(header), 0, &out);
  // A plan none of whose layers is kept changes nothing a reader sees, so it is left out
  // (FORMAT.md): the file stays 1.3, which keeps encode at k and trim to k byte-identical.
  if (header.refinement.bits != 0 && header.RefinementsInLayers(header.layer_count()) > 0) {
    AppendChunk(kRefinementType, SerializeRefinement(header.refinement), out.size(), &out);
  }
  // Likewise steps that no kept token uses (the file stays 1.4).
  if (header.steps.MaxStepIn(header.TokensInLayers(header.layer_count())) > 1) {
    AppendChunk(kStepsType, SerializeSteps(header.steps), out.size(), &out);
  }
  for (const T1dChunk& chunk : extras) AppendChunk(chunk.type, chunk.data, out.size(), &out);
  std::vector<uint8_t> data;
  if (spans != nullptr) {
    size_t first = 0;
    for (uint32_t count : *spans) {
      data.clear();
      ByteWriter span(&data);
      span.Varint(first);
      span.Varint(count);
      for (size_t j = first; j < first + count; ++j) span.Varint(layers[j].size());
      for (size_t j = first; j < first + count; ++j) span.Bytes(layers[j]);
      AppendChunk(kSpanType, data, out.size(), &out);
      first += count;
    }
  } else {
    for (size_t j = 0; j < layers.size(); ++j) {
      data.clear();
      ByteWriter(&data).U16(static_cast<uint32_t>(j));
      data.insert(data.end(), layers[j].begin(), layers[j].end());
      AppendChunk(kLayerType, data, out.size(), &out);
    }
  }
  if (restoration.any()) {
    AppendChunk(kRestorationType, SerializeRestoration(restoration, header), out.size(), &out);
  }
  data.clear();
  ByteWriter(&data).U32(static_cast<uint32_t>(layers.size()));
  AppendChunk(kDoneType, data, out.size(), &out);
  return out;
}

}  // namespace t1d_internal

using t1d_internal::AssembleFile;
using t1d_internal::CheckExtraChunks;
using t1d_internal::CheckHeaderFields;
using t1d_internal::CheckRestoration;
using t1d_internal::GroupLayers;
using t1d_internal::kMaxLayerBytes;

StatusOr<std::vector<uint8_t>> WriteT1d(const TokenFile& file, const LayerCoder* coder,
                                        const WriteOptions& options) {
  const T1dHeader& header = file.header;
  TOK1D_RETURN_IF_ERROR(CheckHeaderFields(header, UINT64_MAX).WithContext("invalid token file"));
  TOK1D_RETURN_IF_ERROR(CheckExtraChunks(file.extra_chunks));
  TOK1D_RETURN_IF_ERROR(CheckRestoration(file.restoration, header));
  if (coder == nullptr) coder = &RawLayerCoder();
  if (coder->id() != header.entropy_coder) {
    return InvalidArgumentError("header names entropy coder " +
                                EntropyCoderName(header.entropy_coder) + " but coder " +
                                EntropyCoderName(coder->id()) + " was given");
  }
  TOK1D_RETURN_IF_ERROR(coder->CheckHeader(header));
  if (file.tokens.size() != header.tile_count()) {
    return InvalidArgumentError("token lists for " + std::to_string(file.tokens.size()) +
                                " tiles, but the grid has " + std::to_string(header.tile_count()));
  }
  if (!file.refinements.empty() && file.refinements.size() != file.tokens.size()) {
    return InvalidArgumentError("refinements for " + std::to_string(file.refinements.size()) +
                                " tiles, but the grid has " + std::to_string(header.tile_count()));
  }
  const uint64_t codebook = header.codebook_size();
  const FsqCodebook grid = header.codebook();
  const uint32_t refinement_bits = header.refinement_value_bits();
  for (size_t t = 0; t < file.tokens.size(); ++t) {
    const uint32_t layers = header.layers_per_tile[t];
    const size_t refinements = file.refinements.empty() ? 0 : file.refinements[t].size();
    if (file.tokens[t].size() != header.TokensInLayers(layers) ||
        refinements != header.RefinementsInLayers(layers)) {
      return InvalidArgumentError("tile " + std::to_string(t) + " has " +
                                  std::to_string(file.tokens[t].size()) + " tokens and " +
                                  std::to_string(refinements) + " refinements but keeps " +
                                  std::to_string(layers) + " layers");
    }
    for (size_t r = 0; r < refinements; ++r) {
      if (refinement_bits < 32 && file.refinements[t][r] >> refinement_bits != 0) {
        return InvalidArgumentError("refinement " + std::to_string(r) + " of tile " +
                                    std::to_string(t) + " has more than " +
                                    std::to_string(refinement_bits) + " bits");
      }
    }
    for (uint32_t i = 0; i < file.tokens[t].size(); ++i) {
      const uint32_t token = file.tokens[t][i];
      if (token >= codebook) {
        return InvalidArgumentError("token " + std::to_string(token) + " of tile " +
                                    std::to_string(t) + " is outside the codebook of " +
                                    std::to_string(codebook));
      }
      if (!grid.OnStepGrid(token, header.steps.StepOf(i))) {
        return InvalidArgumentError("token " + std::to_string(i) + " of tile " + std::to_string(t) +
                                    " is not on its quantiser step " +
                                    std::to_string(header.steps.StepOf(i)));
      }
    }
  }

  std::vector<std::vector<uint8_t>> coded;
  std::vector<uint32_t> layer_values;
  const std::vector<LayerRole> roles = header.LayerRoles();
  const Status encoded = ForEachLayer(
      header.layers_per_tile, header.layer_count(),
      [&](uint32_t j, std::span<const uint32_t> tiles) -> Status {
        const LayerRole role = roles[j];
        layer_values.clear();
        for (uint32_t t : tiles) {
          layer_values.push_back(role.refinement ? file.refinements[t][role.index]
                                                 : file.tokens[t][role.index]);
        }
        std::vector<uint8_t> bytes;
        if (role.refinement) {
          bytes = PackFixedWidth(layer_values, refinement_bits);
        } else {
          LayerContext context{header, role.index, tiles, file.tokens};
          TOK1D_ASSIGN_OR_RETURN(bytes, coder->EncodeLayer(context, layer_values));
        }
        if (bytes.size() > kMaxLayerBytes) {
          return InvalidArgumentError("token layer " + std::to_string(j) + " is too large");
        }
        coded.push_back(std::move(bytes));
        return OkStatus();
      });
  if (!encoded.ok()) return encoded;
  std::vector<std::span<const uint8_t>> layers(coded.begin(), coded.end());
  if (!options.layer_spans) {
    return AssembleFile(header, file.extra_chunks, layers, nullptr, file.restoration);
  }
  const std::vector<uint32_t> spans = GroupLayers(layers, options.span_bytes);
  return AssembleFile(header, file.extra_chunks, layers, &spans, file.restoration);
}

}  // namespace tok1d
