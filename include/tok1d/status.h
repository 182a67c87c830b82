// Status and StatusOr<T>: error handling without exceptions, in the manner of libjxl/absl.
//
// Every fallible function returns Status (no value) or StatusOr<T> (a value or an error).
// Messages are one line, name the problem and, where possible, say what to do about it;
// callers add context with Status::WithContext instead of rewording.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tok1d {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller asked for something impossible (bad option, bad value)
  kNotFound,         // a file or an item does not exist
  kIoError,          // the operating system refused a read or write
  kCorrupt,          // input is damaged (checksum mismatch, impossible field value)
  kUnsupported,      // input is valid but uses a feature this build cannot handle
  kTooLarge,         // input exceeds a configured limit (pixels, bytes)
  kTruncated,        // input ends early
  kModelMismatch,    // a token file was made with other model weights
  kInternal,         // a bug in tok1d
};

// Stable lower-case name of a code, e.g. "corrupt".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "context: message", keeping the code. Used to say which file or chunk failed.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status CorruptError(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status UnsupportedError(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status TooLargeError(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
inline Status TruncatedError(std::string m) { return {StatusCode::kTruncated, std::move(m)}; }
inline Status ModelMismatchError(std::string m) {
  return {StatusCode::kModelMismatch, std::move(m)};
}
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(state_).ok() && "StatusOr needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  Status status() const { return ok() ? OkStatus() : std::get<Status>(state_); }

  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> state_;
};

}  // namespace tok1d

#define TOK1D_STATUS_CONCAT_INNER(a, b) a##b
#define TOK1D_STATUS_CONCAT(a, b) TOK1D_STATUS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function if it is an error.
#define TOK1D_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::tok1d::Status tok1d_status_ = (expr);        \
    if (!tok1d_status_.ok()) return tok1d_status_; \
  } while (false)

// `TOK1D_ASSIGN_OR_RETURN(auto x, F());` declares/assigns x from a StatusOr or returns its error.
#define TOK1D_ASSIGN_OR_RETURN(lhs, expr) \
  TOK1D_ASSIGN_OR_RETURN_IMPL(TOK1D_STATUS_CONCAT(tok1d_statusor_, __LINE__), lhs, expr)
#define TOK1D_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
