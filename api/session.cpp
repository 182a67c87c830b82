// The C++ API (include/tok1d/tok1d.h) over the codec: rate targets, metadata chunks and file
// reading assembled once, here, for every caller (the tok1d command, the sweep, programs).
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "api/api_internal.h"
#include "codec/rate_control.h"
#include "common/text_format.h"
#include "imageio/metadata.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "metrics/metrics.h"

namespace tok1d {
namespace {

TokenAllocation InternalAllocation(Allocation allocation, bool psnr_target) {
  switch (allocation) {
    case Allocation::kUniform:
      return TokenAllocation::kUniform;
    case Allocation::kAdaptive:
      return TokenAllocation::kAdaptive;
    case Allocation::kDefault:
      break;
  }
  return psnr_target ? kDefaultPsnrAllocation : kDefaultBudgetAllocation;
}

uint8_t ChosenCoder(Coder coder, const Codec& codec) {
  if (coder == Coder::kRaw) return kRawCoderId;
  if (coder == Coder::kRange) return kRangeCoderId;
  return codec.default_coder();
}

// The byte budget of a --bytes or --bpp target (0 for the others).
uint64_t BudgetBytes(const EncodeOptions& options, const Image& image) {
  if (options.bpp > 0) {
    return static_cast<uint64_t>(std::floor(options.bpp * image.width * image.height / 8.0));
  }
  return options.bytes;
}

// Rate control on the files as written: with restoration on, each candidate gets its own.
RateControlOptions RateOptions(TokenAllocation allocation, const LayerCoder* coder, Codec& codec,
                               const Image& image, bool restore) {
  RateControlOptions rate{allocation, coder, {}};
  if (restore) {
    rate.finish = [&codec, &image](TokenFile* file) { return codec.Restore(image, file); };
  }
  return rate;
}

// The token count of each tile for a byte, bpp or PSNR target, from `full`, the encoding at all
// K tokens: every smaller count is a trim of it, so sizes are exact and decodes need no encode.
StatusOr<std::vector<uint32_t>> ChooseTokenCounts(const EncodeOptions& options, Codec& codec,
                                                  const TokenFile& full, const Image& image,
                                                  const LayerCoder* coder, bool restore) {
  const RateControlOptions rate = RateOptions(
      InternalAllocation(options.allocation, options.psnr > 0), coder, codec, image, restore);
  if (options.psnr > 0) return TokensReachingPsnr(codec, image, full, options.psnr, rate);
  const uint64_t budget = BudgetBytes(options, image);
  StatusOr<std::vector<uint32_t>> counts = TokensWithinBytes(codec, image, full, budget, rate);
  if (!counts.ok() && options.bpp > 0) {
    return counts.status().WithContext(FormatFixed(options.bpp, 4) + " bpp is " +
                                       FormatBytes(budget));
  }
  return counts;
}

SourceInfo SourceOf(const EncodeOptions& options) {
  SourceInfo source;
  source.alpha_composited = options.alpha_composited;
  source.background = options.background;
  return source;
}

ReadOptions DecodeReadOptions(const DecodeOptions& options) {
  ReadOptions read;
  read.allow_truncated = options.allow_truncated;
  return read;
}

int RateTargets(const EncodeOptions& options) {
  return (options.tokens != 0) + (options.bytes != 0) + (options.bpp > 0) + (options.psnr > 0);
}

// A file read and checked for decoding, before the tokenizer runs.
struct FileToDecode {
  TokenFile file;
  DecodeResult result;  // everything but the image
};

StatusOr<FileToDecode> ReadFileToDecode(const Codec& codec, std::span<const uint8_t> t1d,
                                        const DecodeOptions& options) {
  const ReadOptions read_options = DecodeReadOptions(options);
  TOK1D_ASSIGN_OR_RETURN(T1dHeaderInfo info, ReadT1dHeader(t1d, read_options));
  if (info.header.entropy_coder != kRawCoderId) {
    TOK1D_RETURN_IF_ERROR(codec.CheckModel(info.header));
  }
  ReadReport report;
  TOK1D_ASSIGN_OR_RETURN(TokenFile file, ReadT1d(t1d, read_options, &report,
                                                 codec.layer_coder(info.header.entropy_coder)));
  if (file.header.layer_count() == 0) {
    return TruncatedError("the file holds no complete token layer");
  }
  FileToDecode read;
  // The reader's warnings say it when the file is truncated ("file is truncated after …").
  read.result.truncated = report.truncated;
  for (const std::string& warning : report.warnings) read.result.warnings.push_back(warning);
  // The ICC profile and EXIF that the encoder stored.
  ImageMetadata metadata = MetadataFromChunks(file.extra_chunks, &read.result.warnings);
  read.result.icc = std::move(metadata.icc);
  read.result.exif = std::move(metadata.exif);
  read.result.tokens_per_tile = file.header.tokens_per_tile();
  if (options.max_tokens != 0) {
    for (uint32_t& count : read.result.tokens_per_tile) {
      count = std::min(count, options.max_tokens);
    }
  }
  read.file = std::move(file);
  return read;
}

static_assert(kMaxEffort == kMaxSearchEffort, "tok1d.h and codec/token_search.h agree");

// The file of `counts` tokens per tile with the tokens searched at `effort` for those counts,
// as `like` (effort 0, the same counts) is written: its header settings and extra chunks.
// Some tiles may keep fewer than `counts` (their last tokens did not pay for their bits), and
// without a budget some more (up to 3/2: theirs paid for more).
// Within `max_bytes` (0: no limit): when the search made it larger, the largest tiles lose
// tokens (from the end: a trim of the searched file) until it fits.
StatusOr<TokenFile> SearchedFile(Codec& codec, const Image& image, const TokenFile& like,
                                 const LayerCoder* coder, uint32_t effort, uint64_t max_bytes,
                                 const std::function<void(double)>& progress) {
  const std::vector<uint32_t> counts = like.header.tokens_per_tile();
  SourceInfo source;
  source.alpha_composited = like.header.alpha_composited;
  source.background = like.header.background;
  SearchOptions search = SearchOptionsForEffort(effort);
  // A byte budget's counts are already the largest that fit: grown tiles would only be cut
  // again below.
  if (max_bytes != 0) search.grow_counts = 0;
  TOK1D_ASSIGN_OR_RETURN(TokenFile file, codec.Encode(image, counts, source, search, progress));
  file.extra_chunks = like.extra_chunks;
  file.header.entropy_coder = like.header.entropy_coder;
  if (max_bytes == 0) return file;
  std::vector<uint32_t> fitted = file.header.tokens_per_tile();
  while (true) {
    TOK1D_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes, WriteT1d(file, coder));
    if (bytes.size() <= max_bytes) return file;
    const auto largest = std::max_element(fitted.begin(), fitted.end());
    if (*largest <= 1) return like;  // cannot happen for a budget `like` meets; stay safe
    for (uint32_t& count : fitted) count = count == *largest ? count - 1 : count;
    TOK1D_ASSIGN_OR_RETURN(file, TrimTokens(std::move(file), fitted));
  }
}

// With restoration on, fits the colour restoration of `file`'s final tokens (Codec::Restore);
// maps that would take the file past `max_bytes` (0: no limit) are left out.
Status FinishFile(Codec& codec, const Image& image, const LayerCoder* coder, bool restore,
                  uint64_t max_bytes, TokenFile* file) {
  if (!restore) return OkStatus();
  TOK1D_RETURN_IF_ERROR(codec.Restore(image, file));
  if (max_bytes == 0 || !file->restoration.any()) return OkStatus();
  TOK1D_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes, WriteT1d(*file, coder));
  if (bytes.size() > max_bytes) file->restoration = Restoration{};
  return OkStatus();
}

