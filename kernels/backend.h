// The compute backend interface, in the manner of ggml's: the tokenizer's forward pass
// (codec/tokenizer.cpp) is written once against these operations, and each backend (the CPU
// reference in kernels/cpu/, GPU backends beside it) implements them.
//
// Conventions:
//  - Pointers passed to operations are in the backend's address space (device memory for a GPU
//    backend) and come from Allocate() or UploadConstant(). Host data crosses only through
//    CopyToDevice / CopyToHost.
//  - Matrices are row-major and contiguous; a "sequence" is a run of rows of one tile.
//  - Operations may run asynchronously. They do not report errors themselves: a backend keeps
//    the first failure and returns it from the next Synchronize() / CopyToHost(), after which the
//    outputs are undefined and must not be used.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fsq_codebook.h"
#include "tok1d/status.h"

namespace tok1d {

class Backend;

// Memory in a backend's address space, released when destroyed. A buffer made by
// UploadConstant on the CPU backend is a view of the host data and owns nothing.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* owner, void* data, size_t bytes)
      : owner_(owner), data_(data), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Release(); }

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void Release();
  Backend* owner_ = nullptr;  // null: a view, nothing to free
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// What y receives in Linear.
enum class Epilogue {
  kStore,       // y  = x·wᵀ + b
  kGelu,        // y  = gelu(x·wᵀ + b), exact (erf) GELU
  kAccumulate,  // y += x·wᵀ + b (the residual connection)
};

// FSQ quantizer levels (those of an FsqCodebook, common/fsq_codebook.h), small enough to pass
// by value to a kernel.
struct FsqLevels {
  static constexpr size_t kMaxDims = kFsqMaxDims;
  std::array<uint32_t, kMaxDims> levels{};
  uint32_t dims = 0;

  std::span<const uint32_t> used() const { return std::span<const uint32_t>(levels).first(dims); }
};

// The levels of `codebook`, which has at most FsqLevels::kMaxDims dimensions.
inline FsqLevels MakeFsqLevels(const FsqCodebook& codebook) {
  FsqLevels levels;
  levels.dims = codebook.dims();
  std::copy(codebook.levels().begin(), codebook.levels().end(), levels.levels.begin());
  return levels;
}

// Sizes of a tile and its parts, in pixels (tile % patch == 0, tile % pool == 0).
struct TileGeometry {
  uint32_t tile = 0;
  uint32_t patch = 0;
  uint32_t pool = 0;
};

// One part of a sequence in BuildSequences: `count` rows of `width`, either the same rows for
// every sequence (sequence_stride 0) or per sequence (row block s starts at rows + s·stride),
// plus optional rows `add` (e.g. position embeddings) shared by all sequences.
struct RowSource {
  const float* rows = nullptr;
  size_t count = 0;
  size_t sequence_stride = 0;  // in floats
  const float* add = nullptr;  // [count, width] or null
};

