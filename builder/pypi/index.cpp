#include "builder/pypi/index.hpp"

#include <algorithm>

#include "builder/solve/channel.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "conda/pypi/name.hpp"
#include "conda/pypi/tags.hpp"
#include "conda/pypi/wheel_archive.hpp"

namespace envbuild::builder::pypi {

namespace fs = std::filesystem;
using conda::pypi::CoreMetadata;
using conda::pypi::normalize_name;

namespace {

constexpr size_t kMaxMetadataBytes = size_t{16} << 20;
constexpr std::string_view kAccept =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01";

// Keeps at most `limit` bytes: a page or metadata file from a server that does not stop is an
// error, not an exhausted memory.
class BoundedStringSink final : public common::ByteSink {
 public:
  BoundedStringSink(size_t limit, std::string what) : limit_(limit), what_(std::move(what)) {}
  Result<void> write(std::span<const std::byte> data) override {
    if (out.size() + data.size() > limit_)
      return fail(Errc::Integrity, what_ + ": larger than " + std::to_string(limit_) + " bytes");
    out.append(reinterpret_cast<const char*>(data.data()), data.size());
    return ok();
  }
  std::string out;

 private:
  size_t limit_;
  std::string what_;
};

// "https://user:pass@host/simple" -> "https://user:pass@host"; "" without credentials.
std::string credentialed_origin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t end = url.find_first_of("/?#", scheme + 3);
  std::string origin = url.substr(0, end);
  return origin.find('@', scheme + 3) == std::string::npos ? "" : origin;
}

// The project a distribution file belongs to, from its name: wheels by their name part, sdists
// by the known project prefix.
bool file_of_project(const std::string& filename, const std::string& project) {
  if (filename.ends_with(".whl")) {
    auto dash = filename.find('-');
    return dash != std::string::npos && normalize_name(filename.substr(0, dash)) == project;
  }
  return conda::pypi::sdist_version(filename, project).has_value();
}

bool is_distribution(const std::string& filename) {
  for (std::string_view ext : {".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz"})
    if (filename.ends_with(ext)) return true;
  return false;
}

std::string file_url(const fs::path& path) { return "file://" + path.string(); }

}  // namespace

std::optional<fs::path> local_path(std::string_view url) {
  if (url.starts_with("file://")) return fs::path(percent_decode(url.substr(7)));
  if (url.find("://") == std::string_view::npos) return fs::path(url);
  return std::nullopt;
}

PackageIndex::PackageIndex(IndexOptions options) : options_(std::move(options)) {
  // No cache root and none by default: the package cache reports that when it is used, and
  // metadata is not kept.
  if (options_.cache.root.empty())
    if (auto root = default_cache_root()) options_.cache.root = *root;
  for (const auto& url : options_.index_urls)
    if (auto origin = credentialed_origin(url); !origin.empty()) credentialed_.push_back(origin);
  for (const auto& url : options_.find_links)
    if (auto origin = credentialed_origin(url); !origin.empty()) credentialed_.push_back(origin);
  for (const auto& base : options_.cache.credentialed_channels) credentialed_.push_back(base);
  client_ = std::make_unique<common::HttpClient>(options_.cache.http);
}

PackageIndex::~PackageIndex() = default;

PackageIndex::Stats PackageIndex::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

Result<std::string> PackageIndex::get(const std::string& url, std::string* content_type) {
  if (options_.cache.offline)
    return fail(Errc::NotFound, common::redact_url(url) + ": --offline forbids downloading")
        .with_hint("lock the environment once online; install --lock and build --lock need no index");
  BoundedStringSink sink(kMaxPageBytes, common::redact_url(url));
  ENVB_ASSIGN_OR_RETURN(auto response,
                        client_->send(common::http_get(with_credentials(url, credentialed_),
                                                       {{"Accept", std::string(kAccept)}}),
                                      sink));
  if (content_type) *content_type = response.content_type;
  return std::move(sink.out);
}

Result<std::vector<DistributionFile>> PackageIndex::index_page(const std::string& root,
                                                               const std::string& project) {
  std::string base = root;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string url = base + "/" + project + "/";
  // Credentials stay in the URL the page's links are resolved against, so that links on the
  // same host carry them (redacted); `get` sends them.
  std::string type;
  auto body = get(url, &type);
  if (!body) {
    if (body.error().code() == Errc::NotFound && !options_.cache.offline)
      return std::vector<DistributionFile>();  // the index does not have the project
    return std::move(body).error().with_context("reading the index page of " + project);
  }
  ++stats_.pages;
  if (type.find("application/vnd.pypi.simple.v1+json") != std::string::npos)
    return parse_simple_json(*body, url);
  return parse_simple_html(*body, url);
}

