// The GPU backend (kernels/backend.h) for CUDA, HIP and the host emulation: one source, one
// namespace per vendor (gpu_compat.h). Everything runs on one stream in order; launches and
// copies record the first failure, which Synchronize / CopyToHost then return, and later
// operations are skipped (their outputs are undefined anyway).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "kernels/gpu/gpu_backend.h"
#include "kernels/gpu/gpu_compat.h"
#include "kernels/gpu/gpu_kernels.cuh"

namespace tok1d::TOK1D_GPU_NAMESPACE {
namespace {

constexpr unsigned kElementwiseThreads = 256;
// Grid-stride loops cover the rest. The emulation runs blocks one by one with fresh threads,
// so fewer, longer blocks keep it fast; on a GPU, enough blocks to fill any device.
#if defined(TOK1D_GPU_EMULATION)
constexpr size_t kMaxElementwiseBlocks = 8;
#else
constexpr size_t kMaxElementwiseBlocks = 65536;
#endif

unsigned ElementwiseBlocks(size_t count) {
  return static_cast<unsigned>(std::clamp<size_t>(
      (count + kElementwiseThreads - 1) / kElementwiseThreads, 1, kMaxElementwiseBlocks));
}

unsigned CeilDiv(size_t value, unsigned divisor) {
  return static_cast<unsigned>((value + divisor - 1) / divisor);
}

std::string Mebibytes(size_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

class GpuBackend final : public Backend {
 public:
  static StatusOr<std::unique_ptr<Backend>> Create() {
    int devices = 0;
    const cudaError_t count_error = cudaGetDeviceCount(&devices);
    if (count_error != cudaSuccess || devices == 0) {
      return NotFoundError(
          std::string("no ") + TOK1D_GPU_RUNTIME_NAME + " device" +
          (count_error != cudaSuccess ? std::string(": ") + cudaGetErrorString(count_error) : ""));
    }
    std::unique_ptr<GpuBackend> backend(new GpuBackend());
    TOK1D_RETURN_IF_ERROR(backend->Open());
    return std::unique_ptr<Backend>(std::move(backend));
  }

  ~GpuBackend() override {
    if (stream_open_) static_cast<void>(cudaStreamDestroy(stream_));  // nothing to do on failure
  }

  std::string_view name() const override { return TOK1D_GPU_BACKEND_NAME; }
  std::string description() const override { return description_; }
  size_t preferred_batch_tiles() const override { return kPreferredBatchTiles; }

  StatusOr<DeviceBuffer> Allocate(size_t bytes) override {
    void* data = nullptr;
    const cudaError_t error = cudaMalloc(&data, std::max<size_t>(bytes, 1));
    if (error == cudaErrorMemoryAllocation) {
      // Not a sticky error: clear it, later allocations may still succeed. The sizes are
      // for the message only (0 if they cannot be read).
      static_cast<void>(cudaGetLastError());
      size_t free = 0, total = 0;
      static_cast<void>(cudaMemGetInfo(&free, &total));
      return TooLargeError("out of GPU memory allocating " + Mebibytes(bytes) + " (" +
                           Mebibytes(free) + " free of " + Mebibytes(total) + ")");
    }
    if (error != cudaSuccess) return RuntimeError(error, "allocating device memory");
    return DeviceBuffer(this, data, bytes);
  }

  StatusOr<DeviceBuffer> UploadConstant(std::span<const uint8_t> host) override {
    TOK1D_ASSIGN_OR_RETURN(DeviceBuffer buffer, Allocate(host.size()));
    const cudaError_t error =
        cudaMemcpy(buffer.as<void>(), host.data(), host.size(), cudaMemcpyHostToDevice);
    if (error != cudaSuccess) return RuntimeError(error, "uploading the weights");
    return StatusOr<DeviceBuffer>(std::move(buffer));  // nvcc does not move implicitly here
  }

  Status CopyToDevice(void* device, const void* host, size_t bytes) override {
    if (!pending_.ok()) return pending_;
    // From pageable host memory the call returns once `host` has been read.
    Record(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_),
           "copying to the device");
    return pending_;
  }

  Status CopyToHost(void* host, const void* device, size_t bytes) override {
    if (pending_.ok())
      Record(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_),
             "copying to the host");
    return Synchronize();
  }

