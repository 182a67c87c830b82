// Rate–quality plots as standalone SVG (no plotting tool needed): quality against bits per
// pixel on a logarithmic axis, one polyline per curve, a legend on the right.
#pragma once

#include <string>
#include <vector>

#include "eval/bd_rate.h"

namespace tok1d {

struct PlotCurve {
  std::string name;
  std::vector<RatePoint> points;  // drawn in this order
  std::string color = "#000000";
  std::string dash;  // SVG stroke-dasharray, empty: solid
  double width = 1.5;
};

struct PlotLabels {
  std::string title;
  std::string y_axis;  // the x axis is always "bits per pixel (log scale)"
};

// Curves without points are left out of the plot and the legend.
std::string RateQualitySvg(const std::vector<PlotCurve>& curves, const PlotLabels& labels);

}  // namespace tok1d
