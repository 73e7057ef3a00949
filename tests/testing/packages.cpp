#include "tests/testing/packages.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {

namespace {

la_ssize_t append_to_string(archive*, void* out, const void* data, size_t size) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

void add_entry(archive* a, const TarEntry& e) {
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, e.path.c_str());
  archive_entry_set_perm(entry, e.mode);
  switch (e.kind) {
    case TarEntry::Kind::File:
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
      break;
    case TarEntry::Kind::Directory:
      archive_entry_set_filetype(entry, AE_IFDIR);
      break;
    case TarEntry::Kind::Symlink:
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.data.c_str());
      break;
    case TarEntry::Kind::Hardlink:
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.data.c_str());
      break;
  }
  EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
  if (e.kind == TarEntry::Kind::File && !e.data.empty()) {
    EXPECT_EQ(archive_write_data(a, e.data.data(), e.data.size()),
              static_cast<la_ssize_t>(e.data.size()));
  }
  archive_entry_free(entry);
}

}  // namespace

TarEntry symlink_entry(std::string path, std::string target) {
  return {std::move(path), std::move(target), 0777, TarEntry::Kind::Symlink};
}

std::string make_tar(const std::vector<TarEntry>& entries, int filter) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter(a, filter);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append_to_string, nullptr), ARCHIVE_OK);
  for (const auto& e : entries) add_entry(a, e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

void write_tar_bz2(const std::filesystem::path& path, const std::vector<TarEntry>& entries) {
  write_text(path, make_tar(entries, ARCHIVE_FILTER_BZIP2));
}

void write_conda(const std::filesystem::path& path, const std::vector<TarEntry>& info,
                 const std::vector<TarEntry>& pkg) {
  std::string stem = path.filename().string();
  stem = stem.substr(0, stem.size() - std::string(".conda").size());
  const std::vector<TarEntry> members = {
      {"metadata.json", R"({"conda_pkg_format_version": 2})"},
      {"info-" + stem + ".tar.zst", make_tar(info, ARCHIVE_FILTER_ZSTD)},
      {"pkg-" + stem + ".tar.zst", make_tar(pkg, ARCHIVE_FILTER_ZSTD)}};
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_zip_set_compression_store(a);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append_to_string, nullptr), ARCHIVE_OK);
  for (const auto& m : members) add_entry(a, m);
  archive_write_close(a);
  archive_write_free(a);
  write_text(path, out);
}

void write_tree(const std::filesystem::path& root, const std::vector<TarEntry>& entries) {
  namespace fs = std::filesystem;
  for (const auto& e : entries) {
    const fs::path path = root / e.path;
    fs::create_directories(path.parent_path());
    switch (e.kind) {
      case TarEntry::Kind::File:
        write_text(path, e.data);
        fs::permissions(path, static_cast<fs::perms>(e.mode));
        break;
      case TarEntry::Kind::Directory:
        fs::create_directories(path);
        break;
      case TarEntry::Kind::Symlink:
        fs::create_symlink(e.data, path);
        break;
      case TarEntry::Kind::Hardlink:
        fs::create_hard_link(root / e.data, path);
        break;
    }
  }
}

std::vector<TarEntry> package_info(const std::string& name, const std::vector<TarEntry>& files,
                                   const nlohmann::json& index) {
  nlohmann::json record = {{"name", name},
                           {"version", "1.0"},
                           {"build", "0"},
                           {"build_number", 0},
                           {"depends", nlohmann::json::array()},
                           {"subdir", "linux-64"}};
  record.update(index);
  nlohmann::json paths = nlohmann::json::array();
  for (const auto& f : files) {
    if (f.kind == TarEntry::Kind::Directory) continue;
    paths.push_back({{"_path", f.path},
                     {"path_type", f.kind == TarEntry::Kind::Symlink ? "softlink" : "hardlink"}});
  }
  return {{"info/index.json", record.dump()},
          {"info/paths.json", nlohmann::json{{"paths", paths}, {"paths_version", 1}}.dump()}};
}

}  // namespace envbuild::testing
