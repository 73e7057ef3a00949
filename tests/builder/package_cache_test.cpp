// The package cache: verified before use, nothing corrupt or half-written ever visible, shared
// safely between threads and processes, and clean again after a process is killed mid-way.

#include "builder/install/package_cache.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common/hash.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::shell_quote;
using testing::TempDirTest;

fs::path subset_dir() {
  return testing::data_dir() / "packages/channels/conda-forge-subset/linux-64";
}

const char* kXz = "xz-5.2.6-h166bdaf_0.tar.bz2";
const char* kZlib = "libzlib-1.3.1-h4ab18f5_1.conda";

PackageRef local_ref(const fs::path& file) {
  PackageRef ref;
  ref.url = "file://" + file.string();
  ref.sha256 = *common::sha256_file(file.string());
  ref.size = fs::file_size(file);
  return ref;
}

// Every name under `root` that looks like an unfinished write (".x.tmp.*", ".x.part").
std::vector<std::string> leftovers(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); ++it) {
    std::string name = it->path().filename().string();
    if (name.find(".tmp.") != std::string::npos || name.ends_with(".part")) {
      out.push_back(it->path().string());
      it.disable_recursion_pending();
    }
  }
  return out;
}

class PackageCacheTest : public TempDirTest {
 protected:
  PackageCache cache(size_t jobs = 4) {
    PackageCacheOptions options;
    options.root = dir_ / "cache";
    options.jobs = jobs;
    options.http.max_retries = 0;
    return PackageCache(options);
  }
};

TEST_F(PackageCacheTest, FetchVerifiesExtractsAndReusesLocalPackages) {
  std::vector<PackageRef> refs = {local_ref(subset_dir() / kXz), local_ref(subset_dir() / kZlib)};
  auto first = cache().fetch(refs);
  ASSERT_TRUE(first) << first.error().to_string();
  ASSERT_EQ(first->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE((*first)[i].downloaded);
    EXPECT_TRUE((*first)[i].extracted_now);
    EXPECT_EQ((*first)[i].archive, dir_ / "cache/pkgs" / refs[i].sha256 / archive_name(refs[i]));
    EXPECT_TRUE(fs::exists((*first)[i].extracted / "info/index.json"));
  }
  EXPECT_TRUE(fs::exists((*first)[0].extracted / "bin/xz"));
  auto second = cache().fetch(refs);
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_FALSE((*second)[0].downloaded);
  EXPECT_FALSE((*second)[0].extracted_now);
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
}

TEST_F(PackageCacheTest, Md5OnlyRefIsVerifiedAndKeyedByMd5) {
  PackageRef ref = local_ref(subset_dir() / kXz);
  ref.md5 = *common::md5_file((subset_dir() / kXz).string());
  ref.sha256.clear();
  auto got = cache().fetch({ref});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ((*got)[0].archive.parent_path().filename(), "md5-" + ref.md5);
  EXPECT_EQ((*got)[0].sha256, *common::sha256_file((subset_dir() / kXz).string()));
  ref.md5 = std::string(32, '0');
  auto bad = cache().fetch({ref});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::Integrity);
}

