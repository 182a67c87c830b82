#include "codec/model.h"

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "codec/entropy_coder.h"
#include "codec/safetensors.h"
#include "common/file_util.h"

#ifndef TOK1D_EMBEDDED_MODEL
#define TOK1D_EMBEDDED_MODEL 0
#endif
#if TOK1D_EMBEDDED_MODEL
// Defined by the generated embedded_model.S (.incbin of the default model file).
extern "C" const uint8_t tok1d_embedded_model_begin[];
extern "C" const uint8_t tok1d_embedded_model_end[];
#endif

namespace tok1d {
namespace {

constexpr std::string_view kModelFormat = "tok1d-model";
constexpr std::string_view kModelFormatVersion = "1";
constexpr std::string_view kDefaultModelFileName = "tok1d-default.safetensors";
constexpr size_t kArenaAlignmentFloats = 16;  // 64 bytes: a cache line, any SIMD width
constexpr uint64_t kMaxModelFileBytes = uint64_t{4} << 30;
// Generous bounds that keep every derived size far from overflow.
constexpr uint32_t kMaxWidth = 1 << 16;
constexpr uint32_t kMaxTokens = 65535;  // the container stores K as u16
constexpr uint32_t kMaxDepth = 1024;

// Reads config[key] as a positive integer no larger than `max`.
Status GetPositive(const nlohmann::json& config, const char* key, uint32_t max, uint32_t* out) {
  auto it = config.find(key);
  if (it == config.end()) return CorruptError(std::string("model config has no '") + key + "'");
  if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > max) {
    return CorruptError(std::string("model config '") + key + "' must be an integer in 1.." +
                        std::to_string(max));
  }
  *out = static_cast<uint32_t>(it->get<uint64_t>());
  return OkStatus();
}

Status CheckDivides(uint32_t divisor, const char* divisor_name, uint32_t value,
                    const char* value_name) {
  if (value % divisor == 0) return OkStatus();
  return CorruptError(std::string("model config: ") + value_name + " (" + std::to_string(value) +
                      ") is not a multiple of " + divisor_name + " (" + std::to_string(divisor) +
                      ")");
}

std::string ShapeString(std::span<const uint64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Copies tensors from the file into the float32 arena, checking names and shapes.
class WeightBinder {
 public:
  WeightBinder(const SafetensorsFile& file, std::vector<float>* arena)
      : file_(file), arena_(arena) {}

  StatusOr<WeightSpan> Tensor(const std::string& name, std::vector<uint64_t> shape) {
    const SafetensorsTensor* tensor = file_.Find(name);
    if (tensor == nullptr) return CorruptError("model file has no tensor '" + name + "'");
    if (tensor->shape != shape) {
      return CorruptError("tensor '" + name + "' has shape " + ShapeString(tensor->shape) +
                          ", the model config needs " + ShapeString(shape));
    }
    WeightSpan span;
    span.offset = (arena_->size() + kArenaAlignmentFloats - 1) / kArenaAlignmentFloats *
                  kArenaAlignmentFloats;
    span.size = tensor->element_count();
    arena_->resize(span.offset + span.size);
    TOK1D_RETURN_IF_ERROR(
        TensorToFloat(*tensor, std::span<float>(*arena_).subspan(span.offset, span.size)));
    for (size_t i = 0; i < span.size; ++i) {
      if (!std::isfinite((*arena_)[span.offset + i])) {
        return CorruptError("tensor '" + name + "' holds a non-finite value");
      }
    }
    bound_.insert(name);
    return span;
  }

  StatusOr<LinearWeights> Linear(const std::string& name, uint32_t in, uint32_t out) {
    LinearWeights linear;
    linear.in = in;
    linear.out = out;
    TOK1D_ASSIGN_OR_RETURN(linear.weight, Tensor(name + ".weight", {out, in}));
    TOK1D_ASSIGN_OR_RETURN(linear.bias, Tensor(name + ".bias", {out}));
    return linear;
  }

  // A Linear that later models add: absent is fine, present must have the right shape.
  StatusOr<std::optional<LinearWeights>> OptionalLinear(const std::string& name, uint32_t in,
                                                        uint32_t out) {
    if (file_.Find(name + ".weight") == nullptr && file_.Find(name + ".bias") == nullptr) {
      return std::optional<LinearWeights>();
    }
    TOK1D_ASSIGN_OR_RETURN(LinearWeights linear, Linear(name, in, out));
    return std::optional<LinearWeights>(linear);
  }

  // A Conv2d(in, out, 3, padding=1): the weight is stored [out, in, 3, 3] and reordered in the
  // arena to [out, 3, 3, in], the layout the backends' Conv3x3 reads.
  StatusOr<ConvWeights> Conv3x3(const std::string& name, uint32_t in, uint32_t out) {
    ConvWeights conv;
    conv.in = in;
    conv.out = out;
    TOK1D_ASSIGN_OR_RETURN(conv.weight, Tensor(name + ".weight", {out, in, 3, 3}));
    TOK1D_ASSIGN_OR_RETURN(conv.bias, Tensor(name + ".bias", {out}));
    float* w = arena_->data() + conv.weight.offset;
    const std::vector<float> pytorch(w, w + conv.weight.size);
    for (size_t o = 0; o < out; ++o) {
      for (size_t i = 0; i < in; ++i) {
        for (size_t tap = 0; tap < 9; ++tap)
          w[(o * 9 + tap) * in + i] = pytorch[(o * in + i) * 9 + tap];
      }
    }
    return conv;
  }

  StatusOr<LayerNormWeights> LayerNorm(const std::string& name, uint32_t width) {
    LayerNormWeights norm;
    TOK1D_ASSIGN_OR_RETURN(norm.gamma, Tensor(name + ".weight", {width}));
    TOK1D_ASSIGN_OR_RETURN(norm.beta, Tensor(name + ".bias", {width}));
    return norm;
  }

  StatusOr<BlockWeights> Block(const std::string& name, const ModelConfig& config) {
    const uint32_t d = config.width;
    BlockWeights block;
    TOK1D_ASSIGN_OR_RETURN(block.norm1, LayerNorm(name + ".norm1", d));
    TOK1D_ASSIGN_OR_RETURN(block.qkv, Linear(name + ".qkv", d, 3 * d));
    TOK1D_ASSIGN_OR_RETURN(block.proj, Linear(name + ".proj", d, d));
    TOK1D_ASSIGN_OR_RETURN(block.norm2, LayerNorm(name + ".norm2", d));
    TOK1D_ASSIGN_OR_RETURN(block.fc1, Linear(name + ".fc1", d, config.mlp_width()));
    TOK1D_ASSIGN_OR_RETURN(block.fc2, Linear(name + ".fc2", config.mlp_width(), d));
    return block;
  }

  // Every tensor must be used, except entropy-coder tables ("entropy.*"): an unknown tensor
  // means an architecture this runtime does not implement.
  Status CheckAllBound() const {
    for (const SafetensorsTensor& tensor : file_.tensors) {
      if (tensor.name.starts_with("entropy.") || bound_.count(tensor.name)) continue;
      return UnsupportedError("model file has a tensor this tok1d does not know: '" + tensor.name +
                              "'");
    }
    return OkStatus();
  }

 private:
  const SafetensorsFile& file_;
  std::vector<float>* arena_;
  std::set<std::string> bound_;
};

StatusOr<ModelWeights> BindWeights(const ModelConfig& c, WeightBinder& binder) {
  const uint32_t d = c.width, n = c.patch_count(), k = c.tokens, code = c.code_dim();
  ModelWeights w;
  TOK1D_ASSIGN_OR_RETURN(w.patch_embed, binder.Linear("patch_embed", c.patch_dim(), d));
  TOK1D_ASSIGN_OR_RETURN(w.enc_pos, binder.Tensor("enc_pos", {n, d}));
  TOK1D_ASSIGN_OR_RETURN(w.latents, binder.Tensor("latents", {k, d}));
  for (uint32_t i = 0; i < c.enc_depth; ++i) {
    TOK1D_ASSIGN_OR_RETURN(BlockWeights block, binder.Block("enc_blocks." + std::to_string(i), c));
    w.enc_blocks.push_back(block);
  }
  TOK1D_ASSIGN_OR_RETURN(w.enc_norm, binder.LayerNorm("enc_norm", d));
  TOK1D_ASSIGN_OR_RETURN(w.to_code, binder.Linear("to_code", d, code));
  TOK1D_ASSIGN_OR_RETURN(w.shortcut_enc, binder.Linear("shortcut_enc", c.pooled_dim(), k * code));
  TOK1D_ASSIGN_OR_RETURN(w.code_in_embed, binder.OptionalLinear("code_in_embed", code, d));
  TOK1D_ASSIGN_OR_RETURN(w.code_embed, binder.Linear("code_embed", code, d));
  TOK1D_ASSIGN_OR_RETURN(w.dec_token_pos, binder.Tensor("dec_token_pos", {k, d}));
  TOK1D_ASSIGN_OR_RETURN(w.mask_token, binder.Tensor("mask_token", {d}));
  TOK1D_ASSIGN_OR_RETURN(w.patch_queries, binder.Tensor("patch_queries", {n, d}));
  for (uint32_t i = 0; i < c.dec_depth; ++i) {
    TOK1D_ASSIGN_OR_RETURN(BlockWeights block, binder.Block("dec_blocks." + std::to_string(i), c));
    w.dec_blocks.push_back(block);
  }
  TOK1D_ASSIGN_OR_RETURN(w.dec_norm, binder.LayerNorm("dec_norm", d));
  TOK1D_ASSIGN_OR_RETURN(w.to_pixels, binder.Linear("to_pixels", d, c.patch_dim()));
  TOK1D_ASSIGN_OR_RETURN(w.shortcut_dec, binder.Linear("shortcut_dec", k * code, c.pooled_dim()));
  const uint32_t coarse_patch = c.coarse_patch();
  TOK1D_ASSIGN_OR_RETURN(w.coarse_embed,
                         binder.OptionalLinear("coarse_embed", coarse_patch * coarse_patch * 3, d));
  if (w.coarse_embed && (coarse_patch == 0 || c.patch * c.pool % c.tile != 0)) {
    return CorruptError("model has coarse_embed, but patch · pool / tile is not a whole number");
  }
  if (c.conv_head) {
    ConvHeadWeights head;
    const uint32_t half = c.head_patch();
    TOK1D_ASSIGN_OR_RETURN(head.head_in, binder.Linear("head_in", d, half * half * c.conv_head));
    for (uint32_t i = 0; i < c.conv_blocks; ++i) {
      const std::string name = "head_blocks." + std::to_string(i);
      ConvBlockWeights block;
      TOK1D_ASSIGN_OR_RETURN(block.conv1,
                             binder.Conv3x3(name + ".conv1", c.conv_head, c.conv_head));
      TOK1D_ASSIGN_OR_RETURN(block.conv2,
                             binder.Conv3x3(name + ".conv2", c.conv_head, c.conv_head));
      head.blocks.push_back(block);
    }
    TOK1D_ASSIGN_OR_RETURN(head.head_out, binder.Conv3x3("head_out", c.conv_head, 12));
    w.conv_head = std::move(head);
  }
  TOK1D_RETURN_IF_ERROR(binder.CheckAllBound());
  return w;
}

bool IsPrintableAscii(std::string_view text) {
  for (char ch : text) {
    if (ch < 0x20 || ch > 0x7E) return false;
  }
  return true;
}

// The directory holding the running executable (Linux /proc), empty if unknown.
std::filesystem::path ExecutableDirectory() {
  std::error_code error;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

StatusOr<ModelConfig> ParseModelConfig(std::string_view json) {
  nlohmann::json config = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return CorruptError("model config is not a JSON object");
  }
  ModelConfig c;
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "tile", kT1dMaxTileSize, &c.tile));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "patch", kT1dMaxTileSize, &c.patch));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "width", kMaxWidth, &c.width));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "enc_depth", kMaxDepth, &c.enc_depth));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "dec_depth", kMaxDepth, &c.dec_depth));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "heads", kMaxWidth, &c.heads));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "mlp_ratio", 64, &c.mlp_ratio));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "tokens", kMaxTokens, &c.tokens));
  TOK1D_RETURN_IF_ERROR(GetPositive(config, "pool", kT1dMaxTileSize, &c.pool));

  auto levels = config.find("fsq_levels");
  if (levels == config.end() || !levels->is_array() || levels->empty() ||
      levels->size() > kFsqMaxDims) {
    return CorruptError("model config 'fsq_levels' must be a list of 1.." +
                        std::to_string(kFsqMaxDims) + " levels");
  }
  for (const nlohmann::json& level : *levels) {
    if (!level.is_number_unsigned() || level.get<uint64_t>() < kFsqMinLevel ||
        level.get<uint64_t>() > kFsqMaxLevel) {
      return CorruptError("model config 'fsq_levels' entries must be integers in " +
                          std::to_string(kFsqMinLevel) + ".." + std::to_string(kFsqMaxLevel));
    }
    c.fsq_levels.push_back(static_cast<uint32_t>(level.get<uint64_t>()));
  }
  if (c.codebook_size() > (uint64_t{1} << 31)) {
    return CorruptError("model config: FSQ codebook of " + std::to_string(c.codebook_size()) +
                        " entries is larger than 2^31");
  }
  auto eps = config.find("ln_eps");
  if (eps == config.end() || !eps->is_number() || !(eps->get<double>() > 0) ||
      !(eps->get<double>() < 1)) {
    return CorruptError("model config 'ln_eps' must be a number in (0, 1)");
  }
  c.ln_eps = static_cast<float>(eps->get<double>());

  if (c.tile < kT1dMinTileSize) {
    return CorruptError("model config: tile " + std::to_string(c.tile) + " is below " +
                        std::to_string(kT1dMinTileSize));
  }
  TOK1D_RETURN_IF_ERROR(CheckDivides(c.patch, "patch", c.tile, "tile"));
  TOK1D_RETURN_IF_ERROR(CheckDivides(c.pool, "pool", c.tile, "tile"));
  TOK1D_RETURN_IF_ERROR(CheckDivides(c.heads, "heads", c.width, "width"));
  // The conv head (optional; models/tok1d_model.py's conv_blocks defaults to 2).
  if (config.contains("conv_head") && config["conv_head"] != 0) {
    TOK1D_RETURN_IF_ERROR(GetPositive(config, "conv_head", 4096, &c.conv_head));
    c.conv_blocks = 2;
    if (config.contains("conv_blocks") && config["conv_blocks"] != 0) {
      TOK1D_RETURN_IF_ERROR(GetPositive(config, "conv_blocks", kMaxDepth, &c.conv_blocks));
    } else if (config.contains("conv_blocks")) {
      c.conv_blocks = 0;
    }
    TOK1D_RETURN_IF_ERROR(CheckDivides(2, "2", c.patch, "patch (with a conv head)"));
  }
  return c;
}

