// Every CPU backend operation against a naive double-precision reference written from the
// PyTorch definitions, on odd sizes (no multiple of any vector width) and on the model's sizes.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "codec/test_models.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vector_math.h"

namespace tok1d {
namespace {

using testing::RandomValues;

// Largest |a − b| / (1 + |b|): absolute near zero, relative for large values.
double MaxError(const std::vector<float>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  double worst = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    worst = std::max(worst, std::abs(actual[i] - expected[i]) / (1.0 + std::abs(expected[i])));
  }
  return worst;
}

double Gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// What an operation with `epilogue` writes, given its result before the epilogue and, for
// kAccumulate, the values y held.
std::vector<double> WithEpilogue(std::vector<double> result, const std::vector<float>& residual,
                                 Epilogue epilogue) {
  for (size_t i = 0; i < result.size(); ++i) {
    if (epilogue == Epilogue::kGelu) result[i] = Gelu(result[i]);
    if (epilogue == Epilogue::kAccumulate) result[i] += residual[i];
  }
  return result;
}

// The CPU backend with 3 threads (more than the rows of some inputs, fewer than others).
std::unique_ptr<Backend> TestBackend() { return CreateCpuBackend(3); }

TEST_CASE("vector math: exp, erf and GELU approximations against libm") {
  double exp_error = 0, erf_error = 0, gelu_error = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    exp_error = std::max(exp_error,
                         std::abs(cpu::ExpApprox(x) - std::exp(double{x})) / std::exp(double{x}));
  }
  for (float x = -6.0f; x <= 6.0f; x += 0.00091f) {
    erf_error = std::max(erf_error, std::abs(cpu::ErfApprox(x) - std::erf(double{x})));
    gelu_error = std::max(gelu_error, std::abs(cpu::GeluApprox(x) - Gelu(x)) / (1 + std::abs(x)));
  }
  CHECK(exp_error < 3e-7);  // ~2 ulp
  CHECK(erf_error < 6e-7);  // A&S 7.1.26: 1.5e-7, plus float rounding
  CHECK(gelu_error < 2e-7);
  CHECK(cpu::ExpApprox(-1000.0f) < 1e-37f);  // clamped, not garbage
  CHECK(std::isfinite(cpu::ExpApprox(1000.0f)));
}

TEST_CASE("thread pool: every index is visited exactly once") {
  for (size_t threads : {size_t{1}, size_t{2}, size_t{5}}) {
    ThreadPool pool(threads);
    for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
      std::vector<std::atomic<int>> visits(count);
      pool.ParallelFor(count, 3, [&](size_t begin, size_t end) {
        CHECK(begin < end);
        for (size_t i = begin; i < end; ++i) visits[i]++;
      });
      CHECK(std::all_of(visits.begin(), visits.end(), [](const auto& v) { return v == 1; }));
    }
  }
}

TEST_CASE("Linear: store, GELU and accumulate epilogues") {
  auto backend = TestBackend();
  for (auto [rows, in, out] : {std::array<size_t, 3>{7, 13, 5}, {200, 192, 576}}) {
    const auto x = RandomValues(rows * in, 1), w = RandomValues(out * in, 2),
               b = RandomValues(out, 3);
    const auto residual = RandomValues(rows * out, 4);
    std::vector<double> product(rows * out);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t o = 0; o < out; ++o) {
        double sum = b[o];
        for (size_t i = 0; i < in; ++i) sum += double{x[r * in + i]} * w[o * in + i];
        product[r * out + o] = sum;
      }
    }
    for (Epilogue epilogue : {Epilogue::kStore, Epilogue::kGelu, Epilogue::kAccumulate}) {
      std::vector<float> y =
          epilogue == Epilogue::kAccumulate ? residual : std::vector<float>(rows * out, NAN);
      backend->Linear(x.data(), rows, in, w.data(), b.data(), out, y.data(), epilogue);
      CHECK(MaxError(y, WithEpilogue(product, residual, epilogue)) < 1e-5);
    }
  }
}

