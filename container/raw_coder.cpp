// The "raw" entropy coder (id 0): every token in a fixed ceil(log2 N) bits, LSB first; the same
// packing holds refinement layers.
#include <string>

#include "container/t1d.h"

namespace tok1d {
namespace {

uint64_t PackedBytes(size_t tokens, uint32_t bits) { return (uint64_t{tokens} * bits + 7) / 8; }

class RawCoder final : public LayerCoder {
 public:
  uint8_t id() const override { return kRawCoderId; }

  Status CheckHeader(const T1dHeader& header) const override {
    if (!header.coder_params.empty()) {
      return CorruptError("the raw coder takes no parameters, but HEAD has " +
                          std::to_string(header.coder_params.size()) + " bytes of them");
    }
    return OkStatus();
  }

  StatusOr<std::vector<uint8_t>> EncodeLayer(
      const LayerContext& context, std::span<const uint32_t> layer_tokens) const override {
    return PackFixedWidth(layer_tokens, context.header.bits_per_token());
  }

  Status DecodeLayer(const LayerContext& context, std::span<const uint8_t> coded,
                     std::span<uint32_t> layer_tokens) const override {
    const std::string what = "layer " + std::to_string(context.layer);
    TOK1D_RETURN_IF_ERROR(
        UnpackFixedWidth(coded, context.header.bits_per_token(), layer_tokens, what));
    const uint64_t codebook = context.header.codebook_size();
    for (uint32_t token : layer_tokens) {
      if (token >= codebook) {
        return CorruptError(what + " has token " + std::to_string(token) +
                            ", outside the codebook of " + std::to_string(codebook));
      }
    }
    return OkStatus();
  }
};

}  // namespace

std::vector<uint8_t> PackFixedWidth(std::span<const uint32_t> values, uint32_t bits) {
  std::vector<uint8_t> out;
  out.reserve(PackedBytes(values.size(), bits));
  uint64_t pending = 0;  // bits not yet written, LSB first
  uint32_t pending_bits = 0;
  for (uint32_t value : values) {
    pending |= uint64_t{value} << pending_bits;
    pending_bits += bits;
    for (; pending_bits >= 8; pending_bits -= 8, pending >>= 8) {
      out.push_back(static_cast<uint8_t>(pending));
    }
  }
  if (pending_bits > 0) out.push_back(static_cast<uint8_t>(pending));
  return out;
}

Status UnpackFixedWidth(std::span<const uint8_t> coded, uint32_t bits, std::span<uint32_t> values,
                        const std::string& what) {
  const uint64_t expected = PackedBytes(values.size(), bits);
  if (coded.size() != expected) {
    return CorruptError(what + " has " + std::to_string(coded.size()) + " bytes, expected " +
                        std::to_string(expected));
  }
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t pending = 0;
  uint32_t pending_bits = 0;
  size_t next_byte = 0;
  for (uint32_t& value : values) {
    for (; pending_bits < bits; pending_bits += 8) {
      pending |= uint64_t{coded[next_byte++]} << pending_bits;
    }
    value = static_cast<uint32_t>(pending & mask);
    pending >>= bits;
    pending_bits -= bits;
  }
  if (pending != 0) return CorruptError(what + " has non-zero padding bits");
  return OkStatus();
}

const LayerCoder& RawLayerCoder() {
  static const RawCoder coder;
  return coder;
}

}  // namespace tok1d
