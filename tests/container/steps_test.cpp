// Quantiser steps (FORMAT.md, QSTP chunk): round trips, trims, and the rules a reader enforces.
#include <doctest/doctest.h>

#include <string>

#include "container/golden.h"
#include "container/t1d.h"
#include "container/token_files.h"

namespace tok1d {
namespace {

using testing::MakeTokenFile;
using testing::SnapToSteps;
using testing::TokenFileSpec;

TokenFile SteppedFile(const QuantizerSteps& steps, uint64_t seed) {
  TokenFileSpec spec;
  spec.width = 40;
  spec.height = 20;
  spec.fsq_levels = {15, 8, 5, 2};
  spec.max_tokens = 9;
  TokenFile file = MakeTokenFile(spec, seed);
  file.header.steps = steps;
  SnapToSteps(&file);
  return file;
}

std::vector<uint8_t> Write(const TokenFile& file) {
  auto bytes = WriteT1d(file);
  REQUIRE_MESSAGE(bytes.ok(), bytes.status().message());
  return *bytes;
}

bool HasChunk(const std::vector<uint8_t>& bytes, const std::string& type) {
  for (const testing::RawChunk& chunk : testing::SplitChunks(bytes).chunks) {
    if (chunk.type == type) return true;
  }
  return false;
}

void CheckCorrupt(const std::vector<uint8_t>& bytes, const std::string& message) {
  auto file = ReadT1d(bytes);
  CHECK(file.status().code() == StatusCode::kCorrupt);
  CHECK_MESSAGE(file.status().message().find(message) != std::string::npos,
                file.status().message());
}

TEST_CASE("QuantizerSteps: the step of each token and the format's rules") {
  const QuantizerSteps steps{{{2, 3}, {5, 2}}};
  CHECK(steps.StepOf(0) == 1);
  CHECK(steps.StepOf(1) == 1);
  CHECK(steps.StepOf(2) == 3);
  CHECK(steps.StepOf(4) == 3);
  CHECK(steps.StepOf(5) == 2);
  CHECK(steps.StepOf(100) == 2);
  CHECK(steps.MaxStepIn(2) == 1);
  CHECK(steps.MaxStepIn(3) == 3);
  CHECK(CheckQuantizerSteps(steps, 6).ok());
  CHECK(CheckQuantizerSteps(steps, 5).code() == StatusCode::kCorrupt);               // first >= K
  CHECK(CheckQuantizerSteps({{{3, 2}, {3, 3}}}, 9).code() == StatusCode::kCorrupt);  // order
  CHECK(CheckQuantizerSteps({{{3, 0}}}, 9).code() == StatusCode::kCorrupt);          // step 0
  CHECK(CheckQuantizerSteps({}, 9).ok());
}

TEST_CASE("FsqCodebook: digits on a step grid") {
  const FsqCodebook codebook(std::vector<uint32_t>{15, 8});
  // 15 levels, centre 7: step 2 reaches 1 … 13, step 3 1 … 13, step 4 3 … 11.
  CHECK(codebook.StepDigit(6.9f, 0, 2) == 13);
  CHECK(codebook.StepDigit(-7.0f, 0, 2) == 1);
  CHECK(codebook.StepDigit(1.4f, 0, 3) == 7);
  CHECK(codebook.StepDigit(1.6f, 0, 3) == 10);
  CHECK(codebook.StepDigit(7.0f, 0, 4) == 11);
  CHECK(codebook.StepDigit(0.2f, 0, 1) == 7);
  // 8 levels, centre 4: step 3 reaches 1, 4, 7.
  CHECK(codebook.StepDigit(-3.6f, 1, 3) == 1);
  CHECK(codebook.StepDigit(3.6f, 1, 3) == 7);
  CHECK(codebook.OnStepGrid(codebook.Token(std::vector<uint32_t>{12, 7}), 3) == false);
  CHECK(codebook.OnStepGrid(codebook.Token(std::vector<uint32_t>{13, 7}), 3));
  CHECK(codebook.OnStepGrid(codebook.Token(std::vector<uint32_t>{13, 7}), 2) == false);
  CHECK(codebook.OnStepGrid(codebook.Token(std::vector<uint32_t>{13, 4}), 2));
  CHECK(codebook.OnStepGrid(codebook.Token(std::vector<uint32_t>{10, 1}), 3));
}

TEST_CASE("QSTP: files with steps round trip, and trims keep or drop the chunk") {
  const QuantizerSteps steps{{{2, 3}, {5, 2}}};
  const TokenFile file = SteppedFile(steps, 11);
  const std::vector<uint8_t> bytes = Write(file);
  CHECK(bytes[9] == kStepsMinorVersion);
  CHECK(HasChunk(bytes, "QSTP"));
  auto read = ReadT1d(bytes);
  REQUIRE(read.ok());
  CHECK(read->header.steps == steps);
  CHECK(read->tokens == file.tokens);
  // A trim that keeps only step-1 tokens leaves the chunk out and is the file written so.
  auto trimmed = TrimT1dBytes(bytes, 2);
  REQUIRE(trimmed.ok());
  CHECK_FALSE(HasChunk(*trimmed, "QSTP"));
  CHECK((*trimmed)[9] == kStepsMinorVersion);
  auto direct = TrimTokens(file, 2);
  REQUIRE(direct.ok());
  CHECK(*trimmed == Write(*direct));
  auto read_trimmed = ReadT1d(*trimmed);
  REQUIRE(read_trimmed.ok());
  // Without the chunk a reader sees step 1 everywhere, and the kept tokens are the same.
  CHECK(read_trimmed->header.steps.empty());
  // A trim into the coarse tokens keeps the chunk.
  auto coarse = TrimT1dBytes(bytes, 4);
  REQUIRE(coarse.ok());
  CHECK(HasChunk(*coarse, "QSTP"));
}

TEST_CASE("QSTP: the writer refuses tokens off their step, and readers damaged plans") {
  TokenFile file = SteppedFile({{{1, 2}}}, 5);
  // Digit 0 of 15 levels is not on step 2's grid (1, 3, …, 13).
  file.tokens[0][1] = 0;
  auto refused = WriteT1d(file);
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);