// Given an HTTP channel serving a package whose bytes do not match the hash (corrupted) or are
// cut short (truncated), expect an Integrity error naming the package, nothing under pkgs/ or
// extracted/, and a later fetch of the right bytes to succeed.
TEST_F(PackageCacheTest, CorruptedOrTruncatedDownloadNeverEntersTheCache) {
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  std::string good = testing::read_text(served / kXz);
  {
    std::ofstream(served / "truncated.tar.bz2", std::ios::binary)
        << good.substr(0, good.size() / 2);
    std::string flipped = good;
    flipped[flipped.size() / 2] ^= 0x55;
    std::ofstream(served / "corrupt.tar.bz2", std::ios::binary) << flipped;
  }
  testing::RepoServer server(served, dir_);
  ASSERT_NE(server.port(), 0);
  PackageRef right = local_ref(served / kXz);
  for (std::string bad : {"truncated.tar.bz2", "corrupt.tar.bz2"}) {
    SCOPED_TRACE(bad);
    PackageRef ref = right;
    ref.url = server.url() + "/" + bad;
    ref.fn = kXz;
    auto got = cache().fetch({ref});
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::Integrity) << got.error().to_string();
    EXPECT_NE(got.error().to_string().find(kXz), std::string::npos) << got.error().to_string();
    // The message names both hashes, the truncated one its sizes too.
    EXPECT_NE(got.error().to_string().find("expected " + ref.sha256), std::string::npos)
        << got.error().to_string();
    EXPECT_FALSE(fs::exists(dir_ / "cache/pkgs" / ref.sha256 / kXz));
    EXPECT_FALSE(fs::exists(dir_ / "cache/extracted" / ref.sha256));
    EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  }
  right.url = server.url() + "/" + kXz;
  auto got = cache().fetch({right});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_TRUE((*got)[0].downloaded);
  EXPECT_TRUE(fs::exists((*got)[0].extracted / "bin/xz"));
}

// A server that never sends a byte (503 on every attempt, then the connection refused) leaves no
// empty `.part` behind; one with bytes in it is kept to be resumed (DroppedDownload... below).
TEST_F(PackageCacheTest, FailedDownloadWithoutBytesLeavesNoPartFile) {
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  PackageRef ref = local_ref(served / kXz);
  {
    testing::RepoServer server(served, dir_, 1000);
    ASSERT_NE(server.port(), 0);
    ref.url = server.url() + "/" + kXz;
    auto got = cache().fetch({ref});
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().to_string().find("503"), std::string::npos) << got.error().to_string();
    EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  }
  auto refused = cache().fetch({ref});  // the server is gone
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Network) << refused.error().to_string();
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
}

TEST_F(PackageCacheTest, OfflineMissPackageIsNotFoundWithHint) {
  PackageCacheOptions options;
  options.root = dir_ / "cache";
  options.offline = true;
  auto got = PackageCache(options).fetch({local_ref(subset_dir() / kXz)});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::NotFound);
  EXPECT_NE(got.error().to_string().find("--offline"), std::string::npos);
}

// Given packages without sizes (as in an @EXPLICIT lock) and one worker, expect the .tar.bz2
// archives (slow to decompress) handed out first and the .conda ones in the given order, with
// on_ready told each package's index in the request.
TEST_F(PackageCacheTest, Bz2ArchivesStartFirstAndOnReadyNamesTheIndex) {
  const char* kFfi = "libffi-3.4.2-h7f98852_5.tar.bz2";
  const char* kUuid = "libuuid-2.38.1-h0b41bf4_0.conda";
  std::vector<PackageRef> refs = {local_ref(subset_dir() / kZlib), local_ref(subset_dir() / kXz),
                                  local_ref(subset_dir() / kUuid), local_ref(subset_dir() / kFfi)};
  for (auto& ref : refs) ref.size.reset();
  PackageCacheOptions options;
  options.root = dir_ / "cache";
  options.jobs = 1;
  std::vector<size_t> seen;
  options.on_ready = [&](size_t index, const PackageRef& ref,
                         const CachedPackage& cached) -> Result<void> {
    EXPECT_EQ(&ref, &refs[index]);
    EXPECT_EQ(cached.archive.filename(), archive_name(refs[index]));
    seen.push_back(index);
    return ok();
  };
  auto got = PackageCache(options).fetch(refs);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(seen, (std::vector<size_t>{1, 3, 0, 2}));
  // With sizes, the bigger job first.
  refs = {local_ref(subset_dir() / kUuid), local_ref(subset_dir() / kZlib)};
  ASSERT_LT(*refs[0].size, *refs[1].size);
  seen.clear();
  got = PackageCache(options).fetch(refs);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(seen, (std::vector<size_t>{1, 0}));
}

