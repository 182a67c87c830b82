// The "raw" entropy coder (id 0): every token in a fixed ceil(log2 N) bits, LSB first.
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

  StatusOr<std::vector<uint8_t>> EncodeLayer(const LayerContext& context,
                                             std::span<const uint32_t> layer_tokens) const override {
    const uint32_t bits = context.header.bits_per_token();
    std::vector<uint8_t> out;
    out.reserve(PackedBytes(layer_tokens.size(), bits));
    uint64_t pending = 0;  // bits not yet written, LSB first
    uint32_t pending_bits = 0;
    for (uint32_t token : layer_tokens) {
      pending |= uint64_t{token} << pending_bits;
      pending_bits += bits;
      for (; pending_bits >= 8; pending_bits -= 8, pending >>= 8) {
        out.push_back(static_cast<uint8_t>(pending));
      }
    }
    if (pending_bits > 0) out.push_back(static_cast<uint8_t>(pending));
    return out;
  }

  Status DecodeLayer(const LayerContext& context, std::span<const uint8_t> coded,
                     std::span<uint32_t> layer_tokens) const override {
    const uint32_t bits = context.header.bits_per_token();
    const uint64_t codebook = context.header.codebook_size();
    const uint64_t expected = PackedBytes(layer_tokens.size(), bits);
    if (coded.size() != expected) {
      return CorruptError("layer " + std::to_string(context.layer) + " has " +
                          std::to_string(coded.size()) + " bytes of tokens, expected " +
                          std::to_string(expected));
    }
    const uint64_t mask = (uint64_t{1} << bits) - 1;
    uint64_t pending = 0;
    uint32_t pending_bits = 0;
    size_t next_byte = 0;
    for (uint32_t& token : layer_tokens) {
      for (; pending_bits < bits; pending_bits += 8) {
        pending |= uint64_t{coded[next_byte++]} << pending_bits;
      }
      uint64_t value = pending & mask;
      if (value >= codebook) {
        return CorruptError("layer " + std::to_string(context.layer) + " has token " +
                            std::to_string(value) + ", outside the codebook of " +
                            std::to_string(codebook));
      }
      token = static_cast<uint32_t>(value);
      pending >>= bits;
      pending_bits -= bits;
    }
    if (pending != 0) {
      return CorruptError("layer " + std::to_string(context.layer) +
                          " has non-zero padding bits");
    }
    return OkStatus();
  }
};

}  // namespace

const LayerCoder& RawLayerCoder() {
  static const RawCoder coder;
  return coder;
}

}  // namespace tok1d
