// Per-dimension FSQ constants, computed in float exactly as models/tok1d_model.py FSQ does, from
// the codebook's levels, centres and radices (common/fsq_codebook.h). Shared by the CPU and GPU
// backends so that both quantize and de-quantize identically; a plain array (no std::vector) so
// that a GPU kernel can take the table by value.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/fsq_codebook.h"
#include "kernels/backend.h"

namespace tok1d {

struct FsqDim {
  uint32_t levels;
  uint32_t half_width;  // floor(L / 2), FsqCodebook::centre
  float half_l;         // (L − 1)(1 + 1e-3) / 2
  float offset;         // 0.5 for even L
  float shift;          // atanh(offset / half_l)
  uint32_t basis;       // Π_{e<d} L_e, FsqCodebook::radix
};

struct FsqTable {
  FsqDim dims[FsqLevels::kMaxDims];
  uint32_t count;
};

inline FsqTable MakeFsqTable(const FsqLevels& levels) {
  const FsqCodebook codebook(levels.used());
  FsqTable table{};
  table.count = codebook.dims();
  for (uint32_t d = 0; d < codebook.dims(); ++d) {
    const uint32_t l = codebook.level(d);
    FsqDim& dim = table.dims[d];
    dim.levels = l;
    dim.half_width = codebook.centre(d);
    dim.half_l = (static_cast<float>(l) - 1.0f) * 1.001f / 2.0f;
    dim.offset = l % 2 == 0 ? 0.5f : 0.0f;
    dim.shift = std::atanh(dim.offset / dim.half_l);
    dim.basis = codebook.radix(d);
  }
  return table;
}

}  // namespace tok1d