  Status Synchronize() override {
    if (pending_.ok()) Record(cudaStreamSynchronize(stream_), "running the kernels");
    return pending_;
  }

  void Linear(const float* x, size_t rows, size_t in, const float* w, const float* b, size_t out,
              float* y, Epilogue epilogue) override {
    if (!pending_.ok() || rows == 0 || out == 0) return;
    switch (epilogue) {
      case Epilogue::kStore:
        LaunchLinear<Epilogue::kStore>(x, rows, in, w, b, out, y);
        break;
      case Epilogue::kGelu:
        LaunchLinear<Epilogue::kGelu>(x, rows, in, w, b, out, y);
        break;
      case Epilogue::kAccumulate:
        LaunchLinear<Epilogue::kAccumulate>(x, rows, in, w, b, out, y);
        break;
    }
    CheckLaunch("Linear");
  }

  void LayerNorm(const float* x, size_t rows, size_t width, const float* gamma, const float* beta,
                 float eps, float* y) override {
    if (!pending_.ok() || rows == 0) return;
    LaunchKernel(LayerNormKernel, dim3(CeilDiv(rows, kNormRowsPerBlock)),
                 dim3(kNormThreadsPerRow * kNormRowsPerBlock), stream_, x,
                 static_cast<unsigned>(rows), static_cast<unsigned>(width), gamma, beta, eps, y);
    CheckLaunch("LayerNorm");
  }

  void Attention(const float* qkv, size_t sequences, size_t length, size_t heads, size_t head_dim,
                 float* out) override {
    if (!pending_.ok() || sequences == 0 || length == 0) return;
    if (head_dim > attention::kMaxHeadDim) {
      Fail(UnsupportedError("the " + std::string(name()) +
                            " attention kernel handles heads of up to " +
                            std::to_string(attention::kMaxHeadDim) +
                            " dimensions; this model's have " + std::to_string(head_dim)));
      return;
    }
    const dim3 grid(CeilDiv(length, attention::kQueries), static_cast<unsigned>(heads),
                    static_cast<unsigned>(sequences));
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    LaunchKernel(AttentionKernel, grid, dim3(attention::kThreads), stream_, qkv,
                 static_cast<unsigned>(length), static_cast<unsigned>(heads),
                 static_cast<unsigned>(head_dim), scale, out);
    CheckLaunch("Attention");
  }

  void BuildSequences(const RowSource& head, const RowSource& tail, size_t sequences, size_t width,
                      float* out) override {
    if (!pending_.ok()) return;
    const size_t count = sequences * (head.count + tail.count) * width;
    LaunchKernel(BuildSequencesKernel, dim3(ElementwiseBlocks(count)), dim3(kElementwiseThreads),
                 stream_, head, tail, static_cast<unsigned>(sequences),
                 static_cast<unsigned>(width), out);
    CheckLaunch("BuildSequences");
  }

  void SliceSequences(const float* in, size_t sequences, size_t length, size_t first, size_t count,
                      size_t width, float* out) override {
    if (!pending_.ok()) return;
    LaunchKernel(SliceSequencesKernel, dim3(ElementwiseBlocks(sequences * count * width)),
                 dim3(kElementwiseThreads), stream_, in, static_cast<unsigned>(sequences),
                 static_cast<unsigned>(length), static_cast<unsigned>(first),
                 static_cast<unsigned>(count), static_cast<unsigned>(width), out);
    CheckLaunch("SliceSequences");
  }

