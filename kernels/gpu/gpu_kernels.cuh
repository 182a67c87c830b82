// The GPU kernels behind kernels/backend.h, in CUDA C++ for every vendor (gpu_compat.h). Each
// computes what the CPU reference (kernels/cpu/cpu_backend.cpp) computes, in float, in the
// same order where that is cheap (so results agree to rounding); see docs/gpu.md for the
// tolerances the tests hold them to.
//
// Portability rules: no warp-level operations (AMD wavefronts are 64 lanes, NVIDIA warps 32,
// and the host emulation has none), only block-wide barriers and shared memory; no early
// return before a __syncthreads; indices in unsigned (within a tensor) or size_t (offsets).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/fsq_table.h"
#include "kernels/gpu/gpu_compat.h"

namespace tok1d::TOK1D_GPU_NAMESPACE {

template <typename T>
__device__ __forceinline__ T Min(T a, T b) {
  return a < b ? a : b;
}

// ---- Linear: y = x·wᵀ + b with an epilogue ----
//
// A classic shared-memory tiled SGEMM for the "NT" layout both operands have here (x rows and
// w rows are contiguous along the reduction): each block computes a kTileRows × kTileCols
// tile of y in steps of kTileDepth, each thread an 8 × 4 sub-tile held in registers. The next
// step's operands are fetched into registers while the current step computes. Tiles are
// stored k-major (transposed) so the inner loop reads rows of 8 and 4 consecutive floats.
// 64 output columns divide every width of the default model (192, 576, 768, 3072).
//
// The same kernel computes LinearBackwardInput's dx = dy·w ("NN": the weights [out, in] read
// along their rows, WeightLayout::kReductionMajor), with no bias.
namespace linear {
constexpr unsigned kTileRows = 128;
constexpr unsigned kTileCols = 64;
constexpr unsigned kTileDepth = 16;
constexpr unsigned kThreads = 256;
constexpr unsigned kThreadRows = 8;  // outputs per thread: kThreadRows × kThreadCols
constexpr unsigned kThreadCols = 4;
constexpr unsigned kThreadsAcross = kTileCols / kThreadCols;  // 16
static_assert(kThreadsAcross * (kTileRows / kThreadRows) == kThreads);
constexpr unsigned kXLoads = kTileRows * kTileDepth / kThreads;  // per thread per step
constexpr unsigned kWLoads = kTileCols * kTileDepth / kThreads;
// Padding: the transposing stores of a warp then fall on different banks.
constexpr unsigned kPad = 4;
}  // namespace linear

__device__ __forceinline__ float GeluExact(float v) {
  return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}

// How LinearKernel's second operand holds W(c, k) (c: output column, k: reduction index):
// kOutputMajor, w[c·in + k] (Linear's weights [out, in]); kReductionMajor, w[k·out + c] (the
// weights of the forward operation as LinearBackwardInput reads them).
enum class WeightLayout { kOutputMajor, kReductionMajor };

// y[rows, out] (epilogue)= x[rows, in]·Wᵀ (+ b[out] unless b is null).
template <Epilogue kEpilogue, WeightLayout kLayout = WeightLayout::kOutputMajor>
__global__ void __launch_bounds__(linear::kThreads)
    LinearKernel(const float* __restrict__ x, unsigned rows, unsigned in,
                 const float* __restrict__ w, const float* __restrict__ b, unsigned out,
                 float* __restrict__ y) {
  using namespace linear;
  __shared__ float x_tile[kTileDepth][kTileRows + kPad];
  __shared__ float w_tile[kTileDepth][kTileCols + kPad];

  const unsigned thread = threadIdx.x;
  const unsigned row0 = blockIdx.y * kTileRows, col0 = blockIdx.x * kTileCols;
  const unsigned thread_row = thread / kThreadsAcross * kThreadRows;
  const unsigned thread_col = thread % kThreadsAcross * kThreadCols;

  // Element e of a step's tile is (e / kTileDepth, e % kTileDepth): consecutive threads read
  // consecutive floats of a row (coalesced); out-of-range elements read as 0.
  float x_next[kXLoads], w_next[kWLoads];
  auto fetch = [&](unsigned k0) {
    for (unsigned i = 0; i < kXLoads; ++i) {
      const unsigned e = thread + i * kThreads, r = row0 + e / kTileDepth, k = k0 + e % kTileDepth;
      x_next[i] = r < rows && k < in ? x[size_t{r} * in + k] : 0.0f;
    }
    for (unsigned i = 0; i < kWLoads; ++i) {
      const unsigned e = thread + i * kThreads;
      if constexpr (kLayout == WeightLayout::kOutputMajor) {
        const unsigned c = col0 + e / kTileDepth, k = k0 + e % kTileDepth;
        w_next[i] = c < out && k < in ? w[size_t{c} * in + k] : 0.0f;
      } else {  // consecutive threads read consecutive columns of a row of w
        const unsigned c = col0 + e % kTileCols, k = k0 + e / kTileCols;
        w_next[i] = c < out && k < in ? w[size_t{k} * out + c] : 0.0f;
      }
    }
  };
  auto store = [&]() {
    for (unsigned i = 0; i < kXLoads; ++i) {
      const unsigned e = thread + i * kThreads;
      x_tile[e % kTileDepth][e / kTileDepth] = x_next[i];
    }
    for (unsigned i = 0; i < kWLoads; ++i) {
      const unsigned e = thread + i * kThreads;
      if constexpr (kLayout == WeightLayout::kOutputMajor) {
        w_tile[e % kTileDepth][e / kTileDepth] = w_next[i];
      } else {
        w_tile[e / kTileCols][e % kTileCols] = w_next[i];
      }
    }
  };

  float acc[kThreadRows][kThreadCols] = {};
  fetch(0);
  store();
  __syncthreads();
  for (unsigned k0 = 0; k0 < in; k0 += kTileDepth) {
    const bool more = k0 + kTileDepth < in;
    if (more) fetch(k0 + kTileDepth);
#pragma unroll
    for (unsigned k = 0; k < kTileDepth; ++k) {
      float xs[kThreadRows], ws[kThreadCols];
#pragma unroll
      for (unsigned i = 0; i < kThreadRows; ++i) xs[i] = x_tile[k][thread_row + i];
#pragma unroll
      for (unsigned j = 0; j < kThreadCols; ++j) ws[j] = w_tile[k][thread_col + j];
#pragma unroll
      for (unsigned i = 0; i < kThreadRows; ++i) {
#pragma unroll
        for (unsigned j = 0; j < kThreadCols; ++j) acc[i][j] += xs[i] * ws[j];
      }
    }
    if (more) {  // the same for every thread of the block, so the barriers are uniform
      __syncthreads();
      store();
      __syncthreads();
    }
  }

  for (unsigned i = 0; i < kThreadRows; ++i) {
    const unsigned r = row0 + thread_row + i;
    if (r >= rows) break;
    for (unsigned j = 0; j < kThreadCols; ++j) {
      const unsigned c = col0 + thread_col + j;
      if (c >= out) break;
      float& target = y[size_t{r} * out + c];
      const float value = b != nullptr ? acc[i][j] + b[c] : acc[i][j];
      if constexpr (kEpilogue == Epilogue::kStore) target = value;
      if constexpr (kEpilogue == Epilogue::kGelu) target = GeluExact(value);
      if constexpr (kEpilogue == Epilogue::kAccumulate) target += value;
    }
  }
}

// ---- LayerNorm: kNormRowsPerBlock rows per block, kNormThreadsPerRow threads per row ----

constexpr unsigned kNormThreadsPerRow = 32;
constexpr unsigned kNormRowsPerBlock = 8;

// Sum of `value` over the kWidth threads that share `scratch` (lane < kWidth); every thread of
// the block must call it, since it synchronizes the block.
template <unsigned kWidth>
__device__ __forceinline__ float GroupSum(float value, float* scratch, unsigned lane) {
  scratch[lane] = value;
  __syncthreads();
  for (unsigned stride = kWidth / 2; stride > 0; stride /= 2) {
    if (lane < stride) scratch[lane] += scratch[lane + stride];
    __syncthreads();
  }
  const float total = scratch[0];
  __syncthreads();  // scratch is reused by the next call
  return total;
}

// The mean and 1/sqrt(variance + eps) of the row `in` (biased variance, two passes as the CPU),
// for the kNormThreadsPerRow threads of one row; `active` false for a row past the end (its
// threads still take part in the reductions). Every thread of the block must call it.
struct RowStatistics {
  float mean;
  float rstd;
};
__device__ __forceinline__ RowStatistics NormStatistics(const float* in, bool active,
                                                        unsigned width, float eps, float* scratch,
                                                        unsigned lane) {
  const float inv_width = 1.0f / static_cast<float>(width);
  float sum = 0.0f;
  if (active) {
    for (unsigned i = lane; i < width; i += kNormThreadsPerRow) sum += in[i];
  }
  const float mean = GroupSum<kNormThreadsPerRow>(sum, scratch, lane) * inv_width;
  float squares = 0.0f;
  if (active) {
    for (unsigned i = lane; i < width; i += kNormThreadsPerRow)
      squares += (in[i] - mean) * (in[i] - mean);
  }
  const float variance = GroupSum<kNormThreadsPerRow>(squares, scratch, lane) * inv_width;
  return {mean, 1.0f / sqrtf(variance + eps)};
}

__global__ void __launch_bounds__(kNormThreadsPerRow* kNormRowsPerBlock)
    LayerNormKernel(const float* __restrict__ x, unsigned rows, unsigned width,
                    const float* __restrict__ gamma, const float* __restrict__ beta, float eps,
                    float* __restrict__ y) {
  __shared__ float partial[kNormRowsPerBlock][kNormThreadsPerRow];
  const unsigned lane = threadIdx.x % kNormThreadsPerRow, slot = threadIdx.x / kNormThreadsPerRow;
  const unsigned row = blockIdx.x * kNormRowsPerBlock + slot;
  const bool active = row < rows;
  const float* in = x + size_t{active ? row : 0} * width;
  const auto [mean, rstd] = NormStatistics(in, active, width, eps, partial[slot], lane);
  if (active) {
    float* result = y + size_t{row} * width;
    for (unsigned i = lane; i < width; i += kNormThreadsPerRow) {
      result[i] = (in[i] - mean) * rstd * gamma[i] + beta[i];
    }
  }
}

// LayerNorm's backward pass, laid out as LayerNormKernel:
// dx (+)= rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·gamma and x̂ = (x − mean)·rstd, the
// mean and variance computed as the forward pass computes them.
__global__ void __launch_bounds__(kNormThreadsPerRow* kNormRowsPerBlock)
    LayerNormBackwardKernel(const float* __restrict__ x, const float* __restrict__ dy,
                            unsigned rows, unsigned width, const float* __restrict__ gamma,
                            float eps, bool accumulate, float* __restrict__ dx) {
  __shared__ float partial[kNormRowsPerBlock][kNormThreadsPerRow];
  const unsigned lane = threadIdx.x % kNormThreadsPerRow, slot = threadIdx.x / kNormThreadsPerRow;
  const unsigned row = blockIdx.x * kNormRowsPerBlock + slot;
  const bool active = row < rows;
  const float* in = x + size_t{active ? row : 0} * width;
  const float* grad = dy + size_t{active ? row : 0} * width;
  const float inv_width = 1.0f / static_cast<float>(width);
  const auto [mean, rstd] = NormStatistics(in, active, width, eps, partial[slot], lane);
  float g_sum = 0.0f, gx_sum = 0.0f;
  if (active) {
    for (unsigned i = lane; i < width; i += kNormThreadsPerRow) {
      const float g = grad[i] * gamma[i];
      g_sum += g;
      gx_sum += g * (in[i] - mean) * rstd;
    }
  }
  const float g_mean = GroupSum<kNormThreadsPerRow>(g_sum, partial[slot], lane) * inv_width;
  const float gx_mean = GroupSum<kNormThreadsPerRow>(gx_sum, partial[slot], lane) * inv_width;
  if (active) {
    float* result = dx + size_t{row} * width;
    for (unsigned i = lane; i < width; i += kNormThreadsPerRow) {
      const float value = rstd * (grad[i] * gamma[i] - g_mean - (in[i] - mean) * rstd * gx_mean);
      result[i] = accumulate ? result[i] + value : value;
    }
  }
}

// ---- Attention: one block per (block of kQueries queries, head, sequence) ----
//
// Flash-attention style: keys and values pass through shared memory in chunks of kKeys while
// each query keeps a running maximum, a running sum and its output in registers (online
// softmax), so the sequence length is not bounded by shared memory. kLanesPerQuery threads
// share a query: each scores a quarter of the chunk's keys and accumulates every
// kLanesPerQuery-th output dimension.
namespace attention {
constexpr unsigned kQueries = 32;
constexpr unsigned kKeys = 32;
constexpr unsigned kMaxHeadDim = 64;
constexpr unsigned kThreads = 256;
constexpr unsigned kLanesPerQuery = kThreads / kQueries;         // 8
constexpr unsigned kKeysPerLane = kKeys / kLanesPerQuery;        // 4
constexpr unsigned kDimsPerLane = kMaxHeadDim / kLanesPerQuery;  // 8
constexpr unsigned kPitch =
    kMaxHeadDim + 1;  // odd: lanes reading different rows hit different banks
}  // namespace attention

// Keys and values k0 … k0 + chunk − 1 of one head into shared memory (zeros after them), by
// all kThreads threads of the block; `base` points at the head's part of the sequence's first
// qkv row.
__device__ __forceinline__ void LoadKeysValues(const float* base, size_t row_stride, size_t width,
                                               unsigned head_dim, unsigned k0, unsigned chunk,
                                               float (*keys)[attention::kPitch],
                                               float (*values)[attention::kPitch]) {
  using namespace attention;
  for (unsigned e = threadIdx.x; e < kKeys * head_dim; e += kThreads) {
    const unsigned r = e / head_dim, d = e % head_dim;
    const float* row = base + (k0 + r) * row_stride;
    keys[r][d] = r < chunk ? row[width + d] : 0.0f;
    values[r][d] = r < chunk ? row[2 * width + d] : 0.0f;
  }
}

// Online softmax over one chunk of keys, called by every thread of the block (it holds a
// barrier): this lane's kKeysPerLane scores go into its query's row of the scores (−∞ past
// the chunk); once every lane has written, the row's maximum joins `running_max`. Returns
// exp(old maximum − new maximum), the factor the running sums take (0 on the first chunk).
__device__ __forceinline__ float ChunkMaximum(const float (&dots)[attention::kKeysPerLane],
                                              unsigned lane, unsigned chunk, float* row,
                                              float* running_max) {
  using namespace attention;
#pragma unroll
  for (unsigned m = 0; m < kKeysPerLane; ++m) {
    const unsigned j = lane + m * kLanesPerQuery;
    row[j] = j < chunk ? dots[m] : -INFINITY;
  }
  __syncthreads();
  float chunk_max = -INFINITY;
  for (unsigned j = 0; j < chunk; ++j) chunk_max = fmaxf(chunk_max, row[j]);
  const float new_max = fmaxf(*running_max, chunk_max);
  const float correction = expf(*running_max - new_max);
  *running_max = new_max;
  return correction;
}

__global__ void __launch_bounds__(attention::kThreads)
    AttentionKernel(const float* __restrict__ qkv, unsigned length, unsigned heads,
                    unsigned head_dim, float scale, float* __restrict__ out) {
  using namespace attention;
  __shared__ float queries[kQueries][kPitch];
  __shared__ float keys[kKeys][kPitch];
  __shared__ float values[kKeys][kPitch];
  __shared__ float scores[kQueries][kKeys + 1];
  __shared__ float sums[kQueries][kLanesPerQuery];

  const unsigned thread = threadIdx.x, query = thread / kLanesPerQuery,
                 lane = thread % kLanesPerQuery;
  const unsigned q0 = blockIdx.x * kQueries, head = blockIdx.y, sequence = blockIdx.z;
  const size_t width = size_t{heads} * head_dim, row_stride = 3 * width;
  const float* base = qkv + size_t{sequence} * length * row_stride + size_t{head} * head_dim;

  // The 1/sqrt(head_dim) scale is folded into the queries.
  for (unsigned e = thread; e < kQueries * head_dim; e += kThreads) {
    const unsigned r = e / head_dim, d = e % head_dim;
    queries[r][d] = q0 + r < length ? base[(q0 + r) * row_stride + d] * scale : 0.0f;
  }

  float running_max = -INFINITY, running_sum = 0.0f;
  float acc[kDimsPerLane] = {};
  for (unsigned k0 = 0; k0 < length; k0 += kKeys) {
    const unsigned chunk = Min(kKeys, length - k0);
    __syncthreads();  // the previous chunk is no longer read; the queries are stored
    LoadKeysValues(base, row_stride, width, head_dim, k0, chunk, keys, values);
    __syncthreads();

    float dots[kKeysPerLane] = {};
    for (unsigned d = 0; d < head_dim; ++d) {
      const float q = queries[query][d];
#pragma unroll
      for (unsigned m = 0; m < kKeysPerLane; ++m) dots[m] += q * keys[lane + m * kLanesPerQuery][d];
    }
    const float correction = ChunkMaximum(dots, lane, chunk, scores[query], &running_max);
    const float new_max = running_max;
    __syncthreads();  // every lane has read the scores before they become probabilities
    running_sum *= correction;
#pragma unroll
    for (unsigned m = 0; m < kKeysPerLane; ++m) {
      const unsigned j = lane + m * kLanesPerQuery;
      const float p = j < chunk ? expf(scores[query][j] - new_max) : 0.0f;
      scores[query][j] = p;
      running_sum += p;
    }
    __syncthreads();

#pragma unroll
    for (unsigned i = 0; i < kDimsPerLane; ++i) acc[i] *= correction;
    for (unsigned j = 0; j < chunk; ++j) {
      const float p = scores[query][j];
#pragma unroll
      for (unsigned i = 0; i < kDimsPerLane; ++i)
        acc[i] += p * values[j][lane + i * kLanesPerQuery];
    }
  }

  // Each lane summed the probabilities of its own keys, all under the same running maximum.
  sums[query][lane] = running_sum;
  __syncthreads();
  float total = 0.0f;
  for (unsigned l = 0; l < kLanesPerQuery; ++l) total += sums[query][l];
  if (q0 + query < length) {
    float* result =
        out + (size_t{sequence} * length + q0 + query) * width + size_t{head} * head_dim;
    for (unsigned i = 0; i < kDimsPerLane; ++i) {
      const unsigned d = lane + i * kLanesPerQuery;
      if (d < head_dim) result[d] = acc[i] / total;
    }
  }
}

// ---- Attention's backward pass: two kernels laid out as AttentionKernel ----
//
// With P = softmax(s·QKᵀ) (s = 1/sqrt(head_dim)), dP = dO·Vᵀ and D_i = Σ_j P_ij·dP_ij:
// dS = P ∘ (dP − D), dQ = s·dS·K, dK = s·dSᵀ·Q, dV = Pᵀ·dO. Neither P nor dP reaches memory.
// AttentionBackwardQueriesKernel (one block per 32 queries, head, sequence) passes over the keys
// twice: first for each query's softmax maximum and sum and D (online, as the forward pass),
// which it stores in `stats` (3 floats per query of each head), then for dQ. Then
// AttentionBackwardKeysKernel (one block per 32 keys, head, sequence) passes over the queries
// once, recomputing P and dS from `stats`, for dK and dV. Heads of up to kMaxHeadDim dimensions.
namespace attention {
constexpr unsigned kStats = 3;  // per query: the scores' maximum, 1 / Σ exp, D
}  // namespace attention

__global__ void __launch_bounds__(attention::kThreads)
    AttentionBackwardQueriesKernel(const float* __restrict__ qkv, const float* __restrict__ dout,
                                   unsigned length, unsigned heads, unsigned head_dim, float scale,
                                   float* __restrict__ stats, float* __restrict__ dqkv) {
  using namespace attention;
  __shared__ float queries[kQueries][kPitch];  // scaled by s
  __shared__ float grads[kQueries][kPitch];    // dO
  __shared__ float keys[kKeys][kPitch];
  __shared__ float values[kKeys][kPitch];
  __shared__ float scores[kQueries][kKeys + 1];
  __shared__ float sums[kQueries][kLanesPerQuery][2];

  const unsigned thread = threadIdx.x, query = thread / kLanesPerQuery,
                 lane = thread % kLanesPerQuery;
  const unsigned q0 = blockIdx.x * kQueries, head = blockIdx.y, sequence = blockIdx.z;
  const size_t width = size_t{heads} * head_dim, row_stride = 3 * width;
  const float* base = qkv + size_t{sequence} * length * row_stride + size_t{head} * head_dim;
  const float* grad_base = dout + size_t{sequence} * length * width + size_t{head} * head_dim;

  for (unsigned e = thread; e < kQueries * head_dim; e += kThreads) {
    const unsigned r = e / head_dim, d = e % head_dim;
    const bool valid = q0 + r < length;
    queries[r][d] = valid ? base[(q0 + r) * row_stride + d] * scale : 0.0f;
    grads[r][d] = valid ? grad_base[(q0 + r) * width + d] : 0.0f;
  }

  // Loads keys and values k0 … k0 + chunk − 1 (zeros after them), then computes the scores
  // and dP of this thread's query against its kKeysPerLane keys of the chunk.
  float dots[kKeysPerLane], dps[kKeysPerLane];
  auto chunk_products = [&](unsigned k0, unsigned chunk) {
    __syncthreads();  // the previous chunk is no longer read; the queries are stored
    LoadKeysValues(base, row_stride, width, head_dim, k0, chunk, keys, values);
    __syncthreads();
#pragma unroll
    for (unsigned m = 0; m < kKeysPerLane; ++m) dots[m] = dps[m] = 0.0f;
    for (unsigned d = 0; d < head_dim; ++d) {
      const float q = queries[query][d], g = grads[query][d];
#pragma unroll
      for (unsigned m = 0; m < kKeysPerLane; ++m) {
        dots[m] += q * keys[lane + m * kLanesPerQuery][d];
        dps[m] += g * values[lane + m * kLanesPerQuery][d];
      }
    }
  };

  // Pass 1: the maximum, Σ exp(score − max) and Σ exp(score − max)·dP, online.
  float running_max = -INFINITY, running_sum = 0.0f, running_dot = 0.0f;
  for (unsigned k0 = 0; k0 < length; k0 += kKeys) {
    const unsigned chunk = Min(kKeys, length - k0);
    chunk_products(k0, chunk);
    const float correction = ChunkMaximum(dots, lane, chunk, scores[query], &running_max);
    const float new_max = running_max;
    running_sum *= correction;
    running_dot *= correction;
#pragma unroll
    for (unsigned m = 0; m < kKeysPerLane; ++m) {
      if (lane + m * kLanesPerQuery < chunk) {
        const float p = expf(dots[m] - new_max);
        running_sum += p;
        running_dot += p * dps[m];
      }
    }
    // The next chunk_products' barrier keeps the scores until every lane has read them.
  }
  sums[query][lane][0] = running_sum;
  sums[query][lane][1] = running_dot;
  __syncthreads();
  float total = 0.0f, total_dot = 0.0f;
  for (unsigned l = 0; l < kLanesPerQuery; ++l) {
    total += sums[query][l][0];
    total_dot += sums[query][l][1];
  }
  const float inv_sum = 1.0f / total, d_term = total_dot * inv_sum;
  const bool valid = q0 + query < length;
  if (valid && lane == 0) {
    float* row_stats = stats + ((size_t{sequence} * heads + head) * length + q0 + query) * kStats;
    row_stats[0] = running_max;
    row_stats[1] = inv_sum;
    row_stats[2] = d_term;
  }

  // Pass 2: dQ = s·Σ_j dS_ij·K_j.
  float acc[kDimsPerLane] = {};
  for (unsigned k0 = 0; k0 < length; k0 += kKeys) {
    const unsigned chunk = Min(kKeys, length - k0);
    chunk_products(k0, chunk);
#pragma unroll
    for (unsigned m = 0; m < kKeysPerLane; ++m) {
      const unsigned j = lane + m * kLanesPerQuery;
      scores[query][j] =
          j < chunk ? expf(dots[m] - running_max) * inv_sum * (dps[m] - d_term) : 0.0f;
    }
    __syncthreads();
    for (unsigned j = 0; j < chunk; ++j) {
      const float ds = scores[query][j];
#pragma unroll
      for (unsigned i = 0; i < kDimsPerLane; ++i) acc[i] += ds * keys[j][lane + i * kLanesPerQuery];
    }
  }
  if (valid) {
    float* result =
        dqkv + (size_t{sequence} * length + q0 + query) * row_stride + size_t{head} * head_dim;
    for (unsigned i = 0; i < kDimsPerLane; ++i) {
      const unsigned d = lane + i * kLanesPerQuery;
      if (d < head_dim) result[d] = acc[i] * scale;
    }
  }
}

// dK and dV of kKeys keys: each thread has a key (thread / kLanesPerQuery) and, of each chunk
// of kQueries queries, every kLanesPerQuery-th one for the products, and every
// kLanesPerQuery-th dimension of the key's gradients.
__global__ void __launch_bounds__(attention::kThreads)
    AttentionBackwardKeysKernel(const float* __restrict__ qkv, const float* __restrict__ dout,
                                unsigned length, unsigned heads, unsigned head_dim, float scale,
                                const float* __restrict__ stats, float* __restrict__ dqkv) {
  using namespace attention;
  constexpr unsigned kQueriesPerLane = kQueries / kLanesPerQuery;
  __shared__ float keys[kKeys][kPitch];
  __shared__ float values[kKeys][kPitch];
  __shared__ float queries[kQueries][kPitch];  // scaled by s
  __shared__ float grads[kQueries][kPitch];    // dO
  __shared__ float probs[kKeys][kQueries + 1];
  __shared__ float dscores[kKeys][kQueries + 1];
  __shared__ float row_stats[kQueries][kStats];

  const unsigned thread = threadIdx.x, key = thread / kLanesPerQuery,
                 lane = thread % kLanesPerQuery;
  const unsigned k0 = blockIdx.x * kKeys, head = blockIdx.y, sequence = blockIdx.z;
  const size_t width = size_t{heads} * head_dim, row_stride = 3 * width;
  const float* base = qkv + size_t{sequence} * length * row_stride + size_t{head} * head_dim;
  const float* grad_base = dout + size_t{sequence} * length * width + size_t{head} * head_dim;
  const float* head_stats = stats + (size_t{sequence} * heads + head) * length * kStats;

  LoadKeysValues(base, row_stride, width, head_dim, k0, Min(kKeys, length - k0), keys, values);

  float grad_key[kDimsPerLane] = {}, grad_value[kDimsPerLane] = {};
  for (unsigned q0 = 0; q0 < length; q0 += kQueries) {
    const unsigned chunk = Min(kQueries, length - q0);
    __syncthreads();  // the previous chunk is no longer read; the keys are stored
    for (unsigned e = thread; e < kQueries * head_dim; e += kThreads) {
      const unsigned r = e / head_dim, d = e % head_dim;
      const bool inside = r < chunk;
      queries[r][d] = inside ? base[(q0 + r) * row_stride + d] * scale : 0.0f;
      grads[r][d] = inside ? grad_base[(q0 + r) * width + d] : 0.0f;
    }
    for (unsigned e = thread; e < kQueries * kStats; e += kThreads) {
      row_stats[e / kStats][e % kStats] = e / kStats < chunk ? head_stats[q0 * kStats + e] : 0.0f;
    }
    __syncthreads();
    float dots[kQueriesPerLane] = {}, dps[kQueriesPerLane] = {};
    for (unsigned d = 0; d < head_dim; ++d) {
      const float k = keys[key][d], v = values[key][d];
#pragma unroll
      for (unsigned m = 0; m < kQueriesPerLane; ++m) {
        dots[m] += queries[lane + m * kLanesPerQuery][d] * k;
        dps[m] += grads[lane + m * kLanesPerQuery][d] * v;
      }
    }
#pragma unroll
    for (unsigned m = 0; m < kQueriesPerLane; ++m) {
      const unsigned i = lane + m * kLanesPerQuery;
      const float p = i < chunk ? expf(dots[m] - row_stats[i][0]) * row_stats[i][1] : 0.0f;
      probs[key][i] = p;
      dscores[key][i] = p * (dps[m] - row_stats[i][2]);
    }
    __syncthreads();
    for (unsigned i = 0; i < chunk; ++i) {
      const float p = probs[key][i], ds = dscores[key][i];
#pragma unroll
      for (unsigned n = 0; n < kDimsPerLane; ++n) {
        const unsigned d = lane + n * kLanesPerQuery;
        grad_value[n] += p * grads[i][d];
        grad_key[n] += ds * queries[i][d];  // s·dS·Q, the queries being scaled
      }
    }
  }
  if (k0 + key < length) {
    float* result =
        dqkv + (size_t{sequence} * length + k0 + key) * row_stride + size_t{head} * head_dim;
    for (unsigned n = 0; n < kDimsPerLane; ++n) {
      const unsigned d = lane + n * kLanesPerQuery;
      if (d < head_dim) {
        result[width + d] = grad_key[n];
        result[2 * width + d] = grad_value[n];
      }
    }
  }
}

// ---- element-wise kernels: one thread per output value, grid-stride loops ----

#define TOK1D_GRID_STRIDE_LOOP(index, count)                                          \
  for (size_t index = size_t{blockIdx.x} * blockDim.x + threadIdx.x; index < (count); \
       index += size_t{gridDim.x} * blockDim.x)

__global__ void BuildSequencesKernel(RowSource head, RowSource tail, unsigned sequences,
                                     unsigned width, float* __restrict__ out) {
  const size_t length = head.count + tail.count, sequence_values = length * width;
  TOK1D_GRID_STRIDE_LOOP(index, sequences * sequence_values) {
    const size_t s = index / sequence_values, row = index % sequence_values / width,
                 col = index % width;
    const bool in_head = row < head.count;
    const RowSource& source = in_head ? head : tail;
    const size_t r = in_head ? row : row - head.count;
    float value = source.rows[s * source.sequence_stride + r * width + col];
    if (source.add != nullptr) value += source.add[r * width + col];
    out[index] = value;
  }
}

__global__ void SliceSequencesKernel(const float* __restrict__ in, unsigned sequences,
                                     unsigned length, unsigned first, unsigned count,
                                     unsigned width, float* __restrict__ out) {
  const size_t slice_values = size_t{count} * width;
  TOK1D_GRID_STRIDE_LOOP(index, sequences * slice_values) {
    const size_t s = index / slice_values, offset = index % slice_values;
    out[index] = in[(s * length + first) * width + offset];
  }
}

// The value a pixel has in the model: bytes (encoder input) as v/255 − 0.5, computed as the
// CPU computes it; floats (the decoder's coarse image) as they are.
__device__ __forceinline__ float PixelValue(uint8_t v) {
  return static_cast<float>(v) / 255.0f - 0.5f;
}
__device__ __forceinline__ float PixelValue(float v) { return v; }

// patches[i·N + p, (py, px, c)] = patch p of image i ([side, side, channels]), N = (side/patch)².
template <typename Pixel>
__global__ void PatchesKernel(const Pixel* __restrict__ images, unsigned count, unsigned side,
                              unsigned patch, unsigned channels, float* __restrict__ patches) {
  const unsigned per_side = side / patch, patch_row = patch * channels;
  const size_t patch_dim = size_t{patch} * patch_row, image_patches = size_t{per_side} * per_side;
  TOK1D_GRID_STRIDE_LOOP(index, count * image_patches * patch_dim) {
    const size_t i = index / (image_patches * patch_dim), p = index / patch_dim % image_patches;
    const size_t within = index % patch_dim;
    const size_t y = p / per_side * patch + within / patch_row;
    const size_t x = p % per_side * patch + within % patch_row / channels;
    patches[index] = PixelValue(images[((i * side + y) * side + x) * channels + within % channels]);
  }
}

// pooled[t, (py, px, c)] = mean of x over a (tile/pool)² block, summed in double as the CPU does.
__global__ void PoolKernel(const uint8_t* __restrict__ tiles, unsigned count, TileGeometry g,
                           float* __restrict__ pooled) {
  const unsigned factor = g.tile / g.pool;
  const size_t pooled_dim = size_t{g.pool} * g.pool * 3;
  TOK1D_GRID_STRIDE_LOOP(index, count * pooled_dim) {
    const size_t t = index / pooled_dim, c = index % 3;
    const size_t py = index % pooled_dim / 3 / g.pool, px = index % pooled_dim / 3 % g.pool;
    const uint8_t* tile = tiles + t * g.tile * g.tile * 3;
    double sum = 0;
    for (unsigned dy = 0; dy < factor; ++dy) {
      for (unsigned dx = 0; dx < factor; ++dx) {
        const uint8_t v = tile[((py * factor + dy) * g.tile + px * factor + dx) * 3 + c];
        sum += static_cast<double>(static_cast<float>(v) / 255.0f - 0.5f);
      }
    }
    pooled[index] = static_cast<float>(sum * (1.0 / static_cast<double>(factor * factor)));
  }
}

__global__ void FsqQuantizeKernel(const float* __restrict__ z, unsigned rows, FsqTable table,
                                  float* __restrict__ bounded, int32_t* __restrict__ tokens) {
  TOK1D_GRID_STRIDE_LOOP(r, rows) {
    uint32_t token = 0;
    for (unsigned d = 0; d < table.count; ++d) {
      const FsqDim& dim = table.dims[d];
      const float value = tanhf(z[r * table.count + d] + dim.shift) * dim.half_l - dim.offset;
      if (bounded != nullptr) bounded[r * table.count + d] = value;
      // rintf rounds half to even, as torch.round does.
      const float level = rintf(value) + static_cast<float>(dim.half_width);
      const float clamped = fminf(fmaxf(level, 0.0f), static_cast<float>(dim.levels - 1));
      token += static_cast<uint32_t>(clamped) * dim.basis;
    }
    tokens[r] = static_cast<int32_t>(token);
  }
}

// One thread per embedded value; the thread of column 0 also writes the row's codes.
__global__ void EmbedTokensKernel(const int32_t* __restrict__ tokens,
                                  const float* __restrict__ offsets, unsigned rows, FsqTable table,
                                  const float* __restrict__ code_w,
                                  const float* __restrict__ code_b, const float* __restrict__ mask,
                                  unsigned width, float* __restrict__ embedded,
                                  float* __restrict__ codes) {
  TOK1D_GRID_STRIDE_LOOP(index, size_t{rows} * width) {
    const size_t r = index / width, i = index % width;
    float* code = codes + r * table.count;
    if (tokens[r] == kDroppedToken) {
      embedded[index] = mask[i];
      if (i == 0) {
        for (unsigned d = 0; d < table.count; ++d) code[d] = 0.0f;
      }
      continue;
    }
    auto rest = static_cast<uint32_t>(tokens[r]);
    float sum = 0.0f;
    for (unsigned d = 0; d < table.count; ++d) {
      const FsqDim& dim = table.dims[d];
      const float half = static_cast<float>(dim.half_width);
      const float offset = offsets != nullptr ? offsets[r * table.count + d] : 0.0f;
      const float value = (static_cast<float>(rest % dim.levels) - half + offset) / half;
      rest /= dim.levels;
      if (i == 0) code[d] = value;
      sum += value * code_w[i * table.count + d];
    }
    embedded[index] = sum + code_b[i];
  }
}

// One axis of PyTorch's bilinear upsampling with align_corners=False (as the CPU's Tap).
struct BilinearTap {
  unsigned i0, i1;
  float w0, w1;
};

__device__ __forceinline__ BilinearTap MakeTap(unsigned out, unsigned pool, float scale) {
  const float src = fmaxf(scale * (static_cast<float>(out) + 0.5f) - 0.5f, 0.0f);
  const auto i0 = static_cast<unsigned>(src);
  const float w1 = fminf(fmaxf(src - static_cast<float>(i0), 0.0f), 1.0f);
  return {i0, i0 + (i0 < pool - 1 ? 1u : 0u), 1.0f - w1, w1};
}

// pixels[t, y, x, c] = 0.5 + detail (unpatchified) + bilinear(coarse).
__global__ void AssembleTilesKernel(const float* __restrict__ detail,
                                    const float* __restrict__ coarse, unsigned count,
                                    TileGeometry g, float* __restrict__ pixels) {
  const unsigned per_side = g.tile / g.patch, pool = g.pool;
  const size_t patch_dim = size_t{g.patch} * g.patch * 3, tile_values = size_t{g.tile} * g.tile * 3;
  const float scale = static_cast<float>(pool) / static_cast<float>(g.tile);
  TOK1D_GRID_STRIDE_LOOP(index, count * tile_values) {
    const size_t t = index / tile_values, c = index % 3;
    const auto y = static_cast<unsigned>(index % tile_values / 3 / g.tile);
    const auto x = static_cast<unsigned>(index % tile_values / 3 % g.tile);
    const BilinearTap ty = MakeTap(y, pool, scale), tx = MakeTap(x, pool, scale);
    const float* low = coarse + t * pool * pool * 3;
    const float up = ty.w0 * tx.w0 * low[(ty.i0 * pool + tx.i0) * 3 + c] +
                     ty.w0 * tx.w1 * low[(ty.i0 * pool + tx.i1) * 3 + c] +
                     ty.w1 * tx.w0 * low[(ty.i1 * pool + tx.i0) * 3 + c] +
                     ty.w1 * tx.w1 * low[(ty.i1 * pool + tx.i1) * 3 + c];
    const float d =
        detail[(t * per_side + y / g.patch) * per_side * patch_dim + (y % g.patch) * g.patch * 3 +
               (x / g.patch) * patch_dim + (x % g.patch) * 3 + c];
    pixels[index] = 0.5f + d + up;
  }
}

// ---- the convolutional pixel head ----

// images[i, y, x, c] (channels-last, `channels` channels) (+)= patch (y/patch, x/patch) of
// image i, value ((y % patch)·patch + x % patch)·channels + c: the inverse of PatchesKernel.
__global__ void UnpatchifyKernel(const float* __restrict__ patches, unsigned count, unsigned side,
                                 unsigned patch, unsigned channels, bool accumulate,
                                 float* __restrict__ images) {
  const unsigned per_side = side / patch;
  const size_t patch_dim = size_t{patch} * patch * channels;
  const size_t image_values = size_t{side} * side * channels;
  TOK1D_GRID_STRIDE_LOOP(index, count * image_values) {
    const size_t i = index / image_values, c = index % channels;
    const size_t y = index % image_values / channels / side;
    const size_t x = index % image_values / channels % side;
    const size_t p = (i * per_side + y / patch) * per_side + x / patch;
    const float value = patches[p * patch_dim + ((y % patch) * patch + x % patch) * channels + c];
    images[index] = accumulate ? images[index] + value : value;
  }
}

// y[n, f·i + a, f·j + b, c] += x[n, i, j, c·f² + a·f + b]: one thread per value of y.
__global__ void PixelShuffleAddKernel(const float* __restrict__ x, unsigned count, unsigned height,
                                      unsigned width, unsigned channels, unsigned factor,
                                      float* __restrict__ y) {
  const size_t out_width = size_t{width} * factor;
  const size_t image_values = size_t{height} * factor * out_width * channels;
  const size_t in_channels = size_t{channels} * factor * factor;
  TOK1D_GRID_STRIDE_LOOP(index, count * image_values) {
    const size_t n = index / image_values, c = index % channels;
    const size_t row = index % image_values / channels / out_width;
    const size_t col = index % image_values / channels % out_width;
    const size_t pixel = (n * height + row / factor) * width + col / factor;
    y[index] += x[pixel * in_channels + (c * factor + row % factor) * factor + col % factor];
  }
}

// Exact GELU, element-wise; y may alias x (each thread reads its value before writing it).
__global__ void GeluKernel(const float* x, size_t count, float* y) {
  TOK1D_GRID_STRIDE_LOOP(index, count) { y[index] = GeluExact(x[index]); }
}

// ---- element-wise kernels of the backward pass ----

// EmbedValues: EmbedTokensKernel with the codes given (rows past keep[tile] are dropped).
__global__ void EmbedValuesKernel(const float* __restrict__ values,
                                  const uint32_t* __restrict__ keep, unsigned rows, unsigned tokens,
                                  unsigned code_dim, const float* __restrict__ code_w,
                                  const float* __restrict__ code_b, const float* __restrict__ mask,
                                  unsigned width, float* __restrict__ embedded,
                                  float* __restrict__ codes) {
  TOK1D_GRID_STRIDE_LOOP(index, size_t{rows} * width) {
    const size_t r = index / width, i = index % width;
    float* code = codes + r * code_dim;
    if (r % tokens >= keep[r / tokens]) {
      embedded[index] = mask[i];
      if (i == 0) {
        for (unsigned d = 0; d < code_dim; ++d) code[d] = 0.0f;
      }
      continue;
    }
    const float* value = values + r * code_dim;
    float sum = 0.0f;
    for (unsigned d = 0; d < code_dim; ++d) {
      if (i == 0) code[d] = value[d];
      sum += value[d] * code_w[i * code_dim + d];
    }
    embedded[index] = sum + code_b[i];
  }
}

// dvalues[r, d] (+)= Σ_i dembedded[r, i]·code_w[i, d] for kept rows, 0 for dropped ones.
__global__ void EmbedValuesBackwardKernel(const float* __restrict__ dembedded,
                                          const uint32_t* __restrict__ keep, unsigned rows,
                                          unsigned tokens, unsigned code_dim,
                                          const float* __restrict__ code_w, unsigned width,
                                          bool accumulate, float* __restrict__ dvalues) {
  TOK1D_GRID_STRIDE_LOOP(index, size_t{rows} * code_dim) {
    const size_t r = index / code_dim, d = index % code_dim;
    if (r % tokens >= keep[r / tokens]) {
      dvalues[index] = 0.0f;
      continue;
    }
    const float* grad = dembedded + r * width;
    float sum = accumulate ? dvalues[index] : 0.0f;
    for (unsigned i = 0; i < width; ++i) sum += grad[i] * code_w[i * code_dim + d];
    dvalues[index] = sum;
  }
}

// dx = dy·gelu′(x), gelu′(x) = Φ(x) + x·φ(x); dx may alias dy (each thread reads its values
// before writing).
__global__ void GeluBackwardKernel(const float* x, const float* dy, size_t count, float* dx) {
  constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;
  TOK1D_GRID_STRIDE_LOOP(index, count) {
    const float v = x[index];
    const float u = v * kInvSqrt2;
    const float cdf = 0.5f * (1.0f + erff(u));
    const float pdf = kInvSqrt2Pi * expf(-u * u);
    dx[index] = dy[index] * (cdf + v * pdf);
  }
}

// din[s] (sequences × length rows): rows first … first + count − 1 from dout[s], the rest 0.
__global__ void SliceSequencesBackwardKernel(const float* __restrict__ dout, unsigned sequences,
                                             unsigned length, unsigned first, unsigned count,
                                             unsigned width, float* __restrict__ din) {
  const size_t sequence_values = size_t{length} * width;
  TOK1D_GRID_STRIDE_LOOP(index, sequences * sequence_values) {
    const size_t s = index / sequence_values, row = index % sequence_values / width,
                 col = index % width;
    din[index] =
        row >= first && row < first + count ? dout[(s * count + row - first) * width + col] : 0.0f;
  }
}

// dx[n, i, j, c·f² + a·f + b] = dy[n, f·i + a, f·j + b, c]: one thread per value of dx.
__global__ void PixelShuffleAddBackwardKernel(const float* __restrict__ dy, unsigned count,
                                              unsigned height, unsigned width, unsigned channels,
                                              unsigned factor, float* __restrict__ dx) {
  const size_t out_width = size_t{width} * factor;
  const size_t in_channels = size_t{channels} * factor * factor;
  TOK1D_GRID_STRIDE_LOOP(index, size_t{count} * height * width * in_channels) {
    const size_t pixel = index / in_channels, k = index % in_channels;
    const size_t c = k / (factor * factor), a = k / factor % factor, b = k % factor;
    const size_t n = pixel / (size_t{height} * width), i = pixel / width % height,
                 j = pixel % width;
    dx[index] =
        dy[((n * height * factor + i * factor + a) * out_width + j * factor + b) * channels + c];
  }
}

// dcoarse[t, py, px, c] = Σ over the tile's pixels of their bilinear weight for (py, px) times
// dpixels: the adjoint of AssembleTilesKernel's upsampling. Summed as the CPU sums it, along x
// within a row, then the rows in order; only the pixels within two coarse cells are visited.
__global__ void UpsampleBackwardKernel(const float* __restrict__ dpixels, unsigned count,
                                       TileGeometry g, float* __restrict__ dcoarse) {
  const unsigned pool = g.pool, factor = g.tile / g.pool;
  const size_t pooled_dim = size_t{pool} * pool * 3, tile_values = size_t{g.tile} * g.tile * 3;
  const float scale = static_cast<float>(pool) / static_cast<float>(g.tile);
  TOK1D_GRID_STRIDE_LOOP(index, count * pooled_dim) {
    const size_t t = index / pooled_dim, c = index % 3;
    const auto py = static_cast<unsigned>(index % pooled_dim / 3 / pool);
    const auto px = static_cast<unsigned>(index % pooled_dim / 3 % pool);
    const float* grad = dpixels + t * tile_values;
    // Pixels whose taps reach cell p lie within [(p − 2)·factor, (p + 3)·factor).
    const unsigned y_begin = py >= 2 ? (py - 2) * factor : 0,
                   y_end = Min(g.tile, (py + 3) * factor);
    const unsigned x_begin = px >= 2 ? (px - 2) * factor : 0,
                   x_end = Min(g.tile, (px + 3) * factor);
    float sum = 0.0f;
    for (unsigned y = y_begin; y < y_end; ++y) {
      const BilinearTap ty = MakeTap(y, pool, scale);
      if (ty.i0 != py && ty.i1 != py) continue;
      float column = 0.0f;
      for (unsigned x = x_begin; x < x_end; ++x) {
        const BilinearTap tx = MakeTap(x, pool, scale);
        const float v = grad[(size_t{y} * g.tile + x) * 3 + c];
        if (tx.i0 == px) column += tx.w0 * v;
        if (tx.i1 == px) column += tx.w1 * v;
      }
      if (ty.i0 == py) sum += ty.w0 * column;
      if (ty.i1 == py) sum += ty.w1 * column;
    }
    dcoarse[index] = sum;
  }
}

#undef TOK1D_GRID_STRIDE_LOOP

// ---- Conv3x3: y = conv3x3(x) + b, zero padding 1, with an epilogue ----
//
// One block per (kSide × kSide pixels of one image, kOutputs output channels), one thread per
// pixel holding its kOutputs sums in registers. The input channels pass through shared memory
// in chunks of kChunk: the block's pixels with a one-pixel halo (zeros outside the image and
// past `in`), stored channel-major so that neighbouring threads read neighbouring words, and
// the chunk's weights for the block's output channels, stored [tap][channel][output] so that a
// thread reads its kOutputs weights as consecutive (broadcast) words. Each output sums its
// 9 · in products chunk by chunk, within a chunk tap by tap (ky, kx) and input channel by input
// channel (another order than the CPU's: results agree to rounding), then adds the bias.
//
// With kAdjoint the same kernel computes Conv3x3BackwardInput's transposed convolution: x is
// dy (`in` = the forward operation's out channels), y is dx (`out` = its in channels), and
// dx[q, i] = Σ over the taps (ky, kx) and channels o of dy[q + (ky − 1, kx − 1), o] ·
// w[o, 2 − ky, 2 − kx, i] (the kernel flipped, its channels swapped), with no bias.
namespace conv3x3 {
constexpr unsigned kSide = 16;
constexpr unsigned kThreads = kSide * kSide;
constexpr unsigned kHalo = kSide + 2;
constexpr unsigned kChunk = 8;
constexpr unsigned kOutputs = 16;
// A thread's weights for one tap and input channel, aligned so that a GPU reads them as float4s.
struct alignas(16) WeightRow {
  float v[kOutputs];
};
}  // namespace conv3x3

template <Epilogue kEpilogue, bool kAdjoint = false>
__global__ void __launch_bounds__(conv3x3::kThreads)
    Conv3x3Kernel(const float* __restrict__ x, unsigned height, unsigned width, unsigned in,
                  const float* __restrict__ w, const float* __restrict__ b, unsigned out,
                  float* __restrict__ y) {
  using namespace conv3x3;
  __shared__ float pixels[kChunk][kHalo][kHalo];
  __shared__ WeightRow weights[9][kChunk];

  const unsigned tiles_across = (width + kSide - 1) / kSide;
  const unsigned tiles_down = (height + kSide - 1) / kSide;
  const unsigned image = blockIdx.x / (tiles_across * tiles_down);
  const unsigned tile = blockIdx.x % (tiles_across * tiles_down);
  const unsigned row0 = tile / tiles_across * kSide, col0 = tile % tiles_across * kSide;
  const unsigned o0 = blockIdx.y * kOutputs;
  const unsigned thread = threadIdx.x, ty = thread / kSide, tx = thread % kSide;
  const float* source = x + size_t{image} * height * width * in;

  float acc[kOutputs] = {};
  for (unsigned c0 = 0; c0 < in; c0 += kChunk) {
    __syncthreads();  // the previous chunk is no longer read
    // Element e of the halo is (pixel e / kChunk, channel e % kChunk): consecutive threads
    // read consecutive channels of a pixel.
    for (unsigned e = thread; e < kHalo * kHalo * kChunk; e += kThreads) {
      const unsigned c = e % kChunk, hy = e / kChunk / kHalo, hx = e / kChunk % kHalo;
      const unsigned r = row0 + hy, q = col0 + hx;  // the image's (r − 1, q − 1)
      const bool inside = r >= 1 && r <= height && q >= 1 && q <= width && c0 + c < in;
      pixels[c][hy][hx] = inside ? source[(size_t{r - 1} * width + q - 1) * in + c0 + c] : 0.0f;
    }
    for (unsigned e = thread; e < kOutputs * 9 * kChunk; e += kThreads) {
      const unsigned c = e % kChunk, tap = e / kChunk % 9, o = e / kChunk / 9;
      const bool inside = o0 + o < out && c0 + c < in;
      if constexpr (kAdjoint) {
        weights[tap][c].v[o] = inside ? w[(size_t{c0 + c} * 9 + 8 - tap) * out + o0 + o] : 0.0f;
      } else {
        weights[tap][c].v[o] = inside ? w[(size_t{o0 + o} * 9 + tap) * in + c0 + c] : 0.0f;
      }
    }
    __syncthreads();
    for (unsigned ky = 0; ky < 3; ++ky) {
      for (unsigned kx = 0; kx < 3; ++kx) {
#pragma unroll
        for (unsigned c = 0; c < kChunk; ++c) {
          const float v = pixels[c][ty + ky][tx + kx];
          const float* tap_weights = weights[ky * 3 + kx][c].v;
#pragma unroll
          for (unsigned o = 0; o < kOutputs; ++o) acc[o] += v * tap_weights[o];
        }
      }
    }
  }

  const unsigned row = row0 + ty, col = col0 + tx;
  if (row < height && col < width) {
    float* target = y + ((size_t{image} * height + row) * width + col) * out;
    for (unsigned o = 0; o < kOutputs && o0 + o < out; ++o) {
      const float value = b != nullptr ? acc[o] + b[o0 + o] : acc[o];
      if constexpr (kEpilogue == Epilogue::kStore) target[o0 + o] = value;
      if constexpr (kEpilogue == Epilogue::kGelu) target[o0 + o] = GeluExact(value);
      if constexpr (kEpilogue == Epilogue::kAccumulate) target[o0 + o] += value;
    }
  }
}

// Writes `value` so that Create can check the device runs this binary's kernels at all.
__global__ void ProbeKernel(int* flag, int value) { *flag = value; }

}  // namespace tok1d::TOK1D_GPU_NAMESPACE
