#include "conda/prefix_replace.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

const std::string kPh = "/opt/placeholder_placeholder_placeholder";  // 40 bytes

PrefixReplacement binary(std::string new_prefix, TargetOs target = TargetOs::Linux) {
  return {kPh, std::move(new_prefix), FileMode::Binary, target};
}
PrefixReplacement text(std::string new_prefix, TargetOs target = TargetOs::Linux) {
  return {kPh, std::move(new_prefix), FileMode::Text, target};
}

std::string replaced(std::string_view content, const PrefixReplacement& r) {
  auto got = replace_prefix(content, r);
  EXPECT_TRUE(got) << got.error().to_string();
  if (!got || !*got) return std::string(content);
  return (*got)->content;
}

TEST(BinaryReplace, Table) {
  struct Case {
    std::string name;
    std::string in;
    std::string prefix;
    std::string want;
  };
  const std::string pad8(kPh.size() - 8, '\0');  // 8-byte prefix "/p/envAB"
  const Case cases[] = {
      {"plain",
       "\x7f"
       "ELF\0"s +
           kPh + "/lib\0tail"s,
       "/p/envAB",
       "\x7f"
       "ELF\0/p/envAB/lib"s +
           pad8 + "\0tail"s},
      {"text before the placeholder stays", "X\0PATH="s + kPh + "/bin\0"s, "/p/envAB",
       "X\0PATH=/p/envAB/bin"s + pad8 + "\0"s},
      {"several placeholders in one string pad x count", kPh + "/lib:" + kPh + "/lib64\0Z"s,
       "/p/envAB", "/p/envAB/lib:/p/envAB/lib64"s + pad8 + pad8 + "\0Z"s},
      {"newlines inside the C string", kPh + "/a\nline2\n" + kPh + "/b\0"s, "/p/envAB",
       "/p/envAB/a\nline2\n/p/envAB/b"s + pad8 + pad8 + "\0"s},
      {"two separate strings", kPh + "\0"s + kPh + "/x\0"s, "/p/envAB",
       "/p/envAB"s + pad8 + "\0/p/envAB/x"s + pad8 + "\0"s},
      {"same length prefix", kPh + "/x\0"s, std::string(kPh.size(), 'q'),
       std::string(kPh.size(), 'q') + "/x\0"s},
      {"no NUL after: left alone like conda", "abc" + kPh + "/x", "/p/envAB", "abc" + kPh + "/x"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string got = replaced(c.in, binary(c.prefix));
    EXPECT_EQ(got.size(), c.in.size());
    EXPECT_EQ(got, c.want);
  }
}

TEST(BinaryReplace, TooLongPrefixIsAClearError) {
  std::string content = "x\0"s + kPh + "/lib\0"s;
  auto got = replace_prefix(content, binary(std::string(kPh.size() + 1, 'p')));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::InvalidInput);
  EXPECT_NE(got.error().message().find("longer than the 40-byte placeholder"), std::string::npos)
      << got.error().message();
  // Without the placeholder there is nothing to replace and no error.
  auto untouched = replace_prefix("no prefix here\0"s, binary(std::string(100, 'p')));
  ASSERT_TRUE(untouched);
  EXPECT_FALSE(*untouched);
}

TEST(BinaryReplace, RecordsStringsAndRoom) {
  std::string content = "hdr\0"s + kPh + "/a:" + kPh + "/b\0"s;
  auto got = replace_prefix(content, binary("/short"));
  ASSERT_TRUE(got && *got);
  const RelocationRecord& r = (*got)->record;
  EXPECT_EQ(r.file_mode, FileMode::Binary);
  EXPECT_EQ(r.room, kPh.size());
  ASSERT_EQ(r.strings.size(), 1u);
  EXPECT_EQ(r.strings[0].offset, 4u);
  EXPECT_EQ(r.strings[0].length, 2 * kPh.size() + 5);
  EXPECT_EQ(r.strings[0].prefix_positions, (std::vector<uint64_t>{0, 9}));
}

TEST(BinaryReplace, WindowsTargetUnsupported) {
  auto got = replace_prefix(kPh + "\0"s, binary("C:/x", TargetOs::Windows));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::Unsupported);
}

