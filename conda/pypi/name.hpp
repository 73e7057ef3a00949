#pragma once

// Names of Python distributions and extras (PEP 503 normalization, PEP 508 name syntax).

#include <string>
#include <string_view>

namespace envbuild::conda::pypi {

/// PEP 503: lowercased, each run of `-`, `_` and `.` replaced by one `-` ("Foo.Bar__baz" ->
/// "foo-bar-baz"). Names compare equal when their normal forms do; extras likewise (PEP 685).
std::string normalize_name(std::string_view name);

/// PEP 508's name syntax: ASCII letters and digits, with `.`, `-`, `_` inside only.
bool is_valid_name(std::string_view name);

/// The form wheel and dist-info file names use (PEP 427/491): the normal form with `-` as `_`.
std::string wheel_name_part(std::string_view name);

}  // namespace envbuild::conda::pypi
