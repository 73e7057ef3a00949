#include "builder/pypi/wheel_install.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/root_dir.hpp"
#include "conda/noarch_python.hpp"
#include "conda/pypi/metadata.hpp"
#include "conda/pypi/name.hpp"

namespace envbuild::builder::pypi {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxEntries = 1'000'000;
constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxMetadataFile = size_t{16} << 20;

struct TreeFile {
  std::string path;  // relative, '/'-separated
  uint64_t size = 0;
  bool executable = false;
};

// Every regular file below the extracted wheel, sorted; anything else is an Integrity error.
Result<std::vector<TreeFile>> list_files(const common::RootDir& root, const std::string& label) {
  std::vector<TreeFile> out;
  std::vector<std::pair<std::string, size_t>> pending = {{"", 0}};
  while (!pending.empty()) {
    auto [dir, depth] = pending.back();
    pending.pop_back();
    ENVB_ASSIGN_OR_RETURN(auto names, root.list(dir));
    for (const auto& name : names) {
      std::string path = dir.empty() ? name : dir + "/" + name;
      ENVB_ASSIGN_OR_RETURN(auto st, root.stat(path));
      if (!st) continue;
      if (S_ISDIR(st->st_mode)) {
        if (depth + 1 > kMaxDepth)
          return fail(Errc::Integrity, label + ": directories nested deeper than 64 levels");
        pending.emplace_back(path, depth + 1);
      } else if (S_ISREG(st->st_mode)) {
        out.push_back({path, static_cast<uint64_t>(st->st_size), (st->st_mode & 0111) != 0});
      } else {
        return fail(Errc::Integrity, label + ": '" + path + "' is not a regular file (wheels hold "
                                             "only files)");
      }
      if (out.size() + pending.size() > kMaxEntries)
        return fail(Errc::Integrity, label + ": more than 1000000 entries");
    }
  }
  std::sort(out.begin(), out.end(), [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; });
  return out;
}

// "lib/python3.11/site-packages" + "../../../bin/x" style paths for RECORD.
std::string relative_to(const std::string& path, const std::string& base) {
  std::vector<std::string> from, to;
  auto split = [](const std::string& p, std::vector<std::string>& out) {
    size_t start = 0;
    for (;;) {
      size_t slash = p.find('/', start);
      out.push_back(p.substr(start, slash == std::string::npos ? slash : slash - start));
      if (slash == std::string::npos) return;
      start = slash + 1;
    }
  };
  split(base, from);
  split(path, to);
  size_t common = 0;
  while (common < from.size() && common < to.size() && from[common] == to[common]) ++common;
  std::string out;
  for (size_t i = common; i < from.size(); ++i) out += "../";
  for (size_t i = common; i < to.size(); ++i) out += (i > common ? "/" : "") + to[i];
  return out;
}

class WheelPlanner {
 public:
  WheelPlanner(const WheelToInstall& wheel, const fs::path& extracted, const InstallTarget& target)
      : wheel_(wheel), extracted_(extracted), target_(target), label_(wheel_label(wheel)) {}

  Result<WheelPlan> plan();

 private:
  Result<void> find_dist_info(const std::vector<TreeFile>& files);
  Result<std::string> destination(const TreeFile& file, std::string& scheme);
  Result<void> add_file(const TreeFile& file, const std::string& dest, const std::string& scheme);
  Result<void> add_generated(const std::string& dest, const std::string& content, int mode,
                             bool has_shebang);
  Result<void> add_entry_points();
  Result<void> add_dist_info_files();

