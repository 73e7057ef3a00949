// What a lock carries of the environment besides its packages (issue 19, point 1): name,
// requested specs and variables survive writing and reading both lock formats, per platform;
// locks without them (conda-lock's own) give an empty environment; bad values are errors.

#include "conda/lock_environment.hpp"

#include <gtest/gtest.h>

namespace envbuild::conda {
namespace {

const LockedEnvironment kEnv{"train",
                             {"python 3.11.*", "xz >=5", "conda-forge::numpy"},
                             {{"Z", "last"}, {"A", "a \"b\"\nc"}}};

TEST(LockedEnvironment, RoundTripsThroughCondaLockPerPlatform) {
  CondaLockFile lock;
  lock.metadata.custom_metadata = {{"created_by", "someone"}};
  LockedEnvironment other = kEnv;
  other.specs = {"xz"};
  put_environment(lock, "linux-64", kEnv);
  put_environment(lock, "linux-aarch64", other);
  auto text = to_string(lock);
  auto parsed = parse_conda_lock(text, "conda-lock.yml");
  ASSERT_TRUE(parsed) << parsed.error().to_string() << "\n" << text;
  EXPECT_EQ(parsed->metadata.custom_metadata.front().first, "created_by");
  auto back = locked_environment(*parsed, "linux-64", "conda-lock.yml");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, kEnv);
  auto aarch = locked_environment(*parsed, "linux-aarch64", "conda-lock.yml");
  ASSERT_TRUE(aarch);
  EXPECT_EQ(aarch->specs, std::vector<std::string>{"xz"});
  // Written again: no duplicate keys.
  put_environment(*parsed, "linux-64", kEnv);
  EXPECT_EQ(parsed->metadata.custom_metadata.size(), lock.metadata.custom_metadata.size());
}

TEST(LockedEnvironment, RoundTripsThroughExplicitFiles) {
  ExplicitFile file;
  file.header = {"# platform: linux-64"};
  file.entries.push_back({"https://h/c/linux-64/xz-5-0.conda", "", std::string(64, 'a'), {}});
  put_environment(file, kEnv);
  put_environment(file, kEnv);
  auto parsed = parse_explicit_file(to_string(file), "x.lock");
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(parsed->platform().value_or(""), "linux-64");
  EXPECT_EQ(parsed->header.size(), 4u);
  auto back = locked_environment(*parsed, "x.lock");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, kEnv);
}

TEST(LockedEnvironment, LocksFromElsewhereHaveNone) {
  auto lock = locked_environment(CondaLockFile{}, "linux-64", "conda-lock.yml");
  ASSERT_TRUE(lock);
  EXPECT_EQ(*lock, LockedEnvironment{});
  auto explicit_file = locked_environment(ExplicitFile{}, "x.lock");
  ASSERT_TRUE(explicit_file);
  EXPECT_EQ(*explicit_file, LockedEnvironment{});
}

TEST(LockedEnvironment, BadValuesAreErrorsNamingTheKey) {
  struct Case {
    std::string key;
    std::string value;
  };
  for (const auto& c :
       {Case{"envbuild.specs.linux-64", "not json"}, Case{"envbuild.specs.linux-64", R"({"a":1})"},
        Case{"envbuild.specs.linux-64", "[1, 2]"}, Case{"envbuild.variables.linux-64", "[]"},
        Case{"envbuild.variables.linux-64", R"({"A": 1})"}}) {
    SCOPED_TRACE(c.value);
    CondaLockFile lock;
    lock.metadata.custom_metadata = {{c.key, c.value}};
    auto env = locked_environment(lock, "linux-64", "conda-lock.yml");
    ASSERT_FALSE(env);
    EXPECT_EQ(env.error().code(), Errc::InvalidInput);
    EXPECT_NE(env.error().to_string().find(c.key), std::string::npos) << env.error().to_string();
  }
  ExplicitFile file;
  file.header = {"# envbuild-name: [1]"};
  EXPECT_FALSE(locked_environment(file, "x.lock"));
}

}  // namespace
}  // namespace envbuild::conda
