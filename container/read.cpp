// Reading a .t1d file: its structure (parse.h) and then, for ReadT1d, its layers through the
// file's LayerCoder.
#include <algorithm>
#include <string>

#include "container/parse.h"
#include "container/restoration.h"
#include "container/t1d.h"

namespace tok1d {
namespace {

using t1d_internal::ExtraChunks;
using t1d_internal::ParsedFile;
using t1d_internal::ParseFile;

StatusOr<const LayerCoder*> SelectCoder(const T1dHeader& header, const LayerCoder* coder) {
  if (coder != nullptr && coder->id() == header.entropy_coder) return coder;
  if (header.entropy_coder == kRawCoderId) return &RawLayerCoder();
  return UnsupportedError("tokens are coded with entropy coder '" +
                          EntropyCoderName(header.entropy_coder) +
                          "', which this call was not given; use a tok1d that has it");
}

}  // namespace

uint64_t T1dLayout::layer_chunk_bytes() const {
  uint64_t total = 0;
  for (uint64_t bytes : layer_bytes) total += bytes;
  return total;
}

uint64_t T1dLayout::layer_framing_bytes() const {
  uint64_t payload = 0;
  for (uint64_t bytes : layer_payload_bytes) payload += bytes;
  return layer_chunk_bytes() - payload;
}

StatusOr<T1dHeaderInfo> ReadT1dHeader(std::span<const uint8_t> bytes, const ReadOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(ParsedFile parsed, ParseFile(bytes, options));
  Restoration restoration =
      t1d_internal::ReadRestoration(parsed.extras, parsed.header, &parsed.report.warnings);
  T1dHeaderInfo info{std::move(parsed.header), std::move(parsed.layout), std::move(parsed.report),
                     ExtraChunks(parsed), std::move(restoration)};
  return info;
}

StatusOr<TokenFile> ReadT1d(std::span<const uint8_t> bytes, const ReadOptions& options,
                            ReadReport* report, const LayerCoder* coder) {
  TOK1D_ASSIGN_OR_RETURN(ParsedFile parsed, ParseFile(bytes, options));
  TOK1D_ASSIGN_OR_RETURN(const LayerCoder* layer_coder, SelectCoder(parsed.header, coder));
  TOK1D_RETURN_IF_ERROR(layer_coder->CheckHeader(parsed.header));

  TokenFile file;
  file.header = std::move(parsed.header);
  file.tokens.resize(file.header.tile_count());
  file.refinements.resize(file.header.tile_count());
  const auto present = static_cast<uint32_t>(parsed.layers.size());
  const std::vector<LayerRole> roles = file.header.LayerRoles();
  const uint64_t codebook = file.header.codebook_size();
  const FsqCodebook grid = file.header.codebook();
  std::vector<uint32_t> layer_values;
  const Status decoded = ForEachLayer(
      file.header.layers_per_tile, present,
      [&](uint32_t j, std::span<const uint32_t> tiles) -> Status {
        layer_values.assign(tiles.size(), 0);
        const LayerRole role = roles[j];
        if (role.refinement) {
          TOK1D_RETURN_IF_ERROR(UnpackFixedWidth(parsed.layers[j],
                                                 file.header.refinement_value_bits(), layer_values,
                                                 "refinement layer " + std::to_string(j)));
          for (size_t i = 0; i < tiles.size(); ++i)
            file.refinements[tiles[i]].push_back(layer_values[i]);
          return OkStatus();
        }
        // The coder sees the token's position in its tile, whatever layer holds it.
        LayerContext context{file.header, role.index, tiles, file.tokens};
        TOK1D_RETURN_IF_ERROR(layer_coder->DecodeLayer(context, parsed.layers[j], layer_values)
                                  .WithContext("token layer " + std::to_string(j)));
        for (size_t i = 0; i < tiles.size(); ++i) {
          if (layer_values[i] >= codebook) {
            return CorruptError("token layer " + std::to_string(j) +
                                " holds a token outside the codebook");
          }
          if (!grid.OnStepGrid(layer_values[i], file.header.steps.StepOf(role.index))) {
            return CorruptError("token layer " + std::to_string(j) +
                                " holds a token off its quantiser step");
          }
          file.tokens[tiles[i]].push_back(layer_values[i]);
        }
        return OkStatus();
      });
  if (!decoded.ok()) return decoded;
  // The maps hold for the counts the header declares; a truncated file drops those of the
  // tiles it cut short.
  file.restoration =
      t1d_internal::ReadRestoration(parsed.extras, file.header, &parsed.report.warnings);
  std::vector<uint32_t> complete = file.header.layers_per_tile;
  for (uint32_t& count : complete) count = std::min(count, present);
  t1d_internal::TrimRestoration(file.header, complete, &file.restoration);
  file.header.layers_per_tile = std::move(complete);
  file.extra_chunks = ExtraChunks(parsed);
  if (report != nullptr) *report = std::move(parsed.report);
  return file;
}

}  // namespace tok1d