// Given one download worker and an on_ready for the first package that waits for the second
// package's archive, expect the archive to arrive: downloads go on while a package is
// extracted and made ready (one worker doing both in turn would wait forever here).
TEST_F(PackageCacheTest, DownloadsGoOnWhileAPackageIsExtracted) {
  std::vector<PackageRef> refs = {local_ref(subset_dir() / kXz), local_ref(subset_dir() / kZlib)};
  const fs::path second = dir_ / "cache/pkgs" / refs[1].sha256 / kZlib;
  PackageCacheOptions options;
  options.root = dir_ / "cache";
  options.jobs = 1;
  bool arrived = false;
  options.on_ready = [&](size_t index, const PackageRef&, const CachedPackage&) -> Result<void> {
    if (index != 0) return ok();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!(arrived = fs::exists(second)) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return ok();
  };
  auto got = PackageCache(options).fetch(refs);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_TRUE(arrived) << second;
  EXPECT_TRUE((*got)[1].extracted_now);
}

// Given an on_ready that fails for one package, expect the batch to stop with that error, no
// on_ready after it, and the packages that were already ready to stay in the cache.
TEST_F(PackageCacheTest, OnReadyErrorStopsTheBatchAndKeepsWhatIsCached) {
  std::vector<PackageRef> refs = {local_ref(subset_dir() / kXz), local_ref(subset_dir() / kZlib),
                                  local_ref(subset_dir() / "libuuid-2.38.1-h0b41bf4_0.conda")};
  PackageCacheOptions options;
  options.root = dir_ / "cache";
  options.jobs = 1;
  std::vector<size_t> seen;
  options.on_ready = [&](size_t index, const PackageRef&, const CachedPackage&) -> Result<void> {
    seen.push_back(index);
    if (index == 1) return fail(Errc::Integrity, "planning libzlib failed");
    return ok();
  };
  auto got = PackageCache(options).fetch(refs);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::Integrity) << got.error().to_string();
  EXPECT_NE(got.error().to_string().find("planning libzlib failed"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(dir_ / "cache/extracted" / refs[0].sha256));
  EXPECT_TRUE(fs::is_directory(dir_ / "cache/extracted" / refs[1].sha256));
  EXPECT_EQ(seen, (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
}

// Given one package that cannot be downloaded after one that can (one worker, so the order is
// known), expect the error to name the failed package and the good one to stay cached.
TEST_F(PackageCacheTest, FailedDownloadNamesThePackageAndKeepsTheOthersCached) {
  PackageRef good = local_ref(subset_dir() / kXz);
  PackageRef missing = local_ref(subset_dir() / kZlib);
  missing.url = "file://" + (dir_ / "nowhere" / kZlib).string();
  missing.sha256 = std::string(64, 'a');
  auto got = cache(1).fetch({missing, good});
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().to_string().find(kZlib), std::string::npos) << got.error().to_string();
  EXPECT_TRUE(fs::is_directory(dir_ / "cache/extracted" / good.sha256));
  EXPECT_FALSE(fs::exists(dir_ / "cache/extracted" / missing.sha256));
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
}

// Given a package (with the right hash) whose archive holds "../evil", expect extraction to fail
// with Integrity, no extracted/ entry, nothing written outside, and the same cache to go on
// working for a good package.
TEST_F(PackageCacheTest, HostileArchiveLeavesNoExtractedTree) {
  fs::path pkg = dir_ / "src/evil-1.0-0.tar.bz2";
  fs::create_directories(pkg.parent_path());
  std::string script =
      "import io,tarfile,sys\n"
      "t=tarfile.open(sys.argv[1],'w:bz2')\n"
      "def add(n,d):\n"
      "  i=tarfile.TarInfo(n); i.size=len(d); t.addfile(i,io.BytesIO(d))\n"
      "add('info/index.json',b'{\"name\":\"evil\",\"version\":\"1.0\",\"build\":\"0\"}')\n"
      "add('../evil',b'pwned')\n"
      "t.close()\n";
  testing::write_text(dir_ / "mk.py", script);
  auto made = run_command("python3 " + shell_quote((dir_ / "mk.py").string()) + " " +
                          shell_quote(pkg.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  PackageRef ref = local_ref(pkg);
  auto got = cache().fetch({ref});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::Integrity) << got.error().to_string();
  EXPECT_FALSE(fs::exists(dir_ / "cache/extracted" / ref.sha256));
  EXPECT_FALSE(fs::exists(dir_ / "cache/evil"));
  EXPECT_FALSE(fs::exists(dir_ / "cache/extracted/evil"));
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  auto good = cache().fetch({local_ref(subset_dir() / kZlib)});
  EXPECT_TRUE(good) << good.error().to_string();
}

// Given 8 threads in one process and 3 processes asking for the same packages at once, expect
// each package downloaded and extracted exactly once and every caller to get it.
TEST_F(PackageCacheTest, ConcurrentFetchesOfTheSamePackageShareOneDownload) {
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  fs::copy_file(subset_dir() / kZlib, served / kZlib);
  testing::RepoServer server(served, dir_);
  ASSERT_NE(server.port(), 0);
  std::vector<PackageRef> refs;
  for (const char* fn : {kXz, kZlib}) {
    PackageRef ref = local_ref(served / fn);
    ref.url = server.url() + "/" + fn;
    for (int i = 0; i < 4; ++i) refs.push_back(ref);
  }
  std::vector<pid_t> children;
  for (int p = 0; p < 3; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto got = cache(8).fetch(refs);
      ::_exit(got ? 0 : 1);
    }
    children.push_back(pid);
  }
  auto got = cache(8).fetch(refs);
  ASSERT_TRUE(got) << got.error().to_string();
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  size_t gets = 0;
  for (const auto& line : server.log_lines())
    if (line.find("\"GET\"") != std::string::npos) ++gets;
  EXPECT_EQ(gets, 2u);
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
}

// A process killed (SIGKILL) while it downloads or extracts leaves only temp files; the next
// process removes them, fetches again and succeeds.
class PackageCacheKillTest : public PackageCacheTest {
 protected:
  // Forks a child that fetches `ref`; kills it with SIGKILL once `ready()` holds. False if the
  // child finished first, or `ready()` did not hold within a minute (the child is killed then).
  bool kill_when(const PackageRef& ref, const std::function<bool()>& ready) {
    pid_t pid = ::fork();
    if (pid == 0) {
      auto got = cache(1).fetch({ref});
      ::_exit(got ? 0 : 1);
    }
    bool killed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!killed && std::chrono::steady_clock::now() < deadline) {
      if (ready()) {
        killed = true;
        break;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a poll of ready()
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return killed && WIFSIGNALED(status);
  }

  static constexpr uint64_t kMaxFileSize = 4u << 20;

  // Fetches `ref` in a child that may write no file over kMaxFileSize (RLIMIT_FSIZE): the write
  // that would raises SIGXFSZ, whose handler SIGKILLs the child right there. True when it died
  // that way.
  bool killed_writing_a_big_file(const PackageRef& ref) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::signal(SIGXFSZ, [](int) { ::raise(SIGKILL); });
      const rlimit limit{kMaxFileSize, kMaxFileSize};
      ::setrlimit(RLIMIT_FSIZE, &limit);
      auto got = cache(1).fetch({ref});
      ::_exit(got ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
};

TEST_F(PackageCacheKillTest, KilledDuringDownloadThenNextRunSucceeds) {
  // A server that sends half of the package and then waits for the client to go away: the
  // child cannot finish, so it is killed with part of the file whatever the machine's speed.
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  testing::write_text(
      dir_ / "stalling.py",
      "import http.server,os,sys\n"
      "root=sys.argv[1]\n"
      "class H(http.server.BaseHTTPRequestHandler):\n"
      "  def log_message(self,*a): pass\n"
      "  def do_GET(self):\n"
      "    d=open(os.path.join(root,self.path.lstrip('/')),'rb').read()\n"
      "    self.send_response(200); self.send_header('Content-Length',str(len(d)))\n"
      "    self.end_headers()\n"
      "    self.wfile.write(d[:len(d)//2]); self.wfile.flush()\n"
      "    self.rfile.read()\n"  // returns when the client's connection closes
      "s=http.server.ThreadingHTTPServer(('127.0.0.1',0),H)\n"
      "open(sys.argv[2]+'.tmp','w').write(str(s.server_address[1]))\n"
      "os.rename(sys.argv[2]+'.tmp',sys.argv[2])\n"  // the port file appears whole
      "s.serve_forever()\n");
  fs::path port_file = dir_ / "stalling.port";
  auto started = run_command("python3 " + shell_quote((dir_ / "stalling.py").string()) + " " +
                             shell_quote(served.string()) + " " + shell_quote(port_file.string()) +
                             " >/dev/null 2>&1 & echo $!");
  struct Stopper {
    int pid;
    ~Stopper() {
      if (pid > 0) ::kill(pid, SIGTERM);
    }
  } stalling_server{std::atoi(started.output.c_str())};
  for (int i = 0; i < 6000 && !fs::exists(port_file); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(fs::exists(port_file)) << "the stalling server did not start";
  std::string port = testing::read_text(port_file);
  PackageRef ref = local_ref(served / kXz);
  ref.url = "http://127.0.0.1:" + port + "/" + kXz;
  fs::path part = dir_ / "cache/pkgs" / ref.sha256 / (std::string(".") + kXz + ".part");
  // Killed once the part holds some bytes (xz is about 400 KiB: the server sends half).
  const bool killed = kill_when(ref, [&] {
    std::error_code ec;
    return fs::exists(part, ec) && fs::file_size(part, ec) >= 65536;
  });
  ASSERT_TRUE(killed) << "the child finished before it could be killed";
  EXPECT_FALSE(fs::exists(dir_ / "cache/pkgs" / ref.sha256 / kXz));
  EXPECT_FALSE(leftovers(dir_ / "cache").empty());  // what a kill leaves: the part
  uint64_t had = fs::file_size(part);
  // The next run resumes the part from a server that does ranges, and verifies the whole file.
  fs::create_directories(dir_ / "srv");
  testing::RepoServer server(served, dir_ / "srv");
  ASSERT_NE(server.port(), 0);
  ref.url = server.url() + "/" + kXz;
  auto got = cache().fetch({ref});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  EXPECT_TRUE(fs::exists(got->front().extracted / "bin/xz"));
  auto log = server.log_lines();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("\"range\": \"bytes=" + std::to_string(had) + "-\""), std::string::npos)
      << log[0];
  EXPECT_NE(log[0].find("\"status\": 206"), std::string::npos) << log[0];
}

// A connection dropped in the middle of a package keeps the part; the retry asks for the rest
// (206), or takes the whole file again from a server without ranges (200). Either way the file
// is verified whole.
TEST_F(PackageCacheTest, DroppedDownloadResumesWithRangeOrRestartsOn200) {
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  const uint64_t size = fs::file_size(served / kXz);
  for (bool ranges : {true, false}) {
    SCOPED_TRACE(ranges ? "server with ranges" : "server without ranges");
    fs::path scratch = dir_ / (ranges ? "s1" : "s2");
    fs::create_directories(scratch);
    fs::remove_all(dir_ / "cache");
    testing::RepoServer server(served, scratch, 0, "",
                               ranges ? "--drop-once" : "--drop-once --no-range");
    ASSERT_NE(server.port(), 0);
    PackageRef ref = local_ref(served / kXz);
    ref.url = server.url() + "/" + kXz;
    auto got = cache().fetch({ref});
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_TRUE((*got)[0].downloaded);
    EXPECT_EQ(*common::sha256_file((*got)[0].archive.string()), ref.sha256);
    EXPECT_TRUE(fs::exists((*got)[0].extracted / "bin/xz"));
    EXPECT_TRUE(leftovers(dir_ / "cache").empty());
    auto log = server.log_lines();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_NE(log[0].find("\"dropped\": true"), std::string::npos) << log[0];
    EXPECT_NE(log[1].find("\"range\": \"bytes=" + std::to_string(size / 2) + "-\""),
              std::string::npos)
        << log[1];
    EXPECT_NE(log[1].find(ranges ? "\"status\": 206" : "\"status\": 200"), std::string::npos)
        << log[1];
  }
}

// A body corrupted on the way (same length, one byte changed) fails its sha256 and is fetched
// once more from the start; a package that fails twice is an error (the corrupt case above).
TEST_F(PackageCacheTest, DownloadCorruptedOnceIsFetchedAgain) {
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  testing::RepoServer server(served, dir_, 0, "", "--corrupt-once");
  ASSERT_NE(server.port(), 0);
  PackageRef ref = local_ref(served / kXz);
  ref.url = server.url() + "/" + kXz;
  auto got = cache().fetch({ref});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*common::sha256_file((*got)[0].archive.string()), ref.sha256);
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  EXPECT_EQ(server.log_lines().size(), 2u);
}

// A part left by someone else that does not belong to the file (wrong bytes): the resumed file
// fails its sha256, the part is dropped, and the package is fetched once more from the start.
TEST_F(PackageCacheTest, ResumedFileThatFailsVerificationIsFetchedAgainWhole) {
  fs::path served = dir_ / "served";
  fs::create_directories(served);
  fs::copy_file(subset_dir() / kXz, served / kXz);
  testing::RepoServer server(served, dir_);
  ASSERT_NE(server.port(), 0);
  PackageRef ref = local_ref(served / kXz);
  ref.url = server.url() + "/" + kXz;
  fs::create_directories(dir_ / "cache/pkgs" / ref.sha256);
  testing::write_text(dir_ / "cache/pkgs" / ref.sha256 / (std::string(".") + kXz + ".part"),
                      std::string(1000, 'x'));
  auto got = cache().fetch({ref});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*common::sha256_file((*got)[0].archive.string()), ref.sha256);
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  auto log = server.log_lines();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[0].find("\"range\": \"bytes=1000-\""), std::string::npos) << log[0];
  EXPECT_NE(log[1].find("\"range\": null"), std::string::npos) << log[1];
}

TEST_F(PackageCacheKillTest, KilledDuringExtractionThenNextRunSucceeds) {
  // openssl's archive (2.9 MB) is under the limit and its libcrypto.so.3 (6.2 MB) over it: the
  // child dies while it extracts, however fast the machine is.
  fs::path pkg = subset_dir() / "openssl-3.3.1-h4ab18f5_1.conda";
  PackageRef ref = local_ref(pkg);
  ASSERT_LT(fs::file_size(pkg), kMaxFileSize);
  ASSERT_TRUE(killed_writing_a_big_file(ref));
  EXPECT_FALSE(fs::exists(dir_ / "cache/extracted" / ref.sha256));
  EXPECT_TRUE(fs::exists(dir_ / "cache/pkgs" / ref.sha256 / pkg.filename()));
  EXPECT_FALSE(leftovers(dir_ / "cache/extracted").empty());  // what a kill leaves: the temp tree
  auto got = cache().fetch({ref});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_TRUE(leftovers(dir_ / "cache").empty());
  EXPECT_TRUE(fs::exists(got->front().extracted / "bin/openssl"));
}

}  // namespace
}  // namespace envbuild::builder
