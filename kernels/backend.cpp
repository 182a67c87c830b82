#include "kernels/backend.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/gpu/gpu_backend.h"

namespace tok1d {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::Release() {
  if (owner_ != nullptr && data_ != nullptr) owner_->Free(data_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

namespace {

// The backward operations' defaults: reaching one is a caller's bug (supports_backward()).
[[noreturn]] void NoBackward(const Backend& backend, const char* operation) {
  std::fprintf(stderr, "tok1d: the %.*s backend has no %s (check supports_backward())\n",
               static_cast<int>(backend.name().size()), backend.name().data(), operation);
  std::abort();
}

}  // namespace

void Backend::EmbedValues(const float*, const uint32_t*, size_t, size_t, size_t, const float*,
                          const float*, const float*, size_t, float*, float*) {
  NoBackward(*this, "EmbedValues");
}

void Backend::LinearBackwardInput(const float*, size_t, size_t, const float*, size_t, float*,
                                  bool) {
  NoBackward(*this, "LinearBackwardInput");
}

void Backend::GeluBackward(const float*, const float*, size_t, float*) {
  NoBackward(*this, "GeluBackward");
}

void Backend::LayerNormBackward(const float*, const float*, size_t, size_t, const float*, float,
                                float*, bool) {
  NoBackward(*this, "LayerNormBackward");
}

void Backend::AttentionBackward(const float*, const float*, size_t, size_t, size_t, size_t,
                                float*) {
  NoBackward(*this, "AttentionBackward");
}

void Backend::SliceSequencesBackward(const float*, size_t, size_t, size_t, size_t, size_t, float*) {
  NoBackward(*this, "SliceSequencesBackward");
}

void Backend::PatchifyBackward(const float*, size_t, uint32_t, uint32_t, float*, bool) {
  NoBackward(*this, "PatchifyBackward");
}

void Backend::AssembleTilesBackward(const float*, size_t, const TileGeometry&, float*, float*) {
  NoBackward(*this, "AssembleTilesBackward");
}

void Backend::UnpatchifyBackward(const float*, size_t, uint32_t, uint32_t, uint32_t, float*) {
  NoBackward(*this, "UnpatchifyBackward");
}

void Backend::Conv3x3BackwardInput(const float*, size_t, uint32_t, uint32_t, uint32_t, const float*,
                                   uint32_t, float*, bool) {
  NoBackward(*this, "Conv3x3BackwardInput");
}

void Backend::PixelShuffleAddBackward(const float*, size_t, uint32_t, uint32_t, uint32_t, uint32_t,
                                      float*) {
  NoBackward(*this, "PixelShuffleAddBackward");
}

void Backend::EmbedValuesBackward(const float*, const uint32_t*, size_t, size_t, size_t,
                                  const float*, size_t, float*, bool) {
  NoBackward(*this, "EmbedValuesBackward");
}

namespace {

struct CompiledBackend {
  std::string_view name;
  StatusOr<std::unique_ptr<Backend>> (*create)(const BackendOptions& options);
};

// The registry: every backend this build has, in order of preference for "auto". A GPU
// backend is compiled in by its CMake option (cmake/gpu.cmake defines TOK1D_WITH_*).
constexpr CompiledBackend kCompiledBackends[] = {
#if defined(TOK1D_WITH_CUDA)
    {"cuda", [](const BackendOptions&) { return cuda::CreateGpuBackend(); }},
#endif
#if defined(TOK1D_WITH_HIP)
    {"hip", [](const BackendOptions&) { return hip::CreateGpuBackend(); }},
#endif
    {"cpu",
     [](const BackendOptions& options) -> StatusOr<std::unique_ptr<Backend>> {
       return CreateCpuBackend(options.threads);
     }},
};

StatusOr<std::unique_ptr<Backend>> CreateNamedBackend(std::string_view name,
                                                      const BackendOptions& options) {
  for (const CompiledBackend& backend : kCompiledBackends) {
    if (backend.name == name) return backend.create(options);
  }
  return UnsupportedError("device '" + std::string(name) + "' is not compiled into this tok1d");
}

}  // namespace

std::vector<std::string_view> CompiledBackends() {
  std::vector<std::string_view> names;
  for (const CompiledBackend& backend : kCompiledBackends) names.push_back(backend.name);
  return names;
}

StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device,
                                                 const BackendOptions& options, std::string* note) {
  if (device != "auto") {
    for (std::string_view compiled : CompiledBackends()) {
      if (compiled == device) return CreateNamedBackend(device, options);
    }
    std::string known;
    for (std::string_view compiled : CompiledBackends()) {
      known += ' ';
      known += compiled;
    }
    return UnsupportedError("device '" + std::string(device) +
                            "' is not compiled into this tok1d (available: auto" + known + ")");
  }
  std::string failures;
  for (std::string_view compiled : CompiledBackends()) {
    auto backend = CreateNamedBackend(compiled, options);
    if (backend.ok()) {
      if (note != nullptr && !failures.empty()) {
        *note = failures + "; using " + std::string(compiled);
      }
      return backend;
    }
    if (!failures.empty()) failures += "; ";
    failures += backend.status().message();
  }
  return InternalError("no usable backend: " + failures);
}

}  // namespace tok1d
