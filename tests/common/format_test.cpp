#include "common/format.hpp"

#include <gtest/gtest.h>

namespace envbuild {
namespace {

TEST(HumanBytes, PicksTheLargestUnitBelow1024) {
  struct Case {
    uint64_t bytes;
    const char* want;
  };
  for (const Case& c :
       {Case{0, "0 B"}, Case{1023, "1023 B"}, Case{1024, "1.0 KiB"}, Case{1536, "1.5 KiB"},
        Case{5u << 20, "5.0 MiB"}, Case{(3ull << 30) / 2, "1.5 GiB"}, Case{2ull << 40, "2.0 TiB"},
        Case{5000ull << 40, "5000.0 TiB"}})
    EXPECT_EQ(human_bytes(c.bytes), c.want) << c.bytes;
}

TEST(DidYouMean, SuggestsTheClosestCandidateWithinAThirdOfTheWord) {
  const std::string_view commands[] = {"build", "install", "inspect", "lock", "solve", "cache"};
  struct Case {
    std::string_view word;
    std::optional<std::string> want;
  };
  for (const Case& c : {Case{"bulid", "build"},  // a swap of neighbours is one edit
                        Case{"instal", "install"}, Case{"inspct", "inspect"}, Case{"lokc", "lock"},
                        Case{"solve", "solve"}, Case{"x", std::nullopt},
                        Case{"deploy", std::nullopt}, Case{"", std::nullopt}}) {
    SCOPED_TRACE(c.word);
    EXPECT_EQ(common::did_you_mean(c.word, commands), c.want);
  }
  // Memory follows the candidates, not the (untrusted) word.
  const std::string huge(1u << 20, 'b');
  EXPECT_EQ(common::did_you_mean(huge, commands), std::nullopt);
}

}  // namespace
}  // namespace envbuild
