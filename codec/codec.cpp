#include "codec/codec.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "codec/deblock.h"
#include "codec/entropy_coder.h"
#include "codec/restoration.h"
#include "codec/tiling.h"

namespace tok1d {
namespace {

std::string ShortSha(const std::array<uint8_t, 32>& sha) {
  return HexString(std::span<const uint8_t>(sha).first(8));
}

// The tokens of tile `tile` a decode of at most `max_tokens` per tile (0: all) uses.
uint32_t DecodedTokens(const TokenFile& file, size_t tile, uint32_t max_tokens) {
  const auto kept = static_cast<uint32_t>(file.tokens[tile].size());
  return max_tokens == 0 ? kept : std::min(kept, max_tokens);
}

// The tokenizer's input for tile `tile` of `file` at slot `slot` of a batch of `batch` tiles:
// its first DecodedTokens tokens and the refinements that come with them (offsets is filled
// with zeros for the whole batch the first time a tile has some).
void GatherTile(const TokenFile& file, size_t tile, size_t slot, size_t batch, uint32_t max_tokens,
                const FsqCodebook& codebook, size_t k, std::span<uint32_t> tokens,
                std::span<uint32_t> keep, std::vector<float>* offsets) {
  const Refinement& refinement = file.header.refinement;
  const size_t dims = codebook.dims();
  const std::vector<uint32_t>& tile_tokens = file.tokens[tile];
  const uint32_t kept = keep[slot] = DecodedTokens(file, tile, max_tokens);
  std::copy(tile_tokens.begin(), tile_tokens.begin() + kept,
            tokens.begin() + static_cast<std::ptrdiff_t>(slot * k));
  if (file.refinements.empty()) return;
  // The refinements that come with the first max_tokens tokens.
  const uint32_t refinement_limit =
      max_tokens == 0 ? refinement.count()
                      : file.header.RefinementsInLayers(file.header.LayersForTokens(max_tokens));
  const std::vector<uint32_t>& tile_refinements = file.refinements[tile];
  const size_t refined = std::min<size_t>(tile_refinements.size(), refinement_limit);
  if (refined > 0 && offsets->empty()) offsets->assign(batch * k * dims, 0.0f);
  for (size_t r = 0; r < refined; ++r) {
    codebook.RefinementOffsets(tile_refinements[r], refinement.bits,
                               &(*offsets)[(slot * k + r) * dims],
                               file.header.steps.StepOf(static_cast<uint32_t>(r)));
  }
}

// Whether tile `tile` of `file` is decoded from all its layers, which its restoration needs.
bool DecodedWhole(const TokenFile& file, size_t tile, uint32_t max_tokens) {
  return DecodedTokens(file, tile, max_tokens) == file.tokens[tile].size();
}

}  // namespace

Codec::Codec(Model model, std::unique_ptr<Backend> backend)
    : model_(std::move(model)), backend_(std::move(backend)) {
  if (model_.entropy_tables()) {
    range_coder_ =
        std::make_unique<RangeLayerCoder>(model_.entropy_tables(), model_.identity().sha256);
  }
}

const LayerCoder* Codec::layer_coder(uint8_t coder_id) const {
  if (coder_id == kRawCoderId) return &RawLayerCoder();
  if (coder_id == kRangeCoderId) return range_coder_.get();
  return nullptr;
}

StatusOr<std::unique_ptr<Codec>> Codec::Create(Model model, const CodecOptions& options,
                                               std::string* note) {
  BackendOptions backend_options;
  backend_options.threads = options.threads;
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                         CreateBackend(options.device, backend_options, note));
  CodecOptions effective = options;
  if (options.device == "auto") effective.cpu_fallback = true;
  return Create(std::move(model), std::move(backend), effective);
}

