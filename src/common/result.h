// Errors as values for expected failure paths.
//
// `Result<T>` holds either a value or an `Error` (a kind plus a human-readable message). Code that
// can fail for reasons the caller must handle (bad input, unknown id, server unavailable) returns a
// Result; exceptions are kept for start-up failures and broken invariants.
//
//   Result<Palette> p = parse_palette("ega");
//   if (!p) return p.error();
//   use(*p);
//
// The mapping from ErrorKind to an HTTP status lives in one place, in the HTTP layer.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dither {

enum class ErrorKind {
  kInvalidArgument,  // a parameter or option is malformed or out of range
  kNotFound,         // an id that does not exist
  kTooLarge,         // a byte limit was exceeded (a body, a file)
  kTooManyPixels,    // a pixel limit was exceeded (from a header, or by resize/upscale)
  kUnsupported,      // a format or type that is not on the allow-list
  kUndecodable,      // data claims to be an image but cannot be decoded
  kUnavailable,      // a dependency is down; retrying later may work
  kInternal,         // a bug or an unexpected library failure
};

std::string_view to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
};

inline Error make_error(ErrorKind kind, std::string message) {
  return Error{kind, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

// A Result with no value: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace dither
