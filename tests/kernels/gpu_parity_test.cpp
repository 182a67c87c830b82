// GPU backend parity: every operation of kernels/backend.h, and whole tiles through the
// tokenizer, on a GPU backend against the CPU reference backend, plus the GPU error paths.
//
// Usage: tok1d_gpu_tests --backend=NAME [doctest options]
//   gpu-emulator  the kernels on host threads (kernels/gpu/host_emulation.h): runs everywhere
//   cuda | hip    that backend (it must be compiled in)
//   device        every compiled GPU backend whose device is usable; exits 77 (CTest:
//                 skipped) with the reason when there is none
//
// Tolerances, as normalised mean squared error NMSE = Σ(gpu − cpu)² / Σ cpu² (docs/gpu.md):
//  - single operations: NMSE ≤ 1e-10 (fp32 with another summation order gives ~1e-13;
//    index shuffling, FSQ codes, patches, unpatchify, the pixel-shuffle add and pooling must
//    match exactly);
//  - whole tiles decoded by the tokenizer: NMSE ≤ 1e-8 and max |gpu − cpu| ≤ 1e-3 (a quarter
//    of an 8-bit level) on the [0, 1] pixel scale;
//  - encoding: tokens equal except where PyTorch-style rounding sits within 1e-4 of a tie;
//  - the backward operations as single operations above (moving values, including
//    AssembleTilesBackward's detail gradient, exactly); the whole decoder's gradient
//    (DecodeValuesBackward): NMSE ≤ 1e-8 and max |gpu − cpu| ≤ 1e-4 × max |cpu gradient|.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/model.h"
#include "codec/test_models.h"
#include "codec/tiling.h"
#include "codec/token_search.h"
#include "codec/tokenizer.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/gpu/gpu_backend.h"

namespace tok1d {

// Set by main from --backend.
std::vector<std::string> g_backends_under_test;

namespace {

using testing::RandomValues;

constexpr double kOperationNmse = 1e-10;
constexpr double kDecodeNmse = 1e-8;
constexpr double kDecodeMaxError = 1e-3;
constexpr double kGradientNmse = 1e-8;
constexpr double kGradientMaxError = 1e-4;  // of the largest |gradient|

std::unique_ptr<Backend> CreateBackendUnderTest(const std::string& name) {
  StatusOr<std::unique_ptr<Backend>> backend =
      name == "gpu-emulator" ? gpu_emulator::CreateGpuBackend() : CreateBackend(name);
  REQUIRE_MESSAGE(backend.ok(), name << ": " << backend.status().message());
  return std::move(backend).value();
}

double Nmse(const std::vector<float>& actual, const std::vector<float>& expected) {
  REQUIRE(actual.size() == expected.size());
  double error = 0, energy = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    error += (double{actual[i]} - expected[i]) * (double{actual[i]} - expected[i]);
    energy += double{expected[i]} * expected[i];
  }
  return error / std::max(energy, 1e-30);
}

double MaxError(const std::vector<float>& actual, const std::vector<float>& expected) {
  double worst = 0;
  for (size_t i = 0; i < actual.size(); ++i)
    worst = std::max(worst, std::abs(double{actual[i]} - expected[i]));
  return worst;
}

// Runs the same operation on the CPU backend and on the backend under test, each with its own
// copies of the inputs, and returns both outputs.
class PairedRun {
 public:
  explicit PairedRun(const std::string& backend)
      : cpu_(CreateCpuBackend(2)), gpu_(CreateBackendUnderTest(backend)) {}

  Backend& cpu() { return *cpu_; }
  Backend& gpu() { return *gpu_; }

  // A buffer on each backend holding `values`.
  template <typename T>
  std::pair<T*, T*> Input(const std::vector<T>& values) {
    return {Put<T>(*cpu_, values), Put<T>(*gpu_, values)};
  }
  template <typename T>
  std::pair<T*, T*> Output(size_t count, T fill = T{}) {
    return Input(std::vector<T>(count, fill));
  }

  template <typename T>
  std::pair<std::vector<T>, std::vector<T>> Results(std::pair<T*, T*> buffers, size_t count) {
    return {Get<T>(*cpu_, buffers.first, count), Get<T>(*gpu_, buffers.second, count)};
  }

 private:
  template <typename T>
  T* Put(Backend& backend, const std::vector<T>& values) {
    StatusOr<DeviceBuffer> buffer = backend.Allocate(values.size() * sizeof(T));
    REQUIRE_MESSAGE(buffer.ok(), buffer.status().message());
    REQUIRE(
        backend.CopyToDevice(buffer->as<void>(), values.data(), values.size() * sizeof(T)).ok());
    buffers_.push_back(std::move(buffer).value());
    return buffers_.back().as<T>();
  }
  template <typename T>
  std::vector<T> Get(Backend& backend, const T* device, size_t count) {
    std::vector<T> values(count);
    const Status status = backend.CopyToHost(values.data(), device, count * sizeof(T));
    REQUIRE_MESSAGE(status.ok(), backend.name() << ": " << status.message());
    return values;
  }

  std::unique_ptr<Backend> cpu_, gpu_;
  std::vector<DeviceBuffer> buffers_;  // declared last: freed before the backends
};

#define FOR_EACH_BACKEND_UNDER_TEST(name) \
  for (const std::string& name : g_backends_under_test) SUBCASE(name.c_str())

TEST_CASE("Linear: store, GELU and accumulate epilogues, ragged and model sizes") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    // (rows, in, out): nothing a multiple of the tile sizes; the decoder's qkv and fc2.
    for (const auto& shape : {std::array<size_t, 3>{7, 13, 5}, {200, 192, 576}, {130, 768, 192}}) {
      const size_t rows = shape[0], in = shape[1],
                   out = shape[2];  // CAPTURE cannot take a binding (clang 14)
      for (Epilogue epilogue : {Epilogue::kStore, Epilogue::kGelu, Epilogue::kAccumulate}) {
        CAPTURE(rows);
        CAPTURE(in);
        CAPTURE(out);
        CAPTURE(static_cast<int>(epilogue));
        PairedRun run(backend);
        const auto x = run.Input(RandomValues(rows * in, 1));
        const auto w = run.Input(RandomValues(out * in, 2, 0.1f));
        const auto b = run.Input(RandomValues(out, 3));
        const auto y = run.Input(RandomValues(rows * out, 4));
        run.cpu().Linear(x.first, rows, in, w.first, b.first, out, y.first, epilogue);
        run.gpu().Linear(x.second, rows, in, w.second, b.second, out, y.second, epilogue);
        auto [expected, actual] = run.Results(y, rows * out);
        CHECK(Nmse(actual, expected) <= kOperationNmse);
      }
    }
  }
}

TEST_CASE("LayerNorm") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (auto [rows, width] : {std::array<size_t, 2>{13, 192}, {9, 40}, {1, 3}}) {
      PairedRun run(backend);
      std::vector<float> values = RandomValues(rows * width, 5, 3.0f);
      for (float& v : values) v += 1.5f;  // a mean far from 0
      const auto x = run.Input(values);
      const auto gamma = run.Input(RandomValues(width, 6));
      const auto beta = run.Input(RandomValues(width, 7));
      const auto y = run.Output<float>(rows * width);
      run.cpu().LayerNorm(x.first, rows, width, gamma.first, beta.first, 1e-5f, y.first);
      run.gpu().LayerNorm(x.second, rows, width, gamma.second, beta.second, 1e-5f, y.second);
      auto [expected, actual] = run.Results(y, rows * width);
      CHECK(Nmse(actual, expected) <= kOperationNmse);
    }
  }
}

// (sequences, length, heads, head_dim) of the attention tests: the default model's decoder;
// lengths that leave a partial query block and key chunk; one row; the tiny test model's heads.
constexpr std::array<std::array<size_t, 4>, 4> kAttentionShapes = {
    {{2, 192, 3, 64}, {3, 45, 2, 24}, {1, 1, 1, 64}, {2, 22, 2, 4}}};

