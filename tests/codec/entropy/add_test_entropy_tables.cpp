// Copies a model file adding random entropy tables (for command-line tests that need a model
// with tables without fitting them).
//   tok1d_add_test_entropy_tables IN.safetensors OUT.safetensors
#include <cstdio>

#include "codec/entropy/entropy_test_tables.h"
#include "codec/safetensors.h"
#include "common/file_util.h"

int main(int argc, char** argv) {
  using namespace tok1d;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IN.safetensors OUT.safetensors\n", argv[0]);
    return 2;
  }
  auto fail = [](const Status& status) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 1;
  };
  auto bytes = ReadFileBytes(argv[1]);
  if (!bytes.ok()) return fail(bytes.status());
  auto file = ParseSafetensors(*bytes);
  if (!file.ok()) return fail(file.status());
  auto config = ParseModelConfig(file->metadata["config"]);
  if (!config.ok()) return fail(config.status());

  std::map<std::string, testing::TestTensor> tensors;
  for (const SafetensorsTensor& tensor : file->tensors) {
    if (tensor.name.starts_with("entropy.")) continue;
    tensors[tensor.name] = {tensor.dtype, tensor.shape, {tensor.data.begin(), tensor.data.end()}};
  }
  testing::EntropyTableSpec spec;
  spec.tokens = config->tokens;
  spec.fsq_levels = config->fsq_levels;
  spec.activity_window = std::min<uint32_t>(2, config->tokens);
  testing::AddRandomEntropyTables(spec, 1, &tensors, &file->metadata);
  const std::vector<uint8_t> out = testing::WriteSafetensors(tensors, file->metadata);
  Status written = WriteFileAtomically(argv[2], out, /*force=*/true);
  return written.ok() ? 0 : fail(written);
}
