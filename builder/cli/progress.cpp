#include "builder/cli/progress.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/format.hpp"

namespace envbuild::builder::cli {

bool stderr_is_terminal() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) == 1 && !(term && std::strcmp(term, "dumb") == 0);
}

FetchProgress::FetchProgress(const std::vector<conda::PackageRecord>& records, size_t wheels,
                             bool quiet)
    : quiet_(quiet), total_(records.size() + wheels) {
  uint64_t bytes = 0;  // a wheel's size is not known before its download
  for (const auto& r : records) bytes += r.size.value_or(0);
  std::string what = "fetching " + std::to_string(records.size()) + " packages";
  if (wheels > 0) what += " and " + std::to_string(wheels) + " wheels";
  if (!quiet_) transfer_ = std::make_shared<common::TransferProgress>(what, bytes, stderr_is_terminal());
}

void FetchProgress::attach(PackageCacheOptions& options) {
  if (quiet_) return;
  options.on_bytes = [transfer = transfer_](uint64_t n) { transfer->add_bytes(n); };
  auto next = options.on_ready;
  options.on_ready = [this, next](size_t i, const PackageRef& ref,
                                  const CachedPackage& cached) -> Result<void> {
    // A package already in the cache is no download: its bytes come off the expected total
    // (which holds no wheel's).
    if (!cached.downloaded && !archive_name(ref).ends_with(".whl"))
      transfer_->skip(ref.size.value_or(cached.size));
    std::string how = cached.downloaded ? "downloaded" : "cached";
    if (cached.extracted_now) how += ", extracted";
    transfer_->line("fetched " + std::to_string(++ready_) + "/" + std::to_string(total_) + " " +
                    archive_name(ref) + " (" + human_bytes(cached.size) + ", " + how + ")");
    return next ? next(i, ref, cached) : ok();
  };
}

void FetchProgress::line(const std::string& text) {
  if (!quiet_) transfer_->line(text);
}

void FetchProgress::finish() {
  if (transfer_) transfer_->finish();
}

std::shared_ptr<common::TransferProgress> attach_push_progress(
    std::function<void(uint64_t)>& on_bytes,
    std::function<void(const oci::Descriptor&, oci::registry::UploadOutcome)>& on_blob,
    const std::string& what, uint64_t total, bool quiet) {
  if (quiet) return nullptr;
  auto transfer = std::make_shared<common::TransferProgress>(what, total, stderr_is_terminal());
  // Raw pointers: the caller keeps the progress alive for as long as the push runs.
  on_bytes = [t = transfer.get()](uint64_t n) { t->add_bytes(n); };
  on_blob = [t = transfer.get()](const oci::Descriptor& blob, oci::registry::UploadOutcome how) {
    if (how == oci::registry::UploadOutcome::Uploaded) return;
    t->skip(static_cast<uint64_t>(blob.size));
  };
  return transfer;
}

}  // namespace envbuild::builder::cli
