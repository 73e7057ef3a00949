// Fuzzes OCI layer extraction (gzip, zstd or plain tar; whiteouts applied) into
// <base>/sandbox/out: nothing may be written anywhere else. Small size limits keep bombs cheap.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/io.hpp"
#include "oci/layer_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static envbuild::fuzz::Sandbox box;
  box.reset(/*create_out=*/true);
  envbuild::common::StringSource source(std::string(envbuild::fuzz::as_text(data, size)));
  envbuild::oci::ExtractOptions options;
  options.limits.max_bytes = 4 << 20;
  options.compressed_size = size;
  // Devices need CAP_MKNOD and are refused by default; allow them on odd inputs to cover the path.
  if (size % 2 == 1) options.allow_devices = envbuild::oci::AllowDevices::Yes;
  (void)envbuild::oci::extract_layer(source, box.out(), options);
  box.check();
  return 0;
}