StatusOr<std::unique_ptr<Codec>> Codec::Create(Model model, std::unique_ptr<Backend> backend,
                                               const CodecOptions& options) {
  if (backend == nullptr) return InvalidArgumentError("Codec::Create: no backend");
  if (const Status steps = CheckQuantizerSteps(options.steps, model.config().tokens); !steps.ok()) {
    return InvalidArgumentError("quantiser steps: " + steps.message());
  }
  std::unique_ptr<Codec> codec(new Codec(std::move(model), std::move(backend)));
  codec->max_batch_tiles_ = options.max_batch_tiles != 0 ? options.max_batch_tiles
                                                         : codec->backend_->preferred_batch_tiles();
  codec->deblock_ = options.deblock;
  codec->restore_ = options.restore;
  codec->options_ = options;
  TokenizerOptions tokenizer_options;
  tokenizer_options.max_batch_tiles = codec->max_batch_tiles_;
  // The tokenizer refers to codec->model_, which stays put: the Codec lives on the heap.
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::Create(codec->model_, *codec->backend_, tokenizer_options);
  if (tokenizer.ok()) {
    codec->tokenizer_ = std::move(tokenizer).value();
  } else {  // e.g. no room on the GPU for the weights
    TOK1D_RETURN_IF_ERROR(codec->FallBackToCpu(tokenizer.status()));
  }
  return codec;
}

Status Codec::FallBackToCpu(const Status& failure) {
  if (!options_.cpu_fallback || backend_->name() == "cpu") return failure;
  const std::string failed(backend_->name());
  BackendOptions backend_options;
  backend_options.threads = options_.threads;
  StatusOr<std::unique_ptr<Backend>> cpu = CreateBackend("cpu", backend_options);
  if (!cpu.ok()) return failure;
  // The tokenizer's device buffers go before the backend that holds them.
  tokenizer_.reset();
  backend_ = std::move(cpu).value();
  max_batch_tiles_ =
      options_.max_batch_tiles != 0 ? options_.max_batch_tiles : backend_->preferred_batch_tiles();
  TokenizerOptions tokenizer_options;
  tokenizer_options.max_batch_tiles = max_batch_tiles_;
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::Create(model_, *backend_, tokenizer_options);
  if (!tokenizer.ok()) return failure;
  tokenizer_ = std::move(tokenizer).value();
  if (options_.on_fallback) {
    options_.on_fallback("the " + failed + " backend failed (" + failure.message() +
                         "); continuing on the CPU");
  }
  return OkStatus();
}

template <typename Run>
Status Codec::WithCpuFallback(Run&& run) {
  if (tokenizer_ == nullptr) {  // a fall back whose CPU tokenizer could not be made
    return InternalError("the codec has no usable backend after an earlier failure");
  }
  const Status status = run();
  if (status.ok()) return status;
  TOK1D_RETURN_IF_ERROR(FallBackToCpu(status));
  return run();
}

size_t Codec::BatchTiles() const { return max_batch_tiles_; }

StatusOr<TokenFile> Codec::Encode(const Image& image, uint32_t tokens, const SourceInfo& source) {
  const uint32_t k = model_.config().tokens;
  if (tokens == 0 || tokens > k) {
    return InvalidArgumentError("token count " + std::to_string(tokens) +
                                " is out of range: the model makes 1.." + std::to_string(k) +
                                " tokens per tile");
  }
  const TileGrid grid = MakeTileGrid(image.width, image.height, model_.config().tile);
  const std::vector<uint32_t> counts(grid.count(), tokens);
  return Encode(image, counts, source);
}

StatusOr<TokenFile> Codec::Encode(const Image& image, std::span<const uint32_t> tokens_per_tile,
                                  const SourceInfo& source) {
  return Encode(image, tokens_per_tile, source, SearchOptions{});
}

StatusOr<Tokenizer*> Codec::SearchTokenizer() {
  if (tokenizer_ != nullptr && backend_->supports_backward()) return tokenizer_.get();
  if (search_tokenizer_ == nullptr) {
    BackendOptions backend_options;
    backend_options.threads = options_.threads;
    TOK1D_ASSIGN_OR_RETURN(search_backend_, CreateBackend("cpu", backend_options));
    TokenizerOptions tokenizer_options;
    tokenizer_options.max_batch_tiles = max_batch_tiles_;
    TOK1D_ASSIGN_OR_RETURN(search_tokenizer_,
                           Tokenizer::Create(model_, *search_backend_, tokenizer_options));
  }
  return search_tokenizer_.get();
}

