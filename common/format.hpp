#pragma once
// Small text formatters shared by the command-line tools' progress and summary lines.

#include <cstdint>
#include <string>

namespace envbuild {

// "512 B", "12.3 KiB", "4.0 MiB", "1.2 GiB": binary units, one decimal.
std::string human_bytes(uint64_t bytes);

}  // namespace envbuild
