#include "container/layer_plan.h"

#include <algorithm>
#include <string>

namespace tok1d {

Status CheckRefinement(const Refinement& refinement, uint32_t max_tokens, uint32_t fsq_dims) {
  if (refinement.bits == 0) {
    if (!refinement.after.empty()) return CorruptError("refinement layers without refinement bits");
    return OkStatus();
  }
  if (refinement.bits > kMaxRefinementBits || refinement.bits * fsq_dims > 32) {
    return CorruptError("refinement of " + std::to_string(refinement.bits) +
                        " bits per dimension "
                        "is outside 1.." +
                        std::to_string(kMaxRefinementBits) + " or over 32 bits a token");
  }
  if (refinement.after.empty() || refinement.after.size() > max_tokens) {
    return CorruptError("refinement of " + std::to_string(refinement.after.size()) +
                        " tokens; 1.." + std::to_string(max_tokens) + " are allowed");
  }
  for (uint32_t r = 0; r < refinement.after.size(); ++r) {
    const uint32_t after = refinement.after[r];
    if (after < r || after >= max_tokens || (r > 0 && after < refinement.after[r - 1])) {
      return CorruptError("the refinement of token " + std::to_string(r) + " follows token layer " +
                          std::to_string(after) + "; it must follow token " + std::to_string(r) +
                          ", the previous refinement, and come before token " +
                          std::to_string(max_tokens));
    }
  }
  return OkStatus();
}

Status CheckQuantizerSteps(const QuantizerSteps& steps, uint32_t max_tokens) {
  if (steps.runs.size() > max_tokens) {
    return CorruptError("quantiser steps in " + std::to_string(steps.runs.size()) +
                        " runs; at most one per token (" + std::to_string(max_tokens) + ")");
  }
  for (size_t i = 0; i < steps.runs.size(); ++i) {
    const StepRun& run = steps.runs[i];
    if (run.first >= max_tokens || (i > 0 && run.first <= steps.runs[i - 1].first)) {
      return CorruptError("a quantiser step run starts at token " + std::to_string(run.first) +
                          "; runs must start in increasing order below token " +
                          std::to_string(max_tokens));
    }
    if (run.step < 1 || run.step > kMaxQuantizerStep) {
      return CorruptError("quantiser step " + std::to_string(run.step) + " is outside 1.." +
                          std::to_string(kMaxQuantizerStep));
    }
  }
  return OkStatus();
}

std::vector<LayerRole> LayerPlan::Roles() const {
  std::vector<LayerRole> roles;
  roles.reserve(max_layers());
  size_t r = 0;
  for (uint32_t i = 0; i < max_tokens_; ++i) {
    roles.push_back({false, i});
    for (; r < after_.size() && after_[r] <= i; ++r) {
      roles.push_back({true, static_cast<uint32_t>(r)});
    }
  }
  return roles;
}

uint32_t LayerPlan::LayersForTokens(uint32_t tokens) const {
  tokens = std::min(tokens, max_tokens_);
  // `after` is non-decreasing (CheckRefinement): the refinements placed before token `tokens`.
  const auto placed = std::lower_bound(after_.begin(), after_.end(), tokens);
  return tokens + static_cast<uint32_t>(placed - after_.begin());
}

uint32_t LayerPlan::TokensInLayers(uint32_t layers) const {
  // Token i is layer LayersForTokens(i), increasing in i: count the i whose layer is below.
  uint32_t low = 0, high = max_tokens_;
  while (low < high) {
    const uint32_t middle = low + (high - low) / 2;
    if (LayersForTokens(middle) < layers) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

uint32_t LayerPlan::RefinementsInLayers(uint32_t layers) const {
  return std::min(layers, max_layers()) - TokensInLayers(layers);
}

}  // namespace tok1d
