#include "tests/testing/sentinel.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/hash.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

namespace fs = std::filesystem;

namespace {

std::string describe(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "missing";
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    return "symlink -> " + fs::read_symlink(path, ec).string();
  }
  if (S_ISDIR(st.st_mode)) return std::string("dir ") + mode;
  if (S_ISREG(st.st_mode)) {
    auto digest = common::sha256_file(path.string());
    return std::string("file ") + mode + " " + std::to_string(st.st_size) + " " +
           (digest ? *digest : "unreadable");
  }
  return std::string("special ") + mode;
}

}  // namespace

TreeSnapshot snapshot_tree(const fs::path& root) {
  TreeSnapshot out;
  out["."] = describe(root);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec))
    out[fs::relative(it->path(), root).string()] = describe(it->path());
  return out;
}

std::string diff_snapshots(const TreeSnapshot& before, const TreeSnapshot& after) {
  std::ostringstream out;
  for (const auto& [path, what] : before) {
    auto it = after.find(path);
    if (it == after.end())
      out << "removed: " << path << " (" << what << ")\n";
    else if (it->second != what)
      out << "changed: " << path << ": " << what << " -> " << it->second << "\n";
  }
  for (const auto& [path, what] : after)
    if (!before.contains(path)) out << "added: " << path << " (" << what << ")\n";
  return out.str();
}

fs::path make_sentinel_tree(const fs::path& root) {
  write_text(root / "home/.bashrc", "# the user's own .bashrc\nexport PS1='$ '\n");
  write_text(root / "home/.ssh/authorized_keys", "ssh-ed25519 AAAA user@host\n");
  write_text(root / "home/secret.json", "{\"SECRET_TOKEN\": \"sentinel-secret-8d1f\"}\n");
  write_text(root / "home/data/results.csv", "epoch,loss\n1,0.5\n");
  write_text(root / "host/precious/file", "precious host data\n");
  fs::create_directories(root / "host/empty-dir");
  return root;
}

}  // namespace envbuild::testing
