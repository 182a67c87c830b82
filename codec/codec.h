// Image ↔ token file: the tok1d codec's library API.
//
// An image is cut into tile × tile tiles in raster order; border tiles are padded by edge
// replication (models/data.py tile_image) and cropped after decoding, so the decoded image has
// exactly the input's size. Each tile is encoded to the model's K tokens and keeps a prefix of
// them; since tokens are prefix-nested, any smaller count is a trim of a larger one.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/model.h"
#include "codec/tiling.h"
#include "codec/token_search.h"
#include "codec/tokenizer.h"
#include "container/t1d.h"
#include "kernels/backend.h"
#include "metrics/metrics.h"  // Psnr, used with Decode
#include "tok1d/image.h"
#include "tok1d/status.h"

namespace tok1d {

struct CodecOptions {
  std::string device = "cpu";  // "cpu", "auto" or a compiled GPU backend
  unsigned threads = 0;        // CPU threads, 0 = all cores
  size_t max_batch_tiles =
      0;                // tiles per tokenizer batch; 0: the backend's preferred_batch_tiles()
  bool deblock = true;  // smooth the seams between tiles after decoding (codec/deblock.h)
  // Decode applies a file's colour restoration (codec/restoration.h, rstr chunk) to the tiles
  // decoded from all their layers; off: the model's plain decode.
  bool restore = true;
  // Encode with the model's refinement plan (Model::refinement; FORMAT.md, REFN chunk) when it
  // has one: finer values for the first tokens, as extra layers. Off: plain 1.2 files.
  bool refine = true;
  // The quantiser steps of the files Encode writes (FORMAT.md, QSTP chunk; docs/steps.md): the
  // values of a token whose step is above 1 are rounded to multiples of that many levels.
  // Empty: every step is 1 (no QSTP chunk). Create checks them against the model.
  QuantizerSteps steps;
  // When a GPU backend fails after start-up (out of memory, a failed kernel, a lost device):
  // with cpu_fallback the codec moves to the CPU backend for good and redoes the failed batch
  // there, so the result is the CPU's, never the failed batch's output; without it the call
  // fails. Create with device "auto" turns it on.
  bool cpu_fallback = false;
  // Receives one line for the user when the codec fell back to the CPU (at most once).
  std::function<void(const std::string&)> on_fallback;
};

// Recorded in the token file's header (T1dHeader colour fields).
struct SourceInfo {
  bool alpha_composited = false;
  std::array<uint8_t, 3> background{};
};

class Codec {
 public:
  // `note` (optional) receives a line for the user when device "auto" fell back.
  static StatusOr<std::unique_ptr<Codec>> Create(Model model, const CodecOptions& options = {},
                                                 std::string* note = nullptr);
  // A codec on a backend made by the caller (tests: the GPU host emulation); options.device
  // and options.threads are not used.
  static StatusOr<std::unique_ptr<Codec>> Create(Model model, std::unique_ptr<Backend> backend,
                                                 const CodecOptions& options = {});

  const Model& model() const { return model_; }
  const Backend& backend() const { return *backend_; }

  // The coder that reads and writes token layers coded with `coder_id` for this model: raw, or
  // range when the model carries entropy tables; null for any other id.
  const LayerCoder* layer_coder(uint8_t coder_id) const;
  // What Encode puts in the header: range when the model has entropy tables, else raw.
  uint8_t default_coder() const { return range_coder_ ? kRangeCoderId : kRawCoderId; }

  // Encodes keeping `tokens` (1 … K) tokens of every tile, with the refinements that come
  // with them (CodecOptions::refine).
  StatusOr<TokenFile> Encode(const Image& image, uint32_t tokens, const SourceInfo& source = {});
  // Encodes keeping tokens_per_tile[t] (0 … K) tokens of tile t, raster order.
  StatusOr<TokenFile> Encode(const Image& image, std::span<const uint32_t> tokens_per_tile,
                             const SourceInfo& source = {});
  // The same with the tokens optimised for those counts (codec/token_search.h); the search
  // runs on the codec's backend when it has a backward pass, else on the CPU. `progress`
  // (optional) gets the fraction done.
  StatusOr<TokenFile> Encode(const Image& image, std::span<const uint32_t> tokens_per_tile,
                             const SourceInfo& source, const SearchOptions& search,
                             const std::function<void(double)>& progress = {});

