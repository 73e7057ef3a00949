#include "conda/host_probe.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "common/fs.hpp"
#include "common/json.hpp"

namespace envbuild::conda {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::string(value);
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// The driver's CUDA version integer is major*1000 + minor*10 (12040 -> "12.4").
std::string cuda_version_string(int value) {
  return std::to_string(value / 1000) + "." + std::to_string((value % 1000) / 10);
}

struct ProbeResult {
  std::optional<int> cuda;
  std::optional<std::string> cuda_arch;
  std::optional<std::string> driver_version;
  std::string library;  // the libcuda that answered
  std::string error;    // why there is no answer
};

std::vector<std::string> libcuda_candidates(const DetectOptions& options) {
  if (!options.libcuda.empty()) return {options.libcuda};
  if (auto chosen = env("ENVRUN_LIBCUDA"); chosen && !chosen->empty()) return {*chosen};
  return {"libcuda.so.1", "/usr/lib64/nvidia/libcuda.so.1",
          "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1",
          "/usr/lib/wsl/lib/libcuda.so.1"};
}

// Runs in the child: load libcuda, ask the driver, print one line "key=value;..." to `fd`.
[[noreturn]] void probe_child(const std::vector<std::string>& candidates, int fd) {
  // An empty or invalid CUDA_VISIBLE_DEVICES makes cuInit fail (conda/conda#11667); the driver
  // version does not depend on which devices are visible.
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  std::string out;
  void* handle = nullptr;
  std::string tried;
  for (const auto& candidate : candidates) {
    handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) break;
    if (!tried.empty()) tried += ", ";
    tried += candidate;
  }
  if (!handle) {
    out = "error=no CUDA driver library found (tried " + tried + ")";
  } else {
    using InitFn = int (*)(unsigned);
    using VersionFn = int (*)(int*);
    using CountFn = int (*)(int*);
    using GetFn = int (*)(int*, int);
    using AttrFn = int (*)(int*, int, int);
    auto cu_init = reinterpret_cast<InitFn>(::dlsym(handle, "cuInit"));
    auto cu_version = reinterpret_cast<VersionFn>(::dlsym(handle, "cuDriverGetVersion"));
    Dl_info info{};
    std::string library = candidates.front();
    if (cu_version && ::dladdr(reinterpret_cast<void*>(cu_version), &info) && info.dli_fname)
      library = info.dli_fname;
    int version = 0;
    if (!cu_version) {
      out = "error=" + library + " has no cuDriverGetVersion";
    } else if (cu_init && cu_init(0) != 0) {
      // cuInit fails without a usable device or with a mismatched kernel module; the version
      // call may still answer, which is all the check needs.
      if (cu_version(&version) == 0 && version > 0)
        out = "cuda=" + std::to_string(version) + ";lib=" + library;
      else
        out = "error=cuInit failed in " + library + " (no usable GPU or driver mismatch)";
    } else if (cu_version(&version) != 0 || version < 1000 || version > 99990) {
      out = "error=cuDriverGetVersion failed in " + library;
    } else {
      out = "cuda=" + std::to_string(version) + ";lib=" + library;
      auto count_fn = reinterpret_cast<CountFn>(::dlsym(handle, "cuDeviceGetCount"));
      auto get_fn = reinterpret_cast<GetFn>(::dlsym(handle, "cuDeviceGet"));
      auto attr_fn = reinterpret_cast<AttrFn>(::dlsym(handle, "cuDeviceGetAttribute"));
      int count = 0;
      if (count_fn && get_fn && attr_fn && count_fn(&count) == 0 && count > 0) {
        int best_major = 1000, best_minor = 1000;
        for (int i = 0; i < count; ++i) {
          int device = 0, major = 0, minor = 0;
          // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
          if (get_fn(&device, i) != 0 || attr_fn(&major, 75, device) != 0 ||
              attr_fn(&minor, 76, device) != 0)
            continue;
          if (major < best_major || (major == best_major && minor < best_minor)) {
            best_major = major;
            best_minor = minor;
          }
        }
        if (best_major < 1000)
          out += ";arch=" + std::to_string(best_major) + "." + std::to_string(best_minor);
      }
    }
    // NVML knows the driver's own version ("535.104.05"): only for friendlier messages.
    if (void* nvml = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)) {
      using NvmlInit = int (*)();
      using NvmlDriver = int (*)(char*, unsigned);
      auto init = reinterpret_cast<NvmlInit>(::dlsym(nvml, "nvmlInit_v2"));
      auto driver = reinterpret_cast<NvmlDriver>(::dlsym(nvml, "nvmlSystemGetDriverVersion"));
      char buffer[96] = {};
      if (init && driver && init() == 0 && driver(buffer, sizeof buffer) == 0 && buffer[0])
        out += ";driver=" + std::string(buffer);
    }
  }
  out += "\n";
  ssize_t ignored = ::write(fd, out.data(), out.size());
  (void)ignored;
  ::_exit(0);
}