TEST_CASE("Attention: model sizes, ragged lengths and small heads") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const auto& shape : kAttentionShapes) {
      // Not a structured binding: CAPTURE cannot take one (clang 14).
      const size_t sequences = shape[0], length = shape[1], heads = shape[2], head_dim = shape[3];
      CAPTURE(length);
      CAPTURE(head_dim);
      PairedRun run(backend);
      const size_t rows = sequences * length, width = heads * head_dim;
      const auto qkv = run.Input(RandomValues(rows * 3 * width, 8, 2.0f));
      const auto out = run.Output<float>(rows * width);
      run.cpu().Attention(qkv.first, sequences, length, heads, head_dim, out.first);
      run.gpu().Attention(qkv.second, sequences, length, heads, head_dim, out.second);
      auto [expected, actual] = run.Results(out, rows * width);
      CHECK(Nmse(actual, expected) <= kOperationNmse);
    }
  }
}

TEST_CASE("BuildSequences and SliceSequences move values exactly") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const size_t sequences = 3, width = 5, head_count = 4, tail_count = 2;
    PairedRun run(backend);
    const auto shared = run.Input(RandomValues(head_count * width, 9));
    const auto per_sequence = run.Input(RandomValues(sequences * tail_count * width, 10));
    const auto add = run.Input(RandomValues(tail_count * width, 11));
    const size_t length = head_count + tail_count;
    const auto built = run.Output<float>(sequences * length * width);
    run.cpu().BuildSequences({shared.first, head_count, 0, nullptr},
                             {per_sequence.first, tail_count, tail_count * width, add.first},
                             sequences, width, built.first);
    run.gpu().BuildSequences({shared.second, head_count, 0, nullptr},
                             {per_sequence.second, tail_count, tail_count * width, add.second},
                             sequences, width, built.second);
    const auto sliced = run.Output<float>(sequences * 3 * width);
    run.cpu().SliceSequences(built.first, sequences, length, 2, 3, width, sliced.first);
    run.gpu().SliceSequences(built.second, sequences, length, 2, 3, width, sliced.second);
    auto [built_cpu, built_gpu] = run.Results(built, sequences * length * width);
    CHECK(built_gpu == built_cpu);
    auto [sliced_cpu, sliced_gpu] = run.Results(sliced, sequences * 3 * width);
    CHECK(sliced_gpu == sliced_cpu);
  }
}

TEST_CASE("PatchifyTiles and Patchify match exactly") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const TileGeometry geometry{32, 8, 8};
    const size_t count = 2, tile_values = 32 * 32 * 3;
    std::vector<uint8_t> pixels(count * tile_values);
    std::mt19937 random(12);
    for (uint8_t& v : pixels) v = static_cast<uint8_t>(random());
    PairedRun run(backend);
    const auto tiles = run.Input(pixels);
    const auto patches = run.Output<float>(count * tile_values);
    const auto pooled = run.Output<float>(count * 8 * 8 * 3);
    run.cpu().PatchifyTiles(tiles.first, count, geometry, patches.first, pooled.first);
    run.gpu().PatchifyTiles(tiles.second, count, geometry, patches.second, pooled.second);
    auto [patches_cpu, patches_gpu] = run.Results(patches, count * tile_values);
    CHECK(patches_gpu == patches_cpu);
    auto [pooled_cpu, pooled_gpu] = run.Results(pooled, count * 8 * 8 * 3);
    CHECK(pooled_gpu == pooled_cpu);

    // Patchify: the same layout from float images (the decoder's coarse image).
    const auto images = run.Input(RandomValues(count * 12 * 12 * 3, 23));
    const auto image_patches = run.Output<float>(count * 12 * 12 * 3);
    run.cpu().Patchify(images.first, count, 12, 4, image_patches.first);
    run.gpu().Patchify(images.second, count, 12, 4, image_patches.second);
    auto [image_patches_cpu, image_patches_gpu] = run.Results(image_patches, count * 12 * 12 * 3);
    CHECK(image_patches_gpu == image_patches_cpu);
  }
}

FsqLevels TestLevels() {
  FsqLevels levels;
  levels.dims = 4;
  levels.levels[0] = 15;
  levels.levels[1] = 8;
  levels.levels[2] = 5;
  levels.levels[3] = 4;
  return levels;
}

TEST_CASE("FsqQuantize: bounded values, and tokens except at rounding ties") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const FsqLevels levels = TestLevels();
    const size_t rows = 300;
    PairedRun run(backend);
    const auto z = run.Input(RandomValues(rows * levels.dims, 13, 3.0f));
    const auto bounded = run.Output<float>(rows * levels.dims);
    const auto tokens = run.Output<int32_t>(rows);
    run.cpu().FsqQuantize(z.first, rows, levels, bounded.first, tokens.first);
    run.gpu().FsqQuantize(z.second, rows, levels, bounded.second, tokens.second);
    auto [bounded_cpu, bounded_gpu] = run.Results(bounded, rows * levels.dims);
    CHECK(Nmse(bounded_gpu, bounded_cpu) <= kOperationNmse);
    auto [tokens_cpu, tokens_gpu] = run.Results(tokens, rows);
    for (size_t r = 0; r < rows; ++r) {
      bool near_tie = false;
      for (size_t d = 0; d < levels.dims; ++d) {
        const float v = bounded_cpu[r * levels.dims + d];
        near_tie |= std::abs(v - std::floor(v) - 0.5f) < 1e-4f;
      }
      if (!near_tie) CHECK(tokens_gpu[r] == tokens_cpu[r]);
    }
  }
}

TEST_CASE("EmbedTokens: codes exactly, embeddings, dropped tokens") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const FsqLevels levels = TestLevels();
    const size_t rows = 37, width = 24, dims = levels.dims;
    std::vector<int32_t> indices(rows);
    std::mt19937 random(14);
    for (int32_t& token : indices) token = static_cast<int32_t>(random() % (15 * 8 * 5 * 4));
    indices[3] = indices[20] = kDroppedToken;
    PairedRun run(backend);
    const auto tokens = run.Input(indices);
    const auto code_w = run.Input(RandomValues(width * dims, 15));
    const auto code_b = run.Input(RandomValues(width, 16));
    const auto mask = run.Input(RandomValues(width, 17));
    const auto embedded = run.Output<float>(rows * width);
    const auto codes = run.Output<float>(rows * dims, 9.0f);
    std::vector<float> offset_values(rows * dims);
    for (float& offset : offset_values) offset = static_cast<float>(random() % 4) * 0.25f - 0.375f;
    const auto offsets = run.Input(offset_values);
    for (const bool refined : {false, true}) {
      CAPTURE(refined);
      run.cpu().EmbedTokens(tokens.first, refined ? offsets.first : nullptr, rows, levels,
                            code_w.first, code_b.first, mask.first, width, embedded.first,
                            codes.first);
      run.gpu().EmbedTokens(tokens.second, refined ? offsets.second : nullptr, rows, levels,
                            code_w.second, code_b.second, mask.second, width, embedded.second,
                            codes.second);
      auto [codes_cpu, codes_gpu] = run.Results(codes, rows * dims);
      CHECK(codes_gpu == codes_cpu);
      auto [embedded_cpu, embedded_gpu] = run.Results(embedded, rows * width);
      CHECK(Nmse(embedded_gpu, embedded_cpu) <= kOperationNmse);
    }
  }
}

TEST_CASE("AssembleTiles: unpatchify plus bilinear upsampling") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const TileGeometry geometry :
         {TileGeometry{32, 8, 8}, TileGeometry{16, 4, 4}, TileGeometry{24, 4, 6}}) {
      const size_t count = 3, tile_values = size_t{geometry.tile} * geometry.tile * 3;
      const size_t pooled_values = size_t{geometry.pool} * geometry.pool * 3;
      PairedRun run(backend);
      const auto detail = run.Input(RandomValues(count * tile_values, 18, 0.2f));
      const auto coarse = run.Input(RandomValues(count * pooled_values, 19, 0.5f));
      const auto pixels = run.Output<float>(count * tile_values);
      run.cpu().AssembleTiles(detail.first, coarse.first, count, geometry, pixels.first);
      run.gpu().AssembleTiles(detail.second, coarse.second, count, geometry, pixels.second);
      auto [expected, actual] = run.Results(pixels, count * tile_values);
      CHECK(Nmse(actual, expected) <= kOperationNmse);
    }
  }
}

