#pragma once

// Dependency names as libsolv's conda match specs read them (conda.c): most name one package,
// but a glob ("lib*") or a regular expression ("^lib(a|b)$") names every package it matches.
// The reach walk (builder/solve/reach.hpp) and the pool's narrowing (solv/internal/prune.hpp)
// both need to know which is which.

#include <regex.h>

#include <string>
#include <string_view>

namespace envbuild::builder {

/// The name libsolv's pool_conda_matchspec reads from a match spec: after the last ':' (a
/// channel or namespace, ignored), up to a space or an operator, in lower case ("ch:NumPy >1"
/// -> "numpy", "lib* >1" -> "lib*", "foo[version='>1']" -> "foo[version").
std::string libsolv_spec_name(std::string_view spec);

/// Whether libsolv matches dependency name `name` against every package name: a glob (holds
/// '*') or a regular expression (^...$).
bool names_a_pattern(std::string_view name);

/// A dependency name that is a pattern (names_a_pattern), compiled once, matched against
/// package names as libsolv's conda match specs match it (conda.c: POSIX extended, case
/// insensitive; a glob is ^...$ with '*' as ".*" and '.' and '+' literal).
class NamePattern {
 public:
  explicit NamePattern(std::string_view pattern);
  ~NamePattern();
  NamePattern(const NamePattern&) = delete;
  NamePattern& operator=(const NamePattern&) = delete;
  bool matches(std::string_view name) const;

 private:
  regex_t compiled_{};
  bool valid_ = false;  // one regcomp refuses matches nothing, in libsolv too
};

}  // namespace envbuild::builder
