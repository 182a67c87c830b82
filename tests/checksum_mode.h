// Whether this build's .t1d reader verifies chunk checksums. Fuzzing builds (TOK1D_FUZZ=ON, which
// scripts/test-sanitizers also uses to run every test under ASan and UBSan) define
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the libFuzzer convention, and accept any checksum
// so that mutated inputs reach the parsers behind them; the tests of checksums then check that
// a damaged file gets past the checksum instead of being refused by it. (The command-line tests
// learn it from TOK1D_CHECKSUMS_SKIPPED=1, which tests/CMakeLists.txt sets in fuzzing builds.)
#pragma once

namespace tok1d::testing {

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
inline constexpr bool kT1dChecksumsVerified = false;
#else
inline constexpr bool kT1dChecksumsVerified = true;
#endif

}  // namespace tok1d::testing
