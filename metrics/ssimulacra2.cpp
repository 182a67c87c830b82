// SSIMULACRA 2.1, written from its definition (see ssimulacra2.h). The constants (XYB, the
// sRGB curve, the Gaussian, the 108 weights and the final mapping) are those of SSIMULACRA
// 2.1 as published in libjxl tools/ssimulacra2.cc and cloudinary/ssimulacra2; the order of
// floating-point operations follows the reference, so that scores agree with libjxl's
// `ssimulacra2` to about 1e-8 (tests/metrics/perceptual_test.cpp).
#include "metrics/ssimulacra2.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

// The reference rounds every product separately except where it asks for a fused
// multiply-add (its plain C++ parts are built without FMA); keep the compiler from fusing on
// its own, which GCC otherwise does in C++ wherever FMA is enabled (the FMA path below).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace tok1d {
namespace {

// Functions that depend on kFma are forced inline, so that the whole FMA computation ends up
// inside the one function compiled for FMA (ComputeWithFmaX86), with every compiler.
#if defined(__GNUC__)
#define TOK1D_S2_INLINE inline __attribute__((always_inline))
#else
#define TOK1D_S2_INLINE inline
#endif

constexpr int kNumScales = 6;
constexpr float kC2 = 0.0009f;

// ---------------------------------------------------------------------------------------
// Arithmetic. The reference's SIMD code fuses some multiply-adds (Highway MulAdd, NegMulAdd,
// NegMulSub), and SSIMULACRA 2 is sensitive to that rounding (the variance terms cancel), so
// they are fused here too: with the FMA instruction when kFma (x86-64 with FMA3, checked at
// run time, or a CPU where FMA is base ISA), otherwise emulated in double precision — the
// product of two floats is exact in double, so the only difference from a true fused
// multiply-add is a rare double rounding.

template <bool kFma>
TOK1D_S2_INLINE float MulAdd(float a, float b, float c) {
  if constexpr (kFma) {
#if defined(__GNUC__)
    return __builtin_fmaf(a, b, c);  // one instruction where FMA is enabled
#else
    return std::fma(a, b, c);
#endif
  } else {
    return static_cast<float>(static_cast<double>(a) * static_cast<double>(b) +
                              static_cast<double>(c));
  }
}

// c − a·b, fused
template <bool kFma>
TOK1D_S2_INLINE float NegMulAdd(float a, float b, float c) {
  return MulAdd<kFma>(-a, b, c);
}

// −a·b − c, fused
template <bool kFma>
TOK1D_S2_INLINE float NegMulSub(float a, float b, float c) {
  return MulAdd<kFma>(-a, b, -c);
}

// ---------------------------------------------------------------------------------------
// Planar float images.

struct Plane {
  size_t width = 0;
  size_t height = 0;
  std::vector<float> pixels;

  Plane() = default;
  Plane(size_t w, size_t h) : width(w), height(h), pixels(w * h) {}
  // Changes the size, keeping the allocation when it is large enough (contents undefined).
  void Reset(size_t w, size_t h) {
    width = w;
    height = h;
    pixels.resize(w * h);
  }
  float* Row(size_t y) { return pixels.data() + y * width; }
  const float* Row(size_t y) const { return pixels.data() + y * width; }
};

struct Planes3 {
  std::array<Plane, 3> plane;

