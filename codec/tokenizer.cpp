#include "codec/tokenizer.h"

#include <algorithm>
#include <string>
#include <vector>

namespace tok1d {

// Activations of one batch, in backend memory, sized for `tiles` tiles.
struct Tokenizer::Workspace {
  size_t tiles = 0;
  DeviceBuffer pixels_u8;  // encoder input tiles
  DeviceBuffer patches;    // [tiles·N, patch_dim]: encoder patches, decoder detail
  DeviceBuffer pooled;     // [tiles, pooled_dim]: encoder thumbnail, decoder coarse image
  DeviceBuffer rows;       // [tiles·S, d]: patch or token embeddings, sliced rows
  DeviceBuffer hidden;     // [tiles·S, d]: the residual stream
  DeviceBuffer normed;     // [tiles·S, d]
  DeviceBuffer qkv;        // [tiles·S, 3d]
  DeviceBuffer attended;   // [tiles·S, d]
  DeviceBuffer mlp;        // [tiles·S, mlp_width]
  DeviceBuffer codes;      // [tiles·K, C]: z before FSQ, decoder codes
  DeviceBuffer bounded;    // [tiles·K, C]
  DeviceBuffer tokens;     // [tiles·K] int32
  DeviceBuffer output;     // [tiles, tile, tile, 3] decoded pixels
  // The conv head's half-resolution maps, [tiles, tile/2, tile/2, max(channels, 12)] each
  // (none without a conv head).
  DeviceBuffer head_features;
  DeviceBuffer head_scratch;
};

// What DecodeValues keeps for DecodeValuesBackward, per decoder block b: its input
// (stream[b]), its qkv, the residual stream after attention (mid[b]) and fc1's pre-activation;
// stream[depth] is the last block's output, its patch-query rows alone (packed).
struct Tokenizer::Tape {
  size_t tiles = 0;  // capacity
  size_t count = 0;  // tiles of the last DecodeValues; 0: none yet
  DeviceBuffer keep;
  std::vector<DeviceBuffer> stream, mid, qkv, pre;
  // The conv head: each block's conv1 pre-activation and the last block's output.
  std::vector<DeviceBuffer> head_pre;
  DeviceBuffer head_final;
};

namespace {

TileGeometry ToGeometry(const ModelConfig& config) {
  return {config.tile, config.patch, config.pool};
}

}  // namespace

Tokenizer::Tokenizer(const Model& model, Backend& backend, const TokenizerOptions& options)
    : model_(model),
      backend_(backend),
      options_(options),
      workspace_(std::make_unique<Workspace>()),
      tape_(std::make_unique<Tape>()) {
  options_.max_batch_tiles = std::max<size_t>(options_.max_batch_tiles, 1);
}

Tokenizer::~Tokenizer() = default;

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(const Model& model, Backend& backend,
                                                       const TokenizerOptions& options) {
  if (model.config().code_dim() > FsqLevels::kMaxDims) {
    return UnsupportedError("model has more FSQ dimensions than the backends support");
  }
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer(model, backend, options));
  const std::span<const float> weights = model.weights();
  TOK1D_ASSIGN_OR_RETURN(tokenizer->weights_, backend.UploadConstant(std::span<const uint8_t>(
                                                  reinterpret_cast<const uint8_t*>(weights.data()),
                                                  weights.size_bytes())));
  return tokenizer;
}

const float* Tokenizer::Weight(WeightSpan span) const {
  return weights_.as<const float>() + span.offset;
}

Status Tokenizer::Reserve(size_t tiles) {
  Workspace& w = *workspace_;
  if (w.tiles >= tiles) return OkStatus();
  const ModelConfig& c = model_.config();
  const size_t n = c.patch_count(), k = c.tokens, d = c.width;
  const size_t length = std::max(c.encoder_sequence(), c.decoder_sequence());
  const size_t rows = tiles * length;
  const size_t f = sizeof(float);
  w = Workspace();  // release the smaller buffers first
  auto allocate = [this](DeviceBuffer* buffer, size_t bytes) -> Status {
    TOK1D_ASSIGN_OR_RETURN(*buffer, backend_.Allocate(bytes));
    return OkStatus();
  };
  const size_t tile_values = size_t{c.tile} * c.tile * 3;
  TOK1D_RETURN_IF_ERROR(allocate(&w.pixels_u8, tiles * tile_values));
  TOK1D_RETURN_IF_ERROR(allocate(&w.patches, tiles * n * c.patch_dim() * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.pooled, tiles * c.pooled_dim() * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.rows, rows * d * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.hidden, rows * d * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.normed, rows * d * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.qkv, rows * 3 * d * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.attended, rows * d * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.mlp, rows * c.mlp_width() * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.codes, tiles * k * c.code_dim() * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.bounded, tiles * k * c.code_dim() * f));
  TOK1D_RETURN_IF_ERROR(allocate(&w.tokens, tiles * k * sizeof(int32_t)));
  TOK1D_RETURN_IF_ERROR(allocate(&w.output, tiles * tile_values * f));
  if (c.conv_head) {
    const size_t map = size_t{c.head_side()} * c.head_side() * std::max<size_t>(c.conv_head, 12);
    TOK1D_RETURN_IF_ERROR(allocate(&w.head_features, tiles * map * f));
    TOK1D_RETURN_IF_ERROR(allocate(&w.head_scratch, tiles * map * f));
  }
  w.tiles = tiles;
  return OkStatus();
}

