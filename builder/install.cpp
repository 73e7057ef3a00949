#include "builder/install.hpp"

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

#include "common/format.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/parallel.hpp"
#include "common/root_dir.hpp"
#include "common/version.hpp"
#include "conda/package_metadata.hpp"
#include "conda/relocate_prefix.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

// info/ of an extracted package: paths.json, or the legacy files it supersedes.
Result<std::vector<conda::PathEntry>> read_paths(const fs::path& extracted) {
  fs::path info = extracted / "info";
  std::error_code ec;
  if (fs::exists(info / "paths.json", ec)) {
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(info / "paths.json"));
    return conda::parse_paths_json(text, (info / "paths.json").string());
  }
  std::string files, has_prefix_text, no_link;
  if (auto t = common::read_file(info / "files")) files = *t;
  if (auto t = common::read_file(info / "has_prefix")) has_prefix_text = *t;
  if (auto t = common::read_file(info / "no_link")) no_link = *t;
  ENVB_ASSIGN_OR_RETURN(auto has_prefix,
                        conda::parse_has_prefix(has_prefix_text, (info / "has_prefix").string()));
  std::vector<std::string> symlinks;
  std::istringstream lines(files);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && fs::is_symlink(extracted / line, ec)) symlinks.push_back(line);
  }
  return conda::paths_from_legacy(files, has_prefix, no_link, symlinks);
}

Result<std::optional<conda::LinkJson>> read_link_json(const fs::path& extracted) {
  fs::path file = extracted / "info" / "link.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::optional<conda::LinkJson>();
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file));
  ENVB_ASSIGN_OR_RETURN(auto link, conda::parse_link_json(text, file.string()));
  return std::optional<conda::LinkJson>(std::move(link));
}

// A noarch: python package, by its record or by its info/link.json: it is planned for the
// environment's python.
bool is_noarch_python(const conda::PackageRecord& record,
                      const std::optional<conda::LinkJson>& link) {
  return record.noarch == conda::NoArchType::Python || (link && link->noarch_type == "python");
}

Result<void> copy_file_exact(const fs::path& from, const fs::path& to) {
  ENVB_TRY(common::make_dirs(to.parent_path()));
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return fail(Errc::Io, "copy(" + from.string() + " -> " + to.string() + "): " + ec.message());
  return ok();
}

std::string package_label(const conda::PackageRecord& r) {
  return r.name + "-" + r.version.to_string() + "-" + r.build;
}

}  // namespace