ProbeResult parse_probe_line(const std::string& line) {
  ProbeResult result;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ';')) {
    auto eq = field.find('=');
    if (eq == std::string::npos) continue;
    std::string key = field.substr(0, eq), value = trim(field.substr(eq + 1));
    if (key == "cuda") {
      result.cuda = std::atoi(value.c_str());
    } else if (key == "arch") {
      result.cuda_arch = value;
    } else if (key == "driver") {
      result.driver_version = value;
    } else if (key == "lib") {
      result.library = value;
    } else if (key == "error") {
      result.error = value;
    }
  }
  if (!result.cuda && result.error.empty()) result.error = "the driver probe gave no answer";
  return result;
}

ProbeResult probe_error(std::string why) {
  ProbeResult result;
  result.error = std::move(why);
  return result;
}

ProbeResult probe_cuda(const DetectOptions& options) {
  auto candidates = libcuda_candidates(options);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return probe_error(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return probe_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    probe_child(candidates, fds[1]);
  }
  ::close(fds[1]);
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_seconds);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      timed_out = rc == 0;
      break;
    }
    char buffer[512];
    ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return probe_error("the CUDA driver did not answer within " +
                       std::to_string(options.timeout_seconds) + " s");
  if (WIFSIGNALED(status))
    return probe_error("the CUDA driver probe crashed (signal " + std::to_string(WTERMSIG(status)) +
                       ")");
  return parse_probe_line(line);
}

std::string boot_id() {
  auto text = common::read_file("/proc/sys/kernel/random/boot_id", 4096);
  return text ? trim(*text) : std::string();
}

// The cached probe is valid for this boot, this library choice, and an unchanged library file.
std::string library_identity(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return "";
  return path + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// What a probe would load now: the first candidate, each absolute candidate's identity (or
// absence), and where the loader looks a bare name up (its cache, LD_LIBRARY_PATH). A kept probe
// holds only while this is the same, so a driver installed or replaced without a reboot is
// probed again, and a broken one is not (its timeout would be paid on every start).
std::string drivers_on_disk(const std::vector<std::string>& candidates) {
  std::string out = candidates.front();
  for (const std::string& candidate : candidates)
    if (candidate.starts_with('/')) out += "\n" + candidate + "=" + library_identity(candidate);
  out += "\nld.so.cache=" + library_identity("/etc/ld.so.cache");
  out += "\nLD_LIBRARY_PATH=" + env("LD_LIBRARY_PATH").value_or("");
  return out;
}

std::optional<ProbeResult> read_cached_probe(const fs::path& file, const std::string& boot,
                                             const std::string& choice) {
  auto text = common::read_file(file, 65536);
  if (!text) return std::nullopt;
  auto doc = common::parse_json(*text, file.string()).value_or(nlohmann::json());
  if (!doc.is_object()) return std::nullopt;
  if (doc.value("boot_id", "") != boot || doc.value("choice", "") != choice) return std::nullopt;
  ProbeResult result;
  result.library = doc.value("library", "");
  if (doc.value("library_identity", "") != library_identity(result.library)) return std::nullopt;
  if (doc.contains("cuda") && doc["cuda"].is_number_integer()) result.cuda = doc["cuda"].get<int>();
  if (doc.contains("cuda_arch") && doc["cuda_arch"].is_string())
    result.cuda_arch = doc["cuda_arch"].get<std::string>();
  if (doc.contains("driver") && doc["driver"].is_string())
    result.driver_version = doc["driver"].get<std::string>();
  result.error = doc.value("error", "");
  return result;
}

void write_cached_probe(const fs::path& file, const std::string& boot, const std::string& choice,
                        const ProbeResult& result) {
  nlohmann::json doc = {{"boot_id", boot},
                        {"choice", choice},
                        {"library", result.library},
                        {"library_identity", library_identity(result.library)},
                        {"error", result.error}};
  if (result.cuda) doc["cuda"] = *result.cuda;
  if (result.cuda_arch) doc["cuda_arch"] = *result.cuda_arch;
  if (result.driver_version) doc["driver"] = *result.driver_version;
  // A failed cache write only costs the next start a probe.
  if (common::make_dirs(file.parent_path())) (void)common::write_file_atomic(file, doc.dump());
}

}  // namespace