TEST_CASE("Unpatchify matches exactly, and inverts Patchify") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    // (count, side, patch, channels): the conv head's 64 × 64 maps of 32 channels from 8 × 8
    // patches; odd channel counts; one patch per image; 1 × 1 patches.
    for (const auto& shape :
         {std::array<uint32_t, 4>{2, 64, 8, 32}, {3, 12, 4, 5}, {2, 6, 6, 3}, {1, 5, 1, 7}}) {
      const uint32_t count = shape[0], side = shape[1], patch = shape[2], channels = shape[3];
      CAPTURE(side);
      CAPTURE(patch);
      CAPTURE(channels);
      const size_t values = size_t{count} * side * side * channels;
      PairedRun run(backend);
      const auto patches = run.Input(RandomValues(values, 30));
      const auto images = run.Output<float>(values);
      run.cpu().Unpatchify(patches.first, count, side, patch, channels, images.first);
      run.gpu().Unpatchify(patches.second, count, side, patch, channels, images.second);
      auto [expected, actual] = run.Results(images, values);
      CHECK(actual == expected);
    }

    // Patchify then Unpatchify (3 channels) gives the images back, exactly.
    const uint32_t count = 2, side = 12, patch = 4;
    const size_t values = size_t{count} * side * side * 3;
    const std::vector<float> original = RandomValues(values, 31);
    PairedRun run(backend);
    const auto images = run.Input(original);
    const auto patches = run.Output<float>(values);
    const auto back = run.Output<float>(values);
    run.gpu().Patchify(images.second, count, side, patch, patches.second);
    run.gpu().Unpatchify(patches.second, count, side, patch, 3, back.second);
    run.cpu().Patchify(images.first, count, side, patch, patches.first);
    run.cpu().Unpatchify(patches.first, count, side, patch, 3, back.first);
    auto [back_cpu, back_gpu] = run.Results(back, values);
    CHECK(back_gpu == original);
    CHECK(back_cpu == original);
  }
}

// Conv3x3 shapes (count, height, width, in, out): the conv head's 32 → 32 and 32 → 12 layers on
// 64 × 64 maps; an image smaller than a kernel block; one that ends inside blocks in both
// directions, with a partial chunk of input channels and a partial group of outputs.
constexpr std::array<std::array<uint32_t, 5>, 5> kConvShapes = {{{2, 64, 64, 32, 32},
                                                                 {2, 64, 64, 32, 12},
                                                                 {1, 3, 5, 3, 4},
                                                                 {2, 19, 33, 9, 17},
                                                                 {1, 1, 1, 2, 3}}};

TEST_CASE("Conv3x3: store, GELU and accumulate epilogues, ragged and model sizes") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const auto& shape : kConvShapes) {
      const uint32_t count = shape[0], height = shape[1], width = shape[2], in = shape[3],
                     out = shape[4];
      for (Epilogue epilogue : {Epilogue::kStore, Epilogue::kGelu, Epilogue::kAccumulate}) {
        CAPTURE(height);
        CAPTURE(width);
        CAPTURE(in);
        CAPTURE(out);
        CAPTURE(static_cast<int>(epilogue));
        const size_t pixels = size_t{count} * height * width;
        PairedRun run(backend);
        const auto x = run.Input(RandomValues(pixels * in, 32));
        const auto w = run.Input(RandomValues(size_t{out} * 9 * in, 33, 0.1f));
        const auto b = run.Input(RandomValues(out, 34));
        const auto y = run.Input(RandomValues(pixels * out, 35));
        run.cpu().Conv3x3(x.first, count, height, width, in, w.first, b.first, out, y.first,
                          epilogue);
        run.gpu().Conv3x3(x.second, count, height, width, in, w.second, b.second, out, y.second,
                          epilogue);
        auto [expected, actual] = run.Results(y, pixels * out);
        CHECK(Nmse(actual, expected) <= kOperationNmse);
      }
    }
  }
}

// Conv3x3 on `backend` of a 2 × 3 image with 2 channels in and 3 out, weights 1, 2, 3, … in
// their memory order and bias 0, one input value set to 1 at a time: each output is then one
// weight, or 0 where the tap falls outside the image, which this checks against the index map
// written out here (the CPU and the GPU backends could agree on a wrong one).
void CheckConv3x3Taps(Backend& backend) {
  const uint32_t height = 2, width = 3, in = 2, out = 3;
  const size_t pixels = size_t{height} * width;
  std::vector<DeviceBuffer> buffers;
  auto upload = [&](const std::vector<float>& values) {
    StatusOr<DeviceBuffer> buffer = backend.Allocate(values.size() * sizeof(float));
    REQUIRE(buffer.ok());
    REQUIRE(backend.CopyToDevice(buffer->as<void>(), values.data(), values.size() * sizeof(float))
                .ok());
    buffers.push_back(std::move(buffer).value());
    return buffers.back().as<float>();
  };
  std::vector<float> weights(size_t{out} * 9 * in);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i + 1);
  const float* w = upload(weights);
  const float* b = upload(std::vector<float>(out, 0.0f));
  float* x = upload(std::vector<float>(pixels * in));
  float* y = upload(std::vector<float>(pixels * out));
  for (uint32_t py = 0; py < height; ++py) {
    for (uint32_t px = 0; px < width; ++px) {
      for (uint32_t pc = 0; pc < in; ++pc) {
        CAPTURE(py);
        CAPTURE(px);
        CAPTURE(pc);
        std::vector<float> image(pixels * in, 0.0f);
        image[(py * width + px) * in + pc] = 1.0f;
        std::vector<float> expected(pixels * out, 0.0f);
        for (uint32_t yy = 0; yy < height; ++yy) {
          for (uint32_t xx = 0; xx < width; ++xx) {
            // Output (yy, xx) reads input (yy + ky − 1, xx + kx − 1) with weight [o, ky, kx, c].
            const int ky = static_cast<int>(py) - static_cast<int>(yy) + 1;
            const int kx = static_cast<int>(px) - static_cast<int>(xx) + 1;
            if (ky < 0 || ky > 2 || kx < 0 || kx > 2) continue;
            const auto tap = static_cast<uint32_t>(ky * 3 + kx);
            for (uint32_t o = 0; o < out; ++o) {
              expected[(yy * width + xx) * out + o] = weights[(o * 9 + tap) * in + pc];
            }
          }
        }
        const std::vector<float> stale(pixels * out, 7.0f);
        REQUIRE(backend.CopyToDevice(x, image.data(), image.size() * sizeof(float)).ok());
        REQUIRE(backend.CopyToDevice(y, stale.data(), stale.size() * sizeof(float)).ok());
        backend.Conv3x3(x, 1, height, width, in, w, b, out, y, Epilogue::kStore);
        std::vector<float> actual(expected.size());
        const Status status = backend.CopyToHost(actual.data(), y, actual.size() * sizeof(float));
        REQUIRE_MESSAGE(status.ok(), status.message());
        CHECK(actual == expected);
      }
    }
  }
}

TEST_CASE("Conv3x3: zero padding at the borders, the weight layout [out, 3, 3, in]") {
  SUBCASE("cpu") { CheckConv3x3Taps(*CreateCpuBackend(2)); }
  FOR_EACH_BACKEND_UNDER_TEST(backend) { CheckConv3x3Taps(*CreateBackendUnderTest(backend)); }
}