void Tokenizer::RunLinear(const float* x, size_t rows, const LinearWeights& linear, float* y,
                          Epilogue epilogue) {
  backend_.Linear(x, rows, linear.in, Weight(linear.weight), Weight(linear.bias), linear.out, y,
                  epilogue);
}

void Tokenizer::RunConv(const float* x, size_t count, const ConvWeights& conv, float* y,
                        Epilogue epilogue) {
  const uint32_t side = model_.config().head_side();
  backend_.Conv3x3(x, count, side, side, conv.in, Weight(conv.weight), Weight(conv.bias), conv.out,
                   y, epilogue);
}

// models/tok1d_model.py decode_codes, the conv head: from workspace.normed (the normed
// patch-query rows) it adds its residual to workspace.output. With `save`, keeps what
// RunConvHeadBackward needs in the tape (fc1-style: conv1 stored, then Gelu, the same values).
void Tokenizer::RunConvHead(size_t count, bool save) {
  const ModelConfig& c = model_.config();
  const ConvHeadWeights& head = *model_.layout().conv_head;
  Workspace& w = *workspace_;
  const size_t n = c.patch_count();
  float* features = save ? tape_->head_final.as<float>() : w.head_features.as<float>();
  float* scratch = w.head_scratch.as<float>();
  RunLinear(w.normed.as<float>(), count * n, head.head_in, scratch, Epilogue::kStore);
  backend_.Unpatchify(scratch, count, c.head_side(), c.head_patch(), c.conv_head, features);
  for (size_t b = 0; b < head.blocks.size(); ++b) {
    const ConvBlockWeights& block = head.blocks[b];
    if (save) {
      float* pre = tape_->head_pre[b].as<float>();
      RunConv(features, count, block.conv1, pre, Epilogue::kStore);
      backend_.Gelu(pre, count * c.head_map_values(), scratch);
    } else {
      RunConv(features, count, block.conv1, scratch, Epilogue::kGelu);
    }
    RunConv(scratch, count, block.conv2, features, Epilogue::kAccumulate);
  }
  backend_.Gelu(features, count * c.head_map_values(), scratch);
  float* residual = save ? w.head_features.as<float>() : features;
  RunConv(scratch, count, head.head_out, residual, Epilogue::kStore);
  backend_.PixelShuffleAdd(residual, count, c.head_side(), c.head_side(), 3, 2,
                           w.output.as<float>());
}

// The conv head's backward pass: workspace.output holds the gradient of the pixels; the
// gradient of workspace.normed is added to grad_normed.
void Tokenizer::RunConvHeadBackward(size_t count) {
  const ModelConfig& c = model_.config();
  const ConvHeadWeights& head = *model_.layout().conv_head;
  Workspace& w = *workspace_;
  Tape& tape = *tape_;
  const size_t n = c.patch_count(), map_values = count * c.head_map_values();
  const uint32_t side = c.head_side();
  float* grad = w.head_scratch.as<float>();  // of the feature map
  float* other = w.head_features.as<float>();
  backend_.PixelShuffleAddBackward(w.output.as<float>(), count, side, side, 3, 2, other);
  backend_.Conv3x3BackwardInput(other, count, side, side, head.head_out.out,
                                Weight(head.head_out.weight), head.head_out.in, grad, false);
  backend_.GeluBackward(tape.head_final.as<float>(), grad, map_values, grad);
  for (size_t b = head.blocks.size(); b-- > 0;) {  // f_out = f_in + conv2(gelu(conv1(f_in)))
    const ConvBlockWeights& block = head.blocks[b];
    backend_.Conv3x3BackwardInput(grad, count, side, side, block.conv2.out,
                                  Weight(block.conv2.weight), block.conv2.in, other, false);
    backend_.GeluBackward(tape.head_pre[b].as<float>(), other, map_values, other);
    backend_.Conv3x3BackwardInput(other, count, side, side, block.conv1.out,
                                  Weight(block.conv1.weight), block.conv1.in, grad, true);
  }
  backend_.UnpatchifyBackward(grad, count, side, c.head_patch(), c.conv_head, other);
  backend_.LinearBackwardInput(other, count * n, head.head_in.out, Weight(head.head_in.weight),
                               head.head_in.in, w.normed.as<float>(), true);
}

