#include "builder/index.hpp"

#include <zstd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/json.hpp"
#include "conda/package_archive.hpp"

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

}  // namespace

Result<std::vector<IndexedSubdir>> index_channel(const fs::path& channel_dir,
                                                 const IndexOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(channel_dir, ec))
    return fail(Errc::NotFound, channel_dir.string() + ": not a directory");

  // Loose packages at the top go into the subdir their index.json names.
  std::vector<fs::path> loose;
  for (const auto& entry : fs::directory_iterator(channel_dir, ec))
    if (entry.is_regular_file() && is_package_file(entry.path())) loose.push_back(entry.path());
  if (ec) return common::errno_error("readdir", channel_dir.string(), ec.value());
  std::sort(loose.begin(), loose.end());
  for (const auto& package : loose) {
    ENVB_ASSIGN_OR_RETURN(auto index, read_index_json(package));
    std::string subdir = index.value("subdir", "");
    if (index.value("noarch", "") != "" || subdir.empty()) subdir = "noarch";
    fs::path dest = channel_dir / subdir / package.filename();
    ENVB_TRY(common::make_dirs(dest.parent_path()));
    fs::rename(package, dest, ec);
    if (ec) return common::errno_error("rename", package.string() + " -> " + dest.string(), ec.value());
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
