// Wheel metadata files (METADATA, WHEEL, entry_points.txt, RECORD) and the distributions a conda
// package installs.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/hash.hpp"
#include "conda/pypi/installed.hpp"
#include "conda/pypi/metadata.hpp"

namespace envbuild::conda::pypi {
namespace {

TEST(CoreMetadata, ReadsTheHeaderBlockOnly) {
  auto meta = parse_core_metadata(
      "Metadata-Version: 2.1\r\nName: Foo.Bar\nVersion: 1.0.post1\nRequires-Python: >=3.8\n"
      "Provides-Extra: Fast_Path\nRequires-Dist: six>=1.0\nRequires-Dist: zeta; extra == "
      "'fast-path'\nSummary: a\n  continued summary\n\nRequires-Dist: this is the body\n",
      "foo.whl");
  ASSERT_TRUE(meta) << meta.error().to_string();
  EXPECT_EQ(meta->name, "Foo.Bar");
  EXPECT_EQ(meta->version.to_string(), "1.0.post1");
  ASSERT_EQ(meta->requires_dist.size(), 2u);
  EXPECT_EQ(meta->requires_dist[1].to_string(), "zeta; extra == \"fast-path\"");
  EXPECT_EQ(meta->provides_extra, std::vector<std::string>{"fast-path"});
  ASSERT_TRUE(meta->requires_python);
  EXPECT_EQ(meta->requires_python->to_string(), ">=3.8");
  for (const char* bad : {"Version: 1.0\n", "Name: x\nVersion: not a version\n",
                          "Name: x\nVersion: 1\nRequires-Dist: x >= \n", "Name: -x\nVersion: 1\n"}) {
    SCOPED_TRACE(bad);
    auto e = parse_core_metadata(bad, "bad.whl");
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().to_string().find("bad.whl"), std::string::npos) << e.error().to_string();
  }
}

TEST(WheelFile, ReadsVersionAndPurelib) {
  auto info = parse_wheel_info("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n", "W");
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->root_is_purelib);
  EXPECT_FALSE(parse_wheel_info("Root-Is-Purelib: true\n", "W"));
  auto future = parse_wheel_info("Wheel-Version: 2.0\n", "W");
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error().code(), Errc::Unsupported);
}

TEST(EntryPoints, ReadsScriptsAndRefusesPaths) {
  auto eps = parse_entry_points(
      "[console_scripts]\ntool = tool.cli:main [extra]\n# comment\nother=tool:Cls.run\n"
      "[gui_scripts]\ntool-gui = tool:gui\n[other.group]\nignored = x:y\n",
      "entry_points.txt");
  ASSERT_TRUE(eps) << eps.error().to_string();
  ASSERT_EQ(eps->size(), 3u);
  EXPECT_EQ((*eps)[0], (ScriptEntryPoint{"tool", "tool.cli", "main", false}));
  EXPECT_EQ((*eps)[1], (ScriptEntryPoint{"other", "tool", "Cls.run", false}));
  EXPECT_TRUE((*eps)[2].gui);
  EXPECT_NE(entry_point_launcher((*eps)[1]).find("from tool import Cls\n"), std::string::npos);
  EXPECT_NE(entry_point_launcher((*eps)[1]).find("sys.exit(Cls.run())"), std::string::npos);
  for (const char* bad : {"[console_scripts]\n../evil = x:y\n", "[console_scripts]\na/b = x:y\n",
                          "[console_scripts]\nx = os; import evil:y\n",
                          "[console_scripts]\nnoequals\n"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_entry_points(bad, "entry_points.txt"));
  }
}

TEST(Record, RoundTripsAndHashesAsPep376) {
  // RECORD hashes are urlsafe base64 without padding: sha256("") is 47DEQ...
  EXPECT_EQ(record_hash_from_hex(common::sha256_hex("")),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
  EXPECT_EQ(record_hash_from_hex(common::sha256_hex("a")),
            "sha256=ypeBEsobvcr6wjGzmiPcTaeG7_gUfE5yuYB3ha_uSLs");
  std::vector<RecordRow> rows = {{"pkg/__init__.py", "sha256=abc", 3},
                                 {"weird,name \"q\".py", "sha256=def", 10},
                                 {"pkg-1.0.dist-info/RECORD", "", std::nullopt}};
  std::string text = to_record_text(rows);
  EXPECT_EQ(text,
            "pkg/__init__.py,sha256=abc,3\n\"weird,name \"\"q\"\".py\",sha256=def,10\n"
            "pkg-1.0.dist-info/RECORD,,\n");
  auto back = parse_record(text, "RECORD");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, rows);
  EXPECT_FALSE(parse_record("a,b,12x\n", "RECORD"));
}

TEST(CondaInstalledDistributions, FoundInSitePackages) {
  auto found = distribution_metadata_paths({
      "lib/python3.11/site-packages/numpy/__init__.py",
      "lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA",
      "lib/python3.11/site-packages/numpy-1.26.4.dist-info/RECORD",
      "site-packages/Demo_Trainer-0.3.dist-info/METADATA",
      "lib/python3.11/site-packages/six-1.16.0-py3.11.egg-info/PKG-INFO",
      "lib/python3.11/site-packages/old_lib-2.0-py3.11.egg-info",
      "lib/python3.11/site-packages/pkg/nested-1.0.dist-info/METADATA",
      "share/doc/not-site-packages/x-1.0.dist-info/METADATA",
  });
  ASSERT_EQ(found.size(), 4u);
  EXPECT_EQ(found[0].name_hint, "numpy");
  EXPECT_EQ(found[0].version_hint, "1.26.4");
  EXPECT_EQ(found[1].name_hint, "demo-trainer");
  EXPECT_EQ(found[2].name_hint, "six");
  EXPECT_EQ(found[2].version_hint, "1.16.0");
  EXPECT_EQ(found[3].path, "lib/python3.11/site-packages/old_lib-2.0-py3.11.egg-info");
}

}  // namespace
}  // namespace envbuild::conda::pypi
