// Progress of long transfers (issue 19, point 11): what the status line says, and that only a
// terminal gets it.

#include "common/progress.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace envbuild::common {
namespace {

using std::chrono::duration;

TEST(TransferStatus, BytesRateAndEta) {
  struct Case {
    uint64_t done;
    uint64_t total;
    double seconds;
    std::string want;
  };
  const Case cases[] = {
      {0, 0, 0, "0 B"},
      {1 << 20, 0, 0.1, "1.0 MiB"},  // too early for a rate
      {1 << 20, 4 << 20, 0.2, "1.0 MiB / 4.0 MiB"},
      {10 << 20, 40 << 20, 2, "10.0 MiB / 40.0 MiB, 5.0 MiB/s, ETA 0:06"},
      {10 << 20, 0, 2, "10.0 MiB, 5.0 MiB/s"},  // total unknown: no ETA
      {40 << 20, 40 << 20, 4, "40.0 MiB / 40.0 MiB, 10.0 MiB/s"},
      {1 << 20, 1ull << 32, 1, "1.0 MiB / 4.0 GiB, 1.0 MiB/s, ETA 1:08:15"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.want);
    EXPECT_EQ(transfer_status(c.done, c.total, duration<double>(c.seconds)), c.want);
  }
}

std::string drive(bool terminal) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = ::open_memstream(&buffer, &size);
  {
    TransferProgress progress("fetching 2 packages", 2000, terminal, out);
    progress.add_bytes(1000);
    progress.line("fetched 1/2 a");
    progress.skip(1000);
    progress.line("fetched 2/2 b");
  }
  std::fclose(out);
  std::string text(buffer, size);
  std::free(buffer);
  return text;
}

TEST(TransferProgress, ATerminalGetsAStatusLineOthersPlainLines) {
  EXPECT_EQ(drive(false), "fetched 1/2 a\nfetched 2/2 b\n");
  const std::string tty = drive(true);
  EXPECT_NE(tty.find("\r\033[Kfetching 2 packages: 1000 B / 2.0 KiB"), std::string::npos) << tty;
  EXPECT_NE(tty.find("fetched 1/2 a\n"), std::string::npos);
  // After skip(): 1000 of 1000 bytes.
  EXPECT_NE(tty.find("fetching 2 packages: 1000 B / 1000 B"), std::string::npos) << tty;
  EXPECT_TRUE(tty.ends_with("\r\033[K")) << "the status line is cleared at the end";
}

}  // namespace
}  // namespace envbuild::common