// A token value that means "dropped": the decoder sees the mask token instead.
inline constexpr int32_t kDroppedToken = -1;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;    // "cpu", "cuda", …
  virtual std::string description() const = 0;  // for -v output: device, threads, library
  // Tiles per Tokenizer batch that keep this backend busy (CodecOptions::max_batch_tiles 0
  // picks it): a few saturate the CPU's cores, a GPU needs hundreds.
  virtual size_t preferred_batch_tiles() const { return 32; }

  // ---- memory ----
  virtual StatusOr<DeviceBuffer> Allocate(size_t bytes) = 0;
  // Makes read-only host data (the weights) available to kernels for the buffer's lifetime;
  // the host data must outlive the buffer (the CPU backend uses it in place).
  virtual StatusOr<DeviceBuffer> UploadConstant(std::span<const uint8_t> host) = 0;
  virtual Status CopyToDevice(void* device, const void* host, size_t bytes) = 0;
  // Waits for all queued work, then copies; returns a pending error instead, if any.
  virtual Status CopyToHost(void* host, const void* device, size_t bytes) = 0;
  virtual Status Synchronize() = 0;

  // ---- operations ----
  // y[rows, out] = x[rows, in] · w[out, in]ᵀ + b[out], with `epilogue`. y must not alias x.
  virtual void Linear(const float* x, size_t rows, size_t in, const float* w, const float* b,
                      size_t out, float* y, Epilogue epilogue) = 0;

  // y[r] = (x[r] − mean) / sqrt(var + eps) · gamma + beta over rows of `width` (biased var).
  virtual void LayerNorm(const float* x, size_t rows, size_t width, const float* gamma,
                         const float* beta, float eps, float* y) = 0;

  // Multi-head softmax attention, fused. qkv holds `sequences` × `length` rows of
  // [q | k | v], each heads × head_dim (PyTorch reshape(…, 3, heads, head_dim)); out[row] is
  // the heads' outputs side by side, [heads × head_dim]. Scores are scaled by 1/sqrt(head_dim).
  virtual void Attention(const float* qkv, size_t sequences, size_t length, size_t heads,
                         size_t head_dim, float* out) = 0;

  // out[s] = [head rows (+ head.add) ; tail rows (+ tail.add)] for s < sequences.
  virtual void BuildSequences(const RowSource& head, const RowSource& tail, size_t sequences,
                              size_t width, float* out) = 0;

  // out[s] = rows first … first+count−1 of sequence s of `in` (sequences × length rows).
  virtual void SliceSequences(const float* in, size_t sequences, size_t length, size_t first,
                              size_t count, size_t width, float* out) = 0;

  // Encoder input. tiles: `count` RGB8 tiles [tile, tile, 3]. x = v/255 − 0.5;
  // patches[count · N, patch²·3] in (py, px, c) order, N patches in raster order;
  // pooled[count, pool²·3] = x averaged over (tile/pool)² blocks, (y, x, c) order.
  virtual void PatchifyTiles(const uint8_t* tiles, size_t count, const TileGeometry& geometry,
                             float* patches, float* pooled) = 0;

  // images: `count` float RGB images [side, side, 3] → patches[count · (side/patch)², patch²·3]
  // in (py, px, c) order, patches in raster order (side % patch == 0).
  virtual void Patchify(const float* images, size_t count, uint32_t side, uint32_t patch,
                        float* patches) = 0;

  // FSQ on rows of levels.dims values: bounded = tanh(z + shift)·half_l − offset, rounded half
  // to even, token = Σ_d (q_d + ⌊L_d/2⌋)·Π_{e<d} L_e. `bounded` may be null.
  virtual void FsqQuantize(const float* z, size_t rows, const FsqLevels& levels, float* bounded,
                           int32_t* tokens) = 0;

  // Decoder input. For each of `rows` tokens: codes[row, dims] = (digit − ⌊L/2⌋ + offset)/⌊L/2⌋
  // and embedded[row, width] = code_w[width, dims]·codes + code_b; a kDroppedToken gets codes 0
  // and embedded = mask. offsets[row, dims] (refinement: where in its quantization cell the
  // value lies, in levels, within ±0.5) may be null: all 0.
  virtual void EmbedTokens(const int32_t* tokens, const float* offsets, size_t rows,
                           const FsqLevels& levels, const float* code_w, const float* code_b,
                           const float* mask, size_t width, float* embedded, float* codes) = 0;

  // Decoder output. pixels[count, tile, tile, 3] = 0.5 + unpatchify(detail) +
  // bilinear_upsample(coarse) with detail [count · N, patch²·3] and coarse [count, pool²·3]
  // (PyTorch align_corners=False semantics). Values are not clamped.
  virtual void AssembleTiles(const float* detail, const float* coarse, size_t count,
                             const TileGeometry& geometry, float* pixels) = 0;

  // ---- the convolutional pixel head (models/tok1d_model.py, config "conv_head") ----
  // Feature maps are channels-last: [count, height, width, channels], row-major.

  // The inverse of Patchify for `channels` channels: images[count, side, side, channels] from
  // patches[count · (side/patch)², patch²·channels] in (py, px, c) order, patches in raster
  // order (side % patch == 0).
  virtual void Unpatchify(const float* patches, size_t count, uint32_t side, uint32_t patch,
                          uint32_t channels, float* images) = 0;

  // y[count, height, width, out] = conv3x3(x[count, height, width, in]) + b[out], stride 1,
  // zero padding 1 (nn.Conv2d(in, out, 3, padding=1)), with `epilogue` as in Linear. w is
  // [out, 3, 3, in] (PyTorch's [out, in, 3, 3] with the input channel last: codec/model.cpp
  // reorders it when loading). y must not alias x.
  virtual void Conv3x3(const float* x, size_t count, uint32_t height, uint32_t width, uint32_t in,
                       const float* w, const float* b, uint32_t out, float* y,
                       Epilogue epilogue) = 0;

  // y[count, f·height, f·width, channels] += pixel_shuffle(x, f) for x[count, height, width,
  // channels·f²]: y[n, f·i + a, f·j + b, c] += x[n, i, j, c·f² + a·f + b] (F.pixel_shuffle's
  // channel order).
  virtual void PixelShuffleAdd(const float* x, size_t count, uint32_t height, uint32_t width,
                               uint32_t channels, uint32_t factor, float* y) = 0;

  // Gelu: y[count] = gelu(x), exact (erf) GELU, as Linear's kGelu epilogue applies it (fc1 with
  // kStore, then Gelu, equals fc1 with kGelu). y may alias x.
  virtual void Gelu(const float* x, size_t count, float* y) = 0;

  // ---- gradients (the decoder's backward pass, codec/tokenizer.h DecodeValuesBackward) ----
  // Gradients with respect to the operations' inputs only, never their weights. A backend that
  // implements every operation of this section returns true here; the defaults below are
  // precondition violations that abort, so callers check supports_backward() first. Where an
  // operation has `accumulate`, false stores its result in the output and true adds it.
  virtual bool supports_backward() const { return false; }

  // Forward operations the backward pass needs besides those above.
  //
  // EmbedValues, EmbedTokens for continuous codes: values[count · tokens, code_dim], of which the
  // first keep[t] rows of tile t are kept (keep: `count` values in backend memory, each ≤ tokens).
  // codes = values for kept rows, 0 for the others; embedded = code_w·codes + code_b for kept
  // rows, mask for the others (the same arithmetic as EmbedTokens).
  virtual void EmbedValues(const float* values, const uint32_t* keep, size_t count, size_t tokens,
                           size_t code_dim, const float* code_w, const float* code_b,
                           const float* mask, size_t width, float* embedded, float* codes);

  // Backward operations. Each takes the gradient of the forward operation's output ("dy") and
  // writes that of its input ("dx").
  //
  // Linear: dx[rows, in] (+)= dy[rows, out] · w[out, in]. dx must not alias dy.
  virtual void LinearBackwardInput(const float* dy, size_t rows, size_t out, const float* w,
                                   size_t in, float* dx, bool accumulate);

  // Gelu: dx[count] = dy · gelu′(x), x the pre-activation. dx may alias dy.
  virtual void GeluBackward(const float* x, const float* dy, size_t count, float* dx);

  // LayerNorm (x: the forward input; beta plays no part): dx (+)= ∂(Σ dy·y)/∂x per row.
  // dx must not alias x or dy.
  virtual void LayerNormBackward(const float* x, const float* dy, size_t rows, size_t width,
                                 const float* gamma, float eps, float* dx, bool accumulate);

  // Attention: dqkv[sequences · length, 3 · heads · head_dim] (stored, the layout of qkv) from
  // dout (the layout of out); the softmax is recomputed from qkv.
  virtual void AttentionBackward(const float* qkv, const float* dout, size_t sequences,
                                 size_t length, size_t heads, size_t head_dim, float* dqkv);

  // SliceSequences: din[s] (sequences × length rows, stored) is zero except rows first …
  // first+count−1, which are dout[s]. The adjoint of BuildSequences is SliceSequences itself:
  // the gradient of the head (tail) rows of sequence s is the slice of its first head.count
  // (last tail.count) rows.
  virtual void SliceSequencesBackward(const float* dout, size_t sequences, size_t length,
                                      size_t first, size_t count, size_t width, float* din);

  // Patchify: dimages[count, side, side, 3] (+)= unpatchify(dpatches).
  virtual void PatchifyBackward(const float* dpatches, size_t count, uint32_t side, uint32_t patch,
                                float* dimages, bool accumulate);

  // AssembleTiles: ddetail[count · N, patch²·3] = patchify(dpixels) and dcoarse[count, pool²·3]
  // = the adjoint of the bilinear upsampling applied to dpixels (both stored).
  virtual void AssembleTilesBackward(const float* dpixels, size_t count,
                                     const TileGeometry& geometry, float* ddetail, float* dcoarse);

  // Unpatchify: dpatches (stored) = patchify(dimages) for `channels` channels.
  virtual void UnpatchifyBackward(const float* dimages, size_t count, uint32_t side, uint32_t patch,
                                  uint32_t channels, float* dpatches);

  // Conv3x3: dx[count, height, width, in] (+)= the adjoint of the convolution applied to
  // dy[count, height, width, out] (a transposed convolution; the bias plays no part).
  // dx must not alias dy.
  virtual void Conv3x3BackwardInput(const float* dy, size_t count, uint32_t height, uint32_t width,
                                    uint32_t out, const float* w, uint32_t in, float* dx,
                                    bool accumulate);

  // PixelShuffleAdd: dx[count, height, width, channels·f²] (stored) gathers dy[count,
  // f·height, f·width, channels] by the same index map.
  virtual void PixelShuffleAddBackward(const float* dy, size_t count, uint32_t height,
                                       uint32_t width, uint32_t channels, uint32_t factor,
                                       float* dx);

  // EmbedValues: dvalues[count · tokens, code_dim] (+)= code_wᵀ·dembedded for kept rows; rows
  // of dropped tokens become 0 either way (their codes do not depend on the values, so this
  // also masks any gradient of `codes` accumulated there before).
  virtual void EmbedValuesBackward(const float* dembedded, const uint32_t* keep, size_t count,
                                   size_t tokens, size_t code_dim, const float* code_w,
                                   size_t width, float* dvalues, bool accumulate);

 protected:
  friend class DeviceBuffer;
  virtual void Free(void* data) = 0;
};

// Names of the backends compiled into this build, in order of preference for "auto" (GPU
// backends first); "cpu" is always present.
std::vector<std::string_view> CompiledBackends();

struct BackendOptions {
  unsigned threads = 0;  // CPU threads; 0 = all cores
};

// "cpu", a compiled GPU backend by name, or "auto" (the first usable backend in
// CompiledBackends() order). kUnsupported for a backend this build lacks.
// `note`, if given, receives a line for the user when "auto" fell back.
StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device,
                                                 const BackendOptions& options = {},
                                                 std::string* note = nullptr);

}  // namespace tok1d
