#include "kernels/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vector_math.h"
#include "kernels/fsq_table.h"

namespace tok1d {
namespace {

using cpu::ErfApproxWithExp;
using cpu::ExpApprox;
using cpu::GeluApprox;

constexpr size_t kAlignment = 64;

// ---- row kernels (each compiled for AVX2 and baseline, see TOK1D_VECTORIZED) ----

TOK1D_VECTORIZED void AddBiasRows(float* y, size_t rows, size_t width, const float* bias) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = y + r * width;
    for (size_t i = 0; i < width; ++i) row[i] += bias[i];
  }
}

TOK1D_VECTORIZED void LayerNormRows(const float* x, size_t rows, size_t width, const float* gamma,
                                    const float* beta, float eps, float* y) {
  const float inv_width = 1.0f / static_cast<float>(width);
  for (size_t r = 0; r < rows; ++r) {
    const float* in = x + r * width;
    float* out = y + r * width;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < width; ++i) sum += in[i];
    const float mean = sum * inv_width;
    float squares = 0;
#pragma omp simd reduction(+ : squares)
    for (size_t i = 0; i < width; ++i) squares += (in[i] - mean) * (in[i] - mean);
    const float rstd = 1.0f / std::sqrt(squares * inv_width + eps);
    for (size_t i = 0; i < width; ++i) out[i] = (in[i] - mean) * rstd * gamma[i] + beta[i];
  }
}

// Attention's products (and the 3x3 convolution) are computed in blocks of kQueryBlock rows
// against kLaneBlock columns at a time, so the accumulators stay in vector registers: 4 × 16
// floats is 8 AVX2 registers (GCC/Clang vector types; the baseline clone splits them into SSE
// pairs; CPUs with AVX-512 take 8 × 32 in 16 of theirs). Operands are copied to scratch padded
// to multiples of kLaneBlock with zeros, so the blocked loops need no tail handling.
constexpr size_t kQueryBlock = 4;
constexpr size_t kLaneBlock = 16;

using Vec8 = float __attribute__((vector_size(32)));

// By reference: passing AVX vectors by value would differ between the clones' ABIs.
template <typename Vec>
[[gnu::always_inline]] inline void LoadVec(Vec& v, const float* p) {
  std::memcpy(&v, p, sizeof(v));
}
template <typename Vec>
[[gnu::always_inline]] inline void StoreVec(float* p, const Vec& v) {
  std::memcpy(p, &v, sizeof(v));
}

// One register block of a direct 3x3 convolution's row (ConvRow): pixels x0 … x0 + kPixels − 1
// against output channels n0 … n0 + kVecs·(Vec's width) − 1, all sums in vector registers.
// Inlined into each target's loop, which picks the vector type and the block.
template <typename Vec, size_t kPixels, size_t kVecs>
[[gnu::always_inline]] inline void ConvBlock(const float* padded, size_t width, size_t in, size_t y,
                                             size_t x0, const float* wt, size_t ldb,
                                             const float* bias, size_t n0, size_t out,
                                             Epilogue epilogue, float* row) {
  constexpr size_t kWidth = sizeof(Vec) / sizeof(float);
  const size_t padded_width = width + 2;
  // A short last block repeats the last pixel; its extra results are not stored.
  const float* pixel[kPixels];
  for (size_t q = 0; q < kPixels; ++q) {
    pixel[q] = padded + (y * padded_width + std::min(x0 + q, width - 1)) * in;
  }
  Vec acc[kPixels][kVecs];
  for (size_t l = 0; l < kVecs; ++l) {
    Vec b;
    LoadVec(b, bias + n0 + kWidth * l);
    for (size_t q = 0; q < kPixels; ++q) acc[q][l] = b;
  }
  for (size_t ky = 0; ky < 3; ++ky) {
    for (size_t kx = 0; kx < 3; ++kx) {
      const size_t offset = (ky * padded_width + kx) * in;
      const float* w = wt + (ky * 3 + kx) * in * ldb + n0;
      for (size_t i = 0; i < in; ++i, w += ldb) {
        Vec weights[kVecs];
        for (size_t l = 0; l < kVecs; ++l) LoadVec(weights[l], w + kWidth * l);
#pragma GCC unroll 8
        for (size_t q = 0; q < kPixels; ++q) {
          const float v = pixel[q][offset + i];
          for (size_t l = 0; l < kVecs; ++l) acc[q][l] += v * weights[l];
        }
      }
    }
  }
  const size_t lanes_used = std::min(kWidth * kVecs, out - n0);
  for (size_t q = 0; q < kPixels && x0 + q < width; ++q) {
    float values[kWidth * kVecs];
    for (size_t l = 0; l < kVecs; ++l) StoreVec(values + kWidth * l, acc[q][l]);
    float* dst = row + (x0 + q) * out + n0;
    if (epilogue == Epilogue::kAccumulate) {
      for (size_t n = 0; n < lanes_used; ++n) dst[n] += values[n];
    } else if (epilogue == Epilogue::kGelu) {
      for (size_t n = 0; n < lanes_used; ++n) dst[n] = GeluApprox(values[n]);
    } else {
      std::memcpy(dst, values, lanes_used * sizeof(float));
    }
  }
}

// One register block of a product (BlockedProduct): rows i0 … i0 + kRows − 1 of c against
// columns n0 … n0 + kVecs·(Vec's width) − 1, each sum in order of k (the same arithmetic
// whatever the thread count or the vector width).
template <typename Vec, size_t kRows, size_t kVecs>
[[gnu::always_inline]] inline void ProductBlock(const float* a, size_t a_row, size_t a_col,
                                                size_t m, size_t i0, size_t k_count, const float* b,
                                                size_t ldb, size_t n0, size_t n_valid, float scale,
                                                float* c, size_t ldc) {
  constexpr size_t kWidth = sizeof(Vec) / sizeof(float);
  // A short last block repeats the last row; its extra results are not stored.
  size_t offsets[kRows];
  for (size_t qi = 0; qi < kRows; ++qi) offsets[qi] = std::min(i0 + qi, m - 1) * a_row;
  Vec acc[kRows][kVecs] = {};
  const float* column = a;
  for (size_t k = 0; k < k_count; ++k, column += a_col) {
    Vec row[kVecs];
    for (size_t l = 0; l < kVecs; ++l) LoadVec(row[l], b + k * ldb + n0 + kWidth * l);
#pragma GCC unroll 8
    for (size_t qi = 0; qi < kRows; ++qi) {
      const float v = column[offsets[qi]];
      for (size_t l = 0; l < kVecs; ++l) acc[qi][l] += v * row[l];
    }
  }
  const size_t count = std::min(kWidth * kVecs, n_valid - n0);
  for (size_t qi = 0; qi < kRows && i0 + qi < m; ++qi) {
    float values[kWidth * kVecs];
    for (size_t l = 0; l < kVecs; ++l) StoreVec(values + kWidth * l, acc[qi][l] * scale);
    std::memcpy(c + (i0 + qi) * ldc + n0, values, count * sizeof(float));
  }
}