TEST_CASE("PixelShuffleAdd adds exactly, in F.pixel_shuffle's channel order") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    // (count, height, width, channels, factor): the conv head's 12 = 3 · 2² channels to RGB at
    // twice the size; a factor of 3 on a non-square map; factor 1 (a plain add).
    for (const auto& shape :
         {std::array<uint32_t, 5>{2, 32, 32, 3, 2}, {3, 5, 7, 4, 3}, {1, 4, 3, 2, 1}}) {
      const uint32_t count = shape[0], height = shape[1], width = shape[2], channels = shape[3],
                     factor = shape[4];
      CAPTURE(height);
      CAPTURE(width);
      CAPTURE(channels);
      CAPTURE(factor);
      const size_t values = size_t{count} * height * width * channels * factor * factor;
      PairedRun run(backend);
      const std::vector<float> x_values = RandomValues(values, 36);
      const std::vector<float> y_values = RandomValues(values, 37);
      const auto x = run.Input(x_values);
      const auto y = run.Input(y_values);
      run.cpu().PixelShuffleAdd(x.first, count, height, width, channels, factor, y.first);
      run.gpu().PixelShuffleAdd(x.second, count, height, width, channels, factor, y.second);
      auto [expected, actual] = run.Results(y, values);
      CHECK(actual == expected);

      // The index map itself, y[n, f·i + a, f·j + b, c] += x[n, i, j, c·f² + a·f + b], written
      // out here: the two backends could agree on a wrong order.
      bool all_match = true;
      const size_t out_width = size_t{width} * factor;
      for (size_t n = 0; n < count; ++n) {
        for (size_t i = 0; i < height; ++i) {
          for (size_t j = 0; j < width; ++j) {
            for (size_t a = 0; a < factor; ++a) {
              for (size_t bb = 0; bb < factor; ++bb) {
                for (size_t c = 0; c < channels; ++c) {
                  const size_t target =
                      ((n * height * factor + factor * i + a) * out_width + factor * j + bb) *
                          channels +
                      c;
                  const size_t source =
                      ((n * height + i) * width + j) * channels * factor * factor +
                      (c * factor + a) * factor + bb;
                  all_match &= actual[target] == y_values[target] + x_values[source];
                }
              }
            }
          }
        }
      }
      CHECK(all_match);
    }
  }
}

TEST_CASE("Gelu: as the CPU, in place, and as Linear's GELU epilogue") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const size_t count = 5000;
    PairedRun run(backend);
    const auto x = run.Input(RandomValues(count, 38, 4.0f));
    const auto y = run.Output<float>(count);
    run.cpu().Gelu(x.first, count, y.first);
    run.gpu().Gelu(x.second, count, y.second);
    auto [expected, actual] = run.Results(y, count);
    CHECK(Nmse(actual, expected) <= kOperationNmse);

    // In place (y aliasing x) gives the same values.
    const auto z = run.Input(RandomValues(count, 38, 4.0f));
    run.gpu().Gelu(z.second, count, z.second);
    CHECK(run.Results(z, count).second == actual);

    // Linear with kStore then Gelu equals Linear with kGelu on the same backend.
    const size_t rows = 37, in = 19, out = 23;
    const auto a = run.Input(RandomValues(rows * in, 39));
    const auto w = run.Input(RandomValues(out * in, 40, 0.3f));
    const auto b = run.Input(RandomValues(out, 41));
    const auto stored = run.Output<float>(rows * out);
    const auto fused = run.Output<float>(rows * out);
    run.gpu().Linear(a.second, rows, in, w.second, b.second, out, stored.second, Epilogue::kStore);
    run.gpu().Gelu(stored.second, rows * out, stored.second);
    run.gpu().Linear(a.second, rows, in, w.second, b.second, out, fused.second, Epilogue::kGelu);
    CHECK(run.Results(stored, rows * out).second == run.Results(fused, rows * out).second);
  }
}

// Decodes `count` tiles with random tokens and random kept counts (0 … K) on both backends.
void CheckTileDecode(const Model& model, const std::string& backend, size_t count, size_t batch) {
  const ModelConfig& config = model.config();
  std::mt19937 random(20);
  std::vector<uint32_t> tokens(count * config.tokens), keep(count);
  for (uint32_t& token : tokens) token = static_cast<uint32_t>(random() % config.codebook_size());
  for (uint32_t& k : keep) k = static_cast<uint32_t>(random() % (config.tokens + 1));
  keep[0] = config.tokens;
  const size_t values = count * config.tile * config.tile * 3;
  std::vector<float> expected(values), actual(values);

  std::unique_ptr<Backend> cpu = CreateCpuBackend(2);
  std::unique_ptr<Backend> gpu = CreateBackendUnderTest(backend);
  StatusOr<std::unique_ptr<Tokenizer>> reference = Tokenizer::Create(model, *cpu, {batch});
  StatusOr<std::unique_ptr<Tokenizer>> tested = Tokenizer::Create(model, *gpu, {batch});
  REQUIRE(reference.ok());
  REQUIRE_MESSAGE(tested.ok(), tested.status().message());
  REQUIRE((*reference)->Decode(tokens, keep, count, expected).ok());
  const Status status = (*tested)->Decode(tokens, keep, count, actual);
  REQUIRE_MESSAGE(status.ok(), status.message());
  const double nmse = Nmse(actual, expected), max_error = MaxError(actual, expected);
  MESSAGE(backend << ": " << count << " tiles of " << config.tile << "x" << config.tile << ": NMSE "
                  << nmse << ", max |error| " << max_error);
  CHECK(nmse <= kDecodeNmse);
  CHECK(max_error <= kDecodeMaxError);
}

// `refinement`: a plan for the model's metadata (FORMAT.md, REFN), none when empty.
Model TinyModel(const std::string& refinement = "") {
  StatusOr<Model> model = LoadModel(testing::MakeModelFile(
      testing::TinyConfig(), 21, "tiny", testing::Architecture::kRefined, refinement));
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  return std::move(model).value();
}

TEST_CASE("whole tiles: decode and encode with a tiny random model") {
  const Model model = TinyModel();
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    CheckTileDecode(model, backend, 5, 2);  // batches of 2, 2 and 1 tiles

    const ModelConfig& config = model.config();
    const size_t count = 3;
    std::vector<uint8_t> tiles(count * config.tile * config.tile * 3);
    std::mt19937 random(22);
    for (uint8_t& v : tiles) v = static_cast<uint8_t>(random());
    std::unique_ptr<Backend> cpu = CreateCpuBackend(2);
    std::unique_ptr<Backend> gpu = CreateBackendUnderTest(backend);
    auto reference = Tokenizer::Create(model, *cpu);
    auto tested = Tokenizer::Create(model, *gpu);
    REQUIRE((reference.ok() && tested.ok()));
    const size_t rows = count * config.tokens;
    std::vector<uint32_t> expected(rows), actual(rows);
    std::vector<float> bounded(rows * config.code_dim());
    REQUIRE((*reference)->Encode(tiles, count, expected, bounded).ok());
    const Status status = (*tested)->Encode(tiles, count, actual);
    REQUIRE_MESSAGE(status.ok(), status.message());
    for (size_t r = 0; r < rows; ++r) {
      bool near_tie = false;
      for (size_t d = 0; d < config.code_dim(); ++d) {
        const float v = bounded[r * config.code_dim() + d];
        near_tie |= std::abs(v - std::floor(v) - 0.5f) < 1e-4f;
      }
      if (!near_tie) CHECK(actual[r] == expected[r]);
    }
  }
}

TEST_CASE("whole tiles: decode with a tiny random conv-head model") {
  StatusOr<Model> model = LoadModel(testing::MakeModelFile(testing::TinyConvHeadConfig(), 6));
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  REQUIRE(model->layout().conv_head.has_value());
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    CheckTileDecode(*model, backend, 5, 2);  // batches of 2, 2 and 1 tiles
  }
}

// ---- the decoder's backward pass (kernels/backend.h, "gradients") ----

TEST_CASE("backward: the GPU backends support it") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    CHECK(CreateBackendUnderTest(backend)->supports_backward());
  }
}

TEST_CASE("backward: LinearBackwardInput, stored and accumulated, ragged and model sizes") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    // (rows, out, in): nothing a multiple of the tile sizes; the decoder's qkv and fc2.
    for (const auto& shape : {std::array<size_t, 3>{7, 5, 13}, {200, 576, 192}, {130, 192, 768}}) {
      const size_t rows = shape[0], out = shape[1], in = shape[2];
      for (const bool accumulate : {false, true}) {
        CAPTURE(rows);
        CAPTURE(out);
        CAPTURE(in);
        CAPTURE(accumulate);
        PairedRun run(backend);
        const auto dy = run.Input(RandomValues(rows * out, 50));
        const auto w = run.Input(RandomValues(out * in, 51, 0.1f));
        const auto dx = run.Input(RandomValues(rows * in, 52));
        run.cpu().LinearBackwardInput(dy.first, rows, out, w.first, in, dx.first, accumulate);
        run.gpu().LinearBackwardInput(dy.second, rows, out, w.second, in, dx.second, accumulate);
        auto [expected, actual] = run.Results(dx, rows * in);
        CHECK(Nmse(actual, expected) <= kOperationNmse);
      }
    }
  }
}

