// libtok1d's C++ API: load a model, encode an image to .t1d bytes at a rate target, decode
// .t1d bytes to an image, inspect and trim files. The C API (tok1d_c.h) wraps this one.
//
// Errors are Status values (tok1d/status.h); no exception leaves the library.
//
// Threads: a LoadedModel is immutable and may be shared by any number of threads (hold it in a
// std::shared_ptr). A Session holds a backend with its working memory and is used by one
// thread at a time; open one Session per thread (they share the model's weights). The free
// functions (InspectT1d, TrimT1d) are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tok1d/image.h"
#include "tok1d/status.h"
#include "tok1d/version.h"

namespace tok1d {

// ---- model ----

struct ModelInfo {
  std::string name;                  // the model file's "name" metadata, if any
  std::string sha256;                // of the weights file, hex; .t1d files name their model by it
  uint32_t tile = 0;                 // pixels per tile side
  uint32_t max_tokens = 0;           // K, tokens per tile
  std::vector<uint32_t> fsq_levels;  // levels per dimension of a token
  bool entropy_tables = false;       // can write range-coded files
  uint32_t refinement_tokens = 0;    // tokens refined by refinement layers (0: none)
  uint64_t file_bytes = 0;
};

class ModelImpl;

// A loaded tokenizer model; immutable, shareable between threads.
class LoadedModel {
 public:
  // The model embedded at build time, else tok1d-default.safetensors next to the program or
  // in ../share/tok1d/; kNotFound if there is none.
  static StatusOr<std::shared_ptr<const LoadedModel>> LoadDefault();
  // A .safetensors model file; errors name the file.
  static StatusOr<std::shared_ptr<const LoadedModel>> LoadFile(const std::string& path);
  // The bytes of a model file.
  static StatusOr<std::shared_ptr<const LoadedModel>> LoadBytes(std::span<const uint8_t> bytes);

  ~LoadedModel();
  ModelInfo info() const;
  const ModelImpl& impl() const { return *impl_; }

 private:
  friend class ModelImpl;
  explicit LoadedModel(std::unique_ptr<ModelImpl> impl);
  std::unique_ptr<ModelImpl> impl_;
};

// ---- session: a model on a device ----

// Coarser rounding for the late tokens (docs/steps.md): from token `first` on (up to the next
// entry's first), every FSQ value is rounded to a multiple of `step` levels.
struct QuantizerStep {
  uint32_t first = 0;
  uint32_t step = 1;
  bool operator==(const QuantizerStep&) const = default;
};

// The plan files are written with unless SessionOptions::steps says otherwise.
std::vector<QuantizerStep> DefaultQuantizerSteps();

struct SessionOptions {
  // "cpu", "auto" (a GPU backend when one works, else the CPU), or a compiled GPU backend
  // ("cuda", "hip"); CompiledDevices() lists them.
  std::string device = "cpu";
  unsigned threads = 0;  // CPU threads; 0: all cores
  bool deblock = true;   // smooth tile seams after decoding
  bool refine = true;    // write refinement layers when the model has a plan
  // Colour restoration (format rstr chunk): encoders fit a per-tile colour map and keep the
  // maps that pay for their bits; decoders apply them. Off: plain tokens, plain decode.
  bool restore = true;
  // Quantiser steps of the files written; nullopt: DefaultQuantizerSteps(); empty: step 1 for
  // every token (files tok1d before 1.4 can read).
  std::optional<std::vector<QuantizerStep>> steps = std::nullopt;
  size_t max_batch_tiles = 0;  // tiles per batch; 0: the backend's choice
  // Receives one line for the user when a GPU failed after start-up and the session moved to
  // the CPU (device "auto" only); the work is redone there.
  std::function<void(const std::string&)> on_fallback = {};
};

// The backends built in, in order of preference for "auto": the GPU ones, then "cpu".
std::vector<std::string> CompiledDevices();

// The OPENBLAS_CORETYPE this process should have started with, where the CPU backend's
// OpenBLAS is older than the CPU and fell back to kernels about 3× slower than the CPU can run
// (Debian 12's OpenBLAS 0.3.21 on Sapphire or Emerald Rapids); empty otherwise. OpenBLAS
// reads it once, as it loads: a program restarts with it set (the tok1d tool does) or its
// user sets it.
std::string RecommendedBlasCore();

// For a program's first line: where RecommendedBlasCore() is not empty, sets
// OPENBLAS_CORETYPE to it and executes the program again (/proc/self/exe, same `argv`).
// Returns where there is nothing to do or the restart failed; the program then runs as is.
void RestartWithRecommendedBlasCore(char** argv);

// How a byte or PSNR target shares tokens between tiles.
enum class Allocation {
  kDefault,   // uniform for bytes and bpp, adaptive for PSNR (measured on Kodak)
  kUniform,   // the same count for every tile
  kAdaptive,  // more tokens where they remove most error per byte
};

enum class Coder { kDefault, kRaw, kRange };  // default: range when the model has tables

struct EncodeOptions {
  // The rate target: exactly one of these is non-zero.
  uint32_t tokens = 0;  // tokens per tile, every tile (at effort > 0 a tile may keep 1/2 or
                        // 3/4 where its last tokens do not pay for their bits, and 3/2 (at
                        // most K) where its next ones do)
  uint64_t bytes = 0;   // the largest file of at most this many bytes
  double bpp = 0;       // the same in bits per pixel
  double psnr = 0;      // the smallest file whose decoding reaches this PSNR (dB)
  Allocation allocation = Allocation::kDefault;
  Coder coder = Coder::kDefault;
  // Kept in the file, zstd-compressed (empty: none). EXIF from its TIFF header on.
  std::vector<uint8_t> icc = {};
  std::vector<uint8_t> exif = {};
  // Recorded in the header: the input had transparency, composited over this colour.
  bool alpha_composited = false;
  std::array<uint8_t, 3> background = {255, 255, 255};
  bool compute_psnr = false;  // also decode, for EncodeResult::psnr
  // Encode-time token optimisation through the decoder, 0 (none, one pass of the encoder) …
  // kMaxEffort; docs/effort.md has what each level gains and costs.
  uint32_t effort = 0;
  // Called with the fraction done (0 … 1) while an effort > 0 searches; may be empty.
  std::function<void(double)> on_progress = {};
};

// The highest EncodeOptions::effort.
inline constexpr uint32_t kMaxEffort = 9;

struct EncodeResult {
  std::vector<uint8_t> t1d;               // the file
  std::vector<uint32_t> tokens_per_tile;  // raster order
  std::optional<double> psnr;             // with compute_psnr
};

struct DecodeOptions {
  uint32_t max_tokens = 0;  // decode at most this many tokens per tile; 0: all
  // A partial download decodes its complete layers (with a warning); false: kTruncated.
  bool allow_truncated = true;
};

struct DecodeResult {
  Image image;
  std::vector<uint32_t> tokens_per_tile;  // decoded, raster order
  std::vector<uint8_t> icc;               // as stored by EncodeOptions::icc
  std::vector<uint8_t> exif;
  bool truncated = false;
  std::vector<std::string> warnings;  // one line each (truncation, damaged metadata)
};

class SessionImpl;

class Session {
 public:
  // `note` (optional) receives a line for the user when device "auto" fell back to the CPU.
  static StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const LoadedModel> model,
                                                   const SessionOptions& options = {},
                                                   std::string* note = nullptr);
  ~Session();

