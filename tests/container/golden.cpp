#include "container/golden.h"

#include <xxhash.h>

#include <stdexcept>
#include <utility>

#include "container/token_files.h"

namespace tok1d::testing {
namespace {

using Chunk = RawChunk;
using Framed = FramedFile;

uint32_t Le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24; }

void PutLe32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

Framed SplitChunks(const std::vector<uint8_t>& file) {
  Framed framed{{file.begin(), file.begin() + 12}, {}};
  for (size_t pos = 12; pos < file.size();) {
    uint32_t length = Le32(&file[pos + 4]);
    framed.chunks.push_back({std::string(file.begin() + static_cast<long>(pos),
                                         file.begin() + static_cast<long>(pos) + 4),
                             {file.begin() + static_cast<long>(pos) + 8,
                              file.begin() + static_cast<long>(pos + 8 + length)}});
    pos += 12 + length;
  }
  return framed;
}

// Re-frames with correct checksums (HEAD's covering the preamble).
std::vector<uint8_t> JoinChunks(const Framed& framed) {
  std::vector<uint8_t> out = framed.preamble;
  for (const Chunk& chunk : framed.chunks) {
    size_t from = chunk.type == "HEAD" ? 0 : out.size();
    out.insert(out.end(), chunk.type.begin(), chunk.type.end());
    PutLe32(&out, static_cast<uint32_t>(chunk.data.size()));
    out.insert(out.end(), chunk.data.begin(), chunk.data.end());
    PutLe32(&out, static_cast<uint32_t>(XXH64(out.data() + from, out.size() - from, 0)));
  }
  return out;
}

std::vector<uint8_t> SpanData(uint32_t first, const std::vector<std::vector<uint8_t>>& layers) {
  std::vector<uint8_t> data = {static_cast<uint8_t>(first), static_cast<uint8_t>(layers.size())};
  for (const auto& layer : layers) data.push_back(static_cast<uint8_t>(layer.size()));
  for (const auto& layer : layers) data.insert(data.end(), layer.begin(), layer.end());
  return data;
}

namespace {

Framed Split(const std::vector<uint8_t>& file) { return SplitChunks(file); }
std::vector<uint8_t> Join(const Framed& framed) { return JoinChunks(framed); }

template <typename Edit>
std::vector<uint8_t> Mutate(const std::vector<uint8_t>& file, Edit edit) {
  Framed framed = Split(file);
  edit(framed);
  return Join(framed);
}

// The files of versions 1.0 and 1.1 (one LAYR chunk per layer) stay as they were committed.
constexpr WriteOptions kLayerChunks{.layer_spans = false};

std::vector<uint8_t> Write(const TokenFile& file, const LayerCoder* coder = nullptr,
                           const WriteOptions& options = kLayerChunks) {
  auto bytes = WriteT1d(file, coder, options);
  if (!bytes.ok()) throw std::runtime_error("golden file: " + bytes.status().message());
  return *bytes;
}

// HEAD data offsets (FORMAT.md, HEAD chunk).
constexpr size_t kWidth = 0, kHeight = 4, kTileCols = 8, kColourFlags = 19, kMaxTokens = 24;

void PutLe32At(std::vector<uint8_t>* data, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) (*data)[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

class Fake final : public LayerCoder {
 public:
  uint8_t id() const override { return 7; }
  Status CheckHeader(const T1dHeader& header) const override {
    return header.coder_params == std::vector<uint8_t>{'f', 'a', 'k', 'e'}
               ? OkStatus()
               : CorruptError("fake coder parameters are wrong");
  }
  StatusOr<std::vector<uint8_t>> EncodeLayer(const LayerContext&,
                                             std::span<const uint32_t> tokens) const override {
    std::vector<uint8_t> out;
    for (uint32_t token : tokens) PutLe32(&out, token);
    return out;
  }
  Status DecodeLayer(const LayerContext&, std::span<const uint8_t> coded,
                     std::span<uint32_t> tokens) const override {
    if (coded.size() != tokens.size() * 4) return CorruptError("fake layer has the wrong size");
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = Le32(&coded[4 * i]);
    return OkStatus();
  }
};

}  // namespace

const LayerCoder& FakeCoder() {
  static const Fake coder;
  return coder;
}

std::vector<GoldenFile> MakeGoldenFiles() {
  // minimal: one 16x16 tile, FSQ 8x5x5x5 (1000 codes, 10 bits), 4 of 8 tokens.
  TokenFileSpec minimal_spec;
  minimal_spec.counts = {4};
  const std::vector<uint8_t> minimal = Write(MakeTokenFile(minimal_spec, 1));

  // per-tile: 40x20 in 3x2 tiles, FSQ 7x5x5x5x5 (4375 codes, 13 bits), uneven counts, alpha,
  // and an ancillary chunk.
  TokenFileSpec tiled_spec;
  tiled_spec.width = 40;
  tiled_spec.height = 20;
  tiled_spec.fsq_levels = {7, 5, 5, 5, 5};
  tiled_spec.counts = {5, 0, 3, 1, 5, 2};
  TokenFile tiled_file = MakeTokenFile(tiled_spec, 2);
  tiled_file.header.alpha_composited = true;
  tiled_file.header.background = {255, 255, 255};
  tiled_file.extra_chunks.push_back({{'n', 'o', 'T', 'e'}, {'g', 'o', 'l', 'd', 'e', 'n'}});
  const std::vector<uint8_t> tiled = Write(tiled_file);

  auto trimmed = TrimT1dBytes(tiled, 2);
  if (!trimmed.ok()) throw std::runtime_error(trimmed.status().message());

  // The rstr chunk (colour restoration): maps on tiles 0, 2 and 4 of the tiled file (tile 1
  // keeps no token and no map), values from 0 to the Exp-Golomb orders' long codes.
  TokenFile restored_file = tiled_file;
  restored_file.restoration.tiles.resize(6);
  restored_file.restoration.tiles[0] = {true, {1, -1, 0}, {2, 0, 0, 0, -3, 0, 0, 0, 1}};
  restored_file.restoration.tiles[2] = {true, {0, 0, 5}, {0, 1, 0, -1, 0, 0, 40, 0, -40}};
  restored_file.restoration.tiles[4] = {true, {-7, 2, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0}};
  const std::vector<uint8_t> restored = Write(restored_file);
  // Trimmed by a reader that keeps ancillary chunks as they are: the counts change, the chunk's
  // binding no longer holds, and a reader leaves it out (with a warning).
  Framed stale_framed = Split(*trimmed);
  for (const RawChunk& chunk : Split(restored).chunks) {
    if (chunk.type == "rstr") stale_framed.chunks.insert(stale_framed.chunks.end() - 1, chunk);
  }
  const std::vector<uint8_t> stale = JoinChunks(stale_framed);

  // HEAD of valid_trimmed_to_2 ends with its counts: mode 2, 3 counts (0 1 2: u16 each), the
  // 2-bit indices 2 0 2 1 2 2 (10 00 10 01 | 10 10 0000: 89 A0). From the palette size byte on:
  const auto palette_at = [](Framed& f) {
    auto& head = f.chunks[0].data;
    return head.begin() + static_cast<long>(head.size()) - 9;
  };

  TokenFile future = MakeTokenFile(minimal_spec, 3);
  future.header.minor_version = kT1dMinorVersion + 1;
  future.header.head_extension = {0xAB, 0xCD};
  future.extra_chunks.push_back({{'z', 'z', 'F', 'u'}, {1, 2, 3}});

  TokenFile other_coder = MakeTokenFile(minimal_spec, 4);
  other_coder.header.entropy_coder = FakeCoder().id();
  other_coder.header.coder_params = {'f', 'a', 'k', 'e'};

  // tiled has layers of 5, 4, 3, 2, 2 tiles: cut inside layer 3.
  const Framed tiled_chunks = Split(tiled);
  size_t layer3_end = 12;
  for (size_t i = 0; i < tiled_chunks.chunks.size() && i < 6; ++i) {  // HEAD, noTe, layers 0..3
    layer3_end += 12 + tiled_chunks.chunks[i].data.size();
  }
  const std::vector<uint8_t> truncated(tiled.begin(),
                                       tiled.begin() + static_cast<long>(layer3_end) - 3);

  // Version 1.2: the same tiles in LAYS spans. Raw layers of 9, 7, 5, 4, 4 bytes; an 8-byte
  // span threshold groups them as [0] [1 2] [3 4] (chunks 2, 3, 4 after HEAD and noTe).
  const std::vector<uint8_t> spans = Write(tiled_file, nullptr, {.span_bytes = 8});
  auto spans_trimmed = TrimT1dBytes(spans, 2);  // [0] [1]: the second span cut to one layer
  if (!spans_trimmed.ok()) throw std::runtime_error(spans_trimmed.status().message());
  const Framed span_chunks = Split(spans);
  size_t span2_end = 12;
  for (size_t i = 0; i < 4; ++i) span2_end += 12 + span_chunks.chunks[i].data.size();
  const std::vector<uint8_t> spans_truncated(spans.begin(),
                                             spans.begin() + static_cast<long>(span2_end) - 5);
  // The layers of a span chunk (all its varints are one byte here).
  const auto span_layers = [&](size_t chunk) {
    const std::vector<uint8_t>& data = span_chunks.chunks[chunk].data;
    std::vector<std::vector<uint8_t>> layers;
    size_t at = 2u + data[1];
    for (size_t i = 0; i < data[1]; ++i) {
      layers.emplace_back(data.begin() + static_cast<long>(at),
                          data.begin() + static_cast<long>(at + data[2 + i]));
      at += data[2 + i];
    }
    return layers;
  };

  // Version 1.3: the tiled file with refinement, 2 bits per dimension for tokens 0 and 1 after
  // token layers 0 and 2: layers t0 r0 t1 t2 r1 t3 … (10 in all).
  TokenFileSpec refined_spec = tiled_spec;
  refined_spec.refinement = {2, {0, 2}};
  refined_spec.counts = {7, 0, 3, 1, 10, 2};
  const std::vector<uint8_t> refined = Write(MakeTokenFile(refined_spec, 5), nullptr, {});
  // 2 tokens and the refinement of token 0: 3 layers.
  auto refined_trimmed = TrimT1dBytes(refined, 3);
  if (!refined_trimmed.ok()) throw std::runtime_error(refined_trimmed.status().message());
  // 1 layer (token 0 alone) keeps no refinement layer: the writer leaves REFN out, the file
  // stays 1.3.
  auto refined_token_only = TrimT1dBytes(refined, 1);
  if (!refined_token_only.ok()) throw std::runtime_error(refined_token_only.status().message());

  // Version 1.4: the refined file with quantiser steps 2 from token 3 and 3 from token 6.
  TokenFile stepped_file = MakeTokenFile(refined_spec, 6);
  stepped_file.header.steps = {{{3, 2}, {6, 3}}};
  SnapToSteps(&stepped_file);
  const std::vector<uint8_t> stepped = Write(stepped_file, nullptr, {});

  const auto ok = StatusCode::kOk;
  std::vector<GoldenFile> files = {
      {"valid_minimal.t1d", minimal, ok, "", "one tile, 4 of 8 tokens, raw coder"},
      {"valid_per_tile_counts.t1d", tiled, ok, "",
       "3x2 tiles with counts 5 0 3 1 5 2, alpha composited, ancillary chunk 'noTe'"},
      {"valid_trimmed_to_2.t1d", *trimmed, ok, "",
       "valid_per_tile_counts trimmed to 2 tokens: counts 2 0 2 1 2 2 as a palette (1.5)"},
      {"valid_future_minor.t1d", Write(future), ok, "",
       "a minor version above this reader's: HEAD extension bytes and an unknown ancillary chunk, "
       "both skipped"},
      {"valid_other_coder.t1d", Write(other_coder, &FakeCoder()), StatusCode::kUnsupported,
       "entropy coder 'coder-7'", "entropy coder 7: structure readable, tokens need the coder"},
      {"truncated_in_layer_3.t1d", truncated, StatusCode::kTruncated, "truncated after 3 of 5",
       "valid_per_tile_counts cut inside layer 3: progressive reading yields 3 layers"},
      {"invalid_signature.t1d",
       [&] {
         auto b = minimal;
         b[1] = 'X';
         return b;
       }(),
       StatusCode::kCorrupt, "wrong signature", "signature byte 1 changed"},
      {"invalid_major_version.t1d", Mutate(minimal, [](Framed& f) { f.preamble[8] = 2; }),
       StatusCode::kUnsupported, "version 2.0 is not supported", "major version 2"},
      {"invalid_reserved_preamble.t1d", Mutate(minimal, [](Framed& f) { f.preamble[11] = 0x40; }),
       StatusCode::kCorrupt, "reserved preamble bits", "reserved preamble bit set, checksum valid"},
      {"invalid_reserved_colour_flag.t1d",
       Mutate(minimal, [](Framed& f) { f.chunks[0].data[kColourFlags] |= 0x02; }),
       StatusCode::kCorrupt, "reserved bits in HEAD", "colour_flags bit 1 set, checksum valid"},
      {"invalid_checksum.t1d",
       [&] {
         auto b = minimal;
         b[b.size() - 22] ^= 0x10;
         return b;
       }(),
       StatusCode::kCorrupt, "checksum mismatch", "one bit flipped in a token layer"},
      {"invalid_layer_order.t1d", Mutate(minimal, [](Framed& f) { f.chunks[1].data[0] = 1; }),
       StatusCode::kCorrupt, "token layer 1 found where layer 0",
       "first LAYR chunk claims index 1"},
      {"invalid_token_out_of_range.t1d",
       Mutate(minimal, [](Framed& f) { f.chunks[1].data[2] = 0xFF, f.chunks[1].data[3] = 0x03; }),
       StatusCode::kCorrupt, "outside the codebook", "raw token 1023 with a codebook of 1000"},
      {"invalid_padding.t1d", Mutate(minimal, [](Framed& f) { f.chunks[1].data[3] |= 0x80; }),
       StatusCode::kCorrupt, "non-zero padding", "padding bit of a raw layer set"},
      {"invalid_trailing_data.t1d",
       [&] {
         auto b = minimal;
         b.push_back(0);
         return b;
       }(),
       StatusCode::kCorrupt, "after the end chunk", "one byte after DONE"},
      {"invalid_unknown_critical_chunk.t1d",
       Mutate(minimal,
              [](Framed& f) {
                f.chunks.insert(f.chunks.begin() + 1, {"XTRA", {1}});
              }),
       StatusCode::kUnsupported, "unknown critical chunk 'XTRA'", "critical chunk XTRA after HEAD"},
      {"invalid_count_above_max.t1d",
       Mutate(minimal, [](Framed& f) { f.chunks[0].data[kMaxTokens] = 3; }), StatusCode::kCorrupt,
       "more than the 3", "max_tokens 3 but tiles keep 4"},
      {"invalid_tile_grid.t1d",
       Mutate(minimal, [](Framed& f) { PutLe32At(&f.chunks[0].data, kTileCols, 2); }),
       StatusCode::kCorrupt, "tile grid 2x1", "2 tile columns for a 16-pixel-wide image"},
      {"invalid_too_many_pixels.t1d",
       Mutate(minimal,
              [](Framed& f) {
                for (size_t at : {kWidth, kHeight}) PutLe32At(&f.chunks[0].data, at, 20000);
                for (size_t at : {kTileCols, kTileCols + 4}) PutLe32At(&f.chunks[0].data, at, 1250);
              }),
       StatusCode::kTooLarge, "20000x20000", "20000x20000 pixels, over the default limit"},
      {"invalid_done_count.t1d", Mutate(minimal, [](Framed& f) { f.chunks.back().data[0] = 3; }),
       StatusCode::kCorrupt, "end chunk", "DONE says 3 layers, the file has 4"},
      {"invalid_missing_layer.t1d",
       Mutate(minimal, [](Framed& f) { f.chunks.erase(f.chunks.end() - 2); }), StatusCode::kCorrupt,
       "end chunk", "last LAYR chunk removed, DONE intact"},
      {"invalid_head_trailing_bytes.t1d",
       Mutate(minimal, [](Framed& f) { f.chunks[0].data.push_back(0); }), StatusCode::kCorrupt,
       "unexpected trailing bytes", "minor version 0 HEAD with an extra byte"},
      // ---- version 1.2: LAYS layer spans ----
      {"valid_minimal_spans.t1d", Write(MakeTokenFile(minimal_spec, 1), nullptr, {}), ok, "",
       "valid_minimal as the default 1.2 writer writes it: one LAYS span of 4 layers"},
      {"valid_spans.t1d", spans, ok, "",
       "valid_per_tile_counts in 3 LAYS spans (layers 0 | 1 2 | 3 4; span threshold 8 bytes)"},
      {"valid_spans_trimmed_to_2.t1d", *spans_trimmed, ok, "",
       "valid_spans trimmed to 2 tokens: span 0 whole, span 1 cut to its first layer"},
      {"truncated_in_span_2.t1d", spans_truncated, StatusCode::kTruncated, "truncated after 1 of 5",
       "valid_spans cut inside its second span: progressive reading yields layer 0"},
      {"invalid_span_count_zero.t1d", Mutate(spans, [](Framed& f) { f.chunks[2].data[1] = 0; }),
       StatusCode::kCorrupt, "holds no layers", "first span's layer count 0"},
      {"invalid_span_length_overrun.t1d", Mutate(spans, [](Framed& f) { ++f.chunks[3].data[3]; }),
       StatusCode::kCorrupt, "add up to 13 bytes but it holds 12",
       "second span's last length one byte longer than its data"},
      {"invalid_span_reserved_bits.t1d",
       Mutate(spans,
              [](Framed& f) {
                auto& d = f.chunks[2].data;
                d.erase(d.begin());
                d.insert(d.begin(), {0x80, 0x80, 0x80, 0x80, 0x70});
              }),
       StatusCode::kCorrupt, "malformed varint",
       "first layer 0 as a 5-byte varint with its reserved top bits set"},
      {"invalid_span_varint_not_minimal.t1d",
       Mutate(spans,
              [](Framed& f) {
                auto& d = f.chunks[2].data;
                d.insert(d.begin(), 0x80);
              }),
       StatusCode::kCorrupt, "malformed varint", "first layer 0 written as 80 00"},
      {"invalid_span_first_layer.t1d", Mutate(spans, [](Framed& f) { f.chunks[3].data[0] = 2; }),
       StatusCode::kCorrupt, "starts at layer 2 where layer 1",
       "second span claims to start at layer 2"},
      {"invalid_span_past_layers.t1d",
       Mutate(spans,
              [&](Framed& f) {
                auto layers = span_layers(4);
                layers.push_back({});
                f.chunks[4].data = SpanData(3, layers);
              }),
       StatusCode::kCorrupt, "holds layers 3..5 but HEAD declares 5",
       "last span with an empty sixth layer"},
      {"invalid_span_in_version_1_1.t1d", Mutate(spans, [](Framed& f) { f.preamble[9] = 1; }),
       StatusCode::kCorrupt, "spans need 1.2", "valid_spans with minor version 1"},
      {"invalid_mixed_layer_chunks.t1d",
       Mutate(spans,
              [&](Framed& f) {
                std::vector<uint8_t> layr = {0, 0};
                const auto layer0 = span_layers(2)[0];
                layr.insert(layr.end(), layer0.begin(), layer0.end());
                f.chunks[2] = {"LAYR", layr};
              }),
       StatusCode::kCorrupt, "mixes LAYR and LAYS",
       "layer 0 as a LAYR chunk, layers 1..4 in spans"},
      // ---- ancillary rstr: colour restoration ----
      {"valid_restoration.t1d", restored, ok, "",
       "valid_per_tile_counts with colour maps on tiles 0, 2, 4 in an rstr chunk before DONE"},
      {"valid_restoration_unbound.t1d", stale, ok, "",
       "valid_trimmed_to_2 with valid_restoration's rstr chunk copied: bound to other counts, "
       "read without it (a warning)"},
      // ---- version 1.3: REFN refinement ----
      {"valid_refinement.t1d", refined, ok, "",
       "3x2 tiles, REFN: tokens 0 and 1 refined by 2 bits a dimension after token layers 0 and 2; "
       "layer counts 7 0 3 1 10 2"},
      {"valid_refinement_trimmed_to_2.t1d", *refined_trimmed, ok, "",
       "valid_refinement trimmed to 2 tokens: 3 layers (t0 r0 t1)"},
      {"valid_refinement_trimmed_to_1.t1d", *refined_token_only, ok, "",
       "valid_refinement trimmed to 1 layer (token 0): no refinement layer kept, so no REFN; "
       "1.5 for its palette of counts (1.3 were they equal)"},
      {"invalid_refinement_in_version_1_2.t1d",
       Mutate(refined, [](Framed& f) { f.preamble[9] = 2; }), StatusCode::kCorrupt,
       "refinement needs 1.3", "valid_refinement with minor version 2"},
      {"invalid_refinement_order.t1d",
       Mutate(refined,
              [](Framed& f) {
                f.chunks[1].data = {2, 2, 2, 0};
              }),
       StatusCode::kCorrupt, "refinement of token 1",
       "token 1's refinement placed before token 0's"},
      {"invalid_refinement_bits.t1d", Mutate(refined, [](Framed& f) { f.chunks[1].data[0] = 7; }),
       StatusCode::kCorrupt, "over 32 bits", "7 bits for each of 5 dimensions"},
      {"invalid_refinement_not_after_head.t1d",
       Mutate(refined, [](Framed& f) { std::swap(f.chunks[1], f.chunks[2]); }),
       StatusCode::kCorrupt, "more than the", "REFN after the ancillary chunk: counts exceed K"},
      {"valid_steps.t1d", stepped, ok, "",
       "valid_refinement's layout, QSTP: FSQ values of tokens 3-5 on every 2nd level, 6- on "
       "every 3rd"},
      {"invalid_steps_in_version_1_3.t1d", Mutate(stepped, [](Framed& f) { f.preamble[9] = 3; }),
       StatusCode::kCorrupt, "steps need 1.4", "valid_steps with minor version 3"},
      {"invalid_token_off_step.t1d",
       Mutate(stepped,
              [](Framed& f) {
                f.chunks[2].data = {1, 3, 5};
              }),
       StatusCode::kCorrupt, "off its quantiser step", "valid_steps with step 5 from token 3"},
      // ---- version 1.5: counts_mode 2, a palette of counts ----
      {"invalid_palette_in_version_1_4.t1d", Mutate(*trimmed, [](Framed& f) { f.preamble[9] = 4; }),
       StatusCode::kCorrupt, "unknown token count mode 2 for a version 1.4",
       "valid_trimmed_to_2 with minor version 4"},
      {"invalid_palette_order.t1d",
       Mutate(*trimmed, [&](Framed& f) { std::swap(palette_at(f)[1], palette_at(f)[3]); }),
       StatusCode::kCorrupt, "not strictly increasing",
       "valid_trimmed_to_2 with its palette 0 1 2 as 1 0 2"},
      {"invalid_palette_index.t1d", Mutate(*trimmed, [&](Framed& f) { palette_at(f)[8] = 0xB0; }),
       StatusCode::kCorrupt, "index 3 is outside the 3-count palette",
       "valid_trimmed_to_2 with tile 5's index 3"},
      {"invalid_palette_padding.t1d",
       Mutate(*trimmed, [&](Framed& f) { palette_at(f)[8] |= 0x01; }), StatusCode::kCorrupt,
       "padding bits after the tile counts", "valid_trimmed_to_2 with its last padding bit set"},
      {"invalid_palette_too_small.t1d", Mutate(*trimmed, [&](Framed& f) { palette_at(f)[0] = 1; }),
       StatusCode::kCorrupt, "needs 2 or more counts",
       "valid_trimmed_to_2 with a palette of 1 count"},
      {"invalid_counts_mode_future.t1d",
       Mutate(Write(future),
              [](Framed& f) {
                auto& head = f.chunks[0].data;
                head[head.size() - 5] = 3;  // before the u16 count and the 2 extension bytes
              }),
       StatusCode::kUnsupported, "needs a newer tok1d",
       "valid_future_minor with token count mode 3: not corrupt, unknown to this reader"},
  };
  return files;
}

std::string GoldenManifest(const std::vector<GoldenFile>& files) {
  std::string text = "# file\texpected ReadT1d result\tmessage contains\tdescription\n";
  for (const GoldenFile& file : files) {
    text += file.name + "\t" + std::string(StatusCodeName(file.expected)) + "\t" +
            file.expected_message + "\t" + file.description + "\n";
  }
  return text;
}

}  // namespace tok1d::testing
