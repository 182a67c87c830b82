#include "eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace tok1d {
namespace {

constexpr double kWidth = 860, kHeight = 540;
constexpr double kLeft = 70, kRight = 190, kTop = 40, kBottom = 60;  // margins
constexpr double kPlotWidth = kWidth - kLeft - kRight, kPlotHeight = kHeight - kTop - kBottom;

std::string Number(double value, int decimals = 2) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// Shortest plain decimal for a tick label: 0.01, 0.5, 2, 100.
std::string TickLabel(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A linear-axis step of 1, 2 or 5 × 10^n giving about `target` intervals over `span`.
double NiceStep(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 5.0}) {
    if (raw <= factor * magnitude) return factor * magnitude;
  }
  return 10 * magnitude;
}

struct Range {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void Add(double value) {
    low = std::min(low, value);
    high = std::max(high, value);
  }
};

std::string Text(double x, double y, const std::string& text, const std::string& attributes = "") {
  return "<text x=\"" + Number(x) + "\" y=\"" + Number(y) + "\" " + attributes + ">" +
         Escape(text) + "</text>\n";
}

std::string Line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + Number(x1) + "\" y1=\"" + Number(y1) + "\" x2=\"" + Number(x2) +
         "\" y2=\"" + Number(y2) + "\" " + style + "/>\n";
}

std::string StrokeStyle(const PlotCurve& curve) {
  std::string style =
      "stroke=\"" + curve.color + "\" stroke-width=\"" + Number(curve.width, 1) + "\"";
  if (!curve.dash.empty()) style += " stroke-dasharray=\"" + curve.dash + "\"";
  return style;
}

}  // namespace

std::string RateQualitySvg(const std::vector<PlotCurve>& curves, const PlotLabels& labels) {
  Range bpp, quality;
  for (const PlotCurve& curve : curves) {
    for (const RatePoint& point : curve.points) {
      bpp.Add(point.bpp);
      quality.Add(point.quality);
    }
  }
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Number(kWidth, 0) +
                    "\" height=\"" + Number(kHeight, 0) + "\" viewBox=\"0 0 " + Number(kWidth, 0) +
                    " " + Number(kHeight, 0) + "\" font-family=\"sans-serif\" font-size=\"12\">\n" +
                    "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" +
                    Text(kWidth / 2, 24, labels.title, "text-anchor=\"middle\" font-size=\"15\"");
  if (!(bpp.low > 0) || !std::isfinite(quality.low)) {
    return svg + Text(kWidth / 2, kHeight / 2, "no data", "text-anchor=\"middle\"") + "</svg>\n";
  }

  // x: log10(bpp) with a 5 % margin; y: whole ticks around the data.
  const double log_low = std::log10(bpp.low), log_high = std::log10(bpp.high);
  const double log_margin = std::max(0.05 * (log_high - log_low), 0.05);
  const double x_low = log_low - log_margin, x_high = log_high + log_margin;
  const double step = NiceStep(std::max(quality.high - quality.low, 1e-6), 8);
  const double y_low = std::floor(quality.low / step) * step;
  const double y_high = std::max(std::ceil(quality.high / step) * step, y_low + step);
  auto to_x = [&](double rate) {
    return kLeft + (std::log10(rate) - x_low) / (x_high - x_low) * kPlotWidth;
  };
  auto to_y = [&](double q) { return kTop + (y_high - q) / (y_high - y_low) * kPlotHeight; };

  const std::string grid = "stroke=\"#dddddd\" stroke-width=\"1\"";
  for (int decade = static_cast<int>(std::floor(x_low));
       decade <= static_cast<int>(std::ceil(x_high)); ++decade) {
    for (double factor : {1.0, 2.0, 5.0}) {
      const double rate = factor * std::pow(10.0, decade);
      if (std::log10(rate) < x_low || std::log10(rate) > x_high) continue;
      const double x = to_x(rate);
      svg += Line(x, kTop, x, kTop + kPlotHeight, grid);
      svg += Text(x, kTop + kPlotHeight + 16, TickLabel(rate), "text-anchor=\"middle\"");
    }
  }
  const int y_decimals = step < 1 ? static_cast<int>(std::ceil(-std::log10(step))) : 0;
  for (double q = y_low; q <= y_high + step / 2; q += step) {
    const double y = to_y(q);
    svg += Line(kLeft, y, kLeft + kPlotWidth, y, grid);
    svg += Text(kLeft - 6, y + 4, Number(q, y_decimals), "text-anchor=\"end\"");
  }
  svg += "<rect x=\"" + Number(kLeft) + "\" y=\"" + Number(kTop) + "\" width=\"" +
         Number(kPlotWidth) + "\" height=\"" + Number(kPlotHeight) +
         "\" fill=\"none\" stroke=\"#444444\"/>\n";
  svg += Text(kLeft + kPlotWidth / 2, kHeight - 18, "bits per pixel (log scale)",
              "text-anchor=\"middle\"");
  svg += Text(
      18, kTop + kPlotHeight / 2, labels.y_axis,
      "text-anchor=\"middle\" transform=\"rotate(-90 18 " + Number(kTop + kPlotHeight / 2) + ")\"");

  double legend_y = kTop + 10;
  for (const PlotCurve& curve : curves) {
    if (curve.points.empty()) continue;
    std::string points;
    for (const RatePoint& point : curve.points) {
      points += Number(to_x(point.bpp)) + "," + Number(to_y(point.quality)) + " ";
    }
    svg += "<polyline fill=\"none\" " + StrokeStyle(curve) + " points=\"" + points + "\"/>\n";
    const double legend_x = kLeft + kPlotWidth + 16;
    svg += Line(legend_x, legend_y, legend_x + 30, legend_y, StrokeStyle(curve));
    svg += Text(legend_x + 38, legend_y + 4, curve.name);
    legend_y += 20;
  }
  return svg + "</svg>\n";
}

}  // namespace tok1d
