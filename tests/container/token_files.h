// Deterministic token files for the container tests, the golden files and the fuzz seeds.
#pragma once

#include <cstdint>
#include <vector>

#include "container/t1d.h"

namespace tok1d::testing {

// SplitMix64: the same numbers on every platform (unlike std:: distributions).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint32_t Below(uint64_t bound) { return static_cast<uint32_t>(Next() % bound); }

 private:
  uint64_t state_;
};

struct TokenFileSpec {
  uint32_t width = 16;
  uint32_t height = 16;
  uint32_t tile_size = 16;
  std::vector<uint32_t> fsq_levels = {8, 5, 5, 5};
  uint32_t max_tokens = 8;
  std::vector<uint32_t> counts;  // layers, one per tile; empty: every tile keeps them all
  const char* model_name = "test-model";
  Refinement refinement;  // bits 0: none
};

// Header from `spec`, model SHA-256 bytes 0, 1, …, 31, and random tokens (and refinements)
// from `seed`.
TokenFile MakeTokenFile(const TokenFileSpec& spec, uint64_t seed);

// Every token of `file` moved to the nearest digits on the grid of its quantiser step
// (header.steps).
void SnapToSteps(TokenFile* file);

// Random counts in [0, max_tokens] for every tile of `spec`.
std::vector<uint32_t> RandomCounts(const TokenFileSpec& spec, Rng& rng);

// The minor version a writer gives a file whose other features need `minor`: 1.5 when its
// counts are written as a palette (FORMAT.md, counts_mode 2).
uint8_t MinorWithCounts(uint8_t minor, const T1dHeader& header);

}  // namespace tok1d::testing