TEST_CASE("backward: GeluBackward, also in place") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const size_t count = 5000;
    PairedRun run(backend);
    const std::vector<float> grads = RandomValues(count, 54);
    const auto x = run.Input(RandomValues(count, 53, 4.0f));
    const auto dy = run.Input(grads);
    const auto dx = run.Output<float>(count);
    run.cpu().GeluBackward(x.first, dy.first, count, dx.first);
    run.gpu().GeluBackward(x.second, dy.second, count, dx.second);
    auto [expected, actual] = run.Results(dx, count);
    CHECK(Nmse(actual, expected) <= kOperationNmse);
    // dx aliasing dy gives the same values.
    const auto in_place = run.Input(grads);
    run.gpu().GeluBackward(x.second, in_place.second, count, in_place.second);
    CHECK(run.Results(in_place, count).second == actual);
  }
}

TEST_CASE("backward: LayerNormBackward, stored and accumulated") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const auto& shape : {std::array<size_t, 2>{13, 192}, {9, 40}, {1, 3}}) {
      const size_t rows = shape[0], width = shape[1];  // CAPTURE cannot take a binding
      for (const bool accumulate : {false, true}) {
        CAPTURE(width);
        CAPTURE(accumulate);
        PairedRun run(backend);
        std::vector<float> values = RandomValues(rows * width, 55, 3.0f);
        for (float& v : values) v += 1.5f;  // a mean far from 0
        const auto x = run.Input(values);
        const auto dy = run.Input(RandomValues(rows * width, 56));
        const auto gamma = run.Input(RandomValues(width, 57));
        const auto dx = run.Input(RandomValues(rows * width, 58));
        run.cpu().LayerNormBackward(x.first, dy.first, rows, width, gamma.first, 1e-5f, dx.first,
                                    accumulate);
        run.gpu().LayerNormBackward(x.second, dy.second, rows, width, gamma.second, 1e-5f,
                                    dx.second, accumulate);
        auto [expected, actual] = run.Results(dx, rows * width);
        CHECK(Nmse(actual, expected) <= kOperationNmse);
      }
    }
  }
}

TEST_CASE("backward: AttentionBackward, model sizes, ragged lengths and small heads") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const auto& shape : kAttentionShapes) {  // as the forward test's
      const size_t sequences = shape[0], length = shape[1], heads = shape[2], head_dim = shape[3];
      CAPTURE(length);
      CAPTURE(head_dim);
      PairedRun run(backend);
      const size_t rows = sequences * length, width = heads * head_dim;
      const auto qkv = run.Input(RandomValues(rows * 3 * width, 59, 2.0f));
      const auto dout = run.Input(RandomValues(rows * width, 60));
      const auto dqkv = run.Output<float>(rows * 3 * width, NAN);  // every value is stored
      run.cpu().AttentionBackward(qkv.first, dout.first, sequences, length, heads, head_dim,
                                  dqkv.first);
      run.gpu().AttentionBackward(qkv.second, dout.second, sequences, length, heads, head_dim,
                                  dqkv.second);
      auto [expected, actual] = run.Results(dqkv, rows * 3 * width);
      const double nmse = Nmse(actual, expected);
      MESSAGE(backend << ": AttentionBackward, length " << length << ", head_dim " << head_dim
                      << ": NMSE " << nmse);
      CHECK(nmse <= kOperationNmse);
    }

    // Heads wider than the kernels' shared memory: an error, as for the forward pass.
    std::unique_ptr<Backend> gpu = CreateBackendUnderTest(backend);
    StatusOr<DeviceBuffer> qkv = gpu->Allocate(3 * 128 * sizeof(float));
    StatusOr<DeviceBuffer> grads = gpu->Allocate(3 * 128 * sizeof(float));
    REQUIRE((qkv.ok() && grads.ok()));
    gpu->AttentionBackward(qkv->as<float>(), grads->as<float>(), 1, 1, 1, 128, grads->as<float>());
    const Status status = gpu->Synchronize();
    CHECK(status.code() == StatusCode::kUnsupported);
  }
}

TEST_CASE("backward: SliceSequencesBackward, PixelShuffleAddBackward move values exactly") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const size_t sequences = 3, length = 7, row_width = 5;
    for (const auto& slice : {std::array<size_t, 2>{0, 4}, {4, 3}, {2, 3}}) {
      const size_t first = slice[0], count = slice[1];  // CAPTURE cannot take a binding
      CAPTURE(first);
      PairedRun run(backend);
      const auto dout = run.Input(RandomValues(sequences * count * row_width, 61));
      const auto din = run.Output<float>(sequences * length * row_width, NAN);
      run.cpu().SliceSequencesBackward(dout.first, sequences, length, first, count, row_width,
                                       din.first);
      run.gpu().SliceSequencesBackward(dout.second, sequences, length, first, count, row_width,
                                       din.second);
      auto [expected, actual] = run.Results(din, sequences * length * row_width);
      CHECK(actual == expected);
    }

    for (const auto& shape :
         {std::array<uint32_t, 5>{2, 32, 32, 3, 2}, {3, 5, 7, 4, 3}, {1, 4, 3, 2, 1}}) {
      const uint32_t count = shape[0], height = shape[1], width = shape[2], channels = shape[3],
                     factor = shape[4];
      CAPTURE(factor);
      const size_t values = size_t{count} * height * width * channels * factor * factor;
      PairedRun run(backend);
      const auto dy = run.Input(RandomValues(values, 62));
      const auto dx = run.Output<float>(values, NAN);
      run.cpu().PixelShuffleAddBackward(dy.first, count, height, width, channels, factor, dx.first);
      run.gpu().PixelShuffleAddBackward(dy.second, count, height, width, channels, factor,
                                        dx.second);
      auto [expected, actual] = run.Results(dx, values);
      CHECK(actual == expected);
    }
  }
}

TEST_CASE("backward: PatchifyBackward and UnpatchifyBackward move values exactly") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const bool accumulate : {false, true}) {
      CAPTURE(accumulate);
      const uint32_t count = 2, side = 12, patch = 4;
      const size_t values = size_t{count} * side * side * 3;
      PairedRun run(backend);
      const auto dpatches = run.Input(RandomValues(values, 63));
      const auto dimages = run.Input(RandomValues(values, 64));
      run.cpu().PatchifyBackward(dpatches.first, count, side, patch, dimages.first, accumulate);
      run.gpu().PatchifyBackward(dpatches.second, count, side, patch, dimages.second, accumulate);
      auto [expected, actual] = run.Results(dimages, values);
      CHECK(actual == expected);
    }
    // As the Unpatchify test's shapes.
    for (const auto& shape :
         {std::array<uint32_t, 4>{2, 64, 8, 32}, {3, 12, 4, 5}, {2, 6, 6, 3}, {1, 5, 1, 7}}) {
      const uint32_t count = shape[0], side = shape[1], patch = shape[2], channels = shape[3];
      CAPTURE(side);
      CAPTURE(channels);
      const size_t values = size_t{count} * side * side * channels;
      PairedRun run(backend);
      const auto dimages = run.Input(RandomValues(values, 65));
      const auto dpatches = run.Output<float>(values, NAN);
      run.cpu().UnpatchifyBackward(dimages.first, count, side, patch, channels, dpatches.first);
      run.gpu().UnpatchifyBackward(dimages.second, count, side, patch, channels, dpatches.second);
      auto [expected, actual] = run.Results(dpatches, values);
      CHECK(actual == expected);
    }
  }
}

