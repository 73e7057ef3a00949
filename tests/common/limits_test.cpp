#include "common/limits.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "tests/testing/testing.hpp"

namespace envbuild::common {
namespace {

using envbuild::testing::ScopedEnv;

TEST(UnpackLimits, VariablesTakeNumbersAndSizes) {
  struct Case {
    const char* variable;
    const char* value;
    uint64_t UnpackLimits::*field;
    uint64_t want;
  };
  const Case cases[] = {
      {"ENVRUN_MAX_EXPANSION", "250", &UnpackLimits::max_expansion, 250},
      {"ENVRUN_MAX_EXPANSION", "0", &UnpackLimits::max_expansion, 0},
      {"ENVRUN_MAX_UNPACKED_BYTES", "100G", &UnpackLimits::max_bytes, uint64_t{100} << 30},
      {"ENVRUN_MAX_UNPACKED_BYTES", "512MiB", &UnpackLimits::max_bytes, uint64_t{512} << 20},
      {"ENVRUN_MAX_UNPACKED_BYTES", "2t", &UnpackLimits::max_bytes, uint64_t{2} << 40},
      {"ENVRUN_MAX_UNPACKED_BYTES", "4096", &UnpackLimits::max_bytes, 4096},
      {"ENVRUN_MAX_ENTRIES", "10", &UnpackLimits::max_entries, 10},
      {"ENVRUN_MAX_LAYERS", "1000", &UnpackLimits::max_layers, 1000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.variable) + "=" + c.value);
    ScopedEnv env(c.variable, c.value);
    auto limits = UnpackLimits::from_environment("ENVRUN");
    ASSERT_TRUE(limits) << limits.error().to_string();
    EXPECT_EQ((*limits).*c.field, c.want);
    EXPECT_EQ(limits->tool, "ENVRUN");
  }
  auto defaults = UnpackLimits::from_environment("ENVBUILD");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->max_expansion, 100u);
  EXPECT_EQ(defaults->max_layers, 500u);
}

TEST(UnpackLimits, BadValuesNameTheVariable) {
  for (const char* value : {"lots", "-1", "1.5G", "10X", "99999999999999999999", "16777216T"}) {
    SCOPED_TRACE(value);
    ScopedEnv env("ENVBUILD_MAX_UNPACKED_BYTES", value);
    auto limits = UnpackLimits::from_environment("ENVBUILD");
    ASSERT_FALSE(limits);
    EXPECT_EQ(limits.error().code(), Errc::InvalidInput);
    EXPECT_EQ(limits.error().message(),
              std::string("ENVBUILD_MAX_UNPACKED_BYTES='") + value +
                  "': expected a size such as 100G or 512M (0: no limit)");
  }
  ScopedEnv env("ENVBUILD_MAX_ENTRIES", "10K");  // counts take no units
  EXPECT_FALSE(UnpackLimits::from_environment("ENVBUILD"));
}

TEST(CheckUnpackLimits, EachLimitNamesItselfAndItsVariable) {
  UnpackLimits limits;
  limits.tool = "ENVRUN";
  limits.max_entries = 10;
  limits.max_bytes = uint64_t{1} << 30;
  const uint64_t mib = uint64_t{1} << 20;
  struct Case {
    uint64_t entries, so_far, entry, compressed;
    std::string_view want;  // "" when within the limits
    std::string_view variable;
  };
  const Case cases[] = {
      {10, 0, 0, 0, "", ""},
      {11, 0, 0, 0, "more entries than an archive may have (limit: 10 entries)", "MAX_ENTRIES"},
      {1, 1000 * mib, 100 * mib, 0, "past the limit (limit: 1.0 GiB)", "MAX_UNPACKED_BYTES"},
      {1, 0, 64 * mib, 1, "", ""},           // at the floor: no ratio yet
      {1, 60 * mib, 10 * mib, mib, "", ""},  // 70x
      {1, 60 * mib, 50 * mib, mib, "a decompression bomb (limit: 100x past 64.0 MiB)",
       "MAX_EXPANSION"},
      {1, 60 * mib, 50 * mib, 0, "", ""},  // compressed size unknown: no ratio
      {1, UINT64_MAX - 1, 5, 0, "past the limit", "MAX_UNPACKED_BYTES"},  // overflow
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.entries) + " " + std::to_string(c.so_far + c.entry));
    auto checked =
        check_unpack_limits(limits, "entry 'x'", c.entries, c.so_far, c.entry, c.compressed);
    if (c.want.empty()) {
      EXPECT_TRUE(checked) << checked.error().to_string();
      continue;
    }
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().code(), Errc::Integrity);
    EXPECT_NE(checked.error().message().find(c.want), std::string::npos)
        << checked.error().message();
    EXPECT_EQ(checked.error().hint(), "if the input is trusted, raise the limit with ENVRUN_" +
                                          std::string(c.variable) + "=N (0: no limit)");
  }
  limits.max_expansion = 0;
  EXPECT_TRUE(check_unpack_limits(limits, "x", 1, 60 * mib, 50 * mib, mib));
}

TEST(CheckEntryPath, LengthAndDepthAreBounded) {
  const UnpackLimits limits;
  EXPECT_TRUE(check_entry_path(limits, "lib/python3.11/site-packages/x.py"));
  EXPECT_TRUE(check_entry_path(limits, std::string(4096, 'a')));
  EXPECT_FALSE(check_entry_path(limits, std::string(4097, 'a')));
  std::string deep;
  for (int i = 0; i < 256; ++i) deep += (i ? "/" : "") + std::string("d");
  EXPECT_TRUE(check_entry_path(limits, deep));
  auto deeper = check_entry_path(limits, deep + "/x");
  ASSERT_FALSE(deeper);
  EXPECT_NE(deeper.error().message().find("257 components, deeper than a tree may nest (256)"),
            std::string::npos)
      << deeper.error().message();
  EXPECT_TRUE(check_layer_count(limits, "image x", 500));
  auto layers = check_layer_count(limits, "image x", 501);
  ASSERT_FALSE(layers);
  EXPECT_EQ(layers.error().message(), "image x has 501 layers (limit: 500 layers)");
}

}  // namespace
}  // namespace envbuild::common