StatusOr<TokenFile> Codec::Encode(const Image& image, std::span<const uint32_t> tokens_per_tile,
                                  const SourceInfo& source, const SearchOptions& search,
                                  const std::function<void(double)>& progress) {
  const ModelConfig& config = model_.config();
  if (search.enabled() && !options_.steps.empty()) {
    // The search moves values one level at a time and prices them with the full tables.
    return InvalidArgumentError("--effort above 0 does not take quantiser steps yet (--steps)");
  }
  if (image.width == 0 || image.height == 0 ||
      image.rgb.size() != size_t{image.width} * image.height * 3) {
    return InvalidArgumentError("cannot encode an empty or malformed image");
  }
  const TileGrid grid = MakeTileGrid(image.width, image.height, config.tile);
  if (tokens_per_tile.size() != grid.count()) {
    return InvalidArgumentError("got " + std::to_string(tokens_per_tile.size()) +
                                " token counts for " + std::to_string(grid.count()) + " tiles");
  }
  for (uint32_t count : tokens_per_tile) {
    if (count > config.tokens) {
      return InvalidArgumentError("a tile asks for " + std::to_string(count) +
                                  " tokens; the model makes " + std::to_string(config.tokens));
    }
  }

  TokenFile file;
  T1dHeader& header = file.header;
  header.width = image.width;
  header.height = image.height;
  header.tile_size = config.tile;
  SetTileGrid(&header);
  header.alpha_composited = source.alpha_composited;
  header.background = source.alpha_composited ? source.background : std::array<uint8_t, 3>{};
  header.model = model_.identity();
  header.fsq_levels = config.fsq_levels;
  header.max_tokens = config.tokens;
  header.entropy_coder = default_coder();
  if (options_.refine) header.refinement = model_.refinement();
  header.steps = options_.steps;
  file.tokens.resize(grid.count());
  file.refinements.resize(grid.count());

  const FsqCodebook codebook = config.codebook();
  const size_t k = config.tokens, dims = codebook.dims();
  const size_t tile_bytes = size_t{config.tile} * config.tile * 3;
  const bool refine = header.refinement.bits != 0;
  // The FSQ values before rounding: refinement and quantiser steps need them, and the search
  // starts from them.
  const bool keep_bounded = refine || search.enabled() || !options_.steps.empty();
  std::vector<uint8_t> tiles;
  std::vector<uint32_t> tokens(grid.count() * k);
  std::vector<float> bounded(keep_bounded ? grid.count() * k * dims : 0);
  for (size_t first = 0; first < grid.count(); first += BatchTiles()) {
    const size_t count = std::min(BatchTiles(), grid.count() - first);
    tiles.resize(count * tile_bytes);
    ExtractTiles(image, grid, first, count, tiles);
    const std::span<uint32_t> batch_tokens =
        std::span<uint32_t>(tokens).subspan(first * k, count * k);
    const std::span<float> batch_bounded =
        keep_bounded ? std::span<float>(bounded).subspan(first * k * dims, count * k * dims)
                     : std::span<float>();
    TOK1D_RETURN_IF_ERROR(WithCpuFallback(
        [&] { return tokenizer_->Encode(tiles, count, batch_tokens, batch_bounded); }));
  }
  // The search may change a tile's count (SearchOptions::trim_tails, grow_counts).
  std::vector<uint32_t> counts(tokens_per_tile.begin(), tokens_per_tile.end());
  if (search.enabled()) {
    TOK1D_RETURN_IF_ERROR(
        SearchTokens(image, grid, counts, header.refinement, search, progress, tokens, bounded));
  }
  header.layers_per_tile.resize(grid.count());
  for (size_t t = 0; t < grid.count(); ++t) {
    header.layers_per_tile[t] = header.LayersForTokens(counts[t]);
    const auto begin = tokens.begin() + static_cast<std::ptrdiff_t>(t * k);
    for (uint32_t i = 0; i < counts[t]; ++i) {
      const uint32_t step = options_.steps.StepOf(i);
      if (step == 1) continue;
      uint32_t token = 0;
      for (uint32_t d = 0; d < dims; ++d) {
        token += codebook.StepDigit(bounded[(t * k + i) * dims + d], d, step) * codebook.radix(d);
      }
      begin[i] = token;
    }
    file.tokens[t].assign(begin, begin + counts[t]);
    const uint32_t refinements = header.RefinementsInLayers(header.layers_per_tile[t]);
    for (uint32_t r = 0; r < refinements; ++r) {
      file.refinements[t].push_back(codebook.RefinementValue(begin[r], &bounded[(t * k + r) * dims],
                                                             header.refinement.bits,
                                                             options_.steps.StepOf(r)));
    }
  }
  return file;
}