  void PatchifyTiles(const uint8_t* tiles, size_t count, const TileGeometry& geometry,
                     float* patches, float* pooled) override {
    if (!pending_.ok()) return;
    const size_t tile_values = size_t{geometry.tile} * geometry.tile * 3;
    const size_t pooled_values = size_t{geometry.pool} * geometry.pool * 3;
    const auto tiles_count = static_cast<unsigned>(count);
    LaunchKernel(PatchesKernel<uint8_t>, dim3(ElementwiseBlocks(count * tile_values)),
                 dim3(kElementwiseThreads), stream_, tiles, tiles_count, geometry.tile,
                 geometry.patch, 3u, patches);
    CheckLaunch("PatchifyTiles");
    LaunchKernel(PoolKernel, dim3(ElementwiseBlocks(count * pooled_values)),
                 dim3(kElementwiseThreads), stream_, tiles, tiles_count, geometry, pooled);
    CheckLaunch("PatchifyTiles (pooling)");
  }

  void Patchify(const float* images, size_t count, uint32_t side, uint32_t patch,
                float* patches) override {
    if (!pending_.ok()) return;
    LaunchPatchify(images, count, side, patch, 3, patches, "Patchify");
  }

  void FsqQuantize(const float* z, size_t rows, const FsqLevels& levels, float* bounded,
                   int32_t* tokens) override {
    if (!pending_.ok()) return;
    LaunchKernel(FsqQuantizeKernel, dim3(ElementwiseBlocks(rows)), dim3(kElementwiseThreads),
                 stream_, z, static_cast<unsigned>(rows), MakeFsqTable(levels), bounded, tokens);
    CheckLaunch("FsqQuantize");
  }

  void EmbedTokens(const int32_t* tokens, const float* offsets, size_t rows,
                   const FsqLevels& levels, const float* code_w, const float* code_b,
                   const float* mask, size_t width, float* embedded, float* codes) override {
    if (!pending_.ok()) return;
    LaunchKernel(EmbedTokensKernel, dim3(ElementwiseBlocks(rows * width)),
                 dim3(kElementwiseThreads), stream_, tokens, offsets, static_cast<unsigned>(rows),
                 MakeFsqTable(levels), code_w, code_b, mask, static_cast<unsigned>(width), embedded,
                 codes);
    CheckLaunch("EmbedTokens");
  }

  void AssembleTiles(const float* detail, const float* coarse, size_t count,
                     const TileGeometry& geometry, float* pixels) override {
    if (!pending_.ok()) return;
    const size_t values = count * geometry.tile * geometry.tile * 3;
    LaunchKernel(AssembleTilesKernel, dim3(ElementwiseBlocks(values)), dim3(kElementwiseThreads),
                 stream_, detail, coarse, static_cast<unsigned>(count), geometry, pixels);
    CheckLaunch("AssembleTiles");
  }

  void Unpatchify(const float* patches, size_t count, uint32_t side, uint32_t patch,
                  uint32_t channels, float* images) override {
    if (!pending_.ok()) return;
    LaunchUnpatchify(patches, count, side, patch, channels, false, images, "Unpatchify");
  }

  void Conv3x3(const float* x, size_t count, uint32_t height, uint32_t width, uint32_t in,
               const float* w, const float* b, uint32_t out, float* y, Epilogue epilogue) override {
    if (!pending_.ok() || count == 0 || height == 0 || width == 0 || out == 0) return;
    const size_t blocks =
        count * CeilDiv(height, conv3x3::kSide) * size_t{CeilDiv(width, conv3x3::kSide)};
    const dim3 grid(static_cast<unsigned>(blocks), CeilDiv(out, conv3x3::kOutputs));
    const dim3 block(conv3x3::kThreads);
    switch (epilogue) {
      case Epilogue::kStore:
        LaunchKernel(Conv3x3Kernel<Epilogue::kStore>, grid, block, stream_, x, height, width, in, w,
                     b, out, y);
        break;
      case Epilogue::kGelu:
        LaunchKernel(Conv3x3Kernel<Epilogue::kGelu>, grid, block, stream_, x, height, width, in, w,
                     b, out, y);
        break;
      case Epilogue::kAccumulate:
        LaunchKernel(Conv3x3Kernel<Epilogue::kAccumulate>, grid, block, stream_, x, height, width,
                     in, w, b, out, y);
        break;
    }
    CheckLaunch("Conv3x3");
  }

