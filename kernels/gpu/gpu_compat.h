// One kernel source for every GPU vendor, as ggml does it (ggml-cuda/vendors/hip.h): the kernels
// in kernels/gpu/ are written in CUDA C++, and this header maps the CUDA runtime names they use
// onto the vendor that compiles them. Exactly one of these is defined by the build:
//   TOK1D_GPU_CUDA       nvcc, NVIDIA                      backend name "cuda"
//   TOK1D_GPU_HIP        hipcc, AMD (ROCm)                 backend name "hip"
//   TOK1D_GPU_EMULATION  the host compiler: kernels run on host threads (host_emulation.h), so
//                        the tests check their indexing and barriers where no GPU exists.
// Only names the backend uses are mapped; add a line here when a kernel needs a new one.
#pragma once

#include <utility>

#if defined(TOK1D_GPU_EMULATION)

#include "kernels/gpu/host_emulation.h"
#define TOK1D_GPU_NAMESPACE gpu_emulator
#define TOK1D_GPU_BACKEND_NAME "gpu-emulator"
#define TOK1D_GPU_RUNTIME_NAME "host threads"

#elif defined(TOK1D_GPU_HIP)

#include <hip/hip_runtime.h>
#define TOK1D_GPU_NAMESPACE hip
#define TOK1D_GPU_BACKEND_NAME "hip"
#define TOK1D_GPU_RUNTIME_NAME "HIP"

#define cudaDevAttrClockRate hipDeviceAttributeClockRate
#define cudaDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDeviceProp hipDeviceProp_t
#define cudaError_t hipError_t
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaFree hipFree
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaMalloc hipMalloc
#define cudaMemGetInfo hipMemGetInfo
#define cudaMemcpy hipMemcpy
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaSetDevice hipSetDevice
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStream_t hipStream_t
#define cudaSuccess hipSuccess

#elif defined(TOK1D_GPU_CUDA)

#include <cuda_runtime.h>
#define TOK1D_GPU_NAMESPACE cuda
#define TOK1D_GPU_BACKEND_NAME "cuda"
#define TOK1D_GPU_RUNTIME_NAME "CUDA"

#else
#error "kernels/gpu/gpu_compat.h: define TOK1D_GPU_CUDA, TOK1D_GPU_HIP or TOK1D_GPU_EMULATION"
#endif

namespace tok1d::TOK1D_GPU_NAMESPACE {

// Queues kernel<<<grid, block, 0, stream>>>(args…); written as a function so that the
// emulation, which has no <<<>>> syntax, can run the same call sites.
template <typename... Params, typename... Args>
void LaunchKernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                  Args&&... args) {
#if defined(TOK1D_GPU_EMULATION)
  RunKernelOnHost(kernel, grid, block, std::forward<Args>(args)...);
  (void)stream;
#else
  // clang-format reads the launch chevrons of this header as C++ shifts.
  // clang-format off
  kernel<<<grid, block, 0, stream>>>(std::forward<Args>(args)...);
  // clang-format on
#endif
}

}  // namespace tok1d::TOK1D_GPU_NAMESPACE
