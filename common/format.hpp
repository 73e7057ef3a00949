#pragma once
// Small text formatters shared by the command-line tools' progress and summary lines.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace envbuild {

// "512 B", "12.3 KiB", "4.0 MiB", "1.2 GiB": binary units, one decimal.
std::string human_bytes(uint64_t bytes);

namespace common {

/// `text` safe to print on a terminal: control bytes other than newline and tab (NUL, ESC, CR,
/// ...) and DEL become \xHH, so a name from an image or a package can neither cut a message short
/// nor drive the terminal. Other bytes (UTF-8) are kept.
std::string printable(std::string_view text);

/// The candidate closest to `word` by edit distance, when close enough to be a likely typo
/// (a third of the word: at least 1, at most 3 edits): for "did you mean '...'?" hints.
std::optional<std::string> did_you_mean(std::string_view word,
                                        std::span<const std::string_view> candidates);

/// `text` as one POSIX shell word: single-quoted, each ' written as '\'' (for the scripts envrun
/// writes: activation, bin/activate).
std::string shell_quote(std::string_view text);

}  // namespace common
}  // namespace envbuild