size_t RoundUp(size_t value, size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Scratch for one (sequence, head) attention unit.
struct AttentionScratch {
  AttentionScratch(size_t length, size_t head_dim)
      : padded_length(RoundUp(length, kLaneBlock)),
        padded_dim(RoundUp(head_dim, kLaneBlock)),
        keys_t(head_dim * padded_length, 0.0f),
        values(length * padded_dim, 0.0f),
        scores(length * padded_length, 0.0f) {}
  size_t padded_length;
  size_t padded_dim;
  std::vector<float> keys_t;  // [head_dim, padded_length]: keys transposed
  std::vector<float> values;  // [length, padded_dim]
  std::vector<float> scores;  // [length, padded_length]
};

void Product(const float* a, size_t a_row, size_t a_col, size_t m, size_t k_count, const float* b,
             size_t ldb, size_t n_valid, float scale, float* c, size_t ldc);

// Each row of scores[rows, stride] (its first `length` entries) → its softmax.
TOK1D_VECTORIZED void SoftmaxRows(float* scores, size_t rows, size_t length, size_t stride) {
  for (size_t i = 0; i < rows; ++i) {
    float* row = scores + i * stride;
    float max_score = -INFINITY;
    // Written as a comparison: GCC vectorizes this reduction, not std::max's.
#pragma omp simd reduction(max : max_score)
    for (size_t j = 0; j < length; ++j) max_score = max_score > row[j] ? max_score : row[j];
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t j = 0; j < length; ++j) {
      row[j] = ExpApprox(row[j] - max_score);
      sum += row[j];
    }
    const float inv_sum = 1.0f / sum;
    for (size_t j = 0; j < length; ++j) row[j] *= inv_sum;
  }
}

// grad[i] (the gradient of softmax row p[i]) → scale · that of the scores: p ∘ (grad − p·grad).
TOK1D_VECTORIZED void SoftmaxBackwardRows(const float* p, float* grad, size_t rows, size_t length,
                                          size_t stride, float scale) {
  for (size_t i = 0; i < rows; ++i) {
    const float* row = p + i * stride;
    float* g = grad + i * stride;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (size_t j = 0; j < length; ++j) dot += row[j] * g[j];
#pragma omp simd
    for (size_t j = 0; j < length; ++j) g[j] = row[j] * (g[j] - dot) * scale;
  }
}

