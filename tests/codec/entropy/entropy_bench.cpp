// Speed of the range coder inside the container: writes and reads a large token file whose
// tokens are drawn from entropy tables (a model's, or random ones shaped like them) and prints
// MB/s of coded data and tokens/s.
//   tok1d_entropy_bench [model.safetensors]
#include <chrono>
#include <cstdio>

#include "codec/entropy/entropy_test_tables.h"
#include "codec/model.h"

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tok1d;
  std::shared_ptr<const EntropyTables> tables;
  std::array<uint8_t, 32> sha{};
  for (size_t i = 0; i < sha.size(); ++i) sha[i] = static_cast<uint8_t>(i);
  if (argc > 1) {
    auto model = LoadModelFile(argv[1]);
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", model.status().message().c_str());
      return 1;
    }
    if (!model->entropy_tables()) {
      std::fprintf(stderr, "%s has no entropy tables\n", argv[1]);
      return 1;
    }
    tables = model->entropy_tables();
    std::printf("tables of %s\n", argv[1]);
  } else {
    testing::EntropyTableSpec spec;
    spec.tokens = 128;
    spec.fsq_levels = {15, 15, 15, 15, 15, 15};
    spec.contexts = 4;
    spec.activity_window = 8;
    tables = testing::RandomEntropyTables(spec, 1);
    std::printf("random tables: K 128, FSQ 15^6, 4 contexts\n");
  }
  const RangeLayerCoder coder(tables, sha);
  // 64 x 48 tiles of 128 pixels (an 8192 x 6144 image), all K tokens.
  TokenFile file = testing::SampleTokenFile(*tables, 64 * 128, 48 * 128, 128, {}, 1);
  file.header.entropy_coder = kRangeCoderId;
  uint64_t tokens = 0;
  for (const auto& tile : file.tokens) tokens += tile.size();

  constexpr int kRepeats = 5;
  auto start = Clock::now();
  StatusOr<std::vector<uint8_t>> bytes = WriteT1d(file, &coder);
  for (int i = 1; i < kRepeats; ++i) bytes = WriteT1d(file, &coder);
  const double encode_seconds = SecondsSince(start) / kRepeats;
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s\n", bytes.status().message().c_str());
    return 1;
  }
  start = Clock::now();
  for (int i = 0; i < kRepeats; ++i) {
    auto read = ReadT1d(*bytes, {}, nullptr, &coder);
    if (!read.ok() || read->tokens != file.tokens) {
      std::fprintf(stderr, "round trip failed\n");
      return 1;
    }
  }
  const double decode_seconds = SecondsSince(start) / kRepeats;
  const double megabytes = static_cast<double>(bytes->size()) / 1e6;
  std::printf("%llu tokens in %.3f MB (%.2f bits/token)\n", static_cast<unsigned long long>(tokens),
              megabytes, static_cast<double>(bytes->size()) * 8 / static_cast<double>(tokens));
  std::printf("encode: %.1f MB/s, %.2f M tokens/s (container included)\n",
              megabytes / encode_seconds, static_cast<double>(tokens) / encode_seconds / 1e6);
  std::printf("decode: %.1f MB/s, %.2f M tokens/s (container included)\n",
              megabytes / decode_seconds, static_cast<double>(tokens) / decode_seconds / 1e6);
  return 0;
}
