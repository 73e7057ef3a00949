// Writes one layer from a directory tree with oci::write_layer and prints the time taken.
// Usage: layer_write_bench TREE STORE_DIR gzip|zstd|none [LEVEL]
// Built by bench/layer_write.sh against build-oci's static libraries (not part of CMake).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "oci/layer_writer.hpp"

int main(int argc, char** argv) {
  using namespace envbuild;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s TREE STORE_DIR gzip|zstd|none [LEVEL]\n", argv[0]);
    return 2;
  }
  std::string kind = argv[3];
  oci::LayerOptions options;
  options.compression = kind == "zstd"   ? oci::Compression::Zstd
                        : kind == "none" ? oci::Compression::None
                                         : oci::Compression::Gzip;
  if (argc > 4) options.level = std::atoi(argv[4]);
  options.mtime = 1;
  auto start = std::chrono::steady_clock::now();
  auto entries = oci::entries_from_tree(argv[1]);
  if (!entries) {
    std::fprintf(stderr, "error: %s\n", entries.error().to_string().c_str());
    return 1;
  }
  auto info = oci::write_layer(std::move(*entries), options, oci::BlobStore(argv[2]));
  if (!info) {
    std::fprintf(stderr, "error: %s\n", info.error().to_string().c_str());
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s %.3f s  tar %lld B  blob %lld B  %s\n", kind.c_str(), secs,
              static_cast<long long>(info->uncompressed_size),
              static_cast<long long>(info->descriptor.size),
              info->descriptor.digest.to_string().c_str());
  return 0;
}
