#include <doctest/doctest.h>

#include "tok1d/status.h"

namespace tok1d {
namespace {

StatusOr<int> ParsePositive(int value) {
  if (value <= 0) return InvalidArgumentError("value must be positive");
  return value;
}

Status Chain(int value, int* out) {
  TOK1D_ASSIGN_OR_RETURN(*out, ParsePositive(value));
  TOK1D_RETURN_IF_ERROR(value == 7 ? CorruptError("seven") : OkStatus());
  return OkStatus();
}

TEST_CASE("Status carries code and message, StatusOr a value or an error") {
  CHECK(OkStatus().ok());
  Status error = TruncatedError("file ends early");
  CHECK_FALSE(error.ok());
  CHECK(error.code() == StatusCode::kTruncated);
  CHECK(error.WithContext("a.t1d").message() == "a.t1d: file ends early");
  CHECK(error.WithContext("a.t1d").code() == StatusCode::kTruncated);
  CHECK(StatusCodeName(StatusCode::kModelMismatch) == "model mismatch");

  StatusOr<int> good = ParsePositive(3);
  REQUIRE(good.ok());
  CHECK(*good == 3);
  StatusOr<int> bad = ParsePositive(-1);
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("TOK1D_ASSIGN_OR_RETURN and TOK1D_RETURN_IF_ERROR propagate errors") {
  int out = 0;
  CHECK(Chain(5, &out).ok());
  CHECK(out == 5);
  CHECK(Chain(-2, &out).code() == StatusCode::kInvalidArgument);
  CHECK(Chain(7, &out).code() == StatusCode::kCorrupt);
}

}  // namespace
}  // namespace tok1d