Result<PackagePlan> plan_package(const conda::PackageRecord& record, const fs::path& extracted,
                                 const std::string& requested_spec, const InstallTarget& target) {
  const std::string label = package_label(record);
  PackagePlan plan;
  plan.record = record;
  ENVB_ASSIGN_OR_RETURN(auto paths, read_paths(extracted).context("reading " + label));
  ENVB_ASSIGN_OR_RETURN(auto link, read_link_json(extracted).context("reading " + label));
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
    if (!common::is_safe_relative_path(entry.path))
      return fail(Errc::Integrity, label + ": unsafe path '" + entry.path + "' in paths.json");
    std::string dest = noarch_python
                           ? conda::noarch_python_target_path(entry.path, *target.python, os)
                           : entry.path;
    if (!common::is_safe_relative_path(dest))
      return fail(Errc::Integrity, label + ": unsafe path '" + dest + "' in paths.json");
    fs::path source = extracted / entry.path;
    conda::PrefixPathsEntry recorded;
    recorded.path = dest;
    recorded.sha256 = entry.sha256;
    recorded.size_in_bytes = entry.size_in_bytes;
    recorded.no_link = entry.no_link;
    if (entry.path_type == conda::PathType::Directory) continue;  // parents are implicit
    // One lstat per entry: it tells a symlink, a regular file and a missing file apart.
    std::error_code ec;
    const fs::file_status status = fs::symlink_status(source, ec);
    if (entry.path_type == conda::PathType::SoftLink || fs::is_symlink(status)) {
      fs::path target_text = fs::read_symlink(source, ec);
      if (ec)
        return fail(Errc::Integrity, label + ": " + entry.path + " is listed as a symlink but " +
                                         "is not one in the extracted package");
      plan.files.push_back(
          {dest, PlannedFile::Kind::Symlink, {}, target_text.string(), false, false});
      recorded.path_type = conda::PrefixPathType::SoftLink;
    } else {
      if (!fs::is_regular_file(status))
        return fail(Errc::Integrity, label + ": " + entry.path + " is missing from the package");
      PlannedFile file{dest, PlannedFile::Kind::File, source, {}, false, entry.no_link};
      recorded.path_type = conda::PrefixPathType::HardLink;
      if (!entry.prefix_placeholder.empty()) {
        fs::path copy = target.staging / "files" / dest;
        ENVB_TRY(copy_file_exact(source, copy));
        conda::PrefixReplacement replacement{entry.prefix_placeholder, target.prefix,
                                             entry.file_mode, os};
        ENVB_ASSIGN_OR_RETURN(auto relocation,
                              conda::replace_prefix_in_file(copy, replacement, dest)
                                  .context("patching " + label + ": " + entry.path));
        recorded.file_mode = entry.file_mode;
        recorded.prefix_placeholder = entry.prefix_placeholder;
        if (relocation) {
          file.source = copy;
          file.private_copy = true;
          plan.relocations.push_back(std::move(*relocation));
          ENVB_ASSIGN_OR_RETURN(recorded.sha256_in_prefix, common::sha256_file(copy.string()));
        } else {
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

  if (noarch_python && link) {
    for (const auto& entry_point : link->entry_points) {
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
  }

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

// One link(2), rename(2) (a private copy) or symlink(2) of `file` at `dest`: 0 when it is
// there, else the errno; -1 when the file must be copied (no_link).
int place_once(const PlannedFile& file, const fs::path& dest) {
  int r = -1;
  if (file.kind == PlannedFile::Kind::Symlink)
    r = ::symlink(file.target.c_str(), dest.c_str());
  else if (file.private_copy)
    r = ::rename(file.source.c_str(), dest.c_str());
  else if (!file.no_link)
    r = ::link(file.source.c_str(), dest.c_str());
  else
    return -1;
  return r == 0 ? 0 : errno;
}

// Puts one file of a wheel into the prefix, resolved beneath it (common::RootDir): a wheel is
// untrusted, and a conda package may have made a directory of the prefix a symlink, which its
// files must not be written through. Hard linked from the cache or staging when it can be,
// else copied into a file created here (O_EXCL: nothing there is followed or reused).
Result<void> place_wheel_file(const common::RootDir& prefix, const PlannedFile& file,
                              PrefixInstallReport& report) {
  if (file.kind != PlannedFile::Kind::File)
    return fail(Errc::Integrity, prefix.shown(file.path) + ": a wheel installs files only");
  ENVB_ASSIGN_OR_RETURN(auto parent, prefix.parent_of(file.path, common::CreateDirs::Yes));
  // A path may have been planned twice only across wheels and packages, which planning refused;
  // what is there now is a file an earlier link script wrote: replaced, as pip would.
  if (::unlinkat(parent.dir.get(), parent.name.c_str(), 0) != 0 && errno != ENOENT)
    return common::errno_error("unlinkat", prefix.shown(file.path), errno);
  if (!file.no_link &&
      ::linkat(AT_FDCWD, file.source.c_str(), parent.dir.get(), parent.name.c_str(), 0) == 0) {
    ++(file.private_copy ? report.copied : report.hardlinked);
    return ok();
  }
  ENVB_ASSIGN_OR_RETURN(auto in, common::Fd::open_read(file.source.string()));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return common::errno_error("fstat", file.source.string(), errno);
  const int fd = ::openat(parent.dir.get(), parent.name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777);
  if (fd < 0) return common::errno_error("openat", prefix.shown(file.path), errno);
  common::Fd out(fd);
  std::vector<std::byte> buffer(1 << 20);
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, in.read_some(buffer, file.source.string()));
    if (n == 0) break;
    ENVB_TRY(out.write_all(std::span(buffer).first(n), prefix.shown(file.path)));
  }
  ++report.copied;
  return ok();
}

// Puts one planned file into the prefix. The prefix starts empty, so the usual case costs one
// system call: a missing parent directory (ENOENT) is created, and whatever is already at
// `dest` (EEXIST: a clobbered file of an earlier package, or one a pre-link script wrote) is
// removed, each followed by one more try. A file that cannot be hard linked is copied.
Result<void> place_file(const PlannedFile& file, const fs::path& dest,
                        PrefixInstallReport& report) {
  std::error_code ec;
  int err = place_once(file, dest);
  if (err == ENOENT) {
    ENVB_TRY(common::make_dirs(dest.parent_path()));
    err = place_once(file, dest);
  }
  if (err == EEXIST || err == EISDIR) {
    fs::remove(dest, ec);
    err = place_once(file, dest);
  }
  if (err == 0) {
    if (file.kind == PlannedFile::Kind::File)
      ++(file.private_copy ? report.copied : report.hardlinked);
    return ok();
  }
  if (file.kind == PlannedFile::Kind::Symlink)
    return common::errno_error("symlink", dest.string(), err);
  // Copied: never through whatever is at dest (a symlink would be followed).
  ENVB_TRY(common::make_dirs(dest.parent_path()));
  fs::remove(dest, ec);
  // A copy of our own rather than fs::copy_file, whose sendfile path reports a full disk as
  // EIO: errno_error names ENOSPC with advice, and a partial copy is removed.
  auto copied = [&]() -> Result<void> {
    ENVB_ASSIGN_OR_RETURN(auto in, common::Fd::open_read(file.source.string()));
    struct stat st {};
    if (::fstat(in.get(), &st) != 0)
      return common::errno_error("fstat", file.source.string(), errno);
    ENVB_ASSIGN_OR_RETURN(auto out, common::Fd::open(dest.string(), O_WRONLY | O_CREAT | O_TRUNC,
                                                     static_cast<int>(st.st_mode & 07777)));
    std::vector<std::byte> buffer(1 << 20);
    for (;;) {
      ENVB_ASSIGN_OR_RETURN(size_t n, in.read_some(buffer, file.source.string()));
      if (n == 0) break;
      ENVB_TRY(out.write_all(std::span(buffer).first(n), dest.string()));
    }
    if (::fchmod(out.get(), st.st_mode & 07777) != 0)
      return common::errno_error("fchmod", dest.string(), errno);
    return ok();
  }();
  if (!copied) {
    fs::remove(dest, ec);
    return std::move(copied).error().with_context("copying " + file.source.string() + " -> " +
                                                  dest.string());
  }
  ++report.copied;
  return ok();
}

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

// Compiles the .py files of the noarch python packages with the prefix's python, the way conda
// does (`python -Wi -m compileall -q -l -i LIST -j 0`, in the prefix), and adds the .pyc files
// to each package's conda-meta record (path_type pyc_file). Failures to compile are warnings
// (python compiles on import instead), as in conda.
Result<void> compile_noarch_pyc(const std::vector<PackagePlan>& plans, const fs::path& prefix,
                                const std::string& subdir, PrefixInstallReport& report,
                                const std::function<void(const std::string&)>& warn) {
  std::vector<std::vector<std::string>> sources(plans.size());
  size_t count = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!plans[i].noarch_python) continue;
    for (const auto& f : plans[i].files)
      if (f.kind == PlannedFile::Kind::File && f.path.ends_with(".py") &&
          f.path.rfind("bin/", 0) != 0) {
        sources[i].push_back(f.path);
        ++count;
      }
  }
  if (count == 0) return ok();
  const fs::path python = prefix / "bin" / "python";
  if (subdir != host_subdir() || ::access(python.c_str(), X_OK) != 0) {
    warn("not compiling " + std::to_string(count) + " .py file(s) of noarch python packages (" +
         (subdir != host_subdir() ? "platform " + subdir + " is not this host's"
                                  : std::string("no bin/python in the prefix")) +
         "); python compiles them on first import where the prefix is writable");
    return ok();
  }
  const fs::path list = prefix / ".envbuild-pyc-list";
  std::string text;
  for (const auto& paths : sources)
    for (const auto& p : paths) text += p + "\n";
  ENVB_TRY(common::write_file_atomic(list, text));
  pid_t pid = ::fork();
  if (pid < 0) return common::errno_error("fork", python.string(), errno);
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // keep our stdout for --json
    if (::chdir(prefix.c_str()) != 0) ::_exit(126);
    ::execl(python.c_str(), python.c_str(), "-Wi", "-m", "compileall", "-q", "-l", "-i",
            list.c_str(), "-j", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::error_code ec;
  fs::remove(list, ec);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    warn("python -m compileall failed for some noarch python files (exit " +
         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
         "); they are compiled on import instead");
  // Each x.py gives __pycache__/x.<tag>.pyc; the tag is the python's (cpython-311, ...).
  std::map<fs::path, std::vector<std::string>> listings;
  auto cached_pyc = [&](const std::string& py) -> std::optional<std::string> {
    fs::path rel(py);
    fs::path dir = rel.parent_path() / "__pycache__";
    auto [it, inserted] = listings.try_emplace(dir);
    if (inserted)
      for (const auto& e : fs::directory_iterator(prefix / dir, ec))
        it->second.push_back(e.path().filename().string());
    std::string stem = rel.stem().string() + ".";
    for (const auto& name : it->second)
      if (name.rfind(stem, 0) == 0 && name.ends_with(".pyc") &&
          name.find('.', stem.size()) == name.size() - 4)
        return (dir / name).string();
    return std::nullopt;
  };
  for (size_t i = 0; i < plans.size(); ++i) {
    if (sources[i].empty()) continue;
    auto meta = std::find_if(plans[i].files.begin(), plans[i].files.end(), [](const auto& f) {
      return f.path.rfind("conda-meta/", 0) == 0 && f.path.ends_with(".json");
    });
    if (meta == plans[i].files.end()) continue;
    ENVB_ASSIGN_OR_RETURN(std::string json_text, common::read_file(prefix / meta->path));
    auto json = nlohmann::json::parse(json_text, nullptr, false);
    if (json.is_discarded() || !json.is_object())
      return fail(Errc::Internal, (prefix / meta->path).string() + ": not JSON");
    auto& files = json["files"];
    auto& paths = json["paths_data"]["paths"];
    for (const auto& py : sources[i]) {
      auto pyc = cached_pyc(py);
      if (!pyc) continue;
      files.push_back(*pyc);
      if (paths.is_array()) paths.push_back({{"_path", *pyc}, {"path_type", "pyc_file"}});
      ++report.pyc_compiled;
    }
    ENVB_TRY(common::write_file_atomic(prefix / meta->path, json.dump(2) + "\n"));
  }
  return ok();
}

}  // namespace

Result<PrefixInstallReport> install_to_prefix(const std::vector<PackagePlan>& plans,
                                              const fs::path& prefix_dir, const std::string& subdir,
                                              const PrefixInstallOptions& options) {
  auto warn = options.warn ? options.warn
                           : [](const std::string& m) { std::cerr << "warning: " << m << "\n"; };
  PrefixInstallReport report;
  ENVB_TRY(common::make_dirs(prefix_dir / "conda-meta"));
  const bool scripts_here = options.link_scripts == LinkScripts::Run && subdir == host_subdir();
  // A script is run only when the package itself is for this host too: a lock file may name a
  // package of another platform (an osx-64 build's post-link would run linux's sh on macOS
  // assumptions), and a noarch or subdir-less record is as portable as its prefix.
  auto runs_here = [&](const PackagePlan& plan) {
    const std::string& own = plan.record.subdir;
    return scripts_here && (own.empty() || own == "noarch" || own == host_subdir());
  };
  std::vector<std::string> foreign;  // packages whose scripts were kept for their platform
  // Shows and removes $PREFIX/.messages.txt after a script.
  auto messages = [&](const PackagePlan& plan, const std::string& kind) {
    fs::path file = prefix_dir / ".messages.txt";
    std::error_code ec;
    if (fs::exists(file, ec)) {
      if (auto text = common::read_file(file); text && !text->empty())
        warn(plan.record.name + " " + kind + ": " + *text);
      fs::remove(file, ec);
    }
  };
  // Pre-link scripts must see the files of the packages linked before theirs: with any, the
  // files go in one package after the other. Without, the order only decides clobbers, so each
  // path is placed once, from the last package that has it (the tree an in-order link leaves),
  // by `jobs` threads.
  const bool in_order = std::any_of(plans.begin(), plans.end(), [](const PackagePlan& plan) {
    return std::any_of(plan.link_scripts.begin(), plan.link_scripts.end(),
                       [](const std::string& s) { return s.ends_with("-pre-link.sh"); });
  });
  std::vector<std::vector<const PlannedFile*>> deferred(plans.size());
  std::unordered_map<std::string_view, size_t> last_owner;  // path -> index of its last plan
  std::map<std::string, std::string> owner;
  for (size_t p = 0; p < plans.size(); ++p) {
    const PackagePlan& plan = plans[p];
    const std::string label = package_label(plan.record);
    // Pre-link scripts (deprecated in conda, still run) run before the package's own files are
    // linked, from the package's copy, with the same environment as post-link scripts.
    for (const auto& script : plan.link_scripts) {
      if (!script.ends_with("-pre-link.sh")) continue;
      if (!runs_here(plan)) {
        report.scripts_pending.push_back(plan.record.name + ": pre-link (" + script + ")");
        continue;
      }
      auto it = std::find_if(plan.files.begin(), plan.files.end(),
                             [&](const PlannedFile& f) { return f.path == script; });
      if (it == plan.files.end()) continue;
      ENVB_TRY(run_link_script(prefix_dir, plan, script, it->source));
      report.scripts_run.push_back(plan.record.name + ": pre-link");
      messages(plan, "pre-link");
    }
    // The package's conda-meta record goes in last: a process killed midway must not leave a
    // record claiming files that are not there yet.
    std::vector<const PlannedFile*> ordered;
    for (const auto& file : plan.files)
      if (!file.path.starts_with("conda-meta/")) ordered.push_back(&file);
    for (const auto& file : plan.files)
      if (file.path.starts_with("conda-meta/")) ordered.push_back(&file);
    for (const PlannedFile* planned : ordered) {
      const PlannedFile& file = *planned;
      fs::path dest = prefix_dir / file.path;
      if (auto it = owner.find(file.path); it != owner.end() && it->second != label) {
        report.clobbered.push_back(file.path + ": " + it->second + ", then " + label + " (kept)");
        warn("clobber: " + file.path + " is in " + it->second + " and " + label + "; keeping " +
             label + "'s");
      }
      owner[file.path] = label;
      ++report.files;
      if (!in_order) {
        deferred[p].push_back(planned);
        last_owner[file.path] = p;
        continue;
      }
      ENVB_TRY(place_file(file, dest, report));
    }
  }
  if (!in_order) {
    std::vector<PrefixInstallReport> counts(plans.size());
    ENVB_TRY(common::for_each_index(plans.size(), options.jobs, [&](size_t p) -> Result<void> {
      for (const PlannedFile* file : deferred[p])
        if (last_owner.at(file->path) == p)
          ENVB_TRY(place_file(*file, prefix_dir / file->path, counts[p]));
      return ok();
    }));
    for (const auto& c : counts) {
      report.hardlinked += c.hardlinked;
      report.copied += c.copied;
    }
  }
  if (options.compile_pyc) ENVB_TRY(compile_noarch_pyc(plans, prefix_dir, subdir, report, warn));
  // Post-link scripts run once every package is in place (they may use any of them), in link
  // order.
  for (const auto& plan : plans) {
    for (const auto& script : plan.link_scripts) {
      if (script.ends_with("-pre-link.sh")) continue;
      if (runs_here(plan)) {
        ENVB_TRY(run_link_script(prefix_dir, plan, script, prefix_dir / script));
        report.scripts_run.push_back(plan.record.name + ": post-link");
        messages(plan, "post-link");
      } else {
        report.scripts_pending.push_back(plan.record.name + ": post-link (" + script + ")");
      }
    }
  }
  // The pip: section's wheels go in after conda's packages and scripts, as pip runs after conda.
  if (!options.wheels.empty()) {
    ENVB_ASSIGN_OR_RETURN(auto root, common::RootDir::open(prefix_dir));
    for (const auto& wheel : options.wheels)
      for (const auto& file : wheel.files) {
        ++report.files;
        ENVB_TRY(place_wheel_file(root, file, report).context("installing " + wheel.label));
      }
  }
  for (const auto& plan : plans)
    if (scripts_here && !plan.link_scripts.empty() && !runs_here(plan))
      foreign.push_back(plan.record.name + " (" + plan.record.subdir + ")");
  if (!report.scripts_pending.empty()) {
    std::string why = options.link_scripts == LinkScripts::Skip ? "--no-link-scripts"
                      : !scripts_here ? "platform " + subdir + " is not this host's"
                                      : "";
    for (const auto& f : foreign)
      why += (why.empty() ? "" : ", ") + f + " is not for this host's platform " + host_subdir();
    warn(std::to_string(report.scripts_pending.size()) + " link script(s) not run (" + why +
         "); recorded in conda-meta/envbuild-pending-scripts");
  }
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
  std::string history;
  for (auto& [path, content] : environment_files(plans, prefix_dir.string(), options)) {
    if (path == "conda-meta/history") {
      history = std::move(content);
      continue;
    }
    ENVB_TRY(common::make_dirs((prefix_dir / path).parent_path()));
    ENVB_TRY(common::write_file_atomic(prefix_dir / path, content));
  }
  if (!report.clobbered.empty()) {
    std::string clobbers;
    for (const auto& c : report.clobbered) clobbers += c + "\n";
    ENVB_TRY(common::write_file_atomic(prefix_dir / "conda-meta" / "envbuild-clobbers", clobbers));
  }
  if (!report.scripts_pending.empty()) {
    std::string pending;
    for (const auto& s : report.scripts_pending) pending += s + "\n";
    ENVB_TRY(
        common::write_file_atomic(prefix_dir / "conda-meta" / "envbuild-pending-scripts", pending));
  }
  if (!history.empty())
    ENVB_TRY(common::write_file_atomic(prefix_dir / "conda-meta" / "history", history));
  return report;
}

}  // namespace envbuild::builder

