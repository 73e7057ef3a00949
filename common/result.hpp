#pragma once

// Result<T>: the error channel of envbuild. Shaped like std::expected<T, Error> (C++23) so that
// moving to the standard type later means changing one alias; see docs/design.md "Errors".

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace envbuild {

/// What kind of failure happened; decides the exit code and whether a retry can help.
enum class Errc {
  InvalidInput,   // user input: a spec, a file, a flag
  NotFound,       // a file, package, blob, tag that does not exist
  Io,             // the local file system said no
  Network,        // transport failure (often retryable)
  Unauthorized,   // credentials missing or refused
  Integrity,      // digest/size mismatch, corrupt archive
  Unsupported,    // a format or feature we do not handle
  Unsatisfiable,  // a solve with no solution
  HostMismatch,   // the host cannot run the environment (driver, glibc)
  Cancelled,
  Internal,
};

std::string_view to_string(Errc code);

/// An error with a context chain: the innermost message names the call and object, each caller
/// prepends what it was doing. Printed as "outer: inner: innermost".
class Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  [[nodiscard]] Errc code() const noexcept { return code_; }
  /// The innermost message without context.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] const std::vector<std::string>& context() const noexcept { return context_; }
  [[nodiscard]] bool retryable() const noexcept { return retryable_; }

  /// Adds what the caller was doing; the newest context is printed first.
  Error&& with_context(std::string what) && {
    context_.push_back(std::move(what));
    return std::move(*this);
  }
  Error& with_context(std::string what) & {
    context_.push_back(std::move(what));
    return *this;
  }
  Error&& set_retryable(bool value = true) && {
    retryable_ = value;
    return std::move(*this);
  }
  /// Hint printed on its own line under the error ("did you mean ...", "run ... first").
  Error&& with_hint(std::string hint) && {
    hint_ = std::move(hint);
    return std::move(*this);
  }
  [[nodiscard]] const std::string& hint() const noexcept { return hint_; }

  /// "context2: context1: message".
  [[nodiscard]] std::string to_string() const;

 private:
  Errc code_;
  std::string message_;
  std::vector<std::string> context_;
  std::string hint_;
  bool retryable_ = false;
};

/// The exit code a command returns for an error of this kind (see README "Exit codes").
int exit_code_for(Errc code);

template <typename T>
class [[nodiscard]] Result;

namespace detail {
template <typename T>
struct IsResult : std::false_type {};
template <typename T>
struct IsResult<Result<T>> : std::true_type {};
}  // namespace detail

[[noreturn]] void die_bad_result_access(const Error* error);

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(const T& value) : data_(std::in_place_index<0>, value) {}  // NOLINT: implicit by design
  Result(T&& value) : data_(std::in_place_index<0>, std::move(value)) {}    // NOLINT
  Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> &&
           !std::is_same_v<std::remove_cvref_t<U>, Error> &&
           !detail::IsResult<std::remove_cvref_t<U>>::value) Result(U&& value)
      : data_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    check();
    return std::get<0>(data_);
  }
  const T& value() const& {
    check();
    return std::get<0>(data_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(data_); }
  Error& error() & { return std::get<1>(data_); }
  Error&& error() && { return std::get<1>(std::move(data_)); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(data_) : static_cast<T>(std::forward<U>(fallback));
  }
  template <typename U>
  T value_or(U&& fallback) && {
    return has_value() ? std::get<0>(std::move(data_)) : static_cast<T>(std::forward<U>(fallback));
  }

  template <typename F>
  auto and_then(F&& f) && -> std::invoke_result_t<F, T&&> {
    if (!has_value()) return std::move(*this).error();
    return std::forward<F>(f)(std::move(*this).value());
  }
  template <typename F>
  auto transform(F&& f) && -> Result<std::invoke_result_t<F, T&&>> {
    if (!has_value()) return std::move(*this).error();
    return std::forward<F>(f)(std::move(*this).value());
  }
  template <typename F>
  Result or_else(F&& f) && {
    if (has_value()) return std::move(*this);
    return std::forward<F>(f)(std::move(*this).error());
  }
  /// Adds context to the error, if any. Returns by value so that temporaries chain safely.
  Result context(std::string what) && {
    if (!has_value()) std::get<1>(data_).with_context(std::move(what));
    return std::move(*this);
  }

 private:
  void check() const {
    if (!has_value()) die_bad_result_access(&std::get<1>(data_));
  }
  std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::in_place, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (!has_value()) die_bad_result_access(&*error_);
  }
  const Error& error() const& { return *error_; }
  Error& error() & { return *error_; }
  Error&& error() && { return std::move(*error_); }

  template <typename F>
  auto and_then(F&& f) && -> std::invoke_result_t<F> {
    if (!has_value()) return std::move(*this).error();
    return std::forward<F>(f)();
  }
  Result context(std::string what) && {
    if (error_) error_->with_context(std::move(what));
    return std::move(*this);
  }

 private:
  std::optional<Error> error_;
};

inline Result<void> ok() {
  return {};
}

/// Shorthand to build an error: `return fail(Errc::NotFound, "no such tag '" + tag + "'");`
inline Error fail(Errc code, std::string message) {
  return Error(code, std::move(message));
}

}  // namespace envbuild

/// Returns the error of a Result<...> expression from the enclosing function.
#define ENVB_TRY(expr)                                                             \
  do {                                                                             \
    auto envb_try_result_ = (expr);                                                \
    if (!envb_try_result_.has_value()) return std::move(envb_try_result_).error(); \
  } while (false)

#define ENVB_CONCAT_INNER_(a, b) a##b
#define ENVB_CONCAT_(a, b) ENVB_CONCAT_INNER_(a, b)
#define ENVB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)    \
  auto tmp = (expr);                                   \
  if (!tmp.has_value()) return std::move(tmp).error(); \
  lhs = std::move(tmp).value()

/// `ENVB_ASSIGN_OR_RETURN(auto digest, Digest::parse(text));`
#define ENVB_ASSIGN_OR_RETURN(lhs, expr) \
  ENVB_ASSIGN_OR_RETURN_IMPL_(ENVB_CONCAT_(envb_result_, __LINE__), lhs, expr)

/// A broken invariant is a bug: print where and abort.
#define ENVB_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: internal error: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (false)
