#include "codec/token_search.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numeric>
#include <string>

#include "codec/entropy_coder.h"
#include "container/layer_plan.h"

namespace tok1d {

namespace {

// TOK1D_SEARCH="field=value,…" over `options` (SearchOptionsForEffort); unknown fields and bad
// values are ignored, as an experiment's typo should not break encoding.
void OverrideFromEnvironment(SearchOptions* options) {
  const char* text = std::getenv("TOK1D_SEARCH");
  if (text == nullptr) return;
  std::string rest(text);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string item = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    const size_t equals = item.find('=');
    if (equals == std::string::npos) continue;
    const std::string name = item.substr(0, equals);
    char* end = nullptr;
    const double value = std::strtod(item.c_str() + equals + 1, &end);
    if (end == item.c_str() + equals + 1 || !(value >= 0) || value > 1e6) continue;
    const auto whole = static_cast<uint32_t>(value);
    if (name == "descent_steps") options->descent_steps = whole;
    if (name == "learning_rate") options->learning_rate = static_cast<float>(value);
    if (name == "polish_rounds") options->polish_rounds = whole;
    if (name == "polish_tries") options->polish_tries = whole;
    if (name == "polish_moves") options->polish_moves = whole;
    if (name == "polish_depth") options->polish_depth = whole;
    if (name == "curvature_probes") options->curvature_probes = whole;
    if (name == "prefix_weight") options->prefix_weight = static_cast<float>(value);
    if (name == "prefix_floors") options->prefix_floors = whole != 0;
    if (name == "fixed_tokens") options->fixed_tokens = whole;
    if (name == "rate_weight") options->rate_weight = static_cast<float>(value);
    if (name == "trim_tails") options->trim_tails = whole != 0;
    if (name == "trim_rate_weight") options->trim_rate_weight = static_cast<float>(value);
    if (name == "trim_counts") options->trim_counts = whole;
    if (name == "trim_first") options->trim_first = whole != 0;
    if (name == "grow_counts") options->grow_counts = whole;
    if (name == "grow_rate_weight") options->grow_rate_weight = static_cast<float>(value);
  }
}

}  // namespace

SearchOptions SearchOptionsForEffort(uint32_t effort) {
  SearchOptions options;
  effort = std::min(effort, kMaxSearchEffort);
  // Measured with `tok1d sweep --effort` on held-out training photos (docs/effort.md): single
  // moves tried exactly gain more per CPU-second than groups of moves (polish_moves, whose
  // first-order predictions miss too often) or the descent, which no level uses.
  // Single moves tried exactly converge within about 8 rounds on most tiles; the higher levels
  // go on to later candidates (polish_depth), up to 16 rounds at depth 3. Beyond that (48
  // rounds at depth 6 and the descent, the old level 9) added about 0.3 points of PSNR over
  // level 4 on Kodak for 5 times its time, and took MS-SSIM back: not worth having
  // (docs/effort.md). The descent stays for experiments (TOK1D_SEARCH).
  static constexpr struct {
    uint32_t descent_steps, polish_rounds, polish_tries, polish_depth;
  } kLevels[kMaxSearchEffort + 1] = {
      {0, 0, 0, 0},   {0, 2, 8, 1},   {0, 4, 8, 1},   {0, 4, 16, 1},  {0, 8, 16, 1},
      {0, 10, 16, 1}, {0, 12, 16, 1}, {0, 12, 16, 2}, {0, 16, 16, 2}, {0, 16, 16, 3},
  };
  options.descent_steps = kLevels[effort].descent_steps;
  options.polish_rounds = kLevels[effort].polish_rounds;
  options.polish_tries = kLevels[effort].polish_tries;
  options.polish_depth = kLevels[effort].polish_depth;
  // Ranking moves with the curvature makes 4 rounds of 8 tries worth 3 % of the rate more
  // for 18 % more time (docs/effort.md): cheaper than a level up.
  options.curvature_probes = effort > 0 ? 4 : 0;
  options.trim_tails = effort > 0;
  // From 8 rounds on the polish finds enough moves that trade error for bits to cost MS-SSIM
  // at λ = the image's slope (Kodak at level 4: +1.2 %); at half of it level 4 gains as much
  // PSNR and MS-SSIM improves (−2.2 %; on the held-out photos −0.5 % against rate weight 1).
  // Level 2 is better at 1 (−13.1 % PSNR on the held-out photos against −11.4 %).
  options.rate_weight = options.polish_rounds >= 8 ? 0.5f : 1.0f;
  // The trim prices bits at half the slope at every level: from level 4 on that is the
  // search's full λ. With format 1.5's cheap counts, on the tuning photos, −2.6 % PSNR and
  // −0.2 % MS-SSIM at level 4 against a quarter of the slope (docs/effort.md).
  if (options.polish_rounds >= 8) options.trim_rate_weight = 1.0f;
  // Trimming before the search as well lets the polish work on the counts the file keeps:
  // −0.9 % PSNR, −0.2 % MS-SSIM at level 4 on the tuning photos (docs/effort.md).
  options.trim_first = effort > 0;
  // The trim before the search also tries 3/2 of the count: tiles whose next tokens pay for
  // their bits keep them. −2.6 % PSNR, +0.6 % MS-SSIM at level 4 on the tuning photos; 5/4
  // as well or a higher price per bit gained less (docs/effort.md).
  options.grow_counts = effort > 0 ? 1 : 0;
  options.prefix_floors = effort > 0;
  if (effort > 0) OverrideFromEnvironment(&options);
  return options;
}