  void PixelShuffleAdd(const float* x, size_t count, uint32_t height, uint32_t width,
                       uint32_t channels, uint32_t factor, float* y) override {
    if (!pending_.ok()) return;
    const size_t values = count * height * width * size_t{channels} * factor * factor;
    LaunchKernel(PixelShuffleAddKernel, dim3(ElementwiseBlocks(values)), dim3(kElementwiseThreads),
                 stream_, x, static_cast<unsigned>(count), height, width, channels, factor, y);
    CheckLaunch("PixelShuffleAdd");
  }

  void Gelu(const float* x, size_t count, float* y) override {
    if (!pending_.ok()) return;
    LaunchKernel(GeluKernel, dim3(ElementwiseBlocks(count)), dim3(kElementwiseThreads), stream_, x,
                 count, y);
    CheckLaunch("Gelu");
  }

  // ---- gradients ----
  bool supports_backward() const override { return true; }

  void EmbedValues(const float* values, const uint32_t* keep, size_t count, size_t tokens,
                   size_t code_dim, const float* code_w, const float* code_b, const float* mask,
                   size_t width, float* embedded, float* codes) override {
    if (!pending_.ok() || count == 0 || tokens == 0) return;
    const size_t rows = count * tokens;
    LaunchKernel(EmbedValuesKernel, dim3(ElementwiseBlocks(rows * width)),
                 dim3(kElementwiseThreads), stream_, values, keep, static_cast<unsigned>(rows),
                 static_cast<unsigned>(tokens), static_cast<unsigned>(code_dim), code_w, code_b,
                 mask, static_cast<unsigned>(width), embedded, codes);
    CheckLaunch("EmbedValues");
  }

  // The Linear kernel with the weights read along their rows (WeightLayout::kReductionMajor):
  // dx[rows, in] = dy[rows, out]·w[out, in], no bias.
  void LinearBackwardInput(const float* dy, size_t rows, size_t out, const float* w, size_t in,
                           float* dx, bool accumulate) override {
    if (!pending_.ok() || rows == 0 || in == 0) return;
    const float* no_bias = nullptr;
    if (accumulate) {
      LaunchLinear<Epilogue::kAccumulate, WeightLayout::kReductionMajor>(dy, rows, out, w, no_bias,
                                                                         in, dx);
    } else {
      LaunchLinear<Epilogue::kStore, WeightLayout::kReductionMajor>(dy, rows, out, w, no_bias, in,
                                                                    dx);
    }
    CheckLaunch("LinearBackwardInput");
  }

  void GeluBackward(const float* x, const float* dy, size_t count, float* dx) override {
    if (!pending_.ok() || count == 0) return;
    LaunchKernel(GeluBackwardKernel, dim3(ElementwiseBlocks(count)), dim3(kElementwiseThreads),
                 stream_, x, dy, count, dx);
    CheckLaunch("GeluBackward");
  }

  void LayerNormBackward(const float* x, const float* dy, size_t rows, size_t width,
                         const float* gamma, float eps, float* dx, bool accumulate) override {
    if (!pending_.ok() || rows == 0) return;
    LaunchKernel(LayerNormBackwardKernel, dim3(CeilDiv(rows, kNormRowsPerBlock)),
                 dim3(kNormThreadsPerRow * kNormRowsPerBlock), stream_, x, dy,
                 static_cast<unsigned>(rows), static_cast<unsigned>(width), gamma, eps, accumulate,
                 dx);
    CheckLaunch("LayerNormBackward");
  }

