// The rstr chunk (FORMAT.md): per-tile colour restoration, bound to the tile counts it was
// fitted for. Internal to container/.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "container/chunks.h"
#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d::t1d_internal {

// The chunk's binding: the low 32 bits of XXH64 of the header's layer counts (u32 LE each).
uint32_t CountsFingerprint(const T1dHeader& header);

// kInvalidArgument unless `restoration` is empty or has one map per tile of `header`, its steps
// and values in range.
Status CheckRestoration(const Restoration& restoration, const T1dHeader& header);

// The chunk's data for the header it is written with (call only when restoration.any()).
std::vector<uint8_t> SerializeRestoration(const Restoration& restoration, const T1dHeader& header);

// The chunk's maps; kCorrupt when malformed, kUnsupported for an unknown method, kCorrupt
// ("fitted for other tile counts") when the binding does not match `header`.
StatusOr<Restoration> ParseRestoration(std::span<const uint8_t> data, const T1dHeader& header);

// The maps of a file's first rstr chunk, or none, with a warning when one is there but
// unusable (the file still decodes, without them).
Restoration ReadRestoration(std::span<const ChunkView> extras, const T1dHeader& header,
                            std::vector<std::string>* warnings);

// `restoration` after `header`'s counts were changed to `counts`: the maps of tiles whose count
// changed are dropped.
void TrimRestoration(const T1dHeader& header, std::span<const uint32_t> counts,
                     Restoration* restoration);

}  // namespace tok1d::t1d_internal
