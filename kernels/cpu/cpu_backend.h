// The CPU backend: the reference implementation of kernels/backend.h. Matrix products go to
// OpenBLAS (multi-threaded); the other operations are vectorizable loops spread over a
// thread pool. Operations run synchronously and cannot fail.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace tok1d {

// threads: 0 = all cores (std::thread::hardware_concurrency).
std::unique_ptr<Backend> CreateCpuBackend(unsigned threads);

}  // namespace tok1d