namespace {

// Deterministic uniform noise in [−½, ½) from a position (SplitMix64).
float Noise(uint64_t step, uint64_t index) {
  uint64_t z = step * 0x9E3779B97F4A7C15ull + index + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) / static_cast<float>(1u << 24) - 0.5f;
}

// The frequency of `digit` in a distribution's cumulative frequencies.
double Frequency(std::span<const uint32_t> cumulative, uint32_t digit) {
  return static_cast<double>(cumulative[digit + 1] - cumulative[digit]);
}

}  // namespace

// A batch's targets and, per tile, the token counts and weights of its prefixes.
struct TokenSearch::Batch {
  size_t count = 0;
  std::vector<float> target;  // count × tile × tile × 3, in [0, 1]
  std::vector<SearchTile> info;
  std::array<std::vector<uint32_t>, kPrefixes> keep;
  std::array<std::vector<float>, kPrefixes> weight;
  // The most squared error a floor prefix may have (infinite: no floor).
  std::array<std::vector<double>, kPrefixes> floor;
};

TokenSearch::TokenSearch(Tokenizer& tokenizer, const Model& model, const Refinement& refinement)
    : tokenizer_(tokenizer),
      model_(model),
      refinement_(refinement),
      codebook_(model.config().codebook()),
      K_(model.config().tokens),
      C_(codebook_.dims()),
      tile_(model.config().tile) {
  for (uint32_t d = 0; d < C_; ++d) {
    const auto centre = static_cast<float>(codebook_.centre(d));
    low_.push_back(-centre);
    high_.push_back(static_cast<float>(codebook_.level(d) - 1) - centre);
    code_scale_.push_back(centre > 0 ? 1.0f / centre : 0.0f);
  }
}

uint32_t TokenSearch::RefinedTokens(uint32_t keep) const {
  if (refinement_.bits == 0) return 0;
  const LayerPlan plan(K_, refinement_);
  return plan.RefinementsInLayers(plan.LayersForTokens(keep));
}

float TokenSearch::Quantize(float b, uint32_t dim, bool refined) const {
  constexpr float kInside = 0.4999f;  // stays in the outermost levels' cells
  b = std::clamp(b, low_[dim] - kInside, high_[dim] + kInside);
  const float q = std::nearbyint(b);
  if (!refined) return q;
  const auto parts = static_cast<float>(1u << refinement_.bits);
  const float part = std::clamp(std::floor((b - q + 0.5f) * parts), 0.0f, parts - 1.0f);
  return q + (part + 0.5f) / parts - 0.5f;
}

void TokenSearch::QuantizeTile(std::span<const float> b, uint32_t keep,
                               std::span<float> out) const {
  const uint32_t refined = RefinedTokens(keep);
  for (uint32_t j = 0; j < K_; ++j) {
    for (uint32_t d = 0; d < C_; ++d) {
      out[j * C_ + d] = Quantize(b[j * C_ + d], d, j < refined);
    }
  }
}

uint32_t TokenSearch::TokenOf(std::span<const float> values, size_t token) const {
  std::array<uint32_t, kFsqMaxDims> digits{};
  for (uint32_t d = 0; d < C_; ++d) {
    const float level =
        std::nearbyint(values[token * C_ + d]) + static_cast<float>(codebook_.centre(d));
    digits[d] =
        static_cast<uint32_t>(std::clamp(level, 0.0f, static_cast<float>(codebook_.level(d) - 1)));
  }
  return codebook_.Token(std::span<const uint32_t>(digits).first(C_));
}

double TokenSearch::Bits(std::span<const float> tile_values, uint32_t keep) const {
  const EntropyTables* tables = model_.entropy_tables().get();
  if (tables == nullptr) return 0;
  std::vector<uint32_t> tokens(keep);
  for (uint32_t j = 0; j < keep; ++j) tokens[j] = TokenOf(tile_values, j);
  return CodeLengthBits(*tables, tokens);
}

