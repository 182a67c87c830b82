// Writes the golden .t1d files and MANIFEST.tsv into the directory given as argument.
// Only run this when the format changes on purpose (and FORMAT.md says how).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "container/golden.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: t1d_make_golden OUTPUT_DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  const auto files = tok1d::testing::MakeGoldenFiles();
  for (const auto& file : files) {
    std::ofstream out(dir / file.name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.bytes.data()),
              static_cast<std::streamsize>(file.bytes.size()));
    if (!out) return 1;
  }
  std::ofstream(dir / "MANIFEST.tsv") << tok1d::testing::GoldenManifest(files);
  std::printf("wrote %zu golden files to %s\n", files.size(), dir.c_str());
  return 0;
}
