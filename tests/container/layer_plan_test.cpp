// LayerPlan (container/layer_plan.h): the order of token and refinement layers, on its own; the
// same arithmetic through T1dHeader is in t1d_test.cpp.
#include "container/layer_plan.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

namespace tok1d {
namespace {

TEST_CASE("LayerPlan: roles and counts of a plan with refinements") {
  // K = 4; refinements of tokens 0 and 1 after token layer 1, of token 2 after token layer 3:
  // layers t0 t1 r0 r1 t2 t3 r2.
  const Refinement refinement{2, {1, 1, 3}};
  REQUIRE(CheckRefinement(refinement, 4, 3).ok());
  const LayerPlan plan(4, refinement);
  CHECK(plan.max_tokens() == 4);
  CHECK(plan.refinements() == 3);
  CHECK(plan.max_layers() == 7);
  const std::vector<LayerRole> roles = plan.Roles();
  const std::vector<std::pair<bool, uint32_t>> expected = {
      {false, 0}, {false, 1}, {true, 0}, {true, 1}, {false, 2}, {false, 3}, {true, 2}};
  REQUIRE(roles.size() == expected.size());
  for (size_t j = 0; j < roles.size(); ++j) {
    CHECK(roles[j].refinement == expected[j].first);
    CHECK(roles[j].index == expected[j].second);
  }
  const uint32_t layers_for_tokens[] = {0, 1, 4, 5, 7};
  for (uint32_t k = 0; k <= 4; ++k) CHECK(plan.LayersForTokens(k) == layers_for_tokens[k]);
  CHECK(plan.LayersForTokens(100) == 7);  // more than K: all
  const uint32_t tokens_in_layers[] = {0, 1, 2, 2, 2, 3, 4, 4, 4};
  const uint32_t refinements_in_layers[] = {0, 0, 0, 1, 2, 2, 2, 3, 3};
  for (uint32_t layers = 0; layers <= 8; ++layers) {
    CAPTURE(layers);
    CHECK(plan.TokensInLayers(layers) == tokens_in_layers[layers]);
    CHECK(plan.RefinementsInLayers(layers) == refinements_in_layers[layers]);
  }
}

TEST_CASE("LayerPlan: without refinement a tile's layers are its tokens") {
  const LayerPlan plan(5, Refinement{});
  CHECK(plan.max_layers() == 5);
  for (uint32_t k = 0; k <= 6; ++k) {
    CHECK(plan.LayersForTokens(k) == std::min(k, 5u));
    CHECK(plan.TokensInLayers(k) == std::min(k, 5u));
    CHECK(plan.RefinementsInLayers(k) == 0);
  }
}

TEST_CASE("CheckRefinement: the format's rules") {
  CHECK(CheckRefinement(Refinement{}, 4, 3).ok());
  CHECK(CheckRefinement(Refinement{0, {0}}, 4, 3).code() == StatusCode::kCorrupt);  // no bits
  CHECK(CheckRefinement(Refinement{9, {0}}, 4, 3).code() == StatusCode::kCorrupt);  // > 8 bits
  CHECK(CheckRefinement(Refinement{8, {0}}, 4, 4).ok());                            // 32 bits
  CHECK(CheckRefinement(Refinement{8, {0}}, 4, 5).code() == StatusCode::kCorrupt);  // 40 bits
  CHECK(CheckRefinement(Refinement{1, {}}, 4, 3).code() == StatusCode::kCorrupt);   // none
  CHECK(CheckRefinement(Refinement{1, {0, 1, 2, 3, 3}}, 4, 3).code() == StatusCode::kCorrupt);
  CHECK(CheckRefinement(Refinement{1, {1, 0}}, 4, 3).code() == StatusCode::kCorrupt);  // order
  CHECK(CheckRefinement(Refinement{1, {0, 0}}, 4, 3).code() == StatusCode::kCorrupt);  // before own
  CHECK(CheckRefinement(Refinement{1, {4}}, 4, 3).code() == StatusCode::kCorrupt);     // after K
}

TEST_CASE("ForEachLayer visits each layer with the tiles that keep it") {
  const std::vector<uint32_t> layers_per_tile = {2, 0, 3, 1};
  std::vector<std::vector<uint32_t>> seen;
  const Status status =
      ForEachLayer(layers_per_tile, 4, [&](uint32_t j, std::span<const uint32_t> tiles) {
        CHECK(j == seen.size());
        seen.emplace_back(tiles.begin(), tiles.end());
        return OkStatus();
      });
  CHECK(status.ok());
  const std::vector<std::vector<uint32_t>> expected = {{0, 2, 3}, {0, 2}, {2}, {}};
  CHECK(seen == expected);
  uint32_t visits = 0;
  const Status stopped =
      ForEachLayer(layers_per_tile, 3, [&](uint32_t j, std::span<const uint32_t>) {
        ++visits;
        return j == 1 ? CorruptError("stop") : OkStatus();
      });
  CHECK(stopped.code() == StatusCode::kCorrupt);
  CHECK(visits == 2);
}

}  // namespace
}  // namespace tok1d
