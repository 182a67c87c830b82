#include "kernels/backends.h"

namespace tok1d {

std::vector<std::string_view> CompiledBackends() {
  // GPU backends (TOK1D_CUDA, TOK1D_HIP) register here when they are built.
  return {"cpu"};
}

}  // namespace tok1d