TEST_CASE("Conv3x3: zero padding, [out, 3, 3, in] weights, epilogues, chunks of images") {
  auto backend = TestBackend();
  // (count, height, width, in, out): ragged; model-sized with 3 images (two chunks of images).
  for (auto [count, height, width, in, out] :
       {std::array<uint32_t, 5>{2, 3, 5, 3, 4}, {3, 64, 64, 32, 12}}) {
    const size_t pixels = size_t{height} * width;
    const auto x = RandomValues(count * pixels * in, 5), w = RandomValues(out * 9 * in, 6),
               b = RandomValues(out, 7);
    const auto residual = RandomValues(count * pixels * out, 8);
    std::vector<double> conv(count * pixels * out);
    for (size_t n = 0; n < count; ++n) {
      for (size_t y = 0; y < height; ++y) {
        for (size_t xx = 0; xx < width; ++xx) {
          for (size_t o = 0; o < out; ++o) {
            double sum = b[o];
            for (size_t ky = 0; ky < 3; ++ky) {
              for (size_t kx = 0; kx < 3; ++kx) {
                const long sy = long(y + ky) - 1, sx = long(xx + kx) - 1;
                if (sy < 0 || sx < 0 || sy >= long(height) || sx >= long(width)) continue;
                for (size_t i = 0; i < in; ++i) {
                  sum += double{w[(o * 9 + ky * 3 + kx) * in + i]} *
                         x[((n * height + size_t(sy)) * width + size_t(sx)) * in + i];
                }
              }
            }
            conv[((n * height + y) * width + xx) * out + o] = sum;
          }
        }
      }
    }
    for (Epilogue epilogue : {Epilogue::kStore, Epilogue::kGelu, Epilogue::kAccumulate}) {
      std::vector<float> y =
          epilogue == Epilogue::kAccumulate ? residual : std::vector<float>(conv.size(), NAN);
      backend->Conv3x3(x.data(), count, height, width, in, w.data(), b.data(), out, y.data(),
                       epilogue);
      CHECK(MaxError(y, WithEpilogue(conv, residual, epilogue)) < 1e-5);
    }
  }
}

TEST_CASE("Unpatchify and PixelShuffleAdd move values exactly") {
  auto backend = TestBackend();
  const size_t count = 2, side = 8, patch = 4, channels = 5, per_side = side / patch;
  const auto patches = RandomValues(count * side * side * channels, 9);
  std::vector<float> images(patches.size(), NAN);
  backend->Unpatchify(patches.data(), count, side, patch, channels, images.data());
  for (size_t n = 0; n < count; ++n) {
    for (size_t y = 0; y < side; ++y) {
      for (size_t x = 0; x < side; ++x) {
        for (size_t c = 0; c < channels; ++c) {
          const size_t p = n * per_side * per_side + (y / patch) * per_side + x / patch;
          const float expected = patches[p * patch * patch * channels +
                                         ((y % patch) * patch + x % patch) * channels + c];
          CHECK(images[((n * side + y) * side + x) * channels + c] == expected);
        }
      }
    }
  }
  // pixel shuffle ×2 of a 3×4 map with 3·4 channels onto a 6×8 image of 3 channels
  const size_t height = 3, width = 4, out_channels = 3, f = 2;
  const auto x = RandomValues(count * height * width * out_channels * f * f, 10);
  const auto base = RandomValues(count * height * f * width * f * out_channels, 11);
  std::vector<float> y = base;
  backend->PixelShuffleAdd(x.data(), count, height, width, out_channels, f, y.data());
  for (size_t n = 0; n < count; ++n) {
    for (size_t i = 0; i < height * f; ++i) {
      for (size_t j = 0; j < width * f; ++j) {
        for (size_t c = 0; c < out_channels; ++c) {
          const size_t at = ((n * height * f + i) * width * f + j) * out_channels + c;
          const float shuffled = x[((n * height + i / f) * width + j / f) * out_channels * f * f +
                                   c * f * f + (i % f) * f + j % f];
          CHECK(y[at] == base[at] + shuffled);
        }
      }
    }
  }
}

TEST_CASE("LayerNorm: biased variance, eps inside the square root") {
  auto backend = TestBackend();
  for (auto [rows, width] : {std::array<size_t, 2>{5, 7}, {300, 192}}) {
    auto x = RandomValues(rows * width, 5, 3.0f);
    for (size_t i = 0; i < width; ++i) x[i] = 0.25f;  // a constant row: variance 0, eps decides
    const auto gamma = RandomValues(width, 6), beta = RandomValues(width, 7);
    const float eps = 1e-5f;
    std::vector<float> y(rows * width);
    backend->LayerNorm(x.data(), rows, width, gamma.data(), beta.data(), eps, y.data());
    std::vector<double> expected(rows * width);
    for (size_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (size_t i = 0; i < width; ++i) mean += x[r * width + i];
      mean /= static_cast<double>(width);
      for (size_t i = 0; i < width; ++i)
        var += (x[r * width + i] - mean) * (x[r * width + i] - mean);
      var /= static_cast<double>(width);
      for (size_t i = 0; i < width; ++i) {
        expected[r * width + i] =
            (x[r * width + i] - mean) / std::sqrt(var + eps) * gamma[i] + beta[i];
      }
    }
    CHECK(MaxError(y, expected) < 2e-5);
  }
}

