#include "codec/range_coder.h"

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "container/token_files.h"

namespace tok1d {
namespace {

using testing::Rng;

// A random distribution over `symbols` symbols with every frequency >= 1, summing to
// 2^prob_bits. `skew` > 0 concentrates the mass on one symbol (the rest keep frequency 1).
std::vector<uint32_t> RandomCumulative(Rng& rng, uint32_t symbols, uint32_t prob_bits, bool skew) {
  const uint32_t total = uint32_t{1} << prob_bits;
  std::vector<uint32_t> freq(symbols, 1);
  if (skew) {
    freq[rng.Below(symbols)] += total - symbols;
  } else {
    for (uint32_t spare = total - symbols; spare > 0;) {
      const uint32_t add = std::min(spare, 1 + rng.Below(spare));
      freq[rng.Below(symbols)] += add;
      spare -= add;
    }
  }
  std::vector<uint32_t> cum(symbols + 1, 0);
  std::partial_sum(freq.begin(), freq.end(), cum.begin() + 1);
  return cum;
}

// Draws a symbol with the distribution's own probabilities, or uniformly (to exercise the
// rare symbols of skewed tables).
uint32_t DrawSymbol(Rng& rng, const std::vector<uint32_t>& cum, bool uniform) {
  const auto symbols = static_cast<uint32_t>(cum.size() - 1);
  if (uniform) return rng.Below(symbols);
  const uint32_t position = rng.Below(cum.back());
  uint32_t s = 0;
  while (cum[s + 1] <= position) ++s;
  return s;
}

struct Stream {
  std::vector<std::vector<uint32_t>> tables;
  std::vector<uint32_t> table_of;  // per symbol
  std::vector<uint32_t> symbols;
};

Stream RandomStream(Rng& rng, uint32_t prob_bits, size_t length) {
  Stream stream;
  const uint32_t table_count = 1 + rng.Below(4);
  for (uint32_t i = 0; i < table_count; ++i) {
    const uint32_t symbols = 2 + rng.Below(std::min<uint32_t>(255, (1u << prob_bits) - 1));
    stream.tables.push_back(RandomCumulative(rng, symbols, prob_bits, rng.Below(3) == 0));
  }
  const bool uniform = rng.Below(4) == 0;
  for (size_t i = 0; i < length; ++i) {
    const uint32_t table = rng.Below(table_count);
    stream.table_of.push_back(table);
    stream.symbols.push_back(DrawSymbol(rng, stream.tables[table], uniform));
  }
  return stream;
}

std::vector<uint8_t> EncodeStream(const Stream& stream, uint32_t prob_bits) {
  RangeEncoder encoder(prob_bits);
  for (size_t i = 0; i < stream.symbols.size(); ++i) {
    EncodeSymbol(encoder, stream.tables[stream.table_of[i]], stream.symbols[i]);
  }
  return encoder.Finish();
}

// Decodes as many symbols as `stream` has; false if the decoder reports damage.
bool DecodeStream(std::span<const uint8_t> bytes, const Stream& stream, uint32_t prob_bits,
                  std::vector<uint32_t>* decoded) {
  RangeDecoder decoder(bytes, prob_bits);
  decoded->clear();
  for (uint32_t table : stream.table_of) {
    uint32_t symbol = 0;
    if (!DecodeSymbol(decoder, stream.tables[table], &symbol)) return false;
    decoded->push_back(symbol);
  }
  return decoder.EndedCleanly();
}

double IdealBits(const Stream& stream) {
  double bits = 0;
  for (size_t i = 0; i < stream.symbols.size(); ++i) {
    const std::vector<uint32_t>& cum = stream.tables[stream.table_of[i]];
    const uint32_t s = stream.symbols[i];
    bits -= std::log2(static_cast<double>(cum[s + 1] - cum[s]) / cum.back());
  }
  return bits;
}

TEST_CASE("Range coder: fuzzed streams and random tables round trip exactly") {
  Rng rng(2024);
  for (int trial = 0; trial < 3000; ++trial) {
    const uint32_t prob_bits = kMinProbBits + rng.Below(kMaxProbBits - kMinProbBits + 1);
    const size_t length = trial < 100 ? static_cast<size_t>(trial) : rng.Below(3000);
    const Stream stream = RandomStream(rng, prob_bits, length);
    const std::vector<uint8_t> bytes = EncodeStream(stream, prob_bits);
    std::vector<uint32_t> decoded;
    REQUIRE_MESSAGE(DecodeStream(bytes, stream, prob_bits, &decoded), "trial " << trial);
    REQUIRE(decoded == stream.symbols);
    // Within the ideal code length plus the ending and a small per-symbol rounding loss.
    CHECK(static_cast<double>(bytes.size()) * 8 <=
          IdealBits(stream) * 1.01 + 0.01 * static_cast<double>(length) + 40);
  }
}

TEST_CASE("Range coder: extreme skew, frequency-1 symbols and long carry runs") {
  for (uint32_t prob_bits : {kMinProbBits, 12u, kMaxProbBits}) {
    const uint32_t total = uint32_t{1} << prob_bits;
    // A near-certain symbol 0 and a frequency-1 symbol at either end of the range: coding
    // the certain one many times drives low towards 0xFF… runs; the rare ones force carries.
    const std::vector<uint32_t> cum = {0, 1, total - 1, total};
    for (uint32_t rare : {0u, 2u}) {
      Stream stream;
      stream.tables = {cum};
      for (int i = 0; i < 20000; ++i) {
        stream.table_of.push_back(0);
        stream.symbols.push_back(i % 997 == 13 ? rare : 1);
      }
      const std::vector<uint8_t> bytes = EncodeStream(stream, prob_bits);
      std::vector<uint32_t> decoded;
      REQUIRE(DecodeStream(bytes, stream, prob_bits, &decoded));
      CHECK(decoded == stream.symbols);
    }
    // Only rare symbols: about prob_bits bits each.
    Stream rare_only;
    rare_only.tables = {cum};
    for (int i = 0; i < 1000; ++i) {
      rare_only.table_of.push_back(0);
      rare_only.symbols.push_back(i % 2 == 0 ? 0 : 2);
    }
    const std::vector<uint8_t> bytes = EncodeStream(rare_only, prob_bits);
    std::vector<uint32_t> decoded;
    REQUIRE(DecodeStream(bytes, rare_only, prob_bits, &decoded));
    CHECK(decoded == rare_only.symbols);
    CHECK(bytes.size() <= 1000 * prob_bits / 8 + 8);
  }
}

TEST_CASE("Range coder: ending a stream costs at most a few bytes") {
  Rng rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    Stream stream = RandomStream(rng, 15, 40);
    const std::vector<uint8_t> bytes = EncodeStream(stream, 15);
    CHECK(static_cast<double>(bytes.size()) * 8 <= IdealBits(stream) + 8 * 3);
  }
  // No symbols: nothing to write.
  CHECK(RangeEncoder(15).Finish().empty());
}

TEST_CASE("Range coder: only the encoder's exact output decodes to its symbols") {
  // The decoder accepts a stream only if it is what the encoder writes for the symbols it
  // decodes (all bytes read, no trailing zero, the encoder's final value): so a changed,
  // cut or padded stream is refused or decodes to other symbols, never to the same ones.
  Rng rng(99);
  for (int trial = 0; trial < 2000; ++trial) {
    const Stream stream = RandomStream(rng, 12, 1 + rng.Below(200));
    const std::vector<uint8_t> bytes = EncodeStream(stream, 12);
    std::vector<uint32_t> decoded;
    auto refused_or_other = [&](const std::vector<uint8_t>& damaged) {
      return !DecodeStream(damaged, stream, 12, &decoded) || decoded != stream.symbols;
    };
    std::vector<uint8_t> padded = bytes;
    padded.push_back(static_cast<uint8_t>(rng.Below(256)));
    CHECK(refused_or_other(padded));
    if (bytes.empty()) continue;
    std::vector<uint8_t> changed = bytes;
    changed[rng.Below(changed.size())] ^= static_cast<uint8_t>(1 + rng.Below(255));
    CHECK(refused_or_other(changed));
    const std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 1);
    CHECK(refused_or_other(cut));
  }
}

}  // namespace
}  // namespace tok1d
