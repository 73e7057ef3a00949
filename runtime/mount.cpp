#include "runtime/mount.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>

#include "common/format.hpp"
#include "runtime/activate.hpp"

extern char** environ;

namespace envbuild::runtime {

namespace fs = std::filesystem;

namespace {

constexpr long kSquashfsMagic = 0x73717368;
constexpr long kFuseMagic = 0x65735546;
/// squashfuse mounts in milliseconds; a minute means something is stuck.
constexpr int kMountTimeoutMs = 60000;

std::string with_suffix(const fs::path& dir, std::string_view suffix) {
  return dir.string() + std::string(suffix);
}

Result<common::Fd> open_lock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return common::errno_error("open", path, errno);
  return common::Fd(fd);
}

Result<void> flock_retry(const common::Fd& fd, int op, const std::string& path) {
  while (::flock(fd.get(), op) != 0)
    if (errno != EINTR) return common::errno_error("flock", path, errno);
  return ok();
}

enum class State { NotMounted, Mounted, Dead };

State mount_state(const fs::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errno == ENOTCONN ? State::Dead : State::NotMounted;
  struct stat parent {};
  if (::stat(dir.parent_path().c_str(), &parent) != 0) return State::NotMounted;
  return st.st_dev != parent.st_dev ? State::Mounted : State::NotMounted;
}

std::optional<MountMethod> method_of_mount(const fs::path& dir) {
  struct statfs sf {};
  if (::statfs(dir.c_str(), &sf) != 0) return std::nullopt;
  if (sf.f_type == kSquashfsMagic) return MountMethod::Kernel;
  if (sf.f_type == kFuseMagic) return MountMethod::Squashfuse;
  return std::nullopt;
}

std::string path_variable() {
  const char* path = std::getenv("PATH");
  return path ? path : "/usr/local/bin:/usr/bin:/bin";
}

/// `program` with `args`, stdin from /dev/null, stdout and stderr into `log`; waits at most
/// kMountTimeoutMs. Returns the exit status, or an error when it could not run or timed out.
Result<int> run_logged(const std::string& program, const std::vector<std::string>& args,
                       const std::string& log) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return common::errno_error("posix_spawn", program, rc);
  // A pidfd lets us wait with a timeout and no signal handler.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    common::Fd owned(pidfd);
    pollfd p{pidfd, POLLIN, 0};
    int ready = 0;
    while ((ready = ::poll(&p, 1, kMountTimeoutMs)) < 0 && errno == EINTR) {
    }
    if (ready == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return fail(Errc::Io, program + " did not finish within " +
                                std::to_string(kMountTimeoutMs / 1000) + " s");
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return common::errno_error("waitpid", program, errno);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string log_text(const std::string& log) {
  auto text = common::read_file(log, 4096);
  if (!text) return "";
  std::string t = common::printable(*text);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

Result<void> mount_with_kernel(const fs::path& image, const fs::path& dir) {
  if (::geteuid() != 0)
    return fail(Errc::Unsupported,
                "the kernel mount needs root (the kernel does not mount squashfs in a user "
                "namespace)");
  ENVB_ASSIGN_OR_RETURN(common::Fd file, common::Fd::open(image.string(), O_RDONLY | O_CLOEXEC));
  ENVB_ASSIGN_OR_RETURN(common::Fd control,
                        common::Fd::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  // Another process may take the free device between the query and the ioctl: ask again.
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return common::errno_error("ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control", errno);
    const std::string device = "/dev/loop" + std::to_string(n);
    ENVB_ASSIGN_OR_RETURN(common::Fd loop, common::Fd::open(device, O_RDONLY | O_CLOEXEC));
    loop_config config{};
    config.fd = static_cast<__u32>(file.get());
    // Autoclear: the device detaches itself once the mount is gone.
    config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), image.c_str(),
                 LO_NAME_SIZE - 1);
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) != 0) {
      if (errno == EBUSY) continue;
      return common::errno_error("ioctl(LOOP_CONFIGURE)", device, errno);
    }
    if (::mount(device.c_str(), dir.c_str(), "squashfs", MS_RDONLY | MS_NODEV | MS_NOSUID,
                nullptr) != 0) {
      int err = errno;
      ::ioctl(loop.get(), LOOP_CLR_FD, 0);
      return common::errno_error("mount(squashfs)", dir.string(), err);
    }
    return ok();
  }
  return fail(Errc::Io, "no free loop device (every one was taken while we tried)");
}

