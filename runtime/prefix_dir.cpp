#include "runtime/prefix_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "common/format.hpp"
#include "common/json.hpp"
#include "conda/image_contract.hpp"
#include "conda/relocate_prefix.hpp"
#include "runtime/activate.hpp"
#include "runtime/internal/cache_files.hpp"

namespace envbuild::runtime {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kActivatePath = "bin/activate";
/// The first line of the bin/activate envrun writes: only such a file is ever rewritten (an
/// environment with conda in it has conda's own bin/activate).
constexpr std::string_view kActivateMarker = "# envrun activate:";
constexpr std::string_view kLockPath = "conda-meta/.envrun.lock";
/// Metadata files of a prefix are read whole; none is legitimately this large.
constexpr size_t kMaxMetadataFile = size_t{16} << 20;

/// Sorted names in the directory `dir` beneath `root` ending with `suffix` (dot files left out).
Result<std::vector<std::string>> names_with_suffix(const common::RootDir& root,
                                                   std::string_view dir, std::string_view suffix) {
  ENVB_ASSIGN_OR_RETURN(std::vector<std::string> all, root.list(dir));
  std::vector<std::string> names;
  for (auto& name : all)
    if (name.size() > suffix.size() && name.ends_with(suffix) && name.front() != '.')
      names.push_back(std::move(name));
  return names;
}

/// The virtual-package depends of every conda-meta/*.json record of the prefix.
Result<std::vector<std::string>> record_requirements(const common::RootDir& prefix) {
  std::vector<std::string> depends;
  const std::string relocations = fs::path(conda::kRelocationIndexPath).filename().string();
  ENVB_ASSIGN_OR_RETURN(auto names, names_with_suffix(prefix, "conda-meta", ".json"));
  for (const auto& name : names) {
    if (name == relocations) continue;
    const std::string relative = "conda-meta/" + name;
    ENVB_ASSIGN_OR_RETURN(auto text, prefix.read_regular(relative, kMaxMetadataFile));
    if (!text) continue;
    ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(*text, prefix.shown(relative)));
    if (!j.is_object() || !j.contains("depends") || !j["depends"].is_array()) continue;
    for (const auto& d : j["depends"])
      if (d.is_string()) depends.push_back(d.get<std::string>());
  }
  std::vector<std::string> out;
  for (const auto& r : conda::host_requirements(depends)) out.push_back(r.to_string());
  return out;
}

Result<void> read_env_vars_object(const std::string& file, const json& object,
                                  std::vector<std::pair<std::string, std::string>>& out) {
  if (!object.is_object())
    return fail(Errc::InvalidInput, file + ": env vars must be a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (!value.is_string())
      return fail(Errc::InvalidInput, file + ": value of " + key + " is not a string");
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& kv) { return kv.first == key; });
    if (it != out.end())
      it->second = value.get<std::string>();
    else
      out.emplace_back(key, value.get<std::string>());
  }
  return {};
}

/// etc/conda/env_vars.d/*.json then conda-meta/state's "env_vars" (conda's order: later wins).
/// Every file is read beneath the prefix: a symlink there is refused, never followed.
Result<std::vector<std::pair<std::string, std::string>>> read_env_vars(
    const common::RootDir& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> files;
  ENVB_ASSIGN_OR_RETURN(auto names, names_with_suffix(prefix, "etc/conda/env_vars.d", ".json"));
  for (const auto& name : names) files.push_back("etc/conda/env_vars.d/" + name);
  files.push_back("conda-meta/state");
  for (const auto& relative : files) {
    ENVB_ASSIGN_OR_RETURN(auto text, prefix.read_regular(relative, kMaxMetadataFile));
    if (!text) continue;
    ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(*text, prefix.shown(relative)));
    if (relative == "conda-meta/state") {
      if (j.is_object() && j.contains("env_vars"))
        ENVB_TRY(read_env_vars_object(prefix.shown(relative), j["env_vars"], out));
    } else {
      ENVB_TRY(read_env_vars_object(prefix.shown(relative), j, out));
    }
  }
  return out;
}

/// Names the script may assign: a shell identifier, nothing an image could use to inject code.
bool is_shell_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