TEST_CASE("Attention: multi-head softmax attention per sequence") {
  auto backend = TestBackend();
  for (auto [sequences, length, heads, head_dim] :
       {std::array<size_t, 4>{2, 11, 3, 5}, {1, 1, 2, 3}, {2, 192, 3, 64}, {1, 37, 1, 17}}) {
    const size_t width = heads * head_dim;
    const auto qkv = RandomValues(sequences * length * 3 * width, 8, 2.0f);
    std::vector<float> out(sequences * length * width, NAN);
    backend->Attention(qkv.data(), sequences, length, heads, head_dim, out.data());
    std::vector<double> expected(out.size());
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    for (size_t s = 0; s < sequences; ++s) {
      const float* base = qkv.data() + s * length * 3 * width;
      for (size_t h = 0; h < heads; ++h) {
        for (size_t i = 0; i < length; ++i) {
          std::vector<double> p(length);
          double max_score = -INFINITY, sum = 0;
          for (size_t j = 0; j < length; ++j) {
            double dot = 0;
            for (size_t d = 0; d < head_dim; ++d) {
              dot += double{base[i * 3 * width + h * head_dim + d]} *
                     base[j * 3 * width + width + h * head_dim + d];
            }
            p[j] = dot * scale;
            max_score = std::max(max_score, p[j]);
          }
          for (double& v : p) sum += (v = std::exp(v - max_score));
          for (size_t d = 0; d < head_dim; ++d) {
            double value = 0;
            for (size_t j = 0; j < length; ++j)
              value += p[j] / sum * base[j * 3 * width + 2 * width + h * head_dim + d];
            expected[(s * length + i) * width + h * head_dim + d] = value;
          }
        }
      }
    }
    CHECK(MaxError(out, expected) < 1e-5);
  }
}

TEST_CASE("BuildSequences and SliceSequences") {
  auto backend = TestBackend();
  const size_t sequences = 3, width = 5, head_rows = 2, tail_rows = 4;
  const auto per_sequence = RandomValues(sequences * head_rows * width, 9);
  const auto positions = RandomValues(head_rows * width, 10);
  const auto shared = RandomValues(tail_rows * width, 11);
  const size_t length = head_rows + tail_rows;
  std::vector<float> out(sequences * length * width);
  backend->BuildSequences({per_sequence.data(), head_rows, head_rows * width, positions.data()},
                          {shared.data(), tail_rows, 0, nullptr}, sequences, width, out.data());
  for (size_t s = 0; s < sequences; ++s) {
    for (size_t i = 0; i < head_rows * width; ++i) {
      CHECK(out[s * length * width + i] == per_sequence[s * head_rows * width + i] + positions[i]);
    }
    for (size_t i = 0; i < tail_rows * width; ++i) {
      CHECK(out[s * length * width + head_rows * width + i] == shared[i]);
    }
  }
  std::vector<float> slice(sequences * tail_rows * width);
  backend->SliceSequences(out.data(), sequences, length, head_rows, tail_rows, width, slice.data());
  for (size_t s = 0; s < sequences; ++s) {
    for (size_t i = 0; i < tail_rows * width; ++i)
      CHECK(slice[s * tail_rows * width + i] == shared[i]);
  }
}

TEST_CASE("PatchifyTiles: (py, px, c) patches and the pooled thumbnail") {
  auto backend = TestBackend();
  const TileGeometry g{16, 4, 2};  // pool 2: 8×8 blocks
  const size_t count = 2, tile = g.tile;
  std::vector<uint8_t> tiles(count * tile * tile * 3);
  std::mt19937 random(12);
  for (uint8_t& v : tiles) v = static_cast<uint8_t>(random());
  const size_t per_side = tile / g.patch, patch_dim = g.patch * g.patch * 3;
  std::vector<float> patches(count * per_side * per_side * patch_dim),
      pooled(count * g.pool * g.pool * 3);
  backend->PatchifyTiles(tiles.data(), count, g, patches.data(), pooled.data());
  auto x = [&](size_t t, size_t y, size_t xx, size_t c) {
    return static_cast<float>(tiles[((t * tile + y) * tile + xx) * 3 + c]) / 255.0f - 0.5f;
  };
  for (size_t t = 0; t < count; ++t) {
    for (size_t y = 0; y < tile; ++y) {
      for (size_t xx = 0; xx < tile; ++xx) {
        for (size_t c = 0; c < 3; ++c) {
          const size_t patch = (y / g.patch) * per_side + xx / g.patch;
          const size_t inner = ((y % g.patch) * g.patch + xx % g.patch) * 3 + c;
          CHECK(patches[(t * per_side * per_side + patch) * patch_dim + inner] == x(t, y, xx, c));
        }
      }
    }
    const size_t factor = tile / g.pool;
    for (size_t py = 0; py < g.pool; ++py) {
      for (size_t px = 0; px < g.pool; ++px) {
        for (size_t c = 0; c < 3; ++c) {
          double sum = 0;
          for (size_t dy = 0; dy < factor; ++dy) {
            for (size_t dx = 0; dx < factor; ++dx)
              sum += x(t, py * factor + dy, px * factor + dx, c);
          }
          CHECK(pooled[(t * g.pool + py) * g.pool * 3 + px * 3 + c] ==
                doctest::Approx(sum / (factor * factor)).epsilon(1e-6));
        }
      }
    }
  }
}

