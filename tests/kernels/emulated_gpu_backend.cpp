// The GPU backend's one source compiled for the host emulation (kernels/gpu/host_emulation.h),
// so that the tests run the kernels on machines without a GPU.
#define TOK1D_GPU_EMULATION
#include "kernels/gpu/gpu_backend.cu"

namespace tok1d::gpu_emulator {

void InjectLaunchFailure() { pending_launch_error = cudaErrorLaunchFailure; }

}  // namespace tok1d::gpu_emulator