double TokenSearch::Lambda(std::span<const double> error_keep, std::span<const double> error_half,
                           std::span<const double> bits_keep, std::span<const double> bits_half,
                           float rate_weight) {
  const double saved = std::accumulate(error_half.begin(), error_half.end(), 0.0) -
                       std::accumulate(error_keep.begin(), error_keep.end(), 0.0);
  const double spent = std::accumulate(bits_keep.begin(), bits_keep.end(), 0.0) -
                       std::accumulate(bits_half.begin(), bits_half.end(), 0.0);
  if (!(saved > 0) || !(spent > 0)) return 0;
  return rate_weight * saved / spent;
}

Status TokenSearch::Distortion(const Batch& batch, std::span<const float> values,
                               std::span<double> error, std::span<float> gradient,
                               const Changes* changes, PrefixErrors* record, uint32_t probes,
                               Floors floors) {
  const size_t count = batch.count, per_tile = size_t{K_} * C_;
  const size_t tile_values = size_t{tile_} * tile_ * 3;
  const uint32_t backward_passes = std::max(probes, 1u);
  std::fill(error.begin(), error.end(), 0.0);
  if (!gradient.empty()) std::fill(gradient.begin(), gradient.end(), 0.0f);
  std::vector<float> codes, pixels, grad_pixels, grad_codes;
  std::vector<uint32_t> keep;
  std::vector<size_t> tiles;  // the batch's tiles this prefix decodes
  for (size_t p = 0; p < kPrefixes; ++p) {
    tiles.clear();
    const bool floor_prefix = p >= kWeightedPrefixes && floors != Floors::kIgnore;
    for (size_t t = 0; t < count; ++t) {
      if (batch.weight[p][t] == 0 && !(floor_prefix && batch.keep[p][t] > 0)) continue;
      // A prefix that ends before the first changed token decodes as it did (a floor
      // prefix: no worse than its floor, which it was held to when it changed).
      if (changes != nullptr && changes->first_changed[t] >= batch.keep[p][t]) {
        if (floor_prefix) continue;
        error[t] += batch.weight[p][t] * changes->prefix_errors[p][t];
        if (record != nullptr) (*record)[p][t] = changes->prefix_errors[p][t];
        continue;
      }
      tiles.push_back(t);
    }
    if (record != nullptr && (*record)[p].size() != count) (*record)[p].assign(count, 0.0);
    if (tiles.empty()) continue;
    const size_t n = tiles.size();
    codes.assign(n * per_tile, 0.0f);
    pixels.resize(n * tile_values);
    keep.resize(n);
    // The prefix's values: refinements the prefix lacks fall back to the rounded level.
    for (size_t i = 0; i < n; ++i) {
      const size_t t = tiles[i];
      keep[i] = batch.keep[p][t];
      const uint32_t refined = RefinedTokens(keep[i]);
      for (uint32_t j = 0; j < keep[i]; ++j) {
        for (uint32_t d = 0; d < C_; ++d) {
          const float v = values[t * per_tile + j * C_ + d];
          codes[i * per_tile + j * C_ + d] = (j < refined ? v : std::nearbyint(v)) * code_scale_[d];
        }
      }
    }
    TOK1D_RETURN_IF_ERROR(tokenizer_.DecodeValues(codes, keep, n, pixels));
    // The error of the tiles decoded, and its gradient with respect to the pixels.
    for (size_t i = 0; i < n; ++i) {
      const size_t t = tiles[i];
      const SearchTile& info = batch.info[t];
      const float* target = batch.target.data() + t * tile_values;
      const float* out = pixels.data() + i * tile_values;
      double sum = 0;
      for (uint32_t y = 0; y < info.rows; ++y) {
        for (uint32_t x = 0; x < info.cols * 3; ++x) {
          const size_t at = size_t{y} * tile_ * 3 + x;
          // The codec clamps what it writes: outside [0, 1] a change makes no difference.
          const float e = std::clamp(out[at], 0.0f, 1.0f) - target[at];
          sum += double{e} * e;
        }
      }
      error[t] += batch.weight[p][t] * sum;
      if (record != nullptr) (*record)[p][t] = sum;
      // A relative margin for the rounding of a decode in another batch.
      if (floor_prefix && floors == Floors::kEnforce && sum > batch.floor[p][t] * (1 + 1e-6)) {
        error[t] = std::numeric_limits<double>::infinity();
      }
    }
    if (gradient.empty() || floor_prefix) continue;
    grad_codes.resize(codes.size());
    for (uint32_t probe = 0; probe < backward_passes; ++probe) {
      grad_pixels.assign(pixels.size(), 0.0f);
      for (size_t i = 0; i < n; ++i) {
        const size_t t = tiles[i];
        const float w = batch.weight[p][t];
        const float probe_scale = std::sqrt(w);
        const SearchTile& info = batch.info[t];
        const float* target = batch.target.data() + t * tile_values;
        const float* out = pixels.data() + i * tile_values;
        float* grad = grad_pixels.data() + i * tile_values;
        for (uint32_t y = 0; y < info.rows; ++y) {
          for (uint32_t x = 0; x < info.cols * 3; ++x) {
            const size_t at = size_t{y} * tile_ * 3 + x;
            const float v = std::clamp(out[at], 0.0f, 1.0f);
            if (v != out[at]) continue;
            if (probes == 0) {
              grad[at] = 2.0f * w * (v - target[at]);
            } else {
              const bool up =
                  Noise(uint64_t{probe} * kWeightedPrefixes + p, t * tile_values + at) >= 0;
              grad[at] = up ? probe_scale : -probe_scale;
            }
          }
        }
      }
      // The tape of the decode above serves every probe's backward pass.
      TOK1D_RETURN_IF_ERROR(tokenizer_.DecodeValuesBackward(grad_pixels, grad_codes));
      float* into = gradient.data() + size_t{probe} * count * per_tile;
      for (size_t i = 0; i < n; ++i) {
        const size_t t = tiles[i];
        for (size_t v = 0; v < per_tile; ++v) {
          into[t * per_tile + v] += grad_codes[i * per_tile + v] * code_scale_[v % C_];
        }
      }
    }
  }
  return OkStatus();
}