Result<std::vector<DistributionFile>> PackageIndex::find_links_files(const std::string& location) {
  if (auto it = find_links_.find(location); it != find_links_.end()) return it->second;
  std::vector<DistributionFile> files;
  auto dir = local_path(location);
  if (dir) {
    std::error_code ec;
    if (!fs::is_directory(*dir, ec))
      return fail(Errc::NotFound, "--find-links " + location + ": not a directory");
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(*dir, ec))
      if (entry.is_regular_file(ec)) names.push_back(entry.path().filename().string());
    if (ec) return fail(Errc::Io, "listing " + dir->string() + ": " + ec.message());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (!is_distribution(name)) continue;
      DistributionFile file;
      file.filename = name;
      file.url = file_url(*dir / name);
      files.push_back(std::move(file));
    }
  } else {
    std::string type;
    ENVB_ASSIGN_OR_RETURN(std::string body,
                          get(location, &type).context("reading --find-links " +
                                                       common::redact_url(location)));
    ENVB_ASSIGN_OR_RETURN(files, parse_simple_html(body, location));
  }
  find_links_.emplace(location, files);
  return files;
}

Result<std::vector<DistributionFile>> PackageIndex::files(const std::string& project) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = pages_.find(project); it != pages_.end()) return it->second;
  std::vector<DistributionFile> out;
  // pip's order: find-links first, then the indexes.
  for (const auto& location : options_.find_links) {
    ENVB_ASSIGN_OR_RETURN(auto files, find_links_files(location));
    for (auto& f : files)
      if (file_of_project(f.filename, project)) out.push_back(f);
  }
  for (const auto& root : options_.index_urls) {
    ENVB_ASSIGN_OR_RETURN(auto files, index_page(root, project));
    for (auto& f : files)
      if (is_distribution(f.filename)) out.push_back(std::move(f));
  }
  pages_.emplace(project, out);
  return out;
}

Result<CoreMetadata> PackageIndex::metadata(const DistributionFile& wheel) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string what = wheel.filename;
  const fs::path cache_dir = options_.cache.root / "pypi-metadata";
  // Metadata of a verified wheel never changes: kept by the wheel's sha256.
  const fs::path cached = wheel.sha256.empty() || options_.cache.root.empty()
                              ? fs::path()
                              : cache_dir / (wheel.sha256 + ".METADATA");
  std::error_code ec;
  if (!cached.empty() && fs::is_regular_file(cached, ec)) {
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(cached, kMaxMetadataBytes));
    if (auto parsed = conda::pypi::parse_core_metadata(text, what)) {
      ++stats_.metadata_cached;
      return parsed;
    }
  }
  std::string text;
  if (auto path = local_path(wheel.url)) {
    ENVB_ASSIGN_OR_RETURN(auto file, conda::pypi::read_dist_info_file(*path));
    text = std::move(file.content);
    ++stats_.wheels_read;
  } else if (wheel.has_metadata) {
    ENVB_ASSIGN_OR_RETURN(text, get(wheel.url + ".metadata", nullptr)
                                    .context("reading the metadata of " + what));
    if (!wheel.metadata_sha256.empty() && common::sha256_hex(text) != wheel.metadata_sha256)
      return fail(Errc::Integrity, what + ".metadata: sha256 " + common::sha256_hex(text) +
                                       ", the index says " + wheel.metadata_sha256);
    ++stats_.metadata_files;
  } else {
    // No metadata file: the wheel itself, into the package cache (installing finds it there).
    ENVB_ASSIGN_OR_RETURN(PackageRef ref, package_ref(wheel, options_.cache));
    PackageCacheOptions cache_options = options_.cache;
    cache_options.credentialed_channels = credentialed_;
    PackageCache cache(cache_options);
    ENVB_ASSIGN_OR_RETURN(auto fetched, cache.fetch_one(ref, *client_).context("reading " + what));
    ENVB_ASSIGN_OR_RETURN(auto file, conda::pypi::read_dist_info_file(fetched.archive));
    text = std::move(file.content);
    ++stats_.wheels_read;
  }
  ENVB_ASSIGN_OR_RETURN(CoreMetadata parsed, conda::pypi::parse_core_metadata(text, what));
  if (!cached.empty()) {
    ENVB_TRY(common::make_dirs(cache_dir));
    ENVB_TRY(common::write_file_atomic(cached, text));
  }
  return parsed;
}

Result<PackageRef> package_ref(const DistributionFile& wheel, const PackageCacheOptions& cache) {
  (void)cache;
  PackageRef ref;
  ref.url = wheel.url;
  ref.fn = wheel.filename;
  ref.sha256 = wheel.sha256;
  if (ref.sha256.empty()) {
    auto path = local_path(wheel.url);
    if (!path)
      return fail(Errc::Integrity, wheel.filename + " (" + common::redact_url(wheel.url) +
                                       "): the index gives no sha256 to verify it against")
          .with_hint("serve the file with a #sha256= fragment or from an index that lists hashes");
    ENVB_ASSIGN_OR_RETURN(ref.sha256, common::sha256_file(path->string()));
    ref.url = path->string();
  }
  return ref;
}

}  // namespace envbuild::builder::pypi