Status Codec::SearchTokens(const Image& image, const TileGrid& grid,
                           std::span<uint32_t> tokens_per_tile, const Refinement& refinement,
                           const SearchOptions& search, const std::function<void(double)>& progress,
                           std::span<uint32_t> tokens, std::span<float> bounded) {
  const ModelConfig& config = model_.config();
  const size_t k = config.tokens, dims = config.code_dim();
  const size_t tile_bytes = size_t{config.tile} * config.tile * 3;
  TOK1D_ASSIGN_OR_RETURN(Tokenizer * tokenizer, SearchTokenizer());
  TokenSearch token_search(*tokenizer, model_, refinement);
  std::vector<SearchTile> info(grid.count());
  for (size_t t = 0; t < grid.count(); ++t) {
    const uint32_t x0 = static_cast<uint32_t>(t % grid.cols) * config.tile;
    const uint32_t y0 = static_cast<uint32_t>(t / grid.cols) * config.tile;
    info[t] = {tokens_per_tile[t], std::min(config.tile, image.width - x0),
               std::min(config.tile, image.height - y0)};
  }
  // λ, the image's own exchange rate between squared error and bits, from keep/2 to keep.
  std::vector<uint8_t> tiles;
  std::vector<double> error_keep(grid.count()), error_half(grid.count()), bits_keep(grid.count()),
      bits_half(grid.count());
  std::vector<uint32_t> half(grid.count());
  for (size_t t = 0; t < grid.count(); ++t) half[t] = tokens_per_tile[t] / 2;
  const size_t batch_tiles = BatchTiles();
  double lambda = 0;
  if (search.rate_weight > 0 && model_.entropy_tables() != nullptr) {
    for (size_t first = 0; first < grid.count(); first += batch_tiles) {
      const size_t count = std::min(batch_tiles, grid.count() - first);
      tiles.resize(count * tile_bytes);
      ExtractTiles(image, grid, first, count, tiles);
      const auto part = [&](auto& v) { return std::span(v).subspan(first, count); };
      const std::span<const float> b = bounded.subspan(first * k * dims, count * k * dims);
      const std::span<const SearchTile> batch_info =
          std::span<const SearchTile>(info).subspan(first, count);
      TOK1D_RETURN_IF_ERROR(token_search.Measure(tiles, batch_info, part(tokens_per_tile), b,
                                                 part(error_keep), part(bits_keep)));
      TOK1D_RETURN_IF_ERROR(token_search.Measure(tiles, batch_info, part(half), b, part(error_half),
                                                 part(bits_half)));
    }
    lambda = TokenSearch::Lambda(error_keep, error_half, bits_keep, bits_half, search.rate_weight);
  }
  // A pass over the counts: each tile's against shorter ones, never below half the count asked
  // for, and (before the search) longer ones, never above 3/2 of it; kept only if together the
  // changes save more than unequal counts cost the header.
  std::vector<uint32_t> fewest(grid.count()), most(grid.count());
  for (size_t t = 0; t < grid.count(); ++t) {
    fewest[t] = tokens_per_tile[t] / 2;
    most[t] = std::min(tokens_per_tile[t] + tokens_per_tile[t] / 2, static_cast<uint32_t>(k));
  }
  auto count_pass = [&](uint32_t grow_counts) -> Status {
    std::vector<uint32_t> chosen(tokens_per_tile.begin(), tokens_per_tile.end());
    std::vector<double> gain(grid.count(), 0.0);
    for (size_t first = 0; first < grid.count(); first += batch_tiles) {
      const size_t count = std::min(batch_tiles, grid.count() - first);
      tiles.resize(count * tile_bytes);
      ExtractTiles(image, grid, first, count, tiles);
      TOK1D_RETURN_IF_ERROR(ChooseCounts(
          token_search, tiles, std::span<const SearchTile>(info).subspan(first, count),
          lambda * search.trim_rate_weight,
          lambda * search.trim_rate_weight * search.grow_rate_weight, search.trim_counts,
          grow_counts, bounded.subspan(first * k * dims, count * k * dims),
          std::span(fewest).subspan(first, count), std::span(most).subspan(first, count),
          std::span(chosen).subspan(first, count), std::span(gain).subspan(first, count)));
    }
    const size_t before = LayerCountsBytes(tokens_per_tile), after = LayerCountsBytes(chosen);
    const double header_bits = after > before ? 8.0 * static_cast<double>(after - before) : 0.0;
    const double saved = std::accumulate(gain.begin(), gain.end(), 0.0);
    if (saved > lambda * header_bits) {
      std::copy(chosen.begin(), chosen.end(), tokens_per_tile.begin());
      for (size_t t = 0; t < grid.count(); ++t) info[t].keep = tokens_per_tile[t];
    }
    return OkStatus();
  };
  // Trimmed before the search too, so that the search works on the counts the file will keep.
  if (search.trim_tails && search.trim_first) TOK1D_RETURN_IF_ERROR(count_pass(search.grow_counts));
  for (size_t first = 0; first < grid.count(); first += batch_tiles) {
    const size_t count = std::min(batch_tiles, grid.count() - first);
    tiles.resize(count * tile_bytes);
    ExtractTiles(image, grid, first, count, tiles);
    const std::span<float> b = bounded.subspan(first * k * dims, count * k * dims);
    const double done = static_cast<double>(first) / static_cast<double>(grid.count());
    const double share = static_cast<double>(count) / static_cast<double>(grid.count());
    if (search.descent_steps > 0 || search.polish_rounds > 0) {
      TOK1D_RETURN_IF_ERROR(
          token_search.Optimise(tiles, std::span<const SearchTile>(info).subspan(first, count),
                                lambda, search, b, [&](double fraction) {
                                  if (progress) progress(done + share * fraction);
                                }));
      // The tokens of the searched values (cell or part centres: no rounding ties).
      for (size_t i = 0; i < count * k; ++i) {
        tokens[first * k + i] = token_search.TokenOf(b.subspan(i / k * k * dims, k * dims), i % k);
      }
    }
  }
  if (search.trim_tails) {
    TOK1D_RETURN_IF_ERROR(count_pass(0));
  }
  return OkStatus();
}

