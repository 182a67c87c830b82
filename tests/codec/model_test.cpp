// The safetensors reader and the model loader: valid files, and every way a file can be wrong.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "codec/model.h"
#include "codec/safetensors.h"
#include "codec/test_models.h"

namespace tok1d {
namespace {

using testing::FloatTensor;
using testing::MakeModelFile;
using testing::ModelMetadata;
using testing::RandomModelTensors;
using testing::TestTensor;
using testing::TinyConfig;
using testing::WriteSafetensors;

std::vector<uint8_t> RawFile(const std::string& header_json, size_t data_bytes = 0) {
  std::vector<uint8_t> file;
  for (size_t i = 0; i < 8; ++i)
    file.push_back(static_cast<uint8_t>(header_json.size() >> (8 * i)));
  for (char ch : header_json) file.push_back(static_cast<uint8_t>(ch));
  file.resize(file.size() + data_bytes);
  return file;
}

void CheckError(const Status& status, StatusCode code, const std::string& fragment) {
  CHECK_FALSE(status.ok());
  CHECK(status.code() == code);
  CHECK_MESSAGE(status.message().find(fragment) != std::string::npos, status.message());
}

TEST_CASE("HalfToFloat converts every class of binary16 value") {
  CHECK(HalfToFloat(0x0000) == 0.0f);
  CHECK(std::signbit(HalfToFloat(0x8000)));
  CHECK(HalfToFloat(0x3C00) == 1.0f);
  CHECK(HalfToFloat(0xC000) == -2.0f);
  CHECK(HalfToFloat(0x7BFF) == 65504.0f);
  CHECK(HalfToFloat(0x0001) == std::ldexp(1.0f, -24));     // smallest subnormal
  CHECK(HalfToFloat(0x03FF) == std::ldexp(1023.0f, -24));  // largest subnormal
  CHECK(std::isinf(HalfToFloat(0x7C00)));
  CHECK(std::isnan(HalfToFloat(0x7E00)));
}

TEST_CASE("safetensors: a valid file parses into views and metadata") {
  std::map<std::string, TestTensor> tensors;
  tensors["b"] = FloatTensor({1.0f, -2.5f, 0.25f}, {3}, "F16");
  tensors["a"] = FloatTensor({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2}, "F32");
  tensors["entropy.table"] = {"I32", {2}, {1, 0, 0, 0, 2, 0, 0, 0}};
  const std::vector<uint8_t> bytes = WriteSafetensors(tensors, {{"key", "value"}});
  StatusOr<SafetensorsFile> file = ParseSafetensors(bytes);
  REQUIRE(file.ok());
  CHECK(file->metadata.at("key") == "value");
  REQUIRE(file->tensors.size() == 3);
  const SafetensorsTensor* b = file->Find("b");
  REQUIRE(b != nullptr);
  CHECK(b->shape == std::vector<uint64_t>{3});
  std::vector<float> values(3);
  REQUIRE(TensorToFloat(*b, values).ok());
  CHECK(values == std::vector<float>{1.0f, -2.5f, 0.25f});
  CHECK(file->Find("missing") == nullptr);
  CHECK(file->Find("entropy.table")->element_count() == 2);
  std::vector<float> two(2);
  CheckError(TensorToFloat(*file->Find("entropy.table"), two), StatusCode::kUnsupported, "I32");
}

TEST_CASE("safetensors: damaged files are refused with a reason") {
  const std::vector<uint8_t> valid =
      WriteSafetensors({{"w", FloatTensor({1, 2, 3, 4}, {4}, "F32")}}, {});
  SUBCASE("shorter than the length field") {
    CheckError(ParseSafetensors(std::span(valid).first(5)).status(), StatusCode::kTruncated,
               "too short");
  }
  SUBCASE("header cut short") {
    CheckError(ParseSafetensors(std::span(valid).first(20)).status(), StatusCode::kTruncated,
               "header");
  }
  SUBCASE("tensor data cut short") {
    CheckError(ParseSafetensors(std::span(valid).first(valid.size() - 1)).status(),
               StatusCode::kTruncated, "tensor 'w'");
  }
  SUBCASE("implausible header length") {
    std::vector<uint8_t> bytes = valid;
    bytes[7] = 0x7F;
    CheckError(ParseSafetensors(bytes).status(), StatusCode::kCorrupt, "header length");
  }
  SUBCASE("bad JSON") {
    CheckError(ParseSafetensors(RawFile("{\"w\": [1, 2")).status(), StatusCode::kCorrupt, "JSON");
  }
  SUBCASE("header is not an object") {
    CheckError(ParseSafetensors(RawFile("[1, 2]")).status(), StatusCode::kCorrupt, "object");
  }
  SUBCASE("size disagrees with shape and dtype") {
    CheckError(
        ParseSafetensors(RawFile(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
            .status(),
        StatusCode::kCorrupt, "need 3 elements");
  }
  SUBCASE("offsets not increasing") {
    CheckError(
        ParseSafetensors(RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8))
            .status(),
        StatusCode::kCorrupt, "data_offsets");
  }
  SUBCASE("negative dimension") {
    CheckError(
        ParseSafetensors(RawFile(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})"))
            .status(),
        StatusCode::kCorrupt, "shape");
  }
  SUBCASE("metadata value not a string") {
    CheckError(ParseSafetensors(RawFile(R"({"__metadata__":{"a":1}})")).status(),
               StatusCode::kCorrupt, "metadata 'a'");
  }
}

TEST_CASE("model: a valid file loads with the right layout and identity") {
  const ModelConfig config = TinyConfig();
  const std::vector<uint8_t> bytes = MakeModelFile(config, 1, "tiny-one");
  StatusOr<Model> model = LoadModel(bytes);
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  CHECK(model->config().tile == 16);
  CHECK(model->config().fsq_levels == std::vector<uint32_t>{3, 4, 5});
  CHECK(model->config().codebook_size() == 60);
  CHECK(model->layout().enc_blocks.size() == 1);
  CHECK(model->layout().dec_blocks.size() == 2);
  CHECK(model->layout().shortcut_dec.in == config.tokens * 3);
  CHECK(model->layout().code_in_embed.has_value());
  CHECK(model->layout().coarse_embed->in == 3);  // coarse patch 4·4/16 = 1 pixel
  StatusOr<Model> first =
      LoadModel(MakeModelFile(config, 1, "first", testing::Architecture::kFirst));
  REQUIRE(first.ok());
  CHECK_FALSE(first->layout().code_in_embed.has_value());
  CHECK_FALSE(first->layout().coarse_embed.has_value());
  CHECK(model->identity().name == "tiny-one");
  CHECK(model->identity().sha256 == Sha256(bytes));
  CHECK(model->sha256_hex().size() == 64);
  // Tensors start on 64-byte boundaries of the arena and hold the file's values.
  const LinearWeights& qkv = model->layout().dec_blocks[1].qkv;
  CHECK(qkv.weight.offset % 16 == 0);
  CHECK(qkv.bias.offset % 16 == 0);
  const StatusOr<SafetensorsFile> parsed = ParseSafetensors(bytes);
  const SafetensorsTensor* source = parsed->Find("dec_blocks.1.qkv.weight");
  std::vector<float> expected(source->element_count());
  REQUIRE(TensorToFloat(*source, expected).ok());
  const std::span<const float> loaded = model->weights(qkv.weight);
  CHECK(std::equal(loaded.begin(), loaded.end(), expected.begin(), expected.end()));
}

TEST_CASE("model: a conv head loads, its 3x3 weights reordered to [out, 3, 3, in]") {
  const ModelConfig config = testing::TinyConvHeadConfig();
  const std::vector<uint8_t> bytes = MakeModelFile(config, 4, "tiny-conv");
  StatusOr<Model> model = LoadModel(bytes);
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  CHECK(model->config().conv_head == 4);
  CHECK(model->config().conv_blocks == 2);
  REQUIRE(model->layout().conv_head.has_value());
  const ConvHeadWeights& head = *model->layout().conv_head;
  CHECK(head.head_in.out == 2 * 2 * 4);  // (patch/2)² · channels
  CHECK(head.blocks.size() == 2);
  CHECK(head.head_out.out == 12);
  const StatusOr<SafetensorsFile> parsed = ParseSafetensors(bytes);
  const SafetensorsTensor* source = parsed->Find("head_blocks.1.conv2.weight");
  std::vector<float> pytorch(source->element_count());
  REQUIRE(TensorToFloat(*source, pytorch).ok());
  const std::span<const float> loaded = model->weights(head.blocks[1].conv2.weight);
  for (size_t o = 0; o < 4; ++o) {
    for (size_t i = 0; i < 4; ++i) {
      for (size_t tap = 0; tap < 9; ++tap) {
        CHECK(loaded[(o * 9 + tap) * 4 + i] == pytorch[(o * 4 + i) * 9 + tap]);
      }
    }
  }
  // A conv-head model without the config key is a model this runtime cannot read as such.
  auto tensors = RandomModelTensors(config, 4);
  CheckError(LoadModel(WriteSafetensors(tensors, ModelMetadata(TinyConfig()))).status(),
             StatusCode::kUnsupported,
             "a tensor this tok1d does not know: 'head_blocks.0.conv1.bias'");
  tensors.erase("head_out.bias");
  CheckError(LoadModel(WriteSafetensors(tensors, ModelMetadata(config))).status(),
             StatusCode::kCorrupt, "no tensor 'head_out.bias'");
}

TEST_CASE("model: SHA-256 matches the standard test vector") {
  const std::string abc = "abc";
  CHECK(HexString(Sha256(std::span(reinterpret_cast<const uint8_t*>(abc.data()), abc.size()))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("model: files that do not fit the config are refused") {
  const ModelConfig config = TinyConfig();
  auto tensors = RandomModelTensors(config, 2);
  auto metadata = ModelMetadata(config);
  auto load = [&] { return LoadModel(WriteSafetensors(tensors, metadata)).status(); };

  SUBCASE("wrong shape") {
    tensors["dec_blocks.0.fc1.weight"].shape = {config.width, config.mlp_width()};
    CheckError(load(), StatusCode::kCorrupt, "'dec_blocks.0.fc1.weight' has shape [8, 16]");
  }
  SUBCASE("optional tensor with the wrong shape, or half of it") {
    tensors["coarse_embed.weight"] =
        FloatTensor(std::vector<float>(config.width * 12, 0.5f), {config.width, 12}, "F16");
    CheckError(load(), StatusCode::kCorrupt, "'coarse_embed.weight' has shape [8, 12]");
    tensors.erase("coarse_embed.weight");
    CheckError(load(), StatusCode::kCorrupt, "no tensor 'coarse_embed.weight'");
  }
  SUBCASE("missing tensor") {
    tensors.erase("mask_token");
    CheckError(load(), StatusCode::kCorrupt, "no tensor 'mask_token'");
  }
  SUBCASE("a block too few for the config") {
    metadata["config"] = [&] {
      ModelConfig deeper = config;
      deeper.enc_depth = 2;
      return testing::ConfigJson(deeper);
    }();
    CheckError(load(), StatusCode::kCorrupt, "enc_blocks.1");
  }
  SUBCASE("unknown tensor") {
    tensors["extra.weight"] = FloatTensor({1.0f}, {1}, "F32");
    CheckError(load(), StatusCode::kUnsupported, "extra.weight");
  }
  SUBCASE("entropy tables of any dtype are ignored") {
    tensors["entropy.cdf"] = {"U16", {2}, {1, 0, 2, 0}};
    tensors["entropy.other"] = {"X99", {1}, {7}};
    CHECK(load().ok());
  }
  SUBCASE("integer weights") {
    tensors["mask_token"] = {"I32", {config.width}, std::vector<uint8_t>(4 * config.width)};
    CheckError(load(), StatusCode::kUnsupported, "mask_token");
  }
  SUBCASE("non-finite weight") {
    tensors["mask_token"] =
        FloatTensor(std::vector<float>(config.width, NAN), {config.width}, "F32");
    CheckError(load(), StatusCode::kCorrupt, "non-finite");
  }
  SUBCASE("not a tok1d model") {
    metadata["format"] = "something-else";
    CheckError(load(), StatusCode::kUnsupported, "not a tok1d model");
  }
  SUBCASE("newer format version") {
    metadata.insert_or_assign("format_version", std::string(1, '2'));
    CheckError(load(), StatusCode::kUnsupported, "format_version 2");
  }
  SUBCASE("no name") {
    metadata.erase("name");
    CheckError(load(), StatusCode::kCorrupt, "'name'");
  }
  SUBCASE("config not JSON") {
    metadata["config"] = "{tile: 16";
    CheckError(load(), StatusCode::kCorrupt, "config");
  }
  SUBCASE("config field missing") {
    metadata["config"] = R"({"tile": 16})";
    CheckError(load(), StatusCode::kCorrupt, "'patch'");
  }
  SUBCASE("inconsistent config") {
    ModelConfig odd = config;
    odd.patch = 5;
    metadata["config"] = testing::ConfigJson(odd);
    CheckError(load(), StatusCode::kCorrupt, "not a multiple of patch");
  }
  SUBCASE("FSQ level the container cannot store") {
    ModelConfig wide = config;
    wide.fsq_levels = {3, 256};
    metadata["config"] = testing::ConfigJson(wide);
    CheckError(load(), StatusCode::kCorrupt, "fsq_levels");
  }
}

TEST_CASE("model: LoadModelFile names the file; the default model is found or explained") {
  CheckError(LoadModelFile("/nonexistent/model.safetensors").status(), StatusCode::kNotFound,
             "/nonexistent/model.safetensors");
  StatusOr<Model> model = LoadDefaultModel();
  if (HasEmbeddedModel()) {
    CHECK_MESSAGE(model.ok(), model.status().message());
  } else if (!model.ok()) {
    CheckError(model.status(), StatusCode::kNotFound, "pass --model");
  }
}

}  // namespace
}  // namespace tok1d