Result<void> mount_with_squashfuse(const fs::path& image, const fs::path& dir) {
  std::optional<std::string> program;
  if (const char* set = std::getenv("ENVRUN_SQUASHFUSE"); set && *set) program = set;
  for (const char* name : {"squashfuse_ll", "squashfuse"})
    if (!program) program = find_in_path(name, path_variable());
  if (!program)
    return fail(
        Errc::Unsupported,
        "squashfuse is not installed (Debian/Ubuntu: squashfuse; or set ENVRUN_SQUASHFUSE)");
  if (::access("/dev/fuse", R_OK | W_OK) != 0)
    return common::errno_error("access", "/dev/fuse", errno);
  const std::string log = with_suffix(dir, ".log");
  // fusermount3 adds both for users; root's own FUSE mount gets them only when asked.
  ENVB_ASSIGN_OR_RETURN(
      int status, run_logged(*program, {"-o", "nosuid,nodev", image.string(), dir.string()}, log));
  if (status != 0 || mount_state(dir) != State::Mounted)
    return fail(Errc::Io,
                *program + " exited with " + std::to_string(status) + ": " + log_text(log));
  return ok();
}

/// Takes the mount at `dir` away (lazily: a process still inside keeps its view).
void unmount(const fs::path& dir, const std::string& fusermount) {
  if (::geteuid() == 0 || method_of_mount(dir) == MountMethod::Kernel || fusermount.empty()) {
    ::umount2(dir.c_str(), MNT_DETACH);
    return;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    const char* argv[] = {fusermount.c_str(), "-u", "-z", "-q", dir.c_str(), nullptr};
    ::execv(fusermount.c_str(), const_cast<char* const*>(argv));
    ::_exit(127);
  }
  if (pid > 0)
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

std::string fusermount_path() {
  for (const char* name : {"fusermount3", "fusermount"})
    if (auto found = find_in_path(name, path_variable())) return *found;
  return "";
}

/// The watcher: a detached process that waits until nobody uses the mount, then unmounts it.
/// Returns once the watcher holds its watch lock (so a test, or gc, that takes the watch lock
/// after the last user exits always finds the mount gone), or at once when another watcher lives.
void start_watcher(const fs::path& dir) {
  const std::string use = with_suffix(dir, ".lock");
  const std::string mount_lock = with_suffix(dir, ".mount.lock");
  const std::string watch = with_suffix(dir, ".watch.lock");
  const std::string fusermount = fusermount_path();
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return;
  }
  if (pid == 0) {
    // The intermediate child: a new session, then the watcher as an orphan (no zombie for us).
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    // Nothing of envrun's stays open (the use lock least of all: we would wait on ourselves),
    // but the ready pipe, moved to 3.
    int keep = ::fcntl(ready[1], F_DUPFD, 100);
    int null = ::open("/dev/null", O_RDWR);
    if (keep < 0 || null < 0) ::_exit(1);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::dup2(keep, 3);
    ready[1] = 3;
    if (::syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
      for (int fd = 4; fd < 65536; ++fd) ::close(fd);
    if (::chdir("/") != 0) ::_exit(1);
    int w = ::open(watch.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    bool alone = w >= 0 && ::flock(w, LOCK_EX | LOCK_NB) == 0;
    char byte = alone ? 1 : 0;
    (void)!::write(ready[1], &byte, 1);
    ::close(ready[1]);
    if (!alone) ::_exit(0);
    int u = ::open(use.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    while (::flock(u, LOCK_EX) != 0 && errno == EINTR) {
    }
    int m = ::open(mount_lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    while (::flock(m, LOCK_EX) != 0 && errno == EINTR) {
    }
    if (mount_state(dir) != State::NotMounted) unmount(dir, fusermount);
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  while (::read(ready[0], &byte, 1) < 0 && errno == EINTR) {
  }
  ::close(ready[0]);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool watcher_alive(const fs::path& dir) {
  auto lock =
      common::FileLock::try_acquire(with_suffix(dir, ".watch.lock"), common::LockMode::Exclusive);
  return lock && !lock->has_value();
}

}  // namespace

std::string_view to_string(MountMethod method) {
  return method == MountMethod::Kernel ? "kernel" : "squashfuse";
}

Result<MountChoice> mount_choice_from_environment() {
  const char* value = std::getenv("ENVRUN_SQUASHFS_MOUNT");
  std::string_view v = value ? value : "";
  if (v.empty() || v == "auto") return MountChoice{};
  if (v == "kernel") return MountChoice{true, false};
  if (v == "fuse") return MountChoice{false, true};
  if (v == "none") return MountChoice{false, false};
  return fail(Errc::InvalidInput,
              "ENVRUN_SQUASHFS_MOUNT='" + std::string(v) + "': want auto, kernel, fuse or none");
}

UserNamespace user_namespace_from_environment() {
  const char* value = std::getenv("ENVRUN_SQUASHFS_USERNS");
  return value && std::string_view(value) == "1" ? UserNamespace::Always
                                                 : UserNamespace::WhenNotRoot;
}

bool is_mount_point(const fs::path& dir) {
  return mount_state(dir) == State::Mounted;
}

Result<MountLease> acquire_shared_mount(const fs::path& image, const fs::path& dir,
                                        const MountChoice& choice) {
  MountLease lease;
  lease.dir = dir;
  const std::string use = with_suffix(dir, ".lock");
  ENVB_ASSIGN_OR_RETURN(lease.in_use, open_lock(use));
  // Shared first: while a watcher takes the mount down it holds this exclusively.
  ENVB_TRY(flock_retry(lease.in_use, LOCK_SH, use));
  ENVB_ASSIGN_OR_RETURN(auto mounting, common::FileLock::acquire(with_suffix(dir, ".mount.lock"),
                                                                 common::LockMode::Exclusive));
  State state = mount_state(dir);
  if (state == State::Dead) {  // its squashfuse was killed
    unmount(dir, fusermount_path());
    state = mount_state(dir);
  }
  if (state == State::Mounted) {
    lease.method = method_of_mount(dir).value_or(MountMethod::Squashfuse);
  } else {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return common::errno_error("mkdir", dir.string(), errno);
    std::string why;
    auto attempt = [&](bool allowed, MountMethod method,
                       const std::function<Result<void>()>& mount) {
      if (!allowed || lease.mounted_now) return;
      auto mounted = mount();
      if (mounted) {
        lease.method = method;
        lease.mounted_now = true;
      } else {
        why += std::string(why.empty() ? "" : "; ") + std::string(to_string(method)) + ": " +
               mounted.error().to_string();
      }
    };
    attempt(choice.kernel, MountMethod::Kernel, [&] { return mount_with_kernel(image, dir); });
    attempt(choice.fuse, MountMethod::Squashfuse,
            [&] { return mount_with_squashfuse(image, dir); });
    if (!lease.mounted_now)
      return fail(Errc::Unsupported,
                  "cannot mount " + image.string() + ": " +
                      (why.empty() ? "mounting is turned off (ENVRUN_SQUASHFS_MOUNT=none)" : why));
  }
  if (!watcher_alive(dir)) start_watcher(dir);
  return lease;
}

Result<bool> unmount_if_idle(const fs::path& dir) {
  ENVB_ASSIGN_OR_RETURN(auto idle, common::FileLock::try_acquire(with_suffix(dir, ".lock"),
                                                                 common::LockMode::Exclusive));
  if (!idle) return false;
  ENVB_ASSIGN_OR_RETURN(auto mounting, common::FileLock::acquire(with_suffix(dir, ".mount.lock"),
                                                                 common::LockMode::Exclusive));
  if (mount_state(dir) == State::NotMounted) return false;
  unmount(dir, fusermount_path());
  return mount_state(dir) == State::NotMounted;
}

Result<void> unmount_held(const fs::path& dir) {
  ENVB_ASSIGN_OR_RETURN(auto mounting, common::FileLock::acquire(with_suffix(dir, ".mount.lock"),
                                                                 common::LockMode::Exclusive));
  if (mount_state(dir) != State::NotMounted) unmount(dir, fusermount_path());
  if (mount_state(dir) != State::NotMounted)
    return fail(Errc::Io, "cannot unmount " + dir.string());
  return ok();
}

namespace {

Result<void> write_proc(const std::string& file, const std::string& text) {
  ENVB_ASSIGN_OR_RETURN(common::Fd fd, common::Fd::open(file, O_WRONLY | O_CLOEXEC));
  return fd.write_all(std::as_bytes(std::span(text.data(), text.size())), file);
}

}  // namespace

Result<void> enter_private_view(const fs::path& source, const std::string& prefix,
                                UserNamespace user_namespace) {
  struct stat st {};
  if (::stat(prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(Errc::NotFound, "the prefix " + prefix + " does not exist on this host")
        .with_hint("create it (an empty directory: mkdir -p " + prefix +
                   ") to run the image in place; envrun never creates a directory an image names");
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (uid == 0 && user_namespace == UserNamespace::WhenNotRoot) {
    if (::unshare(CLONE_NEWNS) != 0) return common::errno_error("unshare(CLONE_NEWNS)", "", errno);
  } else {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
      return Error(Errc::Unsupported,
                   "unshare(CLONE_NEWUSER|CLONE_NEWNS): " + std::string(std::strerror(errno)))
          .with_hint(
              "this host allows no user namespaces (sysctl user.max_user_namespaces, "
              "kernel.unprivileged_userns_clone, or a seccomp policy)");
    // The user stays itself inside: no root, no other ids.
    ENVB_TRY(write_proc("/proc/self/setgroups", "deny"));
    ENVB_TRY(
        write_proc("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1"));
    ENVB_TRY(
        write_proc("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1"));
  }
  // Slaves: the host's later mounts still reach us, ours never reach the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    return common::errno_error("mount(MS_SLAVE)", "/", errno);
  if (::mount(source.c_str(), prefix.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return common::errno_error("mount(MS_BIND)", source.string() + " -> " + prefix, errno);
  return ok();
}

}  // namespace envbuild::runtime
