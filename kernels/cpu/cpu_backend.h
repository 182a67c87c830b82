// The CPU backend: the reference implementation of kernels/backend.h. Matrix products go to
// OpenBLAS (multi-threaded); the other operations are vectorizable loops spread over a
// thread pool. Operations run synchronously and cannot fail.
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace tok1d {

// threads: 0 = all cores (std::thread::hardware_concurrency).
std::unique_ptr<Backend> CreateCpuBackend(unsigned threads);

// The OpenBLAS core type this CPU should run, where OpenBLAS chose a slower one: OpenBLAS
// before 0.3.22 (Debian 12 has 0.3.21) does not recognise CPUs released after it (Sapphire
// and Emerald Rapids among them) and falls back to its SSE3 "Prescott" kernels, about 3×
// slower in tok1d's products than its AVX-512 ones. OpenBLAS reads OPENBLAS_CORETYPE once,
// as it loads, so only a program that has not started can use the answer. Empty when
// OPENBLAS_CORETYPE is set, when OpenBLAS chose a core of its own, or when the CPU has
// neither AVX-512 nor AVX2.
std::string OpenBlasCoreForThisCpu();

}  // namespace tok1d
