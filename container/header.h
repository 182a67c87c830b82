// The HEAD and REFN chunks (FORMAT.md): their bytes, and every rule on their values.
// Internal to container/.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "container/chunks.h"
#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d::t1d_internal {

// Every rule FORMAT.md sets on HEAD and REFN values (geometry under `max_pixels`, model,
// FSQ levels, refinement plan, layer counts).
Status CheckHeaderFields(const T1dHeader& h, uint64_t max_pixels);
// The refinement plan and the layer counts it allows (the last part of CheckHeaderFields).
Status CheckCounts(const T1dHeader& h);

// HEAD's counts_mode for these layer counts: 0 when all are equal, else 2 (a palette of the
// distinct counts and an index per tile) when that is smaller than 1 (a u16 per tile).
uint8_t CountsMode(std::span<const uint32_t> layers_per_tile);
inline constexpr uint8_t kCountsPaletteMode = 2;  // needs a 1.5 file

std::vector<uint8_t> SerializeHeadData(const T1dHeader& h);
// HEAD data as read from a file of `minor_version`; everything is checked but the layer counts,
// which depend on the refinement plan (CheckCounts).
StatusOr<T1dHeader> ParseHeadData(std::span<const uint8_t> data, uint8_t minor_version,
                                  uint64_t max_pixels);

std::vector<uint8_t> SerializeRefinement(const Refinement& refinement);
// Fills header->refinement from a REFN chunk and checks it and the counts it allows.
Status ParseRefinement(const ChunkView& chunk, T1dHeader* header);

std::vector<uint8_t> SerializeSteps(const QuantizerSteps& steps);
// Fills header->steps from a QSTP chunk and checks them.
Status ParseSteps(const ChunkView& chunk, T1dHeader* header);

}  // namespace tok1d::t1d_internal
