// Branch-free float functions that the compiler vectorizes inside loops (libm's expf and erff
// are scalar calls that block vectorization). Accuracy: ExpApprox within 2 ulp of expf on
// [-87, 88]; ErfApprox within 5e-7 absolute (Abramowitz & Stegun 7.1.26, 1.5e-7 in exact
// arithmetic, the formula PyTorch's vectorized erf uses). tests/runtime/cpu_ops_test.cpp
// checks both against libm.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

// Compiles a hot loop twice, for x86-64-v3 (AVX2 + FMA) and baseline x86-64, picked at load
// time, so one binary runs everywhere and uses AVX2 where it exists. Not under ThreadSanitizer:
// the clones' resolvers run before TSan's runtime is up, and the instrumented ones crash.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TOK1D_THREAD_SANITIZER 1
#endif
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(TOK1D_THREAD_SANITIZER) && !defined(__SANITIZE_THREAD__)
#define TOK1D_VECTORIZED __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TOK1D_VECTORIZED
#endif

namespace tok1d::cpu {

// e^x (Cephes expf: x = n·ln2 + r, a degree-6 polynomial for e^r, then scale by 2^n).
inline float ExpApprox(float x) {
  // The constant first: a NaN input gives 88, not an undefined float-to-int conversion below.
  x = std::max(-87.0f, std::min(88.0f, x));
  // Round-to-nearest via the 1.5·2^23 trick (no libm call, vectorizes everywhere).
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const auto scale =
      std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
  return er * scale;
}

// erf(x), Abramowitz & Stegun 7.1.26, given exp_minus_square = ExpApprox(−x²) (GELU's
// derivative needs that exponential too).
inline float ErfApproxWithExp(float x, float exp_minus_square) {
  const float a = std::fabs(x);
  const float t = 1.0f / (0.3275911f * a + 1.0f);
  float r = 1.061405429f;
  r = r * t + -1.453152027f;
  r = r * t + 1.421413741f;
  r = r * t + -0.284496736f;
  r = r * t + 0.254829592f;
  const float y = 1.0f - r * t * exp_minus_square;
  return std::copysign(y, x);
}

// erf(x), Abramowitz & Stegun 7.1.26.
inline float ErfApprox(float x) {
  const float a = std::fabs(x);
  return ErfApproxWithExp(x, ExpApprox(-a * a));
}

// Exact (erf) GELU: x/2 · (1 + erf(x/√2)).
inline float GeluApprox(float x) { return 0.5f * x * (1.0f + ErfApprox(x * 0.70710678118654752f)); }

}  // namespace tok1d::cpu