  const LoadedModel& model() const;
  std::string device() const;       // the backend in use: "cpu", "cuda", …
  std::string description() const;  // the backend in words, for verbose output
  size_t batch_tiles() const;       // tiles the backend decodes in one batch

  // Checks options against the model (token counts, coder) without encoding.
  Status CheckEncodeOptions(const EncodeOptions& options) const;
  StatusOr<EncodeResult> Encode(const Image& image, const EncodeOptions& options);
  // One file per byte budget, measuring the image once (for rate–quality curves).
  // With effort > 0, each file is searched for its own counts (one search per budget).
  StatusOr<std::vector<EncodeResult>> EncodeBudgets(const Image& image,
                                                    std::span<const uint64_t> max_bytes,
                                                    Allocation allocation = Allocation::kUniform,
                                                    uint32_t effort = 0);
  // Each file's tokens in one file per entry of `token_counts` (uniform), encoding once; with
  // effort > 0, one search per count (a file searched for k tokens, not a trim of a larger one).
  StatusOr<std::vector<EncodeResult>> EncodeTokenLadder(const Image& image,
                                                        std::span<const uint32_t> token_counts,
                                                        uint32_t effort = 0);

  StatusOr<DecodeResult> Decode(std::span<const uint8_t> t1d, const DecodeOptions& options = {});
  // Many files at once: their tiles share the backend's batches (small images fill a GPU).
  // Result i is file i's image or its own error.
  std::vector<StatusOr<DecodeResult>> DecodeMany(std::span<const std::span<const uint8_t>> files,
                                                 const DecodeOptions& options = {});

  SessionImpl& impl() { return *impl_; }

 private:
  explicit Session(std::unique_ptr<SessionImpl> impl);
  std::unique_ptr<SessionImpl> impl_;
};

// ---- files, without a model ----

struct T1dInfo {
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t tile = 0;
  uint64_t tiles = 0;
  uint32_t max_tokens = 0;                // the model's K
  std::vector<uint32_t> tokens_per_tile;  // complete tokens kept, raster order
  std::string model_sha256;               // hex
  std::string coder;                      // "raw", "range"
  std::string format_version;             // "1.3"
  uint64_t bytes = 0;
  bool truncated = false;
  uint32_t layers = 0;           // token and refinement layers the header declares (max per tile)
  uint32_t complete_layers = 0;  // of them, wholly present (all when not truncated)
};

// The structure of a .t1d file (a partial download allowed), all checksums checked; raw-coded
// tokens are read too (range-coded ones need the model: Session::Decode).
StatusOr<T1dInfo> InspectT1d(std::span<const uint8_t> t1d);
// The file cut down to the first `tokens` tokens of every tile (and their refinements), as
// encoding with that count would have written it. Needs no model.
StatusOr<std::vector<uint8_t>> TrimT1d(std::span<const uint8_t> t1d, uint32_t tokens);

inline constexpr const char* kVersionString = TOK1D_VERSION_STRING;

}  // namespace tok1d
