#include "builder/solve/index.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/json.hpp"
#include "common/root_dir.hpp"
#include "conda/package_archive.hpp"
#include "conda/platform.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

bool is_package_file(const fs::path& path) {
  std::string name = path.filename().string();
  return name.ends_with(".conda") || name.ends_with(".tar.bz2");
}

struct Digests {
  std::string md5;
  std::string sha256;
  uint64_t size = 0;
};

// md5, sha256 and size in one pass over the file.
Result<Digests> digest_file(const fs::path& path) {
  ENVB_ASSIGN_OR_RETURN(auto source, common::FileSource::open(path.string()));
  common::Hasher sha256(common::HashAlgorithm::Sha256);
  common::Hasher md5(common::HashAlgorithm::Md5);
  std::vector<std::byte> buffer(1 << 20);
  Digests out;
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, source->read(buffer));
    if (n == 0) break;
    std::span<const std::byte> chunk(buffer.data(), n);
    sha256.update(chunk);
    md5.update(chunk);
    out.size += n;
  }
  out.sha256 = sha256.hex_digest();
  out.md5 = md5.hex_digest();
  return out;
}

// info/index.json of a package, as JSON (every key kept, not just the ones envbuild reads).
Result<nlohmann::json> read_index_json(const fs::path& package) {
  std::string text;
  bool found = false;
  ENVB_TRY(conda::walk_package(
      package, conda::Components::Info,
      [&](const conda::ArchiveEntry& entry, common::ByteSource& data) -> Result<conda::Walk> {
        if (entry.path != "info/index.json" || entry.type != conda::EntryType::File)
          return conda::Walk::Continue;
        common::StringSink sink;
        ENVB_TRY(common::copy_stream(data, sink));
        text = std::move(sink.out);
        found = true;
        return conda::Walk::Stop;
      }));
  if (!found) return fail(Errc::Integrity, package.string() + ": no info/index.json");
  ENVB_ASSIGN_OR_RETURN(
      nlohmann::json json,
      common::parse_json(text, package.string() + ": info/index.json", Errc::Integrity));
  if (!json.is_object())
    return fail(Errc::Integrity, package.string() + ": info/index.json is not a JSON object");
  for (const char* key : {"name", "version", "build"})
    if (!json.contains(key) || !json[key].is_string())
      return fail(Errc::Integrity,
                  package.string() + ": info/index.json has no string '" + key + "'");
  return json;
}