std::string Model::sha256_hex() const { return HexString(identity_.sha256); }

namespace {

// metadata "refinement": {"bits": B, "after": [...]}; the plan must obey the container's rules
// (CheckRefinement) for this model's K and FSQ dimensions.
StatusOr<Refinement> ParseRefinementPlan(std::string_view json, const ModelConfig& config) {
  const nlohmann::json plan = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  const auto is_u32 = [](const nlohmann::json& value) {
    return value.is_number_unsigned() && value.get<uint64_t>() <= UINT32_MAX;
  };
  if (!plan.is_object() || !plan.contains("bits") || !is_u32(plan["bits"]) ||
      !plan.contains("after") || !plan["after"].is_array() ||
      !std::all_of(plan["after"].begin(), plan["after"].end(), is_u32)) {
    return CorruptError(
        "model metadata 'refinement' must be an object with \"bits\" and "
        "\"after\", unsigned 32-bit numbers");
  }
  Refinement refinement;
  refinement.bits = plan["bits"].get<uint32_t>();
  for (const nlohmann::json& value : plan["after"])
    refinement.after.push_back(value.get<uint32_t>());
  TOK1D_RETURN_IF_ERROR(
      CheckRefinement(refinement, config.tokens, static_cast<uint32_t>(config.fsq_levels.size()))
          .WithContext("model metadata 'refinement'"));
  if (refinement.bits == 0) return CorruptError("model metadata 'refinement' has 0 bits");
  return refinement;
}

}  // namespace

