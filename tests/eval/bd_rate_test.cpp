// BD-rate and curve averaging on synthetic curves whose answer is known in closed form.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "eval/bd_rate.h"

namespace tok1d {
namespace {

// Points with log(bpp) = intercept + slope · quality, at the given qualities.
std::vector<RatePoint> LogLinear(double intercept, double slope, std::vector<double> qualities) {
  std::vector<RatePoint> points;
  for (double q : qualities) points.push_back({std::exp(intercept + slope * q), q});
  return points;
}

TEST_CASE("BD-rate of a curve needing 20 % fewer bits everywhere is -20 %") {
  // A curved relation (not log-linear), sampled at different qualities on each side.
  std::vector<RatePoint> reference, test;
  for (double q = 20; q <= 40; q += 2.5) reference.push_back({0.01 * std::pow(q - 15, 2.2), q});
  for (double q = 21; q <= 39; q += 3) test.push_back({0.8 * 0.01 * std::pow(q - 15, 2.2), q});
  const std::optional<double> bd = BdRate(reference, test);
  REQUIRE(bd.has_value());
  // PCHIP is not exact on this curve (0.25 % of the value here); far below what matters.
  CHECK(*bd == doctest::Approx(-20.0).epsilon(5e-3));
  const std::optional<double> inverse = BdRate(test, reference);
  REQUIRE(inverse.has_value());
  CHECK(*inverse == doctest::Approx(25.0).epsilon(5e-3));
}

TEST_CASE("BD-rate between log-linear curves of different slopes is exact") {
  // log R_test − log R_ref = (0.5 − 0.3) + (0.09 − 0.1)·q; its mean over the overlap
  // [25, 35] is 0.2 − 0.01·30 = −0.1, so BD-rate = e^−0.1 − 1.
  const std::vector<RatePoint> reference = LogLinear(-3.0 + 0.3, 0.1, {20, 25, 28, 31, 35});
  const std::vector<RatePoint> test = LogLinear(-3.0 + 0.5, 0.09, {25, 27, 30, 33, 36, 40});
  const std::optional<double> bd = BdRate(reference, test);
  REQUIRE(bd.has_value());
  CHECK(*bd == doctest::Approx((std::exp(-0.1) - 1) * 100).epsilon(1e-9));
}

TEST_CASE("BD-rate is taken over the overlapping quality range only") {
  // Outside the overlap [30, 40] the test curve would be 4× cheaper; inside, 1.5× dearer.
  std::vector<RatePoint> reference = LogLinear(0, 0.1, {20, 25, 30, 35, 40});
  std::vector<RatePoint> test = LogLinear(std::log(1.5), 0.1, {30, 35, 40, 45, 50});
  CHECK(*BdRate(reference, test) == doctest::Approx(50.0).epsilon(1e-9));
}

TEST_CASE("BD-rate needs two points on each curve and an overlap") {
  const std::vector<RatePoint> low = LogLinear(0, 0.1, {20, 25});
  CHECK_FALSE(BdRate(low, LogLinear(0, 0.1, {30, 35})).has_value());
  CHECK_FALSE(BdRate(low, LogLinear(0, 0.1, {22})).has_value());
  // Dominated points do not count: the second point is dearer and worse than the first.
  CHECK_FALSE(BdRate(low, std::vector<RatePoint>{{1.0, 22}, {3.0, 21}}).has_value());
}

TEST_CASE("Pareto front: sorted by rate, each point better than all cheaper ones") {
  const std::vector<RatePoint> points = {{0.5, 30}, {0.2, 25}, {0.4, 24}, {0.3, 31},
                                         {1.0, 35}, {1.0, 36}, {0, 50},   {0.8, NAN}};
  const std::vector<RatePoint> front = ParetoFront(points);
  REQUIRE(front.size() == 3);
  CHECK(front[0].bpp == 0.2);
  CHECK(front[1].bpp == 0.3);
  CHECK(front[2].bpp == 1.0);
  CHECK(front[2].quality == 36);
}

TEST_CASE("averaging at equal rate: the mean of the interpolated qualities") {
  // quality = a + b·ln(bpp), linear in log rate, so interpolation is exact.
  auto curve = [](double a, double b, std::vector<double> rates) {
    std::vector<RatePoint> points;
    for (double rate : rates) points.push_back({rate, a + b * std::log(rate)});
    return points;
  };
  const std::vector<std::vector<RatePoint>> curves = {curve(30, 4, {0.1, 0.3, 1, 2}),
                                                      curve(34, 2, {0.2, 0.5, 1.5, 4})};
  const std::vector<RatePoint> average = AverageAtEqualRate(curves, 11);
  REQUIRE(average.size() == 11);
  CHECK(average.front().bpp == doctest::Approx(0.2));  // the common range: [0.2, 2]
  CHECK(average.back().bpp == doctest::Approx(2.0));
  for (const RatePoint& point : average) {
    CHECK(point.quality == doctest::Approx(32 + 3 * std::log(point.bpp)));
  }
  CHECK(AverageAtEqualRate({curve(30, 4, {0.1, 0.2}), curve(30, 4, {0.3, 0.4})}).empty());
}

}  // namespace
}  // namespace tok1d
