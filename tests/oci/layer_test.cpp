#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/io.hpp"
#include "oci/compression.hpp"
#include "oci/layer_reader.hpp"
#include "oci/layer_writer.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

class LayerTest : public testing::TempDirTest {
 protected:
  /// A small tree: nested dirs, an executable, a symlink, a hardlink pair.
  void make_tree(const fs::path& root, bool reverse_order, mode_t umask_value, time_t mtime) {
    mode_t old = ::umask(umask_value);
    std::vector<std::pair<std::string, std::string>> files = {
        {"usr/bin/tool", "#!/bin/sh\necho tool\n"},
        {"usr/lib/libx.so", std::string(300000, 'x')},
        {"etc/conf", "a=1\n"},
        {"a-b", "dash sorts before slash\n"}};
    if (reverse_order) std::reverse(files.begin(), files.end());
    for (const auto& [p, c] : files) write_text(root / p, c);
    ::chmod((root / "usr/bin/tool").c_str(), 0750);
    fs::create_symlink("tool", root / "usr/bin/alias");
    fs::create_hard_link(root / "etc/conf", root / "etc/conf.link");
    ::umask(old);
    for (auto& e : fs::recursive_directory_iterator(root)) {
      timespec t[2] = {{mtime, 0}, {mtime, 0}};
      ::utimensat(AT_FDCWD, e.path().c_str(), t, AT_SYMLINK_NOFOLLOW);
    }
  }

  LayerInfo write_tree(const fs::path& tree, Compression c, const fs::path& store_dir) {
    auto entries = entries_from_tree(tree);
    EXPECT_TRUE(entries) << entries.error().to_string();
    LayerOptions options;
    options.compression = c;
    options.mtime = 1;
    auto info = write_layer(*entries, options, BlobStore(store_dir));
    EXPECT_TRUE(info) << info.error().to_string();
    return *info;
  }
};

TEST_F(LayerTest, SameTreeGivesSameDigestWhateverMtimeUmaskAndOrder) {
  // Given two copies of a tree made in different orders, umasks and mtimes, expect one digest.
  make_tree(dir_ / "t1", false, 022, 1000);
  make_tree(dir_ / "t2", true, 077, 2000000);
  for (Compression c : {Compression::Gzip, Compression::Zstd, Compression::None}) {
    SCOPED_TRACE(to_string(c));
    LayerInfo a = write_tree(dir_ / "t1", c, dir_ / "s1");
    LayerInfo b = write_tree(dir_ / "t2", c, dir_ / "s2");
    EXPECT_EQ(a.descriptor, b.descriptor);
    EXPECT_EQ(a.diff_id, b.diff_id);
    EXPECT_EQ(a.descriptor.media_type, layer_media_type(c));
    auto blob = common::sha256_file(BlobStore(dir_ / "s1").path_of(a.descriptor.digest).string());
    ASSERT_TRUE(blob);
    EXPECT_EQ(*blob, a.descriptor.digest.hex());
    EXPECT_EQ(fs::file_size(BlobStore(dir_ / "s1").path_of(a.descriptor.digest)),
              static_cast<uintmax_t>(a.descriptor.size));
  }
}

TEST_F(LayerTest, ZstdLayerIsWhatTheZstdCliMakesOfTheTar) {
  // Given the uncompressed layer and the zstd layer of one tree (zstd on as many workers as this
  // machine has cores), expect `zstd -3 -T1` (one worker) of the tar to give the zstd layer's
  // bytes: the digest depends on the parameters only, not on the worker count or the machine.
  make_tree(dir_ / "t", false, 022, 7);
  LayerInfo tar = write_tree(dir_ / "t", Compression::None, dir_ / "s");
  LayerInfo zst = write_tree(dir_ / "t", Compression::Zstd, dir_ / "s");
  EXPECT_EQ(tar.diff_id, zst.diff_id);
  fs::path tar_blob = BlobStore(dir_ / "s").path_of(tar.descriptor.digest);
  auto r = run_command("zstd -q -3 -T1 -c < " + shell_quote(tar_blob.string()) + " | sha256sum");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, 64), zst.descriptor.digest.hex());
}

