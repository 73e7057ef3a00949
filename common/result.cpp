#include "common/result.hpp"

#include "common/format.hpp"

namespace envbuild {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::InvalidInput:
      return "invalid input";
    case Errc::NotFound:
      return "not found";
    case Errc::Io:
      return "i/o error";
    case Errc::Network:
      return "network error";
    case Errc::Unauthorized:
      return "unauthorized";
    case Errc::Integrity:
      return "integrity error";
    case Errc::Unsupported:
      return "unsupported";
    case Errc::Unsatisfiable:
      return "unsatisfiable";
    case Errc::HostMismatch:
      return "host mismatch";
    case Errc::Cancelled:
      return "cancelled";
    case Errc::Internal:
      return "internal error";
  }
  return "error";
}

std::string Error::to_string() const {
  std::string out;
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += message_;
  // Messages quote names from images, packages and servers: never let one cut the text short
  // (a NUL) or reach the terminal as a control sequence.
  return common::printable(out);
}

int exit_code_for(Errc code) {
  switch (code) {
    case Errc::InvalidInput:
      return 2;
    case Errc::NotFound:
      return 3;
    case Errc::Unsatisfiable:
      return 4;
    case Errc::Integrity:
      return 5;
    case Errc::Network:
      return 6;
    case Errc::Unauthorized:
      return 7;
    case Errc::HostMismatch:
      return 8;
    case Errc::Cancelled:
      return 130;
    case Errc::Io:
    case Errc::Unsupported:
    case Errc::Internal:
      return 1;
  }
  return 1;
}

void die_bad_result_access(const Error* error) {
  std::fprintf(stderr, "internal error: value() on a failed Result: %s\n",
               error ? error->to_string().c_str() : "(no error)");
  std::abort();
}

}  // namespace envbuild