Status TokenSearch::Curvature(const Batch& batch, std::span<const float> values, uint32_t probes,
                              std::span<float> curvature) {
  const size_t count = batch.count, per_tile = size_t{K_} * C_;
  std::fill(curvature.begin(), curvature.end(), 0.0f);
  std::vector<double> error(count);
  if (probes > 0) {
    std::vector<float> gradients(size_t{probes} * count * per_tile);
    TOK1D_RETURN_IF_ERROR(Distortion(batch, values, error, gradients, nullptr, nullptr, probes));
    for (uint32_t probe = 0; probe < probes; ++probe) {
      const float* gradient = gradients.data() + size_t{probe} * count * per_tile;
      for (size_t i = 0; i < curvature.size(); ++i) curvature[i] += gradient[i] * gradient[i];
    }
  }
  // Pool per pixel over the tiles with the same count: E[(Jᵀv)²] = ‖J‖² for v of random signs.
  struct Pool {
    std::vector<double> sum;
    double pixels = 0;
  };
  std::map<uint32_t, Pool> pools;  // by count
  auto pixels_of = [&](size_t t) {
    return static_cast<double>(batch.info[t].cols) * batch.info[t].rows;
  };
  for (size_t t = 0; t < count; ++t) {
    Pool& pool = pools[batch.keep[0][t]];
    pool.sum.resize(per_tile, 0.0);
    for (size_t v = 0; v < per_tile; ++v) pool.sum[v] += curvature[t * per_tile + v];
    pool.pixels += pixels_of(t);
  }
  for (size_t t = 0; t < count; ++t) {
    const Pool& pool = pools[batch.keep[0][t]];
    const double scale = pixels_of(t) / (std::max(pool.pixels, 1.0) * std::max(probes, 1u));
    for (size_t v = 0; v < per_tile; ++v) {
      curvature[t * per_tile + v] = static_cast<float>(pool.sum[v] * scale);
    }
  }
  return OkStatus();
}

TokenSearch::Batch TokenSearch::MakeBatch(std::span<const uint8_t> tiles,
                                          std::span<const SearchTile> info,
                                          std::span<const uint32_t> keep, float prefix_weight,
                                          bool floors) const {
  Batch batch;
  batch.count = info.size();
  batch.target.resize(tiles.size());
  for (size_t i = 0; i < tiles.size(); ++i) batch.target[i] = tiles[i] / 255.0f;
  batch.info.assign(info.begin(), info.end());
  for (size_t p = 0; p < kPrefixes; ++p) {
    batch.keep[p].assign(batch.count, 0);
    batch.weight[p].assign(batch.count, 0.0f);
    batch.floor[p].assign(batch.count, std::numeric_limits<double>::infinity());
  }
  for (size_t t = 0; t < batch.count; ++t) {
    batch.keep[0][t] = keep[t];
    batch.weight[0][t] = 1.0f;
    size_t prefixes = 0;
    for (size_t p = 1; p < kWeightedPrefixes; ++p) prefixes += (keep[t] >> p) >= 1;
    for (size_t p = 1; p < kWeightedPrefixes; ++p) {
      batch.keep[p][t] = keep[t] >> p;
      if ((keep[t] >> p) >= 1) {
        batch.weight[p][t] = prefix_weight / static_cast<float>(prefixes);
      }
    }
    if (!floors) continue;
    const uint32_t shortest = keep[t] >> (kWeightedPrefixes - 1);
    for (size_t p = kWeightedPrefixes; p < kPrefixes; ++p) {
      const uint32_t count = 1u << (p - kWeightedPrefixes);
      if (count < shortest) batch.keep[p][t] = count;
    }
  }
  return batch;
}