TEST_CASE("Patchify: float images to (py, px, c) patches") {
  auto backend = TestBackend();
  const size_t count = 3, side = 12, patch = 4, per_side = side / patch,
               patch_dim = patch * patch * 3;
  const auto images = RandomValues(count * side * side * 3, 19);
  std::vector<float> patches(images.size(), NAN);
  backend->Patchify(images.data(), count, side, patch, patches.data());
  for (size_t i = 0; i < count; ++i) {
    for (size_t y = 0; y < side; ++y) {
      for (size_t x = 0; x < side; ++x) {
        for (size_t c = 0; c < 3; ++c) {
          const size_t index = (i * per_side + y / patch) * per_side + x / patch;
          CHECK(patches[index * patch_dim + ((y % patch) * patch + x % patch) * 3 + c] ==
                images[((i * side + y) * side + x) * 3 + c]);
        }
      }
    }
  }
}

// FSQ as models/tok1d_model.py defines it: the constants are float32 buffers there (atanh of
// a float32 is what sets the shift; in double it would differ by up to 5e-5), the rest in double.
struct ReferenceFsq {
  std::vector<uint32_t> levels;
  double Bound(double z, size_t d) const {
    const float half_l = (static_cast<float>(levels[d]) - 1.0f) * 1.001f / 2.0f;
    const float offset = levels[d] % 2 == 0 ? 0.5f : 0.0f;
    const float shift = std::atanh(offset / half_l);
    return std::tanh(z + shift) * half_l - offset;
  }
};

TEST_CASE("FsqQuantize: bounded values, rounding and mixed-radix token index") {
  auto backend = TestBackend();
  FsqLevels levels;
  levels.dims = 4;
  levels.levels = {8, 5, 15, 2};
  const ReferenceFsq reference{{8, 5, 15, 2}};
  const size_t rows = 500;
  const auto z = RandomValues(rows * levels.dims, 13, 3.0f);
  std::vector<float> bounded(z.size());
  std::vector<int32_t> tokens(rows);
  backend->FsqQuantize(z.data(), rows, levels, bounded.data(), tokens.data());
  size_t near_ties = 0;
  for (size_t r = 0; r < rows; ++r) {
    int64_t expected = 0, basis = 1;
    bool tie = false;
    for (size_t d = 0; d < levels.dims; ++d) {
      const double b = reference.Bound(z[r * levels.dims + d], d);
      CHECK(bounded[r * levels.dims + d] == doctest::Approx(b).epsilon(1e-6));
      tie |= std::abs(std::abs(b - std::floor(b)) - 0.5) < 1e-5;
      expected += (static_cast<int64_t>(std::nearbyint(b)) + levels.levels[d] / 2) * basis;
      basis *= levels.levels[d];
    }
    if (tie) {
      ++near_ties;
    } else {
      CHECK(tokens[r] == expected);
    }
  }
  CHECK(near_ties < 3);
  // Rounding is half to even, as torch.round: with L = 2, bound(z) = tanh(z + shift)·0.5005 − 0.5,
  // and z = −shift gives exactly −0.5, which rounds to 0 (digit 1), not −1.
  FsqLevels two;
  two.dims = 1;
  two.levels = {2};
  const float z_tie = -std::atanh(0.5f / (1.0f * 1.001f / 2.0f));
  float b_tie = 0;
  int32_t token = -1;
  backend->FsqQuantize(&z_tie, 1, two, &b_tie, &token);
  CHECK(b_tie == -0.5f);
  CHECK(token == 1);
}