  // Two kernels (gpu_kernels.cuh): dQ with each query's softmax statistics, kept in
  // attention_stats_, then dK and dV from them.
  void AttentionBackward(const float* qkv, const float* dout, size_t sequences, size_t length,
                         size_t heads, size_t head_dim, float* dqkv) override {
    if (!pending_.ok() || sequences == 0 || length == 0 || heads == 0) return;
    if (head_dim > attention::kMaxHeadDim) {
      Fail(UnsupportedError("the " + std::string(name()) +
                            " attention kernel handles heads of up to " +
                            std::to_string(attention::kMaxHeadDim) +
                            " dimensions; this model's have " + std::to_string(head_dim)));
      return;
    }
    const size_t stats_bytes = sequences * heads * length * attention::kStats * sizeof(float);
    if (attention_stats_.bytes() < stats_bytes) {
      // The smaller one first, once the kernels that may still read it have finished.
      if (attention_stats_.bytes() > 0 && !Synchronize().ok()) return;
      attention_stats_ = DeviceBuffer();
      StatusOr<DeviceBuffer> buffer = Allocate(stats_bytes);
      if (!buffer.ok()) {
        Fail(buffer.status());
        return;
      }
      attention_stats_ = std::move(buffer).value();
    }
    float* stats = attention_stats_.as<float>();
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const auto l = static_cast<unsigned>(length), h = static_cast<unsigned>(heads),
               d = static_cast<unsigned>(head_dim);
    LaunchKernel(AttentionBackwardQueriesKernel,
                 dim3(CeilDiv(length, attention::kQueries), h, static_cast<unsigned>(sequences)),
                 dim3(attention::kThreads), stream_, qkv, dout, l, h, d, scale, stats, dqkv);
    CheckLaunch("AttentionBackward (queries)");
    if (!pending_.ok()) return;
    const float* read_stats = stats;
    LaunchKernel(AttentionBackwardKeysKernel,
                 dim3(CeilDiv(length, attention::kKeys), h, static_cast<unsigned>(sequences)),
                 dim3(attention::kThreads), stream_, qkv, dout, l, h, d, scale, read_stats, dqkv);
    CheckLaunch("AttentionBackward (keys)");
  }

  void SliceSequencesBackward(const float* dout, size_t sequences, size_t length, size_t first,
                              size_t count, size_t width, float* din) override {
    if (!pending_.ok()) return;
    LaunchKernel(SliceSequencesBackwardKernel, dim3(ElementwiseBlocks(sequences * length * width)),
                 dim3(kElementwiseThreads), stream_, dout, static_cast<unsigned>(sequences),
                 static_cast<unsigned>(length), static_cast<unsigned>(first),
                 static_cast<unsigned>(count), static_cast<unsigned>(width), din);
    CheckLaunch("SliceSequencesBackward");
  }

  void PatchifyBackward(const float* dpatches, size_t count, uint32_t side, uint32_t patch,
                        float* dimages, bool accumulate) override {
    if (!pending_.ok()) return;
    LaunchUnpatchify(dpatches, count, side, patch, 3, accumulate, dimages, "PatchifyBackward");
  }

  void AssembleTilesBackward(const float* dpixels, size_t count, const TileGeometry& geometry,
                             float* ddetail, float* dcoarse) override {
    if (!pending_.ok()) return;
    const size_t pooled_values = size_t{geometry.pool} * geometry.pool * 3;
    LaunchPatchify(dpixels, count, geometry.tile, geometry.patch, 3, ddetail,
                   "AssembleTilesBackward (detail)");
    LaunchKernel(UpsampleBackwardKernel, dim3(ElementwiseBlocks(count * pooled_values)),
                 dim3(kElementwiseThreads), stream_, dpixels, static_cast<unsigned>(count),
                 geometry, dcoarse);
    CheckLaunch("AssembleTilesBackward (coarse)");
  }

  void UnpatchifyBackward(const float* dimages, size_t count, uint32_t side, uint32_t patch,
                          uint32_t channels, float* dpatches) override {
    if (!pending_.ok()) return;
    LaunchPatchify(dimages, count, side, patch, channels, dpatches, "UnpatchifyBackward");
  }

