#include "codec/entropy_coder.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "codec/range_coder.h"

namespace tok1d {
namespace {

constexpr const char* kMetadataKey = "entropy";
constexpr const char* kFrequenciesName = "entropy.frequencies";
constexpr const char* kThresholdsName = "entropy.activity_thresholds";

Status TablesError(const std::string& what) {
  return CorruptError("model entropy tables: " + what);
}

uint32_t LoadLe(std::span<const uint8_t> data, size_t index, size_t bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= uint32_t{data[index * bytes + i]} << (8 * i);
  return value;
}

Status CheckShape(const SafetensorsTensor* tensor, const char* name, const char* dtype,
                  const std::vector<uint64_t>& shape) {
  if (tensor == nullptr) return TablesError(std::string("no tensor '") + name + "'");
  if (tensor->dtype != dtype || tensor->shape != shape) {
    std::string expected;
    for (uint64_t size : shape) expected += (expected.empty() ? "" : ", ") + std::to_string(size);
    return TablesError(std::string("tensor '") + name + "' must be " + dtype + " [" + expected +
                       "]");
  }
  return OkStatus();
}

// Reads metadata[key] as an unsigned integer in [min, max].
Status GetUnsigned(const nlohmann::json& json, const char* key, uint32_t min, uint32_t max,
                   uint32_t* out) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_number_unsigned() || it->get<uint64_t>() < min ||
      it->get<uint64_t>() > max) {
    return TablesError(std::string("'") + key + "' must be an integer in " + std::to_string(min) +
                       ".." + std::to_string(max));
  }
  *out = static_cast<uint32_t>(it->get<uint64_t>());
  return OkStatus();
}

// |2 digit - (level - 1)|
uint32_t DigitActivity(uint32_t digit, uint32_t level) {
  return digit * 2 >= level - 1 ? digit * 2 - (level - 1) : (level - 1) - digit * 2;
}

// Sum over the digits of `token` of their DigitActivity.
uint32_t TokenActivity(const FsqCodebook& codebook, uint32_t token) {
  uint32_t activity = 0;
  codebook.ForEachDigit(token, [&](uint32_t d, uint32_t digit) {
    activity += DigitActivity(digit, codebook.level(d));
  });
  return activity;
}

// Activities of every token of `codebook`; empty if there are more than 2^16.
std::vector<uint16_t> ActivityTable(const FsqCodebook& codebook) {
  const uint64_t count = codebook.size();
  if (count > (1u << 16)) return {};
  std::vector<uint16_t> table(count);
  for (uint32_t value = 0; value < count; ++value) {
    table[value] = static_cast<uint16_t>(TokenActivity(codebook, value));  // <= 16 dims * 254
  }
  return table;
}

}  // namespace