TEST_F(LayerTest, TarIsNormalisedAndReadableByGnuTar) {
  make_tree(dir_ / "t", false, 022, 12345);
  LayerInfo info = write_tree(dir_ / "t", Compression::Gzip, dir_ / "s");
  fs::path blob = BlobStore(dir_ / "s").path_of(info.descriptor.digest);
  auto r = run_command("tar -tvzf " + shell_quote(blob.string()) + " --numeric-owner --full-time");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "-rw-r--r-- 0/0              24 1970-01-01 00:00:01 a-b\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00:01 etc/\n"
            "-rw-r--r-- 0/0               4 1970-01-01 00:00:01 etc/conf\n"
            "hrw-r--r-- 0/0               0 1970-01-01 00:00:01 etc/conf.link link to etc/conf\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00:01 usr/\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00:01 usr/bin/\n"
            "lrwxrwxrwx 0/0               0 1970-01-01 00:00:01 usr/bin/alias -> tool\n"
            "-rwxr-xr-x 0/0              20 1970-01-01 00:00:01 usr/bin/tool\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00:01 usr/lib/\n"
            "-rw-r--r-- 0/0          300000 1970-01-01 00:00:01 usr/lib/libx.so\n");
  // gzip -t checks the CRC and size trailer we write by hand.
  EXPECT_EQ(run_command("gzip -t " + shell_quote(blob.string())).exit_code, 0);
  auto header = run_command("head -c 10 " + shell_quote(blob.string()) + " | od -An -tx1");
  EXPECT_EQ(header.output, " 1f 8b 08 00 00 00 00 00 00 03\n");
  auto diff = run_command("gzip -dc " + shell_quote(blob.string()) + " | sha256sum");
  EXPECT_EQ(diff.output.substr(0, 64), info.diff_id.hex());
}

TEST_F(LayerTest, ExplicitEntriesSortedWithParentsAndHardlinkLeader) {
  write_text(dir_ / "f", "content");
  std::vector<LayerEntry> entries = {
      LayerEntry::hardlink("b/z", "a/y"),  // the group is led by its smallest path
      LayerEntry::file("a/y", dir_ / "f"),
      LayerEntry::hardlink("a/x", "a/y"),
      LayerEntry::symlink("./c//link/", "/abs/target"),
      LayerEntry::whiteout("old/file"),
      LayerEntry::opaque("d"),
      LayerEntry::directory("tmp"),
  };
  entries.back().mode = 041777;  // setgid must go, sticky stays
  LayerOptions options;
  options.compression = Compression::None;
  options.mtime = 0;
  common::StringSink sink;
  auto info = write_layer_to(entries, options, sink);
  ASSERT_TRUE(info) << info.error().to_string();
  write_text(dir_ / "l.tar", sink.out);
  auto r = run_command("tar -tvf " + shell_quote((dir_ / "l.tar").string()) + " --numeric-owner");
  EXPECT_EQ(r.output,
            "drwxr-xr-x 0/0               0 1970-01-01 00:00 a/\n"
            "-rw-r--r-- 0/0               7 1970-01-01 00:00 a/x\n"
            "hrw-r--r-- 0/0               0 1970-01-01 00:00 a/y link to a/x\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00 b/\n"
            "hrw-r--r-- 0/0               0 1970-01-01 00:00 b/z link to a/x\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00 c/\n"
            "lrwxrwxrwx 0/0               0 1970-01-01 00:00 c/link -> /abs/target\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00 d/\n"
            "-rw-r--r-- 0/0               0 1970-01-01 00:00 d/.wh..wh..opq\n"
            "drwxr-xr-x 0/0               0 1970-01-01 00:00 old/\n"
            "-rw-r--r-- 0/0               0 1970-01-01 00:00 old/.wh.file\n"
            "drwxrwxrwt 0/0               0 1970-01-01 00:00 tmp/\n");
}

