// libFuzzer target: the range decoder on arbitrary bytes. Beyond "no crash, no out-of-bounds
// read", it checks that decoding is canonical: whenever a stream decodes cleanly, encoding the
// decoded symbols gives back exactly the input bytes (container/FORMAT.md, range coder).
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <span>
#include <vector>

#include "codec/range_coder.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tok1d;
  if (size < 3) return 0;
  // Header: probability bits, alphabet size and symbol count; the rest is the stream.
  const uint32_t prob_bits = kMinProbBits + data[0] % (kMaxProbBits - kMinProbBits + 1);
  const uint32_t symbols = 2 + data[1] % 30;
  const uint32_t count = data[2];
  const std::span<const uint8_t> stream(data + 3, size - 3);

  // A skewed table: symbol s has frequency proportional to 2^-s, each at least 1.
  const uint32_t total = uint32_t{1} << prob_bits;
  std::vector<uint32_t> freq(symbols, 1);
  uint32_t spare = total - symbols;
  for (uint32_t s = 0; s < symbols && spare > 0; ++s) {
    const uint32_t add = s + 1 == symbols ? spare : spare / 2;
    freq[s] += add;
    spare -= add;
  }
  freq[0] += spare;
  std::vector<uint32_t> cum(symbols + 1, 0);
  std::partial_sum(freq.begin(), freq.end(), cum.begin() + 1);

  RangeDecoder decoder(stream, prob_bits);
  std::vector<uint32_t> decoded;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t symbol = 0;
    if (!DecodeSymbol(decoder, cum, &symbol)) return 0;
    Require(symbol < symbols);
    decoded.push_back(symbol);
  }
  if (!decoder.EndedCleanly()) return 0;
  RangeEncoder encoder(prob_bits);
  for (uint32_t symbol : decoded) EncodeSymbol(encoder, cum, symbol);
  const std::vector<uint8_t> reencoded = encoder.Finish();
  Require(std::equal(reencoded.begin(), reencoded.end(), stream.begin(), stream.end()));
  return 0;
}