// Each tile's count against shorter ones down to 1/2 of it (3/4 and 1/2 for 2) but not below
// `fewest`, and longer ones up to 3/2 of it but not above `most`, on the values: the one that
// saves most squared error + λ · bits (λ for shorter, grow_lambda for longer; the count it has
// on a tie), and how much that saves.
Status Codec::ChooseCounts(TokenSearch& token_search, std::span<const uint8_t> tiles,
                           std::span<const SearchTile> info, double lambda, double grow_lambda,
                           uint32_t trim_counts, uint32_t grow_counts,
                           std::span<const float> bounded, std::span<const uint32_t> fewest,
                           std::span<const uint32_t> most, std::span<uint32_t> tokens_per_tile,
                           std::span<double> gain) {
  const size_t count = info.size();
  std::vector<double> error(count), bits(count), error_keep(count), bits_keep(count);
  TOK1D_RETURN_IF_ERROR(
      token_search.Measure(tiles, info, tokens_per_tile, bounded, error_keep, bits_keep));
  std::fill(gain.begin(), gain.end(), 0.0);
  std::vector<uint32_t> chosen(tokens_per_tile.begin(), tokens_per_tile.end()), other(count);
  // Each candidate against the count the tile has, at the λ of its direction.
  auto try_counts = [&](double candidate_lambda) -> Status {
    TOK1D_RETURN_IF_ERROR(token_search.Measure(tiles, info, other, bounded, error, bits));
    for (size_t t = 0; t < count; ++t) {
      const double saved = error_keep[t] - error[t] + candidate_lambda * (bits_keep[t] - bits[t]);
      if (other[t] >= 1 && other[t] != tokens_per_tile[t] && saved > gain[t]) {
        gain[t] = saved;
        chosen[t] = other[t];
      }
    }
    return OkStatus();
  };
  const uint32_t steps = std::max<uint32_t>(trim_counts, 1);
  for (uint32_t step = 1; step <= steps; ++step) {
    for (size_t t = 0; t < count; ++t) {
      other[t] = std::max(tokens_per_tile[t] * (2 * steps - step) / (2 * steps), fewest[t]);
    }
    TOK1D_RETURN_IF_ERROR(try_counts(lambda));
  }
  for (uint32_t step = 1; step <= grow_counts; ++step) {
    for (size_t t = 0; t < count; ++t) {
      other[t] = std::min(tokens_per_tile[t] + tokens_per_tile[t] * step / (2 * grow_counts),
                          std::max(most[t], tokens_per_tile[t]));
    }
    TOK1D_RETURN_IF_ERROR(try_counts(grow_lambda));
  }
  std::copy(chosen.begin(), chosen.end(), tokens_per_tile.begin());
  return OkStatus();
}

