// The subset of the CUDA runtime and kernel language that kernels/gpu/ uses, emulated on the
// host (TOK1D_GPU_EMULATION; see gpu_compat.h). Built only into the tests: it lets CI run the
// GPU kernels, with their real thread and block indexing and real barriers, and compare them
// with the CPU backend, on machines without a GPU. It is not fast and not a device.
//
// Model: a launch runs its blocks one after another, and the threads of a block as fibers
// (ucontext) on the calling thread: each runs until its next __syncthreads or its end, then the
// next one runs, so every thread reaches barrier n before any passes it, as on a GPU, and a
// thread that returns early simply leaves (also as on a GPU). `__shared__` becomes `static`,
// which the threads of a block share precisely because only one block runs at a time. Memory is
// host memory. Warp-level operations are not emulated, so the kernels do not use them (warp
// widths differ between vendors anyway): block-wide shared-memory reductions work everywhere.
#pragma once

#include <ucontext.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(threads)

struct dim3 {
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  unsigned x, y, z;
};

// The built-in variables of the thread (fiber) running a kernel.
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace tok1d::gpu_emulator {

// The fibers of the block being run, and the context that schedules them.
struct BlockFibers {
  ucontext_t scheduler;
  ucontext_t* current = nullptr;
  const std::function<void()>* body = nullptr;
  bool* yielded = nullptr;  // set when the current fiber stops at a barrier, not at its end
};
inline thread_local BlockFibers block_fibers;

// Back to the scheduler, which resumes this fiber in the next round.
inline void YieldToScheduler() {
  *block_fibers.yielded = true;
  swapcontext(block_fibers.current, &block_fibers.scheduler);
}

}  // namespace tok1d::gpu_emulator

inline void __syncthreads() { tok1d::gpu_emulator::YieldToScheduler(); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

// ---- runtime API ----

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorMemoryAllocation = 2,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum cudaDeviceAttr { cudaDevAttrClockRate = 13, cudaDevAttrMultiProcessorCount = 16 };
using cudaStream_t = struct EmulatedStream*;
inline constexpr unsigned cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int multiProcessorCount;
  int major;
  int minor;
};

namespace tok1d::gpu_emulator {
// What cudaGetLastError returns next; InjectLaunchFailure (gpu_backend.h) sets it.
inline cudaError_t pending_launch_error = cudaSuccess;
}  // namespace tok1d::gpu_emulator

inline const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure (injected)";
  }
  return "unknown error";
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t error = tok1d::gpu_emulator::pending_launch_error;
  tok1d::gpu_emulator::pending_launch_error = cudaSuccess;
  return error;
}
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int) {
  *properties = {};
  std::strcpy(properties->name, "host emulation");
  properties->totalGlobalMem = size_t{1} << 30;
  properties->multiProcessorCount = 1;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int) {
  *value = attribute == cudaDevAttrClockRate ? 1000 : 1;
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  *free = *total = size_t{1} << 30;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** data, size_t bytes) {
  constexpr size_t kAlignment = 256;  // what cudaMalloc guarantees
  *data = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  return *data != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* data) {
  std::free(data);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = nullptr;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

namespace tok1d::gpu_emulator {

inline void FiberMain() { (*block_fibers.body)(); }  // returns to uc_link: the scheduler

// getcontext and swapcontext return twice, so they live in functions of their own (GCC
// neither inlines these nor keeps the caller's loop variables in registers across them).
inline void StartFiber(ucontext_t* context, char* stack, size_t stack_bytes) {
  getcontext(context);
  context->uc_stack.ss_sp = stack;
  context->uc_stack.ss_size = stack_bytes;
  context->uc_link = &block_fibers.scheduler;
  makecontext(context, FiberMain, 0);
}

// Runs the fiber until it reaches a barrier (true) or its end (false).
inline bool ResumeFiber(ucontext_t* context) {
  bool yielded = false;
  block_fibers.current = context;
  block_fibers.yielded = &yielded;
  swapcontext(&block_fibers.scheduler, context);
  return yielded;
}

// Runs kernel<<<grid, block>>>(args…) to completion: blocks in turn; in each, rounds in which
// every unfinished thread runs to its next barrier or its end.
template <typename... Params, typename... Args>
void RunKernelOnHost(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) {
  constexpr size_t kStackBytes = 128 << 10;
  const unsigned threads = block.x * block.y * block.z;
  std::vector<ucontext_t> contexts(threads);
  std::vector<bool> running(threads);
  const std::unique_ptr<char[]> stacks(new char[threads * kStackBytes]);
  const std::function<void()> body = [&] { kernel(args...); };
  block_fibers.body = &body;
  blockDim = block;
  gridDim = grid;
  for (unsigned b = 0; b < grid.x * grid.y * grid.z; ++b) {
    blockIdx = dim3(b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y));
    for (unsigned t = 0; t < threads; ++t) {
      StartFiber(&contexts[t], stacks.get() + t * kStackBytes, kStackBytes);
      running[t] = true;
    }
    // Odd blocks run their threads in reverse order: a missing barrier between a write and a
    // read of shared memory then shows up whichever of the two threads has the lower index.
    const bool reverse = b % 2 == 1;
    for (bool any_running = true; any_running;) {
      any_running = false;
      for (unsigned i = 0; i < threads; ++i) {
        const unsigned t = reverse ? threads - 1 - i : i;
        if (!running[t]) continue;
        threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
        running[t] = ResumeFiber(&contexts[t]);
        any_running |= running[t];
      }
    }
  }
}

}  // namespace tok1d::gpu_emulator
