#pragma once

namespace envbuild::conda {

/// How a file's prefix placeholder is replaced (paths.json `file_mode`, CEP 34). Shared by the
/// package metadata (paths.json) and the installed records (conda-meta).
enum class FileMode { Text, Binary };

}  // namespace envbuild::conda
