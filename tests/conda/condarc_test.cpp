// conda/condarc: the search path, its precedence and merges, and the CONDA_* variables, read
// from a directory standing in for the file-system root.

#include "conda/condarc.hpp"

#include <gtest/gtest.h>

#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

using testing::write_text;
using Strings = std::vector<std::string>;

class CondarcTest : public testing::TempDirTest {
 protected:
  CondaConfigEnvironment env() const {
    CondaConfigEnvironment e;
    e.root = dir_;
    e.variables = variables_;
    return e;
  }
  std::map<std::string, std::string> variables_ = {{"HOME", "/home/u"}};
};

// Given a system file, a user file, a condarc.d part and an active environment's file, expect
// lists merged highest first without repeats, scalars and map keys from the highest file, and
// each value to name its source.
TEST_F(CondarcTest, SearchPathPrecedenceAndMerges) {
  write_text(dir_ / "etc/conda/.condarc",
             "channels: [defaults]\nchannel_alias: https://mirror.example/conda\n"
             "default_channels:\n  - https://mirror.example/main\n"
             "custom_channels:\n  internal: https://pkgs.example\n  other: https://o.example\n"
             "channel_priority: flexible\nunknown_tool_key: {a: 1}\n");
  write_text(dir_ / "etc/conda/condarc.d/10-proxy.yml",
             "proxy_servers:\n  https: http://proxy.example:3128\n");
  write_text(dir_ / "home/u/.condarc",
             "channels:\n  - conda-forge\n  - defaults\ncustom_channels:\n  other: https://mine\n"
             "offline: false\n");
  write_text(dir_ / "envs/train/.condarc", "channel_priority: strict\nenvs_dirs: [/scratch/envs]\n");
  variables_["CONDA_PREFIX"] = "/envs/train";
  auto files = condarc_files(env());
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], dir_ / "etc/conda/.condarc");
  EXPECT_EQ(files[1], dir_ / "etc/conda/condarc.d/10-proxy.yml");
  EXPECT_EQ(files[2], dir_ / "home/u/.condarc");
  EXPECT_EQ(files[3], dir_ / "envs/train/.condarc");

  auto config = load_conda_config(env());
  ASSERT_TRUE(config) << config.error().to_string();
  ASSERT_TRUE(config->channels);
  EXPECT_EQ(config->channels->value, (Strings{"conda-forge", "defaults"}));
  EXPECT_EQ(config->channel_alias->value, "https://mirror.example/conda");
  EXPECT_EQ(config->channel_alias->source, (dir_ / "etc/conda/.condarc").string());
  EXPECT_EQ(config->default_channels->value, (Strings{"https://mirror.example/main"}));
  EXPECT_EQ(config->custom_channels.at("internal").value, "https://pkgs.example");
  EXPECT_EQ(config->custom_channels.at("other").value, "https://mine");
  EXPECT_EQ(config->channel_priority->value, "strict");
  EXPECT_EQ(config->channel_priority->source, (dir_ / "envs/train/.condarc").string());
  EXPECT_FALSE(config->offline->value);
  EXPECT_EQ(config->proxy_servers.at("https").value, "http://proxy.example:3128");
  EXPECT_EQ(config->envs_dirs->value, (Strings{"/scratch/envs"}));
  EXPECT_EQ(config->files.size(), 4u);
  const std::string shown = describe(*config);
  EXPECT_NE(shown.find("channel_priority: strict  # " + (dir_ / "envs/train/.condarc").string()),
            std::string::npos)
      << shown;
  EXPECT_NE(shown.find("  - conda-forge\n  - defaults\n"), std::string::npos) << shown;
}

// Given CONDA_* variables and $CONDARC, expect them over every file; a list variable replaces
// the files' list; a bad value names the variable.
TEST_F(CondarcTest, VariablesAndCondarcWinOverFiles) {
  write_text(dir_ / "home/u/.condarc", "channels: [conda-forge]\noffline: false\n");
  write_text(dir_ / "site/rc.yml", "channel_alias: https://site.example\n");
  variables_["CONDARC"] = "/site/rc.yml";
  variables_["CONDA_CHANNELS"] = "pytorch, nvidia,conda-forge";
  variables_["CONDA_OFFLINE"] = "true";
  auto config = load_conda_config(env());
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->channels->value, (Strings{"pytorch", "nvidia", "conda-forge"}));
  EXPECT_EQ(config->channels->source, "CONDA_CHANNELS");
  EXPECT_TRUE(config->offline->value);
  EXPECT_EQ(config->offline->source, "CONDA_OFFLINE");
  EXPECT_EQ(config->channel_alias->value, "https://site.example");

  variables_["CONDA_CHANNEL_PRIORITY"] = "sometimes";
  auto bad = load_conda_config(env());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("CONDA_CHANNEL_PRIORITY"), std::string::npos)
      << bad.error().to_string();
}

// Given no file, expect nothing set; given a broken or mistyped file, expect an error naming it
// and its line; given a $CONDARC that does not exist, expect an error (it was asked for).
TEST_F(CondarcTest, MissingAndBrokenFiles) {
  auto none = load_conda_config(env());
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_FALSE(none->channels);
  EXPECT_EQ(describe(*none), "# nothing set: conda's defaults apply\n");

  write_text(dir_ / "home/u/.condarc", "channels: conda-forge\n");
  auto typed = load_conda_config(env());
  ASSERT_FALSE(typed);
  EXPECT_NE(typed.error().to_string().find(".condarc:1:"), std::string::npos)
      << typed.error().to_string();
  EXPECT_NE(typed.error().to_string().find("channels must be a list"), std::string::npos);

  write_text(dir_ / "home/u/.condarc", "channels: [unclosed\n");
  EXPECT_FALSE(load_conda_config(env()));

  write_text(dir_ / "home/u/.condarc", "");
  variables_["CONDARC"] = "/nowhere/rc";
  auto missing = load_conda_config(env());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("nowhere/rc"), std::string::npos)
      << missing.error().to_string();
}

}  // namespace
}  // namespace envbuild::conda