TEST_CASE("backward: AssembleTilesBackward, and it is AssembleTiles' adjoint") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    // As the forward test, plus a pool as fine as the tile and one of 2 × 2 cells.
    for (const TileGeometry geometry :
         {TileGeometry{32, 8, 8}, TileGeometry{16, 4, 4}, TileGeometry{24, 4, 6},
          TileGeometry{8, 4, 8}, TileGeometry{32, 8, 2}}) {
      CAPTURE(geometry.tile);
      CAPTURE(geometry.pool);
      const size_t count = 3, tile_values = size_t{geometry.tile} * geometry.tile * 3;
      const size_t pooled_values = size_t{geometry.pool} * geometry.pool * 3;
      PairedRun run(backend);
      const std::vector<float> grads = RandomValues(count * tile_values, 66);
      const auto dpixels = run.Input(grads);
      const auto ddetail = run.Output<float>(count * tile_values, NAN);
      const auto dcoarse = run.Output<float>(count * pooled_values, NAN);
      run.cpu().AssembleTilesBackward(dpixels.first, count, geometry, ddetail.first, dcoarse.first);
      run.gpu().AssembleTilesBackward(dpixels.second, count, geometry, ddetail.second,
                                      dcoarse.second);
      auto [detail_cpu, detail_gpu] = run.Results(ddetail, count * tile_values);
      CHECK(detail_gpu == detail_cpu);
      auto [coarse_cpu, coarse_gpu] = run.Results(dcoarse, count * pooled_values);
      CHECK(Nmse(coarse_gpu, coarse_cpu) <= kOperationNmse);

      // <AssembleTiles(detail, coarse) − 0.5, dpixels> = <detail, ddetail> + <coarse, dcoarse>
      // on the backend under test: the index map itself, not only the agreement of two.
      const std::vector<float> detail_values = RandomValues(count * tile_values, 67);
      const std::vector<float> coarse_values = RandomValues(count * pooled_values, 68);
      const auto detail = run.Input(detail_values);
      const auto coarse = run.Input(coarse_values);
      const auto pixels = run.Output<float>(count * tile_values);
      run.gpu().AssembleTiles(detail.second, coarse.second, count, geometry, pixels.second);
      const std::vector<float> assembled = run.Results(pixels, count * tile_values).second;
      double forward = 0, adjoint = 0, scale = 0;
      for (size_t i = 0; i < assembled.size(); ++i) {
        forward += (double{assembled[i]} - 0.5) * grads[i];
        adjoint += double{detail_values[i]} * detail_gpu[i];
        scale += std::abs((double{assembled[i]} - 0.5) * grads[i]);
      }
      for (size_t i = 0; i < coarse_values.size(); ++i)
        adjoint += double{coarse_values[i]} * coarse_gpu[i];
      CHECK(std::abs(forward - adjoint) <= 1e-5 * scale);
    }
  }
}

TEST_CASE("backward: Conv3x3BackwardInput, and it is Conv3x3's adjoint") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    for (const auto& shape : kConvShapes) {  // as the forward test's
      const uint32_t count = shape[0], height = shape[1], width = shape[2], in = shape[3],
                     out = shape[4];
      for (const bool accumulate : {false, true}) {
        CAPTURE(height);
        CAPTURE(width);
        CAPTURE(in);
        CAPTURE(out);
        CAPTURE(accumulate);
        const size_t pixels = size_t{count} * height * width;
        PairedRun run(backend);
        const std::vector<float> grads = RandomValues(pixels * out, 69);
        const std::vector<float> weights = RandomValues(size_t{out} * 9 * in, 70, 0.1f);
        const auto dy = run.Input(grads);
        const auto w = run.Input(weights);
        const auto dx = run.Input(RandomValues(pixels * in, 71));
        run.cpu().Conv3x3BackwardInput(dy.first, count, height, width, out, w.first, in, dx.first,
                                       accumulate);
        run.gpu().Conv3x3BackwardInput(dy.second, count, height, width, out, w.second, in,
                                       dx.second, accumulate);
        auto [expected, actual] = run.Results(dx, pixels * in);
        CHECK(Nmse(actual, expected) <= kOperationNmse);
        if (accumulate) continue;

        // <Conv3x3(x) with bias 0, dy> = <x, dx> on the backend under test.
        const std::vector<float> x_values = RandomValues(pixels * in, 72);
        const auto x = run.Input(x_values);
        const auto zero = run.Output<float>(out);
        const auto y = run.Output<float>(pixels * out);
        run.gpu().Conv3x3(x.second, count, height, width, in, w.second, zero.second, out, y.second,
                          Epilogue::kStore);
        const std::vector<float> convolved = run.Results(y, pixels * out).second;
        double forward = 0, adjoint = 0, scale = 0;
        for (size_t i = 0; i < convolved.size(); ++i) {
          forward += double{convolved[i]} * grads[i];
          scale += std::abs(double{convolved[i]} * grads[i]);
        }
        for (size_t i = 0; i < x_values.size(); ++i) adjoint += double{x_values[i]} * actual[i];
        CHECK(std::abs(forward - adjoint) <= 1e-5 * scale);
      }
    }
  }
}

TEST_CASE("backward: EmbedValues and EmbedValuesBackward, dropped rows") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const size_t count = 4, tokens = 9, code_dim = 5, width = 24, rows = count * tokens;
    const std::vector<uint32_t> keep_values{9, 4, 0, 1};
    PairedRun run(backend);
    const auto keep = run.Input(keep_values);
    const auto values = run.Input(RandomValues(rows * code_dim, 73));
    const auto code_w = run.Input(RandomValues(width * code_dim, 74));
    const auto code_b = run.Input(RandomValues(width, 75));
    const auto mask = run.Input(RandomValues(width, 76));
    const auto embedded = run.Output<float>(rows * width, NAN);
    const auto codes = run.Output<float>(rows * code_dim, NAN);
    run.cpu().EmbedValues(values.first, keep.first, count, tokens, code_dim, code_w.first,
                          code_b.first, mask.first, width, embedded.first, codes.first);
    run.gpu().EmbedValues(values.second, keep.second, count, tokens, code_dim, code_w.second,
                          code_b.second, mask.second, width, embedded.second, codes.second);
    auto [codes_cpu, codes_gpu] = run.Results(codes, rows * code_dim);
    CHECK(codes_gpu == codes_cpu);
    auto [embedded_cpu, embedded_gpu] = run.Results(embedded, rows * width);
    CHECK(Nmse(embedded_gpu, embedded_cpu) <= kOperationNmse);

    const auto dembedded = run.Input(RandomValues(rows * width, 77));
    for (const bool accumulate : {false, true}) {
      CAPTURE(accumulate);
      const auto dvalues = run.Input(RandomValues(rows * code_dim, 78));
      run.cpu().EmbedValuesBackward(dembedded.first, keep.first, count, tokens, code_dim,
                                    code_w.first, width, dvalues.first, accumulate);
      run.gpu().EmbedValuesBackward(dembedded.second, keep.second, count, tokens, code_dim,
                                    code_w.second, width, dvalues.second, accumulate);
      auto [expected, actual] = run.Results(dvalues, rows * code_dim);
      CHECK(Nmse(actual, expected) <= kOperationNmse);
      bool dropped_zero = true;  // whatever was there before, accumulated or not
      for (size_t r = 0; r < rows; ++r) {
        if (r % tokens < keep_values[r / tokens]) continue;
        for (size_t d = 0; d < code_dim; ++d) dropped_zero &= actual[r * code_dim + d] == 0.0f;
      }
      CHECK(dropped_zero);
    }
  }
}

