#include "tests/testing/shared_fixture.hpp"

#include <sys/stat.h>

#include <cstdlib>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

namespace fs = std::filesystem;

namespace {
constexpr const char* kCompleteMarker = ".complete";
constexpr const char* kLockFile = "lock";

// Fixtures hold read-only trees (extracted packages, installed prefixes): writable first.
Result<void> remove_fixture_tree(const fs::path& path) {
  run_command("chmod -R u+rwX " + shell_quote(path.string()) + " 2>/dev/null");
  return common::remove_all(path);
}
}  // namespace

fs::path fixtures_dir() {
  if (const char* tmp = std::getenv("TEST_TMPDIR"); tmp && *tmp)
    return fs::path(tmp) / "test-fixtures";
  return binary_dir() / "test-fixtures";
}

std::string file_identity(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return file.string() + " (missing)";
  return file.string() + " size " + std::to_string(st.st_size) + " mtime " +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

Result<fs::path> shared_fixture(const std::string& name, const std::string& inputs,
                                const std::function<Result<void>(const fs::path&)>& make) {
  const fs::path parent = fixtures_dir() / name;
  const fs::path dir = parent / common::sha256_hex(inputs).substr(0, 16);
  ENVB_TRY(common::make_dirs(parent));
  ENVB_ASSIGN_OR_RETURN(auto lock,
                        common::FileLock::acquire(parent / kLockFile, common::LockMode::Exclusive));
  if (fs::exists(dir / kCompleteMarker)) return dir;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    if (entry.path().filename() == kLockFile) continue;
    ENVB_TRY(remove_fixture_tree(entry.path()));
  }
  if (ec) return fail(Errc::Io, "listing " + parent.string() + ": " + ec.message());
  ENVB_TRY(common::make_dirs(dir));
  if (auto made = make(dir); !made)
    return std::move(made).context("making the shared test fixture " + dir.string()).error();
  ENVB_TRY(common::write_file_atomic(dir / kCompleteMarker, inputs));
  return dir;
}

}  // namespace envbuild::testing
