// tok1d info: what a .t1d file holds, for people or (--json) for scripts.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"
#include "imageio/metadata.h"

namespace tok1d::cli {
namespace {

struct InfoOptions {
  std::string input;
  bool json = false;
};

std::string Hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : bytes) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return hex;
}

std::string FormatVersion(const T1dHeader& h) {
  return std::to_string(h.major_version) + "." + std::to_string(h.minor_version);
}

double BitsPerPixel(uint64_t bytes, const T1dHeader& h) {
  return static_cast<double>(bytes) * 8.0 / (static_cast<double>(h.width) * h.height);
}

std::string Join(const std::vector<uint32_t>& values, std::string_view separator) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += separator;
    text += std::to_string(values[i]);
  }
  return text;
}

// The JSON keys are a stable interface for scripts: add keys, never rename or remove them.
nlohmann::ordered_json InfoJson(const T1dHeaderInfo& info, const std::string& input) {
  const T1dHeader& h = info.header;
  nlohmann::ordered_json json;
  json["file"] = DisplayName(input);
  json["format_version"] = FormatVersion(h);
  json["width"] = h.width;
  json["height"] = h.height;
  json["tile_size"] = h.tile_size;
  json["tile_cols"] = h.tile_cols;
  json["tile_rows"] = h.tile_rows;
  json["tiles"] = h.tile_count();
  json["max_tokens"] = h.max_tokens;
  json["tokens_per_tile"] = h.tokens_per_tile();
  json["layers_per_tile"] = h.layers_per_tile;
  json["refinement"] = {
      {"bits", h.refinement.bits}, {"tokens", h.refinement.count()}, {"after", h.refinement.after}};
  json["steps"] = nlohmann::ordered_json::array();
  for (const StepRun& run : h.steps.runs)
    json["steps"].push_back({{"first", run.first}, {"step", run.step}});
  json["fsq_levels"] = h.fsq_levels;
  json["codebook_size"] = h.codebook_size();
  json["entropy_coder"] = EntropyCoderName(h.entropy_coder);
  json["model_name"] = h.model.name;
  json["model_sha256"] = Hex(h.model.sha256);
  json["alpha_composited"] = h.alpha_composited;
  json["bytes"] = info.layout.file_bytes;
  json["bpp"] = BitsPerPixel(info.layout.file_bytes, h);
  json["header_bytes"] = info.layout.header_bytes;
  json["layer_bytes"] = info.layout.layer_bytes;
  json["extra_chunks"] = info.layout.extra_chunk_types;
  json["extra_chunk_bytes"] = info.layout.extra_chunk_bytes;
  json["layer_payload_bytes"] = info.layout.layer_payload_bytes;
  json["layer_framing_bytes"] = info.layout.layer_framing_bytes();
  nlohmann::ordered_json chunks = nlohmann::ordered_json::array();
  for (const T1dLayerChunk& chunk : info.layout.layer_chunks) {
    chunks.push_back({{"type", chunk.type},
                      {"first_layer", chunk.first_layer},
                      {"layers", chunk.layers},
                      {"bytes", chunk.bytes}});
  }
  json["layer_chunks"] = chunks;
  nlohmann::ordered_json metadata = nlohmann::ordered_json::array();
  for (const T1dChunk& chunk : info.extra_chunks) {
    if (MetadataChunkName(chunk.type).empty()) continue;
    metadata.push_back({{"chunk", std::string(chunk.type_name())},
                        {"name", MetadataChunkName(chunk.type)},
                        {"bytes", MetadataChunkContentSize(chunk.data)},
                        {"stored_bytes", chunk.data.size()}});
  }
  json["metadata"] = metadata;
  json["restoration_tiles"] = info.restoration.used();
  json["truncated"] = info.report.truncated;
  json["layers_complete"] = info.report.layers_complete;
  return json;
}