TEST(TextReplace, Table) {
  struct Case {
    std::string name;
    std::string in;
    std::string prefix;
    TargetOs target;
    std::string want;
  };
  const std::string long_prefix = "/" + std::string(130, 'l');
  const Case cases[] = {
      {"all occurrences", "a=" + kPh + "\nb=" + kPh + "/x " + kPh, "/env", TargetOs::Linux,
       "a=/env\nb=/env/x /env"},
      {"short shebang kept", "#!" + kPh + "/bin/python3 -E\nimport x # " + kPh + "\n", "/env",
       TargetOs::Linux, "#!/env/bin/python3 -E\nimport x # /env\n"},
      {"long shebang becomes env", "#!" + kPh + "/bin/python3 -E\nprint()\n", long_prefix,
       TargetOs::Linux, "#!/usr/bin/env python3 -E\nprint()\n"},
      {"macos allows 512", "#!" + kPh + "/bin/python3\n", long_prefix, TargetOs::MacOs,
       "#!" + long_prefix + "/bin/python3\n"},
      {"spaces in shebang escaped, then env", "#!" + kPh + "/bin/perl -w\n$x='" + kPh + "';\n",
       "/my env", TargetOs::Linux, "#!/usr/bin/env perl -w\n$x='/my env';\n"},
      {"spaces outside the shebang untouched", "x=" + kPh + "\n", "/my env", TargetOs::Linux,
       "x=/my env\n"},
      {"shebang without newline", "#!" + kPh + "/bin/sh", "/e", TargetOs::Linux, "#!/e/bin/sh"},
      {"windows uses forward slashes, no shebang rules", "set P=" + kPh + "\n", "C:\\Users\\me",
       TargetOs::Windows, "set P=C:/Users/me\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(replaced(c.in, text(c.prefix, c.target)), c.want);
  }
}

// Found by prefix_replace_fuzz: a first line "#!<placeholder>/bin/..." holding a NUL was
// recorded as a shebang template that validate_record() (envrun's check) refuses. Such a line is
// ordinary text: its placeholder is replaced where it stands, and the record validates.
TEST(TextReplace, AShebangThatIsNotOneLineIsOrdinaryText) {
  const std::string in = "#!" + kPh + "/bin/py" + std::string("\0", 1) + "x -E\nprefix='" + kPh +
                         "'\n";
  PrefixReplacement r = text("/env", TargetOs::Linux);
  auto patched = replace_prefix(in, r);
  ASSERT_TRUE(patched && patched->has_value());
  const auto& [content, record] = **patched;
  EXPECT_FALSE(record.shebang_template);
  EXPECT_EQ(content, "#!/env/bin/py" + std::string("\0", 1) + "x -E\nprefix='/env'\n");
  RelocationRecord named = record;
  named.path = "bin/tool";
  auto valid = validate_record(named);
  EXPECT_TRUE(valid) << valid.error().to_string();
}

TEST(FixLongShebang, Table) {
  struct Case {
    std::string in;
    std::string want;
  };
  const std::string longdir = "/" + std::string(120, 'd');
  const Case cases[] = {
      {"#!/usr/bin/python", "#!/usr/bin/python"},
      {"#!" + longdir + "/bin/python3.11", "#!/usr/bin/env python3.11"},
      {"#!" + longdir + "/bin/python -E -s", "#!/usr/bin/env python -E -s"},
      {"#!/a\\ b/bin/python", "#!/usr/bin/env python"},
      {"#!python", "#!python"},
      {"not a shebang", "not a shebang"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(fix_long_shebang(c.in, TargetOs::Linux), c.want);
  }
}

// Relocating twice must give the same bytes as relocating once, for every mix of lengths.
TEST(Relocate, TwiceEqualsOnce) {
  const std::string long_prefix = "/" + std::string(150, 'L');
  const std::vector<std::string> prefixes = {"/a", "/opt/envs/py", "/x/y z/env",
                                             std::string(kPh.size(), 'm'), long_prefix};
  const std::vector<std::pair<std::string, std::string>> contents = {
      {"binary",
       "\x7f"
       "ELF\0"s +
           kPh + "/lib:" + kPh + "/x\nq\0\0pad\0"s + kPh + "\0end"s},
      {"text", "#!" + kPh + "/bin/python -E\nP='" + kPh + "'\nQ=" + kPh + kPh + "\n"},
      {"text-no-shebang", "P='" + kPh + "'\n#!" + kPh + "\n"},
  };
  for (const auto& [kind, content] : contents) {
    FileMode mode = kind == "binary" ? FileMode::Binary : FileMode::Text;
    for (const auto& b : prefixes) {
      for (const auto& c : prefixes) {
        if (mode == FileMode::Binary && (b.size() > kPh.size() || c.size() > kPh.size())) continue;
        SCOPED_TRACE(kind + ": via '" + b + "' to '" + c + "'");
        auto direct = replace_prefix(content, {kPh, c, mode, TargetOs::Linux});
        auto first = replace_prefix(content, {kPh, b, mode, TargetOs::Linux});
        ASSERT_TRUE(direct && *direct && first && *first);
        // The record survives a JSON round trip, as it will in an image.
        auto record = relocation_record_from_json(to_json((*first)->record));
        ASSERT_TRUE(record) << record.error().to_string();
        EXPECT_EQ(*record, (*first)->record);
        auto moved = relocate_content((*first)->content, *record, b, c);
        ASSERT_TRUE(moved) << moved.error().to_string();
        EXPECT_EQ(moved->content, (*direct)->content);
        EXPECT_EQ(moved->record, (*direct)->record);
      }
    }
  }
}

TEST(Relocate, BinaryTooLongAndChangedFileAreErrors) {
  auto first = replace_prefix(kPh + "/lib\0"s, binary("/a"));
  ASSERT_TRUE(first && *first);
  auto too_long = relocate_content((*first)->content, (*first)->record, "/a", std::string(41, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), Errc::InvalidInput);
  auto wrong_old = relocate_content((*first)->content, (*first)->record, "/b", "/c");
  ASSERT_FALSE(wrong_old);
  EXPECT_EQ(wrong_old.error().code(), Errc::Integrity);
}

class PrefixFileTest : public testing::TempDirTest {};

TEST_F(PrefixFileTest, FilesPatchedInPlaceKeepModeAndRelocate) {
  fs::path bin = dir_ / "libfoo.so";
  fs::path script = dir_ / "tool";
  std::string bin_content =
      "\x7f"
      "ELF"s +
      std::string(4096, '\1') + "\0"s + kPh + "/lib\0"s + std::string(4096, '\2');
  testing::write_text(bin, bin_content);
  testing::write_text(script, "#!" + kPh + "/bin/python\nprint('" + kPh + "')\n");
  ::chmod(script.c_str(), 0755);

  auto rb = replace_prefix_in_file(bin, binary("/env/one"), "lib/libfoo.so");
  ASSERT_TRUE(rb && *rb) << (rb ? "" : rb.error().to_string());
  EXPECT_EQ((*rb)->path, "lib/libfoo.so");
  auto rt = replace_prefix_in_file(script, text("/env/one"), "tool");
  ASSERT_TRUE(rt && *rt);
  EXPECT_EQ(testing::read_text(script), "#!/env/one/bin/python\nprint('/env/one')\n");
  struct stat st {};
  ASSERT_EQ(::stat(script.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);

  auto root = common::RootDir::open(dir_);
  ASSERT_TRUE(root);
  (*rb)->path = "libfoo.so";
  auto rb2 = relocate(*root, **rb, "/env/one", "/e2");
  ASSERT_TRUE(rb2) << rb2.error().to_string();
  auto rt2 = relocate(*root, **rt, "/env/one", "/e2");
  ASSERT_TRUE(rt2) << rt2.error().to_string();
  auto direct = replace_prefix(bin_content, binary("/e2"));
  EXPECT_EQ(testing::read_text(bin), (*direct)->content);
  EXPECT_EQ(testing::read_text(script), "#!/e2/bin/python\nprint('/e2')\n");

  // A file without the placeholder is left untouched.
  testing::write_text(dir_ / "plain", "nothing");
  auto none = replace_prefix_in_file(dir_ / "plain", text("/x"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST(TargetOs, FromSubdir) {
  EXPECT_EQ(target_os_for_subdir("linux-64"), TargetOs::Linux);
  EXPECT_EQ(target_os_for_subdir("osx-arm64"), TargetOs::MacOs);
  EXPECT_EQ(target_os_for_subdir("win-64"), TargetOs::Windows);
  EXPECT_EQ(target_os_for_subdir("noarch"), TargetOs::Linux);
  EXPECT_EQ(max_shebang_length(TargetOs::Linux), 127u);
  EXPECT_EQ(max_shebang_length(TargetOs::MacOs), 512u);
}

// An image's relocation index is untrusted: a count that is a float out of range or negative is
// an error, not a conversion (UBSan: 1e101 to uint64 is undefined).
TEST(RelocationRecordJson, CountsMustBeNonNegativeIntegers) {
  const auto base = nlohmann::json::parse(R"({"path": "bin/x", "file_mode": "text",
      "target": "linux", "placeholder": "/p", "room": 0, "offsets": [1, 2]})");
  ASSERT_TRUE(relocation_record_from_json(base));
  for (const char* bad : {R"({"room": 1e101})", R"({"room": -1})", R"({"room": 1.5})",
                          R"({"offsets": [1, 1e101]})", R"({"offsets": 3})"}) {
    auto j = base;
    j.update(nlohmann::json::parse(bad));
    auto got = relocation_record_from_json(j);
    ASSERT_FALSE(got) << bad;
    EXPECT_EQ(got.error().code(), Errc::InvalidInput) << bad;
  }
}

}  // namespace
}  // namespace envbuild::conda