// Softmax attention of one head of one sequence: two products and the softmax between.
void AttentionHead(const float* qkv, size_t length, size_t heads, size_t head_dim, size_t head,
                   float* out, AttentionScratch& scratch) {
  const size_t width = heads * head_dim;
  const size_t row_stride = 3 * width;
  const size_t padded_length = scratch.padded_length, padded_dim = scratch.padded_dim;
  float* keys_t = scratch.keys_t.data();
  float* values = scratch.values.data();
  float* scores = scratch.scores.data();
  for (size_t j = 0; j < length; ++j) {
    const float* key = qkv + j * row_stride + width + head * head_dim;
    const float* value = key + width;
    for (size_t d = 0; d < head_dim; ++d) keys_t[d * padded_length + j] = key[d];
    std::memcpy(values + j * padded_dim, value, head_dim * sizeof(float));
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  Product(qkv + head * head_dim, row_stride, 1, length, head_dim, keys_t, padded_length, length,
          scale, scores, padded_length);
  SoftmaxRows(scores, length, length, padded_length);
  Product(scores, padded_length, 1, length, length, values, padded_dim, head_dim, 1.0f,
          out + head * head_dim, width);
}

TOK1D_VECTORIZED void CopyRowsAdding(const float* rows, const float* add, size_t count,
                                     float* out) {
  if (add == nullptr) {
    std::memcpy(out, rows, count * sizeof(float));
  } else {
    for (size_t i = 0; i < count; ++i) out[i] = rows[i] + add[i];
  }
}

// One [side, side, 3] image → its (side/patch)² patches of patch²·3 values, (py, px, c) order.
void PatchifyImage(const float* image, size_t side, size_t patch, float* patches,
                   size_t channels = 3) {
  const size_t per_side = side / patch, patch_dim = patch * patch * channels;
  const size_t run = patch * channels;  // one row of a patch
  for (size_t y = 0; y < side; ++y) {
    for (size_t px = 0; px < per_side; ++px) {
      std::memcpy(patches + ((y / patch) * per_side + px) * patch_dim + (y % patch) * run,
                  image + (y * side + px * patch) * channels, run * sizeof(float));
    }
  }
}

// The inverse of PatchifyImage (its adjoint: a permutation), adding when `accumulate`.
void UnpatchifyImage(const float* patches, size_t side, size_t patch, float* image, bool accumulate,
                     size_t channels = 3) {
  const size_t per_side = side / patch, patch_dim = patch * patch * channels;
  const size_t run = patch * channels;
  for (size_t y = 0; y < side; ++y) {
    for (size_t px = 0; px < per_side; ++px) {
      const float* src = patches + ((y / patch) * per_side + px) * patch_dim + (y % patch) * run;
      float* dst = image + (y * side + px * patch) * channels;
      if (accumulate) {
        for (size_t i = 0; i < run; ++i) dst[i] += src[i];
      } else {
        std::memcpy(dst, src, run * sizeof(float));
      }
    }
  }
}

// ---- 3x3 convolution (channels-last): a direct kernel forward; a product and a gather back ----

// Images per chunk of Conv3x3's scratch (padded images; the backward pass's products): about
// 8k pixels, whole images so the backward pass can gather within one chunk.
size_t ConvChunkImages(size_t height, size_t width) {
  return std::max<size_t>(1, 8192 / std::max<size_t>(1, height * width));
}

// The image with a border of one zero pixel: padded[(height + 2) × (width + 2), channels].
void PadImage(const float* image, size_t height, size_t width, size_t channels, float* padded) {
  const size_t padded_width = width + 2;
  std::fill(padded, padded + padded_width * channels, 0.0f);
  for (size_t y = 0; y < height; ++y) {
    float* row = padded + (y + 1) * padded_width * channels;
    std::fill(row, row + channels, 0.0f);
    std::memcpy(row + channels, image + y * width * channels, width * channels * sizeof(float));
    std::fill(row + (width + 1) * channels, row + padded_width * channels, 0.0f);
  }
  float* last = padded + (height + 1) * padded_width * channels;
  std::fill(last, last + padded_width * channels, 0.0f);
}

// Row y of a direct 3x3 convolution, channels-last: row[x, n] = bias[n] + Σ over ky, kx, i of
// padded[(y + ky)·(width + 2) + x + kx, i] · wt[(ky·3 + kx)·in + i, n], then the epilogue.
// wt is [9·in, ldb] and bias [ldb], both zero beyond `out` (ldb a multiple of kLaneBlock).
// Blocked as BlockedProduct: kQueryBlock pixels against kLaneBlock output channels in
// registers, no im2col copy.
TOK1D_VECTORIZED void ConvRow(const float* padded, size_t width, size_t in, size_t y,
                              const float* wt, size_t ldb, const float* bias, size_t out,
                              Epilogue epilogue, float* row) {
  for (size_t x0 = 0; x0 < width; x0 += kQueryBlock) {
    for (size_t n0 = 0; n0 < out; n0 += kLaneBlock) {
      ConvBlock<Vec8, kQueryBlock, 2>(padded, width, in, y, x0, wt, ldb, bias, n0, out, epilogue,
                                      row);
    }
  }
}

// The adjoint of the convolution's tap reads for rows y0 … y1 − 1 of one image, from
// g[p, tap·in + i] = Σ_n dy[p, n]·w[n, tap, i]: dx[s, i] (+)= Σ over the taps of g[p, tap·in + i],
// p the pixel that tap reads s from (a gather, so rows are independent).
TOK1D_VECTORIZED void Col2Im3x3(const float* g, size_t height, size_t width, size_t in, size_t y0,
                                size_t y1, float* dx, bool accumulate) {
  const size_t row = 9 * in;
  for (size_t y = y0; y < y1; ++y) {
    for (size_t x = 0; x < width; ++x) {
      float* dst = dx + (y * width + x) * in;
      if (!accumulate) std::fill(dst, dst + in, 0.0f);
      for (size_t ky = 0; ky < 3; ++ky) {
        // output pixel row py reads y through tap ky when py + ky − 1 = y
        if (y + 1 < ky || y + 1 - ky >= height) continue;
        const size_t py = y + 1 - ky;
        for (size_t kx = 0; kx < 3; ++kx) {
          if (x + 1 < kx || x + 1 - kx >= width) continue;
          const float* src = g + (py * width + (x + 1 - kx)) * row + (ky * 3 + kx) * in;
          for (size_t i = 0; i < in; ++i) dst[i] += src[i];
        }
      }
    }
  }
}

// Bilinear taps along one axis (the same for rows and columns: tiles are square), as
// PyTorch's upsample_bilinear2d with align_corners=False computes them.
struct BilinearTap {
  size_t i0, i1;
  float w0, w1;
};

std::vector<BilinearTap> BilinearTaps(size_t pool, size_t tile) {
  std::vector<BilinearTap> taps(tile);
  const float scale = static_cast<float>(pool) / static_cast<float>(tile);
  for (size_t o = 0; o < tile; ++o) {
    const float src = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
    const auto i0 = static_cast<size_t>(src);
    const float w1 = std::min(std::max(src - static_cast<float>(i0), 0.0f), 1.0f);
    taps[o] = {i0, i0 + (i0 < pool - 1 ? 1 : 0), 1.0f - w1, w1};
  }
  return taps;
}

TOK1D_VECTORIZED void GeluRows(const float* x, size_t count, float* y) {
  for (size_t i = 0; i < count; ++i) y[i] = GeluApprox(x[i]);
}

// gelu′(x) = Φ(x) + x·φ(x); Φ's erf and φ share the exponential e^(−x²/2).
TOK1D_VECTORIZED void GeluBackwardRows(const float* x, const float* dy, size_t count, float* dx) {
  constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    const float u = v * kInvSqrt2;
    const float e = ExpApprox(-u * u);
    const float cdf = 0.5f * (1.0f + ErfApproxWithExp(u, e));
    const float pdf = kInvSqrt2Pi * e;
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·gamma, x̂ = (x − mean)·rstd.
TOK1D_VECTORIZED void LayerNormBackwardRows(const float* x, const float* dy, size_t rows,
                                            size_t width, const float* gamma, float eps, float* dx,
                                            bool accumulate) {
  const float inv_width = 1.0f / static_cast<float>(width);
  for (size_t r = 0; r < rows; ++r) {
    const float* in = x + r * width;
    const float* grad = dy + r * width;
    float* out = dx + r * width;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < width; ++i) sum += in[i];
    const float mean = sum * inv_width;
    float squares = 0;
#pragma omp simd reduction(+ : squares)
    for (size_t i = 0; i < width; ++i) squares += (in[i] - mean) * (in[i] - mean);
    const float rstd = 1.0f / std::sqrt(squares * inv_width + eps);
    float g_sum = 0, gx_sum = 0;
#pragma omp simd reduction(+ : g_sum, gx_sum)
    for (size_t i = 0; i < width; ++i) {
      const float g = grad[i] * gamma[i];
      g_sum += g;
      gx_sum += g * (in[i] - mean) * rstd;
    }
    const float g_mean = g_sum * inv_width, gx_mean = gx_sum * inv_width;
    if (accumulate) {
      for (size_t i = 0; i < width; ++i) {
        out[i] += rstd * (grad[i] * gamma[i] - g_mean - (in[i] - mean) * rstd * gx_mean);
      }
    } else {
      for (size_t i = 0; i < width; ++i) {
        out[i] = rstd * (grad[i] * gamma[i] - g_mean - (in[i] - mean) * rstd * gx_mean);
      }
    }
  }
}

// c[i, n] = scale · Σ_k a(i, k)·b[k, n] for i < m, n < n_valid (stored, row stride ldc), with
// a(i, k) = a[i·a_row + k·a_col] (so a transposed operand needs no copy) and b [k_count, ldb]
// row-major, ldb a multiple of kLaneBlock and b zero in columns n_valid … ldb − 1. Blocked as
// the forward attention: kQueryBlock rows of c against kLaneBlock columns in vector registers,
// each sum in order of k (the same arithmetic whatever the thread count).
TOK1D_VECTORIZED void BlockedProduct(const float* a, size_t a_row, size_t a_col, size_t m,
                                     size_t k_count, const float* b, size_t ldb, size_t n_valid,
                                     float scale, float* c, size_t ldc) {
  for (size_t i0 = 0; i0 < m; i0 += kQueryBlock) {
    for (size_t n0 = 0; n0 < n_valid; n0 += kLaneBlock) {
      ProductBlock<Vec8, kQueryBlock, 2>(a, a_row, a_col, m, i0, k_count, b, ldb, n0, n_valid,
                                         scale, c, ldc);
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(TOK1D_THREAD_SANITIZER) && !defined(__SANITIZE_THREAD__)
#define TOK1D_HAS_AVX512_PRODUCT 1
using Vec16 = float __attribute__((vector_size(64)));

// BlockedProduct for CPUs with AVX-512: 8 rows of c against 32 (or 16) columns, 16 zmm
// accumulators; the same sums in the same order of k.
__attribute__((target("arch=x86-64-v4"))) void BlockedProduct512(
    const float* a, size_t a_row, size_t a_col, size_t m, size_t k_count, const float* b,
    size_t ldb, size_t n_valid, float scale, float* c, size_t ldc) {
  for (size_t i0 = 0; i0 < m; i0 += 8) {
    size_t n0 = 0;
    for (; n0 + 32 <= ldb && n0 < n_valid; n0 += 32) {
      ProductBlock<Vec16, 8, 2>(a, a_row, a_col, m, i0, k_count, b, ldb, n0, n_valid, scale, c,
                                ldc);
    }
    for (; n0 < n_valid; n0 += 16) {  // ldb is a multiple of 16
      ProductBlock<Vec16, 8, 1>(a, a_row, a_col, m, i0, k_count, b, ldb, n0, n_valid, scale, c,
                                ldc);
    }
  }
}

#endif

// AVX-512 as x86-64-v4 has it (F, BW, VL, DQ); the builtins also check that the OS saves the
// wider registers.
bool CpuHasAvx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

// TOK1D_CPU_NO_AVX512=1 keeps the attention's products and the convolution on the AVX2 kernels
// (the tests run both).
bool UseAvx512Products() {
  static const bool use = [] {
    const char* off = std::getenv("TOK1D_CPU_NO_AVX512");
    return CpuHasAvx512() &&
           (off == nullptr || std::string_view(off).empty() || std::string_view(off) == "0");
  }();
  return use;
}

// BlockedProduct on the widest vectors this CPU has.
void Product(const float* a, size_t a_row, size_t a_col, size_t m, size_t k_count, const float* b,
             size_t ldb, size_t n_valid, float scale, float* c, size_t ldc) {
#if defined(TOK1D_HAS_AVX512_PRODUCT)
  if (UseAvx512Products()) {
    BlockedProduct512(a, a_row, a_col, m, k_count, b, ldb, n_valid, scale, c, ldc);
    return;
  }
#endif
  BlockedProduct(a, a_row, a_col, m, k_count, b, ldb, n_valid, scale, c, ldc);
}

#if defined(TOK1D_HAS_AVX512_PRODUCT)
// ConvRow for CPUs with AVX-512: 8 pixels against 32 (or 16) output channels.
__attribute__((target("arch=x86-64-v4"))) void ConvRow512(const float* padded, size_t width,
                                                          size_t in, size_t y, const float* wt,
                                                          size_t ldb, const float* bias, size_t out,
                                                          Epilogue epilogue, float* row) {
  for (size_t x0 = 0; x0 < width; x0 += 8) {
    size_t n0 = 0;
    for (; n0 + 32 <= ldb && n0 < out; n0 += 32) {
      ConvBlock<Vec16, 8, 2>(padded, width, in, y, x0, wt, ldb, bias, n0, out, epilogue, row);
    }
    for (; n0 < out; n0 += 16) {  // ldb is a multiple of 16
      ConvBlock<Vec16, 8, 1>(padded, width, in, y, x0, wt, ldb, bias, n0, out, epilogue, row);
    }
  }
}
#endif

// ConvRow on the widest vectors this CPU has.
void ConvRowDispatch(const float* padded, size_t width, size_t in, size_t y, const float* wt,
                     size_t ldb, const float* bias, size_t out, Epilogue epilogue, float* row) {
#if defined(TOK1D_HAS_AVX512_PRODUCT)
  if (UseAvx512Products()) {
    ConvRow512(padded, width, in, y, wt, ldb, bias, out, epilogue, row);
    return;
  }
#endif
  ConvRow(padded, width, in, y, wt, ldb, bias, out, epilogue, row);
}

// Scratch for one (sequence, head) unit of the attention's backward pass: the operands of its
// products, copied to rows padded with zeros to multiples of kLaneBlock.
struct AttentionBackwardScratch {
  AttentionBackwardScratch(size_t length_, size_t head_dim_)
      : length(length_),
        head_dim(head_dim_),
        padded_length(RoundUp(length, kLaneBlock)),
        padded_dim(RoundUp(head_dim, kLaneBlock)),
        keys_t(head_dim * padded_length, 0.0f),
        values_t(head_dim * padded_length, 0.0f),
        queries(length * padded_dim, 0.0f),
        keys(length * padded_dim, 0.0f),
        grad_out(length * padded_dim, 0.0f),
        p(length * padded_length, 0.0f),
        ds(length * padded_length, 0.0f) {}
  size_t length;
  size_t head_dim;
  size_t padded_length;
  size_t padded_dim;
  std::vector<float> keys_t;    // [head_dim, padded_length]: Kᵀ
  std::vector<float> values_t;  // [head_dim, padded_length]: Vᵀ
  std::vector<float> queries;   // [length, padded_dim]: Q
  std::vector<float> keys;      // [length, padded_dim]: K
  std::vector<float> grad_out;  // [length, padded_dim]: dO
  std::vector<float> p;         // [length, padded_length]: the softmax P
  std::vector<float> ds;        // [length, padded_length]: dP, then s·dS
};

// The backward pass of one head of one sequence, as matrix products: with P = softmax(s·QKᵀ),
// dP = dO·Vᵀ, dS = P ∘ (dP − rowsum(P ∘ dP)); dQ = s·dS·K, dK = s·dSᵀ·Q, dV = Pᵀ·dO.
TOK1D_VECTORIZED void AttentionHeadBackward(const float* qkv, const float* dout, size_t length,
                                            size_t heads, size_t head_dim, size_t head, float* dqkv,
                                            AttentionBackwardScratch& scratch) {
  const size_t width = heads * head_dim;
  const size_t row_stride = 3 * width;
  const size_t padded_length = scratch.padded_length, padded_dim = scratch.padded_dim;
  float* keys_t = scratch.keys_t.data();
  float* values_t = scratch.values_t.data();
  float* p = scratch.p.data();
  float* ds = scratch.ds.data();
  for (size_t j = 0; j < length; ++j) {
    const float* query = qkv + j * row_stride + head * head_dim;
    const float* key = query + width;
    const float* value = key + width;
    for (size_t d = 0; d < head_dim; ++d) {
      keys_t[d * padded_length + j] = key[d];
      values_t[d * padded_length + j] = value[d];
    }
    std::memcpy(scratch.queries.data() + j * padded_dim, query, head_dim * sizeof(float));
    std::memcpy(scratch.keys.data() + j * padded_dim, key, head_dim * sizeof(float));
    std::memcpy(scratch.grad_out.data() + j * padded_dim, dout + j * width + head * head_dim,
                head_dim * sizeof(float));
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float* queries_in = qkv + head * head_dim;
  Product(queries_in, row_stride, 1, length, head_dim, keys_t, padded_length, length, scale, p,
          padded_length);  // s·QKᵀ
  Product(dout + head * head_dim, width, 1, length, head_dim, values_t, padded_length, length, 1.0f,
          ds, padded_length);  // dP
  SoftmaxRows(p, length, length, padded_length);
  SoftmaxBackwardRows(p, ds, length, length, padded_length, scale);
  float* grad_query = dqkv + head * head_dim;
  float* grad_key = grad_query + width;
  float* grad_value = grad_key + width;
  Product(ds, padded_length, 1, length, length, scratch.keys.data(), padded_dim, head_dim, 1.0f,
          grad_query, row_stride);  // s·dS·K
  Product(ds, 1, padded_length, length, length, scratch.queries.data(), padded_dim, head_dim, 1.0f,
          grad_key, row_stride);  // s·dSᵀ·Q
  Product(p, 1, padded_length, length, length, scratch.grad_out.data(), padded_dim, head_dim, 1.0f,
          grad_value, row_stride);  // Pᵀ·dO
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(unsigned threads) : pool_(threads), threads_(threads) {
    openblas_set_num_threads(static_cast<int>(threads));
  }

  std::string_view name() const override { return "cpu"; }
  std::string description() const override {
    return "cpu (" + std::to_string(threads_) + " threads; " + openblas_get_config() + ")";
  }

  StatusOr<DeviceBuffer> Allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
    void* data = std::aligned_alloc(kAlignment, rounded);
    if (data == nullptr) {
      return TooLargeError("out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    return DeviceBuffer(this, data, bytes);
  }

  StatusOr<DeviceBuffer> UploadConstant(std::span<const uint8_t> host) override {
    // Kernels only read constants, so the host bytes are used in place.
    return DeviceBuffer(nullptr, const_cast<uint8_t*>(host.data()), host.size());
  }

  Status CopyToDevice(void* device, const void* host, size_t bytes) override {
    std::memcpy(device, host, bytes);
    return OkStatus();
  }
  Status CopyToHost(void* host, const void* device, size_t bytes) override {
    std::memcpy(host, device, bytes);
    return OkStatus();
  }
  Status Synchronize() override { return OkStatus(); }

  void Linear(const float* x, size_t rows, size_t in, const float* w, const float* b, size_t out,
              float* y, Epilogue epilogue) override {
    // Storing: y starts as the bias and the product adds to it (one pass over y fewer than
    // OpenBLAS zeroing it for β = 0 and a bias pass after; the same sums, Σ then + b).
    const bool accumulate = epilogue == Epilogue::kAccumulate;
    if (!accumulate) {
      pool_.ParallelFor(rows, RowsPerTask(out), [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) std::memcpy(y + r * out, b, out * sizeof(float));
      });
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int(rows), Int(out), Int(in), 1.0f, x,
                Int(in), w, Int(in), 1.0f, y, Int(out));
    if (accumulate || epilogue == Epilogue::kGelu) {
      pool_.ParallelFor(rows, RowsPerTask(out), [&](size_t begin, size_t end) {
        if (accumulate) {
          AddBiasRows(y + begin * out, end - begin, out, b);
        } else {
          GeluRows(y + begin * out, (end - begin) * out, y + begin * out);
        }
      });
    }
  }

  void LayerNorm(const float* x, size_t rows, size_t width, const float* gamma, const float* beta,
                 float eps, float* y) override {
    pool_.ParallelFor(rows, RowsPerTask(width), [&](size_t begin, size_t end) {
      LayerNormRows(x + begin * width, end - begin, width, gamma, beta, eps, y + begin * width);
    });
  }

  void Attention(const float* qkv, size_t sequences, size_t length, size_t heads, size_t head_dim,
                 float* out) override {
    pool_.ParallelFor(sequences * heads, 1, [&](size_t begin, size_t end) {
      AttentionScratch scratch(length, head_dim);
      for (size_t unit = begin; unit < end; ++unit) {
        const size_t sequence = unit / heads;
        const size_t offset = sequence * length;
        AttentionHead(qkv + offset * 3 * heads * head_dim, length, heads, head_dim, unit % heads,
                      out + offset * heads * head_dim, scratch);
      }
    });
  }

  void BuildSequences(const RowSource& head, const RowSource& tail, size_t sequences, size_t width,
                      float* out) override {
    const size_t length = head.count + tail.count;
    pool_.ParallelFor(sequences, 1, [&](size_t begin, size_t end) {
      for (size_t s = begin; s < end; ++s) {
        float* dst = out + s * length * width;
        CopyRowsAdding(head.rows + s * head.sequence_stride, head.add, head.count * width, dst);
        CopyRowsAdding(tail.rows + s * tail.sequence_stride, tail.add, tail.count * width,
                       dst + head.count * width);
      }
    });
  }

  void SliceSequences(const float* in, size_t sequences, size_t length, size_t first, size_t count,
                      size_t width, float* out) override {
    pool_.ParallelFor(sequences, 1, [&](size_t begin, size_t end) {
      for (size_t s = begin; s < end; ++s) {
        std::memcpy(out + s * count * width, in + (s * length + first) * width,
                    count * width * sizeof(float));
      }
    });
  }

  void PatchifyTiles(const uint8_t* tiles, size_t count, const TileGeometry& g, float* patches,
                     float* pooled) override {
    const size_t tile = g.tile, patch = g.patch, per_side = tile / patch;
    const size_t factor = tile / g.pool;
    const size_t patch_dim = patch * patch * 3;
    pool_.ParallelFor(count, 1, [&](size_t begin, size_t end) {
      std::vector<float> x(tile * tile * 3);
      for (size_t t = begin; t < end; ++t) {
        const uint8_t* pixels = tiles + t * tile * tile * 3;
        // As PyTorch: float(v) / 255, then − 0.5 (two roundings, kept for parity).
        for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(pixels[i]) / 255.0f - 0.5f;
        PatchifyImage(x.data(), tile, patch, patches + t * per_side * per_side * patch_dim);
        float* tile_pooled = pooled + t * g.pool * g.pool * 3;
        const double inv_area = 1.0 / static_cast<double>(factor * factor);
        for (size_t py = 0; py < g.pool; ++py) {
          for (size_t px = 0; px < g.pool; ++px) {
            for (size_t c = 0; c < 3; ++c) {
              double sum = 0;
              for (size_t dy = 0; dy < factor; ++dy) {
                for (size_t dx = 0; dx < factor; ++dx) {
                  sum += x[((py * factor + dy) * tile + px * factor + dx) * 3 + c];
                }
              }
              tile_pooled[(py * g.pool + px) * 3 + c] = static_cast<float>(sum * inv_area);
            }
          }
        }
      }
    });
  }

  void Patchify(const float* images, size_t count, uint32_t side, uint32_t patch,
                float* patches) override {
    PatchifyImages(images, count, side, patch, 3, patches);
  }

  void FsqQuantize(const float* z, size_t rows, const FsqLevels& levels, float* bounded,
                   int32_t* tokens) override {
    const FsqTable table = MakeFsqTable(levels);
    const std::span<const FsqDim> dims(table.dims, table.count);
    for (size_t r = 0; r < rows; ++r) {
      uint32_t token = 0;
      for (size_t d = 0; d < dims.size(); ++d) {
        const FsqDim& dim = dims[d];
        const float value = std::tanh(z[r * dims.size() + d] + dim.shift) * dim.half_l - dim.offset;
        if (bounded != nullptr) bounded[r * dims.size() + d] = value;
        // nearbyint rounds half to even in the default rounding mode, as torch.round does.
        const float level = std::nearbyint(value) + static_cast<float>(dim.half_width);
        const auto digit =
            static_cast<uint32_t>(std::clamp(level, 0.0f, static_cast<float>(dim.levels - 1)));
        token += digit * dim.basis;
      }
      tokens[r] = static_cast<int32_t>(token);
    }
  }

  void EmbedTokens(const int32_t* tokens, const float* offsets, size_t rows,
                   const FsqLevels& levels, const float* code_w, const float* code_b,
                   const float* mask, size_t width, float* embedded, float* codes) override {
    const FsqTable table = MakeFsqTable(levels);
    const std::span<const FsqDim> dims(table.dims, table.count);
    const size_t code_dim = dims.size();
    pool_.ParallelFor(rows, RowsPerTask(width), [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        float* code = codes + r * code_dim;
        float* row = embedded + r * width;
        if (tokens[r] == kDroppedToken) {
          std::fill(code, code + code_dim, 0.0f);
          std::memcpy(row, mask, width * sizeof(float));
          continue;
        }
        auto rest = static_cast<uint32_t>(tokens[r]);
        for (size_t d = 0; d < code_dim; ++d) {
          const float half = static_cast<float>(dims[d].half_width);
          const float offset = offsets != nullptr ? offsets[r * code_dim + d] : 0.0f;
          code[d] = (static_cast<float>(rest % dims[d].levels) - half + offset) / half;
          rest /= dims[d].levels;
        }
        for (size_t i = 0; i < width; ++i) {
          float sum = 0;
          for (size_t d = 0; d < code_dim; ++d) sum += code[d] * code_w[i * code_dim + d];
          row[i] = sum + code_b[i];
        }
      }
    });
  }

  void AssembleTiles(const float* detail, const float* coarse, size_t count, const TileGeometry& g,
                     float* pixels) override {
    const size_t tile = g.tile, patch = g.patch, per_side = tile / patch, pool = g.pool;
    const size_t patch_dim = patch * patch * 3;
    const std::vector<BilinearTap> taps = BilinearTaps(pool, tile);
    pool_.ParallelFor(count * tile, 16, [&](size_t begin, size_t end) {
      for (size_t row = begin; row < end; ++row) {
        const size_t t = row / tile, y = row % tile;
        const float* low = coarse + t * pool * pool * 3;
        const BilinearTap& ty = taps[y];
        const float* detail_row =
            detail + (t * per_side + y / patch) * per_side * patch_dim + (y % patch) * patch * 3;
        float* out = pixels + row * tile * 3;
        for (size_t x = 0; x < tile; ++x) {
          const BilinearTap& tx = taps[x];
          const float* d = detail_row + (x / patch) * patch_dim + (x % patch) * 3;
          for (size_t c = 0; c < 3; ++c) {
            const float up = ty.w0 * tx.w0 * low[(ty.i0 * pool + tx.i0) * 3 + c] +
                             ty.w0 * tx.w1 * low[(ty.i0 * pool + tx.i1) * 3 + c] +
                             ty.w1 * tx.w0 * low[(ty.i1 * pool + tx.i0) * 3 + c] +
                             ty.w1 * tx.w1 * low[(ty.i1 * pool + tx.i1) * 3 + c];
            out[x * 3 + c] = 0.5f + d[c] + up;
          }
        }
      }
    });
  }

  void Unpatchify(const float* patches, size_t count, uint32_t side, uint32_t patch,
                  uint32_t channels, float* images) override {
    UnpatchifyImages(patches, count, side, patch, channels, false, images);
  }

  void Conv3x3(const float* x, size_t count, uint32_t height, uint32_t width, uint32_t in,
               const float* w, const float* b, uint32_t out, float* y, Epilogue epilogue) override {
    // The weights as [9·in, ldb] (a row per tap and input channel) and the bias padded to ldb.
    const size_t ldb = RoundUp(out, kLaneBlock), taps_in = 9 * size_t{in};
    std::vector<float> wt(taps_in * ldb, 0.0f), bias(ldb, 0.0f);
    for (size_t n = 0; n < out; ++n) {
      for (size_t k = 0; k < taps_in; ++k) wt[k * ldb + n] = w[n * taps_in + k];
      bias[n] = b[n];
    }
    const size_t pixels = size_t{height} * width, chunk = ConvChunkImages(height, width);
    const size_t padded_values = (size_t{height} + 2) * (size_t{width} + 2) * in;
    std::vector<float> padded(std::min(chunk, count) * padded_values);
    for (size_t first = 0; first < count; first += chunk) {
      const size_t images = std::min(chunk, count - first);
      pool_.ParallelFor(images, 1, [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
          PadImage(x + (first + i) * pixels * in, height, width, in,
                   padded.data() + i * padded_values);
        }
      });
      pool_.ParallelFor(images * height, 2, [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          const size_t image = r / height, row = r % height;
          ConvRowDispatch(padded.data() + image * padded_values, width, in, row, wt.data(), ldb,
                          bias.data(), out, epilogue,
                          y + ((first + image) * pixels + row * width) * out);
        }
      });
    }
  }

  void PixelShuffleAdd(const float* x, size_t count, uint32_t height, uint32_t width,
                       uint32_t channels, uint32_t factor, float* y) override {
    const size_t f = factor, out_width = size_t{width} * f, in_channels = channels * f * f;
    pool_.ParallelFor(count * height, 4, [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {  // r = image · height + i
        const size_t image = r / height, i = r % height;
        for (size_t j = 0; j < width; ++j) {
          const float* src = x + (r * width + j) * in_channels;
          for (size_t a = 0; a < f; ++a) {
            float* dst = y + ((image * height * f + i * f + a) * out_width + j * f) * channels;
            for (size_t bx = 0; bx < f; ++bx) {
              for (size_t c = 0; c < channels; ++c) {
                dst[bx * channels + c] += src[c * f * f + a * f + bx];
              }
            }
          }
        }
      }
    });
  }

  void Gelu(const float* x, size_t count, float* y) override {
    pool_.ParallelFor(count, 16384, [&](size_t begin, size_t end) {
      GeluRows(x + begin, end - begin, y + begin);
    });
  }

  // ---- gradients ----
  bool supports_backward() const override { return true; }

  void EmbedValues(const float* values, const uint32_t* keep, size_t count, size_t tokens,
                   size_t code_dim, const float* code_w, const float* code_b, const float* mask,
                   size_t width, float* embedded, float* codes) override {
    pool_.ParallelFor(count * tokens, RowsPerTask(width), [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        float* code = codes + r * code_dim;
        float* row = embedded + r * width;
        if (r % tokens >= keep[r / tokens]) {
          std::fill(code, code + code_dim, 0.0f);
          std::memcpy(row, mask, width * sizeof(float));
          continue;
        }
        std::memcpy(code, values + r * code_dim, code_dim * sizeof(float));
        for (size_t i = 0; i < width; ++i) {  // as EmbedTokens, for identical sums
          float sum = 0;
          for (size_t d = 0; d < code_dim; ++d) sum += code[d] * code_w[i * code_dim + d];
          row[i] = sum + code_b[i];
        }
      }
    });
  }

  void LinearBackwardInput(const float* dy, size_t rows, size_t out, const float* w, size_t in,
                           float* dx, bool accumulate) override {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int(rows), Int(in), Int(out), 1.0f, dy,
                Int(out), w, Int(in), accumulate ? 1.0f : 0.0f, dx, Int(in));
  }

  void GeluBackward(const float* x, const float* dy, size_t count, float* dx) override {
    pool_.ParallelFor(count, 16384, [&](size_t begin, size_t end) {
      GeluBackwardRows(x + begin, dy + begin, end - begin, dx + begin);
    });
  }

  void LayerNormBackward(const float* x, const float* dy, size_t rows, size_t width,
                         const float* gamma, float eps, float* dx, bool accumulate) override {
    pool_.ParallelFor(rows, RowsPerTask(width), [&](size_t begin, size_t end) {
      LayerNormBackwardRows(x + begin * width, dy + begin * width, end - begin, width, gamma, eps,
                            dx + begin * width, accumulate);
    });
  }

  void AttentionBackward(const float* qkv, const float* dout, size_t sequences, size_t length,
                         size_t heads, size_t head_dim, float* dqkv) override {
    const size_t width = heads * head_dim;
    pool_.ParallelFor(sequences * heads, 1, [&](size_t begin, size_t end) {
      // Kept per thread: allocating and zeroing it (two length² matrices) took as long as the
      // products of a head. Only the unpadded parts are ever written, so the padding stays 0.
      thread_local std::unique_ptr<AttentionBackwardScratch> scratch;
      if (scratch == nullptr || scratch->length != length || scratch->head_dim != head_dim) {
        scratch = std::make_unique<AttentionBackwardScratch>(length, head_dim);
      }
      for (size_t unit = begin; unit < end; ++unit) {
        const size_t offset = unit / heads * length;
        AttentionHeadBackward(qkv + offset * 3 * width, dout + offset * width, length, heads,
                              head_dim, unit % heads, dqkv + offset * 3 * width, *scratch);
      }
    });
  }

  void SliceSequencesBackward(const float* dout, size_t sequences, size_t length, size_t first,
                              size_t count, size_t width, float* din) override {
    pool_.ParallelFor(sequences, 1, [&](size_t begin, size_t end) {
      for (size_t s = begin; s < end; ++s) {
        float* sequence = din + s * length * width;
        std::fill(sequence, sequence + first * width, 0.0f);
        std::memcpy(sequence + first * width, dout + s * count * width,
                    count * width * sizeof(float));
        std::fill(sequence + (first + count) * width, sequence + length * width, 0.0f);
      }
    });
  }

  void PatchifyBackward(const float* dpatches, size_t count, uint32_t side, uint32_t patch,
                        float* dimages, bool accumulate) override {
    UnpatchifyImages(dpatches, count, side, patch, 3, accumulate, dimages);
  }

  void UnpatchifyBackward(const float* dimages, size_t count, uint32_t side, uint32_t patch,
                          uint32_t channels, float* dpatches) override {
    PatchifyImages(dimages, count, side, patch, channels, dpatches);
  }

  // g = dy·w ([pixels, out]·[out, 9·in]) holds every tap's contribution; Col2Im3x3 gathers
  // them into dx.
  void Conv3x3BackwardInput(const float* dy, size_t count, uint32_t height, uint32_t width,
                            uint32_t out, const float* w, uint32_t in, float* dx,
                            bool accumulate) override {
    const size_t pixels = size_t{height} * width, chunk = ConvChunkImages(height, width);
    const size_t row = 9 * size_t{in};
    std::vector<float> g(std::min(chunk, count) * pixels * row);
    for (size_t first = 0; first < count; first += chunk) {
      const size_t images = std::min(chunk, count - first);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int(images * pixels), Int(row),
                  Int(out), 1.0f, dy + first * pixels * out, Int(out), w, Int(row), 0.0f, g.data(),
                  Int(row));
      pool_.ParallelFor(images * height, 4, [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end;) {
          const size_t image = r / height, y0 = r % height;
          const size_t y1 = std::min<size_t>(height, y0 + (end - r));
          Col2Im3x3(g.data() + image * pixels * row, height, width, in, y0, y1,
                    dx + (first + image) * pixels * in, accumulate);
          r += y1 - y0;
        }
      });
    }
  }

  void PixelShuffleAddBackward(const float* dy, size_t count, uint32_t height, uint32_t width,
                               uint32_t channels, uint32_t factor, float* dx) override {
    const size_t f = factor, out_width = size_t{width} * f, in_channels = channels * f * f;
    pool_.ParallelFor(count * height, 4, [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        const size_t image = r / height, i = r % height;
        for (size_t j = 0; j < width; ++j) {
          float* dst = dx + (r * width + j) * in_channels;
          for (size_t a = 0; a < f; ++a) {
            const float* src =
                dy + ((image * height * f + i * f + a) * out_width + j * f) * channels;
            for (size_t bx = 0; bx < f; ++bx) {
              for (size_t c = 0; c < channels; ++c) {
                dst[c * f * f + a * f + bx] = src[bx * channels + c];
              }
            }
          }
        }
      }
    });
  }

  void AssembleTilesBackward(const float* dpixels, size_t count, const TileGeometry& g,
                             float* ddetail, float* dcoarse) override {
    const size_t tile = g.tile, pool = g.pool, tile_values = tile * tile * 3;
    const std::vector<BilinearTap> taps = BilinearTaps(pool, tile);
    pool_.ParallelFor(count, 1, [&](size_t begin, size_t end) {
      std::vector<float> columns(tile * pool * 3);  // dpixels reduced along x: [tile, pool, 3]
      for (size_t t = begin; t < end; ++t) {
        const float* grad = dpixels + t * tile_values;
        PatchifyImage(grad, tile, g.patch, ddetail + t * tile_values);
        std::fill(columns.begin(), columns.end(), 0.0f);
        for (size_t y = 0; y < tile; ++y) {
          for (size_t x = 0; x < tile; ++x) {
            const BilinearTap& tx = taps[x];
            for (size_t c = 0; c < 3; ++c) {
              const float v = grad[(y * tile + x) * 3 + c];
              columns[(y * pool + tx.i0) * 3 + c] += tx.w0 * v;
              columns[(y * pool + tx.i1) * 3 + c] += tx.w1 * v;
            }
          }
        }
        float* low = dcoarse + t * pool * pool * 3;
        std::fill(low, low + pool * pool * 3, 0.0f);
        for (size_t y = 0; y < tile; ++y) {
          const BilinearTap& ty = taps[y];
          for (size_t i = 0; i < pool * 3; ++i) {
            low[ty.i0 * pool * 3 + i] += ty.w0 * columns[y * pool * 3 + i];
            low[ty.i1 * pool * 3 + i] += ty.w1 * columns[y * pool * 3 + i];
          }
        }
      }
    });
  }

  void EmbedValuesBackward(const float* dembedded, const uint32_t* keep, size_t count,
                           size_t tokens, size_t code_dim, const float* code_w, size_t width,
                           float* dvalues, bool accumulate) override {
    pool_.ParallelFor(count * tokens, RowsPerTask(width), [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        float* grad = dvalues + r * code_dim;
        if (r % tokens >= keep[r / tokens]) {
          std::fill(grad, grad + code_dim, 0.0f);
          continue;
        }
        const float* dy = dembedded + r * width;
        for (size_t d = 0; d < code_dim; ++d) {
          float sum = accumulate ? grad[d] : 0.0f;
          for (size_t i = 0; i < width; ++i) sum += dy[i] * code_w[i * code_dim + d];
          grad[d] = sum;
        }
      }
    });
  }

 protected:
  void Free(void* data) override { std::free(data); }

 private:
  static blasint Int(size_t value) { return static_cast<blasint>(value); }
  // PatchifyImage / UnpatchifyImage over `count` images, an image per task: the data movement
  // of Patchify, Unpatchify and their backward passes.
  void PatchifyImages(const float* images, size_t count, size_t side, size_t patch, size_t channels,
                      float* patches) {
    const size_t image_values = side * side * channels;
    pool_.ParallelFor(count, 1, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        PatchifyImage(images + i * image_values, side, patch, patches + i * image_values, channels);
      }
    });
  }
  void UnpatchifyImages(const float* patches, size_t count, size_t side, size_t patch,
                        size_t channels, bool accumulate, float* images) {
    const size_t image_values = side * side * channels;
    pool_.ParallelFor(count, 1, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        UnpatchifyImage(patches + i * image_values, side, patch, images + i * image_values,
                        accumulate, channels);
      }
    });
  }

  // About 16k floats per task: enough work to pay for the hand-off.
  static size_t RowsPerTask(size_t width) {
    return std::max<size_t>(1, 16384 / std::max<size_t>(width, 1));
  }

  ThreadPool pool_;
  unsigned threads_;
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return std::make_unique<CpuBackend>(threads);
}

std::string OpenBlasCoreForThisCpu() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return {};
  // OpenBLAS's cores older than Haswell: what it falls back to on a CPU it does not know.
  static constexpr std::string_view kFallbacks[] = {
      "Unknown", "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge"};
  const std::string_view chosen = openblas_get_corename();
  if (std::find(std::begin(kFallbacks), std::end(kFallbacks), chosen) == std::end(kFallbacks)) {
    return {};
  }
  if (CpuHasAvx512()) return "SkylakeX";
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return {};
}

}  // namespace tok1d
