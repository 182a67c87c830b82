#include "container/token_files.h"

#include <algorithm>

#include "container/header.h"

namespace tok1d::testing {

TokenFile MakeTokenFile(const TokenFileSpec& spec, uint64_t seed) {
  TokenFile file;
  T1dHeader& h = file.header;
  h.width = spec.width;
  h.height = spec.height;
  h.tile_size = spec.tile_size;
  SetTileGrid(&h);
  h.model.name = spec.model_name;
  for (size_t i = 0; i < h.model.sha256.size(); ++i) h.model.sha256[i] = static_cast<uint8_t>(i);
  h.fsq_levels = spec.fsq_levels;
  h.max_tokens = spec.max_tokens;
  h.refinement = spec.refinement;
  h.layers_per_tile = spec.counts;
  if (h.layers_per_tile.empty()) h.layers_per_tile.assign(h.tile_count(), h.max_layers());
  Rng rng(seed);
  const uint64_t codebook = h.codebook_size();
  for (uint32_t count : h.layers_per_tile) {
    std::vector<uint32_t> tokens;
    for (uint32_t i = 0; i < h.TokensInLayers(count); ++i) tokens.push_back(rng.Below(codebook));
    file.tokens.push_back(std::move(tokens));
    if (h.refinement.bits == 0) continue;
    std::vector<uint32_t> refinements;
    for (uint32_t r = 0; r < h.RefinementsInLayers(count); ++r) {
      refinements.push_back(rng.Below(uint64_t{1} << h.refinement_value_bits()));
    }
    file.refinements.push_back(std::move(refinements));
  }
  return file;
}

std::vector<uint32_t> RandomCounts(const TokenFileSpec& spec, Rng& rng) {
  T1dHeader h;
  h.width = spec.width;
  h.height = spec.height;
  h.tile_size = spec.tile_size;
  SetTileGrid(&h);
  std::vector<uint32_t> counts;
  for (uint64_t t = 0; t < h.tile_count(); ++t) counts.push_back(rng.Below(spec.max_tokens + 1));
  return counts;
}

// Every token of `file` moved to the nearest digits on its step's grid.
void SnapToSteps(TokenFile* file) {
  const FsqCodebook codebook = file->header.codebook();
  std::vector<uint32_t> digits(codebook.dims());
  for (std::vector<uint32_t>& tile : file->tokens) {
    for (uint32_t i = 0; i < tile.size(); ++i) {
      codebook.Digits(tile[i], digits);
      for (uint32_t d = 0; d < codebook.dims(); ++d) {
        const float centred =
            static_cast<float>(digits[d]) - static_cast<float>(codebook.centre(d));
        digits[d] = codebook.StepDigit(centred, d, file->header.steps.StepOf(i));
      }
      tile[i] = codebook.Token(digits);
    }
  }
}

uint8_t MinorWithCounts(uint8_t minor, const T1dHeader& header) {
  return t1d_internal::CountsMode(header.layers_per_tile) == t1d_internal::kCountsPaletteMode
             ? std::max(minor, kCountsPaletteMinorVersion)
             : minor;
}

}  // namespace tok1d::testing