Result<std::string> zstd_compress(const std::string& data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n))
    return fail(Errc::Internal, std::string("ZSTD_compress(repodata.json): ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

// The subdir a loose package goes into: noarch for noarch packages (and records without one),
// else its index.json's `subdir`, which must be a platform conda knows: the name comes from the
// package, and "../x" or "/etc" must not choose where a file goes.
Result<std::string> subdir_of_loose(const nlohmann::json& index, const std::string& package) {
  auto field = [&](const char* key) -> std::string {
    auto it = index.find(key);
    return it != index.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string subdir = field("subdir");
  if (!field("noarch").empty() || subdir.empty()) return std::string("noarch");
  auto platform = conda::Platform::parse(subdir);
  if (!platform)
    return fail(Errc::Integrity, package + ": info/index.json names subdir '" + subdir +
                                     "', which is not a platform conda knows; not moving it")
        .with_hint(
            "known platforms: noarch, linux-64, linux-aarch64, osx-arm64, win-64, ... "
            "(or put the package in its subdir yourself)");
  return platform->to_string();
}

// Moves the loose package `name` at the channel's top into `subdir`, beneath the channel's
// root (no symlink followed) and never over a file already there.
Result<void> move_loose_package(const common::RootDir& channel, const std::string& name,
                                const std::string& subdir) {
  const std::string dest = subdir + "/" + name;
  ENVB_TRY(channel.make_dir(subdir));
  ENVB_ASSIGN_OR_RETURN(common::DirEntry from, channel.parent_of(name));
  ENVB_ASSIGN_OR_RETURN(common::DirEntry to, channel.parent_of(dest));
  int rc = ::renameat2(from.dir.get(), from.name.c_str(), to.dir.get(), to.name.c_str(),
                       RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
    // A file system without RENAME_NOREPLACE: link(2) also refuses an existing name.
    rc = ::linkat(from.dir.get(), from.name.c_str(), to.dir.get(), to.name.c_str(), 0);
    if (rc == 0) rc = ::unlinkat(from.dir.get(), from.name.c_str(), 0);
  }
  if (rc == 0) return ok();
  if (errno == EEXIST)
    return fail(Errc::InvalidInput,
                channel.shown(dest) + " exists: not replacing it with " + channel.shown(name))
        .with_hint("remove one of the two");
  return common::errno_error("rename", channel.shown(name) + " -> " + channel.shown(dest), errno);
}

}  // namespace

Result<std::vector<IndexedSubdir>> index_channel(const fs::path& channel_dir,
                                                 const IndexOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(channel_dir, ec))
    return fail(Errc::NotFound, channel_dir.string() + ": not a directory");

  // Loose packages at the top (regular files, not symlinks) go into the subdir their
  // index.json names.
  ENVB_ASSIGN_OR_RETURN(common::RootDir channel, common::RootDir::open(channel_dir));
  ENVB_ASSIGN_OR_RETURN(std::vector<std::string> names, channel.list(""));
  for (const auto& name : names) {
    if (!is_package_file(name)) continue;
    ENVB_ASSIGN_OR_RETURN(auto st, channel.stat(name));
    if (!st || !S_ISREG(st->st_mode)) continue;
    ENVB_ASSIGN_OR_RETURN(auto index, read_index_json(channel_dir / name));
    ENVB_ASSIGN_OR_RETURN(std::string subdir, subdir_of_loose(index, channel.shown(name)));
    ENVB_TRY(move_loose_package(channel, name, subdir));
  }

  std::set<std::string> subdirs = {"noarch"};
  for (const auto& entry : fs::directory_iterator(channel_dir, ec)) {
    if (!entry.is_directory()) continue;
    bool has_packages = false;
    for (const auto& f : fs::directory_iterator(entry.path(), ec))
      if (f.is_regular_file() && is_package_file(f.path())) has_packages = true;
    if (has_packages) subdirs.insert(entry.path().filename().string());
  }

  std::vector<IndexedSubdir> result;
  for (const std::string& subdir : subdirs) {
    fs::path dir = channel_dir / subdir;
    ENVB_TRY(common::make_dirs(dir));
    std::vector<fs::path> packages;
    for (const auto& f : fs::directory_iterator(dir, ec))
      if (f.is_regular_file() && is_package_file(f.path())) packages.push_back(f.path());
    std::sort(packages.begin(), packages.end());
    IndexedSubdir indexed;
    indexed.subdir = subdir;
    nlohmann::json tar_bz2 = nlohmann::json::object();
    nlohmann::json conda = nlohmann::json::object();
    for (const auto& package : packages) {
      const std::string fn = package.filename().string();
      ENVB_ASSIGN_OR_RETURN(auto record, read_index_json(package).context("indexing " + fn));
      ENVB_ASSIGN_OR_RETURN(auto digests, digest_file(package).context("indexing " + fn));
      if (record.value("subdir", subdir) != subdir)
        indexed.warnings.push_back(subdir + "/" + fn + ": index.json says subdir '" +
                                   record.value("subdir", "") + "'");
      record["md5"] = digests.md5;
      record["sha256"] = digests.sha256;
      record["size"] = digests.size;
      if (!record.contains("depends")) record["depends"] = nlohmann::json::array();
      if (fn.ends_with(".conda")) {
        conda[fn] = std::move(record);
        ++indexed.conda_packages;
      } else {
        tar_bz2[fn] = std::move(record);
        ++indexed.packages;
      }
    }
    nlohmann::json repodata = {{"info", {{"subdir", subdir}}},
                               {"packages", std::move(tar_bz2)},
                               {"packages.conda", std::move(conda)},
                               {"removed", nlohmann::json::array()},
                               {"repodata_version", 1}};
    std::string text = repodata.dump(1) + "\n";  // nlohmann objects are sorted maps
    ENVB_TRY(common::write_file_atomic(dir / "repodata.json", text));
    if (options.write_zst) {
      ENVB_ASSIGN_OR_RETURN(std::string zst, zstd_compress(text, options.zst_level));
      ENVB_TRY(common::write_file_atomic(dir / "repodata.json.zst", zst));
    } else {
      fs::remove(dir / "repodata.json.zst", ec);
    }
    result.push_back(std::move(indexed));
  }
  return result;
}

}  // namespace envbuild::builder
