// Prints the quality metrics of DECODED against ORIGINAL as one JSON object, for
// tests/eval/reference_metrics.py compare. Usage: tok1d_image_metrics ORIGINAL DECODED
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "imageio/image_io.h"
#include "metrics/metrics.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ORIGINAL DECODED\n", argv[0]);
    return 2;
  }
  auto fail = [](const tok1d::Status& status) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 1;
  };
  tok1d::StatusOr<tok1d::Image> original = tok1d::ReadImage(argv[1]);
  if (!original.ok()) return fail(original.status());
  tok1d::StatusOr<tok1d::Image> decoded = tok1d::ReadImage(argv[2]);
  if (!decoded.ok()) return fail(decoded.status());
  tok1d::StatusOr<tok1d::Quality> quality = tok1d::QualityOf(*original, *decoded);
  if (!quality.ok()) return fail(quality.status());
  // JSON has no infinity: equal images print a large finite PSNR.
  auto finite = [](double value) { return std::isinf(value) ? 1e9 : value; };
  std::cout << nlohmann::json{{"psnr", finite(quality->psnr)},
                              {"psnr_y", finite(quality->psnr_y)},
                              {"ssim", quality->ssim},
                              {"msssim", quality->msssim}}
                   .dump()
            << "\n";
  return 0;
}