TEST_CASE("EmbedTokens: codes, embedding and the mask token for dropped tokens") {
  auto backend = TestBackend();
  FsqLevels levels;
  levels.dims = 3;
  levels.levels = {3, 4, 5};
  const size_t width = 7, rows = 4;
  const auto w = RandomValues(width * 3, 14), b = RandomValues(width, 15),
             mask = RandomValues(width, 16);
  const std::vector<int32_t> tokens = {0, 59, kDroppedToken, 1 + 3 * 2 + 12 * 3};
  const std::vector<float> offsets = {0.25f, 0,    -0.5f, 0, 0,      0,
                                      0.5f,  0.5f, 0.5f,  0, -0.25f, 0.375f};
  for (const bool refined : {false, true}) {
    CAPTURE(refined);
    std::vector<float> embedded(rows * width), codes(rows * 3);
    backend->EmbedTokens(tokens.data(), refined ? offsets.data() : nullptr, rows, levels, w.data(),
                         b.data(), mask.data(), width, embedded.data(), codes.data());
    std::vector<std::vector<float>> expected_codes = {
        {-1, -1, -1}, {1, 0.5f, 1}, {0, 0, 0}, {0, 0, 0.5f}};
    if (refined) {  // (digit − ⌊L/2⌋ + offset)/⌊L/2⌋ for the levels 3, 4, 5; dropped tokens stay 0
      expected_codes = {{-0.75f, -1, -1.25f}, {1, 0.5f, 1}, {0, 0, 0}, {0, -0.125f, 0.6875f}};
    }
    for (size_t r = 0; r < rows; ++r) {
      for (size_t d = 0; d < 3; ++d) CHECK(codes[r * 3 + d] == expected_codes[r][d]);
      for (size_t i = 0; i < width; ++i) {
        double value = tokens[r] == kDroppedToken ? mask[i] : b[i];
        if (tokens[r] != kDroppedToken) {
          for (size_t d = 0; d < 3; ++d) value += double{w[i * 3 + d]} * expected_codes[r][d];
        }
        CHECK(embedded[r * width + i] == doctest::Approx(value).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("AssembleTiles: 0.5 + unpatchified detail + bilinear upsampling (align_corners=False)") {
  auto backend = TestBackend();
  for (TileGeometry g :
       {TileGeometry{16, 4, 4}, TileGeometry{128, 16, 32}, TileGeometry{12, 6, 12}}) {
    const size_t count = 2, tile = g.tile, per_side = tile / g.patch,
                 patch_dim = g.patch * g.patch * 3;
    const auto detail = RandomValues(count * per_side * per_side * patch_dim, 17);
    const auto coarse = RandomValues(count * g.pool * g.pool * 3, 18);
    std::vector<float> pixels(count * tile * tile * 3);
    backend->AssembleTiles(detail.data(), coarse.data(), count, g, pixels.data());
    // PyTorch: src = (dst + 0.5)·in/out − 0.5, clamped below at 0; neighbours clamped at the edge.
    auto tap = [&](size_t o, size_t* i0, size_t* i1, double* w1) {
      const double src =
          std::max((static_cast<double>(o) + 0.5) * g.pool / static_cast<double>(tile) - 0.5, 0.0);
      *i0 = static_cast<size_t>(src);
      *i1 = std::min<size_t>(*i0 + 1, g.pool - 1);
      *w1 = src - static_cast<double>(*i0);
    };
    std::vector<double> expected(pixels.size());
    for (size_t t = 0; t < count; ++t) {
      for (size_t y = 0; y < tile; ++y) {
        for (size_t x = 0; x < tile; ++x) {
          size_t y0, y1, x0, x1;
          double wy, wx;
          tap(y, &y0, &y1, &wy);
          tap(x, &x0, &x1, &wx);
          for (size_t c = 0; c < 3; ++c) {
            auto low = [&](size_t yy, size_t xx) {
              return double{coarse[((t * g.pool + yy) * g.pool + xx) * 3 + c]};
            };
            const double up = (1 - wy) * ((1 - wx) * low(y0, x0) + wx * low(y0, x1)) +
                              wy * ((1 - wx) * low(y1, x0) + wx * low(y1, x1));
            const size_t patch = (y / g.patch) * per_side + x / g.patch;
            const double d = detail[(t * per_side * per_side + patch) * patch_dim +
                                    ((y % g.patch) * g.patch + x % g.patch) * 3 + c];
            expected[((t * tile + y) * tile + x) * 3 + c] = 0.5 + d + up;
          }
        }
      }
    }
    CHECK(MaxError(pixels, expected) < 1e-6);
  }
}

}  // namespace
}  // namespace tok1d
