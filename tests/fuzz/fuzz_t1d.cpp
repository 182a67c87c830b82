// libFuzzer target: the .t1d reader, trim and writer on arbitrary bytes.
// Beyond "no crash, no leak, no unbounded allocation" it checks invariants: whatever the
// reader accepts, the writer re-encodes and the reader reads back to the same tokens, and a
// trimmed file is valid.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "container/t1d.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tok1d;
  const std::span<const uint8_t> bytes(data, size);
  for (bool allow_truncated : {false, true}) {
    ReadOptions options;
    options.allow_truncated = allow_truncated;
    options.max_pixels = 1u << 24;  // keeps each input's memory small; the bound is what matters
    auto info = ReadT1dHeader(bytes, options);
    ReadReport report;
    auto file = ReadT1d(bytes, options, &report);
    if (!file.ok()) continue;
    Require(info.ok());
    Require(report.layers_complete <= report.layers_declared);
    Require(allow_truncated || !report.truncated);

    auto rewritten = WriteT1d(*file);
    Require(rewritten.ok());
    auto reread = ReadT1d(*rewritten, options);
    Require(reread.ok() && reread->tokens == file->tokens);

    const uint32_t k = size > 0 ? data[size - 1] % 10 : 0;
    auto trimmed = TrimT1dBytes(bytes, k, options);
    if (trimmed.ok()) Require(ReadT1d(*trimmed, options).ok());
  }
  return 0;
}