HostFacts detect_host(const DetectOptions& options) {
  HostFacts facts;
  auto overridden = [&](const char* name) {
    return options.honour_overrides ? env(name) : std::nullopt;
  };
  if (auto glibc = overridden("CONDA_OVERRIDE_GLIBC")) {
    if (!trim(*glibc).empty()) facts.glibc = trim(*glibc);
    facts.glibc_source = "CONDA_OVERRIDE_GLIBC";
  } else {
    std::string version = ::gnu_get_libc_version();
    facts.glibc = version;
    facts.glibc_source = "gnu_get_libc_version";
  }

  auto cuda_override = overridden("CONDA_OVERRIDE_CUDA");
  auto arch_override = overridden("CONDA_OVERRIDE_CUDA_ARCH");
  if (cuda_override) {
    // conda: a non-empty value is the version; an empty one means "no CUDA".
    std::string value = trim(*cuda_override);
    if (!value.empty()) facts.cuda = value;
    facts.cuda_source = "CONDA_OVERRIDE_CUDA";
  } else {
    std::string boot = boot_id();
    const std::string choice = drivers_on_disk(libcuda_candidates(options));
    fs::path cache_file =
        options.cache_dir.empty() ? fs::path() : options.cache_dir / "cuda-probe.json";
    std::optional<ProbeResult> probe;
    if (!cache_file.empty() && !boot.empty()) probe = read_cached_probe(cache_file, boot, choice);
    if (!probe) {
      probe = probe_cuda(options);
      if (!cache_file.empty() && !boot.empty())
        write_cached_probe(cache_file, boot, choice, *probe);
    }
    if (probe->cuda) {
      facts.cuda = cuda_version_string(*probe->cuda);
      facts.cuda_arch = probe->cuda_arch;
      facts.driver_version = probe->driver_version;
      facts.cuda_source = "cuDriverGetVersion in " + probe->library;
    } else {
      facts.cuda_source = "none: " + probe->error;
    }
  }
  if (arch_override) {
    std::string value = trim(*arch_override);
    facts.cuda_arch = value.empty() ? std::nullopt : std::optional<std::string>(value);
  }
  if (!facts.cuda) facts.cuda_arch.reset();
  return facts;
}

std::string kernel_release() {
  struct utsname u {};
  if (::uname(&u) != 0) return "";
  std::string release = u.release;
  size_t end = release.find_first_not_of("0123456789.");
  release = release.substr(0, end);
  while (!release.empty() && release.back() == '.') release.pop_back();
  return release;
}

std::string glibc_major_minor() {
  std::string v = ::gnu_get_libc_version();
  // "2.36" or "2.35.1": keep major.minor.
  size_t first = v.find('.');
  size_t second = first == std::string::npos ? std::string::npos : v.find('.', first + 1);
  return second == std::string::npos ? v : v.substr(0, second);
}

}  // namespace envbuild::conda
