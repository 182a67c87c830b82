// The CPU backend's gradient operations (kernels/backend.h, "gradients") against central finite
// differences of the forward operations they differentiate, on small random inputs.
//
// For a forward operation y = f(x) and a random cotangent g, the backward operation's output
// must be ∂(Σ g·y)/∂x. The check: for every input coordinate, (L(x + h) − L(x − h)) / 2h with
// L = Σ g·f(x) summed in double over the float forward, h = 1e-2; the largest difference from
// the backward operation must be within kTolerance × the largest gradient component (the
// linear operations are within rounding, the others within the O(h²) truncation error too).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "codec/test_models.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/vector_math.h"

namespace tok1d {
namespace {

using testing::RandomValues;
using Forward = std::function<std::vector<float>(const std::vector<float>&)>;

constexpr double kStep = 1e-2;
constexpr double kTolerance = 1e-3;

std::unique_ptr<Backend> TestBackend() { return CreateCpuBackend(3); }

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += double{a[i]} * b[i];
  return sum;
}

// max |numerical − analytic| / max |analytic| over every coordinate of x; checked and printed.
double CheckAgainstDifferences(const std::string& what, const Forward& forward,
                               std::vector<float> x, const std::vector<float>& cotangent,
                               const std::vector<float>& analytic) {
  REQUIRE(analytic.size() == x.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float saved = x[i];
    x[i] = static_cast<float>(saved + kStep);
    const double plus = Dot(forward(x), cotangent);
    x[i] = static_cast<float>(saved - kStep);
    const double minus = Dot(forward(x), cotangent);
    x[i] = saved;
    const double numerical = (plus - minus) / (2 * kStep);
    worst = std::max(worst, std::abs(numerical - analytic[i]));
    largest = std::max(largest, std::abs(double{analytic[i]}));
  }
  REQUIRE(largest > 0);
  const double relative = worst / largest;
  std::printf("%s: max |finite difference - backward| = %.3g, %.3g of max |gradient| %.3g\n",
              what.c_str(), worst, relative, largest);
  CHECK_MESSAGE(relative <= kTolerance, what);
  return relative;
}

TEST_CASE("backward: the CPU backend supports it") { CHECK(TestBackend()->supports_backward()); }

TEST_CASE("LinearBackwardInput: dx = dy·W, stored or accumulated") {
  auto backend = TestBackend();
  const size_t rows = 5, in = 7, out = 6;
  const auto w = RandomValues(out * in, 1), b = RandomValues(out, 2);
  const auto x = RandomValues(rows * in, 3), g = RandomValues(rows * out, 4);
  const Forward forward = [&](const std::vector<float>& input) {
    std::vector<float> y(rows * out);
    backend->Linear(input.data(), rows, in, w.data(), b.data(), out, y.data(), Epilogue::kStore);
    return y;
  };
  std::vector<float> dx(rows * in, NAN);
  backend->LinearBackwardInput(g.data(), rows, out, w.data(), in, dx.data(), false);
  CheckAgainstDifferences("LinearBackwardInput", forward, x, g, dx);
  const auto before = RandomValues(rows * in, 5);
  std::vector<float> accumulated = before;
  backend->LinearBackwardInput(g.data(), rows, out, w.data(), in, accumulated.data(), true);
  for (size_t i = 0; i < dx.size(); ++i)
    CHECK(accumulated[i] == doctest::Approx(before[i] + dx[i]).epsilon(1e-6));
}

TEST_CASE("Gelu and GeluBackward") {
  auto backend = TestBackend();
  // Linear's kGelu epilogue equals kStore followed by Gelu, bit for bit.
  const size_t rows = 9, in = 11, out = 13;
  const auto w = RandomValues(out * in, 6), b = RandomValues(out, 7),
             x = RandomValues(rows * in, 8);
  std::vector<float> fused(rows * out), split(rows * out);
  backend->Linear(x.data(), rows, in, w.data(), b.data(), out, fused.data(), Epilogue::kGelu);
  backend->Linear(x.data(), rows, in, w.data(), b.data(), out, split.data(), Epilogue::kStore);
  backend->Gelu(split.data(), split.size(), split.data());
  CHECK(fused == split);

  const auto pre = RandomValues(200, 9, 4.0f), g = RandomValues(200, 10);
  const Forward forward = [&](const std::vector<float>& input) {
    std::vector<float> y(input.size());
    backend->Gelu(input.data(), input.size(), y.data());
    return y;
  };
  std::vector<float> dx(pre.size(), NAN);
  backend->GeluBackward(pre.data(), g.data(), pre.size(), dx.data());
  CheckAgainstDifferences("GeluBackward", forward, pre, g, dx);
  // Far from 0 the derivative is 0 or 1; in place.
  std::vector<float> far = {-12.0f, 12.0f, 0.0f}, grad = {1.0f, 1.0f, 1.0f};
  backend->GeluBackward(far.data(), grad.data(), far.size(), grad.data());
  CHECK(grad[0] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(grad[1] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(grad[2] == doctest::Approx(0.5).epsilon(1e-6));
}

TEST_CASE("LayerNormBackward") {
  auto backend = TestBackend();
  for (const std::array<size_t, 2>& shape : {std::array<size_t, 2>{4, 7}, {3, 192}}) {
    // Named copies, not structured bindings: clang 14 cannot capture those in lambdas.
    const size_t rows = shape[0], width = shape[1];
    const auto x = RandomValues(rows * width, 11, 3.0f), g = RandomValues(rows * width, 12);
    const auto gamma = RandomValues(width, 13), beta = RandomValues(width, 14);
    const float eps = 1e-5f;
    const Forward forward = [&](const std::vector<float>& input) {
      std::vector<float> y(input.size());
      backend->LayerNorm(input.data(), rows, width, gamma.data(), beta.data(), eps, y.data());
      return y;
    };
    std::vector<float> dx(x.size(), NAN);
    backend->LayerNormBackward(x.data(), g.data(), rows, width, gamma.data(), eps, dx.data(),
                               false);
    CheckAgainstDifferences("LayerNormBackward width " + std::to_string(width), forward, x, g, dx);
    std::vector<float> accumulated(x.size(), 1.0f);
    backend->LayerNormBackward(x.data(), g.data(), rows, width, gamma.data(), eps,
                               accumulated.data(), true);
    for (size_t i = 0; i < dx.size(); ++i)
      CHECK(accumulated[i] == doctest::Approx(1.0 + dx[i]).epsilon(1e-6));
  }
}

TEST_CASE("AttentionBackward: every component of q, k and v") {
  auto backend = TestBackend();
  for (const std::array<size_t, 4>& shape :
       {std::array<size_t, 4>{2, 5, 2, 3}, {1, 1, 2, 3}, {1, 37, 1, 17}, {1, 20, 3, 64}}) {
    const size_t sequences = shape[0], length = shape[1], heads = shape[2], head_dim = shape[3];
    const size_t width = heads * head_dim;
    const auto qkv = RandomValues(sequences * length * 3 * width, 15, 1.5f);
    const auto g = RandomValues(sequences * length * width, 16);
    const Forward forward = [&](const std::vector<float>& input) {
      std::vector<float> out(sequences * length * width);
      backend->Attention(input.data(), sequences, length, heads, head_dim, out.data());
      return out;
    };
    std::vector<float> dqkv(qkv.size(), NAN);
    backend->AttentionBackward(qkv.data(), g.data(), sequences, length, heads, head_dim,
                               dqkv.data());
    CheckAgainstDifferences("AttentionBackward " + std::to_string(sequences) + "x" +
                                std::to_string(length) + " heads " + std::to_string(heads) + "x" +
                                std::to_string(head_dim),
                            forward, qkv, g, dqkv);
  }
}

TEST_CASE("AttentionBackward: the same bits for any thread count and on repeated calls") {
  // Each (sequence, head) is computed whole by one thread, so the partition changes nothing;
  // the per-thread scratch is reused across calls and remade when the sizes change.
  auto one = CreateCpuBackend(1), three = TestBackend();
  for (const std::array<size_t, 4>& shape :
       {std::array<size_t, 4>{2, 192, 3, 64}, {3, 37, 2, 17}, {2, 192, 3, 64}}) {
    const size_t sequences = shape[0], length = shape[1], heads = shape[2], head_dim = shape[3];
    const size_t width = heads * head_dim;
    const auto qkv = RandomValues(sequences * length * 3 * width, 35, 1.5f);
    const auto g = RandomValues(sequences * length * width, 36);
    std::vector<float> first(qkv.size(), NAN), again(qkv.size(), NAN), threaded(qkv.size(), NAN);
    one->AttentionBackward(qkv.data(), g.data(), sequences, length, heads, head_dim, first.data());
    one->AttentionBackward(qkv.data(), g.data(), sequences, length, heads, head_dim, again.data());
    three->AttentionBackward(qkv.data(), g.data(), sequences, length, heads, head_dim,
                             threaded.data());
    CHECK(std::all_of(first.begin(), first.end(), [](float v) { return std::isfinite(v); }));
    CHECK(first == again);
    CHECK(first == threaded);
  }
}

TEST_CASE("SliceSequencesBackward, and SliceSequences as the adjoint of BuildSequences") {
  auto backend = TestBackend();
  const size_t sequences = 3, length = 7, first = 2, count = 4, width = 5;
  const auto x = RandomValues(sequences * length * width, 17);
  const auto g = RandomValues(sequences * count * width, 18);
  const Forward slice = [&](const std::vector<float>& input) {
    std::vector<float> out(sequences * count * width);
    backend->SliceSequences(input.data(), sequences, length, first, count, width, out.data());
    return out;
  };
  std::vector<float> dx(x.size(), NAN);
  backend->SliceSequencesBackward(g.data(), sequences, length, first, count, width, dx.data());
  CheckAgainstDifferences("SliceSequencesBackward", slice, x, g, dx);

  // BuildSequences of per-sequence heads and tails: their gradients are slices of dout.
  const size_t head = 3, tail = length - head;
  const auto heads = RandomValues(sequences * head * width, 19);
  const auto tails = RandomValues(sequences * tail * width, 20);
  const auto add = RandomValues(tail * width, 21);
  const auto dout = RandomValues(sequences * length * width, 22);
  const Forward build_from_heads = [&](const std::vector<float>& input) {
    std::vector<float> out(sequences * length * width);
    backend->BuildSequences({input.data(), head, head * width, nullptr},
                            {tails.data(), tail, tail * width, add.data()}, sequences, width,
                            out.data());
    return out;
  };
  const Forward build_from_tails = [&](const std::vector<float>& input) {
    std::vector<float> out(sequences * length * width);
    backend->BuildSequences({heads.data(), head, head * width, nullptr},
                            {input.data(), tail, tail * width, add.data()}, sequences, width,
                            out.data());
    return out;
  };
  std::vector<float> dheads(heads.size()), dtails(tails.size());
  backend->SliceSequences(dout.data(), sequences, length, 0, head, width, dheads.data());
  backend->SliceSequences(dout.data(), sequences, length, head, tail, width, dtails.data());
  CheckAgainstDifferences("BuildSequences (head) adjoint", build_from_heads, heads, dout, dheads);
  CheckAgainstDifferences("BuildSequences (tail) adjoint", build_from_tails, tails, dout, dtails);
}

TEST_CASE("PatchifyBackward") {
  auto backend = TestBackend();
  const size_t count = 2, side = 8, patch = 4;
  const auto images = RandomValues(count * side * side * 3, 23);
  const auto g = RandomValues(images.size(), 24);
  const Forward forward = [&](const std::vector<float>& input) {
    std::vector<float> out(input.size());
    backend->Patchify(input.data(), count, side, patch, out.data());
    return out;
  };
  std::vector<float> dx(images.size(), NAN);
  backend->PatchifyBackward(g.data(), count, side, patch, dx.data(), false);
  CheckAgainstDifferences("PatchifyBackward", forward, images, g, dx);
  std::vector<float> accumulated(images.size(), 2.0f);
  backend->PatchifyBackward(g.data(), count, side, patch, accumulated.data(), true);
  for (size_t i = 0; i < dx.size(); ++i) CHECK(accumulated[i] == 2.0f + dx[i]);
}

TEST_CASE("UnpatchifyBackward") {
  auto backend = TestBackend();
  const size_t count = 2, side = 8, patch = 4, channels = 5;
  const auto patches = RandomValues(count * side * side * channels, 25);
  const auto g = RandomValues(patches.size(), 26);
  const Forward forward = [&](const std::vector<float>& input) {
    std::vector<float> out(input.size());
    backend->Unpatchify(input.data(), count, side, patch, channels, out.data());
    return out;
  };
  std::vector<float> dx(patches.size(), NAN);
  backend->UnpatchifyBackward(g.data(), count, side, patch, channels, dx.data());
  CheckAgainstDifferences("UnpatchifyBackward", forward, patches, g, dx);
}

TEST_CASE("Conv3x3BackwardInput: stored and accumulated, borders, several images") {
  auto backend = TestBackend();
  // (count, height, width, in, out): a ragged map, and one where the 9 taps cross every border.
  for (const auto& shape : {std::array<uint32_t, 5>{2, 3, 5, 3, 4}, {3, 6, 4, 5, 2}}) {
    // named copies, not a structured binding: the lambda below captures them
    const uint32_t count = shape[0], height = shape[1], width = shape[2], in = shape[3],
                   out = shape[4];
    const auto x = RandomValues(count * height * width * in, 27);
    const auto w = RandomValues(out * 9 * in, 28), b = RandomValues(out, 29);
    const auto g = RandomValues(count * height * width * out, 30);
    const Forward forward = [&](const std::vector<float>& input) {
      std::vector<float> y(count * height * width * out);
      backend->Conv3x3(input.data(), count, height, width, in, w.data(), b.data(), out, y.data(),
                       Epilogue::kStore);
      return y;
    };
    std::vector<float> dx(x.size(), NAN);
    backend->Conv3x3BackwardInput(g.data(), count, height, width, out, w.data(), in, dx.data(),
                                  false);
    CheckAgainstDifferences("Conv3x3BackwardInput", forward, x, g, dx);
    std::vector<float> accumulated(x.size(), 2.0f);
    backend->Conv3x3BackwardInput(g.data(), count, height, width, out, w.data(), in,
                                  accumulated.data(), true);
    for (size_t i = 0; i < dx.size(); ++i) CHECK(accumulated[i] == doctest::Approx(2.0f + dx[i]));
  }
}

TEST_CASE("PixelShuffleAddBackward") {
  auto backend = TestBackend();
  const size_t count = 2, height = 3, width = 4, channels = 3, f = 2;
  const auto x = RandomValues(count * height * width * channels * f * f, 31);
  const auto g = RandomValues(x.size(), 32);
  const Forward forward = [&](const std::vector<float>& input) {
    std::vector<float> y(input.size(), 0.0f);
    backend->PixelShuffleAdd(input.data(), count, height, width, channels, f, y.data());
    return y;
  };
  std::vector<float> dx(x.size(), NAN);
  backend->PixelShuffleAddBackward(g.data(), count, height, width, channels, f, dx.data());
  CheckAgainstDifferences("PixelShuffleAddBackward", forward, x, g, dx);
}

TEST_CASE("AssembleTilesBackward: detail and the bilinear adjoint for coarse") {
  auto backend = TestBackend();
  for (TileGeometry geometry : {TileGeometry{16, 4, 4}, TileGeometry{12, 6, 12},
                                TileGeometry{16, 8, 2}, TileGeometry{32, 16, 8}}) {
    const size_t count = 2, tile = geometry.tile, pool = geometry.pool;
    const size_t tile_values = tile * tile * 3, pooled_values = pool * pool * 3;
    const auto detail = RandomValues(count * tile_values, 25);
    const auto coarse = RandomValues(count * pooled_values, 26);
    const auto g = RandomValues(count * tile_values, 27);
    std::vector<float> ddetail(detail.size(), NAN), dcoarse(coarse.size(), NAN);
    backend->AssembleTilesBackward(g.data(), count, geometry, ddetail.data(), dcoarse.data());
    const Forward from_detail = [&](const std::vector<float>& input) {
      std::vector<float> pixels(count * tile_values);
      backend->AssembleTiles(input.data(), coarse.data(), count, geometry, pixels.data());
      return pixels;
    };
    const Forward from_coarse = [&](const std::vector<float>& input) {
      std::vector<float> pixels(count * tile_values);
      backend->AssembleTiles(detail.data(), input.data(), count, geometry, pixels.data());
      return pixels;
    };
    const std::string name = "AssembleTilesBackward tile " + std::to_string(tile) + " pool " +
                             std::to_string(pool) + ": ";
    CheckAgainstDifferences(name + "detail", from_detail, detail, g, ddetail);
    CheckAgainstDifferences(name + "coarse", from_coarse, coarse, g, dcoarse);
  }
}

TEST_CASE("EmbedValues and EmbedValuesBackward: kept rows, dropped rows") {
  auto backend = TestBackend();
  const size_t count = 3, tokens = 4, code_dim = 3, width = 7;
  const std::vector<uint32_t> keep = {4, 1, 0};
  const auto w = RandomValues(width * code_dim, 28), b = RandomValues(width, 29),
             mask = RandomValues(width, 30);
  const auto values = RandomValues(count * tokens * code_dim, 31);

  // Against EmbedTokens: the same codes and embeddings, bit for bit.
  FsqLevels levels;
  levels.dims = 3;
  levels.levels = {3, 4, 5};
  std::vector<int32_t> token_ids(count * tokens);
  std::vector<float> offsets(count * tokens * code_dim), token_values(offsets.size());
  const auto raw_offsets = RandomValues(offsets.size(), 32, 0.5f);
  for (size_t r = 0; r < count * tokens; ++r) {
    const bool kept = r % tokens < keep[r / tokens];
    uint32_t id = 0, basis = 1;
    for (size_t d = 0; d < code_dim; ++d) {
      const uint32_t digit = static_cast<uint32_t>(r + d) % levels.levels[d];
      const float half = static_cast<float>(levels.levels[d] / 2);
      offsets[r * code_dim + d] = raw_offsets[r * code_dim + d];
      token_values[r * code_dim + d] =
          (static_cast<float>(digit) - half + offsets[r * code_dim + d]) / half;
      id += digit * basis;
      basis *= levels.levels[d];
    }
    token_ids[r] = kept ? static_cast<int32_t>(id) : kDroppedToken;
  }
  std::vector<float> embedded(count * tokens * width), codes(count * tokens * code_dim);
  std::vector<float> embedded_tokens(embedded.size()), codes_tokens(codes.size());
  backend->EmbedValues(token_values.data(), keep.data(), count, tokens, code_dim, w.data(),
                       b.data(), mask.data(), width, embedded.data(), codes.data());
  backend->EmbedTokens(token_ids.data(), offsets.data(), count * tokens, levels, w.data(), b.data(),
                       mask.data(), width, embedded_tokens.data(), codes_tokens.data());
  CHECK(codes == codes_tokens);
  CHECK(embedded == embedded_tokens);

  // The gradient through both outputs: embedded (code_wᵀ·g) and codes (passed through).
  const auto g_embedded = RandomValues(embedded.size(), 33);
  const auto g_codes = RandomValues(codes.size(), 34);
  std::vector<float> cotangent = g_embedded;
  cotangent.insert(cotangent.end(), g_codes.begin(), g_codes.end());
  const Forward forward = [&](const std::vector<float>& input) {
    std::vector<float> e(embedded.size()), c(codes.size());
    backend->EmbedValues(input.data(), keep.data(), count, tokens, code_dim, w.data(), b.data(),
                         mask.data(), width, e.data(), c.data());
    e.insert(e.end(), c.begin(), c.end());
    return e;
  };
  std::vector<float> dvalues = g_codes;  // the gradient of codes from their other uses
  backend->EmbedValuesBackward(g_embedded.data(), keep.data(), count, tokens, code_dim, w.data(),
                               width, dvalues.data(), true);
  CheckAgainstDifferences("EmbedValuesBackward", forward, values, cotangent, dvalues);
  for (size_t r = 0; r < count * tokens; ++r) {
    if (r % tokens < keep[r / tokens]) continue;
    for (size_t d = 0; d < code_dim; ++d) CHECK(dvalues[r * code_dim + d] == 0.0f);
  }
  std::vector<float> stored(values.size(), NAN);
  backend->EmbedValuesBackward(g_embedded.data(), keep.data(), count, tokens, code_dim, w.data(),
                               width, stored.data(), false);
  for (size_t i = 0; i < stored.size(); ++i) {
    CHECK(std::isfinite(stored[i]));
    const bool kept = i / code_dim % tokens < keep[i / code_dim / tokens];
    CHECK(stored[i] == doctest::Approx(kept ? dvalues[i] - g_codes[i] : 0.0).epsilon(1e-5));
  }
}

}  // namespace
}  // namespace tok1d
