#include "builder/solve/cache_root.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <system_error>

#include "common/fs.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

Result<fs::path> default_cache_root() {
  if (const char* dir = std::getenv("ENVBUILD_CACHE"); dir && *dir) return fs::path(dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/')
    return fs::path(xdg) / "envbuild";
  ENVB_ASSIGN_OR_RETURN(fs::path home,
                        common::home_directory("set ENVBUILD_CACHE to a directory of your own"));
  return home / ".cache" / "envbuild";
}

Result<fs::path> open_cache_root(const fs::path& given) {
  fs::path root;
  if (given.empty()) {
    ENVB_ASSIGN_OR_RETURN(root, default_cache_root());
  } else {
    root = given;
  }
  std::error_code ec;
  root = fs::absolute(root, ec).lexically_normal();
  if (ec) return common::errno_error("absolute", given.string(), ec.value());
  if (!root.has_filename()) root = root.parent_path();
  ENVB_TRY(common::ensure_private_dir(root, "the envbuild cache (--cache-dir, ENVBUILD_CACHE)"));
  return root;
}

void touch_used(const fs::path& entry) {
  (void)::utimensat(AT_FDCWD, entry.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
}

}  // namespace envbuild::builder