namespace {

// A device-side copy of `rows` rows (SliceSequences of one sequence: the interface's copy).
void CopyRows(Backend& backend, const float* from, size_t rows, size_t width, float* to) {
  backend.SliceSequences(from, 1, rows, 0, rows, width, to);
}

}  // namespace

// A pre-LN transformer block on workspace.hidden (models/tok1d_model.py Block.forward).
void Tokenizer::RunBlock(const BlockWeights& block, size_t sequences, size_t length, size_t first,
                         size_t kept) {
  const ModelConfig& c = model_.config();
  Workspace& w = *workspace_;
  size_t rows = sequences * length;
  float* hidden = w.hidden.as<float>();
  float* normed = w.normed.as<float>();
  float* attended = w.attended.as<float>();
  backend_.LayerNorm(hidden, rows, c.width, Weight(block.norm1.gamma), Weight(block.norm1.beta),
                     c.ln_eps, normed);
  RunLinear(normed, rows, block.qkv, w.qkv.as<float>(), Epilogue::kStore);
  backend_.Attention(w.qkv.as<float>(), sequences, length, c.heads, c.head_dim(), attended);
  if (kept < length) {  // every row is a key, only the kept rows go on
    backend_.SliceSequences(attended, sequences, length, first, kept, c.width, w.rows.as<float>());
    attended = w.rows.as<float>();
    backend_.SliceSequences(hidden, sequences, length, first, kept, c.width, normed);
    rows = sequences * kept;
    CopyRows(backend_, normed, rows, c.width, hidden);
  }
  RunLinear(attended, rows, block.proj, hidden, Epilogue::kAccumulate);
  backend_.LayerNorm(hidden, rows, c.width, Weight(block.norm2.gamma), Weight(block.norm2.beta),
                     c.ln_eps, normed);
  RunLinear(normed, rows, block.fc1, w.mlp.as<float>(), Epilogue::kGelu);
  RunLinear(w.mlp.as<float>(), rows, block.fc2, hidden, Epilogue::kAccumulate);
}

Status Tokenizer::Encode(std::span<const uint8_t> tiles, size_t count, std::span<uint32_t> tokens,
                         std::span<float> bounded) {
  const ModelConfig& c = model_.config();
  const size_t tile_bytes = size_t{c.tile} * c.tile * 3;
  const size_t per_tile = c.tokens, per_tile_bounded = size_t{c.tokens} * c.code_dim();
  if (tiles.size() != count * tile_bytes || tokens.size() != count * per_tile ||
      (!bounded.empty() && bounded.size() != count * per_tile_bounded)) {
    return InternalError("Tokenizer::Encode: buffer sizes do not match the tile count");
  }
  for (size_t first = 0; first < count; first += options_.max_batch_tiles) {
    const size_t batch = std::min(options_.max_batch_tiles, count - first);
    TOK1D_RETURN_IF_ERROR(EncodeBatch(
        tiles.subspan(first * tile_bytes, batch * tile_bytes), batch,
        tokens.subspan(first * per_tile, batch * per_tile),
        bounded.empty() ? bounded
                        : bounded.subspan(first * per_tile_bounded, batch * per_tile_bounded)));
  }
  return OkStatus();
}