/// The lock that serializes relocating a moved prefix and holds it in use while a command runs
/// (the descriptor survives exec).
Result<common::Fd> open_prefix_lock(const common::RootDir& prefix) {
  ENVB_ASSIGN_OR_RETURN(common::Fd fd, prefix.open_file(kLockPath, O_RDWR | O_CREAT, 0644));
  if (::fcntl(fd.get(), F_SETFD, 0) != 0)
    return common::errno_error("fcntl", prefix.shown(kLockPath), errno);
  return fd;
}

/// What envrun knows of the prefix: its .envrun.json, or (a prefix envbuild install made) the
/// prefix alone, its PATH being <prefix>/bin; nullopt for the latter.
Result<std::optional<EnvInfo>> read_prefix_info(const common::RootDir& prefix) {
  ENVB_ASSIGN_OR_RETURN(auto text, prefix.read_regular(kPrefixInfoPath, kMaxMetadataFile));
  if (!text) return std::optional<EnvInfo>{};
  ENVB_ASSIGN_OR_RETURN(EnvInfo info, env_info_from_json(*text, prefix.shown(kPrefixInfoPath)));
  return std::optional<EnvInfo>(std::move(info));
}

/// Rewrites what `info` says of the prefix's place from `from` to `to`.
void move_info(EnvInfo& info, const std::string& from, const std::string& to) {
  for (auto& kv : info.env) kv = rewrite_prefix(kv, from, to);
  for (auto* args : {&info.entrypoint, &info.cmd})
    if (*args)
      for (auto& a : **args) a = rewrite_prefix(a, from, to);
  info.prefix = to;
}

}  // namespace

Result<PrefixFacts> read_prefix_facts(const common::RootDir& prefix, const fs::path& final_path) {
  PrefixFacts facts;
  ENVB_ASSIGN_OR_RETURN(facts.env_vars, read_env_vars(prefix));
  ENVB_ASSIGN_OR_RETURN(auto scripts, names_with_suffix(prefix, "etc/conda/activate.d", ".sh"));
  for (const auto& name : scripts)
    facts.activate_scripts.push_back((final_path / "etc/conda/activate.d" / name).string());
  ENVB_ASSIGN_OR_RETURN(facts.requirements, record_requirements(prefix));
  return facts;
}

bool is_prefix_directory(const std::string& argument) {
  struct stat st {};
  return !argument.empty() && ::stat(argument.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
         ::stat((fs::path(argument) / "conda-meta").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string activate_script(const EnvInfo& info) {
  // The same variables `envrun PREFIX --` sets (activated_environment), the host PATH standing
  // in for whatever $PATH is when the script is sourced.
  const std::string kHostPath = "\x01host-path\x01";
  std::vector<std::string> activated = activated_environment(info, {"PATH=" + kHostPath});
  std::string sets;
  for (const auto& kv : activated) {
    std::string name = kv.substr(0, kv.find('='));
    if (!is_shell_name(name) || name.size() == kv.size()) continue;
    std::string value = kv.substr(name.size() + 1);
    if (name == "PATH" && value.ends_with(kHostPath)) {
      value.resize(value.size() - kHostPath.size());
      sets += "_envrun_set PATH " + common::shell_quote(value) + "\"$PATH\"\n";
    } else {
      sets += "_envrun_set " + name + " " + common::shell_quote(value) + "\n";
    }
  }
  std::string sources;
  for (const auto& script : info.activate_scripts) sources += ". " + common::shell_quote(script) + "\n";
  const std::string prefix = common::shell_quote(info.prefix);
  return std::string(kActivateMarker) + " . " + info.prefix + "/bin/activate" + R"sh(
# Activates this conda environment without conda (POSIX sh, bash, zsh). Written by envrun, which
# rewrites it when it relocates the prefix: after moving the directory, run `envrun DIR -- true`
# once. `deactivate` undoes it.
_envrun_prefix=)sh" +
         prefix + R"sh(
_envrun_here=
if [ -n "${BASH_VERSION:-}" ]; then eval '_envrun_here=${BASH_SOURCE[0]:-}'
elif [ -n "${ZSH_VERSION:-}" ]; then eval '_envrun_here=${(%):-%x}'
fi
if [ -n "$_envrun_here" ]; then
  _envrun_at=$(cd "$(dirname "$_envrun_here")/.." 2>/dev/null && pwd -P)
  if [ "$_envrun_at" != "$(cd "$_envrun_prefix" 2>/dev/null && pwd -P)" ]; then
    echo "envrun: this environment was moved from $_envrun_prefix to $_envrun_at: run 'envrun $_envrun_at -- true' once to relocate it, then source this file again" >&2
    unset _envrun_here _envrun_at _envrun_prefix
    return 1 2>/dev/null || exit 1
  fi
fi
unset _envrun_here _envrun_at
if [ -n "${_ENVRUN_ACTIVE:-}" ]; then deactivate; fi
_ENVRUN_SAVED=
_ENVRUN_UNSET=
_envrun_set() {
  eval "_envrun_had=\${$1+x}"
  if [ -n "$_envrun_had" ]; then
    eval "_ENVRUN_OLD_$1=\$$1"
    _ENVRUN_SAVED="$_ENVRUN_SAVED $1"
  else
    _ENVRUN_UNSET="$_ENVRUN_UNSET $1"
  fi
  eval "$1=\$2"
  export "$1"
  unset _envrun_had
}
deactivate() {
  for _envrun_v in $_ENVRUN_SAVED; do
    eval "$_envrun_v=\$_ENVRUN_OLD_$_envrun_v"
    export "$_envrun_v"
    unset "_ENVRUN_OLD_$_envrun_v"
  done
  for _envrun_v in $_ENVRUN_UNSET; do unset "$_envrun_v"; done
  unset _ENVRUN_SAVED _ENVRUN_UNSET _ENVRUN_ACTIVE _envrun_v
  unset -f deactivate _envrun_set
  hash -r 2>/dev/null || true
}
)sh" + sets +
         sources +
         R"sh(_ENVRUN_ACTIVE=1
unset _envrun_prefix
hash -r 2>/dev/null || true
)sh";
}

