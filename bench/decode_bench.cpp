// Decoder throughput of a backend: tiles per second and achieved GFLOP/s for several batch
// sizes (tiles decoded together), timed end to end as the codec runs them (tokens to the
// device, the forward pass, pixels back). One JSON object per line on stdout, for
// bench/report.py; scripts/gpu-check runs it beside bench/torch_decode_bench.py.
//
//   tok1d_bench --model FILE [--device cpu|cuda|hip|auto] [--batches 1,24,1024]
//               [--seconds S] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "codec/model.h"
#include "codec/tokenizer.h"
#include "kernels/backend.h"
#include "tok1d/tok1d.h"

namespace tok1d {
namespace {

struct BenchOptions {
  std::string model;
  std::string device = "auto";
  std::vector<size_t> batches = {1, 24, 1024};
  double seconds = 2.0;  // measuring time per batch size, after one warm-up batch
  unsigned threads = 0;
};

double LinearFlops(size_t rows, const LinearWeights& linear) {
  return 2.0 * static_cast<double>(rows) * linear.in * linear.out;
}

// FLOPs of decoding one tile, counted analytically: 2 per multiply-add of every matrix product
// (token embedding, projections, MLPs, attention scores and weighted sums, the output heads);
// norms, softmax, GELU and the upsampling are left out (they are a few percent).
double DecoderFlopsPerTile(const Model& model) {
  const ModelConfig& c = model.config();
  const ModelWeights& m = model.layout();
  const size_t n = c.patch_count(), k = c.tokens, length = c.decoder_sequence();
  double flops = 2.0 * static_cast<double>(k) * c.code_dim() * c.width;  // EmbedTokens
  for (const BlockWeights& block : m.dec_blocks) {
    flops += LinearFlops(length, block.qkv) + LinearFlops(length, block.proj) +
             LinearFlops(length, block.fc1) + LinearFlops(length, block.fc2);
    const auto rows = static_cast<double>(length);
    flops += 2.0 * 2.0 * rows * rows * c.width;  // q·kᵀ and p·v, all heads
  }
  flops += LinearFlops(n, m.to_pixels) + LinearFlops(1, m.shortcut_dec);
  if (m.coarse_embed) flops += LinearFlops(n, *m.coarse_embed);
  if (m.conv_head) {
    const double map = static_cast<double>(c.head_side()) * c.head_side();
    auto conv = [&](const ConvWeights& w) { return 2.0 * map * 9.0 * w.in * w.out; };
    flops += LinearFlops(n, m.conv_head->head_in) + conv(m.conv_head->head_out);
    for (const ConvBlockWeights& block : m.conv_head->blocks)
      flops += conv(block.conv1) + conv(block.conv2);
  }
  return flops;
}

bool ParseArguments(int argc, char** argv, BenchOptions* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    const bool has_value = i + 1 < argc;
    if (argument == "--model" && has_value) {
      options->model = argv[++i];
    } else if (argument == "--device" && has_value) {
      options->device = argv[++i];
    } else if (argument == "--seconds" && has_value) {
      options->seconds = std::atof(argv[++i]);
    } else if (argument == "--threads" && has_value) {
      options->threads = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (argument == "--batches" && has_value) {
      options->batches.clear();
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        options->batches.push_back(std::strtoul(p, &end, 10));
        p = *end == ',' ? end + 1 : end;
        if (options->batches.back() == 0 || (*end != ',' && *end != '\0')) return false;
      }
    } else {
      return false;
    }
  }
  return !options->model.empty() && !options->batches.empty();
}

Status RunBench(const BenchOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(const Model model, LoadModelFile(options.model));
  const ModelConfig& c = model.config();
  BackendOptions backend_options;
  backend_options.threads = options.threads;
  std::string note;
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                         CreateBackend(options.device, backend_options, &note));
  if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
  const double flops_per_tile = DecoderFlopsPerTile(model);

  for (const size_t batch : options.batches) {
    TokenizerOptions tokenizer_options;
    tokenizer_options.max_batch_tiles = batch;
    TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                           Tokenizer::Create(model, *backend, tokenizer_options));
    std::mt19937 random(1);
    std::vector<uint32_t> tokens(batch * c.tokens), keep(batch, c.tokens);
    for (uint32_t& token : tokens) token = static_cast<uint32_t>(random() % c.codebook_size());
    std::vector<float> pixels(batch * c.tile * c.tile * 3);

    TOK1D_RETURN_IF_ERROR(tokenizer->Decode(tokens, keep, batch, pixels));  // warm-up, allocation
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    size_t runs = 0;
    double elapsed = 0;
    do {
      TOK1D_RETURN_IF_ERROR(tokenizer->Decode(tokens, keep, batch, pixels));
      ++runs;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < options.seconds);
    const double tiles_per_second = static_cast<double>(runs * batch) / elapsed;
    std::printf(
        "{\"implementation\": \"tok1d\", \"backend\": \"%s\", \"device\": \"%s\", "
        "\"batch\": %zu, \"runs\": %zu, \"seconds_per_batch\": %.6g, "
        "\"tiles_per_second\": %.6g, \"gflops\": %.6g, \"flops_per_tile\": %.6g}\n",
        std::string(backend->name()).c_str(), backend->description().c_str(), batch, runs,
        elapsed / static_cast<double>(runs), tiles_per_second,
        tiles_per_second * flops_per_tile / 1e9, flops_per_tile);
    std::fflush(stdout);
  }
  return OkStatus();
}

}  // namespace
}  // namespace tok1d

int main(int argc, char** argv) {
  tok1d::RestartWithRecommendedBlasCore(argv);  // the kernels tok1d itself runs
  tok1d::BenchOptions options;
  if (!tok1d::ParseArguments(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: %s --model FILE [--device cpu|cuda|hip|auto] [--batches 1,24,1024] "
                 "[--seconds S] [--threads N]\n",
                 argv[0]);
    return 2;
  }
  const tok1d::Status status = tok1d::RunBench(options);
  if (!status.ok()) {
    std::fprintf(stderr, "tok1d_bench: %s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