// models/tok1d_model.py Tok1d.encode_codes + FSQ.to_index.
Status Tokenizer::EncodeBatch(std::span<const uint8_t> tiles, size_t count,
                              std::span<uint32_t> tokens, std::span<float> bounded) {
  TOK1D_RETURN_IF_ERROR(Reserve(count));
  const ModelConfig& c = model_.config();
  const ModelWeights& m = model_.layout();
  Workspace& w = *workspace_;
  const size_t n = c.patch_count(), k = c.tokens, d = c.width, length = c.encoder_sequence();

  TOK1D_RETURN_IF_ERROR(backend_.CopyToDevice(w.pixels_u8.as<void>(), tiles.data(), tiles.size()));
  backend_.PatchifyTiles(w.pixels_u8.as<uint8_t>(), count, ToGeometry(c), w.patches.as<float>(),
                         w.pooled.as<float>());
  RunLinear(w.patches.as<float>(), count * n, m.patch_embed, w.rows.as<float>(), Epilogue::kStore);
  // The linear code z_linear = shortcut_enc(pooled): [count, K·C] and [count·K, C] are the same
  // memory.
  RunLinear(w.pooled.as<float>(), count, m.shortcut_enc, w.codes.as<float>(), Epilogue::kStore);
  RowSource latents{Weight(m.latents), k, 0, nullptr};
  if (m.code_in_embed) {  // latent i starts as latents[i] + code_in_embed(z_linear[i])
    RunLinear(w.codes.as<float>(), count * k, *m.code_in_embed, w.attended.as<float>(),
              Epilogue::kStore);
    latents = {w.attended.as<float>(), k, k * d, Weight(m.latents)};
  }
  backend_.BuildSequences({w.rows.as<float>(), n, n * d, Weight(m.enc_pos)}, latents, count, d,
                          w.hidden.as<float>());
  // The latent rows (the last K of each sequence) become the tokens.
  for (size_t b = 0; b < m.enc_blocks.size(); ++b) {
    const bool last = b + 1 == m.enc_blocks.size();
    RunBlock(m.enc_blocks[b], count, length, last ? n : 0, last ? k : length);
  }
  backend_.LayerNorm(w.hidden.as<float>(), count * k, d, Weight(m.enc_norm.gamma),
                     Weight(m.enc_norm.beta), c.ln_eps, w.normed.as<float>());
  // z = to_code(h) + z_linear.
  RunLinear(w.normed.as<float>(), count * k, m.to_code, w.codes.as<float>(), Epilogue::kAccumulate);
  backend_.FsqQuantize(w.codes.as<float>(), count * k, MakeFsqLevels(c.codebook()),
                       bounded.empty() ? nullptr : w.bounded.as<float>(), w.tokens.as<int32_t>());

  std::vector<int32_t> indices(count * k);
  TOK1D_RETURN_IF_ERROR(
      backend_.CopyToHost(indices.data(), w.tokens.as<void>(), indices.size() * sizeof(int32_t)));
  for (size_t i = 0; i < indices.size(); ++i) tokens[i] = static_cast<uint32_t>(indices[i]);
  if (!bounded.empty()) {
    TOK1D_RETURN_IF_ERROR(
        backend_.CopyToHost(bounded.data(), w.bounded.as<void>(), bounded.size_bytes()));
  }
  return OkStatus();
}

Status Tokenizer::Decode(std::span<const uint32_t> tokens, std::span<const uint32_t> keep,
                         size_t count, std::span<float> pixels, std::span<const float> offsets) {
  const ModelConfig& c = model_.config();
  const size_t k = c.tokens, code_dim = c.code_dim();
  const size_t tile_values = size_t{c.tile} * c.tile * 3;
  if (tokens.size() != count * k || keep.size() != count || pixels.size() != count * tile_values ||
      (!offsets.empty() && offsets.size() != count * k * code_dim)) {
    return InternalError("Tokenizer::Decode: buffer sizes do not match the tile count");
  }
  const uint64_t codebook = c.codebook_size();
  std::vector<int32_t> masked(tokens.size());
  for (size_t t = 0; t < count; ++t) {
    if (keep[t] > k) {
      return InvalidArgumentError("tile " + std::to_string(t) + " asks for " +
                                  std::to_string(keep[t]) + " tokens; the model has " +
                                  std::to_string(k));
    }
    for (size_t i = 0; i < k; ++i) {
      const uint32_t token = tokens[t * k + i];
      if (i >= keep[t]) {
        masked[t * k + i] = kDroppedToken;
      } else if (token >= codebook) {
        return CorruptError("token " + std::to_string(token) +
                            " is outside the model's codebook of " + std::to_string(codebook));
      } else {
        masked[t * k + i] = static_cast<int32_t>(token);
      }
    }
  }
  for (size_t first = 0; first < count; first += options_.max_batch_tiles) {
    const size_t batch = std::min(options_.max_batch_tiles, count - first);
    TOK1D_RETURN_IF_ERROR(DecodeBatch(
        std::span<const int32_t>(masked).subspan(first * k, batch * k),
        offsets.empty() ? offsets : offsets.subspan(first * k * code_dim, batch * k * code_dim),
        batch, pixels.subspan(first * tile_values, batch * tile_values)));
  }
  return OkStatus();
}