  const std::vector<uint8_t> bytes = Write(SteppedFile({{{1, 2}}}, 5));
  testing::FramedFile framed = testing::SplitChunks(bytes);
  REQUIRE(framed.chunks.at(1).type == "QSTP");
  SUBCASE("in a file older than 1.4") {
    framed.preamble[9] = 3;
    CheckCorrupt(testing::JoinChunks(framed), "steps need 1.4");
  }
  SUBCASE("runs out of order, a step of 0, a run past K, trailing bytes, cut short") {
    for (const auto& damage : std::vector<std::pair<std::vector<uint8_t>, std::string>>{
             {{2, 3, 2, 3, 2}, "increasing order"},
             {{1, 1, 0}, "outside 1..255"},
             {{1, 9, 2}, "below token 9"},
             {{1, 1, 2, 0}, "trailing bytes"},
             {{2, 1, 2}, "malformed"},
             {{0}, "in 0 runs"}}) {
      // (no structured binding: clang 14 cannot capture one in CAPTURE's lambda)
      const std::string& message = damage.second;
      CAPTURE(message);
      framed.chunks[1].data = damage.first;
      CheckCorrupt(testing::JoinChunks(framed), message);
    }
  }
  SUBCASE("a token off its step") {
    // The same tokens written without steps, then the plan added: token 1 of some tile is
    // off step 5's grid.
    TokenFile plain = SteppedFile({}, 5);
    const std::vector<uint8_t> plain_bytes = Write(plain);
    testing::FramedFile forged = testing::SplitChunks(plain_bytes);
    forged.preamble[9] = kStepsMinorVersion;
    forged.chunks.insert(forged.chunks.begin() + 1, {"QSTP", {1, 1, 5}});
    CheckCorrupt(testing::JoinChunks(forged), "off its quantiser step");
  }
  SUBCASE("anywhere but after HEAD or REFN") {
    std::swap(framed.chunks[1], framed.chunks[2]);
    CheckCorrupt(testing::JoinChunks(framed), "does not directly follow HEAD or REFN");
  }
}

}  // namespace
}  // namespace tok1d
