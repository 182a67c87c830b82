// The GPU backends: kernels/gpu/gpu_backend.cu compiled once per vendor (gpu_compat.h), each
// into its own namespace. Only those the build enables (TOK1D_CUDA, TOK1D_HIP; the emulation
// in the tests) are defined.
#pragma once

#include <memory>

#include "kernels/backend.h"
#include "tok1d/status.h"

namespace tok1d {

// Each Create uses the vendor's first visible device (choose one with CUDA_VISIBLE_DEVICES /
// HIP_VISIBLE_DEVICES) and fails with a message, rather than later, when there is none or it
// cannot run this build's kernels (kNotFound: no device; kUnsupported: no kernel image for it).
namespace cuda {
StatusOr<std::unique_ptr<Backend>> CreateGpuBackend();
}
namespace hip {
StatusOr<std::unique_ptr<Backend>> CreateGpuBackend();
}
// The kernels on host threads (kernels/gpu/host_emulation.h): for tests only.
namespace gpu_emulator {
StatusOr<std::unique_ptr<Backend>> CreateGpuBackend();
// Makes the next kernel launch report a failure, as a faulting GPU would.
void InjectLaunchFailure();
}  // namespace gpu_emulator

}  // namespace tok1d
