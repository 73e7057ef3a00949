// Fuzzes the SquashFS reader (squashfs/reader.hpp) that envrun runs on image files it is given:
// open (superblock and table checks), walk, read .envbuild/image.json, and extract into
// <base>/sandbox/out. Nothing may appear outside out/, and bounds (small here) must hold.

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/root_dir.hpp"
#include "squashfs/reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static envbuild::fuzz::Sandbox box;
  envbuild::squashfs::ReadLimits limits;
  limits.max_depth = 64;
  limits.max_entries = 20000;
  limits.max_file_size = uint64_t{1} << 20;
  limits.max_total_size = uint64_t{8} << 20;
  auto bytes = std::as_bytes(std::span(data, size));
  auto reader = envbuild::squashfs::Reader::open_memory(bytes, limits);
  if (!reader) return 0;
  uint64_t entries = 0;
  (void)reader->walk([&](const envbuild::squashfs::EntryInfo& e) -> envbuild::Result<void> {
    if (e.path.empty() || e.path.front() == '/' || e.path.find("..") == 0)
      fail("walk gave the path '" + e.path + "'");
    if (++entries > limits.max_entries) fail("walk passed the entry limit");
    return envbuild::ok();
  });
  (void)reader->read_file(".envbuild/image.json", 1 << 16);
  box.reset(/*create_out=*/true);
  auto root = envbuild::common::RootDir::open(box.out());
  if (!root) fail(root.error().to_string());
  (void)reader->extract(*root);
  box.check();
  return 0;
}