void PrintInfoText(const T1dHeaderInfo& info, const std::string& input, const Console& console) {
  const T1dHeader& h = info.header;
  const T1dLayout& layout = info.layout;
  const std::vector<uint32_t> counts = h.tokens_per_tile();
  const uint64_t total_tokens = std::accumulate(counts.begin(), counts.end(), uint64_t{0});
  const TokenCounts tokens = CountTokens(counts);
  char bpp[32];
  std::snprintf(bpp, sizeof(bpp), "%.4f", BitsPerPixel(layout.file_bytes, h));

  std::cout << "file:          " << DisplayName(input) << " (" << FormatBytes(layout.file_bytes)
            << ", " << bpp << " bpp)\n";
  std::cout << "format:        .t1d " << FormatVersion(h) << "\n";
  std::cout << "image:         " << h.width << "x" << h.height << ", sRGB RGB8";
  if (h.alpha_composited) {
    std::cout << ", alpha composited over rgb(" << int{h.background[0]} << ","
              << int{h.background[1]} << "," << int{h.background[2]} << ")";
  }
  std::cout << "\n";
  std::cout << "tiles:         " << h.tile_cols << "x" << h.tile_rows << " of " << h.tile_size
            << " px (" << h.tile_count() << " tiles)\n";
  std::cout << "tokens:        ";
  if (tokens.uniform()) {
    std::cout << tokens.max << " per tile of " << h.max_tokens;
  } else {
    char mean[32];
    std::snprintf(mean, sizeof(mean), "%.1f", tokens.mean);
    std::cout << tokens.min << ".." << tokens.max << " per tile of " << h.max_tokens << ", mean "
              << mean;
  }
  std::cout << ", " << total_tokens << " in all\n";
  std::cout << "quantizer:     FSQ " << Join(h.fsq_levels, "x") << " (" << h.codebook_size()
            << " codes, " << h.bits_per_token() << " bits raw)\n";
  if (h.refinement.bits != 0) {
    std::cout << "refinement:    tokens 0.." << h.refinement.count() - 1 << " to 1/"
              << (1u << h.refinement.bits) << " of a level (" << h.refinement_value_bits()
              << " bits each), layers after tokens " << Join(h.refinement.after, " ") << "\n";
  }
  if (!h.steps.empty()) {
    std::cout << "steps:         ";
    for (size_t i = 0; i < h.steps.runs.size(); ++i) {
      std::cout << (i == 0 ? "" : ", ") << "from token " << h.steps.runs[i].first << " every "
                << h.steps.runs[i].step << (h.steps.runs[i].step == 1 ? " level" : " levels");
    }
    std::cout << "\n";
  }
  std::cout << "entropy coder: " << EntropyCoderName(h.entropy_coder) << "\n";
  std::cout << "model:         " << h.model.name << " sha256:" << Hex(h.model.sha256) << "\n";
  // Token layer bytes include their chunks' framing, which is also shown on its own.
  std::cout << "layout:        header " << FormatBytes(layout.header_bytes) << ", "
            << layout.layer_bytes.size()
            << (layout.layer_bytes.size() == 1 ? " layer " : " layers ")
            << FormatBytes(layout.layer_chunk_bytes()) << " in " << layout.layer_chunks.size()
            << " " << (layout.layer_chunks.empty() ? "" : layout.layer_chunks[0].type + " ")
            << (layout.layer_chunks.size() == 1 ? "chunk" : "chunks") << " (framing "
            << FormatBytes(layout.layer_framing_bytes()) << "), other chunks "
            << FormatBytes(layout.extra_bytes) << "\n";
  // zstd-compressed ICC profile and EXIF (encode --metadata): their size and what they take.
  std::string metadata;
  for (const T1dChunk& chunk : info.extra_chunks) {
    if (MetadataChunkName(chunk.type).empty()) continue;
    metadata += (metadata.empty() ? "" : ", ") + std::string(MetadataChunkName(chunk.type)) + " " +
                FormatBytes(MetadataChunkContentSize(chunk.data)) + " (" +
                FormatBytes(chunk.data.size()) + " stored)";
  }
  if (!metadata.empty()) std::cout << "metadata:      " << metadata << "\n";
  // The colour maps (rstr chunk, docs/restoration.md) and what they take.
  const size_t restored = info.restoration.used();
  if (restored > 0) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < layout.extra_chunk_types.size(); ++i) {
      if (layout.extra_chunk_types[i] == "rstr") bytes += layout.extra_chunk_bytes[i];
    }
    std::cout << "restoration:   colour maps on " << restored << " of " << h.tile_count()
              << " tiles, " << FormatBytes(bytes) << "\n";
  }
  if (info.report.truncated) {
    std::cout << "truncated:     yes, " << info.report.layers_complete << " of "
              << info.report.layers_declared << " layers present\n";
  }
  if (console.verbosity > 0) {
    const std::vector<LayerRole> roles = h.LayerRoles();
    for (const T1dLayerChunk& chunk : layout.layer_chunks) {
      std::cout << "  " << chunk.type << " layers " << chunk.first_layer << ".."
                << chunk.first_layer + chunk.layers - 1 << ": " << FormatBytes(chunk.bytes) << "\n";
    }
    for (size_t j = 0; j < layout.layer_payload_bytes.size(); ++j) {
      std::cout << "  layer " << j << ": " << FormatBytes(layout.layer_payload_bytes[j]) << " coded"
                << (roles[j].refinement ? " (refinement of token " : " (token ") << roles[j].index
                << ")\n";
    }
    for (size_t i = 0; i < layout.extra_chunk_types.size(); ++i) {
      std::cout << "  chunk '" << layout.extra_chunk_types[i]
                << "': " << FormatBytes(layout.extra_chunk_bytes[i]) << "\n";
    }
    std::cout << "  tokens per tile: " << Join(counts, " ") << "\n";
  }
}

Status RunInfo(const InfoOptions& options, const Console& console) {
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(options.input));
  ReadOptions read_options;
  read_options.allow_truncated = true;  // info describes partial downloads too
  TOK1D_ASSIGN_OR_RETURN(T1dHeaderInfo info, ReadAndCheckT1d(bytes, options.input, read_options));
  for (const std::string& warning : info.report.warnings) {
    console.Warning(DisplayName(options.input) + ": " + warning);
  }
  if (options.json) {
    std::cout << InfoJson(info, options.input).dump(2) << "\n";
  } else {
    PrintInfoText(info, options.input, console);
  }
  std::cout.flush();
  if (!std::cout) return IoError("cannot write to standard output");
  return OkStatus();
}

}  // namespace

Subcommand AddInfoCommand(CLI::App& parent) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* command = parent.add_subcommand(
      "info", "Show what a .t1d file holds: image, tiles, tokens, bytes, bits per pixel, model");
  AddInputArgument(command, &options->input, ".t1d file");
  command->add_flag(
      "--json", options->json,
      "print JSON for scripts (stable keys: format_version, width, height, tile_size, "
      "tiles, tokens_per_tile, fsq_levels, entropy_coder, model_name, model_sha256, "
      "bytes, bpp, truncated, layers_complete)");
  return {command, [options](const Console& console) { return RunInfo(*options, console); }};
}

}  // namespace tok1d::cli
