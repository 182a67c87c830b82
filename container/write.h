// Framing token layers into a file: the writer's span policy and the assembly of the chunks.
// Internal to container/ (write.cpp; trim.cpp reuses it on layers it copies).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "container/t1d.h"

namespace tok1d::t1d_internal {

// The writer's span policy (FORMAT.md): consecutive layers until their coded bytes reach
// span_bytes. A span also closes before a layer that would overflow its u32 chunk length.
// Closing only on what came before keeps a trimmed file's spans those of the trimmed tokens.
std::vector<uint32_t> GroupLayers(std::span<const std::span<const uint8_t>> layers,
                                  uint32_t span_bytes);

// Frames `layers` as one LAYR chunk each (spans == nullptr, versions 1.0/1.1) or as LAYS
// chunks holding span_layers[i] layers each (version 1.2); `restoration`'s maps, when a tile
// uses one, go in an rstr chunk after the layers, before DONE.
std::vector<uint8_t> AssembleFile(const T1dHeader& header, std::span<const T1dChunk> extras,
                                  std::span<const std::span<const uint8_t>> layers,
                                  const std::vector<uint32_t>* spans,
                                  const Restoration& restoration = {});

}  // namespace tok1d::t1d_internal