  const WheelToInstall& wheel_;
  const fs::path& extracted_;
  const InstallTarget& target_;
  std::string label_;
  std::optional<common::RootDir> root_;
  std::string dist_info_;  // "name-1.0.dist-info"
  std::string data_dir_;   // "name-1.0.data"
  std::string site_packages_;
  std::string metadata_name_;
  conda::TargetOs os_ = conda::TargetOs::Linux;
  std::map<std::string, conda::pypi::RecordRow> original_record_;  // by wheel path
  std::vector<conda::pypi::RecordRow> record_;
  WheelPlan plan_;
};

Result<void> WheelPlanner::find_dist_info(const std::vector<TreeFile>& files) {
  for (const auto& f : files) {
    auto slash = f.path.find('/');
    if (slash == std::string::npos) continue;
    std::string top = f.path.substr(0, slash);
    if (!top.ends_with(".dist-info") || top == dist_info_) continue;
    if (!dist_info_.empty())
      return fail(Errc::Integrity, label_ + ": two .dist-info directories ('" + dist_info_ +
                                       "', '" + top + "')");
    dist_info_ = top;
  }
  if (dist_info_.empty()) return fail(Errc::Integrity, label_ + ": no .dist-info directory");
  const std::string stem = dist_info_.substr(0, dist_info_.size() - 10);
  if (conda::pypi::normalize_name(stem.substr(0, stem.find('-'))) != wheel_.name)
    return fail(Errc::Integrity, label_ + ": its .dist-info is '" + dist_info_ + "'");
  data_dir_ = stem + ".data";
  ENVB_ASSIGN_OR_RETURN(auto metadata, root_->read_regular(dist_info_ + "/METADATA", kMaxMetadataFile));
  if (!metadata) return fail(Errc::Integrity, label_ + ": no " + dist_info_ + "/METADATA");
  ENVB_ASSIGN_OR_RETURN(auto core, conda::pypi::parse_core_metadata(*metadata, label_));
  metadata_name_ = core.name;
  ENVB_ASSIGN_OR_RETURN(auto wheel_file, root_->read_regular(dist_info_ + "/WHEEL", kMaxMetadataFile));
  if (!wheel_file) return fail(Errc::Integrity, label_ + ": no " + dist_info_ + "/WHEEL");
  ENVB_TRY(conda::pypi::parse_wheel_info(*wheel_file, label_ + " WHEEL"));
  ENVB_ASSIGN_OR_RETURN(auto record, root_->read_regular(dist_info_ + "/RECORD", size_t{64} << 20));
  if (record) {
    ENVB_ASSIGN_OR_RETURN(auto rows, conda::pypi::parse_record(*record, label_ + " RECORD"));
    for (auto& row : rows) original_record_[row.path] = row;
  }
  return ok();
}

Result<std::string> WheelPlanner::destination(const TreeFile& file, std::string& scheme) {
  scheme.clear();
  if (!file.path.starts_with(data_dir_ + "/")) return site_packages_ + "/" + file.path;
  std::string rest = file.path.substr(data_dir_.size() + 1);
  auto slash = rest.find('/');
  if (slash == std::string::npos)
    return fail(Errc::Integrity, label_ + ": '" + file.path + "' is not in a .data scheme");
  scheme = rest.substr(0, slash);
  rest = rest.substr(slash + 1);
  if (scheme == "purelib" || scheme == "platlib") return site_packages_ + "/" + rest;
  if (scheme == "scripts") return "bin/" + rest;
  if (scheme == "data") return rest;
  if (scheme == "headers") {
    const auto& py = *target_.python;
    return "include/python" + std::to_string(py.major) + "." + std::to_string(py.minor) + "/" +
           metadata_name_ + "/" + rest;
  }
  return fail(Errc::Integrity, label_ + ": unknown .data scheme '" + scheme + "' ('" + file.path +
                                   "'; PEP 427 has purelib, platlib, scripts, data, headers)");
}

// A file written for this prefix (a script, a launcher, RECORD ...): staged, recorded, and with
// a relocation record when it starts with a shebang to the prefix's python.
Result<void> WheelPlanner::add_generated(const std::string& dest, const std::string& content,
                                         int mode, bool has_shebang) {
  fs::path out = target_.staging / "files" / dest;
  ENVB_TRY(common::make_dirs(out.parent_path()));
  ENVB_TRY(common::write_scratch_file(out, content, mode));
  if (has_shebang) {
    conda::PrefixReplacement self{target_.prefix, target_.prefix, conda::FileMode::Text, os_};
    ENVB_ASSIGN_OR_RETURN(auto patched, conda::replace_prefix(content, self));
    if (patched) {
      patched->record.path = dest;
      plan_.content.relocations.push_back(std::move(patched->record));
    }
  }
  plan_.content.files.push_back({dest, PlannedFile::Kind::File, out, {}, true, false});
  plan_.size += content.size();
  record_.push_back({relative_to(dest, site_packages_),
                     conda::pypi::record_hash_from_hex(common::sha256_hex(content)), content.size()});
  return ok();
}

Result<void> WheelPlanner::add_file(const TreeFile& file, const std::string& dest,
                                    const std::string& scheme) {
  if (!common::is_safe_relative_path(dest) || dest.find("//") != std::string::npos)
    return fail(Errc::Integrity, label_ + ": '" + file.path + "' would go outside the prefix");
  if (scheme == "scripts") {
    ENVB_ASSIGN_OR_RETURN(auto text, root_->read_regular(file.path, size_t{64} << 20));
    // PEP 427: a script whose first line is `#!python` (or `#!pythonw`) runs with the
    // environment's python.
    if (text && (text->starts_with("#!python\n") || text->starts_with("#!python\r\n") ||
                 text->starts_with("#!pythonw\n") || text->starts_with("#!python "))) {
      std::string rest = text->substr(text->find('\n') + 1);
      return add_generated(dest, conda::python_shebang(target_.prefix, os_) + rest, 0755, true);
    }
    if (text && !file.executable) return add_generated(dest, *text, 0755, false);
  }
  plan_.content.files.push_back(
      {dest, PlannedFile::Kind::File, extracted_ / file.path, {}, false, false});
  plan_.size += file.size;
  conda::pypi::RecordRow row{relative_to(dest, site_packages_), "", file.size};
  // The wheel's own RECORD gives the hash of a file installed unchanged; a row that does not
  // match the file's size is not trusted.
  if (auto it = original_record_.find(file.path);
      it != original_record_.end() && it->second.size == file.size && it->second.hash.starts_with("sha256=")) {
    row.hash = it->second.hash;
  } else {
    ENVB_ASSIGN_OR_RETURN(std::string hex, common::sha256_file((extracted_ / file.path).string()));
    row.hash = conda::pypi::record_hash_from_hex(hex);
  }
  record_.push_back(std::move(row));
  return ok();
}

Result<void> WheelPlanner::add_entry_points() {
  ENVB_ASSIGN_OR_RETURN(auto text, root_->read_regular(dist_info_ + "/entry_points.txt", kMaxMetadataFile));
  if (!text) return ok();
  ENVB_ASSIGN_OR_RETURN(auto entry_points,
                        conda::pypi::parse_entry_points(*text, label_ + " entry_points.txt"));
  for (const auto& ep : entry_points)
    ENVB_TRY(add_generated("bin/" + ep.name,
                           conda::python_shebang(target_.prefix, os_) +
                               conda::pypi::entry_point_launcher(ep),
                           0755, true));
  return ok();
}

Result<void> WheelPlanner::add_dist_info_files() {
  const std::string dir = site_packages_ + "/" + dist_info_ + "/";
  ENVB_TRY(add_generated(dir + "INSTALLER", "envbuild\n", 0644, false));
  if (wheel_.requested) ENVB_TRY(add_generated(dir + "REQUESTED", "", 0644, false));
  if (wheel_.direct_url) {
    nlohmann::json direct = {
        {"url", wheel_.url},
        {"archive_info", {{"hash", "sha256=" + wheel_.sha256}, {"hashes", {{"sha256", wheel_.sha256}}}}}};
    ENVB_TRY(add_generated(dir + "direct_url.json", direct.dump() + "\n", 0644, false));
  }
  // RECORD lists itself without a hash (PEP 376), after every other row.
  std::sort(record_.begin(), record_.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  record_.push_back({dist_info_ + "/RECORD", "", std::nullopt});
  const std::string text = conda::pypi::to_record_text(record_);
  fs::path out = target_.staging / "files" / (dir + "RECORD");
  ENVB_TRY(common::make_dirs(out.parent_path()));
  ENVB_TRY(common::write_scratch_file(out, text));
  plan_.content.files.push_back({dir + "RECORD", PlannedFile::Kind::File, out, {}, true, false});
  plan_.size += text.size();
  return ok();
}

Result<WheelPlan> WheelPlanner::plan() {
  if (!target_.python)
    return fail(Errc::InvalidInput, label_ + ": the environment has no python to install it for")
        .with_hint("add python to the environment's dependencies");
  os_ = conda::target_os_for_subdir(target_.subdir);
  site_packages_ = target_.python->site_packages(os_);
  plan_.wheel = wheel_;
  plan_.content.label = label_;
  plan_.content.staging = target_.staging;
  ENVB_ASSIGN_OR_RETURN(auto root, common::RootDir::open(extracted_));
  root_.emplace(std::move(root));
  ENVB_ASSIGN_OR_RETURN(auto files, list_files(*root_, label_));
  ENVB_TRY(find_dist_info(files));
  const std::string own = dist_info_ + "/";
  for (const auto& file : files) {
    // Written anew for this installation.
    if (file.path == own + "RECORD" || file.path == own + "INSTALLER" ||
        file.path == own + "REQUESTED" || file.path == own + "direct_url.json")
      continue;
    std::string scheme;
    ENVB_ASSIGN_OR_RETURN(std::string dest, destination(file, scheme));
    ENVB_TRY(add_file(file, dest, scheme));
  }
  ENVB_TRY(add_entry_points());
  ENVB_TRY(add_dist_info_files());
  std::sort(plan_.content.files.begin(), plan_.content.files.end(),
            [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; });
  for (size_t i = 1; i < plan_.content.files.size(); ++i)
    if (plan_.content.files[i].path == plan_.content.files[i - 1].path)
      return fail(Errc::Integrity, label_ + ": installs '" + plan_.content.files[i].path + "' twice");
  return std::move(plan_);
}

}  // namespace

std::string wheel_label(const WheelToInstall& wheel) {
  return wheel.name + "-" + wheel.version + " (wheel)";
}

Result<WheelPlan> plan_wheel(const WheelToInstall& wheel, const fs::path& extracted,
                             const InstallTarget& target) {
  return WheelPlanner(wheel, extracted, target).plan();
}

Result<void> check_overwrites(const std::vector<PackagePlan>& packages,
                              const std::vector<WheelPlan>& wheels) {
  std::map<std::string_view, std::string> owner;
  for (const auto& p : packages)
    for (const auto& f : p.files)
      owner.emplace(f.path, p.record.name + "-" + p.record.version.to_string() + "-" + p.record.build +
                                " (conda)");
  for (const auto& w : wheels)
    for (const auto& f : w.content.files) {
      auto [it, inserted] = owner.emplace(f.path, w.content.label);
      if (!inserted)
        return fail(Errc::InvalidInput, "the wheel " + w.content.label + " would overwrite '" +
                                            f.path + "' of " + it->second)
            .with_hint("install one of them only: drop the pip: requirement or the conda package");
    }
  return ok();
}

}  // namespace envbuild::builder::pypi
