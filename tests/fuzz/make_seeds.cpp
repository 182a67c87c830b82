// Writes the initial seeds of fuzz_model and fuzz_image (before fuzzing and -merge=1 into
// tests/fuzz/corpus/, see tests/README.md):
//   MODEL_DIR: tiny random models of both architectures, F16 and F32, with and without entropy
//     tables and a refinement plan, and, when given the default model, its safetensors header
//     alone (metadata, config, tensor list and table descriptions, without the 15 MB of weights);
//   IMAGE_DIR: tiny PNG (RGB with eXIf, palette with tRNS, 16-bit gray), JPEG (RGB with EXIF
//     orientation in APP1, gray, CMYK), WebP (with an EXIF chunk), PPM and PGM files.
//   fuzz_make_seeds MODEL_DIR IMAGE_DIR [models/tok1d-default.safetensors]
#include <cstddef>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "codec/entropy/entropy_test_tables.h"
#include "codec/test_models.h"
#include "common/file_util.h"
#include "test_images.h"

namespace {

using namespace tok1d;
using namespace tok1d::testing;

std::vector<uint8_t> TinyModel(const std::string& dtype, Architecture architecture, bool tables,
                               const std::string& refinement) {
  const ModelConfig config = TinyConfig();
  std::map<std::string, TestTensor> tensors = RandomModelTensors(config, 7, dtype, architecture);
  std::map<std::string, std::string> metadata = ModelMetadata(config, "seed");
  if (!refinement.empty()) metadata["refinement"] = refinement;
  if (tables) {
    EntropyTableSpec spec;
    spec.tokens = config.tokens;
    spec.fsq_levels = config.fsq_levels;
    spec.contexts = 2;
    spec.activity_window = 2;
    spec.prob_bits = 12;
    AddRandomEntropyTables(spec, 1, &tensors, &metadata);
  }
  return WriteSafetensors(tensors, metadata);
}

struct Seed {
  std::string name;
  std::vector<uint8_t> bytes;
};

std::vector<Seed> ImageSeeds() {
  constexpr uint32_t kW = 7, kH = 5;
  const std::vector<uint16_t> rgb16 = Pattern(kW, kH, 3, 256);
  const std::vector<uint8_t> rgb(rgb16.begin(), rgb16.end());
  const std::vector<uint16_t> gray16 = Pattern(kW, kH, 1, 65536);
  const std::vector<uint16_t> gray = Pattern(kW, kH, 1, 256);
  const std::vector<uint16_t> cmyk16 = Pattern(kW, kH, 4, 256);
  const std::vector<uint8_t> cmyk(cmyk16.begin(), cmyk16.end());
  std::vector<uint8_t> ppm = {'P', '6', '\n', '7', ' ', '5', '\n', '2', '5', '5', '\n'};
  ppm.insert(ppm.end(), rgb.begin(), rgb.end());
  std::vector<uint8_t> pgm = {'P', '5', ' ', '7', ' ', '5', ' ', '6', '5', '5', '3', '5', '\n'};
  for (uint16_t v : gray16) {
    pgm.push_back(static_cast<uint8_t>(v >> 8));
    pgm.push_back(static_cast<uint8_t>(v));
  }
  return {
      {"rgb-exif6.png", WithPngExif(MakePng(kW, kH, 2, 8, rgb16), MakeExifWithOrientation(6))},
      {"palette-trns.png", MakePng(kW, kH, 3, 2, Pattern(kW, kH, 1, 4),
                                   {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9}, {0, 128, 255})},
      {"gray16-exif-after.png",
       WithPngExif(MakePng(kW, kH, 0, 16, gray16), MakeExifWithOrientation(3, false), true)},
      {"rgb-exif8.jpg", WithJpegExif(MakeJpeg(kW, kH, 3, rgb), MakeExifWithOrientation(8, false))},
      {"gray.jpg", MakeJpeg(kW, kH, 1, std::vector<uint8_t>(gray.begin(), gray.end()))},
      {"cmyk.jpg", MakeJpeg(kW, kH, 4, cmyk)},
      {"rgb-exif5.webp", WithWebpExif(MakeWebp(kW, kH, 3, rgb), MakeExifWithOrientation(5))},
      {"rgb.ppm", ppm},
      {"gray16.pgm", pgm},
  };
}

Status WriteSeeds(const std::string& dir, const std::vector<Seed>& seeds) {
  for (const Seed& seed : seeds) {
    TOK1D_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + seed.name, seed.bytes, /*force=*/true));
    std::printf("%s/%s: %zu bytes\n", dir.c_str(), seed.name.c_str(), seed.bytes.size());
  }
  return OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE_DIR [DEFAULT_MODEL]\n", argv[0]);
    return 2;
  }
  const std::string plan = R"({"bits": 2, "after": [0, 2, 5]})";
  std::vector<Seed> seeds = {
      {"tiny-f16", TinyModel("F16", Architecture::kRefined, false, "")},
      {"tiny-f32-first", TinyModel("F32", Architecture::kFirst, false, "")},
      {"tiny-f16-tables", TinyModel("F16", Architecture::kRefined, true, "")},
      {"tiny-f16-refinement", TinyModel("F16", Architecture::kRefined, false, plan)},
      {"tiny-f16-tables-refinement", TinyModel("F16", Architecture::kRefined, true, plan)},
  };
  if (argc == 4) {
    auto bytes = ReadFileBytes(argv[3]);
    if (!bytes.ok()) {
      std::fprintf(stderr, "%s\n", bytes.status().message().c_str());
      return 1;
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = header << 8 | (*bytes)[static_cast<size_t>(i)];
    if (bytes->size() < 8 || header > bytes->size() - 8) {
      std::fprintf(stderr, "%s is not a safetensors file\n", argv[3]);
      return 1;
    }
    seeds.push_back(
        {"default-header-only",
         std::vector<uint8_t>(bytes->begin(),
                              bytes->begin() + static_cast<std::ptrdiff_t>(8 + header))});
  }
  Status status = WriteSeeds(argv[1], seeds);
  if (status.ok()) status = WriteSeeds(argv[2], ImageSeeds());
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