Result<void> write_prefix_files(const common::RootDir& prefix, const EnvInfo& info) {
  ENVB_TRY(prefix.write_atomic(kPrefixInfoPath, to_json_text(info)));
  ENVB_ASSIGN_OR_RETURN(auto existing, prefix.read_regular(kActivatePath, 1 << 20));
  if (existing && !existing->starts_with(kActivateMarker)) return ok();  // the environment's own
  ENVB_TRY(prefix.make_dir("bin"));
  return prefix.write_atomic(kActivatePath, activate_script(info), 0644);
}

Result<Materialized> open_prefix_directory(const fs::path& dir) {
  std::error_code ec;
  const fs::path where = fs::canonical(dir, ec);
  if (ec) return fail(Errc::NotFound, dir.string() + ": " + ec.message());
  ENVB_ASSIGN_OR_RETURN(common::RootDir prefix, common::RootDir::open(where));
  ENVB_ASSIGN_OR_RETURN(common::Fd lock, open_prefix_lock(prefix));
  ENVB_TRY(internal::flock_fd(lock, LOCK_EX, prefix.shown(kLockPath)));
  ENVB_ASSIGN_OR_RETURN(std::optional<EnvInfo> stored, read_prefix_info(prefix));
  EnvInfo info;
  if (stored) {
    info = std::move(*stored);
  } else {
    info.prefix = where.string();
    info.image_prefix = info.prefix;
  }
  ENVB_ASSIGN_OR_RETURN(std::optional<conda::RelocationIndex> index,
                        conda::read_relocation_index(prefix));
  const std::string was = index ? index->prefix : info.prefix;
  if (was != where.string()) {
    std::fprintf(stderr, "envrun: %s was moved from %s: relocating it\n", where.c_str(),
                 was.c_str());
    ENVB_TRY(conda::relocate_prefix(prefix, "", where.string(), conda::MissingIndex::Skip)
                 .context("relocating " + where.string()));
    move_info(info, info.prefix, where.string());
  }
  ENVB_ASSIGN_OR_RETURN(PrefixFacts facts, read_prefix_facts(prefix, where));
  info.env_vars = std::move(facts.env_vars);
  info.activate_scripts = std::move(facts.activate_scripts);
  std::set<std::string> seen(info.requirements.begin(), info.requirements.end());
  for (auto& r : facts.requirements)
    if (seen.insert(r).second) info.requirements.push_back(std::move(r));
  if (was != where.string() || !stored) ENVB_TRY(write_prefix_files(prefix, info));
  // Relocated (or found in place): from here on only readers, until the command exits.
  ENVB_TRY(internal::flock_fd(lock, LOCK_SH, prefix.shown(kLockPath)));
  return Materialized{std::move(info), false, std::move(lock), {}};
}

}  // namespace envbuild::runtime
