#include "codec/entropy/entropy_test_tables.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "codec/safetensors.h"
#include "container/token_files.h"

namespace tok1d::testing {
namespace {

void AppendLe(std::vector<uint8_t>* out, uint32_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// Frequencies >= 1 summing to 2^prob_bits, proportional to `weights` otherwise.
std::vector<uint32_t> Quantise(const std::vector<double>& weights, uint32_t prob_bits) {
  const uint32_t total = uint32_t{1} << prob_bits;
  const auto symbols = static_cast<uint32_t>(weights.size());
  double sum = 0;
  for (double w : weights) sum += w;
  std::vector<uint32_t> freq(symbols);
  uint32_t used = 0;
  for (uint32_t s = 0; s < symbols; ++s) {
    freq[s] = 1 + static_cast<uint32_t>(weights[s] / sum * (total - symbols));
    used += freq[s];
  }
  freq[static_cast<size_t>(std::max_element(freq.begin(), freq.end()) - freq.begin())] +=
      total - used;
  return freq;
}

}  // namespace

void AddRandomEntropyTables(const EntropyTableSpec& spec, uint64_t seed,
                            std::map<std::string, TestTensor>* tensors,
                            std::map<std::string, std::string>* metadata) {
  Rng rng(seed);
  const uint32_t max_level = *std::max_element(spec.fsq_levels.begin(), spec.fsq_levels.end());
  TestTensor frequencies{
      "U16", {spec.tokens, spec.fsq_levels.size(), spec.contexts, max_level}, {}};
  for (uint32_t j = 0; j < spec.tokens; ++j) {
    for (uint32_t level : spec.fsq_levels) {
      for (uint32_t c = 0; c < spec.contexts; ++c) {
        // Spread (in levels) shrinks with the position and grows with the context.
        const double spread = (0.3 + 0.05 * rng.Below(20)) * level * (1.0 + c) /
                              (1.0 + 4.0 * j / spec.tokens) / spec.contexts;
        std::vector<double> weights(level);
        for (uint32_t s = 0; s < level; ++s) {
          weights[s] = std::exp(-std::abs(s - (level - 1) / 2.0) / spread);
        }
        const std::vector<uint32_t> freq = Quantise(weights, spec.prob_bits);
        for (uint32_t s = 0; s < max_level; ++s) {
          AppendLe(&frequencies.data, s < level ? freq[s] : 0, 2);
        }
      }
    }
  }
  TestTensor thresholds{"I32", {spec.tokens, spec.contexts - 1}, {}};
  for (uint32_t j = 0; j < spec.tokens; ++j) {
    uint32_t threshold = 0;
    for (uint32_t c = 0; c + 1 < spec.contexts; ++c) {
      threshold += 1 + rng.Below(2 * spec.activity_window * spec.fsq_levels.size() + 1);
      AppendLe(&thresholds.data, threshold, 4);
    }
  }
  (*tensors)["entropy.frequencies"] = std::move(frequencies);
  (*tensors)["entropy.activity_thresholds"] = std::move(thresholds);
  (*metadata)["entropy"] = nlohmann::json{
      {"version", kEntropyTablesVersion},
      {"prob_bits", spec.prob_bits},
      {"contexts", spec.contexts},
      {"activity_window",
       spec.activity_window}}.dump();
}

std::shared_ptr<const EntropyTables> RandomEntropyTables(const EntropyTableSpec& spec,
                                                         uint64_t seed) {
  std::map<std::string, TestTensor> tensors;
  std::map<std::string, std::string> metadata;
  AddRandomEntropyTables(spec, seed, &tensors, &metadata);
  const std::vector<uint8_t> bytes = WriteSafetensors(tensors, metadata);
  StatusOr<SafetensorsFile> file = ParseSafetensors(bytes);
  if (!file.ok()) throw std::runtime_error(file.status().message());
  auto tables = EntropyTables::Load(*file, spec.tokens, spec.fsq_levels);
  if (!tables.ok()) throw std::runtime_error(tables.status().message());
  if (!*tables) throw std::runtime_error("entropy tables were not recognised");
  return *tables;  // the tables copy what they need: `bytes` may go
}

TokenFile SampleTokenFile(const EntropyTables& tables, uint32_t width, uint32_t height,
                          uint32_t tile_size, std::vector<uint32_t> counts, uint64_t seed) {
  TokenFileSpec spec;
  spec.width = width;
  spec.height = height;
  spec.tile_size = tile_size;
  spec.fsq_levels = tables.fsq_levels();
  spec.max_tokens = tables.tokens();
  spec.counts = std::move(counts);
  TokenFile file = MakeTokenFile(spec, seed);
  Rng rng(seed);
  for (std::vector<uint32_t>& tokens : file.tokens) {
    for (uint32_t j = 0; j < tokens.size(); ++j) {
      const uint32_t context = tables.Context(j, tokens);
      uint32_t token = 0, radix = 1;
      for (uint32_t d = 0; d < tables.fsq_levels().size(); ++d) {
        const std::span<const uint32_t> cum = tables.Distribution(j, d, context);
        const uint32_t position = rng.Below(cum.back());
        const auto digit = static_cast<uint32_t>(
            std::upper_bound(cum.begin() + 1, cum.end(), position) - cum.begin() - 1);
        token += digit * radix;
        radix *= tables.fsq_levels()[d];
      }
      tokens[j] = token;
    }
  }
  return file;
}

}  // namespace tok1d::testing