// One file per entry of `allocations` (tokens per tile), each a trim of `full`, or with
// effort > 0 searched for its counts (within max_bytes[i] when given).
StatusOr<std::vector<EncodeResult>> WriteTrims(
    Codec& codec, const Image& image, const TokenFile& full, const LayerCoder* coder,
    const std::vector<std::vector<uint32_t>>& allocations, uint32_t effort,
    std::span<const uint64_t> max_bytes, bool restore) {
  std::vector<EncodeResult> results;
  for (size_t i = 0; i < allocations.size(); ++i) {
    const uint64_t budget = i < max_bytes.size() ? max_bytes[i] : 0;
    TOK1D_ASSIGN_OR_RETURN(TokenFile trimmed, TrimTokens(full, allocations[i]));
    if (effort > 0) {
      TOK1D_ASSIGN_OR_RETURN(trimmed,
                             SearchedFile(codec, image, trimmed, coder, effort, budget, {}));
    }
    TOK1D_RETURN_IF_ERROR(FinishFile(codec, image, coder, restore, budget, &trimmed));
    EncodeResult result;
    TOK1D_ASSIGN_OR_RETURN(result.t1d, WriteT1d(trimmed, coder));
    result.tokens_per_tile = trimmed.header.tokens_per_tile();
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace

// ---- LoadedModel ----

LoadedModel::LoadedModel(std::unique_ptr<ModelImpl> impl) : impl_(std::move(impl)) {}
LoadedModel::~LoadedModel() = default;

namespace {
StatusOr<std::shared_ptr<const LoadedModel>> Wrap(StatusOr<Model> model) {
  if (!model.ok()) return model.status();
  return ModelImpl::Wrap(std::move(model).value());
}
}  // namespace

std::shared_ptr<const LoadedModel> ModelImpl::Wrap(Model model) {
  auto impl = std::make_unique<ModelImpl>(std::move(model));
  return std::shared_ptr<const LoadedModel>(new LoadedModel(std::move(impl)));
}

StatusOr<std::shared_ptr<const LoadedModel>> LoadedModel::LoadDefault() {
  return Wrap(LoadDefaultModel());
}
StatusOr<std::shared_ptr<const LoadedModel>> LoadedModel::LoadFile(const std::string& path) {
  return Wrap(LoadModelFile(path));
}
StatusOr<std::shared_ptr<const LoadedModel>> LoadedModel::LoadBytes(
    std::span<const uint8_t> bytes) {
  return Wrap(LoadModel(bytes));
}

ModelInfo LoadedModel::info() const {
  const Model& model = impl_->model;
  ModelInfo info;
  info.name = model.identity().name;
  info.sha256 = model.sha256_hex();
  info.tile = model.config().tile;
  info.max_tokens = model.config().tokens;
  info.fsq_levels = model.config().fsq_levels;
  info.entropy_tables = model.entropy_tables() != nullptr;
  info.refinement_tokens = model.refinement().count();
  info.file_bytes = model.file_bytes();
  return info;
}

std::vector<std::string> CompiledDevices() {
  std::vector<std::string> devices;
  for (std::string_view backend : CompiledBackends()) devices.emplace_back(backend);
  return devices;
}

std::string RecommendedBlasCore() { return OpenBlasCoreForThisCpu(); }

void RestartWithRecommendedBlasCore(char** argv) {
  const std::string core = RecommendedBlasCore();
  if (core.empty()) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);  // set now, so the new start does not repeat
  execv("/proc/self/exe", argv);
}

std::vector<QuantizerStep> DefaultQuantizerSteps() { return {}; }

// ---- Session ----

Session::Session(std::unique_ptr<SessionImpl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const LoadedModel> model,
                                                   const SessionOptions& options,
                                                   std::string* note) {
  if (model == nullptr) return InvalidArgumentError("no model");
  CodecOptions codec_options;
  codec_options.device = options.device;
  codec_options.threads = options.threads;
  codec_options.deblock = options.deblock;
  codec_options.refine = options.refine;
  codec_options.restore = options.restore;
  for (const QuantizerStep& step : options.steps.value_or(DefaultQuantizerSteps())) {
    codec_options.steps.runs.push_back({step.first, step.step});
  }
  codec_options.max_batch_tiles = options.max_batch_tiles;
  codec_options.on_fallback = options.on_fallback;
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec,
                         Codec::Create(model->impl().model, codec_options, note));
  auto impl = std::make_unique<SessionImpl>();
  impl->model = std::move(model);
  impl->codec = std::move(codec);
  impl->restore = options.restore;
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const LoadedModel& Session::model() const { return *impl_->model; }
std::string Session::device() const { return std::string(impl_->codec->backend().name()); }
std::string Session::description() const { return impl_->codec->backend().description(); }
size_t Session::batch_tiles() const { return impl_->codec->BatchTiles(); }

Status Session::CheckEncodeOptions(const EncodeOptions& options) const {
  const Codec& codec = *impl_->codec;
  if (RateTargets(options) != 1) {
    return InvalidArgumentError("exactly one rate target (tokens, bytes, bpp, psnr) is needed");
  }
  const uint32_t model_tokens = codec.model().config().tokens;
  if (options.tokens > model_tokens) {
    return InvalidArgumentError("--tokens " + std::to_string(options.tokens) +
                                " is more than the model's " + std::to_string(model_tokens) +
                                " tokens per tile");
  }
  if (options.effort > kMaxEffort) {
    return InvalidArgumentError("--effort " + std::to_string(options.effort) +
                                " is out of range (0 … " + std::to_string(kMaxEffort) + ")");
  }
  if (codec.layer_coder(ChosenCoder(options.coder, codec)) == nullptr) {
    return InvalidArgumentError(
        "--coder range needs a model with entropy tables (made by "
        "models/fit_entropy.py); this one has none");
  }
  return OkStatus();
}

StatusOr<EncodeResult> Session::Encode(const Image& image, const EncodeOptions& options) {
  TOK1D_RETURN_IF_ERROR(CheckEncodeOptions(options));
  Codec& codec = *impl_->codec;
  const uint32_t encode_tokens =
      options.tokens != 0 ? options.tokens : codec.model().config().tokens;
  TOK1D_ASSIGN_OR_RETURN(TokenFile file, codec.Encode(image, encode_tokens, SourceOf(options)));
  // Metadata chunks first, so that byte targets count them.
  ImageMetadata metadata;
  metadata.icc = options.icc;
  metadata.exif = options.exif;
  const MetadataSelection selection{!options.icc.empty(), !options.exif.empty()};
  TOK1D_ASSIGN_OR_RETURN(file.extra_chunks, MetadataChunks(metadata, selection));
  file.header.entropy_coder = ChosenCoder(options.coder, codec);
  const LayerCoder* coder = codec.layer_coder(file.header.entropy_coder);
  if (options.tokens == 0) {
    TOK1D_ASSIGN_OR_RETURN(const std::vector<uint32_t> counts,
                           ChooseTokenCounts(options, codec, file, image, coder, impl_->restore));
    TOK1D_ASSIGN_OR_RETURN(file, TrimTokens(std::move(file), counts));
  }
  if (options.effort > 0) {
    // The counts were chosen at effort 0; the search then spends them better. A PSNR target
    // is met by the effort-0 file; the searched one trades a little error for bits, so it
    // is checked and, should it miss the target, the effort-0 file is kept.
    const uint64_t budget = BudgetBytes(options, image);
    TOK1D_ASSIGN_OR_RETURN(
        TokenFile searched,
        SearchedFile(codec, image, file, coder, options.effort, budget, options.on_progress));
    bool keep_searched = true;
    if (options.psnr > 0) {
      TOK1D_ASSIGN_OR_RETURN(const Image decoded, codec.Decode(searched));
      keep_searched = Psnr(image, decoded) >= options.psnr;
    }
    if (keep_searched) file = std::move(searched);
  }
  TOK1D_RETURN_IF_ERROR(
      FinishFile(codec, image, coder, impl_->restore, BudgetBytes(options, image), &file));
  EncodeResult result;
  TOK1D_ASSIGN_OR_RETURN(result.t1d, WriteT1d(file, coder));
  result.tokens_per_tile = file.header.tokens_per_tile();
  if (options.compute_psnr) {
    TOK1D_ASSIGN_OR_RETURN(Image decoded, codec.Decode(file));
    result.psnr = Psnr(image, decoded);
  }
  return result;
}

StatusOr<std::vector<EncodeResult>> Session::EncodeTokenLadder(
    const Image& image, std::span<const uint32_t> token_counts, uint32_t effort) {
  Codec& codec = *impl_->codec;
  TOK1D_ASSIGN_OR_RETURN(const TokenFile full, codec.Encode(image, codec.model().config().tokens));
  const LayerCoder* coder = codec.layer_coder(full.header.entropy_coder);
  std::vector<std::vector<uint32_t>> allocations;
  for (uint32_t k : token_counts) allocations.emplace_back(full.tokens.size(), k);
  return WriteTrims(codec, image, full, coder, allocations, effort, {}, impl_->restore);
}

StatusOr<std::vector<EncodeResult>> Session::EncodeBudgets(const Image& image,
                                                           std::span<const uint64_t> max_bytes,
                                                           Allocation allocation, uint32_t effort) {
  Codec& codec = *impl_->codec;
  TOK1D_ASSIGN_OR_RETURN(const TokenFile full, codec.Encode(image, codec.model().config().tokens));
  const LayerCoder* coder = codec.layer_coder(full.header.entropy_coder);
  TOK1D_ASSIGN_OR_RETURN(const std::vector<std::vector<uint32_t>> allocations,
                         TokensWithinBudgets(codec, image, full, max_bytes,
                                             RateOptions(InternalAllocation(allocation, false),
                                                         coder, codec, image, impl_->restore)));
  return WriteTrims(codec, image, full, coder, allocations, effort, max_bytes, impl_->restore);
}

StatusOr<DecodeResult> Session::Decode(std::span<const uint8_t> t1d, const DecodeOptions& options) {
  const std::span<const uint8_t> files[] = {t1d};
  std::vector<StatusOr<DecodeResult>> results = DecodeMany(files, options);
  return std::move(results.front());
}

std::vector<StatusOr<DecodeResult>> Session::DecodeMany(
    std::span<const std::span<const uint8_t>> files, const DecodeOptions& options) {
  Codec& codec = *impl_->codec;
  std::vector<StatusOr<DecodeResult>> results(files.size(), StatusOr<DecodeResult>(OkStatus()));
  std::vector<FileToDecode> read(files.size());
  std::vector<const TokenFile*> to_decode;
  std::vector<size_t> index_of;
  for (size_t i = 0; i < files.size(); ++i) {
    StatusOr<FileToDecode> file = ReadFileToDecode(codec, files[i], options);
    if (!file.ok()) {
      results[i] = file.status();
      continue;
    }
    read[i] = std::move(file).value();
    to_decode.push_back(&read[i].file);
    index_of.push_back(i);
  }
  std::vector<StatusOr<Image>> images = codec.DecodeMany(to_decode, options.max_tokens);
  for (size_t j = 0; j < images.size(); ++j) {
    const size_t i = index_of[j];
    if (!images[j].ok()) {
      results[i] = images[j].status();
      continue;
    }
    DecodeResult result = std::move(read[i].result);
    result.image = std::move(images[j]).value();
    results[i] = std::move(result);
  }
  return results;
}

// ---- files ----

StatusOr<T1dInfo> InspectT1d(std::span<const uint8_t> t1d) {
  ReadOptions options;
  options.allow_truncated = true;
  TOK1D_ASSIGN_OR_RETURN(const T1dHeaderInfo header_info, ReadT1dHeader(t1d, options));
  // Raw tokens need no model: read them too, so that damage inside a layer is found.
  if (header_info.header.entropy_coder == kRawCoderId) {
    TOK1D_RETURN_IF_ERROR(ReadT1d(t1d, options).status());
  }
  const T1dHeader& header = header_info.header;
  T1dInfo info;
  info.width = header.width;
  info.height = header.height;
  info.tile = header.tile_size;
  info.tiles = header.tile_count();
  info.max_tokens = header.max_tokens;
  info.tokens_per_tile = header.tokens_per_tile();
  if (header_info.report.truncated) {
    const uint32_t complete = header_info.report.layers_complete;
    for (uint32_t& count : info.tokens_per_tile) {
      count = std::min(count, header.TokensInLayers(complete));
    }
  }
  info.model_sha256 = HexString(header.model.sha256);
  info.coder = header.entropy_coder == kRangeCoderId ? "range" : "raw";
  info.format_version =
      std::to_string(header.major_version) + "." + std::to_string(header.minor_version);
  info.bytes = t1d.size();
  info.truncated = header_info.report.truncated;
  info.complete_layers = header_info.report.layers_complete;
  info.layers = header.layer_count();
  return info;
}

StatusOr<std::vector<uint8_t>> TrimT1d(std::span<const uint8_t> t1d, uint32_t tokens) {
  ReadOptions options;
  options.allow_truncated = true;
  TOK1D_ASSIGN_OR_RETURN(const T1dHeaderInfo info, ReadT1dHeader(t1d, options));
  return TrimT1dBytes(t1d, info.header.LayersForTokens(tokens), options);
}

}  // namespace tok1d
