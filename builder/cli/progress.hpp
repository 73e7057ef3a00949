#pragma once

// Progress of a command's package downloads and pushes, as the CLI shows it: one plain line per
// finished package ("fetched 3/25 xz-5.2.6-h166bdaf_0.tar.bz2 (408.6 KiB, downloaded)"), and on
// a terminal a status line under them with bytes, rate and ETA (common/progress.hpp).

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "builder/install/package_cache.hpp"
#include "common/progress.hpp"
#include "conda/package_record.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder::cli {

/// True when stderr is a terminal (and TERM is not "dumb"): status lines are drawn.
bool stderr_is_terminal();

class FetchProgress {
 public:
  /// Counts `records` and the `wheels` of a pip: section, fetched through the same cache;
  /// `quiet`: print nothing at all.
  FetchProgress(const std::vector<conda::PackageRecord>& records, size_t wheels, bool quiet);
  /// Reports through `options` (on_bytes, and on_ready before the one already there).
  void attach(PackageCacheOptions& options);
  /// Prints a line above the status line (the command's other progress).
  void line(const std::string& text);
  /// Clears the status line.
  void finish();

 private:
  bool quiet_;
  size_t total_;
  std::atomic<size_t> ready_{0};
  std::shared_ptr<common::TransferProgress> transfer_;
};

/// The same for the blobs a push sends (`total`: their bytes, 0 when unknown): sets the push's
/// on_bytes and on_blob (oci::registry::RegistryOptions, builder::OutputOptions). The returned
/// progress (null when quiet) must live as long as the push; print through its line().
std::shared_ptr<common::TransferProgress> attach_push_progress(
    std::function<void(uint64_t)>& on_bytes,
    std::function<void(const oci::Descriptor&, oci::registry::UploadOutcome)>& on_blob,
    const std::string& what, uint64_t total, bool quiet);

}  // namespace envbuild::builder::cli
