// The per-file work of `tok1d encode` and `tok1d decode`, shared with `tok1d batch`: the options
// that shape one conversion, and the conversion itself with an open codec. Implemented in
// cmd_encode.cpp and cmd_decode.cpp; nothing here prints or writes files, so batch workers can
// run it side by side and report each file their own way.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "imageio/metadata.h"
#include "tok1d/tok1d.h"

namespace tok1d::cli {

// --effort when none is given (docs/effort.md: time against gain).
inline constexpr uint32_t kDefaultEffort = 0;

// How many tokens the tiles of a file keep: the same everywhere, or not (adaptive allocation).
struct TokenCounts {
  uint32_t min = 0;
  uint32_t max = 0;
  double mean = 0;

  bool uniform() const { return min == max; }
};

TokenCounts CountTokens(std::span<const uint32_t> tokens_per_tile);

// "k tokens per tile", or "mean 37.5 tokens per tile (12..128)" when tiles differ.
std::string DescribeTokenCounts(const TokenCounts& counts);

// ---- encode ----

struct EncodeSettings {
  // What the library gets: exactly one of tokens, bytes, bpp, psnr; allocation (how --bytes,
  // --bpp and --psnr share tokens between tiles: tok1d.h, Allocation), coder, effort, and
  // --stats as compute_psnr. The input's metadata and source are added per image.
  EncodeOptions options{.effort = kDefaultEffort};
  MetadataSelection metadata;     // --metadata: the input's ICC profile and EXIF to keep
  bool keep_orientation = false;  // code the pixels as stored, ignoring EXIF orientation
};

// The rate options (--tokens | --bytes | --bpp | --psnr), --allocation, --coder and --stats.
void AddEncodeSettings(CLI::App* command, EncodeSettings* settings);

// Refuses settings this model cannot meet (too many tokens, a coder it lacks), before any file.
Status CheckEncodeSettings(const EncodeSettings& settings, const Session& session);

struct EncodedImage {
  std::vector<uint8_t> t1d;  // the file's bytes
  uint32_t width = 0;
  uint32_t height = 0;
  uint64_t tiles = 0;
  TokenCounts tokens;          // per tile
  std::optional<double> psnr;  // with --stats
  uint64_t icc_bytes = 0;      // kept ICC profile (--metadata), 0: none
  uint64_t exif_bytes = 0;     // kept EXIF

  double bpp() const;
};

// An image read for encoding, with what the reader noticed about it.
struct InputImage {
  std::string name;  // for messages: the path, or "<stdin>"
  Image image;
  ImageInfo info;
  std::vector<std::string> warnings() const;  // "NAME: …", one line each
};

// Reads the image at `path` ("-": stdin), with the metadata `metadata` selects. Errors name
// the file.
StatusOr<InputImage> ReadInputImage(const std::string& path, const MetadataSelection& metadata = {},
                                    bool apply_orientation = true);

// `progress` (optional) gets the fraction done of a search (--effort).
StatusOr<EncodedImage> EncodeInputImage(Session& session, const InputImage& input,
                                        const EncodeSettings& settings,
                                        const std::function<void(double)>& progress = {});

// "INPUT (WxH, N tiles) -> OUTPUT: k tokens per tile, B bytes, bpp[, PSNR]" (with per-tile
// counts: "mean m tokens per tile (min..max)").
std::string DescribeEncode(const std::string& input, const std::string& output,
                           const EncodedImage& encoded);

// ---- decode ----

struct DecodeSettings {
  uint32_t tokens = 0;  // decode at most this many tokens per tile; 0: all
  bool strict = false;  // refuse a truncated file (exit 1) instead of decoding its layers
};

// -t/--tokens, --strict.
void AddDecodeSettings(CLI::App* command, DecodeSettings* settings);

Status CheckDecodeSettings(const DecodeSettings& settings, const Session& session);

// The structure of a .t1d file (a partial download allowed), checked before any model work.
// Errors name the file.
// With `strict`, a truncated file is an error (kTruncated).
StatusOr<T1dInfo> ReadDecodableHeader(std::span<const uint8_t> t1d, const std::string& input_name,
                                      bool strict = false);

struct DecodedImage {
  std::vector<uint8_t> encoded;  // PNG or PPM bytes
  uint32_t width = 0;
  uint32_t height = 0;
  TokenCounts tokens;                 // per tile, decoded
  std::vector<std::string> warnings;  // truncation, reader warnings; one line each
};

// Decodes the bytes of a .t1d file into an image file's bytes in `format`. Errors name the file
// (`input_name`). Session::Decode and FinishDecode in one.
StatusOr<DecodedImage> DecodeT1dBytes(Session& session, std::span<const uint8_t> t1d,
                                      const std::string& input_name, ImageFormat format,
                                      const DecodeSettings& settings);

// The decoded file (or the session's error, which gets the file's name) as an image file, so
// that `tok1d batch decode` can decode many files together (Session::DecodeMany).
StatusOr<DecodedImage> FinishDecode(const std::string& input_name, StatusOr<DecodeResult> result,
                                    ImageFormat format);

// "INPUT -> OUTPUT: WxH, k tokens per tile" (or "mean m tokens per tile (min..max)").
std::string DescribeDecode(const std::string& input, const std::string& output,
                           const DecodedImage& decoded);

}  // namespace tok1d::cli
