#include "eval/bd_rate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tok1d {
namespace {

// Monotone piecewise-cubic Hermite interpolation of y(x) through points with increasing x.
class Pchip {
 public:
  Pchip(std::vector<double> x, std::vector<double> y) : x_(std::move(x)), y_(std::move(y)) {
    const size_t n = x_.size();
    std::vector<double> h(n - 1), slope(n - 1);
    for (size_t i = 0; i + 1 < n; ++i) {
      h[i] = x_[i + 1] - x_[i];
      slope[i] = (y_[i + 1] - y_[i]) / h[i];
    }
    d_.assign(n, slope[0]);  // two points: a straight line
    if (n == 2) return;
    // Interior: weighted harmonic mean of the neighbouring slopes, 0 at a local extremum.
    for (size_t i = 1; i + 1 < n; ++i) {
      if (slope[i - 1] * slope[i] <= 0) {
        d_[i] = 0;
        continue;
      }
      const double w1 = 2 * h[i] + h[i - 1], w2 = h[i] + 2 * h[i - 1];
      d_[i] = (w1 + w2) / (w1 / slope[i - 1] + w2 / slope[i]);
    }
    d_[0] = EndSlope(h[0], h[1], slope[0], slope[1]);
    d_[n - 1] = EndSlope(h[n - 2], h[n - 3], slope[n - 2], slope[n - 3]);
  }

  double operator()(double x) const {
    const size_t i = Segment(x);
    const double h = x_[i + 1] - x_[i], t = (x - x_[i]) / h;
    const double t2 = t * t, t3 = t2 * t;
    return (2 * t3 - 3 * t2 + 1) * y_[i] + (t3 - 2 * t2 + t) * h * d_[i] +
           (-2 * t3 + 3 * t2) * y_[i + 1] + (t3 - t2) * h * d_[i + 1];
  }

  const std::vector<double>& knots() const { return x_; }

 private:
  // Three-point end slope, kept monotone (scipy's PchipInterpolator end conditions).
  static double EndSlope(double h0, double h1, double m0, double m1) {
    const double d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1);
    if (d * m0 <= 0) return 0;
    if (m0 * m1 <= 0 && std::abs(d) > 3 * std::abs(m0)) return 3 * m0;
    return d;
  }

  size_t Segment(double x) const {
    const auto upper = std::upper_bound(x_.begin() + 1, x_.end() - 1, x);
    return static_cast<size_t>(upper - x_.begin()) - 1;
  }

  std::vector<double> x_, y_, d_;
};

Pchip LogRateOfQuality(const std::vector<RatePoint>& front) {
  std::vector<double> quality, log_rate;
  for (const RatePoint& point : front) {
    quality.push_back(point.quality);
    log_rate.push_back(std::log(point.bpp));
  }
  return Pchip(std::move(quality), std::move(log_rate));
}

// Quality at `log_rate` on a front, linear in log rate between its points.
double QualityAtLogRate(const std::vector<RatePoint>& front, double log_rate) {
  size_t i = 1;
  while (i + 1 < front.size() && std::log(front[i].bpp) < log_rate) ++i;
  const double x0 = std::log(front[i - 1].bpp), x1 = std::log(front[i].bpp);
  const double t = (log_rate - x0) / (x1 - x0);
  return front[i - 1].quality + t * (front[i].quality - front[i - 1].quality);
}

}  // namespace

std::vector<RatePoint> ParetoFront(std::span<const RatePoint> points) {
  std::vector<RatePoint> sorted;
  for (const RatePoint& point : points) {
    if (std::isfinite(point.bpp) && point.bpp > 0 && std::isfinite(point.quality)) {
      sorted.push_back(point);
    }
  }
  // By rate; at equal rate the best quality first, so that it is the one kept.
  std::sort(sorted.begin(), sorted.end(), [](const RatePoint& a, const RatePoint& b) {
    return a.bpp != b.bpp ? a.bpp < b.bpp : a.quality > b.quality;
  });
  std::vector<RatePoint> front;
  for (const RatePoint& point : sorted) {
    if (front.empty() || point.quality > front.back().quality) front.push_back(point);
  }
  return front;
}

std::optional<double> BdRate(std::span<const RatePoint> reference,
                             std::span<const RatePoint> test) {
  const std::vector<RatePoint> reference_front = ParetoFront(reference);
  const std::vector<RatePoint> test_front = ParetoFront(test);
  if (reference_front.size() < 2 || test_front.size() < 2) return std::nullopt;
  const double low = std::max(reference_front.front().quality, test_front.front().quality);
  const double high = std::min(reference_front.back().quality, test_front.back().quality);
  if (!(low < high)) return std::nullopt;

  const Pchip reference_curve = LogRateOfQuality(reference_front);
  const Pchip test_curve = LogRateOfQuality(test_front);
  // Between consecutive knots of either curve both are single cubics, where Simpson's rule
  // is exact.
  std::vector<double> breaks = {low, high};
  for (const Pchip* curve : {&reference_curve, &test_curve}) {
    for (double knot : curve->knots()) {
      if (knot > low && knot < high) breaks.push_back(knot);
    }
  }
  std::sort(breaks.begin(), breaks.end());
  auto difference = [&](double q) { return test_curve(q) - reference_curve(q); };
  double integral = 0;
  for (size_t i = 0; i + 1 < breaks.size(); ++i) {
    const double a = breaks[i], b = breaks[i + 1];
    integral += (b - a) / 6 * (difference(a) + 4 * difference((a + b) / 2) + difference(b));
  }
  return (std::exp(integral / (high - low)) - 1) * 100;
}

std::vector<RatePoint> AverageAtEqualRate(const std::vector<std::vector<RatePoint>>& curves,
                                          size_t samples) {
  std::vector<std::vector<RatePoint>> fronts;
  double low = -std::numeric_limits<double>::infinity();
  double high = std::numeric_limits<double>::infinity();
  for (const std::vector<RatePoint>& curve : curves) {
    fronts.push_back(ParetoFront(curve));
    if (fronts.back().size() < 2) return {};
    low = std::max(low, std::log(fronts.back().front().bpp));
    high = std::min(high, std::log(fronts.back().back().bpp));
  }
  if (fronts.empty() || !(low < high) || samples < 2) return {};
  std::vector<RatePoint> average;
  for (size_t s = 0; s < samples; ++s) {
    const double log_rate =
        low + (high - low) * static_cast<double>(s) / static_cast<double>(samples - 1);
    double sum = 0;
    for (const std::vector<RatePoint>& front : fronts) sum += QualityAtLogRate(front, log_rate);
    average.push_back({std::exp(log_rate), sum / static_cast<double>(fronts.size())});
  }
  return average;
}

}  // namespace tok1d