Status Codec::CheckModel(const T1dHeader& header) const {
  const ModelIdentity& ours = model_.identity();
  if (header.model.sha256 != ours.sha256) {
    return ModelMismatchError("the file was made with model '" + header.model.name + "' (sha256 " +
                              ShortSha(header.model.sha256) + "…), not with '" + ours.name +
                              "' (sha256 " + ShortSha(ours.sha256) +
                              "…); decode it with that model (--model PATH)");
  }
  const ModelConfig& config = model_.config();
  if (header.tile_size != config.tile || header.max_tokens != config.tokens ||
      header.fsq_levels != config.fsq_levels) {
    return CorruptError(
        "the header names this model but disagrees with it on tile size, "
        "tokens per tile or FSQ levels");
  }
  return OkStatus();
}

Status Codec::CheckDecodable(const TokenFile& file, uint32_t max_tokens) const {
  const T1dHeader& header = file.header;
  TOK1D_RETURN_IF_ERROR(CheckModel(header));
  const ModelConfig& config = model_.config();
  const TileGrid grid = MakeTileGrid(header.width, header.height, config.tile);
  if (grid.cols != header.tile_cols || grid.rows != header.tile_rows ||
      header.layers_per_tile.size() != grid.count() || file.tokens.size() != grid.count()) {
    return CorruptError("token file: tile grid does not match the image size");
  }
  // Checked here rather than by the tokenizer, which fails a whole batch: in DecodeMany a
  // batch holds tiles of other files too.
  if (!file.refinements.empty() && file.refinements.size() != grid.count()) {
    return CorruptError("token file: refinements do not match the tile grid");
  }
  for (size_t t = 0; t < file.refinements.size(); ++t) {
    if (file.refinements[t].size() > file.tokens[t].size() ||
        file.refinements[t].size() > header.refinement.count()) {
      return CorruptError("a tile has refinements of tokens it does not have");
    }
  }
  const uint64_t codebook = config.codebook_size();
  for (const std::vector<uint32_t>& tile_tokens : file.tokens) {
    if (tile_tokens.size() > config.tokens) {
      return CorruptError("a tile has more tokens than the model makes");
    }
    const size_t keep =
        max_tokens != 0 ? std::min<size_t>(tile_tokens.size(), max_tokens) : tile_tokens.size();
    for (size_t i = 0; i < keep; ++i) {
      if (tile_tokens[i] >= codebook) {
        return CorruptError("token " + std::to_string(tile_tokens[i]) +
                            " is outside the model's codebook of " + std::to_string(codebook));
      }
    }
  }
  if (!file.restoration.tiles.empty() && file.restoration.tiles.size() != file.tokens.size()) {
    return InvalidArgumentError("the file's colour restoration does not have one map per tile");
  }
  return OkStatus();
}