StatusOr<Model> LoadModel(std::span<const uint8_t> file_bytes) {
  TOK1D_ASSIGN_OR_RETURN(SafetensorsFile file, ParseSafetensors(file_bytes));
  auto meta = [&file](const char* key) -> const std::string* {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? nullptr : &it->second;
  };
  const std::string* format = meta("format");
  if (format == nullptr || *format != kModelFormat) {
    return UnsupportedError("not a tok1d model (metadata format is not \"tok1d-model\")");
  }
  const std::string* version = meta("format_version");
  if (version == nullptr || *version != kModelFormatVersion) {
    return UnsupportedError("tok1d model format_version " + (version ? *version : "(none)") +
                            " is not supported (this tok1d reads version 1)");
  }
  const std::string* name = meta("name");
  if (name == nullptr || name->empty() || name->size() > 255 || !IsPrintableAscii(*name)) {
    return CorruptError("model metadata 'name' must be 1..255 printable ASCII characters");
  }
  const std::string* config_json = meta("config");
  if (config_json == nullptr) return CorruptError("model metadata has no 'config'");

  Model model;
  TOK1D_ASSIGN_OR_RETURN(model.config_, ParseModelConfig(*config_json));
  std::vector<float> arena;
  arena.reserve(file_bytes.size() / 2 + 4096);
  WeightBinder binder(file, &arena);
  TOK1D_ASSIGN_OR_RETURN(model.layout_, BindWeights(model.config_, binder));
  model.arena_ = std::make_shared<const std::vector<float>>(std::move(arena));
  TOK1D_ASSIGN_OR_RETURN(model.entropy_tables_,
                         EntropyTables::Load(file, model.config_.tokens, model.config_.fsq_levels));
  if (const std::string* plan = meta("refinement")) {
    TOK1D_ASSIGN_OR_RETURN(model.refinement_, ParseRefinementPlan(*plan, model.config_));
  }
  model.identity_.name = *name;
  model.identity_.sha256 = Sha256(file_bytes);
  model.metadata_ = std::move(file.metadata);
  model.file_bytes_ = file_bytes.size();
  return model;
}