// models/tok1d_model.py Tok1d.decode_codes.
Status Tokenizer::DecodeBatch(std::span<const int32_t> tokens, std::span<const float> offsets,
                              size_t count, std::span<float> pixels) {
  TOK1D_RETURN_IF_ERROR(Reserve(count));
  const ModelConfig& c = model_.config();
  const ModelWeights& m = model_.layout();
  Workspace& w = *workspace_;
  const size_t n = c.patch_count(), k = c.tokens, d = c.width, length = c.decoder_sequence();

  TOK1D_RETURN_IF_ERROR(
      backend_.CopyToDevice(w.tokens.as<void>(), tokens.data(), tokens.size_bytes()));
  if (!offsets.empty()) {  // the encoder's buffer of bounded values is free while decoding
    TOK1D_RETURN_IF_ERROR(
        backend_.CopyToDevice(w.bounded.as<void>(), offsets.data(), offsets.size_bytes()));
  }
  backend_.EmbedTokens(w.tokens.as<int32_t>(), offsets.empty() ? nullptr : w.bounded.as<float>(),
                       count * k, MakeFsqLevels(c.codebook()), Weight(m.code_embed.weight),
                       Weight(m.code_embed.bias), Weight(m.mask_token), d, w.rows.as<float>(),
                       w.codes.as<float>());
  // The coarse image from the linear shortcut (dropped tokens have codes 0).
  RunLinear(w.codes.as<float>(), count, m.shortcut_dec, w.pooled.as<float>(), Epilogue::kStore);
  RowSource queries{Weight(m.patch_queries), n, 0, nullptr};
  if (m.coarse_embed) {  // query i = patch_queries[i] + coarse_embed(patch i of the coarse image)
    backend_.Patchify(w.pooled.as<float>(), count, c.pool, c.coarse_patch(), w.patches.as<float>());
    RunLinear(w.patches.as<float>(), count * n, *m.coarse_embed, w.attended.as<float>(),
              Epilogue::kStore);
    queries = {w.attended.as<float>(), n, n * d, Weight(m.patch_queries)};
  }
  backend_.BuildSequences(queries, {w.rows.as<float>(), k, k * d, Weight(m.dec_token_pos)}, count,
                          d, w.hidden.as<float>());
  // The patch-query rows (the first N of each sequence) become pixels.
  for (size_t b = 0; b < m.dec_blocks.size(); ++b) {
    RunBlock(m.dec_blocks[b], count, length, 0, b + 1 == m.dec_blocks.size() ? n : length);
  }
  backend_.LayerNorm(w.hidden.as<float>(), count * n, d, Weight(m.dec_norm.gamma),
                     Weight(m.dec_norm.beta), c.ln_eps, w.normed.as<float>());
  RunLinear(w.normed.as<float>(), count * n, m.to_pixels, w.patches.as<float>(), Epilogue::kStore);
  backend_.AssembleTiles(w.patches.as<float>(), w.pooled.as<float>(), count, ToGeometry(c),
                         w.output.as<float>());
  if (m.conv_head) RunConvHead(count, false);
  return backend_.CopyToHost(pixels.data(), w.output.as<void>(), pixels.size_bytes());
}

// ---- DecodeValues and its backward pass ----