  // The convolution kernel as a transposed convolution (Conv3x3Kernel's kAdjoint).
  void Conv3x3BackwardInput(const float* dy, size_t count, uint32_t height, uint32_t width,
                            uint32_t out, const float* w, uint32_t in, float* dx,
                            bool accumulate) override {
    if (!pending_.ok() || count == 0 || height == 0 || width == 0 || in == 0) return;
    const size_t blocks =
        count * CeilDiv(height, conv3x3::kSide) * size_t{CeilDiv(width, conv3x3::kSide)};
    const dim3 grid(static_cast<unsigned>(blocks), CeilDiv(in, conv3x3::kOutputs));
    const dim3 block(conv3x3::kThreads);
    const float* no_bias = nullptr;
    if (accumulate) {
      LaunchKernel(Conv3x3Kernel<Epilogue::kAccumulate, true>, grid, block, stream_, dy, height,
                   width, out, w, no_bias, in, dx);
    } else {
      LaunchKernel(Conv3x3Kernel<Epilogue::kStore, true>, grid, block, stream_, dy, height, width,
                   out, w, no_bias, in, dx);
    }
    CheckLaunch("Conv3x3BackwardInput");
  }

  void PixelShuffleAddBackward(const float* dy, size_t count, uint32_t height, uint32_t width,
                               uint32_t channels, uint32_t factor, float* dx) override {
    if (!pending_.ok()) return;
    const size_t values = count * height * width * size_t{channels} * factor * factor;
    LaunchKernel(PixelShuffleAddBackwardKernel, dim3(ElementwiseBlocks(values)),
                 dim3(kElementwiseThreads), stream_, dy, static_cast<unsigned>(count), height,
                 width, channels, factor, dx);
    CheckLaunch("PixelShuffleAddBackward");
  }

  void EmbedValuesBackward(const float* dembedded, const uint32_t* keep, size_t count,
                           size_t tokens, size_t code_dim, const float* code_w, size_t width,
                           float* dvalues, bool accumulate) override {
    if (!pending_.ok() || count == 0 || tokens == 0) return;
    const size_t rows = count * tokens;
    LaunchKernel(EmbedValuesBackwardKernel, dim3(ElementwiseBlocks(rows * code_dim)),
                 dim3(kElementwiseThreads), stream_, dembedded, keep, static_cast<unsigned>(rows),
                 static_cast<unsigned>(tokens), static_cast<unsigned>(code_dim), code_w,
                 static_cast<unsigned>(width), accumulate, dvalues);
    CheckLaunch("EmbedValuesBackward");
  }

 protected:
  // A failure here would be a sticky error from earlier work, which Synchronize has reported.
  void Free(void* data) override { static_cast<void>(cudaFree(data)); }

 private:
  // Enough tiles (× 192 rows for the default model) to fill the largest GPUs' multiprocessors
  // several times over, in about 0.5 GB of activations.
  static constexpr size_t kPreferredBatchTiles = 256;

  GpuBackend() = default;

  // Picks device 0, makes the stream and runs a one-thread kernel, so that a device this
  // build has no kernels for fails here (and `--device auto` moves on) instead of mid-image.
  Status Open() {
    if (const cudaError_t error = cudaSetDevice(0); error != cudaSuccess)
      return RuntimeError(error, "selecting device 0");
    cudaDeviceProp properties{};
    if (const cudaError_t error = cudaGetDeviceProperties(&properties, 0); error != cudaSuccess) {
      return RuntimeError(error, "reading the device properties");
    }
    if (const cudaError_t error = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
        error != cudaSuccess) {
      return RuntimeError(error, "creating a stream");
    }
    stream_open_ = true;
    char memory[32];
    std::snprintf(memory, sizeof(memory), "%.1f GiB",
                  static_cast<double>(properties.totalGlobalMem) / (1 << 30));
    description_ = std::string(TOK1D_GPU_BACKEND_NAME) + " (" + properties.name + ", " +
                   std::to_string(properties.multiProcessorCount) + " multiprocessors, " + memory +
                   ", compute capability " + std::to_string(properties.major) + "." +
                   std::to_string(properties.minor) + ")";

    TOK1D_ASSIGN_OR_RETURN(DeviceBuffer flag, Allocate(sizeof(int)));
    constexpr int kProbeValue = 0x7031d;
    LaunchKernel(ProbeKernel, dim3(1), dim3(1), stream_, flag.as<int>(), kProbeValue);
    if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) {
      return UnsupportedError(std::string(TOK1D_GPU_RUNTIME_NAME) +
                              " cannot run this build's kernels on " + properties.name + ": " +
                              cudaGetErrorString(error) +
                              " (see docs/gpu.md: build for the device's architecture)");
    }
    int probe = 0;
    TOK1D_RETURN_IF_ERROR(CopyToHost(&probe, flag.as<int>(), sizeof(probe)));
    if (probe != kProbeValue)
      return InternalError(std::string(name()) + ": the probe kernel did not run");
    return OkStatus();
  }

