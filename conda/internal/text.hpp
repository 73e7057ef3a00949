#pragma once

// Small text helpers shared by the conda spec parsers: caret-pointing parse errors, "did you
// mean" suggestions, conda-style globs.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/format.hpp"
#include "common/result.hpp"

namespace envbuild::conda::internal {

/// An InvalidInput error for `input` with a caret under column `pos` (0-based):
///   invalid version spec '>=1.2,<': expected a version after '<' (column 8)
///     >=1.2,<
///            ^
Error parse_error(std::string_view what, std::string_view input, size_t pos,
                  std::string_view problem);

/// Re-anchors an error made by parse_error() for a piece of a larger input: the same problem,
/// reported for `whole` at column `offset + inner column`. Errors of another shape are returned
/// with `what '<whole>'` as context.
Error rebase_error(const Error& inner, std::string_view what, std::string_view whole,
                   size_t offset);

/// Like above, for a piece that was copied out of `whole` with characters dropped:
/// `origin[i]` is the column in `whole` of the piece's character i.
Error rebase_error(const Error& inner, std::string_view what, std::string_view whole,
                   std::span<const size_t> origin);

using common::did_you_mean;

/// Glob with `*` only (conda build strings, names, versions); case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text);

std::string_view trim(std::string_view text);
bool is_digits(std::string_view text);
/// The position of the first ASCII control byte (below 0x20, or DEL), or npos: specs and
/// channels are one line of printable text.
size_t first_control_char(std::string_view text);

}  // namespace envbuild::conda::internal
