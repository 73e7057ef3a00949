#pragma once

// The steps an unpack shares, whatever the image (OCI layers or a SquashFS image): a staging
// sibling of the target, the relocation of the staged prefix, the EnvInfo a launch needs, and the
// rename into place (cache.cpp).

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/root_dir.hpp"
#include "runtime/cache.hpp"

namespace envbuild::runtime::internal {

/// ".<name>.<pid>.tmp" beside an unpack target, removed (with what is left in it) on destruction;
/// what a killed unpack left there before is removed first.
class Staging {
 public:
  /// `dir` (made absolute) must not exist or be empty; its parent is created.
  static Result<Staging> begin(const std::filesystem::path& dir);
  Staging(Staging&&) noexcept = default;
  Staging& operator=(Staging&&) noexcept = default;
  ~Staging();

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] const common::RootDir& stage() const noexcept { return *stage_; }
  /// Renames `relative` of the staging tree ("" = the staging directory itself) to the target,
  /// by descriptors, and syncs the parent.
  Result<void> commit(std::string_view relative);

 private:
  Staging() = default;
  std::filesystem::path dir_;
  std::filesystem::path path_;
  std::string name_;
  std::unique_ptr<common::RootDir> parent_;
  std::unique_ptr<common::RootDir> stage_;
};

/// What an image says about its environment: the OCI config, or a SquashFS image's image.json.
struct ImageDescription {
  std::string digest;  // the manifest digest ("" for a SquashFS image)
  std::string reference;
  std::string image_prefix;
  std::string platform;
  std::vector<std::string> env;
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::vector<std::string> label_requirements;
};

/// Relocates the staged prefix to `dir` (from whatever its index says), with a hint when a
/// binary has no room for the path.
Result<void> relocate_staged(const common::RootDir& staged, const std::filesystem::path& dir,
                             const std::string& reference);

/// The EnvInfo of an environment at `prefix` whose files are read beneath `tree` (the staged
/// prefix, or a mounted image): Env and arguments rewritten from the image prefix, activation
/// variables and scripts, the label's and the records' requirements.
Result<EnvInfo> describe_prefix(const common::RootDir& tree, const ImageDescription& description,
                                const std::string& prefix);

/// An absolute path without "..", NUL or an empty component, and not "/".
bool is_safe_prefix(std::string_view prefix);

}  // namespace envbuild::runtime::internal
