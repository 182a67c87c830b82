// libFuzzer target: model files (`--model`) on arbitrary bytes — the safetensors reader (header
// JSON, dtypes, shapes, data offsets), the metadata (format, name, config JSON), the weight
// binding, the entropy tables and the refinement plan (codec/model.h LoadModel).
// Beyond "no crash, no leak, no unbounded allocation": whatever loads is usable. When the model
// is tiny (as the seeds are) it encodes a small image of two tiles, writes the .t1d with the
// model's own coder (range coder when it has tables), reads it back to the same tokens, and
// decodes it to an image of the right size.
//
// The codec runs only on weights that are finite and within ±1000 (trained weights are far
// smaller): LoadModel accepts NaN and infinite weights, and the NaN they make reaches float →
// int conversions (kernels/cpu/vector_math.h ExpApprox, codec/tiling.cpp, codec/deblock.cpp),
// which UBSan reports (tests/README.md, fuzzing findings). Until the loader refuses such files,
// this target checks the loader on them and the codec on the rest.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "codec/codec.h"
#include "codec/model.h"
#include "container/t1d.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

// Small enough that a forward pass costs well under a millisecond (the tiny test models are
// tile 16, width 8, 6 tokens); larger models only load.
bool IsTiny(const tok1d::Model& model) {
  const tok1d::ModelConfig& c = model.config();
  return c.tile <= 32 && c.width <= 32 && c.tokens <= 32 && c.enc_depth + c.dec_depth <= 4 &&
         c.mlp_ratio <= 4 && c.pool <= 16 && model.weights().size() <= (size_t{1} << 16);
}

bool HasSaneWeights(const tok1d::Model& model) {
  const std::span<const float> weights = model.weights();
  return std::all_of(weights.begin(), weights.end(),
                     [](float w) { return std::isfinite(w) && std::fabs(w) <= 1000.0f; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tok1d;
  const std::span<const uint8_t> bytes(data, size);
  StatusOr<Model> model = LoadModel(bytes);
  if (!model.ok()) {
    Require(!model.status().message().empty());
    return 0;
  }
  // What `tok1d info` and the .t1d header take from a model.
  Require(model->file_bytes() == size);
  Require(model->sha256_hex().size() == 64);
  Require(!model->identity().name.empty());
  const ModelConfig& config = model->config();
  Require(config.tile > 0 && config.patch > 0 && config.tokens > 0 && !config.fsq_levels.empty());
  if (!IsTiny(*model) || !HasSaneWeights(*model)) return 0;

  CodecOptions options;
  options.threads = 1;
  options.deblock = size % 2 == 0;
  StatusOr<std::unique_ptr<Codec>> codec = Codec::Create(*model, options);
  Require(codec.ok());
  // Two tiles, the second cut short; pixels from the input's last bytes.
  Image image{config.tile + 3, config.tile / 2 + 1, {}};
  image.rgb.resize(size_t{image.width} * image.height * 3);
  for (size_t i = 0; i < image.rgb.size(); ++i) {
    image.rgb[i] = static_cast<uint8_t>(data[size - 1 - i % size] + i * 7);
  }
  const uint32_t tokens = 1 + static_cast<uint32_t>(size % config.tokens);
  StatusOr<TokenFile> file = (*codec)->Encode(image, tokens);
  Require(file.ok());
  const LayerCoder* coder = (*codec)->layer_coder(file->header.entropy_coder);
  StatusOr<std::vector<uint8_t>> written = WriteT1d(*file, coder);
  Require(written.ok());
  StatusOr<TokenFile> read = ReadT1d(*written, {}, nullptr, coder);
  Require(read.ok() && read->tokens == file->tokens && read->refinements == file->refinements);
  StatusOr<Image> decoded = (*codec)->Decode(*read);
  Require(decoded.ok() && decoded->width == image.width && decoded->height == image.height &&
          decoded->rgb.size() == image.rgb.size());
  return 0;
}
