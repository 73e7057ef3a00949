#include "builder/install/install.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <utility>

#include "builder/install/prepare.hpp"
#include "common/clock.hpp"
#include "common/format.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/json.hpp"
#include "common/parallel.hpp"
#include "common/root_dir.hpp"
#include "common/version.hpp"
#include "conda/package_archive.hpp"
#include "conda/package_metadata.hpp"
#include "conda/relocate_prefix.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;
using common::CreateDirs;
using common::RootDir;

namespace {

// Every read of an extracted package goes through a RootDir of it: the tree came from an
// untrusted archive, and none of its symlinks (info/paths.json -> ../../x, lib -> /etc) may be
// followed by us.

// An info/ file of `package`, "" when it has none.
Result<std::string> read_info_file(const RootDir& package, std::string_view relative) {
  ENVB_ASSIGN_OR_RETURN(auto text, package.read_regular(relative, conda::kMaxInfoFileBytes));
  return text ? std::move(*text) : std::string();
}

// info/ of an extracted package: paths.json, or the legacy files it supersedes.
Result<std::vector<conda::PathEntry>> read_paths(const RootDir& package) {
  ENVB_ASSIGN_OR_RETURN(auto paths_json,
                        package.read_regular("info/paths.json", conda::kMaxInfoFileBytes));
  if (paths_json) return conda::parse_paths_json(*paths_json, package.shown("info/paths.json"));
  ENVB_ASSIGN_OR_RETURN(std::string files, read_info_file(package, "info/files"));
  ENVB_ASSIGN_OR_RETURN(std::string has_prefix_text, read_info_file(package, "info/has_prefix"));
  ENVB_ASSIGN_OR_RETURN(std::string no_link, read_info_file(package, "info/no_link"));
  ENVB_ASSIGN_OR_RETURN(auto has_prefix,
                        conda::parse_has_prefix(has_prefix_text, package.shown("info/has_prefix")));
  std::vector<std::string> symlinks;
  std::istringstream lines(files);
  for (std::string line; std::getline(lines, line);) {
    // A hostile line ("../x") is refused when it is planned.
    auto st = line.empty() ? Result<std::optional<struct stat>>(std::nullopt) : package.stat(line);
    if (st && *st && S_ISLNK((*st)->st_mode)) symlinks.push_back(line);
  }
  return conda::paths_from_legacy(files, has_prefix, no_link, symlinks);
}

Result<std::optional<conda::LinkJson>> read_link_json(const RootDir& package) {
  ENVB_ASSIGN_OR_RETURN(auto text,
                        package.read_regular("info/link.json", conda::kMaxInfoFileBytes));
  if (!text) return std::optional<conda::LinkJson>();
  ENVB_ASSIGN_OR_RETURN(auto link, conda::parse_link_json(*text, package.shown("info/link.json")));
  return std::optional<conda::LinkJson>(std::move(link));
}

// The text of the symlink at `relative` beneath `root`.
Result<std::string> read_link(const RootDir& root, std::string_view relative) {
  ENVB_ASSIGN_OR_RETURN(common::DirEntry entry, root.parent_of(relative));
  std::string target(4096, '\0');  // PATH_MAX: no symlink holds more
  ssize_t n = ::readlinkat(entry.dir.get(), entry.name.c_str(), target.data(), target.size());
  if (n < 0) return common::errno_error("readlink", root.shown(relative), errno);
  target.resize(static_cast<size_t>(n));
  return target;
}

// A noarch: python package, by its record or by its info/link.json: it is planned for the
// environment's python.
bool is_noarch_python(const conda::PackageRecord& record,
                      const std::optional<conda::LinkJson>& link) {
  return record.noarch == conda::NoArchType::Python || (link && link->noarch_type == "python");
}

// Copies all of `in` to `out` (buffers of 1 MiB; a full disk is reported as ENOSPC with advice,
// which fs::copy_file's sendfile path reports as EIO).
Result<void> copy_contents(const common::Fd& in, const std::string& from, const common::Fd& out,
                           const std::string& to) {
  std::vector<std::byte> buffer(1 << 20);
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, in.read_some(buffer, from));
    if (n == 0) return ok();
    ENVB_TRY(out.write_all(std::span(buffer).first(n), to));
  }
}

// A private copy of the package's file `relative` at `to` (in the staging dir, ours), with the
// file's mode.
Result<void> copy_out_of(const RootDir& package, std::string_view relative, const fs::path& to) {
  ENVB_ASSIGN_OR_RETURN(common::Fd in, package.open_regular(relative));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0)
    return common::errno_error("fstat", package.shown(relative), errno);
  ENVB_TRY(common::make_dirs(to.parent_path()));
  const int mode = static_cast<int>(st.st_mode & 07777);
  ENVB_ASSIGN_OR_RETURN(
      common::Fd out,
      common::Fd::open(to.string(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode));
  ENVB_TRY(copy_contents(in, package.shown(relative), out, to.string()));
  if (::fchmod(out.get(), static_cast<mode_t>(mode)) != 0)
    return common::errno_error("fchmod", to.string(), errno);
  return ok();
}

// Names envbuild keeps in a prefix while installing (the staging dir, the .pyc list): a
// package may not put anything there.
bool is_ours(std::string_view path) {
  return path.starts_with(".envbuild-");
}

// A path of paths.json, checked and in the one form the prefix and the clobber and conflict
// checks use ("./a//b" is "a/b").
Result<std::string> planned_path(std::string_view path, const std::string& label) {
  auto normal = conda::normalize_entry_path(path);
  if (!normal || normal->empty() || is_ours(*normal))
    return fail(Errc::Integrity, label + ": unsafe path '" + std::string(path) + "' in paths.json");
  return std::move(*normal);
}

/// A noarch: python package's entry points: a launcher script each, written into the staging
/// area, recorded in the package's conda-meta record and, for its shebang, for relocation.
Result<void> plan_entry_points(const std::vector<conda::EntryPoint>& entry_points,
                               const std::string& label, const InstallTarget& target,
                               conda::TargetOs os, PackagePlan& plan,
                               conda::PrefixRecord& prefix_record) {
  for (const auto& entry_point : entry_points) {
    ENVB_ASSIGN_OR_RETURN(auto script, conda::entry_point_script(entry_point, target.prefix, os)
                                           .context("entry point of " + label));
    fs::path out = target.staging / "files" / script.path;
    ENVB_TRY(common::make_dirs(out.parent_path()));
    ENVB_TRY(common::write_scratch_file(out, script.content, static_cast<int>(script.mode)));
    // The launcher's shebang holds the prefix: record it so envrun can relocate it.
    conda::PrefixReplacement self{target.prefix, target.prefix, conda::FileMode::Text, os};
    ENVB_ASSIGN_OR_RETURN(auto patched, conda::replace_prefix(script.content, self));
    if (patched) {
      patched->record.path = script.path;
      plan.relocations.push_back(patched->record);
    }
    plan.files.push_back({script.path, PlannedFile::Kind::File, out, {}, true, false});
    conda::PrefixPathsEntry recorded;
    recorded.path = script.path;
    recorded.path_type = conda::PrefixPathType::UnixPythonEntryPoint;
    recorded.sha256 = common::sha256_hex(script.content);
    recorded.size_in_bytes = script.content.size();
    prefix_record.files.push_back(script.path);
    prefix_record.paths.push_back(std::move(recorded));
  }
  return ok();
}

}  // namespace