StatusOr<Model> LoadModelFile(const std::string& path) {
  auto bytes = ReadFileBytes(path, kMaxModelFileBytes);
  if (!bytes.ok()) return bytes.status();
  auto model = LoadModel(*bytes);
  if (!model.ok()) return model.status().WithContext("model " + path);
  return model;
}

bool HasEmbeddedModel() { return TOK1D_EMBEDDED_MODEL != 0; }

StatusOr<Model> LoadDefaultModel() {
#if TOK1D_EMBEDDED_MODEL
  auto model = LoadModel(std::span<const uint8_t>(
      tok1d_embedded_model_begin,
      static_cast<size_t>(tok1d_embedded_model_end - tok1d_embedded_model_begin)));
  if (!model.ok()) return model.status().WithContext("embedded default model");
  return model;
#endif
  const std::filesystem::path dir = ExecutableDirectory();
  if (!dir.empty()) {
    for (const std::filesystem::path& candidate :
         {dir / kDefaultModelFileName, dir / ".." / "share" / "tok1d" / kDefaultModelFileName}) {
      std::error_code error;
      if (std::filesystem::is_regular_file(candidate, error)) {
        return LoadModelFile(candidate.string());
      }
    }
  }
  return NotFoundError("no default model in this build; pass --model PATH");
}

std::array<uint8_t, 32> Sha256(std::span<const uint8_t> bytes) {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  // EVP_Digest cannot fail for SHA-256 on a working OpenSSL; a failure would leave zeros,
  // which no real file hashes to, so a mismatch is still reported downstream.
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

std::string HexString(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes.size() * 2);
  for (uint8_t byte : bytes) {
    text += kDigits[byte >> 4];
    text += kDigits[byte & 15];
  }
  return text;
}

}  // namespace tok1d
