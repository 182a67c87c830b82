// Writes a tiny random tok1d model file (tests/codec/test_models.h) for the command-line
// tests. Usage: tok1d_make_test_model OUT.safetensors [SEED [NAME]]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "codec/test_models.h"
#include "common/file_util.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s OUT.safetensors [SEED [NAME]]\n", argv[0]);
    return 2;
  }
  const auto seed = static_cast<uint32_t>(argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1);
  const std::string name = argc > 3 ? argv[3] : "tiny";
  const std::vector<uint8_t> bytes =
      tok1d::testing::MakeModelFile(tok1d::testing::TinyConfig(), seed, name);
  const tok1d::Status status = tok1d::WriteFileAtomically(argv[1], bytes, /*force=*/true);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
