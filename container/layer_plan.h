// The layer plan of a .t1d file (FORMAT.md, "Layers" and REFN chunk), the one place it is
// written: a tile's K token layers, with the refinements of its first tokens as layers of their
// own placed between them. Tokens ↔ layers ↔ refinements.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "tok1d/status.h"

namespace tok1d {

inline constexpr uint32_t kMaxRefinementBits = 8;  // per FSQ dimension; B·D ≤ 32 as well

// Refinement (FORMAT.md, REFN chunk): the first tokens of a tile sent once more, each FSQ value
// to 1/2^bits of its quantization cell, as layers of their own between the token layers.
struct Refinement {
  uint32_t bits = 0;            // B per FSQ dimension; 0: no refinement (no REFN chunk)
  std::vector<uint32_t> after;  // token r's refinement layer follows token layer after[r]

  uint32_t count() const { return static_cast<uint32_t>(after.size()); }
  bool operator==(const Refinement&) const = default;
};

// The rules FORMAT.md sets for a refinement plan (REFN chunk) of a model with `max_tokens`
// tokens of `fsq_dims` FSQ values: bits 1..8 (0 with no tokens: none), at most 32 bits a
// token, 1..K refined tokens, each placed after its own token layer and the previous
// refinement. kCorrupt naming the broken rule.
Status CheckRefinement(const Refinement& refinement, uint32_t max_tokens, uint32_t fsq_dims);

// Quantiser steps (FORMAT.md, QSTP chunk): from token `first` on, up to the next run, every
// FSQ value of a token is rounded to a multiple of `step` levels from the centre of its levels
// (digit − ⌊L/2⌋ divisible by step), so the late tokens, which refine detail, cost fewer bits
// each. The plan is per file and not per token count, so a trimmed file keeps its steps.
inline constexpr uint32_t kMaxQuantizerStep = 255;

struct StepRun {
  uint32_t first = 0;  // the first token of the run
  uint32_t step = 1;   // 1 … kMaxQuantizerStep
  bool operator==(const StepRun&) const = default;
};

struct QuantizerSteps {
  std::vector<StepRun> runs;  // `first` strictly increasing; empty: step 1 everywhere

  // The step of token `token` (1 before the first run).
  uint32_t StepOf(uint32_t token) const {
    uint32_t step = 1;
    for (const StepRun& run : runs) {
      if (run.first > token) break;
      step = run.step;
    }
    return step;
  }
  // The largest step among the first `tokens` tokens.
  uint32_t MaxStepIn(uint32_t tokens) const {
    uint32_t step = 1;
    for (const StepRun& run : runs) {
      if (run.first < tokens) step = std::max(step, run.step);
    }
    return step;
  }
  bool empty() const { return runs.empty(); }
  bool operator==(const QuantizerSteps&) const = default;
};

// The rules FORMAT.md sets for a QSTP chunk of a model with `max_tokens` tokens: 1 … K runs,
// first tokens strictly increasing and below K, steps 1 … 255. kCorrupt naming the broken rule.
Status CheckQuantizerSteps(const QuantizerSteps& steps, uint32_t max_tokens);

// What layer j of a file holds: token `index` of each tile, or the refinement of token `index`.
struct LayerRole {
  bool refinement = false;
  uint32_t index = 0;
};

// The order of a tile's layers for a model of `max_tokens` (K) tokens and a refinement plan
// that passes CheckRefinement. A view: the plan's `after` must outlive it.
class LayerPlan {
 public:
  LayerPlan(uint32_t max_tokens, std::span<const uint32_t> refinement_after)
      : max_tokens_(max_tokens), after_(refinement_after) {}
  LayerPlan(uint32_t max_tokens, const Refinement& refinement)
      : LayerPlan(max_tokens, refinement.after) {}

  uint32_t max_tokens() const { return max_tokens_; }
  uint32_t refinements() const { return static_cast<uint32_t>(after_.size()); }
  uint32_t max_layers() const { return max_tokens_ + refinements(); }
  // The role of every layer 0 .. max_layers()−1, in file order.
  std::vector<LayerRole> Roles() const;
  // Layers a tile keeps for its first k tokens (k ≤ K, larger k counts as K): the tokens and
  // the refinements that follow token layer k−1 or an earlier one.
  uint32_t LayersForTokens(uint32_t tokens) const;
  uint32_t TokensInLayers(uint32_t layers) const;       // token layers among the first `layers`
  uint32_t RefinementsInLayers(uint32_t layers) const;  // refinement layers among them

 private:
  uint32_t max_tokens_;
  std::span<const uint32_t> after_;
};

// Calls visit(j, tiles) for each layer j < layer_limit with the tiles t (raster order) whose
// layers_per_tile[t] exceeds j; stops at the first error visit returns.
template <typename Visit>
Status ForEachLayer(std::span<const uint32_t> layers_per_tile, uint32_t layer_limit, Visit visit) {
  std::vector<uint32_t> active;
  for (uint32_t t = 0; t < layers_per_tile.size(); ++t) {
    if (layers_per_tile[t] > 0) active.push_back(t);
  }
  for (uint32_t j = 0; j < layer_limit; ++j) {
    std::erase_if(active, [&](uint32_t t) { return layers_per_tile[t] <= j; });
    TOK1D_RETURN_IF_ERROR(visit(j, std::span<const uint32_t>(active)));
  }
  return OkStatus();
}

}  // namespace tok1d