Status TokenSearch::Curvature(std::span<const uint8_t> tiles, std::span<const SearchTile> info,
                              std::span<const float> values, float prefix_weight, uint32_t probes,
                              std::span<float> curvature) {
  std::vector<uint32_t> keeps(info.size());
  for (size_t t = 0; t < info.size(); ++t) keeps[t] = info[t].keep;
  return Curvature(MakeBatch(tiles, info, keeps, prefix_weight), values, probes, curvature);
}

Status TokenSearch::Measure(std::span<const uint8_t> tiles, std::span<const SearchTile> info,
                            std::span<const uint32_t> keep, std::span<const float> bounded,
                            std::span<double> squared_error, std::span<double> bits) {
  const Batch batch = MakeBatch(tiles, info, keep, 0.0f);
  const size_t per_tile = size_t{K_} * C_;
  std::vector<float> values(batch.count * per_tile);
  for (size_t t = 0; t < batch.count; ++t) {
    QuantizeTile(bounded.subspan(t * per_tile, per_tile), keep[t],
                 std::span<float>(values).subspan(t * per_tile, per_tile));
    bits[t] = Bits(std::span<const float>(values).subspan(t * per_tile, per_tile), keep[t]);
  }
  return Distortion(batch, values, squared_error, {});
}

Status TokenSearch::Optimise(std::span<const uint8_t> tiles, std::span<const SearchTile> info,
                             double lambda, const SearchOptions& options, std::span<float> bounded,
                             const std::function<void(double)>& progress) {
  if (!tokenizer_.backend().supports_backward()) {
    return UnsupportedError("the " + std::string(tokenizer_.backend().name()) +
                            " backend has no backward pass for the token search");
  }
  const size_t count = info.size(), per_tile = size_t{K_} * C_;
  std::vector<uint32_t> keeps(count);
  for (size_t t = 0; t < count; ++t) keeps[t] = info[t].keep;
  Batch batch = MakeBatch(tiles, info, keeps, options.prefix_weight, options.prefix_floors);

  const EntropyTables* tables = model_.entropy_tables().get();
  if (tables == nullptr) lambda = 0;
  auto objective_of = [&](std::span<const float> values, std::span<const double> error,
                          std::vector<double>* objective) {
    for (size_t t = 0; t < count; ++t) {
      (*objective)[t] =
          error[t] +
          (lambda > 0 ? lambda * Bits(values.subspan(t * per_tile, per_tile), info[t].keep) : 0.0);
    }
  };

  std::vector<float> current(count * per_tile);
  for (size_t t = 0; t < count; ++t) {
    QuantizeTile(bounded.subspan(t * per_tile, per_tile), info[t].keep,
                 std::span<float>(current).subspan(t * per_tile, per_tile));
  }
  std::vector<double> error(count), objective(count);
  std::vector<float> gradient(count * per_tile);
  {
    PrefixErrors start;
    TOK1D_RETURN_IF_ERROR(Distortion(batch, current, error, {}, nullptr, &start, 0,
                                     options.prefix_floors ? Floors::kMeasure : Floors::kIgnore));
    for (size_t p = kWeightedPrefixes; p < kPrefixes; ++p) {  // keep 0 without the floors
      for (size_t t = 0; t < count; ++t) {
        if (batch.keep[p][t] > 0) batch.floor[p][t] = start[p][t];
      }
    }
  }
  objective_of(current, error, &objective);
  const Floors enforce = options.prefix_floors ? Floors::kEnforce : Floors::kIgnore;
  const double total_work = options.descent_steps + options.polish_rounds;
  double work = 0;
  auto report = [&] {
    work += 1;
    if (progress) progress(work / std::max(total_work, 1.0));
  };

  // The code length's slope per level of digit d of token j: central differences of
  // −log2 p under the token's context (held fixed), for the descent's rate term.
  auto rate_slopes = [&](std::span<const float> values, size_t t, std::span<float> slope) {
    std::fill(slope.begin(), slope.end(), 0.0f);
    if (lambda <= 0) return;
    const uint32_t keep = info[t].keep;
    std::vector<uint32_t> tokens(keep);
    for (uint32_t j = 0; j < keep; ++j)
      tokens[j] = TokenOf(values.subspan(t * per_tile, per_tile), j);
    for (uint32_t j = 0; j < keep; ++j) {
      const uint32_t context = tables->Context(j, tokens);
      for (uint32_t d = 0; d < C_; ++d) {
        const std::span<const uint32_t> c = tables->Distribution(j, d, context);
        const uint32_t levels = codebook_.level(d), s = codebook_.Digit(tokens[j], d);
        auto cost = [&](uint32_t digit) { return -std::log2(Frequency(c, digit)); };
        const uint32_t lo = s > 0 ? s - 1 : s, hi = s + 1 < levels ? s + 1 : s;
        if (hi > lo) slope[j * C_ + d] = static_cast<float>((cost(hi) - cost(lo)) / (hi - lo));
      }
    }
  };

  // 1. Annealed straight-through descent; the best rounded iterate of each tile is kept.
  if (options.descent_steps > 0) {
    std::vector<float> u(bounded.begin(), bounded.end()), noisy(count * per_tile),
        hard(count * per_tile), m(count * per_tile, 0.0f), v(count * per_tile, 0.0f),
        slope(per_tile);
    std::vector<double> trial_error(count), trial_objective(count);
    constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEpsilon = 1e-8f;
    float beta1_power = 1, beta2_power = 1;
    for (uint32_t step = 0; step < options.descent_steps; ++step) {
      const float fade =
          options.descent_steps > 1
              ? static_cast<float>(step) / static_cast<float>(options.descent_steps - 1)
              : 1.0f;
      for (size_t t = 0; t < count; ++t) {
        QuantizeTile(std::span<const float>(u).subspan(t * per_tile, per_tile), info[t].keep,
                     std::span<float>(hard).subspan(t * per_tile, per_tile));
      }
      for (size_t i = 0; i < u.size(); ++i) {
        noisy[i] = u[i] + (hard[i] - u[i]) * fade + Noise(step, i) * (1 - fade);
      }
      TOK1D_RETURN_IF_ERROR(Distortion(batch, noisy, trial_error, gradient));
      beta1_power *= kBeta1;
      beta2_power *= kBeta2;
      for (size_t t = 0; t < count; ++t) {
        rate_slopes(hard, t, slope);
        const size_t kept = size_t{info[t].keep} * C_;
        for (size_t i = std::min(size_t{options.fixed_tokens} * C_, kept); i < kept; ++i) {
          const size_t at = t * per_tile + i;
          const float g = gradient[at] + static_cast<float>(lambda) * slope[i];
          m[at] = kBeta1 * m[at] + (1 - kBeta1) * g;
          v[at] = kBeta2 * v[at] + (1 - kBeta2) * g * g;
          const float m_hat = m[at] / (1 - beta1_power), v_hat = v[at] / (1 - beta2_power);
          const uint32_t d = static_cast<uint32_t>(i % C_);
          u[at] = std::clamp(u[at] - options.learning_rate * m_hat / (std::sqrt(v_hat) + kEpsilon),
                             low_[d] - 0.4999f, high_[d] + 0.4999f);
        }
      }
      for (size_t t = 0; t < count; ++t) {
        QuantizeTile(std::span<const float>(u).subspan(t * per_tile, per_tile), info[t].keep,
                     std::span<float>(hard).subspan(t * per_tile, per_tile));
      }
      TOK1D_RETURN_IF_ERROR(Distortion(batch, hard, trial_error, {}, nullptr, nullptr, 0, enforce));
      objective_of(hard, trial_error, &trial_objective);
      for (size_t t = 0; t < count; ++t) {
        if (trial_objective[t] < objective[t]) {
          objective[t] = trial_objective[t];
          std::copy_n(hard.begin() + static_cast<std::ptrdiff_t>(t * per_tile), per_tile,
                      current.begin() + static_cast<std::ptrdiff_t>(t * per_tile));
        }
      }
      report();
    }
  }

  // 2. Polish: single steps ranked by the gradient and the exact change of code length.
  struct Move {
    float predicted = 0;
    uint32_t index = 0;  // j·C + d within the tile
    float step = 0;      // signed, in levels
  };
  std::vector<std::vector<Move>> moves(count), group_moves(count);
  std::vector<float> trial(count * per_tile), combined(count * per_tile);
  std::vector<double> trial_error(count), trial_objective(count), best_gain(count);
  std::vector<std::vector<float>> best_values(count);
  Changes changes;
  changes.first_changed.resize(count);
  // A tile whose trials all failed is done: its values, gradient and trials would not change.
  std::vector<uint8_t> active(count, 1);
  // After a failed round a tile goes on to the next `polish_tries` candidates, until it has
  // tried polish_depth × polish_tries of them without a success.
  std::vector<uint32_t> skip(count, 0);
  // Single moves that broke a floor (bit 1: up, 2: down), not tried again until a move of the
  // tokens the floors decode (the longest floor's) is taken: only those decide a floor.
  std::vector<std::vector<uint8_t>> blocked(count);
  for (size_t t = 0; t < count; ++t) {
    uint32_t floor_tokens = 0;
    for (size_t p = kWeightedPrefixes; p < kPrefixes; ++p) {
      floor_tokens = std::max(floor_tokens, batch.keep[p][t]);
    }
    blocked[t].assign(size_t{floor_tokens} * C_, 0);
  }
  auto block_bit = [](float step) { return static_cast<uint8_t>(step > 0 ? 1 : 2); };
  std::vector<float> curvature(count * per_tile, 0.0f);
  if (options.polish_rounds > 0 && options.curvature_probes > 0) {
    TOK1D_RETURN_IF_ERROR(Curvature(batch, current, options.curvature_probes, curvature));
  }
  for (uint32_t round = 0; round < options.polish_rounds; ++round) {
    for (size_t t = 0; t < count; ++t) changes.first_changed[t] = active[t] ? 0 : K_;
    TOK1D_RETURN_IF_ERROR(Distortion(batch, current, error, gradient,
                                     round == 0 ? nullptr : &changes, &changes.prefix_errors));
    objective_of(current, error, &objective);
    for (size_t t = 0; t < count; ++t) {
      best_gain[t] = 0;
      best_values[t].clear();
      moves[t].clear();
      group_moves[t].clear();
      if (!active[t]) continue;
      const uint32_t keep = info[t].keep, refined = RefinedTokens(keep);
      const std::span<const float> values =
          std::span<const float>(current).subspan(t * per_tile, per_tile);
      std::vector<uint32_t> tokens(keep);
      for (uint32_t j = 0; j < keep; ++j) tokens[j] = TokenOf(values, j);
      for (uint32_t j = std::min(options.fixed_tokens, keep); j < keep; ++j) {
        const float step = j < refined ? 1.0f / static_cast<float>(1u << refinement_.bits) : 1.0f;
        const uint32_t context = tables != nullptr ? tables->Context(j, tokens) : 0;
        for (uint32_t d = 0; d < C_; ++d) {
          const uint32_t index = j * C_ + d;
          for (const float sign : {1.0f, -1.0f}) {
            const float moved = values[index] + sign * step;
            if (moved < low_[d] - 0.5f || moved > high_[d] + 0.5f) continue;
            if (index < blocked[t].size() && (blocked[t][index] & block_bit(sign)) != 0) continue;
            float predicted = gradient[t * per_tile + index] * sign * step +
                              curvature[t * per_tile + index] * step * step;
            const float from = std::nearbyint(values[index]), to = std::nearbyint(moved);
            if (lambda > 0 && to != from) {
              const std::span<const uint32_t> c = tables->Distribution(j, d, context);
              const auto centre = static_cast<float>(codebook_.centre(d));
              const auto a = static_cast<uint32_t>(from + centre),
                         b = static_cast<uint32_t>(to + centre);
              predicted += static_cast<float>(
                  lambda * (std::log2(Frequency(c, a)) - std::log2(Frequency(c, b))));
            }
            moves[t].push_back({predicted, index, sign * step});
          }
        }
      }
      const size_t ranked = std::min<size_t>(
          std::max<size_t>(skip[t] + options.polish_tries, 2 * options.polish_moves),
          moves[t].size());
      std::partial_sort(moves[t].begin(), moves[t].begin() + static_cast<std::ptrdiff_t>(ranked),
                        moves[t].end(), [](const Move& a, const Move& b) {
                          return a.predicted < b.predicted ||
                                 (a.predicted == b.predicted && a.index < b.index);
                        });
      moves[t].resize(ranked);
      // The groups: moves predicted to help, one per value, best first.
      group_moves[t].clear();
      for (const Move& move : moves[t]) {
        if (group_moves[t].size() == options.polish_moves || move.predicted >= 0) break;
        const bool taken =
            std::any_of(group_moves[t].begin(), group_moves[t].end(),
                        [&](const Move& other) { return other.index == move.index; });
        if (!taken) group_moves[t].push_back(move);
      }
      moves[t].erase(moves[t].begin(),
                     moves[t].begin() +
                         static_cast<std::ptrdiff_t>(std::min<size_t>(skip[t], moves[t].size())));
      moves[t].resize(std::min<size_t>(options.polish_tries, moves[t].size()));
    }
    // Trials: the best `tries` moves each alone, then groups of the best moves (distinct
    // values, predicted to help) of sizes polish_moves, /2, /4, … 2 together. Each trial is one
    // decode of the batch with one set of moves per tile; each tile keeps its best trial.
    std::vector<std::vector<std::vector<Move>>> trials;  // [trial][tile] → moves
    for (size_t m = 0; m < options.polish_tries; ++m) {
      std::vector<std::vector<Move>> set(count);
      bool any = false;
      for (size_t t = 0; t < count; ++t) {
        if (m < moves[t].size()) {
          set[t].push_back(moves[t][m]);
          any = true;
        }
      }
      if (!any) break;
      trials.push_back(std::move(set));
    }
    for (size_t size = options.polish_moves; size >= 2; size /= 2) {
      std::vector<std::vector<Move>> set(count);
      bool any = false;
      for (size_t t = 0; t < count; ++t) {
        for (const Move& move : group_moves[t]) {
          if (set[t].size() == size) break;
          set[t].push_back(move);
        }
        any = any || set[t].size() >= 2;
      }
      if (any) trials.push_back(std::move(set));
    }
    combined = current;
    std::vector<uint32_t> helpful(count, 0);
    for (const std::vector<std::vector<Move>>& set : trials) {
      trial = current;
      for (size_t t = 0; t < count; ++t) {
        changes.first_changed[t] = K_;
        for (const Move& move : set[t]) {
          trial[t * per_tile + move.index] += move.step;
          changes.first_changed[t] = std::min(changes.first_changed[t], move.index / C_);
        }
      }
      TOK1D_RETURN_IF_ERROR(
          Distortion(batch, trial, trial_error, {}, &changes, nullptr, 0, enforce));
      objective_of(trial, trial_error, &trial_objective);
      for (size_t t = 0; t < count; ++t) {
        if (set[t].empty()) continue;
        if (set[t].size() == 1 && std::isinf(trial_error[t]) &&
            set[t][0].index < blocked[t].size()) {
          blocked[t][set[t][0].index] |= block_bit(set[t][0].step);
        }
        const double gain = objective[t] - trial_objective[t];
        if (gain <= 0) continue;
        if (set[t].size() == 1) {  // every helpful single move on its own place, together
          const size_t at = t * per_tile + set[t][0].index;
          if (combined[at] == current[at]) {
            combined[at] = trial[at];
            ++helpful[t];
          }
        }
        if (gain > best_gain[t]) {
          best_gain[t] = gain;
          best_values[t].assign(trial.begin() + static_cast<std::ptrdiff_t>(t * per_tile),
                                trial.begin() + static_cast<std::ptrdiff_t>((t + 1) * per_tile));
        }
      }
    }
    for (size_t t = 0; t < count; ++t) {
      if (!active[t]) continue;
      if (best_gain[t] > 0) {
        skip[t] = 0;
      } else {
        skip[t] += options.polish_tries;
        active[t] = skip[t] < std::max(options.polish_depth, 1u) * options.polish_tries;
      }
    }
    if (std::none_of(active.begin(), active.end(), [](uint8_t a) { return a != 0; })) {
      report();
      break;
    }
    // Together the helpful moves usually help more than the best alone; checked, not assumed.
    for (size_t t = 0; t < count; ++t) {
      changes.first_changed[t] = K_;
      if (helpful[t] < 2) continue;  // one helpful move or none: measured already
      for (uint32_t i = 0; i < per_tile; ++i) {
        if (combined[t * per_tile + i] != current[t * per_tile + i]) {
          changes.first_changed[t] = i / C_;
          break;
        }
      }
    }
    TOK1D_RETURN_IF_ERROR(
        Distortion(batch, combined, trial_error, {}, &changes, nullptr, 0, enforce));
    objective_of(combined, trial_error, &trial_objective);
    for (size_t t = 0; t < count; ++t) {
      const auto begin = static_cast<std::ptrdiff_t>(t * per_tile);
      const auto floor_end = begin + static_cast<std::ptrdiff_t>(blocked[t].size());
      const std::vector<float> below(current.begin() + begin, current.begin() + floor_end);
      if (helpful[t] > 1 && objective[t] - trial_objective[t] > best_gain[t]) {
        std::copy_n(combined.begin() + begin, per_tile, current.begin() + begin);
      } else if (best_gain[t] > 0) {
        std::copy(best_values[t].begin(), best_values[t].end(), current.begin() + begin);
      }
      if (!std::equal(below.begin(), below.end(), current.begin() + begin)) {
        std::fill(blocked[t].begin(), blocked[t].end(), 0);
      }
    }
    report();
  }
  // The search's values are cell (or part) centres: the file rounds them to the same tokens.
  std::copy(current.begin(), current.end(), bounded.begin());
  if (progress) progress(1.0);
  return OkStatus();
}

}  // namespace tok1d
