// tok1d_cpu_bench: how fast the tokenizer runs on one image (not a test: it prints numbers).
//
//   tok1d_cpu_bench --model M.safetensors --image kodim01.png [--threads N] [--repeat R]
//               [--tokens k] [--device cpu]
//
// Prints, as `key value` lines (scripts/bench-cpu lays them out next to PyTorch's):
// model load time; encode and decode milliseconds per tile (all tiles of the image in one
// batch, best of R runs); whole-image encode and decode in megapixels per second (tiling,
// placing and, for decode, deblocking included: PyTorch does no deblocking, so this only
// handicaps tok1d); peak resident memory.
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>

#include "codec/codec.h"
#include "codec/tiling.h"
#include "imageio/image_io.h"
#include "tok1d/tok1d.h"

namespace tok1d {
namespace {

using Clock = std::chrono::steady_clock;

double Milliseconds(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Best of `repeat` runs of `body`, in milliseconds; stops at the first error.
template <typename Body>
StatusOr<double> BestOf(int repeat, Body body) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeat; ++i) {
    const Clock::time_point start = Clock::now();
    TOK1D_RETURN_IF_ERROR(body());
    best = std::min(best, Milliseconds(start));
  }
  return best;
}

Status Run(const std::string& model_path, const std::string& image_path, unsigned threads,
           int repeat, uint32_t tokens, const std::string& device) {
  Clock::time_point start = Clock::now();
  TOK1D_ASSIGN_OR_RETURN(Model model, LoadModelFile(model_path));
  const double load_ms = Milliseconds(start);
  TOK1D_ASSIGN_OR_RETURN(Image image, ReadImage(image_path));
  const ModelConfig config = model.config();
  if (tokens == 0) tokens = config.tokens;

  CodecOptions options;
  options.device = device;
  options.threads = threads;
  options.max_batch_tiles = 1 << 16;  // the whole image in one batch, as PyTorch gets it
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec, Codec::Create(std::move(model), options));
  // The bare forward pass (no tiling or image work) on a backend of its own.
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackend(device, {threads}));
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                         Tokenizer::Create(codec->model(), *backend, {options.max_batch_tiles}));

  const TileGrid grid = MakeTileGrid(image.width, image.height, config.tile);
  const size_t count = grid.count(), k = config.tokens;
  std::vector<uint8_t> tiles(count * config.tile * config.tile * 3);
  ExtractTiles(image, grid, 0, count, tiles);
  std::vector<uint32_t> indices(count * k);
  std::vector<float> pixels(tiles.size());
  const std::vector<uint32_t> keep(count, tokens);

  TOK1D_ASSIGN_OR_RETURN(double encode_ms,
                         BestOf(repeat, [&] { return tokenizer->Encode(tiles, count, indices); }));
  TOK1D_ASSIGN_OR_RETURN(double decode_ms, BestOf(repeat, [&] {
                           return tokenizer->Decode(indices, keep, count, pixels);
                         }));
  TokenFile file;
  TOK1D_ASSIGN_OR_RETURN(double image_encode_ms, BestOf(repeat, [&]() -> Status {
                           TOK1D_ASSIGN_OR_RETURN(file, codec->Encode(image, tokens));
                           return OkStatus();
                         }));
  TOK1D_ASSIGN_OR_RETURN(double image_decode_ms,
                         BestOf(repeat, [&]() -> Status { return codec->Decode(file).status(); }));
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double megapixels = static_cast<double>(image.width) * image.height / 1e6;

  std::printf("runtime tok1d-cpp\n");
  std::printf("backend %s\n", codec->backend().description().c_str());
  std::printf("image %ux%u\ntiles %zu\ntokens %u\nthreads %u\n", image.width, image.height, count,
              tokens, threads);
  std::printf("model_load_ms %.1f\n", load_ms);
  std::printf("encode_ms_per_tile %.2f\n", encode_ms / static_cast<double>(count));
  std::printf("decode_ms_per_tile %.2f\n", decode_ms / static_cast<double>(count));
  std::printf("image_encode_mpixel_per_s %.3f\n", megapixels / (image_encode_ms / 1000));
  std::printf("image_decode_mpixel_per_s %.3f\n", megapixels / (image_decode_ms / 1000));
  std::printf("peak_rss_mib %.1f\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
  return OkStatus();
}

}  // namespace
}  // namespace tok1d

int main(int argc, char** argv) {
  tok1d::RestartWithRecommendedBlasCore(argv);  // the kernels tok1d itself runs
  CLI::App app("tok1d_cpu_bench: tokenizer speed on one image", "tok1d_cpu_bench");
  std::string model, image, device = "cpu";
  unsigned threads = 0;
  int repeat = 3;
  uint32_t tokens = 0;
  app.add_option("--model", model, "model file")->required();
  app.add_option("--image", image, "image file")->required();
  app.add_option("-j,--threads", threads, "threads (default: all cores)");
  app.add_option("--repeat", repeat, "runs per measurement (the best is reported)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--tokens", tokens, "tokens per tile to decode (default: all)");
  app.add_option("--device", device, "backend");
  CLI11_PARSE(app, argc, argv);
  const tok1d::Status status = tok1d::Run(model, image, threads, repeat, tokens, device);
  if (!status.ok()) {
    std::fprintf(stderr, "tok1d_cpu_bench: %s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