StatusOr<std::shared_ptr<const EntropyTables>> EntropyTables::Load(
    const SafetensorsFile& file, uint32_t tokens, std::span<const uint32_t> fsq_levels) {
  auto meta = file.metadata.find(kMetadataKey);
  if (meta == file.metadata.end()) {
    if (file.Find(kFrequenciesName) != nullptr) return TablesError("tensors without metadata");
    return std::shared_ptr<const EntropyTables>();
  }
  const nlohmann::json json = nlohmann::json::parse(meta->second, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return TablesError("metadata is not a JSON object");
  uint32_t version = 0;
  TOK1D_RETURN_IF_ERROR(GetUnsigned(json, "version", 1, UINT32_MAX, &version));
  if (version != kEntropyTablesVersion) return std::shared_ptr<const EntropyTables>();

  auto tables = std::make_shared<EntropyTables>();
  tables->tokens_ = tokens;
  tables->codebook_ = FsqCodebook(fsq_levels);
  TOK1D_RETURN_IF_ERROR(
      GetUnsigned(json, "prob_bits", kMinProbBits, kMaxProbBits, &tables->prob_bits_));
  TOK1D_RETURN_IF_ERROR(GetUnsigned(json, "contexts", 1, kMaxEntropyContexts, &tables->contexts_));
  TOK1D_RETURN_IF_ERROR(GetUnsigned(json, "activity_window", 0, tokens, &tables->activity_window_));

  const uint32_t dims = static_cast<uint32_t>(fsq_levels.size());
  const uint32_t contexts = tables->contexts_;
  const uint32_t max_level = *std::max_element(fsq_levels.begin(), fsq_levels.end());
  const SafetensorsTensor* frequencies = file.Find(kFrequenciesName);
  TOK1D_RETURN_IF_ERROR(
      CheckShape(frequencies, kFrequenciesName, "U16", {tokens, dims, contexts, max_level}));
  const SafetensorsTensor* thresholds = file.Find(kThresholdsName);
  TOK1D_RETURN_IF_ERROR(CheckShape(thresholds, kThresholdsName, "I32", {tokens, contexts - 1}));

  for (uint32_t j = 0; j < tokens; ++j) {
    int64_t last = 0;
    for (uint32_t c = 0; c + 1 < contexts; ++c) {
      const auto threshold =
          static_cast<int32_t>(LoadLe(thresholds->data, j * (contexts - 1) + c, 4));
      if (threshold < last)
        return TablesError("activity thresholds must be non-negative and non-decreasing");
      last = threshold;
      tables->thresholds_.push_back(static_cast<uint32_t>(threshold));
    }
  }

  const uint32_t total = uint32_t{1} << tables->prob_bits_;
  tables->row_stride_ = max_level + 1;
  tables->cumulative_.reserve(size_t{tokens} * dims * contexts * tables->row_stride_);
  size_t next = 0;
  for (uint32_t j = 0; j < tokens; ++j) {
    for (uint32_t d = 0; d < dims; ++d) {
      for (uint32_t c = 0; c < contexts; ++c) {
        uint32_t sum = 0;
        tables->cumulative_.push_back(0);
        for (uint32_t s = 0; s < max_level; ++s) {
          const uint32_t frequency = LoadLe(frequencies->data, next++, 2);
          if ((s < fsq_levels[d]) != (frequency > 0)) {
            return TablesError("frequencies must be >= 1 for every level and 0 beyond (position " +
                               std::to_string(j) + ", dimension " + std::to_string(d) + ")");
          }
          sum += frequency;
          tables->cumulative_.push_back(sum);
        }
        if (sum != total) {
          return TablesError("frequencies of position " + std::to_string(j) + ", dimension " +
                             std::to_string(d) + " sum to " + std::to_string(sum) + ", not 2^" +
                             std::to_string(tables->prob_bits_));
        }
      }
    }
  }
  tables->TabulateActivity();
  return std::shared_ptr<const EntropyTables>(std::move(tables));
}

void EntropyTables::TabulateActivity() {
  const std::span<const uint32_t> levels(codebook_.levels());
  for (; low_dims_ < levels.size() && low_radix_ * levels[low_dims_] <= (1u << 16); ++low_dims_) {
    low_radix_ *= levels[low_dims_];
  }
  high_codebook_ = FsqCodebook(levels.subspan(low_dims_));
  low_activity_ = ActivityTable(FsqCodebook(levels.first(low_dims_)));
  high_activity_ = ActivityTable(high_codebook_);
}

uint32_t EntropyTables::Activity(uint32_t token) const {
  const uint32_t high = token / low_radix_;
  uint32_t activity = low_activity_[token - high * low_radix_];
  if (!high_activity_.empty()) return activity + high_activity_[high];
  return activity + TokenActivity(high_codebook_, high);
}

uint32_t EntropyTables::Context(uint32_t position, std::span<const uint32_t> previous) const {
  if (contexts_ == 1) return 0;
  uint32_t activity = 0;
  for (uint32_t i = position - std::min(position, activity_window_); i < position; ++i) {
    activity += Activity(previous[i]);
  }
  const auto row = std::span<const uint32_t>(thresholds_)
                       .subspan(size_t{position} * (contexts_ - 1), contexts_ - 1);
  // The number of thresholds at or below the activity.
  return static_cast<uint32_t>(std::upper_bound(row.begin(), row.end(), activity) - row.begin());
}

std::span<const uint32_t> EntropyTables::StepDistribution(uint32_t position, uint32_t dim,
                                                          uint32_t context, uint32_t step,
                                                          std::span<uint32_t> out,
                                                          uint32_t* first) const {
  const std::span<const uint32_t> fine = Distribution(position, dim, context);
  if (step == 1) {
    *first = 0;
    return fine;
  }
  const uint32_t levels = codebook_.level(dim), centre = codebook_.centre(dim);
  *first = centre - centre / step * step;
  const uint32_t last = centre + (levels - 1 - centre) / step * step;
  uint32_t symbols = 0;
  out[symbols++] = 0;
  for (uint32_t previous = *first; previous < last; previous += step) {
    // The first level nearer to the next grid digit (a tie goes towards the centre).
    const uint32_t boundary = previous + step / 2 + ((step % 2 == 1 || previous >= centre) ? 1 : 0);
    out[symbols++] = fine[boundary];
  }
  out[symbols] = fine[levels];
  return out.first(symbols + 1);
}

Status RangeLayerCoder::CheckHeader(const T1dHeader& header) const {
  if (header.model.sha256 != model_sha256_) {
    return ModelMismatchError("the file's tokens are entropy-coded with the tables of model '" +
                              header.model.name + "', not with those of the model given");
  }
  if (header.max_tokens != tables_->tokens() || header.fsq_levels != tables_->fsq_levels()) {
    return CorruptError(
        "the header names the model but disagrees with it on tokens per tile "
        "or FSQ levels");
  }
  if (!header.coder_params.empty()) {
    return CorruptError("the range coder takes no parameters, but HEAD has " +
                        std::to_string(header.coder_params.size()) + " bytes of them");
  }
  return OkStatus();
}

StatusOr<std::vector<uint8_t>> RangeLayerCoder::EncodeLayer(
    const LayerContext& context, std::span<const uint32_t> layer_tokens) const {
  const EntropyTables& tables = *tables_;
  const uint32_t j = context.layer;
  const uint32_t step = context.header.steps.StepOf(j);
  RangeEncoder encoder(tables.prob_bits());
  CumulativeBuffer buffer;
  for (size_t i = 0; i < layer_tokens.size(); ++i) {
    const uint32_t tile_context = tables.Context(j, context.tokens[context.tiles[i]]);
    if (!tables.codebook().OnStepGrid(layer_tokens[i], step)) {
      return InvalidArgumentError("a token of layer " + std::to_string(j) +
                                  " is not on its quantiser step " + std::to_string(step));
    }
    tables.codebook().ForEachDigit(layer_tokens[i], [&](uint32_t d, uint32_t digit) {
      uint32_t first = 0;
      const auto cumulative = tables.StepDistribution(j, d, tile_context, step, buffer, &first);
      EncodeSymbol(encoder, cumulative, (digit - first) / step);
    });
  }
  return encoder.Finish();
}

Status RangeLayerCoder::DecodeLayer(const LayerContext& context, std::span<const uint8_t> coded,
                                    std::span<uint32_t> layer_tokens) const {
  const EntropyTables& tables = *tables_;
  const uint32_t j = context.layer;
  const FsqCodebook& codebook = tables.codebook();
  const uint32_t step = context.header.steps.StepOf(j);
  RangeDecoder decoder(coded, tables.prob_bits());
  CumulativeBuffer buffer;
  for (size_t i = 0; i < layer_tokens.size(); ++i) {
    const uint32_t tile_context = tables.Context(j, context.tokens[context.tiles[i]]);
    uint32_t token = 0;
    for (uint32_t d = 0; d < codebook.dims(); ++d) {
      uint32_t first = 0;
      const std::span<const uint32_t> cumulative =
          tables.StepDistribution(j, d, tile_context, step, buffer, &first);
      uint32_t symbol = 0;
      if (!DecodeSymbol(decoder, cumulative, &symbol)) {
        return CorruptError("the range-coded tokens are damaged");
      }
      const uint32_t digit = first + symbol * step;
      token += digit * codebook.radix(d);
    }
    layer_tokens[i] = token;
  }
  if (!decoder.EndedCleanly()) {
    return CorruptError("the range-coded tokens do not end where the layer does");
  }
  return OkStatus();
}

double CodeLengthBits(const EntropyTables& tables, std::span<const uint32_t> tokens) {
  const double total = std::ldexp(1.0, static_cast<int>(tables.prob_bits()));
  const FsqCodebook& codebook = tables.codebook();
  double bits = 0;
  for (uint32_t j = 0; j < tokens.size(); ++j) {
    const uint32_t context = tables.Context(j, tokens);
    for (uint32_t d = 0; d < codebook.dims(); ++d) {
      const std::span<const uint32_t> cumulative = tables.Distribution(j, d, context);
      const uint32_t digit = codebook.Digit(tokens[j], d);
      bits += std::log2(total / static_cast<double>(cumulative[digit + 1] - cumulative[digit]));
    }
  }
  return bits;
}

}  // namespace tok1d
