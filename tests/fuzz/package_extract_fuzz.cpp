// Fuzzes `.conda` (zip of zstd tars) and `.tar.bz2` extraction and metadata reading. The input
// is written to <base>/input.{conda,tar.bz2} (a zip magic picks .conda) and extracted into
// <base>/sandbox/out: nothing may appear anywhere else, and a failed extraction leaves nothing.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "conda/extract.hpp"
#include "conda/package_metadata.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static envbuild::fuzz::Sandbox box;
  auto text = envbuild::fuzz::as_text(data, size);
  bool is_zip = text.starts_with("PK");
  std::string name = is_zip ? "input-1.0-0.conda" : "input-1.0-0.tar.bz2";
  auto package = box.base() / name;
  {
    std::ofstream out(package, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  box.reset(/*create_out=*/false);
  auto extracted = envbuild::conda::extract_package(package, box.out());
  box.check(name);
  if (!extracted && std::filesystem::exists(box.out()) && !std::filesystem::is_empty(box.out()))
    fail("failed extraction left files behind: " + extracted.error().message());
  (void)envbuild::conda::read_package_metadata(package);
  std::filesystem::remove(package);  // the next input may be of the other format
  return 0;
}