  // Fits the colour restoration of `file`'s tiles (codec/restoration.h) against `image`, the
  // image its tokens were encoded from, and sets file->restoration to the maps that pay for
  // their bits (none when no map does). Decodes every tile once.
  Status Restore(const Image& image, TokenFile* file);

  // Decodes the first min(count, max_tokens) tokens of every tile and the refinements that come
  // with them (T1dHeader::LayersForTokens); max_tokens 0 = all; then
  // applies the file's colour restoration to the tiles decoded from all their layers, then
  // deblocks the tile seams (unless CodecOptions::restore, deblock are off).
  // kModelMismatch if the file was made with other weights.
  StatusOr<Image> Decode(const TokenFile& file, uint32_t max_tokens = 0);

  // Decode for many files at once: result i is files[i]'s image or its error. The tiles of all
  // the files, file after file, share the tokenizer's batches of BatchTiles() tiles (a batch
  // may hold the ends of some images and the starts of others), so small images still fill a
  // GPU's batches; the weights stay on the device throughout. Each file is checked (model,
  // tile grid, token counts and values) before any decoding, and one that fails the checks
  // fails alone. A failure of the backend fails the files of that batch and of all later ones
  // (the files finished before keep their images). Decode is DecodeMany of one file. Holds
  // every image in memory until it returns.
  std::vector<StatusOr<Image>> DecodeMany(std::span<const TokenFile* const> files,
                                          uint32_t max_tokens = 0);

  // Tiles per tokenizer batch: CodecOptions::max_batch_tiles or the backend's preference.
  size_t BatchTiles() const;

  // kModelMismatch unless the header names this model (SHA-256); kCorrupt if it names this
  // model but disagrees with it on tile size, K or FSQ levels.
  Status CheckModel(const T1dHeader& header) const;

 private:
  Codec(Model model, std::unique_ptr<Backend> backend);
  // Everything Decode checks in one file before decoding it.
  Status CheckDecodable(const TokenFile& file, uint32_t max_tokens) const;
  // After `failure` of the tokenizer: moves to the CPU backend when that is allowed (a GPU
  // backend, cpu_fallback on) and returns OK; returns `failure` otherwise.
  Status FallBackToCpu(const Status& failure);
  // run(), and once more on the CPU if it fails on a GPU backend that may fall back.
  template <typename Run>
  Status WithCpuFallback(Run&& run);

  // Optimises the tokens (and `bounded`, the FSQ values, for refinement) of every tile of
  // `image` for its count (codec/token_search.h).
  Status SearchTokens(const Image& image, const TileGrid& grid, std::span<uint32_t> tokens_per_tile,
                      const Refinement& refinement, const SearchOptions& search,
                      const std::function<void(double)>& progress, std::span<uint32_t> tokens,
                      std::span<float> bounded);
  // SearchOptions::trim_tails and grow_counts: lowers tokens_per_tile where one of `trim_counts`
  // shorter counts (none below `fewest`), or raises it where one of `grow_counts` longer ones
  // (none above `most`), of the values gives a lower squared error + λ · bits, and sets `gain`
  // to how much lower (0 where kept).
  Status ChooseCounts(TokenSearch& token_search, std::span<const uint8_t> tiles,
                      std::span<const SearchTile> info, double lambda, double grow_lambda,
                      uint32_t trim_counts, uint32_t grow_counts, std::span<const float> bounded,
                      std::span<const uint32_t> fewest, std::span<const uint32_t> most,
                      std::span<uint32_t> tokens_per_tile, std::span<double> gain);
  // The tokenizer the token search differentiates through: the codec's own, or one on a CPU
  // backend made the first time it is needed when the codec's backend has no backward pass.
  StatusOr<Tokenizer*> SearchTokenizer();

  Model model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> search_backend_;
  std::unique_ptr<Tokenizer> search_tokenizer_;
  std::unique_ptr<LayerCoder> range_coder_;  // null without entropy tables
  size_t max_batch_tiles_ = 32;
  bool deblock_ = true;
  bool restore_ = true;
  CodecOptions options_;  // as given: threads and batch size for a fall back to the CPU
};

}  // namespace tok1d