// Block `index` of the decoder on tape.stream[index] → tape.stream[index + 1], keeping what
// RunBlockBackward needs; the same operations as RunBlock (fc1 stored, then Gelu, equals the
// kGelu epilogue), so the same results. kept < length: as RunBlock, only the first `kept` rows
// of each sequence go on (packed) past the attention.
void Tokenizer::RunBlockSaved(size_t index, size_t sequences, size_t length, size_t kept) {
  const ModelConfig& c = model_.config();
  const BlockWeights& block = model_.layout().dec_blocks[index];
  Workspace& w = *workspace_;
  Tape& tape = *tape_;
  size_t rows = sequences * length;
  const float* input = tape.stream[index].as<float>();
  float* qkv = tape.qkv[index].as<float>();
  float* mid = tape.mid[index].as<float>();
  float* pre = tape.pre[index].as<float>();
  float* output = tape.stream[index + 1].as<float>();
  float* normed = w.normed.as<float>();
  float* attended = w.attended.as<float>();
  backend_.LayerNorm(input, rows, c.width, Weight(block.norm1.gamma), Weight(block.norm1.beta),
                     c.ln_eps, normed);
  RunLinear(normed, rows, block.qkv, qkv, Epilogue::kStore);
  backend_.Attention(qkv, sequences, length, c.heads, c.head_dim(), attended);
  if (kept < length) {
    backend_.SliceSequences(attended, sequences, length, 0, kept, c.width, w.rows.as<float>());
    attended = w.rows.as<float>();
    backend_.SliceSequences(input, sequences, length, 0, kept, c.width, mid);
    rows = sequences * kept;
  } else {
    CopyRows(backend_, input, rows, c.width, mid);
  }
  RunLinear(attended, rows, block.proj, mid, Epilogue::kAccumulate);
  backend_.LayerNorm(mid, rows, c.width, Weight(block.norm2.gamma), Weight(block.norm2.beta),
                     c.ln_eps, normed);
  RunLinear(normed, rows, block.fc1, pre, Epilogue::kStore);
  backend_.Gelu(pre, rows * c.mlp_width(), w.mlp.as<float>());
  CopyRows(backend_, mid, rows, c.width, output);
  RunLinear(w.mlp.as<float>(), rows, block.fc2, output, Epilogue::kAccumulate);
}

// The backward pass of block `index`: workspace.hidden holds the gradient of its output on
// entry (sequences × kept rows) and that of its input on return (sequences × length rows; the
// other workspace buffers are scratch).
void Tokenizer::RunBlockBackward(size_t index, size_t sequences, size_t length, size_t kept) {
  const ModelConfig& c = model_.config();
  const BlockWeights& block = model_.layout().dec_blocks[index];
  Workspace& w = *workspace_;
  Tape& tape = *tape_;
  const size_t rows = sequences * length, kept_rows = sequences * kept;
  const size_t d = c.width, mlp = c.mlp_width();
  float* grad = w.hidden.as<float>();
  float* grad_normed = w.normed.as<float>();
  float* grad_mlp = w.mlp.as<float>();
  float* grad_attended = w.attended.as<float>();
  // output = mid + fc2(gelu(fc1(norm2(mid)))): grad becomes that of mid.
  backend_.LinearBackwardInput(grad, kept_rows, d, Weight(block.fc2.weight), mlp, grad_mlp, false);
  backend_.GeluBackward(tape.pre[index].as<float>(), grad_mlp, kept_rows * mlp, grad_mlp);
  backend_.LinearBackwardInput(grad_mlp, kept_rows, mlp, Weight(block.fc1.weight), d, grad_normed,
                               false);
  backend_.LayerNormBackward(tape.mid[index].as<float>(), grad_normed, kept_rows, d,
                             Weight(block.norm2.gamma), c.ln_eps, grad, true);
  // mid = input + proj(attention(qkv(norm1(input)))): grad becomes that of input.
  if (kept < length) {  // the rows the block dropped have gradient 0
    backend_.LinearBackwardInput(grad, kept_rows, d, Weight(block.proj.weight), d,
                                 w.rows.as<float>(), false);
    backend_.SliceSequencesBackward(w.rows.as<float>(), sequences, length, 0, kept, d,
                                    grad_attended);
    backend_.SliceSequencesBackward(grad, sequences, length, 0, kept, d, grad_mlp);
    CopyRows(backend_, grad_mlp, rows, d, grad);
  } else {
    backend_.LinearBackwardInput(grad, rows, d, Weight(block.proj.weight), d, grad_attended, false);
  }
  backend_.AttentionBackward(tape.qkv[index].as<float>(), grad_attended, sequences, length, c.heads,
                             c.head_dim(), w.qkv.as<float>());
  backend_.LinearBackwardInput(w.qkv.as<float>(), rows, 3 * d, Weight(block.qkv.weight), d,
                               grad_normed, false);
  backend_.LayerNormBackward(tape.stream[index].as<float>(), grad_normed, rows, d,
                             Weight(block.norm1.gamma), c.ln_eps, grad, true);
}