  Planes3() = default;
  Planes3(size_t w, size_t h) : plane{Plane(w, h), Plane(w, h), Plane(w, h)} {}
  size_t width() const { return plane[0].width; }
  size_t height() const { return plane[0].height; }
  void Reset(size_t w, size_t h) {
    for (Plane& p : plane) p.Reset(w, h);
  }
};

// ---------------------------------------------------------------------------------------
// sRGB → linear: libjxl's TF_SRGB::DisplayFromEncoded, a 4/4 rational polynomial above
// 0.04045 and x / 12.92 below, on x = v · (1/255) as libjxl loads 8-bit samples.

template <bool kFma>
TOK1D_S2_INLINE std::array<float, 256> LinearTable() {
  constexpr float p[5] = {2.200248328e-04f, 1.043637593e-02f, 1.624820318e-01f, 7.961564959e-01f,
                          8.210152774e-01f};
  constexpr float q[5] = {2.631846970e-01f, 1.076976492e+00f, 4.987528350e-01f, -5.512498495e-02f,
                          6.521209011e-03f};
  constexpr float kThreshSRGBToLinear = 0.04045f;
  constexpr float kLowDiv = 12.92f;
  constexpr float kLowDivInv = 1.0f / kLowDiv;
  constexpr float kScale = 1.0f / 255.0f;
  std::array<float, 256> table{};
  for (int v = 0; v < 256; ++v) {
    const float x = static_cast<float>(v) * kScale;
    float yp = p[4];
    float yq = q[4];
    for (int i = 3; i >= 0; --i) {
      yp = MulAdd<kFma>(yp, x, p[i]);
      yq = MulAdd<kFma>(yq, x, q[i]);
    }
    const float poly = yp / yq;
    const float linear = x * kLowDivInv;
    table[static_cast<size_t>(v)] = x > kThreshSRGBToLinear ? poly : linear;
  }
  return table;
}

template <bool kFma>
TOK1D_S2_INLINE Planes3 ToLinear(const Image& image) {
  const std::array<float, 256> table = LinearTable<kFma>();
  Planes3 out(image.width, image.height);
  const uint8_t* src = image.rgb.data();
  for (size_t y = 0; y < out.height(); ++y) {
    float* r = out.plane[0].Row(y);
    float* g = out.plane[1].Row(y);
    float* b = out.plane[2].Row(y);
    for (size_t x = 0; x < out.width(); ++x, src += 3) {
      r[x] = table[src[0]];
      g[x] = table[src[1]];
      b[x] = table[src[2]];
    }
  }
  return out;
}

// 2 × 2 box average; an odd last row or column is repeated.
void Downsample(const Planes3& in, Planes3& out) {
  const size_t in_w = in.width();
  const size_t in_h = in.height();
  const size_t out_w = (in_w + 1) / 2;
  const size_t out_h = (in_h + 1) / 2;
  out.Reset(out_w, out_h);
  for (size_t c = 0; c < 3; ++c) {
    for (size_t oy = 0; oy < out_h; ++oy) {
      const float* row0 = in.plane[c].Row(std::min(2 * oy, in_h - 1));
      const float* row1 = in.plane[c].Row(std::min(2 * oy + 1, in_h - 1));
      float* row_out = out.plane[c].Row(oy);
      for (size_t ox = 0; ox < out_w; ++ox) {
        const size_t x0 = std::min(2 * ox, in_w - 1);
        const size_t x1 = std::min(2 * ox + 1, in_w - 1);
        float sum = 0.0f;
        sum += row0[x0];
        sum += row0[x1];
        sum += row1[x0];
        sum += row1[x1];
        row_out[ox] = sum * 0.25f;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Linear sRGB → XYB (libjxl's opsin absorbance, intensity target 255 so no extra scale),
// then the SSIMULACRA 2.1 rescaling to about 0..1.

constexpr float kM02 = 0.078f;
constexpr float kM00 = 0.30f;
constexpr float kM01 = 1.0f - kM02 - kM00;
constexpr float kM12 = 0.078f;
constexpr float kM10 = 0.23f;
constexpr float kM11 = 1.0f - kM12 - kM10;
constexpr float kM20 = 0.24342268924547819f;
constexpr float kM21 = 0.20476744424496821f;
constexpr float kM22 = 1.0f - kM20 - kM21;
constexpr float kOpsinBias = 0.0037930732552754493f;

// cbrt(x) + add for x ≥ 0: libjxl's CubeRootAndAdd (exponent trick, three Newton steps and a
// final correction), which differs from cbrt by up to ~6 ulp.
template <bool kFma>
TOK1D_S2_INLINE float CubeRootAndAdd(float x, float add) {
  constexpr int32_t kExpBias = 0x54800000;
  constexpr int32_t kExpMul = 0x002AAAAA;
  constexpr float k1_3 = 1.0f / 3;
  constexpr float k4_3 = 4.0f / 3;
  const float xa_3 = k1_3 * x;
  const int32_t m1 = std::bit_cast<int32_t>(x);
  const int32_t m2 = m1 == 0 ? 0 : kExpBias - (m1 >> 23) * kExpMul;
  float r = std::bit_cast<float>(m2);
  for (int i = 0; i < 3; ++i) {
    const float r2 = r * r;
    r = NegMulAdd<kFma>(xa_3, r2 * r2, k4_3 * r);
  }
  float r2 = r * r;
  r = MulAdd<kFma>(k1_3, NegMulAdd<kFma>(x, r2 * r2, r), r);
  r2 = r * r;
  return MulAdd<kFma>(r2, x, add);
}

template <bool kFma>
TOK1D_S2_INLINE void ToPositiveXyb(const Planes3& linear, Planes3& out) {
  const float neg_bias_cbrt = -std::cbrt(kOpsinBias);
  out.Reset(linear.width(), linear.height());
  for (size_t y = 0; y < linear.height(); ++y) {
    const float* r_row = linear.plane[0].Row(y);
    const float* g_row = linear.plane[1].Row(y);
    const float* b_row = linear.plane[2].Row(y);
    float* x_out = out.plane[0].Row(y);
    float* y_out = out.plane[1].Row(y);
    float* b_out = out.plane[2].Row(y);
    for (size_t x = 0; x < linear.width(); ++x) {
      const float r = r_row[x];
      const float g = g_row[x];
      const float b = b_row[x];
      float mixed0 =
          MulAdd<kFma>(kM00, r, MulAdd<kFma>(kM01, g, MulAdd<kFma>(kM02, b, kOpsinBias)));
      float mixed1 =
          MulAdd<kFma>(kM10, r, MulAdd<kFma>(kM11, g, MulAdd<kFma>(kM12, b, kOpsinBias)));
      float mixed2 =
          MulAdd<kFma>(kM20, r, MulAdd<kFma>(kM21, g, MulAdd<kFma>(kM22, b, kOpsinBias)));
      mixed0 = CubeRootAndAdd<kFma>(std::max(mixed0, 0.0f), neg_bias_cbrt);
      mixed1 = CubeRootAndAdd<kFma>(std::max(mixed1, 0.0f), neg_bias_cbrt);
      mixed2 = CubeRootAndAdd<kFma>(std::max(mixed2, 0.0f), neg_bias_cbrt);
      const float xyb_x = 0.5f * (mixed0 - mixed1);
      const float xyb_y = 0.5f * (mixed0 + mixed1);
      const float xyb_b = mixed2;
      // Rescaled so that every channel lies in about 0..1 (SSIMULACRA 2.1).
      b_out[x] = (xyb_b - xyb_y) + 0.55f;
      x_out[x] = xyb_x * 14.0f + 0.42f;
      y_out[x] = xyb_y + 0.01f;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Recursive Gaussian (Charalampidis 2016, "Recursive Implementation of the Gaussian Filter
// Using Truncated Cosine Functions"): three second-order IIR filters (k = 1, 3, 5) whose
// sum approximates the Gaussian; inputs outside the image are zero. The horizontal pass
// computes four outputs at a time from precomputed powers of the coefficients, as libjxl's
// FastGaussian1D does; the vertical pass runs the plain recursion on every column.

struct RecursiveGaussian {
  ptrdiff_t radius = 0;
  float n2[3] = {};
  float d1[3] = {};
  // Four-output expansion, [4 * k + lane].
  float mul_in[12] = {};
  float mul_prev[12] = {};
  float mul_prev2[12] = {};
};

RecursiveGaussian MakeRecursiveGaussian(double sigma) {
  constexpr double kPi = 3.141592653589793238;
  RecursiveGaussian rg;
  const double radius = std::round(3.2795 * sigma + 0.2546);  // (57), "N"

  const double pi_div_2r = kPi / (2.0 * radius);
  const double omega[3] = {pi_div_2r, 3.0 * pi_div_2r, 5.0 * pi_div_2r};

  const double p_1 = +1.0 / std::tan(0.5 * omega[0]);  // (37)
  const double p_3 = -1.0 / std::tan(0.5 * omega[1]);
  const double p_5 = +1.0 / std::tan(0.5 * omega[2]);

  const double r_1 = +p_1 * p_1 / std::sin(omega[0]);  // (44)
  const double r_3 = -p_3 * p_3 / std::sin(omega[1]);
  const double r_5 = +p_5 * p_5 / std::sin(omega[2]);

  const double neg_half_sigma2 = -0.5 * sigma * sigma;  // (50)
  const double recip_radius = 1.0 / radius;
  double rho[3];
  for (size_t i = 0; i < 3; ++i) {
    rho[i] = std::exp(neg_half_sigma2 * omega[i] * omega[i]) * recip_radius;
  }

  const double d_13 = p_1 * r_3 - r_1 * p_3;  // (52)
  const double d_35 = p_3 * r_5 - r_3 * p_5;
  const double d_51 = p_5 * r_1 - r_5 * p_1;
  const double recip_d13 = 1.0 / d_13;
  const double zeta_15 = d_35 * recip_d13;
  const double zeta_35 = d_51 * recip_d13;

  // Solve A · beta = gamma, (53)–(56), with the adjugate of A.
  const double a[9] = {p_1, p_3, p_5, r_1, r_3, r_5, zeta_15, zeta_35, 1.0};
  double inv[9];
  inv[0] = a[4] * a[8] - a[5] * a[7];
  inv[1] = a[2] * a[7] - a[1] * a[8];
  inv[2] = a[1] * a[5] - a[2] * a[4];
  inv[3] = a[5] * a[6] - a[3] * a[8];
  inv[4] = a[0] * a[8] - a[2] * a[6];
  inv[5] = a[2] * a[3] - a[0] * a[5];
  inv[6] = a[3] * a[7] - a[4] * a[6];
  inv[7] = a[1] * a[6] - a[0] * a[7];
  inv[8] = a[0] * a[4] - a[1] * a[3];
  const double det = a[0] * inv[0] + a[1] * inv[3] + a[2] * inv[6];
  const double inv_det = 1.0 / det;
  for (double& v : inv) v *= inv_det;
  const double gamma[3] = {1.0, radius * radius - sigma * sigma,
                           zeta_15 * rho[0] + zeta_35 * rho[1] + rho[2]};
  double beta[3];
  for (size_t i = 0; i < 3; ++i) {
    beta[i] = inv[3 * i + 0] * gamma[0] + inv[3 * i + 1] * gamma[1] + inv[3 * i + 2] * gamma[2];
  }

  rg.radius = static_cast<ptrdiff_t>(radius);
  for (size_t i = 0; i < 3; ++i) {
    const double n2 = -beta[i] * std::cos(omega[i] * (radius + 1.0));  // (33)
    const double d1 = -2.0 * std::cos(omega[i]);                       // (33)
    rg.n2[i] = static_cast<float>(n2);
    rg.d1[i] = static_cast<float>(d1);
    const double d_2 = d1 * d1;
    // Four consecutive outputs of o[n] = n2·in[n] − d1·o[n−1] − o[n−2], expanded.
    rg.mul_prev[4 * i + 0] = static_cast<float>(-d1);
    rg.mul_prev[4 * i + 1] = static_cast<float>(d_2 - 1.0);
    rg.mul_prev[4 * i + 2] = static_cast<float>(-d_2 * d1 + 2.0 * d1);
    rg.mul_prev[4 * i + 3] = static_cast<float>(d_2 * d_2 - 3.0 * d_2 + 1.0);
    rg.mul_prev2[4 * i + 0] = -1.0f;
    rg.mul_prev2[4 * i + 1] = static_cast<float>(d1);
    rg.mul_prev2[4 * i + 2] = static_cast<float>(-d_2 + 1.0);
    rg.mul_prev2[4 * i + 3] = static_cast<float>(d_2 * d1 - 2.0 * d1);
    rg.mul_in[4 * i + 0] = static_cast<float>(n2);
    rg.mul_in[4 * i + 1] = static_cast<float>(-d1 * n2);
    rg.mul_in[4 * i + 2] = static_cast<float>(d_2 * n2 - n2);
    rg.mul_in[4 * i + 3] = static_cast<float>(-d_2 * d1 * n2 + 2.0 * d1 * n2);
  }
  return rg;
}

const RecursiveGaussian& Gaussian15() {
  static const RecursiveGaussian rg = MakeRecursiveGaussian(1.5);
  return rg;
}

// One output of the horizontal recursion, one sample at a time.
template <bool kFma>
TOK1D_S2_INLINE float HorizontalStep(const RecursiveGaussian& rg, float sum, float prev[3],
                                     float prev2[3]) {
  float o[3];
  for (size_t k = 0; k < 3; ++k) {
    float out = sum * rg.mul_in[4 * k];
    out = MulAdd<kFma>(rg.mul_prev2[4 * k], prev2[k], out);
    prev2[k] = prev[k];
    out = MulAdd<kFma>(rg.mul_prev[4 * k], prev[k], out);
    prev[k] = out;
    o[k] = out;
  }
  return o[0] + (o[1] + o[2]);
}

template <bool kFma>
TOK1D_S2_INLINE void BlurRow(const RecursiveGaussian& rg, const float* in, ptrdiff_t width,
                             float* out) {
  const ptrdiff_t n_radius = rg.radius;
  float prev[3] = {0.0f, 0.0f, 0.0f};
  float prev2[3] = {0.0f, 0.0f, 0.0f};
  const auto sum_at = [&](ptrdiff_t n) {
    const ptrdiff_t left = n - n_radius - 1;
    const ptrdiff_t right = n + n_radius - 1;
    const float left_val = left >= 0 ? in[left] : 0.0f;
    const float right_val = right < width ? in[right] : 0.0f;
    return left_val + right_val;
  };

  ptrdiff_t n = -n_radius + 1;
  // Left border, one at a time, as the reference does up to the first multiple of 4 > N.
  const ptrdiff_t first_aligned = (n_radius + 1 + 3) / 4 * 4;
  for (; n < std::min(first_aligned, width); ++n) {
    const float v = HorizontalStep<kFma>(rg, sum_at(n), prev, prev2);
    if (n >= 0) out[n] = v;
  }
  // Interior, four outputs at a time.
  for (; n < width - n_radius + 1 - 3; n += 4) {
    float s[4];
    for (ptrdiff_t j = 0; j < 4; ++j) s[j] = in[n + j - n_radius - 1] + in[n + j + n_radius - 1];
    float o[3][4];
    for (size_t k = 0; k < 3; ++k) {
      const float* mi = rg.mul_in + 4 * k;
      const float* mp = rg.mul_prev + 4 * k;
      const float* mp2 = rg.mul_prev2 + 4 * k;
      float* ok = o[k];
      for (size_t j = 0; j < 4; ++j) ok[j] = s[0] * mi[j];
      for (size_t j = 1; j < 4; ++j) ok[j] = MulAdd<kFma>(mi[j - 1], s[1], ok[j]);
      for (size_t j = 2; j < 4; ++j) ok[j] = MulAdd<kFma>(mi[j - 2], s[2], ok[j]);
      ok[3] = MulAdd<kFma>(mi[0], s[3], ok[3]);
      for (size_t j = 0; j < 4; ++j) ok[j] = MulAdd<kFma>(mp2[j], prev2[k], ok[j]);
      for (size_t j = 0; j < 4; ++j) ok[j] = MulAdd<kFma>(mp[j], prev[k], ok[j]);
      prev2[k] = ok[2];
      prev[k] = ok[3];
    }
    for (size_t j = 0; j < 4; ++j) {
      out[n + static_cast<ptrdiff_t>(j)] = o[0][j] + (o[1][j] + o[2][j]);
    }
  }
  // Right border, one at a time.
  for (; n < width; ++n) out[n] = HorizontalStep<kFma>(rg, sum_at(n), prev, prev2);
}

void AddRows(const float* __restrict a, const float* __restrict b, float* __restrict out,
             size_t w) {
  for (size_t x = 0; x < w; ++x) out[x] = a[x] + b[x];
}

// One row of the vertical recursion; q_k holds y_k[n−2] on entry and y_k[n] on exit.
template <bool kFma>
TOK1D_S2_INLINE void VerticalStep(const RecursiveGaussian& rg, const float* __restrict sum,
                                  const float* __restrict p1, float* __restrict q1,
                                  const float* __restrict p3, float* __restrict q3,
                                  const float* __restrict p5, float* __restrict q5,
                                  float* __restrict out, size_t w) {
  const float n2_1 = rg.n2[0], n2_3 = rg.n2[1], n2_5 = rg.n2[2];
  const float d1_1 = rg.d1[0], d1_3 = rg.d1[1], d1_5 = rg.d1[2];
  for (size_t x = 0; x < w; ++x) {
    const float s = sum[x];
    const float y1 = MulAdd<kFma>(n2_1, s, NegMulSub<kFma>(d1_1, p1[x], q1[x]));
    const float y3 = MulAdd<kFma>(n2_3, s, NegMulSub<kFma>(d1_3, p3[x], q3[x]));
    const float y5 = MulAdd<kFma>(n2_5, s, NegMulSub<kFma>(d1_5, p5[x], q5[x]));
    q1[x] = y1;
    q3[x] = y3;
    q5[x] = y5;
    out[x] = y1 + (y3 + y5);
  }
}

// Blurs `a` (or a·b, elementwise, when b is given) into `out`. `row`, `scratch` and `temp`
// are scratch space.
template <bool kFma>
TOK1D_S2_INLINE void Blur(const Plane& a, const Plane* b, std::vector<float>& row,
                          std::vector<float>& scratch, Plane& temp, Plane& out) {
  const RecursiveGaussian& rg = Gaussian15();
  const size_t w = a.width;
  const size_t h = a.height;
  const ptrdiff_t sw = static_cast<ptrdiff_t>(w);
  const ptrdiff_t sh = static_cast<ptrdiff_t>(h);
  row.resize(w);
  temp.Reset(w, h);
  out.Reset(w, h);

  // Horizontal.
  for (size_t y = 0; y < h; ++y) {
    const float* in = a.Row(y);
    if (b != nullptr) {
      const float* in2 = b->Row(y);
      for (size_t x = 0; x < w; ++x) row[x] = in[x] * in2[x];
      in = row.data();
    }
    BlurRow<kFma>(rg, in, sw, temp.Row(y));
  }

  // Vertical: y_k[n] = n2_k·(in[n−N−1] + in[n+N−1]) − d1_k·y_k[n−1] − y_k[n−2], every column,
  // one row at a time. y_k[n] overwrites y_k[n−2], then the two state rows swap roles.
  scratch.assign(8 * w, 0.0f);
  float* prev[3] = {scratch.data(), scratch.data() + w, scratch.data() + 2 * w};
  float* prev2[3] = {scratch.data() + 3 * w, scratch.data() + 4 * w, scratch.data() + 5 * w};
  float* sum_row = scratch.data() + 6 * w;
  float* discard = scratch.data() + 7 * w;  // outputs before row 0
  const ptrdiff_t n_radius = rg.radius;
  for (ptrdiff_t n = -n_radius + 1; n < sh; ++n) {
    const ptrdiff_t top = n - n_radius - 1;
    const ptrdiff_t bottom = n + n_radius - 1;
    const float* top_row = top >= 0 ? temp.Row(static_cast<size_t>(top)) : nullptr;
    const float* bottom_row = bottom < sh ? temp.Row(static_cast<size_t>(bottom)) : nullptr;
    const float* sum = nullptr;
    if (top_row != nullptr && bottom_row != nullptr) {
      AddRows(top_row, bottom_row, sum_row, w);
      sum = sum_row;
    } else if (top_row != nullptr || bottom_row != nullptr) {
      sum = top_row != nullptr ? top_row : bottom_row;
    } else {
      std::fill(sum_row, sum_row + w, 0.0f);
      sum = sum_row;
    }
    float* out_row = n >= 0 ? out.Row(static_cast<size_t>(n)) : discard;
    VerticalStep<kFma>(rg, sum, prev[0], prev2[0], prev[1], prev2[1], prev[2], prev2[2], out_row,
                       w);
    std::swap(prev[0], prev2[0]);
    std::swap(prev[1], prev2[1]);
    std::swap(prev[2], prev2[2]);
  }
}

// ---------------------------------------------------------------------------------------
// Error maps and their 1- and 4-norms.

inline double Quartic(double x) {
  x *= x;
  x *= x;
  return x;
}

struct ScaleNorms {
  double ssim[6] = {};        // [2 * c + norm]
  double edge_diff[12] = {};  // [4 * c + {artifact 1, artifact 4, detail lost 1, detail lost 4}]
};

// 1 − SSIM' per pixel (no luminance denominator), clamped at 0.
void SsimNorms(const Plane& m1, const Plane& m2, const Plane& s11, const Plane& s22,
               const Plane& s12, double* norms) {
  const double one_per_pixels = 1.0 / static_cast<double>(m1.width * m1.height);
  double sum1 = 0.0;
  double sum4 = 0.0;
  for (size_t y = 0; y < m1.height; ++y) {
    const float* row_m1 = m1.Row(y);
    const float* row_m2 = m2.Row(y);
    const float* row_s11 = s11.Row(y);
    const float* row_s22 = s22.Row(y);
    const float* row_s12 = s12.Row(y);
    for (size_t x = 0; x < m1.width; ++x) {
      const float mu1 = row_m1[x];
      const float mu2 = row_m2[x];
      const float mu11 = mu1 * mu1;
      const float mu22 = mu2 * mu2;
      const float mu12 = mu1 * mu2;
      const float diff = mu1 - mu2;
      const float num_m = static_cast<float>(1.0 - static_cast<double>(diff * diff));
      const float num_s = 2.0f * (row_s12[x] - mu12) + kC2;
      const float denom_s = (row_s11[x] - mu11) + (row_s22[x] - mu22) + kC2;
      double d = 1.0 - static_cast<double>(num_m * num_s / denom_s);
      d = std::max(d, 0.0);
      sum1 += d;
      sum4 += Quartic(d);
    }
  }
  norms[0] = one_per_pixels * sum1;
  norms[1] = std::sqrt(std::sqrt(one_per_pixels * sum4));
}

// Edge maps: d = (1 + |I2 − μ2|) / (1 + |I1 − μ1|) − 1; d > 0: the distorted image has an edge
// where the reference is smooth (ringing, blocking, banding); d < 0: the reverse (blur).
void EdgeNorms(const Plane& img1, const Plane& mu1, const Plane& img2, const Plane& mu2,
               double* norms) {
  const double one_per_pixels = 1.0 / static_cast<double>(img1.width * img1.height);
  double sum[4] = {0.0, 0.0, 0.0, 0.0};
  for (size_t y = 0; y < img1.height; ++y) {
    const float* row1 = img1.Row(y);
    const float* row2 = img2.Row(y);
    const float* rowm1 = mu1.Row(y);
    const float* rowm2 = mu2.Row(y);
    for (size_t x = 0; x < img1.width; ++x) {
      const double d1 = (1.0 + static_cast<double>(std::abs(row2[x] - rowm2[x]))) /
                            (1.0 + static_cast<double>(std::abs(row1[x] - rowm1[x]))) -
                        1.0;
      const double artifact = std::max(d1, 0.0);
      sum[0] += artifact;
      sum[1] += Quartic(artifact);
      const double detail_lost = std::max(-d1, 0.0);
      sum[2] += detail_lost;
      sum[3] += Quartic(detail_lost);
    }
  }
  norms[0] = one_per_pixels * sum[0];
  norms[1] = std::sqrt(std::sqrt(one_per_pixels * sum[1]));
  norms[2] = one_per_pixels * sum[2];
  norms[3] = std::sqrt(std::sqrt(one_per_pixels * sum[3]));
}

// ---------------------------------------------------------------------------------------
// Final score: weighted sum of the 108 norms, then the fitted mapping.

double Score(const std::vector<ScaleNorms>& scales) {
  // SSIMULACRA 2.1 weights, in the order channel (X, Y, B) → scale → norm (1, 4) →
  // map (SSIM, artifact, detail lost).
  static constexpr double kWeight[108] = {0.0,
                                          0.0007376606707406586,
                                          0.0,
                                          0.0,
                                          0.0007793481682867309,
                                          0.0,
                                          0.0,
                                          0.0004371155730107379,
                                          0.0,
                                          1.1041726426657346,
                                          0.00066284834129271,
                                          0.00015231632783718752,
                                          0.0,
                                          0.0016406437456599754,
                                          0.0,
                                          1.8422455520539298,
                                          11.441172603757666,
                                          0.0,
                                          0.0007989109436015163,
                                          0.000176816438078653,
                                          0.0,
                                          1.8787594979546387,
                                          10.94906990605142,
                                          0.0,
                                          0.0007289346991508072,
                                          0.9677937080626833,
                                          0.0,
                                          0.00014003424285435884,
                                          0.9981766977854967,
                                          0.00031949755934435053,
                                          0.0004550992113792063,
                                          0.0,
                                          0.0,
                                          0.0013648766163243398,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          7.466890328078848,
                                          0.0,
                                          17.445833984131262,
                                          0.0006235601634041466,
                                          0.0,
                                          0.0,
                                          6.683678146179332,
                                          0.00037724407979611296,
                                          1.027889937768264,
                                          225.20515300849274,
                                          0.0,
                                          0.0,
                                          19.213238186143016,
                                          0.0011401524586618361,
                                          0.001237755635509985,
                                          176.39317598450694,
                                          0.0,
                                          0.0,
                                          24.43300999870476,
                                          0.28520802612117757,
                                          0.0004485436923833408,
                                          0.0,
                                          0.0,
                                          0.0,
                                          34.77906344483772,
                                          44.835625328877896,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0008680556573291698,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0005313191874358747,
                                          0.0,
                                          0.00016533814161379112,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0004179171803251336,
                                          0.0017290828234722833,
                                          0.0,
                                          0.0020827005846636437,
                                          0.0,
                                          0.0,
                                          8.826982764996862,
                                          23.19243343998926,
                                          0.0,
                                          95.1080498811086,
                                          0.9863978034400682,
                                          0.9834382792465353,
                                          0.0012286405048278493,
                                          171.2667255897307,
                                          0.9807858872435379,
                                          0.0,
                                          0.0,
                                          0.0,
                                          0.0005130064588990679,
                                          0.0,
                                          0.00010854057858411537};
  double ssim = 0.0;
  size_t i = 0;
  // As in the reference, the weight index runs over the scales actually computed, so an
  // image with fewer than 6 scales uses the first weights of each channel's block.
  for (size_t c = 0; c < 3; ++c) {
    for (const ScaleNorms& scale : scales) {
      for (size_t n = 0; n < 2; ++n) {
        ssim += kWeight[i++] * std::abs(scale.ssim[c * 2 + n]);
        ssim += kWeight[i++] * std::abs(scale.edge_diff[c * 4 + n]);
        ssim += kWeight[i++] * std::abs(scale.edge_diff[c * 4 + n + 2]);
      }
    }
  }
  ssim = ssim * 0.9562382616834844;
  ssim = 2.326765642916932 * ssim - 0.020884521182843837 * ssim * ssim +
         6.248496625763138e-05 * ssim * ssim * ssim;
  if (ssim > 0) {
    ssim = 100.0 - 10.0 * std::pow(ssim, 0.6276336467831387);
  } else {
    ssim = 100.0;
  }
  return ssim;
}

template <bool kFma>
TOK1D_S2_INLINE double ComputeSsimulacra2(const Image& reference, const Image& distorted) {
  // Each step is written once (loops over the two images and the five blurs) because
  // everything here is inlined.
  const Image* inputs[2] = {&reference, &distorted};
  Planes3 linear[2];
  for (size_t i = 0; i < 2; ++i) linear[i] = ToLinear<kFma>(*inputs[i]);
  std::vector<ScaleNorms> scales;
  std::vector<float> row;
  std::vector<float> scratch;
  Plane temp;
  Plane blurred[5];  // σ1², σ2², σ12, μ1, μ2 (blurred products and images)
  Planes3 xyb[2];
  Planes3 spare;
  for (int scale = 0; scale < kNumScales; ++scale) {
    // The reference tests the size of the previous scale, then halves it.
    if (linear[0].width() < kSsimulacra2MinSide || linear[0].height() < kSsimulacra2MinSide) {
      break;
    }
    for (size_t i = 0; i < 2; ++i) {
      if (scale > 0) {
        Downsample(linear[i], spare);
        std::swap(linear[i], spare);
      }
      ToPositiveXyb<kFma>(linear[i], xyb[i]);
    }
    ScaleNorms norms;
    for (size_t c = 0; c < 3; ++c) {
      const Plane& p1 = xyb[0].plane[c];
      const Plane& p2 = xyb[1].plane[c];
      const Plane* first[5] = {&p1, &p2, &p1, &p1, &p2};
      const Plane* second[5] = {&p1, &p2, &p2, nullptr, nullptr};
      for (size_t i = 0; i < 5; ++i) {
        Blur<kFma>(*first[i], second[i], row, scratch, temp, blurred[i]);
      }
      SsimNorms(blurred[3], blurred[4], blurred[0], blurred[1], blurred[2], norms.ssim + 2 * c);
      EdgeNorms(p1, blurred[3], p2, blurred[4], norms.edge_diff + 4 * c);
    }
    scales.push_back(norms);
  }
  return Score(scales);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define TOK1D_SSIMULACRA2_X86_FMA 1
// The FMA version, compiled for CPUs with FMA3. Everything it calls that depends on kFma is
// inlined into it (TOK1D_S2_INLINE, and GCC's `flatten`), so that every fused multiply-add
// becomes one instruction.
__attribute__((target("fma"), flatten)) double ComputeWithFmaX86(const Image& reference,
                                                                 const Image& distorted) {
  return ComputeSsimulacra2<true>(reference, distorted);
}

bool CpuHasFma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("fma") != 0;
}
#endif

}  // namespace

StatusOr<double> Ssimulacra2(const Image& reference, const Image& distorted) {
  if (reference.width != distorted.width || reference.height != distorted.height) {
    return InvalidArgumentError(
        "ssimulacra2: image sizes differ (" + std::to_string(reference.width) + "x" +
        std::to_string(reference.height) + " vs " + std::to_string(distorted.width) + "x" +
        std::to_string(distorted.height) + ")");
  }
  if (reference.width < kSsimulacra2MinSide || reference.height < kSsimulacra2MinSide) {
    return InvalidArgumentError("ssimulacra2: images must be at least 8x8 pixels, got " +
                                std::to_string(reference.width) + "x" +
                                std::to_string(reference.height));
  }
  const size_t bytes = size_t{reference.width} * reference.height * 3;
  if (reference.rgb.size() != bytes || distorted.rgb.size() != bytes) {
    return InvalidArgumentError("ssimulacra2: pixel buffer size does not match width x height x 3");
  }
#if defined(TOK1D_SSIMULACRA2_X86_FMA)
  static const bool has_fma = CpuHasFma();
  if (has_fma) return ComputeWithFmaX86(reference, distorted);
  return ComputeSsimulacra2<false>(reference, distorted);
#elif defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
  return ComputeSsimulacra2<true>(reference, distorted);  // FMA is part of the base ISA
#else
  return ComputeSsimulacra2<false>(reference, distorted);
#endif
}

}  // namespace tok1d