// DecodeValues then DecodeValuesBackward (the whole decoder's gradient, as the encode-time
// token search uses it) for `count` tiles on both backends: the pixels as whole-tile decodes,
// the gradients to within NMSE kGradientNmse and max |gpu − cpu| ≤ kGradientMaxError × max
// |cpu gradient|; dropped tokens' gradients exactly 0.
void CheckDecodeValuesBackward(const Model& model, const std::string& backend,
                               const std::vector<uint32_t>& keep) {
  const ModelConfig& c = model.config();
  const size_t count = keep.size(), tile_values = size_t{c.tile} * c.tile * 3;
  const size_t per_tile = size_t{c.tokens} * c.code_dim();
  const std::vector<float> values = RandomValues(count * per_tile, 80, 0.9f);
  const std::vector<float> grad_pixels = RandomValues(count * tile_values, 81);
  std::unique_ptr<Backend> cpu = CreateCpuBackend(2);
  std::unique_ptr<Backend> gpu = CreateBackendUnderTest(backend);
  StatusOr<std::unique_ptr<Tokenizer>> reference = Tokenizer::Create(model, *cpu, {count});
  StatusOr<std::unique_ptr<Tokenizer>> tested = Tokenizer::Create(model, *gpu, {count});
  REQUIRE((reference.ok() && tested.ok()));
  std::vector<float> expected_pixels(count * tile_values), actual_pixels(expected_pixels.size());
  REQUIRE((*reference)->DecodeValues(values, keep, count, expected_pixels).ok());
  Status status = (*tested)->DecodeValues(values, keep, count, actual_pixels);
  REQUIRE_MESSAGE(status.ok(), status.message());
  CHECK(Nmse(actual_pixels, expected_pixels) <= kDecodeNmse);
  CHECK(MaxError(actual_pixels, expected_pixels) <= kDecodeMaxError);

  std::vector<float> expected(values.size()), actual(values.size(), NAN);
  REQUIRE((*reference)->DecodeValuesBackward(grad_pixels, expected).ok());
  status = (*tested)->DecodeValuesBackward(grad_pixels, actual);
  REQUIRE_MESSAGE(status.ok(), status.message());
  double largest = 0;
  for (float g : expected) largest = std::max(largest, std::abs(double{g}));
  const double nmse = Nmse(actual, expected), max_error = MaxError(actual, expected);
  MESSAGE(backend << ": DecodeValuesBackward, " << count << " tiles of " << c.tile << "x" << c.tile
                  << std::string(c.conv_head ? " (conv head)" : "") << ": gradient NMSE " << nmse
                  << ", max |error| " << max_error << " of max |gradient| " << largest);
  CHECK(largest > 0);
  CHECK(nmse <= kGradientNmse);
  CHECK(max_error <= kGradientMaxError * largest);
  bool dropped_zero = true;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (i / c.code_dim() % c.tokens >= keep[i / per_tile]) dropped_zero &= actual[i] == 0.0f;
  }
  CHECK(dropped_zero);
}

TEST_CASE("backward: DecodeValues and DecodeValuesBackward through the whole decoder") {
  const Model model = TinyModel();
  StatusOr<Model> first = LoadModel(
      testing::MakeModelFile(testing::TinyConfig(), 25, "tiny", testing::Architecture::kFirst));
  StatusOr<Model> conv_head = LoadModel(testing::MakeModelFile(testing::TinyConvHeadConfig(), 26));
  REQUIRE((first.ok() && conv_head.ok()));
  REQUIRE(conv_head->layout().conv_head.has_value());
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    const std::vector<uint32_t> keep{6, 3, 0, 1};
    CheckDecodeValuesBackward(model, backend, keep);
    CheckDecodeValuesBackward(*first, backend, keep);
    CheckDecodeValuesBackward(*conv_head, backend, keep);
  }
}

// tok1d encode --effort N on a GPU backend: the token search runs on it (it has the backward
// pass now) and gives a file that decodes; the CPU codec's search, whose gradients and decodes
// agree to rounding, is reported beside it (their choices may differ where two tries tie).
TEST_CASE("codec: the encode-time token search runs on the GPU backend") {
  CodecOptions options;
  options.threads = 2;
  Image image;
  image.width = 40;
  image.height = 24;
  image.rgb.resize(size_t{image.width} * image.height * 3);
  std::mt19937 random(27);
  for (uint8_t& v : image.rgb) v = static_cast<uint8_t>(random());
  const SearchOptions search = SearchOptionsForEffort(1);
  StatusOr<std::unique_ptr<Codec>> cpu = Codec::Create(TinyModel(), options);
  REQUIRE(cpu.ok());
  const TileGrid grid = MakeTileGrid(image.width, image.height, (*cpu)->model().config().tile);
  const std::vector<uint32_t> counts(grid.count(), 4);
  StatusOr<TokenFile> expected = (*cpu)->Encode(image, counts, {}, search);
  REQUIRE(expected.ok());
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    StatusOr<std::unique_ptr<Codec>> gpu =
        Codec::Create(TinyModel(), CreateBackendUnderTest(backend), options);
    REQUIRE(gpu.ok());
    StatusOr<TokenFile> plain = (*gpu)->Encode(image, counts, {}, SearchOptions{});
    StatusOr<TokenFile> searched = (*gpu)->Encode(image, counts, {}, search);
    REQUIRE_MESSAGE(searched.ok(), searched.status().message());
    REQUIRE(plain.ok());
    CHECK((*gpu)->backend().name() == backend);
    CHECK(searched->tokens != plain->tokens);  // the search changed something
    StatusOr<Image> decoded = (*gpu)->Decode(*searched);
    REQUIRE(decoded.ok());
    CHECK(decoded->rgb.size() == image.rgb.size());
    MESSAGE(backend << ": effort 1 gives the CPU codec's tokens: "
                    << std::string(searched->tokens == expected->tokens ? "yes" : "no"));
  }
}

// Codec::DecodeMany on the GPU backend: tiles of several images share batches (3 tiles per
// batch here, so batches span images); each image equals that backend's Decode of its file
// alone, byte for byte (a tile's result does not depend on its batch mates), and the CPU
// codec's image to within one 8-bit level.
TEST_CASE("codec: DecodeMany shares batches between images") {
  CodecOptions options;
  options.threads = 2;
  options.max_batch_tiles = 3;
  // With refinement layers, so that their offsets reach the device too; the 16x16 image is
  // encoded without (a batch then mixes files with and without refinement).
  const Model model = TinyModel(R"({"bits": 2, "after": [0, 1, 4]})");
  StatusOr<std::unique_ptr<Codec>> cpu = Codec::Create(model, options);
  CodecOptions plain_options = options;
  plain_options.refine = false;
  StatusOr<std::unique_ptr<Codec>> plain = Codec::Create(model, plain_options);
  REQUIRE(plain.ok());
  REQUIRE_MESSAGE(cpu.ok(), cpu.status().message());
  std::vector<TokenFile> files;
  std::mt19937 random(23);
  for (const auto [width, height, tokens] :
       {std::array<uint32_t, 3>{20, 16, 6}, {16, 16, 2}, {40, 20, 4}, {5, 33, 6}}) {
    Image image;
    image.width = width;
    image.height = height;
    image.rgb.resize(size_t{width} * height * 3);
    for (uint8_t& v : image.rgb) v = static_cast<uint8_t>(random());
    StatusOr<TokenFile> file = (width == 16 ? *plain : *cpu)->Encode(image, tokens);
    REQUIRE(file.ok());
    files.push_back(std::move(file).value());
  }
  CHECK(files[0].refinements[0].size() == 3);
  CHECK(files[1].header.refinement.bits == 0);
  std::vector<const TokenFile*> pointers;
  for (const TokenFile& file : files) pointers.push_back(&file);
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    StatusOr<std::unique_ptr<Codec>> gpu =
        Codec::Create(model, CreateBackendUnderTest(backend), options);
    REQUIRE_MESSAGE(gpu.ok(), gpu.status().message());
    const std::vector<StatusOr<Image>> images = (*gpu)->DecodeMany(pointers);
    REQUIRE(images.size() == files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      CAPTURE(i);
      REQUIRE_MESSAGE(images[i].ok(), images[i].status().message());
      StatusOr<Image> alone = (*gpu)->Decode(files[i]);
      StatusOr<Image> reference = (*cpu)->Decode(files[i]);
      REQUIRE((alone.ok() && reference.ok()));
      CHECK(images[i]->rgb == alone->rgb);
      REQUIRE(images[i]->rgb.size() == reference->rgb.size());
      int worst = 0;
      for (size_t v = 0; v < reference->rgb.size(); ++v) {
        worst = std::max(worst, std::abs(int{images[i]->rgb[v]} - int{reference->rgb[v]}));
      }
      CHECK(worst <= 1);
    }
  }
}