// models/tok1d_model.py Tok1d.decode_codes, as DecodeBatch, from values, keeping activations.
Status Tokenizer::DecodeValues(std::span<const float> values, std::span<const uint32_t> keep,
                               size_t count, std::span<float> pixels) {
  if (!backend_.supports_backward()) {
    return UnsupportedError("the " + std::string(backend_.name()) +
                            " backend has no backward pass (use the cpu backend)");
  }
  const ModelConfig& c = model_.config();
  const ModelWeights& m = model_.layout();
  const size_t n = c.patch_count(), k = c.tokens, d = c.width, code_dim = c.code_dim();
  const size_t length = c.decoder_sequence(), rows = count * length;
  const size_t tile_values = size_t{c.tile} * c.tile * 3;
  if (values.size() != count * k * code_dim || keep.size() != count ||
      pixels.size() != count * tile_values) {
    return InternalError("Tokenizer::DecodeValues: buffer sizes do not match the tile count");
  }
  if (count == 0 || count > options_.max_batch_tiles) {
    return InvalidArgumentError("Tokenizer::DecodeValues takes 1 to " +
                                std::to_string(options_.max_batch_tiles) + " tiles, not " +
                                std::to_string(count));
  }
  for (size_t t = 0; t < count; ++t) {
    if (keep[t] > k) {
      return InvalidArgumentError("tile " + std::to_string(t) + " asks for " +
                                  std::to_string(keep[t]) + " tokens; the model has " +
                                  std::to_string(k));
    }
  }
  TOK1D_RETURN_IF_ERROR(Reserve(count));
  Tape& tape = *tape_;
  tape.count = 0;
  if (tape.tiles < count) {
    const size_t depth = m.dec_blocks.size();
    tape = Tape();  // release the smaller buffers first
    auto allocate = [this](DeviceBuffer* buffer, size_t floats) -> Status {
      TOK1D_ASSIGN_OR_RETURN(*buffer, backend_.Allocate(floats * sizeof(float)));
      return OkStatus();
    };
    TOK1D_ASSIGN_OR_RETURN(tape.keep, backend_.Allocate(count * sizeof(uint32_t)));
    tape.stream.resize(depth + 1);
    tape.mid.resize(depth);
    tape.qkv.resize(depth);
    tape.pre.resize(depth);
    for (size_t b = 0; b <= depth; ++b) {
      TOK1D_RETURN_IF_ERROR(allocate(&tape.stream[b], rows * d));
      if (b == depth) break;
      TOK1D_RETURN_IF_ERROR(allocate(&tape.mid[b], rows * d));
      TOK1D_RETURN_IF_ERROR(allocate(&tape.qkv[b], rows * 3 * d));
      TOK1D_RETURN_IF_ERROR(allocate(&tape.pre[b], rows * c.mlp_width()));
    }
    if (c.conv_head) {
      const size_t map = count * c.head_map_values();
      tape.head_pre.resize(m.conv_head->blocks.size());
      for (DeviceBuffer& pre : tape.head_pre) TOK1D_RETURN_IF_ERROR(allocate(&pre, map));
      TOK1D_RETURN_IF_ERROR(allocate(&tape.head_final, map));
    }
    tape.tiles = count;
  }
  Workspace& w = *workspace_;
  TOK1D_RETURN_IF_ERROR(
      backend_.CopyToDevice(w.bounded.as<void>(), values.data(), values.size_bytes()));
  TOK1D_RETURN_IF_ERROR(
      backend_.CopyToDevice(tape.keep.as<void>(), keep.data(), keep.size_bytes()));
  backend_.EmbedValues(w.bounded.as<float>(), tape.keep.as<uint32_t>(), count, k, code_dim,
                       Weight(m.code_embed.weight), Weight(m.code_embed.bias), Weight(m.mask_token),
                       d, w.rows.as<float>(), w.codes.as<float>());
  RunLinear(w.codes.as<float>(), count, m.shortcut_dec, w.pooled.as<float>(), Epilogue::kStore);
  RowSource queries{Weight(m.patch_queries), n, 0, nullptr};
  if (m.coarse_embed) {
    backend_.Patchify(w.pooled.as<float>(), count, c.pool, c.coarse_patch(), w.patches.as<float>());
    RunLinear(w.patches.as<float>(), count * n, *m.coarse_embed, w.attended.as<float>(),
              Epilogue::kStore);
    queries = {w.attended.as<float>(), n, n * d, Weight(m.patch_queries)};
  }
  backend_.BuildSequences(queries, {w.rows.as<float>(), k, k * d, Weight(m.dec_token_pos)}, count,
                          d, tape.stream[0].as<float>());
  const size_t depth = m.dec_blocks.size();
  // The patch-query rows (the first N of each sequence) become pixels.
  for (size_t b = 0; b < depth; ++b) RunBlockSaved(b, count, length, b + 1 == depth ? n : length);
  backend_.LayerNorm(tape.stream[depth].as<float>(), count * n, d, Weight(m.dec_norm.gamma),
                     Weight(m.dec_norm.beta), c.ln_eps, w.normed.as<float>());
  RunLinear(w.normed.as<float>(), count * n, m.to_pixels, w.patches.as<float>(), Epilogue::kStore);
  backend_.AssembleTiles(w.patches.as<float>(), w.pooled.as<float>(), count, ToGeometry(c),
                         w.output.as<float>());
  if (m.conv_head) RunConvHead(count, true);
  TOK1D_RETURN_IF_ERROR(
      backend_.CopyToHost(pixels.data(), w.output.as<void>(), pixels.size_bytes()));
  tape.count = count;
  return OkStatus();
}