Result<PackagePlan> plan_package(const conda::PackageRecord& record, const fs::path& extracted,
                                 const std::string& requested_spec, const InstallTarget& target) {
  const std::string label = package_label(record);
  ENVB_ASSIGN_OR_RETURN(RootDir package, RootDir::open(extracted).context("reading " + label));
  PackagePlan plan;
  plan.record = record;
  plan.extracted = extracted;
  ENVB_ASSIGN_OR_RETURN(auto paths, read_paths(package).context("reading " + label));
  ENVB_ASSIGN_OR_RETURN(auto link, read_link_json(package).context("reading " + label));
  const bool noarch_python = is_noarch_python(record, link);
  if (noarch_python && !target.python)
    return fail(Errc::InvalidInput, label +
                                        " is a noarch: python package, but the environment "
                                        "has no python")
        .with_hint("add python to the environment's dependencies");
  const conda::TargetOs os = conda::target_os_for_subdir(target.subdir);

  conda::PrefixRecord prefix_record;
  prefix_record.record = record;
  prefix_record.requested_spec = requested_spec;
  prefix_record.link_type = 1;

  plan.staging = target.staging;
  plan.noarch_python = noarch_python;
  for (const auto& entry : paths) {
    ENVB_ASSIGN_OR_RETURN(const std::string path, planned_path(entry.path, label));
    ENVB_ASSIGN_OR_RETURN(
        const std::string dest,
        planned_path(
            noarch_python ? conda::noarch_python_target_path(path, *target.python, os) : path,
            label));
    fs::path source = extracted / path;
    conda::PrefixPathsEntry recorded;
    recorded.path = dest;
    recorded.sha256 = entry.sha256;
    recorded.size_in_bytes = entry.size_in_bytes;
    recorded.no_link = entry.no_link;
    if (entry.path_type == conda::PathType::Directory) continue;  // parents are implicit
    // One lstat per entry, beneath the package: it tells a symlink, a regular file and a
    // missing file apart, and a path through a symlink ("lib" -> /etc, then lib/passwd) is an
    // error.
    ENVB_ASSIGN_OR_RETURN(auto status, package.stat(path).context("planning " + label));
    if (entry.path_type == conda::PathType::SoftLink || (status && S_ISLNK(status->st_mode))) {
      if (!status || !S_ISLNK(status->st_mode))
        return fail(Errc::Integrity, label + ": " + path + " is listed as a symlink but " +
                                         "is not one in the extracted package");
      ENVB_ASSIGN_OR_RETURN(std::string target_text, read_link(package, path));
      plan.files.push_back(
          {dest, PlannedFile::Kind::Symlink, {}, std::move(target_text), false, false});
      recorded.path_type = conda::PrefixPathType::SoftLink;
    } else {
      if (!status || !S_ISREG(status->st_mode))
        return fail(Errc::Integrity, label + ": " + path +
                                         (status ? " is not a regular file in the package"
                                                 : " is missing from the package"));
      PlannedFile file{dest, PlannedFile::Kind::File, source, {}, false, entry.no_link};
      recorded.path_type = conda::PrefixPathType::HardLink;
      if (!entry.prefix_placeholder.empty()) {
        fs::path copy = target.staging / "files" / dest;
        ENVB_TRY(copy_out_of(package, path, copy).context("planning " + label));
        conda::PrefixReplacement replacement{entry.prefix_placeholder, target.prefix,
                                             entry.file_mode, os};
        ENVB_ASSIGN_OR_RETURN(auto relocation,
                              conda::replace_prefix_in_file(copy, replacement, dest)
                                  .context("patching " + label + ": " + path));
        recorded.file_mode = entry.file_mode;
        recorded.prefix_placeholder = entry.prefix_placeholder;
        if (relocation) {
          file.source = copy;
          file.private_copy = true;
          plan.relocations.push_back(std::move(*relocation));
          ENVB_ASSIGN_OR_RETURN(recorded.sha256_in_prefix, common::sha256_file(copy.string()));
        } else {
          std::error_code ec;
          fs::remove(copy, ec);
        }
      }
      plan.files.push_back(std::move(file));
      std::string name = fs::path(dest).filename().string();
      if (dest.rfind("bin/.", 0) == 0 &&
          (name.ends_with("-post-link.sh") || name.ends_with("-pre-link.sh")))
        plan.link_scripts.push_back(dest);
    }
    prefix_record.files.push_back(dest);
    prefix_record.paths.push_back(std::move(recorded));
  }

  if (noarch_python && link)
    ENVB_TRY(plan_entry_points(link->entry_points, label, target, os, plan, prefix_record));

  // The conda-meta record travels with the package (and so with its layer).
  std::string meta_path = "conda-meta/" + prefix_record.file_name();
  fs::path meta_file = target.staging / "files" / meta_path;
  ENVB_TRY(common::make_dirs(meta_file.parent_path()));
  ENVB_TRY(common::write_scratch_file(meta_file, conda::to_json_string(prefix_record)));
  plan.files.push_back({meta_path, PlannedFile::Kind::File, meta_file, {}, true, false});

  std::sort(plan.files.begin(), plan.files.end(),
            [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; });
  return plan;
}

Result<std::optional<conda::PythonInfo>> python_of(
    const std::vector<conda::PackageRecord>& records) {
  for (const auto& record : records) {
    if (record.name != "python") continue;
    ENVB_ASSIGN_OR_RETURN(auto info,
                          conda::PythonInfo::from_version(record.version.to_string(),
                                                          record.python_site_packages_path));
    return std::optional<conda::PythonInfo>(info);
  }
  return std::optional<conda::PythonInfo>();
}

std::string host_subdir() {
  struct utsname u {};
  ::uname(&u);
  std::string machine = u.machine;
  if (machine == "x86_64") return "linux-64";
  if (machine == "aarch64") return "linux-aarch64";
  if (machine == "ppc64le") return "linux-ppc64le";
  if (machine == "s390x") return "linux-s390x";
  return "linux-" + machine;
}

std::vector<size_t> topological_order(const std::vector<conda::PackageRecord>& records) {
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < records.size(); ++i) by_name[records[i].name] = i;
  std::vector<std::set<size_t>> deps(records.size());
  std::vector<std::set<size_t>> dependents(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    for (const auto& dep : records[i].depends) {
      std::string name = dep.substr(0, dep.find_first_of(" <>=!~["));
      auto it = by_name.find(name);
      if (it == by_name.end() || it->second == i) continue;
      deps[i].insert(it->second);
      dependents[it->second].insert(i);
    }
  }
  auto by_label = [&](size_t a, size_t b) { return records[a].name > records[b].name; };
  std::priority_queue<size_t, std::vector<size_t>, decltype(by_label)> ready(by_label);
  std::vector<size_t> remaining(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    remaining[i] = deps[i].size();
    if (remaining[i] == 0) ready.push(i);
  }
  std::vector<size_t> order;
  std::vector<bool> done(records.size(), false);
  while (order.size() < records.size()) {
    if (ready.empty()) {
      // A dependency cycle: break it at the alphabetically first package left.
      for (size_t i : [&] {
             std::vector<size_t> left;
             for (size_t j = 0; j < records.size(); ++j)
               if (!done[j]) left.push_back(j);
             std::sort(left.begin(), left.end(),
                       [&](size_t a, size_t b) { return records[a].name < records[b].name; });
             return left;
           }()) {
        ready.push(i);
        break;
      }
    }
    size_t next = ready.top();
    ready.pop();
    if (done[next]) continue;
    done[next] = true;
    order.push_back(next);
    for (size_t d : dependents[next])
      if (!done[d] && remaining[d] > 0 && --remaining[d] == 0) ready.push(d);
  }
  return order;
}