Status Codec::Restore(const Image& image, TokenFile* file) {
  file->restoration = Restoration{};
  TOK1D_RETURN_IF_ERROR(CheckDecodable(*file, 0));
  if (image.width != file->header.width || image.height != file->header.height ||
      image.rgb.size() != size_t{image.width} * image.height * 3) {
    return InvalidArgumentError("the image to restore against is not the file's size");
  }
  const ModelConfig& config = model_.config();
  const TileGrid grid = MakeTileGrid(image.width, image.height, config.tile);
  const size_t k = config.tokens, tile_values = size_t{config.tile} * config.tile * 3;
  const FsqCodebook codebook = config.codebook();
  Restoration restoration;
  restoration.tiles.resize(grid.count());
  std::vector<double> saved(grid.count()), errors(grid.count());
  std::vector<uint32_t> tokens, keep;
  std::vector<float> pixels, offsets;
  std::vector<uint8_t> originals;
  for (size_t first = 0; first < grid.count(); first += BatchTiles()) {
    const size_t count = std::min(BatchTiles(), grid.count() - first);
    tokens.assign(count * k, 0);
    keep.resize(count);
    pixels.resize(count * tile_values);
    offsets.clear();
    for (size_t i = 0; i < count; ++i) {
      GatherTile(*file, first + i, i, count, 0, codebook, k, tokens, keep, &offsets);
    }
    TOK1D_RETURN_IF_ERROR(
        WithCpuFallback([&] { return tokenizer_->Decode(tokens, keep, count, pixels, offsets); }));
    originals.resize(count * tile_values);
    ExtractTiles(image, grid, first, count, originals);
    for (size_t i = 0; i < count; ++i) {
      const size_t t = first + i;
      const uint32_t x0 = static_cast<uint32_t>(t % grid.cols) * config.tile;
      const uint32_t y0 = static_cast<uint32_t>(t / grid.cols) * config.tile;
      restoration.tiles[t] = FitTileRestoration(
          std::span<const float>(pixels).subspan(i * tile_values, tile_values),
          std::span<const uint8_t>(originals).subspan(i * tile_values, tile_values), config.tile,
          std::min(config.tile, image.width - x0), std::min(config.tile, image.height - y0),
          restoration, &errors[t], &saved[t]);
    }
  }
  // λ, the price of a bit in squared error: the ladder's slope at the file's token count times
  // a squared error over a code length, of the image or of the tile, whichever is lower. The
  // image's is the right price where tiles are coded at equal slopes; a file's counts are not
  // chosen so, and a tile whose tokens bought little (a flat colour beside a zone plate) is
  // coded at its own, lower price, at which its map pays.
  const EntropyTables* tables = model_.entropy_tables().get();
  std::vector<double> bits(grid.count());
  double kept = 0, image_bits = 0, image_error = 0;
  for (size_t t = 0; t < grid.count(); ++t) {
    bits[t] = tables != nullptr
                  ? CodeLengthBits(*tables, file->tokens[t])
                  : static_cast<double>(file->tokens[t].size()) * file->header.bits_per_token();
    if (!file->refinements.empty()) {
      bits[t] +=
          static_cast<double>(file->refinements[t].size()) * file->header.refinement_value_bits();
    }
    kept += static_cast<double>(file->tokens[t].size());
    image_bits += bits[t];
    image_error += errors[t];
  }
  if (!(image_bits > 0)) return OkStatus();
  const double slope = RestorationSlope(kept / static_cast<double>(grid.count()), config.tokens);
  const double image_lambda = slope * image_error / image_bits;
  // A map stays where it saves more than its bits cost (estimated at typical exp-Golomb
  // orders); the chunk as a whole must pay for its framing and a flag per tile as well, at the
  // mean price of the tiles that keep one.
  constexpr uint32_t kOffsetOrder = 1, kMatrixOrder = 2;
  double gain = 0, price = 0;
  size_t used = 0;
  for (size_t t = 0; t < grid.count(); ++t) {
    TileRestoration& map = restoration.tiles[t];
    if (!map.used) continue;
    const double lambda =
        bits[t] > 0 ? std::min(image_lambda, slope * errors[t] / bits[t]) : image_lambda;
    const double cost =
        lambda * static_cast<double>(RestorationTileBits(map, kOffsetOrder, kMatrixOrder) - 1);
    if (saved[t] > cost) {
      gain += saved[t] - cost;
      price += lambda;
      ++used;
    } else {
      map = TileRestoration{};
    }
  }
  if (used == 0) return OkStatus();
  const double lambda = price / static_cast<double>(used);
  if (gain > lambda * (8.0 * kRestorationChunkBytes + static_cast<double>(grid.count()))) {
    file->restoration = std::move(restoration);
  }
  return OkStatus();
}

StatusOr<Image> Codec::Decode(const TokenFile& file, uint32_t max_tokens) {
  const TokenFile* const files[] = {&file};
  return std::move(DecodeMany(files, max_tokens).front());
}