// The trained model (or a dev export): $TOK1D_TEST_MODEL, else the path CMake compiled in.
TEST_CASE("whole tiles: decode with the real model") {
  const char* variable = std::getenv("TOK1D_TEST_MODEL");
  const std::string path = variable != nullptr && *variable != '\0' ? variable : TOK1D_TEST_MODEL;
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: no model file at " << path << " (set TOK1D_TEST_MODEL)");
    return;
  }
  StatusOr<Model> model = LoadModelFile(path);
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    // One tile on the emulation (it is slow); a Kodak image's worth on a device.
    const size_t count = backend == "gpu-emulator" ? 1 : 24;
    CheckTileDecode(*model, backend, count, count);
    // The gradient the token search uses: one tile with every token kept on the emulation;
    // on a device 24, keeping 1 … K tokens.
    std::vector<uint32_t> keep(count, model->config().tokens);
    for (size_t t = 1; t < count; ++t) {
      keep[t] = static_cast<uint32_t>(1 + t * 7 % model->config().tokens);
    }
    CheckDecodeValuesBackward(*model, backend, keep);
  }
}

TEST_CASE("errors: out of memory, unsupported shapes and failed launches are reported") {
  FOR_EACH_BACKEND_UNDER_TEST(backend) {
    std::unique_ptr<Backend> gpu = CreateBackendUnderTest(backend);
    StatusOr<DeviceBuffer> huge = gpu->Allocate(size_t{1} << 60);
    REQUIRE_FALSE(huge.ok());
    CHECK(huge.status().code() == StatusCode::kTooLarge);
    CHECK(huge.status().message().find("out of GPU memory") != std::string::npos);
    // The failed allocation leaves the backend usable.
    StatusOr<DeviceBuffer> small = gpu->Allocate(1024);
    REQUIRE(small.ok());
    CHECK(gpu->Synchronize().ok());

    // Heads wider than the attention kernel's shared memory: an error, not a wrong result.
    StatusOr<DeviceBuffer> qkv = gpu->Allocate(3 * 128 * sizeof(float));
    REQUIRE(qkv.ok());
    gpu->Attention(qkv->as<float>(), 1, 1, 1, 128, small->as<float>());
    const Status status = gpu->Synchronize();
    CHECK(status.code() == StatusCode::kUnsupported);
    CHECK(status.message().find("64 dimensions") != std::string::npos);
  }
}

TEST_CASE("errors: a failed kernel launch fails the decode (emulation)") {
  std::unique_ptr<Backend> gpu = CreateBackendUnderTest("gpu-emulator");
  const Model model = TinyModel();
  auto tokenizer = Tokenizer::Create(model, *gpu);
  REQUIRE(tokenizer.ok());
  const ModelConfig& config = model.config();
  std::vector<uint32_t> tokens(config.tokens, 1), keep{config.tokens};
  std::vector<float> pixels(size_t{config.tile} * config.tile * 3);
  gpu_emulator::InjectLaunchFailure();
  const Status status = (*tokenizer)->Decode(tokens, keep, 1, pixels);
  CHECK(status.code() == StatusCode::kInternal);
  CHECK(status.message().find("launching") != std::string::npos);
}

// --device auto's promise (issue: never a wrong image): a GPU failure after start-up moves the
// codec to the CPU, which redoes the failed batch; the results are the CPU codec's, byte for
// byte, and the user gets one note. Without cpu_fallback the same failure fails the call.
TEST_CASE("codec: a failed kernel launch falls back to the CPU with cpu_fallback (emulation)") {
  CodecOptions cpu_options;
  cpu_options.threads = 2;
  cpu_options.max_batch_tiles = 2;
  StatusOr<std::unique_ptr<Codec>> cpu = Codec::Create(TinyModel(), cpu_options);
  REQUIRE_MESSAGE(cpu.ok(), cpu.status().message());
  Image image;
  image.width = 40;
  image.height = 24;
  image.rgb.resize(size_t{image.width} * image.height * 3);
  std::mt19937 random(24);
  for (uint8_t& v : image.rgb) v = static_cast<uint8_t>(random());
  StatusOr<TokenFile> expected_file = (*cpu)->Encode(image, 5);
  REQUIRE(expected_file.ok());
  StatusOr<Image> expected_image = (*cpu)->Decode(*expected_file);
  REQUIRE(expected_image.ok());

  std::vector<std::string> notes;
  CodecOptions options = cpu_options;
  options.cpu_fallback = true;
  options.on_fallback = [&notes](const std::string& line) { notes.push_back(line); };

  SUBCASE("decode") {
    StatusOr<std::unique_ptr<Codec>> codec =
        Codec::Create(TinyModel(), CreateBackendUnderTest("gpu-emulator"), options);
    REQUIRE(codec.ok());
    gpu_emulator::InjectLaunchFailure();
    StatusOr<Image> decoded = (*codec)->Decode(*expected_file);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().message());
    CHECK(decoded->rgb == expected_image->rgb);
    CHECK((*codec)->backend().name() == "cpu");
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("the gpu-emulator backend failed") == 0);
    CHECK(notes[0].find("launching") != std::string::npos);
    CHECK(notes[0].find("continuing on the CPU") != std::string::npos);
    // Later work stays on the CPU, without another note.
    StatusOr<Image> again = (*codec)->Decode(*expected_file);
    REQUIRE(again.ok());
    CHECK(again->rgb == expected_image->rgb);
    CHECK(notes.size() == 1);
  }
  SUBCASE("encode") {
    StatusOr<std::unique_ptr<Codec>> codec =
        Codec::Create(TinyModel(), CreateBackendUnderTest("gpu-emulator"), options);
    REQUIRE(codec.ok());
    gpu_emulator::InjectLaunchFailure();
    StatusOr<TokenFile> file = (*codec)->Encode(image, 5);
    REQUIRE_MESSAGE(file.ok(), file.status().message());
    CHECK(file->tokens == expected_file->tokens);
    CHECK(notes.size() == 1);
  }
  SUBCASE("without cpu_fallback the failure is the result") {
    options.cpu_fallback = false;
    StatusOr<std::unique_ptr<Codec>> codec =
        Codec::Create(TinyModel(), CreateBackendUnderTest("gpu-emulator"), options);
    REQUIRE(codec.ok());
    gpu_emulator::InjectLaunchFailure();
    StatusOr<Image> decoded = (*codec)->Decode(*expected_file);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == StatusCode::kInternal);
    CHECK(notes.empty());
  }
}

}  // namespace

// --backend=NAME (see the top of the file); returns 77 when "device" finds no usable GPU.
int SelectBackends(std::string_view choice) {
  if (choice != "device") {
    g_backends_under_test = {std::string(choice)};
    return 0;
  }
  std::string reasons;
  for (std::string_view name : CompiledBackends()) {
    if (name == "cpu") continue;
    StatusOr<std::unique_ptr<Backend>> backend = CreateBackend(name);
    if (backend.ok()) {
      g_backends_under_test.emplace_back(name);
    } else {
      reasons += "; " + std::string(name) + ": " + backend.status().message();
    }
  }
  if (g_backends_under_test.empty()) {
    std::printf("skipped: no usable GPU backend (%s)\n",
                reasons.empty()
                    ? "none compiled in: configure with -DTOK1D_CUDA=ON or -DTOK1D_HIP=ON"
                    : reasons.substr(2).c_str());
    return 77;
  }
  return 0;
}

}  // namespace tok1d

int main(int argc, char** argv) {
  std::vector<char*> arguments;
  std::string_view choice;
  for (int i = 0; i < argc; ++i) {
    constexpr std::string_view kOption = "--backend=";
    if (std::string_view(argv[i]).starts_with(kOption)) {
      choice = std::string_view(argv[i]).substr(kOption.size());
    } else {
      arguments.push_back(argv[i]);
    }
  }
  if (choice.empty()) {
    std::fprintf(stderr, "usage: %s --backend=gpu-emulator|cuda|hip|device [doctest options]\n",
                 argv[0]);
    return 2;
  }
  if (const int skip = tok1d::SelectBackends(choice); skip != 0) return skip;
  std::printf("testing: %s\n",
              [] {
                std::string names;
                for (const std::string& name : tok1d::g_backends_under_test) names += name + " ";
                return names;
              }()
                  .c_str());
  doctest::Context context(static_cast<int>(arguments.size()), arguments.data());
  return context.run();
}