namespace envbuild::builder {

conda::PackageRecord merge_index_record(conda::PackageRecord into,
                                        const conda::PackageRecord& index) {
  conda::PackageRecord out = index;
  if (!into.channel.empty()) out.channel = into.channel;
  if (!into.url.empty()) out.url = into.url;
  if (!into.fn.empty()) out.fn = into.fn;
  if (!into.md5.empty()) out.md5 = into.md5;
  if (!into.sha256.empty()) out.sha256 = into.sha256;
  if (into.size) out.size = into.size;
  if (!into.python_site_packages_path.empty())
    out.python_site_packages_path = into.python_site_packages_path;
  if (out.subdir.empty()) out.subdir = into.subdir;
  return out;
}

namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Whether planning the package needs the environment's python: a noarch python package, by
// its record or by its info/link.json.
Result<bool> needs_python(const conda::PackageRecord& record, const fs::path& extracted) {
  if (record.noarch == conda::NoArchType::Python) return true;
  ENVB_ASSIGN_OR_RETURN(auto link,
                        read_link_json(extracted).context("reading " + package_label(record)));
  return is_noarch_python(record, link);
}

}  // namespace

Result<EnvironmentInstallReport> install_environment(const EnvironmentInstallRequest& request) {
  const fs::path& prefix = request.prefix_dir;
  if (!prefix.is_absolute())
    return fail(Errc::InvalidInput, "prefix " + prefix.string() + " is not absolute");
  std::error_code ec;
  if (fs::exists(prefix, ec) && !fs::is_empty(prefix, ec))
    return fail(Errc::InvalidInput, "prefix " + prefix.string() + " exists and is not empty")
        .with_hint("remove it first, or give --force");
  auto progress = [&](const std::string& line) {
    if (request.progress) request.progress(line);
  };
  EnvironmentInstallReport report;

  // 1. Fetch and extract, through the cache; each package is planned (2.) by the worker that
  // made it ready (extracted it, or found it cached) while the other downloads go on. Noarch
  // python packages wait for the python record: they are planned once every package is in.
  auto start = std::chrono::steady_clock::now();
  std::vector<PackageRef> refs;
  for (const auto& r : request.records) refs.push_back({r.url, r.fn, r.sha256, r.md5, r.size});
  const fs::path staging = prefix / ".envbuild-staging";
  // Also on error: patched copies are of no use to a later run, and a prefix this run created
  // goes too while it is still empty (a failed fetch leaves nothing behind).
  struct RemoveStaging {
    fs::path path;
    bool remove_parent;
    ~RemoveStaging() {
      (void)common::remove_all(path);
      std::error_code ec;
      if (remove_parent) fs::remove(path.parent_path(), ec);  // only when empty
    }
  } remove_staging{staging, !fs::exists(prefix, ec)};
  ENVB_TRY(common::make_dirs(staging));
  std::vector<conda::PackageRecord> records(refs.size());
  std::vector<std::optional<PackagePlan>> planned(refs.size());
  auto complete_record = [&](size_t i, const CachedPackage& cached) -> Result<void> {
    const auto& given = request.records[i];
    fs::path index_file = cached.extracted / "info" / "index.json";
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(index_file));
    ENVB_ASSIGN_OR_RETURN(auto index, conda::parse_package_record(text, index_file.string()));
    if (!given.name.empty() && given.name != index.name)
      return fail(Errc::Integrity, archive_name(refs[i]) + ": expected package '" + given.name +
                                       "' but its info/index.json says '" + index.name + "'");
    records[i] = merge_index_record(given, index);
    if (records[i].sha256.empty()) records[i].sha256 = cached.sha256;
    return ok();
  };
  auto plan_one = [&](size_t i, const CachedPackage& cached,
                      const std::optional<conda::PythonInfo>& python) -> Result<void> {
    InstallTarget target;
    target.prefix = prefix.string();
    target.subdir = request.subdir;
    target.python = python;
    target.staging = staging / std::to_string(i);
    auto spec = request.requested_specs.find(records[i].name);
    ENVB_ASSIGN_OR_RETURN(
        planned[i],
        plan_package(records[i], cached.extracted,
                     spec == request.requested_specs.end() ? "" : spec->second, target));
    return ok();
  };
  // The first error of completing or planning a package, reported as it is (not as a failed
  // fetch); the fetch then stops as after a failed download.
  std::mutex error_mutex;
  std::optional<Error> package_error;
  PackageCacheOptions cache_options = request.cache;
  std::mutex progress_mutex;
  size_t ready = 0;
  auto user_on_ready = cache_options.on_ready;
  cache_options.on_ready = [&](size_t i, const PackageRef& ref,
                               const CachedPackage& cached) -> Result<void> {
    {
      std::lock_guard<std::mutex> lock(progress_mutex);
      ++ready;
      std::string how = cached.downloaded ? "downloaded" : "cached";
      if (cached.extracted_now) how += ", extracted";
      std::error_code size_ec;
      uint64_t size = ref.size ? *ref.size : fs::file_size(cached.archive, size_ec);
      if (size_ec) size = 0;
      if (cached.downloaded) {
        ++report.downloaded;
        report.download_bytes += size;
      }
      if (cached.extracted_now) ++report.extracted;
      progress("fetched " + std::to_string(ready) + "/" + std::to_string(refs.size()) + " " +
               archive_name(ref) + " (" + human_bytes(size) + ", " + how + ")");
    }
    if (user_on_ready) ENVB_TRY(user_on_ready(i, ref, cached));
    auto done = [&]() -> Result<void> {
      ENVB_TRY(complete_record(i, cached));
      ENVB_ASSIGN_OR_RETURN(bool wants_python, needs_python(records[i], cached.extracted));
      if (!wants_python) ENVB_TRY(plan_one(i, cached, std::nullopt));
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
  ENVB_ASSIGN_OR_RETURN(auto cached, std::move(fetched).context("fetching packages"));
  report.fetch_ms = ms_since(start);

  // 2. The packages left to plan: those that need the environment's python.
  start = std::chrono::steady_clock::now();
  ENVB_ASSIGN_OR_RETURN(auto python, python_of(records));
  std::vector<size_t> later;
  for (size_t i = 0; i < planned.size(); ++i)
    if (!planned[i]) later.push_back(i);
  ENVB_TRY(common::for_each_index(later.size(), request.jobs, [&](size_t n) -> Result<void> {
    return plan_one(later[n], cached[later[n]], python);
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
  report.link_ms = ms_since(start);
  for (size_t i : order) report.records.push_back(records[i]);
  progress("linked " + std::to_string(report.prefix.files) + " files (" +
           std::to_string(report.prefix.hardlinked) + " hard links, " +
           std::to_string(report.prefix.copied) + " copies) into " + prefix.string());
  return report;
}

}  // namespace envbuild::builder