Status Tokenizer::DecodeValuesBackward(std::span<const float> grad_pixels,
                                       std::span<float> grad_values) {
  Tape& tape = *tape_;
  const size_t count = tape.count;
  if (count == 0) {
    return InternalError("Tokenizer::DecodeValuesBackward: no DecodeValues to differentiate");
  }
  const ModelConfig& c = model_.config();
  const ModelWeights& m = model_.layout();
  const size_t n = c.patch_count(), k = c.tokens, d = c.width, code_dim = c.code_dim();
  const size_t length = c.decoder_sequence();
  const size_t tile_values = size_t{c.tile} * c.tile * 3;
  if (grad_pixels.size() != count * tile_values || grad_values.size() != count * k * code_dim) {
    return InternalError(
        "Tokenizer::DecodeValuesBackward: buffer sizes do not match DecodeValues'");
  }
  TOK1D_RETURN_IF_ERROR(Reserve(count));
  Workspace& w = *workspace_;
  float* grad_detail = w.patches.as<float>();
  float* grad_coarse = w.pooled.as<float>();
  float* grad_normed = w.normed.as<float>();
  float* grad_sequence = w.hidden.as<float>();
  TOK1D_RETURN_IF_ERROR(
      backend_.CopyToDevice(w.output.as<void>(), grad_pixels.data(), grad_pixels.size_bytes()));
  // pixels = 0.5 + unpatchify(to_pixels(dec_norm(slice))) + upsample(coarse).
  backend_.AssembleTilesBackward(w.output.as<float>(), count, ToGeometry(c), grad_detail,
                                 grad_coarse);
  backend_.LinearBackwardInput(grad_detail, count * n, m.to_pixels.out, Weight(m.to_pixels.weight),
                               d, grad_normed, false);
  if (m.conv_head) RunConvHeadBackward(count);  // adds the head's part to grad_normed
  const size_t depth = m.dec_blocks.size();
  backend_.LayerNormBackward(tape.stream[depth].as<float>(), grad_normed, count * n, d,
                             Weight(m.dec_norm.gamma), c.ln_eps, grad_sequence, false);
  for (size_t b = depth; b-- > 0;) RunBlockBackward(b, count, length, b + 1 == depth ? n : length);
  // sequence = [queries; tokens + dec_token_pos].
  float* grad_tokens = w.rows.as<float>();
  backend_.SliceSequences(grad_sequence, count, length, n, k, d, grad_tokens);
  if (m.coarse_embed) {  // queries = patch_queries + coarse_embed(patchify(coarse))
    backend_.SliceSequences(grad_sequence, count, length, 0, n, d, w.attended.as<float>());
    backend_.LinearBackwardInput(w.attended.as<float>(), count * n, m.coarse_embed->out,
                                 Weight(m.coarse_embed->weight), m.coarse_embed->in,
                                 w.patches.as<float>(), false);
    backend_.PatchifyBackward(w.patches.as<float>(), count, c.pool, c.coarse_patch(), grad_coarse,
                              true);
  }
  // coarse = shortcut_dec(codes), tokens = code_embed(codes) (kept rows).
  float* grad_codes = w.codes.as<float>();
  backend_.LinearBackwardInput(grad_coarse, count, m.shortcut_dec.out,
                               Weight(m.shortcut_dec.weight), m.shortcut_dec.in, grad_codes, false);
  backend_.EmbedValuesBackward(grad_tokens, tape.keep.as<uint32_t>(), count, k, code_dim,
                               Weight(m.code_embed.weight), d, grad_codes, true);
  return backend_.CopyToHost(grad_values.data(), grad_codes, grad_values.size_bytes());
}

}  // namespace tok1d