std::vector<std::pair<std::string, std::string>> environment_files(
    const std::vector<PackagePlan>& plans, const std::string& prefix,
    const PrefixInstallOptions& options) {
  std::vector<std::pair<std::string, std::string>> files;
  // conda-meta/history marks a directory as an environment; no wall-clock time, so that the
  // same environment gives the same bytes.
  std::string history = "==> envbuild " + std::string(kVersion) + " <==\n# cmd: envbuild install\n";
  for (const auto& spec : options.requested_specs) history += "# update specs: " + spec + "\n";
  for (const auto& plan : plans) {
    const auto& r = plan.record;
    history += "+" + (r.channel.empty() ? std::string() : r.channel + "::") + r.name + "-" +
               r.version.to_string() + "-" + r.build + "\n";
  }
  files.emplace_back("conda-meta/history", history);
  if (!options.variables.empty()) {
    nlohmann::json vars = nlohmann::json::object();
    for (const auto& [k, v] : options.variables) vars[k] = v;
    files.emplace_back("conda-meta/state", nlohmann::json{{"env_vars", vars}}.dump(2) + "\n");
    files.emplace_back("etc/conda/env_vars.d/envbuild-variables.json", vars.dump(2) + "\n");
  }
  conda::RelocationIndex index;
  index.prefix = prefix;
  for (const auto& plan : plans)
    index.files.insert(index.files.end(), plan.relocations.begin(), plan.relocations.end());
  for (const auto& wheel : options.wheels)
    index.files.insert(index.files.end(), wheel.relocations.begin(), wheel.relocations.end());
  files.emplace_back(std::string(conda::kRelocationIndexPath), conda::to_json_string(index));
  return files;
}

namespace {

// ---- Placing files: every operation beneath the prefix's descriptor -------------------------

// The directory holding a path beneath a root, the last one kept open: a plan's files are
// sorted by path, so most share their directory with the file before. Paths are in
// planned_path()'s form.
class DirCache {
 public:
  // The directory's descriptor and the path's last component; with CreateDirs::Yes missing
  // directories are made. No symlink is followed on the way (RootDir).
  Result<std::pair<int, std::string>> parent(const RootDir& root, std::string_view relative,
                                             CreateDirs create) {
    const size_t slash = relative.rfind('/');
    const std::string_view dir =
        slash == std::string_view::npos ? std::string_view() : relative.substr(0, slash);
    std::string name(slash == std::string_view::npos ? relative : relative.substr(slash + 1));
    if (root_ != &root || !fd_.valid() || dir != dir_) {
      auto entry = root.parent_of(relative);
      if (!entry && entry.error().code() == Errc::NotFound && create == CreateDirs::Yes)
        entry = root.parent_of(relative, CreateDirs::Yes);
      if (!entry) return std::move(entry).error();
      fd_ = std::move(entry->dir);
      dir_ = dir;
      root_ = &root;
    }
    return std::pair<int, std::string>(fd_.get(), std::move(name));
  }

