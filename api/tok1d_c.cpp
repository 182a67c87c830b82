// The C API (include/tok1d/tok1d_c.h) over the C++ one. Nothing may throw across it: every
// entry point catches, and allocation failures become TOK1D_INTERNAL.
#include "tok1d/tok1d_c.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "tok1d/tok1d.h"

struct tok1d_model {
  std::shared_ptr<const tok1d::LoadedModel> model;
};

struct tok1d_session {
  std::unique_ptr<tok1d::Session> session;
};

namespace {

thread_local std::string last_error;

tok1d_status Fail(const tok1d::Status& status) {
  last_error = status.message();
  return static_cast<tok1d_status>(static_cast<int>(status.code()));
}

tok1d_status Fail(tok1d_status code, const char* message) {
  last_error = message;
  return code;
}

// Runs `body`, turning an escaped exception into TOK1D_INTERNAL.
template <typename Body>
tok1d_status Guard(Body&& body) noexcept {
  try {
    last_error.clear();
    return body();
  } catch (const std::exception& error) {
    return Fail(TOK1D_INTERNAL, error.what());
  } catch (...) {
    return Fail(TOK1D_INTERNAL, "unknown error");
  }
}

// A malloc'd copy, for tok1d_free.
template <typename T>
uint8_t* CopyOut(const T& bytes) {
  auto* out = static_cast<uint8_t*>(std::malloc(std::max<size_t>(bytes.size(), 1)));
  if (out != nullptr && !bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out;
}

}  // namespace

// The C codes are the C++ StatusCode values.
static_assert(static_cast<int>(tok1d::StatusCode::kOk) == TOK1D_OK);
static_assert(static_cast<int>(tok1d::StatusCode::kInternal) == TOK1D_INTERNAL);

extern "C" {

const char* tok1d_version(void) { return TOK1D_VERSION_STRING; }
const char* tok1d_last_error(void) { return last_error.c_str(); }
void tok1d_free(void* buffer) { std::free(buffer); }

tok1d_status tok1d_model_load(const char* path, tok1d_model** model) {
  return Guard([&] {
    if (model == nullptr) return Fail(TOK1D_INVALID_ARGUMENT, "model is NULL");
    *model = nullptr;
    auto loaded = (path == nullptr || *path == '\0') ? tok1d::LoadedModel::LoadDefault()
                                                     : tok1d::LoadedModel::LoadFile(path);
    if (!loaded.ok()) return Fail(loaded.status());
    *model = new tok1d_model{std::move(loaded).value()};
    return TOK1D_OK;
  });
}

void tok1d_model_release(tok1d_model* model) { delete model; }

uint32_t tok1d_model_max_tokens(const tok1d_model* model) {
  return model == nullptr ? 0 : model->model->info().max_tokens;
}
uint32_t tok1d_model_tile_size(const tok1d_model* model) {
  return model == nullptr ? 0 : model->model->info().tile;
}

void tok1d_session_options_init(tok1d_session_options* options) {
  if (options == nullptr) return;
  options->device = "cpu";
  options->threads = 0;
  options->deblock = 1;
}

tok1d_status tok1d_session_create(tok1d_model* model, const tok1d_session_options* options,
                                  tok1d_session** session) {
  return Guard([&] {
    if (model == nullptr || session == nullptr) {
      return Fail(TOK1D_INVALID_ARGUMENT, "model or session is NULL");
    }
    *session = nullptr;
    tok1d::SessionOptions session_options;
    if (options != nullptr) {
      if (options->device != nullptr) session_options.device = options->device;
      session_options.threads = options->threads;
      session_options.deblock = options->deblock != 0;
    }
    auto created = tok1d::Session::Create(model->model, session_options);
    if (!created.ok()) return Fail(created.status());
    *session = new tok1d_session{std::move(created).value()};
    return TOK1D_OK;
  });
}

void tok1d_session_release(tok1d_session* session) { delete session; }

void tok1d_encode_options_init(tok1d_encode_options* options) {
  if (options == nullptr) return;
  *options = tok1d_encode_options{};
  options->allocation = TOK1D_ALLOCATION_DEFAULT;
}

tok1d_status tok1d_encode(tok1d_session* session, const uint8_t* rgb, uint32_t width,
                          uint32_t height, const tok1d_encode_options* options, uint8_t** t1d,
                          size_t* t1d_size) {
  return Guard([&] {
    if (session == nullptr || rgb == nullptr || options == nullptr || t1d == nullptr ||
        t1d_size == nullptr) {
      return Fail(TOK1D_INVALID_ARGUMENT, "a required argument is NULL");
    }
    *t1d = nullptr;
    *t1d_size = 0;
    tok1d::Image image;
    image.width = width;
    image.height = height;
    image.rgb.assign(rgb, rgb + size_t{width} * height * 3);
    tok1d::EncodeOptions encode;
    encode.tokens = options->tokens;
    encode.bytes = options->bytes;
    encode.bpp = options->bpp;
    encode.psnr = options->psnr;
    encode.allocation =
        options->allocation == TOK1D_ALLOCATION_UNIFORM    ? tok1d::Allocation::kUniform
        : options->allocation == TOK1D_ALLOCATION_ADAPTIVE ? tok1d::Allocation::kAdaptive
                                                           : tok1d::Allocation::kDefault;
    encode.effort = options->effort;
    auto encoded = session->session->Encode(image, encode);
    if (!encoded.ok()) return Fail(encoded.status());
    *t1d = CopyOut(encoded->t1d);
    if (*t1d == nullptr) return Fail(TOK1D_INTERNAL, "out of memory");
    *t1d_size = encoded->t1d.size();
    return TOK1D_OK;
  });
}

tok1d_status tok1d_decode(tok1d_session* session, const uint8_t* t1d, size_t t1d_size,
                          uint32_t max_tokens, uint8_t** rgb, uint32_t* width, uint32_t* height) {
  return Guard([&] {
    if (session == nullptr || t1d == nullptr || rgb == nullptr || width == nullptr ||
        height == nullptr) {
      return Fail(TOK1D_INVALID_ARGUMENT, "a required argument is NULL");
    }
    *rgb = nullptr;
    *width = *height = 0;
    tok1d::DecodeOptions options;
    options.max_tokens = max_tokens;
    auto decoded = session->session->Decode({t1d, t1d_size}, options);
    if (!decoded.ok()) return Fail(decoded.status());
    *rgb = CopyOut(decoded->image.rgb);
    if (*rgb == nullptr) return Fail(TOK1D_INTERNAL, "out of memory");
    *width = decoded->image.width;
    *height = decoded->image.height;
    return TOK1D_OK;
  });
}

tok1d_status tok1d_inspect(const uint8_t* t1d, size_t t1d_size, tok1d_file_info* info) {
  return Guard([&] {
    if (t1d == nullptr || info == nullptr) {
      return Fail(TOK1D_INVALID_ARGUMENT, "a required argument is NULL");
    }
    auto inspected = tok1d::InspectT1d({t1d, t1d_size});
    if (!inspected.ok()) return Fail(inspected.status());
    *info = tok1d_file_info{};
    info->width = inspected->width;
    info->height = inspected->height;
    info->tile_size = inspected->tile;
    info->tiles = inspected->tiles;
    info->max_tokens = inspected->max_tokens;
    const auto& counts = inspected->tokens_per_tile;
    if (!counts.empty()) {
      const auto [least, most] = std::minmax_element(counts.begin(), counts.end());
      info->min_tokens = *least;
      info->most_tokens = *most;
    }
    info->truncated = inspected->truncated ? 1 : 0;
    return TOK1D_OK;
  });
}

tok1d_status tok1d_trim(const uint8_t* t1d, size_t t1d_size, uint32_t tokens, uint8_t** out,
                        size_t* out_size) {
  return Guard([&] {
    if (t1d == nullptr || out == nullptr || out_size == nullptr) {
      return Fail(TOK1D_INVALID_ARGUMENT, "a required argument is NULL");
    }
    *out = nullptr;
    *out_size = 0;
    auto trimmed = tok1d::TrimT1d({t1d, t1d_size}, tokens);
    if (!trimmed.ok()) return Fail(trimmed.status());
    *out = CopyOut(*trimmed);
    if (*out == nullptr) return Fail(TOK1D_INTERNAL, "out of memory");
    *out_size = trimmed->size();
    return TOK1D_OK;
  });
}

}  // extern "C"
