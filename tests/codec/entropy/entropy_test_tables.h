// Entropy tables made by the tests: random but shaped like a trained model's (digits peaked at
// the centre of their levels, broad for early tokens and active tiles, narrow for late ones),
// and token files drawn from them, so coded sizes behave like real ones.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec/entropy_coder.h"
#include "codec/test_models.h"
#include "container/t1d.h"

namespace tok1d::testing {

struct EntropyTableSpec {
  uint32_t tokens = 8;
  std::vector<uint32_t> fsq_levels = {8, 5, 5, 5};
  uint32_t contexts = 3;
  uint32_t activity_window = 2;
  uint32_t prob_bits = 15;
};

// Adds "entropy.*" tensors and the "entropy" metadata entry (deterministic in `seed`).
void AddRandomEntropyTables(const EntropyTableSpec& spec, uint64_t seed,
                            std::map<std::string, TestTensor>* tensors,
                            std::map<std::string, std::string>* metadata);

// The same tables, loaded (throws std::runtime_error if EntropyTables::Load refuses them).
std::shared_ptr<const EntropyTables> RandomEntropyTables(const EntropyTableSpec& spec,
                                                         uint64_t seed);

// A token file for `tables` (header as MakeTokenFile's: model SHA-256 bytes 0, 1, …, 31) with
// the given size and counts (empty: every tile keeps all K tokens), tokens drawn from the
// tables' own distributions in coding order.
TokenFile SampleTokenFile(const EntropyTables& tables, uint32_t width, uint32_t height,
                          uint32_t tile_size, std::vector<uint32_t> counts, uint64_t seed);

}  // namespace tok1d::testing