std::vector<StatusOr<Image>> Codec::DecodeMany(std::span<const TokenFile* const> files,
                                               uint32_t max_tokens) {
  const ModelConfig& config = model_.config();
  std::vector<StatusOr<Image>> images;
  images.reserve(files.size());
  if (max_tokens > config.tokens) {
    const Status refused =
        InvalidArgumentError("cannot decode " + std::to_string(max_tokens) +
                             " tokens per tile: the model has " + std::to_string(config.tokens));
    for (size_t f = 0; f < files.size(); ++f) images.emplace_back(refused);
    return images;
  }
  // Each file is checked on its own: a bad one fails alone, before any tile is decoded.
  std::vector<TileGrid> grids(files.size());
  for (size_t f = 0; f < files.size(); ++f) {
    const Status status = CheckDecodable(*files[f], max_tokens);
    if (!status.ok()) {
      images.emplace_back(status);
      continue;
    }
    grids[f] = MakeTileGrid(files[f]->header.width, files[f]->header.height, config.tile);
    Image image;
    image.width = files[f]->header.width;
    image.height = files[f]->header.height;
    image.rgb.resize(size_t{image.width} * image.height * 3);
    images.emplace_back(std::move(image));
  }

  // The tiles of the good files, file after file in raster order, fill batches of BatchTiles();
  // a batch may end inside one file and hold the tiles of several.
  struct Run {  // tiles first … first+count−1 of file `file`, at `offset` in the batch
    size_t file, first, count, offset;
  };
  const size_t k = config.tokens, tile_values = size_t{config.tile} * config.tile * 3;
  const FsqCodebook codebook = config.codebook();
  std::vector<uint32_t> tokens, keep;
  std::vector<float> pixels, offsets;
  std::vector<Run> runs;
  size_t next_file = 0, next_tile = 0;
  for (;;) {
    runs.clear();
    size_t count = 0;
    while (count < BatchTiles() && next_file < files.size()) {
      const size_t take = images[next_file].ok()
                              ? std::min(BatchTiles() - count, grids[next_file].count() - next_tile)
                              : 0;
      if (take > 0) {
        runs.push_back({next_file, next_tile, take, count});
        count += take;
        next_tile += take;
      }
      if (take == 0 || next_tile == grids[next_file].count()) {
        ++next_file;
        next_tile = 0;
      }
    }
    if (count == 0) break;

    tokens.assign(count * k, 0);
    keep.resize(count);
    pixels.resize(count * tile_values);
    offsets.clear();
    for (const Run& run : runs) {
      for (size_t i = 0; i < run.count; ++i) {
        GatherTile(*files[run.file], run.first + i, run.offset + i, count, max_tokens, codebook, k,
                   tokens, keep, &offsets);
      }
    }
    const Status status =
        WithCpuFallback([&] { return tokenizer_->Decode(tokens, keep, count, pixels, offsets); });
    if (!status.ok()) {
      // The files of this batch and every later one fail with it (a GPU backend keeps
      // failing after an error, unless the codec fell back to the CPU); the files finished
      // before keep their images.
      for (size_t f = runs.front().file; f < files.size(); ++f) {
        if (images[f].ok()) images[f] = status;
      }
      break;
    }
    for (const Run& run : runs) {
      Image& image = *images[run.file];
      const TokenFile& file = *files[run.file];
      if (restore_ && !file.restoration.tiles.empty()) {
        for (size_t i = 0; i < run.count; ++i) {
          const size_t tile = run.first + i;
          if (!DecodedWhole(file, tile, max_tokens)) continue;
          ApplyTileRestoration(
              file.restoration.tiles[tile], file.restoration, config.tile,
              std::span<float>(pixels).subspan((run.offset + i) * tile_values, tile_values));
        }
      }
      PlaceTiles(
          std::span<const float>(pixels).subspan(run.offset * tile_values, run.count * tile_values),
          grids[run.file], run.first, run.count, &image);
      if (deblock_ && run.first + run.count == grids[run.file].count()) {
        // The tokens each tile was decoded from set how wide its seams are smoothed.
        std::vector<uint32_t> decoded(files[run.file]->tokens.size());
        for (size_t t = 0; t < decoded.size(); ++t) {
          decoded[t] = DecodedTokens(*files[run.file], t, max_tokens);
        }
        DeblockTileSeams(&image, config.tile, decoded);
      }
    }
  }
  return images;
}

}  // namespace tok1d