TEST_F(LayerTest, RejectsBadEntries) {
  write_text(dir_ / "f", "x");
  fs::create_directories(dir_ / "d");
  struct Case {
    std::string name;
    std::vector<LayerEntry> entries;
  };
  const Case cases[] = {
      {"dotdot", {LayerEntry::file("a/../../x", dir_ / "f")}},
      {"duplicate", {LayerEntry::file("x", dir_ / "f"), LayerEntry::symlink("x", "y")}},
      {"file as dir", {LayerEntry::file("x", dir_ / "f"), LayerEntry::file("x/y", dir_ / "f")}},
      {"dangling hardlink", {LayerEntry::hardlink("x", "nope")}},
      {"source is a dir", {LayerEntry::file("x", dir_ / "d")}},
      {"missing source", {LayerEntry::file("x", dir_ / "missing")}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    common::StringSink sink;
    auto r = write_layer_to(c.entries, {}, sink);
    EXPECT_FALSE(r);
  }
}

TEST_F(LayerTest, ExtractRoundTripAppliesWhiteouts) {
  make_tree(dir_ / "t", false, 022, 5);
  LayerInfo base = write_tree(dir_ / "t", Compression::Zstd, dir_ / "s");
  fs::path root = dir_ / "root";
  fs::create_directories(root);
  BlobStore store(dir_ / "s");
  auto stats = extract_layer_file(store.path_of(base.descriptor.digest), root);
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(read_text(root / "etc/conf"), "a=1\n");
  EXPECT_EQ(fs::read_symlink(root / "usr/bin/alias"), "tool");
  EXPECT_TRUE(fs::equivalent(root / "etc/conf", root / "etc/conf.link"));
  EXPECT_EQ(fs::status(root / "usr/bin/tool").permissions(), fs::perms(0755));

  // A second layer: delete a file, make usr/lib opaque while adding to it, replace a file.
  write_text(dir_ / "new", "new");
  std::vector<LayerEntry> upper = {
      LayerEntry::whiteout("etc/conf.link"), LayerEntry::opaque("usr/lib"),
      LayerEntry::file("usr/lib/fresh", dir_ / "new"), LayerEntry::file("a-b", dir_ / "new")};
  auto top = write_layer(upper, {}, store);
  ASSERT_TRUE(top) << top.error().to_string();
  ASSERT_TRUE(extract_layer_file(store.path_of(top->descriptor.digest), root));
  EXPECT_FALSE(fs::exists(root / "etc/conf.link"));
  EXPECT_TRUE(fs::exists(root / "etc/conf"));
  EXPECT_FALSE(fs::exists(root / "usr/lib/libx.so"));
  EXPECT_EQ(read_text(root / "usr/lib/fresh"), "new");
  EXPECT_EQ(read_text(root / "a-b"), "new");
  EXPECT_FALSE(fs::exists(root / "usr/lib/.wh..wh..opq"));
}

/// Hostile archives are made with Python's tarfile, which writes whatever it is told.
class HostileLayerTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_TRUE(testing::have_tool("python3"));
    fs::create_directories(dir_ / "root");
    fs::create_directories(dir_ / "outside");
  }
  /// `body` adds members to tarfile `t` (helpers: reg(name, data), sym(name, target),
  /// hard(name, target), dev(name)).
  fs::path make(const std::string& name, const std::string& body, const std::string& mode = "w") {
    fs::path out = dir_ / name;
    std::string script =
        "import tarfile, io, sys\n"
        "t = tarfile.open(sys.argv[1], '" +
        mode +
        "', format=tarfile.PAX_FORMAT)\n"
        "def add(i, data=b''):\n"
        "    i.size = len(data); t.addfile(i, io.BytesIO(data) if data else None)\n"
        "def reg(n, data=b'x'):\n"
        "    add(tarfile.TarInfo(n), data)\n"
        "def sym(n, target):\n"
        "    i = tarfile.TarInfo(n); i.type = tarfile.SYMTYPE; i.linkname = target; add(i)\n"
        "def hard(n, target):\n"
        "    i = tarfile.TarInfo(n); i.type = tarfile.LNKTYPE; i.linkname = target; add(i)\n"
        "def dev(n):\n"
        "    i = tarfile.TarInfo(n); i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3; "
        "add(i)\n" +
        body + "\nt.close()\n";
    write_text(dir_ / "make.py", script);
    auto r = run_command("python3 " + shell_quote((dir_ / "make.py").string()) + " " +
                         shell_quote(out.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }
  Result<ExtractStats> extract(const fs::path& layer, ExtractOptions options = {}) {
    return extract_layer_file(layer, dir_ / "root", options);
  }
  void expect_outside_untouched() {
    EXPECT_TRUE(fs::is_empty(dir_ / "outside")) << "something was written outside the root";
  }
};

TEST_F(HostileLayerTest, RejectsEscapes) {
  std::string outside = (dir_ / "outside").string();
  struct Case {
    std::string name, body, want;
  };
  const Case cases[] = {
      {"dotdot", "reg('../outside/pwned')", "'..' in path"},
      {"nested dotdot", "reg('a/b/../../../outside/pwned')", "'..' in path"},
      {"absolute", "reg('" + outside + "/pwned')", "absolute path"},
      {"symlink escape", "sym('link', '" + outside + "'); reg('link/pwned')", "symlink"},
      {"relative symlink escape", "sym('link', '../outside'); reg('link/pwned')", "symlink"},
      {"symlink dir then file", "sym('d', '/'); reg('d/tmp/pwned')", "symlink"},
      {"hardlink outside", "hard('h', '../outside/x')", "'..' in path"},
      {"hardlink absolute", "hard('h', '/etc/passwd')", "absolute path"},
      {"hardlink via symlink", "sym('s', '/etc'); hard('h', 's/passwd')", "symlink"},
      {"device", "dev('null')", "device node"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(dir_ / "root");
    fs::create_directories(dir_ / "root");
    auto r = extract(make("l.tar", c.body));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::Integrity) << r.error().to_string();
    EXPECT_NE(r.error().to_string().find(c.want), std::string::npos) << r.error().to_string();
    expect_outside_untouched();
  }
}

// Unpacked trees are shared caches: no entry comes out world-writable, setuid, setgid or
// sticky, whatever the layer says (group write stays, as in conda packages).
TEST_F(HostileLayerTest, WritableAndSetuidModesAreDropped) {
  auto r =
      extract(make("l.tar",
                   "i = tarfile.TarInfo('d'); i.type = tarfile.DIRTYPE; i.mode = 0o1777; add(i)\n"
                   "i = tarfile.TarInfo('d/ww'); i.mode = 0o666; add(i, b'x')\n"
                   "i = tarfile.TarInfo('d/suid'); i.mode = 0o6777; add(i, b'x')"));
  ASSERT_TRUE(r) << r.error().to_string();
  for (auto [path, want] :
       {std::pair<std::string, unsigned>{"d", 0775}, {"d/ww", 0664}, {"d/suid", 0775}}) {
    struct stat st {};
    ASSERT_EQ(::lstat((dir_ / "root" / path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 07777, want) << path << ": " << std::oct << (st.st_mode & 07777);
  }
}

TEST_F(HostileLayerTest, RejectsHugeDeclaredSize) {
  auto layer = make("big.tar", "reg('big', b'x' * 4096)");
  ExtractOptions options;
  options.limits.max_bytes = 1024;
  auto r = extract(layer, options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("layer entry 'big' takes the unpacked content past the "
                                       "limit (limit: 1.0 KiB)"),
            std::string::npos)
      << r.error().to_string();
  EXPECT_FALSE(fs::exists(dir_ / "root/big"));
}

// Issue 16, class 12: a 1 MB layer unpacked to 1.1 GB. With the default limits a layer that
// expands more than 100 times past 64 MiB is refused before the entry's bytes are written,
// naming the limit and the variable that raises it; entry floods and deep paths likewise.
TEST_F(HostileLayerTest, RejectsBombsAndFloodsByDefault) {
  auto bomb = make("bomb.tar.gz", "reg('zeros', bytes(80 << 20))", "w:gz");
  ASSERT_LT(fs::file_size(bomb), 1u << 20);
  ExtractOptions options;
  options.limits.tool = "ENVRUN";
  auto r = extract(bomb, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Integrity);
  EXPECT_NE(r.error().to_string().find("a decompression bomb (limit: 100x past 64.0 MiB)"),
            std::string::npos)
      << r.error().to_string();
  EXPECT_EQ(r.error().hint(),
            "if the input is trusted, raise the limit with ENVRUN_MAX_EXPANSION=N (0: no limit)");
  EXPECT_FALSE(fs::exists(dir_ / "root/zeros"));
  options.limits.max_expansion = 0;  // raised: the same layer extracts
  ASSERT_TRUE(extract(bomb, options));
  fs::remove_all(dir_ / "root");
  fs::create_directories(dir_ / "root");

  auto many = make("many.tar", "for n in range(300): reg('f%d' % n)");
  options.limits.max_entries = 100;
  r = extract(many, options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("more entries than an archive may have (limit: 100 "),
            std::string::npos)
      << r.error().to_string();
  EXPECT_NE(r.error().hint().find("ENVRUN_MAX_ENTRIES"), std::string::npos);

  auto deep = make("deep.tar", "reg('a/' * 300 + 'x')");
  r = extract(deep);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("a path of 301 components, deeper than a tree may nest"),
            std::string::npos)
      << r.error().to_string();
  expect_outside_untouched();
}

TEST_F(HostileLayerTest, RejectsTruncatedAndCorruptStreams) {
  auto tar = make("ok.tar", "reg('a', b'y' * 200000); reg('b', b'z' * 1000)");
  std::string bytes = read_text(tar);
  std::string gz = run_command("gzip -n -c " + shell_quote(tar.string())).output;
  std::string zst = run_command("zstd -q -c " + shell_quote(tar.string())).output;
  struct Case {
    std::string name, data;
  };
  std::string bad_gz = gz;
  bad_gz[gz.size() / 2] ^= 0x55;
  std::string bad_zst = zst;
  bad_zst[zst.size() / 2] ^= 0x55;
  const Case cases[] = {
      {"truncated tar", bytes.substr(0, 100000)},
      {"truncated gzip", gz.substr(0, gz.size() / 2)},
      {"truncated gzip trailer", gz.substr(0, gz.size() - 4)},
      {"corrupt gzip", bad_gz},
      {"truncated zstd", zst.substr(0, zst.size() / 2)},
      {"corrupt zstd", bad_zst},
      {"garbage", std::string(2048, 'G')},
      {"gzip then garbage", gz + "trailing junk"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(dir_ / "root");
    fs::create_directories(dir_ / "root");
    write_text(dir_ / "bad", c.data);
    auto r = extract(dir_ / "bad");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::Integrity) << r.error().to_string();
  }
  // And the intact ones extract.
  for (const auto& good : {bytes, gz, zst}) {
    fs::remove_all(dir_ / "root");
    fs::create_directories(dir_ / "root");
    write_text(dir_ / "good", good);
    auto r = extract(dir_ / "good");
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->bytes, 201000u);
  }
}

}  // namespace
}  // namespace envbuild::oci