  static Status RuntimeError(cudaError_t error, const std::string& what) {
    return InternalError(std::string(TOK1D_GPU_RUNTIME_NAME) + " error " + what + ": " +
                         cudaGetErrorString(error));
  }

  // Keeps the first failure.
  void Fail(Status status) {
    // (void): nvcc's front end takes the Status& from operator= for a [[nodiscard]] value.
    if (pending_.ok()) static_cast<void>(pending_ = std::move(status));
  }

  void Record(cudaError_t error, const char* what) {
    if (error != cudaSuccess) Fail(RuntimeError(error, what));
  }

  void CheckLaunch(const char* operation) {
    Record(cudaGetLastError(), (std::string("launching ") + operation).c_str());
  }

  // LinearKernel: y[rows, out] (epilogue)= x[rows, in]·Wᵀ (+ b unless null), W held as
  // `kLayout` says (gpu_kernels.cuh); for Linear and LinearBackwardInput.
  template <Epilogue kEpilogue, WeightLayout kLayout = WeightLayout::kOutputMajor>
  void LaunchLinear(const float* x, size_t rows, size_t in, const float* w, const float* b,
                    size_t out, float* y) {
    LaunchKernel(LinearKernel<kEpilogue, kLayout>,
                 dim3(CeilDiv(out, linear::kTileCols), CeilDiv(rows, linear::kTileRows)),
                 dim3(linear::kThreads), stream_, x, static_cast<unsigned>(rows),
                 static_cast<unsigned>(in), w, b, static_cast<unsigned>(out), y);
  }

  // images[count, side, side, channels] → (py, px, c) patches, and back (added when
  // `accumulate`): the data movement of Patchify, Unpatchify and their backward passes.
  void LaunchPatchify(const float* images, size_t count, uint32_t side, uint32_t patch,
                      uint32_t channels, float* patches, const char* operation) {
    LaunchKernel(PatchesKernel<float>, dim3(ElementwiseBlocks(count * side * side * channels)),
                 dim3(kElementwiseThreads), stream_, images, static_cast<unsigned>(count), side,
                 patch, channels, patches);
    CheckLaunch(operation);
  }
  void LaunchUnpatchify(const float* patches, size_t count, uint32_t side, uint32_t patch,
                        uint32_t channels, bool accumulate, float* images, const char* operation) {
    LaunchKernel(UnpatchifyKernel, dim3(ElementwiseBlocks(count * side * side * channels)),
                 dim3(kElementwiseThreads), stream_, patches, static_cast<unsigned>(count), side,
                 patch, channels, accumulate, images);
    CheckLaunch(operation);
  }

  cudaStream_t stream_{};
  bool stream_open_ = false;
  std::string description_;
  Status pending_;
  // AttentionBackward's softmax statistics (3 floats per query row and head), grown as needed.
  DeviceBuffer attention_stats_;
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> CreateGpuBackend() { return GpuBackend::Create(); }

}  // namespace tok1d::TOK1D_GPU_NAMESPACE