 private:
  const RootDir* root_ = nullptr;
  std::string dir_;
  common::Fd fd_;
};

// A plan's source trees, opened once: its extracted package and its staging dir.
struct PlanTrees {
  std::optional<RootDir> extracted;
  std::optional<RootDir> staging;
};

Result<PlanTrees> open_trees(const PackagePlan& plan) {
  PlanTrees trees;
  if (!plan.extracted.empty()) {
    ENVB_ASSIGN_OR_RETURN(RootDir extracted, RootDir::open(plan.extracted));
    trees.extracted.emplace(std::move(extracted));
  }
  if (!plan.staging.empty()) {
    ENVB_ASSIGN_OR_RETURN(RootDir staging, RootDir::open(plan.staging));
    trees.staging.emplace(std::move(staging));
  }
  return trees;
}

// `source` as a path beneath `root`, the tree it was planned from.
Result<std::string_view> beneath(const fs::path& root, const fs::path& source) {
  std::string_view r = root.native();
  const std::string_view s = source.native();
  while (r.size() > 1 && r.back() == '/') r.remove_suffix(1);
  if (s.size() > r.size() + 1 && s.substr(0, r.size()) == r && s[r.size()] == '/')
    return s.substr(r.size() + 1);
  return fail(Errc::Internal, source.string() + " is not in " + root.string());
}

// Makes room at `name` in `dir` for a file: a file or symlink there goes (not what a symlink
// points to), so does an empty directory; one with something in it is an error.
Result<void> remove_entry(int dir, const std::string& name, const std::string& shown) {
  if (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) return ok();
  if (errno != EISDIR) return common::errno_error("unlink", shown, errno);
  if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return ok();
  if (errno == ENOTEMPTY || errno == EEXIST)
    return fail(Errc::Integrity, shown + ": a directory with files in it where a file goes");
  return common::errno_error("rmdir", shown, errno);
}

// Copies the regular file `from_name` in `from_dir` to a new `to_name` in `to_dir`, with its
// mode; a partial copy is removed.
Result<void> copy_at(int from_dir, const std::string& from_name, const std::string& from_shown,
                     int to_dir, const std::string& to_name, const std::string& to_shown) {
  int raw = ::openat(from_dir, from_name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (raw < 0) return common::errno_error("openat", from_shown, errno);
  common::Fd in(raw);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return common::errno_error("fstat", from_shown, errno);
  if (!S_ISREG(st.st_mode)) return fail(Errc::Integrity, from_shown + ": not a regular file");
  const mode_t mode = st.st_mode & 07777;
  raw =
      ::openat(to_dir, to_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (raw < 0) return common::errno_error("openat", to_shown, errno);
  common::Fd out(raw);
  auto copied = [&]() -> Result<void> {
    ENVB_TRY(copy_contents(in, from_shown, out, to_shown));
    if (::fchmod(out.get(), mode) != 0) return common::errno_error("fchmod", to_shown, errno);
    return ok();
  }();
  if (!copied) {
    (void)::unlinkat(to_dir, to_name.c_str(), 0);
    return std::move(copied).error().with_context("copying " + from_shown + " -> " + to_shown);
  }
  return ok();
}

// Puts one file of a wheel into the prefix, resolved beneath it (common::RootDir): a wheel is
// untrusted, and a conda package may have made a directory of the prefix a symlink, which its
// files must not be written through. Its source is ours (the package cache's extracted wheel or
// the staging dir). Hard linked when it can be, else copied into a file created here (O_EXCL:
// nothing there is followed or reused).
Result<void> place_wheel_file(const RootDir& prefix, const PlannedFile& file,
                              PrefixInstallReport& report) {
  const std::string shown = prefix.shown(file.path);
  if (file.kind != PlannedFile::Kind::File)
    return fail(Errc::Integrity, shown + ": a wheel installs files only");
  ENVB_ASSIGN_OR_RETURN(auto parent, prefix.parent_of(file.path, CreateDirs::Yes));
  // Planning refused a path shared with a package or another wheel; what is there now is a
  // file a link script wrote: replaced, as pip would.
  ENVB_TRY(remove_entry(parent.dir.get(), parent.name, shown));
  if (!file.no_link &&
      ::linkat(AT_FDCWD, file.source.c_str(), parent.dir.get(), parent.name.c_str(), 0) == 0) {
    ++(file.private_copy ? report.copied : report.hardlinked);
    return ok();
  }
  ENVB_ASSIGN_OR_RETURN(auto in, common::Fd::open_read(file.source.string()));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return common::errno_error("fstat", file.source.string(), errno);
  const int raw = ::openat(parent.dir.get(), parent.name.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777);
  if (raw < 0) return common::errno_error("openat", shown, errno);
  common::Fd out(raw);
  ENVB_TRY(copy_contents(in, file.source.string(), out, shown));
  ++report.copied;
  return ok();
}

// Puts planned files into a prefix through descriptors: each file's parent is resolved beneath
// the prefix without following a symlink (and made when missing), its source beneath the
// package's extracted tree or staging dir likewise, and linkat, renameat, symlinkat and openat
// act on those descriptors. Whatever packages or pre-link scripts left in the prefix, nothing
// outside it is touched. One per thread.
class FilePlacer {
 public:
  explicit FilePlacer(const RootDir& prefix) : prefix_(prefix) {}

  // The prefix starts empty, so the usual case costs one link: whatever is already at the
  // file's place (EEXIST: a clobbered file of an earlier package, or one a pre-link script
  // wrote) is removed first and the link tried again. A file that cannot be hard linked
  // (another file system, no_link, fs.protected_hardlinks) is copied.
  Result<void> place(const PlannedFile& file, const PackagePlan& plan, const PlanTrees& trees,
                     PrefixInstallReport& report) {
    const std::string shown = prefix_.shown(file.path);
    ENVB_ASSIGN_OR_RETURN(auto dest, dest_dirs_.parent(prefix_, file.path, CreateDirs::Yes));
    // Plain names, not a structured binding: clang 14 (the fuzz build) cannot capture those.
    const int dest_dir = dest.first;
    const std::string& dest_name = dest.second;
    if (file.kind == PlannedFile::Kind::Symlink) {
      auto link = [&]() -> int {
        return ::symlinkat(file.target.c_str(), dest_dir, dest_name.c_str()) == 0 ? 0 : errno;
      };
      int err = link();
      if (err == EEXIST) {
        ENVB_TRY(remove_entry(dest_dir, dest_name, shown));
        err = link();
      }
      if (err != 0) return common::errno_error("symlinkat", shown, err);
      return ok();
    }
    const std::optional<RootDir>& tree = file.private_copy ? trees.staging : trees.extracted;
    if (!tree) return fail(Errc::Internal, shown + ": its plan has no tree to take it from");
    ENVB_ASSIGN_OR_RETURN(std::string_view relative,
                          beneath(file.private_copy ? plan.staging : plan.extracted, file.source));
    ENVB_ASSIGN_OR_RETURN(auto source, source_dirs_.parent(*tree, relative, CreateDirs::No));
    const int source_dir = source.first;
    const std::string& source_name = source.second;
    if (file.private_copy || !file.no_link) {
      auto once = [&]() -> int {
        int r = file.private_copy
                    ? ::renameat(source_dir, source_name.c_str(), dest_dir, dest_name.c_str())
                    : ::linkat(source_dir, source_name.c_str(), dest_dir, dest_name.c_str(), 0);
        return r == 0 ? 0 : errno;
      };
      int err = once();
      if (err == EEXIST || err == EISDIR || err == ENOTEMPTY) {
        ENVB_TRY(remove_entry(dest_dir, dest_name, shown));
        err = once();
      }
      if (err == 0) {
        ++(file.private_copy ? report.copied : report.hardlinked);
        return ok();
      }
    }
    ENVB_TRY(remove_entry(dest_dir, dest_name, shown));
    ENVB_TRY(copy_at(source_dir, source_name, tree->shown(relative), dest_dir, dest_name, shown));
    ++report.copied;
    return ok();
  }

 private:
  const RootDir& prefix_;
  DirCache dest_dirs_;
  DirCache source_dirs_;
};

// Refuses, before anything is placed, a planned path below another planned path: below a
// symlink (a package's symlinks are created, never followed: a later package's share/esc/x must
// not land wherever share/esc points, where conda would follow it) or below a file. Both
// packages are named, whichever comes first. `own` are the files envbuild writes itself.
Result<void> check_paths_between_packages(const std::vector<PackagePlan>& plans,
                                          const std::vector<std::string>& own) {
  struct Owner {
    size_t plan;
    const PlannedFile* file;
  };
  std::vector<std::string> labels;
  std::unordered_map<std::string_view, Owner> owners;
  for (size_t p = 0; p < plans.size(); ++p) {
    labels.push_back(package_label(plans[p].record));
    for (const auto& f : plans[p].files) owners.insert_or_assign(f.path, Owner{p, &f});
  }
  auto check = [&](std::string_view path, const std::string& who) -> Result<void> {
    for (size_t slash = path.find('/'); slash != std::string_view::npos;
         slash = path.find('/', slash + 1)) {
      auto it = owners.find(path.substr(0, slash));
      if (it == owners.end()) continue;
      const PlannedFile& above = *it->second.file;
      const bool symlink = above.kind == PlannedFile::Kind::Symlink;
      return fail(Errc::Integrity,
                  who + " installs " + std::string(path) + " below " + above.path + ", which " +
                      labels[it->second.plan] + " installs as " +
                      (symlink ? "a symlink (-> " + above.target + ")" : std::string("a file")))
          .with_hint(symlink ? "the packages conflict: envbuild never writes through a symlink "
                               "that a package installed (conda would follow it)"
                             : "the packages conflict");
    }
    return ok();
  };
  for (size_t p = 0; p < plans.size(); ++p)
    for (const auto& f : plans[p].files) ENVB_TRY(check(f.path, labels[p]));
  for (const auto& path : own) ENVB_TRY(check(path, "envbuild"));
  return ok();
}

// ---- Link scripts, .pyc files, environment files --------------------------------------------

// Runs one link script with conda's environment. `file` is what runs: the installed script
// for post-link, the package's own copy (in the extracted cache) for pre-link, since its files
// are not linked yet; `script` (prefix-relative) names it in messages.
Result<void> run_link_script(const fs::path& prefix, const PackagePlan& plan,
                             const std::string& script, const fs::path& file) {
  const auto& r = plan.record;
  pid_t pid = ::fork();
  if (pid < 0) return common::errno_error("fork", script, errno);
  if (pid == 0) {
    ::setenv("PREFIX", prefix.c_str(), 1);
    ::setenv("ROOT_PREFIX", prefix.c_str(), 1);
    ::setenv("PKG_NAME", r.name.c_str(), 1);
    ::setenv("PKG_VERSION", r.version.to_string().c_str(), 1);
    ::setenv("PKG_BUILDNUM", std::to_string(r.build_number).c_str(), 1);
    std::string path = (prefix / "bin").string() + ":" +
                       (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    ::setenv("PATH", path.c_str(), 1);
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // keep our stdout for --json
    if (::chdir(prefix.c_str()) != 0) ::_exit(126);
    const char* shell = ::access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
    ::execl(shell, shell, file.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(Errc::Io, "link script " + script + " of " + package_label(r) + " failed (exit " +
                              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")")
        .with_hint("rerun with --no-link-scripts to skip it, or fix the package");
  return ok();
}

using Warn = std::function<void(const std::string&)>;

// Link scripts and their bookkeeping: whether one may run here, and the $PREFIX/.messages.txt
// a script leaves, shown and removed (read beneath the prefix: a symlink there is not followed).
class ScriptRunner {
 public:
  ScriptRunner(const fs::path& prefix_dir, const RootDir& prefix, bool scripts_here,
               const Warn& warn, PrefixInstallReport& report)
      : prefix_dir_(prefix_dir),
        prefix_(prefix),
        scripts_here_(scripts_here),
        warn_(warn),
        report_(report) {}

  // A script runs only when the package itself is for this host too: a lock file may name a
  // package of another platform (an osx-64 build's post-link would run linux's sh on macOS
  // assumptions), and a noarch or subdir-less record is as portable as its prefix.
  [[nodiscard]] bool runs_here(const PackagePlan& plan) const {
    const std::string& own = plan.record.subdir;
    return scripts_here_ && (own.empty() || own == "noarch" || own == host_subdir());
  }

  // Runs `script` of `plan` from `file` ("pre-link" or "post-link" is `kind`), or records it
  // as pending when it may not run here.
  Result<void> run(const PackagePlan& plan, const std::string& script, const fs::path& file,
                   const std::string& kind) {
    const std::string& name = plan.record.name;
    if (!runs_here(plan)) {
      report_.scripts_pending.push_back(LinkScript{name, script}.note());
      return ok();
    }
    ENVB_TRY(run_link_script(prefix_dir_, plan, script, file));
    report_.scripts_run.push_back(name + ": " + kind);
    constexpr std::string_view kMessages = ".messages.txt";
    auto text = prefix_.read_regular(kMessages, size_t{1} << 20);
    if (!text)
      warn_(name + " " + kind + ": ignoring " + std::string(kMessages) + ": " +
            text.error().to_string());
    else if (*text && !(*text)->empty())
      warn_(name + " " + kind + ": " + **text);
    return prefix_.remove_all(kMessages);
  }

 private:
  const fs::path& prefix_dir_;
  const RootDir& prefix_;
  bool scripts_here_;
  const Warn& warn_;
  PrefixInstallReport& report_;
};

// The .py files of the noarch python packages, per plan.
std::vector<std::vector<std::string>> noarch_sources(const std::vector<PackagePlan>& plans) {
  std::vector<std::vector<std::string>> sources(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!plans[i].noarch_python) continue;
    for (const auto& f : plans[i].files)
      if (f.kind == PlannedFile::Kind::File && f.path.ends_with(".py") &&
          f.path.rfind("bin/", 0) != 0)
        sources[i].push_back(f.path);
  }
  return sources;
}

// Runs `python -Wi -m compileall -q -l -i LIST -j 0` in the prefix, as conda does; a failure is
// a warning (python compiles on import instead), as in conda.
Result<void> run_compileall(const fs::path& prefix_dir, const RootDir& prefix,
                            const std::string& list_text, const Warn& warn) {
  constexpr std::string_view kList = ".envbuild-pyc-list";
  ENVB_TRY(prefix.write_atomic(kList, list_text));
  const fs::path python = prefix_dir / "bin" / "python";
  const fs::path list = prefix_dir / kList;
  pid_t pid = ::fork();
  if (pid < 0) return common::errno_error("fork", python.string(), errno);
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // keep our stdout for --json
    if (::chdir(prefix_dir.c_str()) != 0) ::_exit(126);
    ::execl(python.c_str(), python.c_str(), "-Wi", "-m", "compileall", "-q", "-l", "-i",
            list.c_str(), "-j", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ENVB_TRY(prefix.remove_all(kList));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    warn("python -m compileall failed for some noarch python files (exit " +
         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
         "); they are compiled on import instead");
  return ok();
}

// Adds the .pyc files compileall wrote to each package's conda-meta record (path_type
// pyc_file). Each x.py gives __pycache__/x.<tag>.pyc, the tag being the python's (cpython-311).
Result<void> record_pyc_files(const std::vector<PackagePlan>& plans,
                              const std::vector<std::vector<std::string>>& sources,
                              const RootDir& prefix, PrefixInstallReport& report) {
  std::map<std::string, std::vector<std::string>> listings;
  auto cached_pyc = [&](const std::string& py) -> std::optional<std::string> {
    fs::path rel(py);
    const std::string dir = (rel.parent_path() / "__pycache__").string();
    auto [it, inserted] = listings.try_emplace(dir);
    // A __pycache__ that is no real directory beneath the prefix holds no .pyc of ours.
    if (inserted) it->second = prefix.list(dir).value_or(std::vector<std::string>{});
    std::string stem = rel.stem().string() + ".";
    for (const auto& name : it->second)
      if (name.rfind(stem, 0) == 0 && name.ends_with(".pyc") &&
          name.find('.', stem.size()) == name.size() - 4)
        return dir + "/" + name;
    return std::nullopt;
  };
  for (size_t i = 0; i < plans.size(); ++i) {
    if (sources[i].empty()) continue;
    auto meta = std::find_if(plans[i].files.begin(), plans[i].files.end(), [](const auto& f) {
      return f.path.rfind("conda-meta/", 0) == 0 && f.path.ends_with(".json");
    });
    if (meta == plans[i].files.end()) continue;
    const std::string shown = prefix.shown(meta->path);
    ENVB_ASSIGN_OR_RETURN(auto text, prefix.read_regular(meta->path));
    if (!text) return fail(Errc::Internal, shown + ": missing after linking");
    ENVB_ASSIGN_OR_RETURN(auto json, common::parse_json(*text, shown, Errc::Integrity));
    if (!json.is_object()) return fail(Errc::Integrity, shown + ": not a JSON object");
    auto& files = json["files"];
    auto& paths = json["paths_data"]["paths"];
    for (const auto& py : sources[i]) {
      auto pyc = cached_pyc(py);
      if (!pyc) continue;
      files.push_back(*pyc);
      if (paths.is_array()) paths.push_back({{"_path", *pyc}, {"path_type", "pyc_file"}});
      ++report.pyc_compiled;
    }
    ENVB_TRY(prefix.write_atomic(meta->path, json.dump(2) + "\n", 0644, RootDir::Sync::Yes));
  }
  return ok();
}

// Compiles the .py files of the noarch python packages with the prefix's python when the
// platform is the host's, and records the .pyc files.
Result<void> compile_noarch_pyc(const std::vector<PackagePlan>& plans, const fs::path& prefix_dir,
                                const RootDir& prefix, const std::string& subdir,
                                PrefixInstallReport& report, const Warn& warn) {
  const auto sources = noarch_sources(plans);
  std::string list;
  size_t count = 0;
  for (const auto& paths : sources)
    for (const auto& p : paths) {
      list += p + "\n";
      ++count;
    }
  if (count == 0) return ok();
  const fs::path python = prefix_dir / "bin" / "python";
  if (subdir != host_subdir() || ::access(python.c_str(), X_OK) != 0) {
    warn("not compiling " + std::to_string(count) + " .py file(s) of noarch python packages (" +
         (subdir != host_subdir() ? "platform " + subdir + " is not this host's"
                                  : std::string("no bin/python in the prefix")) +
         "); python compiles them on first import where the prefix is writable");
    return ok();
  }
  ENVB_TRY(run_compileall(prefix_dir, prefix, list, warn));
  return record_pyc_files(plans, sources, prefix, report);
}

// Writes `content` at `path` beneath `root`, making its directories, durably.
Result<void> write_beneath(const RootDir& root, std::string_view path, std::string_view content) {
  if (auto slash = path.rfind('/'); slash != std::string_view::npos)
    ENVB_TRY(root.open_dir(path.substr(0, slash), CreateDirs::Yes));
  return root.write_atomic(path, content, 0644, RootDir::Sync::Yes);
}

std::string lines_of(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += item + "\n";
  return out;
}

// The files envbuild writes into a prefix besides the packages'.
std::vector<std::string> own_paths(const std::vector<PackagePlan>& plans, const fs::path& prefix,
                                   const PrefixInstallOptions& options) {
  std::vector<std::string> paths = {"conda-meta/envbuild-clobbers",
                                    "conda-meta/envbuild-pending-scripts"};
  for (const auto& [path, content] : environment_files(plans, prefix.string(), options))
    paths.push_back(path);
  return paths;
}

// The environment files, clobbers and pending scripts; conda-meta/history last, since it marks
// the prefix as a complete environment.
Result<void> write_environment_files(const std::vector<PackagePlan>& plans,
                                     const fs::path& prefix_dir, const RootDir& prefix,
                                     const PrefixInstallOptions& options,
                                     const PrefixInstallReport& report) {
  std::string history;
  for (auto& [path, content] : environment_files(plans, prefix_dir.string(), options)) {
    if (path == "conda-meta/history")
      history = std::move(content);
    else
      ENVB_TRY(write_beneath(prefix, path, content));
  }
  if (!report.clobbered.empty())
    ENVB_TRY(write_beneath(prefix, "conda-meta/envbuild-clobbers", lines_of(report.clobbered)));
  if (!report.scripts_pending.empty())
    ENVB_TRY(write_beneath(prefix, "conda-meta/envbuild-pending-scripts",
                           lines_of(report.scripts_pending)));
  if (!history.empty()) ENVB_TRY(write_beneath(prefix, "conda-meta/history", history));
  return ok();
}

// Places every plan's files in link order, pre-link scripts before their package's files (from
// the package's copy: its own files are not linked yet). Pre-link scripts must see the files
// of the packages linked before theirs: with any, the files go in one package after the other.
// Without, the order only decides clobbers, so each path is placed once, from the last package
// that has it (the tree an in-order link leaves), by `jobs` threads.
Result<void> link_files(const std::vector<PackagePlan>& plans, const std::vector<PlanTrees>& trees,
                        const RootDir& prefix, size_t jobs, ScriptRunner& scripts,
                        PrefixInstallReport& report) {
  const bool in_order = std::any_of(plans.begin(), plans.end(), [](const PackagePlan& plan) {
    return std::any_of(plan.link_scripts.begin(), plan.link_scripts.end(),
                       [](const std::string& s) { return s.ends_with("-pre-link.sh"); });
  });
  std::vector<std::vector<const PlannedFile*>> deferred(plans.size());
  std::unordered_map<std::string_view, size_t> last_owner;  // path -> index of its last plan
  for (size_t p = 0; p < plans.size(); ++p) {
    const PackagePlan& plan = plans[p];
    for (const auto& script : plan.link_scripts) {
      if (!script.ends_with("-pre-link.sh")) continue;
      auto it = std::find_if(plan.files.begin(), plan.files.end(),
                             [&](const PlannedFile& f) { return f.path == script; });
      const fs::path file = it == plan.files.end() ? fs::path() : it->source;
      if (file.empty() && scripts.runs_here(plan)) continue;
      ENVB_TRY(scripts.run(plan, script, file, "pre-link"));
    }
    // The package's conda-meta record goes in last: a process killed midway must not leave a
    // record claiming files that are not there yet.
    std::vector<const PlannedFile*> ordered;
    for (const auto& file : plan.files)
      if (!file.path.starts_with("conda-meta/")) ordered.push_back(&file);
    for (const auto& file : plan.files)
      if (file.path.starts_with("conda-meta/")) ordered.push_back(&file);
    FilePlacer placer(prefix);  // one per package: a pre-link script may have changed the tree
    for (const PlannedFile* file : ordered) {
      ++report.files;
      if (!in_order) {
        deferred[p].push_back(file);
        last_owner[file->path] = p;
        continue;
      }
      ENVB_TRY(placer.place(*file, plan, trees[p], report));
    }
  }
  if (in_order) return ok();
  std::vector<PrefixInstallReport> counts(plans.size());
  ENVB_TRY(common::for_each_index(plans.size(), jobs, [&](size_t p) -> Result<void> {
    FilePlacer placer(prefix);
    for (const PlannedFile* file : deferred[p])
      if (last_owner.at(file->path) == p)
        ENVB_TRY(placer.place(*file, plans[p], trees[p], counts[p]));
    return ok();
  }));
  for (const auto& c : counts) {
    report.hardlinked += c.hardlinked;
    report.copied += c.copied;
  }
  return ok();
}

// Warns once about the link scripts left pending, and why.
void warn_pending(const std::vector<PackagePlan>& plans, const ScriptRunner& scripts,
                  bool scripts_here, const std::string& subdir, const PrefixInstallOptions& options,
                  const PrefixInstallReport& report, const Warn& warn) {
  if (report.scripts_pending.empty()) return;
  std::string why = options.link_scripts == LinkScripts::Skip ? "--no-link-scripts"
                    : !scripts_here ? "platform " + subdir + " is not this host's"
                                    : "";
  for (const auto& plan : plans)
    if (scripts_here && !plan.link_scripts.empty() && !scripts.runs_here(plan))
      why += (why.empty() ? "" : ", ") + plan.record.name + " (" + plan.record.subdir +
             ") is not for this host's platform " + host_subdir();
  warn(std::to_string(report.scripts_pending.size()) + " link script(s) not run (" + why +
       "); recorded in conda-meta/envbuild-pending-scripts");
}

}  // namespace

Result<PrefixInstallReport> install_to_prefix(const std::vector<PackagePlan>& plans,
                                              const fs::path& prefix_dir, const std::string& subdir,
                                              const PrefixInstallOptions& options) {
  const Warn warn = options.warn ? options.warn : [](const std::string& m) {
    std::cerr << "warning: " << m << "\n";
  };
  ENVB_TRY(check_paths_between_packages(plans, own_paths(plans, prefix_dir, options)));
  ENVB_TRY(common::make_dirs(prefix_dir));
  ENVB_ASSIGN_OR_RETURN(RootDir prefix, RootDir::open(prefix_dir));
  ENVB_TRY(prefix.make_dir("conda-meta"));
  std::vector<PlanTrees> trees;
  for (const auto& plan : plans) {
    ENVB_ASSIGN_OR_RETURN(PlanTrees t, open_trees(plan).context(package_label(plan.record)));
    trees.push_back(std::move(t));
  }
  PrefixInstallReport report;
  const bool scripts_here = options.link_scripts == LinkScripts::Run && subdir == host_subdir();
  ScriptRunner scripts(prefix_dir, prefix, scripts_here, warn, report);
  // Clobbers are known from the plans alone: the later package's file is the one placed.
  for (const Clobber& clobber : prepare_environment(plans).clobbers) {
    report.clobbered.push_back(clobber.note());
    warn("clobber: " + clobber.path + " is in " + clobber.earlier + " and " + clobber.later +
         "; keeping " + clobber.later + "'s");
  }
  ENVB_TRY(link_files(plans, trees, prefix, options.jobs, scripts, report));
  if (options.compile_pyc)
    ENVB_TRY(compile_noarch_pyc(plans, prefix_dir, prefix, subdir, report, warn));
  // Post-link scripts run once every package is in place (they may use any of them), in link
  // order.
  for (const auto& plan : plans)
    for (const auto& script : plan.link_scripts)
      if (!script.ends_with("-pre-link.sh"))
        ENVB_TRY(scripts.run(plan, script, prefix_dir / script, "post-link"));
  // The pip: section's wheels go in after conda's packages and scripts, as pip runs after conda.
  if (!options.wheels.empty()) {
    ENVB_ASSIGN_OR_RETURN(auto root, RootDir::open(prefix_dir));
    for (const auto& wheel : options.wheels)
      for (const auto& file : wheel.files) {
        ++report.files;
        ENVB_TRY(place_wheel_file(root, file, report).context("installing " + wheel.label));
      }
  }
  warn_pending(plans, scripts, scripts_here, subdir, options, report, warn);
  // What is left of the staging dirs goes before conda-meta/history, which marks the prefix as
  // an environment and is written last: a prefix that has it is complete.
  for (const auto& wheel : options.wheels)
    if (!wheel.staging.empty()) ENVB_TRY(common::remove_all(wheel.staging));
  for (const auto& plan : plans) {
    if (plan.staging.empty()) continue;
    ENVB_TRY(common::remove_all(plan.staging));
    std::error_code ec;
    if (plan.staging.parent_path().filename() == ".envbuild-staging")
      fs::remove(plan.staging.parent_path(), ec);  // once empty
  }
  ENVB_TRY(write_environment_files(plans, prefix_dir, prefix, options, report));
  return report;
}

}  // namespace envbuild::builder

namespace envbuild::builder {

std::string channel_of_url(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  size_t file = url.rfind('/');
  if (file == std::string_view::npos || file == 0) return "";
  size_t subdir = url.rfind('/', file - 1);
  if (subdir == std::string_view::npos) return "";
  return std::string(url.substr(0, subdir));
}

conda::PackageRecord installed_record(const conda::PackageRecord& given,
                                      const conda::PackageRecord& index,
                                      const CachedPackage& archive) {
  conda::PackageRecord out = index;
  out.url = given.url;
  out.fn = given.fn.empty() ? archive.archive.filename().string() : given.fn;
  out.channel = channel_of_url(given.url);
  out.sha256 = archive.sha256;
  out.md5 = archive.md5;
  out.size = archive.size;
  if (out.subdir.empty()) out.subdir = given.subdir;
  return out;
}

namespace {

using common::ms_since;

// Whether planning the package needs the environment's python: a noarch python package, by
// its record or by its info/link.json.
Result<bool> needs_python(const conda::PackageRecord& record, const fs::path& extracted) {
  if (record.noarch == conda::NoArchType::Python) return true;
  const std::string what = "reading " + package_label(record);
  ENVB_ASSIGN_OR_RETURN(RootDir package, RootDir::open(extracted).context(what));
  ENVB_ASSIGN_OR_RETURN(auto link, read_link_json(package).context(what));
  return is_noarch_python(record, link);
}

}  // namespace

namespace {

// The mark of an install in progress, <prefix>/.envbuild-unfinished: made (and locked) before
// anything else goes into the prefix, removed after conda-meta/history, the last file. An
// install starts only in an empty or absent prefix, so a prefix that holds the mark holds only
// what an interrupted install (Ctrl-C, a kill) wrote: the next install empties it and starts
// again instead of refusing a non-empty prefix. The lock keeps it from emptying a prefix
// another install is still filling.
class UnfinishedInstall {
 public:
  static Result<UnfinishedInstall> begin(const fs::path& prefix,
                                         const std::function<void(const std::string&)>& progress) {
    const fs::path mark = prefix / ".envbuild-unfinished";
    std::error_code ec;
    const bool existed = fs::exists(prefix, ec);
    const bool interrupted = existed && fs::exists(mark, ec);
    if (existed && !interrupted && !fs::is_empty(prefix, ec))
      return fail(Errc::InvalidInput, "prefix " + prefix.string() + " exists and is not empty")
          .with_hint("remove it first, or give --force");
    ENVB_TRY(common::make_dirs(prefix));
    ENVB_ASSIGN_OR_RETURN(auto lock,
                          common::FileLock::try_acquire(mark, common::LockMode::Exclusive));
    if (!lock)
      return fail(Errc::InvalidInput, "another envbuild install is writing " + prefix.string())
          .with_hint("wait for it to finish, or install somewhere else");
    if (interrupted) {
      progress("emptying " + prefix.string() + ", which an interrupted install left unfinished");
      for (const auto& entry : fs::directory_iterator(prefix, ec))
        if (entry.path() != mark) ENVB_TRY(common::remove_all(entry.path()));
    }
    return UnfinishedInstall(prefix, mark, std::move(*lock), !existed);
  }
  UnfinishedInstall(UnfinishedInstall&& other) noexcept
      : prefix_(std::move(other.prefix_)),
        mark_(std::move(other.mark_)),
        lock_(std::move(other.lock_)),
        created_prefix_(other.created_prefix_),
        finished_(std::exchange(other.finished_, true)) {}
  UnfinishedInstall& operator=(UnfinishedInstall&&) = delete;
  UnfinishedInstall(const UnfinishedInstall&) = delete;
  /// The install is complete: the mark goes.
  Result<void> finish() {
    if (::unlink(mark_.c_str()) != 0) return common::errno_error("unlink", mark_.string(), errno);
    finished_ = true;
    return ok();
  }
  /// A failed install that wrote nothing but the mark leaves nothing behind (and removes the
  /// prefix when it made it); one that wrote more keeps the mark for the next install.
  ~UnfinishedInstall() {
    if (finished_) return;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(prefix_, ec))
      if (entry.path() != mark_) return;
    fs::remove(mark_, ec);
    if (created_prefix_) fs::remove(prefix_, ec);
  }

 private:
  UnfinishedInstall(fs::path prefix, fs::path mark, common::FileLock lock, bool created_prefix)
      : prefix_(std::move(prefix)),
        mark_(std::move(mark)),
        lock_(std::move(lock)),
        created_prefix_(created_prefix) {}
  fs::path prefix_;
  fs::path mark_;
  common::FileLock lock_;
  bool created_prefix_ = false;
  bool finished_ = false;
};

}  // namespace

namespace {

// The packages of an install, fetched, each record completed from its archive.
struct FetchedPackages {
  std::vector<CachedPackage> cached;
  std::vector<conda::PackageRecord> records;        // parallel to the request's
  std::vector<std::optional<PackagePlan>> planned;  // parallel too; empty until planned
};

// Plans package i of the request for its prefix, its patched copies in staging/<i>.
Result<void> plan_at(const EnvironmentInstallRequest& request, const fs::path& staging, size_t i,
                     const CachedPackage& cached, const std::optional<conda::PythonInfo>& python,
                     FetchedPackages& fetched) {
  InstallTarget target;
  target.prefix = request.prefix_dir.string();
  target.subdir = request.subdir;
  target.python = python;
  target.staging = staging / std::to_string(i);
  auto spec = request.requested_specs.find(fetched.records[i].name);
  ENVB_ASSIGN_OR_RETURN(
      fetched.planned[i],
      plan_package(fetched.records[i], cached.extracted,
                   spec == request.requested_specs.end() ? "" : spec->second, target));
  return ok();
}

// Fetches and extracts through the cache; each package is completed and planned by the worker
// that made it ready (extracted it, or found it cached) while the other downloads go on, except
// the noarch python packages, which wait for the python record (planned once every package is
// in). Counts what was downloaded and extracted in `report`.
Result<FetchedPackages> fetch_and_plan(const EnvironmentInstallRequest& request,
                                       const fs::path& staging, EnvironmentInstallReport& report) {
  std::vector<PackageRef> refs;
  for (const auto& r : request.records) refs.push_back({r.url, r.fn, r.sha256, r.md5, r.size});
  FetchedPackages out;
  out.records.resize(refs.size());
  out.planned.resize(refs.size());
  // The first error of completing or planning a package, reported as it is (not as a failed
  // fetch); the fetch then stops as after a failed download.
  std::mutex error_mutex;
  std::optional<Error> package_error;
  PackageCacheOptions cache_options = request.cache;
  std::mutex progress_mutex;
  auto user_on_ready = cache_options.on_ready;
  cache_options.on_ready = [&](size_t i, const PackageRef& ref,
                               const CachedPackage& cached) -> Result<void> {
    {
      // The caller's on_ready says what was fetched (builder/cli/progress.hpp for the CLI).
      std::lock_guard<std::mutex> lock(progress_mutex);
      if (cached.downloaded) {
        ++report.downloaded;
        report.download_bytes += cached.size;
      }
      if (cached.extracted_now) ++report.extracted;
    }
    if (user_on_ready) ENVB_TRY(user_on_ready(i, ref, cached));
    auto done = [&]() -> Result<void> {
      ENVB_ASSIGN_OR_RETURN(out.records[i], complete_record(request.records[i], ref, cached));
      ENVB_ASSIGN_OR_RETURN(bool wants_python, needs_python(out.records[i], cached.extracted));
      if (!wants_python) ENVB_TRY(plan_at(request, staging, i, cached, std::nullopt, out));
      return ok();
    }();
    if (done) return ok();
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!package_error) package_error = std::move(done).error();
    return fail(Errc::Cancelled, "stopped after an error in " + archive_name(ref));
  };
  PackageCache cache(cache_options);
  auto fetched = cache.fetch(refs);
  if (package_error) return std::move(*package_error);
  ENVB_ASSIGN_OR_RETURN(out.cached, std::move(fetched).context("fetching packages"));
  return out;
}

}  // namespace

Result<EnvironmentInstallReport> install_environment(const EnvironmentInstallRequest& request) {
  const fs::path& prefix = request.prefix_dir;
  if (!prefix.is_absolute())
    return fail(Errc::InvalidInput, "prefix " + prefix.string() + " is not absolute");
  auto progress = [&](const std::string& line) {
    if (request.progress) request.progress(line);
  };
  ENVB_ASSIGN_OR_RETURN(UnfinishedInstall unfinished, UnfinishedInstall::begin(prefix, progress));
  EnvironmentInstallReport report;

  // 1. Fetch and extract, planning each package as it is ready (see fetch_and_plan).
  auto start = std::chrono::steady_clock::now();
  const fs::path staging = prefix / ".envbuild-staging";
  // Also on error: patched copies are of no use to a later run (and a prefix this run created
  // goes too while it holds nothing else: see UnfinishedInstall).
  struct RemoveStaging {
    fs::path path;
    ~RemoveStaging() { (void)common::remove_all(path); }
  } remove_staging{staging};
  ENVB_TRY(common::make_dirs(staging));
  ENVB_ASSIGN_OR_RETURN(FetchedPackages fetched, fetch_and_plan(request, staging, report));
  std::vector<conda::PackageRecord>& records = fetched.records;
  std::vector<std::optional<PackagePlan>>& planned = fetched.planned;
  report.fetch_ms = ms_since(start);

  // 2. The packages left to plan: those that need the environment's python.
  start = std::chrono::steady_clock::now();
  ENVB_ASSIGN_OR_RETURN(auto python, python_of(records));
  std::vector<size_t> later;
  for (size_t i = 0; i < planned.size(); ++i)
    if (!planned[i]) later.push_back(i);
  ENVB_TRY(common::for_each_index(later.size(), request.jobs, [&](size_t n) -> Result<void> {
    return plan_at(request, staging, later[n], fetched.cached[later[n]], python, fetched);
  }));
  const std::vector<size_t> order = topological_order(records);
  std::vector<PackagePlan> plans;
  plans.reserve(order.size());
  for (size_t i : order) plans.push_back(std::move(*planned[i]));
  for (const auto& plan : plans) report.relocations += plan.relocations.size();
  report.plan_ms = ms_since(start);
  progress("planned " + std::to_string(plans.size()) + " packages (" +
           std::to_string(report.relocations) + " files patched for " + prefix.string() + ")");

  // 3. Link (the wheels of the pip: section, planned now, after the packages).
  start = std::chrono::steady_clock::now();
  PrefixInstallOptions install_options = request.install;
  install_options.jobs = request.jobs;
  if (request.plan_wheels) {
    InstallTarget target{prefix.string(), request.subdir, python, staging / "wheels"};
    ENVB_ASSIGN_OR_RETURN(auto wheels, request.plan_wheels(plans, target));
    for (auto& w : wheels) install_options.wheels.push_back(std::move(w));
  }
  ENVB_ASSIGN_OR_RETURN(report.prefix,
                        install_to_prefix(plans, prefix, request.subdir, install_options));
  ENVB_TRY(common::remove_all(staging));
  ENVB_TRY(unfinished.finish());
  report.link_ms = ms_since(start);
  for (size_t i : order) report.records.push_back(records[i]);
  progress("linked " + std::to_string(report.prefix.files) + " files (" +
           std::to_string(report.prefix.hardlinked) + " hard links, " +
           std::to_string(report.prefix.copied) + " copies) into " + prefix.string());
  return report;
}

}  // namespace envbuild::builder
