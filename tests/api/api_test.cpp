// The public API (include/tok1d/tok1d.h and tok1d_c.h): round trips, errors as status values,
// and sessions on many threads sharing one model (run under ThreadSanitizer by
// scripts/test-threads).
#include <doctest/doctest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "codec/test_models.h"
#include "temp_dir.h"
#include "tok1d/tok1d.h"
#include "tok1d/tok1d_c.h"

namespace tok1d {
namespace {

// A tiny model with random weights: the API's plumbing, not image quality.
std::shared_ptr<const LoadedModel> TinyModel() {
  const std::vector<uint8_t> bytes = testing::MakeModelFile(testing::TinyConfig(), 7);
  StatusOr<std::shared_ptr<const LoadedModel>> model = LoadedModel::LoadBytes(bytes);
  REQUIRE(model.ok());
  return *model;
}

Image TestImage(uint32_t width, uint32_t height, uint32_t seed) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(size_t{width} * height * 3);
  for (size_t i = 0; i < image.rgb.size(); ++i) {
    image.rgb[i] = static_cast<uint8_t>((i * 7 + seed * 31 + (i / 97) * 13) & 0xff);
  }
  return image;
}

TEST_CASE("api: encode, inspect, trim and decode round trip") {
  const std::shared_ptr<const LoadedModel> model = TinyModel();
  const ModelInfo info = model->info();
  CHECK(info.tile == 16);
  CHECK(info.max_tokens == 6);
  StatusOr<std::unique_ptr<Session>> session = Session::Create(model, {.threads = 1});
  REQUIRE(session.ok());
  const Image image = TestImage(40, 23, 1);

  StatusOr<EncodeResult> full = (*session)->Encode(image, {.tokens = 6});
  REQUIRE(full.ok());
  CHECK(full->tokens_per_tile == std::vector<uint32_t>(6, 6));  // 3 × 2 tiles
  StatusOr<T1dInfo> file = InspectT1d(full->t1d);
  REQUIRE(file.ok());
  CHECK(file->width == 40);
  CHECK(file->height == 23);
  CHECK(file->tiles == 6);
  CHECK(file->model_sha256 == info.sha256);

  // A trim is the file an encode at that count writes.
  StatusOr<EncodeResult> three = (*session)->Encode(image, {.tokens = 3});
  StatusOr<std::vector<uint8_t>> trimmed = TrimT1d(full->t1d, 3);
  REQUIRE(three.ok());
  REQUIRE(trimmed.ok());
  CHECK(*trimmed == three->t1d);

  StatusOr<DecodeResult> decoded = (*session)->Decode(three->t1d);
  REQUIRE(decoded.ok());
  CHECK(decoded->image.width == 40);
  CHECK(decoded->image.height == 23);
  CHECK(decoded->tokens_per_tile == std::vector<uint32_t>(6, 3));
  // Decoding at most 3 tokens of the full file gives the same pixels.
  StatusOr<DecodeResult> prefix = (*session)->Decode(full->t1d, {.max_tokens = 3});
  REQUIRE(prefix.ok());
  CHECK(prefix->image.rgb == decoded->image.rgb);
}

TEST_CASE("api: byte and PSNR targets, and errors as status values") {
  StatusOr<std::unique_ptr<Session>> session = Session::Create(TinyModel(), {.threads = 1});
  REQUIRE(session.ok());
  const Image image = TestImage(48, 48, 2);
  StatusOr<EncodeResult> full = (*session)->Encode(image, {.tokens = 6});
  REQUIRE(full.ok());
  StatusOr<EncodeResult> budget =
      (*session)->Encode(image, {.bytes = full->t1d.size() - 1, .compute_psnr = true});
  REQUIRE(budget.ok());
  CHECK(budget->t1d.size() < full->t1d.size());
  CHECK(budget->psnr.has_value());

  CHECK((*session)->Encode(image, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK((*session)->Encode(image, {.tokens = 7}).status().code() == StatusCode::kInvalidArgument);
  CHECK((*session)->Encode(image, {.tokens = 2, .bytes = 10}).status().code() ==
        StatusCode::kInvalidArgument);
  const std::vector<uint8_t> garbage(64, 0x55);
  CHECK_FALSE((*session)->Decode(garbage).ok());
  CHECK_FALSE(InspectT1d(garbage).ok());
  CHECK(LoadedModel::LoadFile("/nonexistent/model.safetensors").status().code() ==
        StatusCode::kNotFound);
}

TEST_CASE("api: DecodeMany gives each file its image or its own error") {
  StatusOr<std::unique_ptr<Session>> session = Session::Create(TinyModel(), {.threads = 1});
  REQUIRE(session.ok());
  StatusOr<EncodeResult> a = (*session)->Encode(TestImage(20, 20, 3), {.tokens = 4});
  StatusOr<EncodeResult> b = (*session)->Encode(TestImage(33, 17, 4), {.tokens = 6});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  const std::vector<uint8_t> broken(a->t1d.begin(), a->t1d.begin() + 10);
  const std::vector<std::span<const uint8_t>> files = {a->t1d, broken, b->t1d};
  std::vector<StatusOr<DecodeResult>> results = (*session)->DecodeMany(files);
  REQUIRE(results.size() == 3);
  CHECK(results[0].ok());
  CHECK_FALSE(results[1].ok());
  REQUIRE(results[2].ok());
  CHECK(results[2]->image.width == 33);
  StatusOr<DecodeResult> alone = (*session)->Decode(b->t1d);
  REQUIRE(alone.ok());
  CHECK(alone->image.rgb == results[2]->image.rgb);
}

// Effort: searched files are ordinary files, each tile keeping 1/2 to 3/2 of the count asked
// for (the search trims tails and grows tiles); ladders search each count; a byte budget holds;
// the levels are checked.
TEST_CASE("api: effort searches the tokens and keeps the rate target") {
  StatusOr<std::unique_ptr<Session>> session = Session::Create(TinyModel(), {.threads = 1});
  REQUIRE(session.ok());
  const Image image = TestImage(40, 23, 4);
  StatusOr<EncodeResult> plain = (*session)->Encode(image, {.tokens = 4});
  EncodeOptions options{.tokens = 4};
  options.effort = 2;
  double last_progress = 0;
  options.on_progress = [&](double fraction) { last_progress = fraction; };
  StatusOr<EncodeResult> searched = (*session)->Encode(image, options);
  REQUIRE(plain.ok());
  REQUIRE(searched.ok());
  CHECK(last_progress == 1.0);
  REQUIRE(searched->tokens_per_tile.size() == plain->tokens_per_tile.size());
  for (size_t t = 0; t < plain->tokens_per_tile.size(); ++t) {
    CHECK(searched->tokens_per_tile[t] <= plain->tokens_per_tile[t] * 3 / 2);
    CHECK(searched->tokens_per_tile[t] >= plain->tokens_per_tile[t] / 2);
  }
  CHECK(searched->t1d != plain->t1d);
  REQUIRE((*session)->Decode(searched->t1d).ok());

  const uint32_t counts[] = {2, 4};
  StatusOr<std::vector<EncodeResult>> ladder = (*session)->EncodeTokenLadder(image, counts, 2);
  REQUIRE(ladder.ok());
  CHECK(ladder->at(1).t1d == searched->t1d);  // the same search as Encode at 4 tokens

  const uint64_t budgets[] = {plain->t1d.size()};
  StatusOr<std::vector<EncodeResult>> within =
      (*session)->EncodeBudgets(image, budgets, Allocation::kUniform, 2);
  REQUIRE(within.ok());
  CHECK(within->at(0).t1d.size() <= plain->t1d.size());

  options.effort = kMaxEffort + 1;
  StatusOr<EncodeResult> refused = (*session)->Encode(image, options);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
}

// The API's promise (tok1d.h): a model is shared by any number of threads, each with its own
// session; results are the same bytes as on one thread.
// Each session either runs on its caller's thread or has worker threads of its own.
void CheckThreadsAgreeWithOneThread(unsigned session_threads) {
  CAPTURE(session_threads);
  const std::shared_ptr<const LoadedModel> model = TinyModel();
  constexpr size_t kImages = 16;
  std::vector<Image> images;
  for (uint32_t i = 0; i < kImages; ++i) images.push_back(TestImage(17 + 5 * i, 40 - i, i));

  auto convert = [&](Session& session, size_t i, std::vector<uint8_t>* t1d,
                     std::vector<uint8_t>* rgb) {
    const EncodeOptions options = i % 2 == 0
                                      ? EncodeOptions{.tokens = static_cast<uint32_t>(1 + i % 6)}
                                      : EncodeOptions{.bpp = 10.0 + static_cast<double>(i)};
    StatusOr<EncodeResult> encoded = session.Encode(images[i], options);
    if (!encoded.ok()) return false;
    StatusOr<DecodeResult> decoded = session.Decode(encoded->t1d);
    if (!decoded.ok()) return false;
    *t1d = std::move(encoded->t1d);
    *rgb = std::move(decoded->image.rgb);
    return true;
  };

  std::vector<std::vector<uint8_t>> want_t1d(kImages), want_rgb(kImages);
  {
    StatusOr<std::unique_ptr<Session>> session = Session::Create(model, {.threads = 1});
    REQUIRE(session.ok());
    for (size_t i = 0; i < kImages; ++i) REQUIRE(convert(**session, i, &want_t1d[i], &want_rgb[i]));
  }

  std::vector<std::vector<uint8_t>> got_t1d(kImages), got_rgb(kImages);
  std::vector<int> ok(kImages, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      StatusOr<std::unique_ptr<Session>> session =
          Session::Create(model, {.threads = session_threads});
      if (!session.ok()) return;
      for (size_t i = t; i < kImages; i += 8) {
        ok[i] = convert(**session, i, &got_t1d[i], &got_rgb[i]) ? 1 : 0;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < kImages; ++i) {
    CAPTURE(i);
    CHECK(ok[i] == 1);
    CHECK(got_t1d[i] == want_t1d[i]);
    CHECK(got_rgb[i] == want_rgb[i]);
  }
}

TEST_CASE("api: 8 threads sharing one model encode and decode as one thread does") {
  CheckThreadsAgreeWithOneThread(1);
  CheckThreadsAgreeWithOneThread(2);
}

TEST_CASE("c api: round trip and error codes") {
  const std::vector<uint8_t> bytes = testing::MakeModelFile(testing::TinyConfig(), 7);
  const testing::TempDir dir;
  const std::string path = dir.File("model.safetensors");
  FILE* file = std::fopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size());
  std::fclose(file);

  tok1d_model* model = nullptr;
  REQUIRE(tok1d_model_load(path.c_str(), &model) == TOK1D_OK);
  std::remove(path.c_str());
  CHECK(tok1d_model_max_tokens(model) == 6);
  tok1d_session_options session_options;
  tok1d_session_options_init(&session_options);
  session_options.threads = 1;
  tok1d_session* session = nullptr;
  REQUIRE(tok1d_session_create(model, &session_options, &session) == TOK1D_OK);
  tok1d_model_release(model);  // the session keeps its own reference

  const Image image = TestImage(30, 30, 9);
  tok1d_encode_options options;
  tok1d_encode_options_init(&options);
  options.tokens = 5;
  options.effort = 12;  // out of range
  uint8_t* t1d = nullptr;
  size_t t1d_size = 0;
  CHECK(tok1d_encode(session, image.rgb.data(), 30, 30, &options, &t1d, &t1d_size) ==
        TOK1D_INVALID_ARGUMENT);
  options.effort = 1;
  t1d = nullptr;
  t1d_size = 0;
  REQUIRE(tok1d_encode(session, image.rgb.data(), 30, 30, &options, &t1d, &t1d_size) == TOK1D_OK);
  tok1d_file_info info;
  REQUIRE(tok1d_inspect(t1d, t1d_size, &info) == TOK1D_OK);
  // At effort 1 tiles keep 1/2 to 3/2 of the 5 asked for, and at most the model's 6.
  CHECK(info.most_tokens >= 2);
  CHECK(info.most_tokens <= 6);
  uint8_t* rgb = nullptr;
  uint32_t width = 0, height = 0;
  REQUIRE(tok1d_decode(session, t1d, t1d_size, 0, &rgb, &width, &height) == TOK1D_OK);
  CHECK(width == 30);
  CHECK(height == 30);
  tok1d_free(rgb);

  options.tokens = 99;
  uint8_t* unused = nullptr;
  CHECK(tok1d_encode(session, image.rgb.data(), 30, 30, &options, &unused, &t1d_size) ==
        TOK1D_INVALID_ARGUMENT);
  CHECK(std::strlen(tok1d_last_error()) > 0);
  CHECK(tok1d_decode(session, t1d, 5, 0, &rgb, &width, &height) != TOK1D_OK);
  CHECK(tok1d_model_load("/nonexistent.safetensors", &model) == TOK1D_NOT_FOUND);
  tok1d_free(t1d);
  tok1d_session_release(session);
}

}  // namespace
}  // namespace tok1d
