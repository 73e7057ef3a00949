#pragma once

// The contract between envbuild (which writes images) and envrun (which runs them): the labels
// and files an envbuild image carries and what they mean. Both sides include this header and
// nothing else defines these names.
//
//   labels (image config)
//     org.envbuild.prefix        the absolute prefix the environment is installed at
//     org.envbuild.requirements  what the host must offer, ";"-separated virtual-package
//                                requirements ("__cuda >=12.4;__glibc >=2.17"): host_requirements()
//                                of the solved records' depends, so envrun checks the host
//                                without unpacking anything
//     org.envbuild.platform      the conda subdir ("linux-64")
//     org.envbuild.lock          the @EXPLICIT lock of the solution
//     org.envbuild.version       the envbuild that built it
//   files (inside the prefix)
//     conda-meta/envbuild-relocations.json   the relocation index (relocate_prefix.hpp)
//     conda-meta/<name>-<version>-<build>.json  conda's records; their `__` depends are the
//                                requirements again, for prefixes without the label
//     .envbuild/image.json      SquashFS images only (envbuild build --output squashfs:FILE,
//                                whose root is the prefix): what an OCI image's config holds
//                                (ImageInfo: Env, Entrypoint, Cmd and the labels above)
//
// Labels and files are read from images, so envrun validates them (docs/security.md).

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/relocate_prefix.hpp"

namespace envbuild::conda {

inline constexpr std::string_view kPrefixLabel = "org.envbuild.prefix";
inline constexpr std::string_view kRequirementsLabel = "org.envbuild.requirements";
inline constexpr std::string_view kPlatformLabel = "org.envbuild.platform";
inline constexpr std::string_view kLockLabel = "org.envbuild.lock";
inline constexpr std::string_view kVersionLabel = "org.envbuild.version";
/// The annotation of an image (or SBOM artifact) naming its lock's digest.
inline constexpr std::string_view kLockDigestAnnotation = "org.envbuild.lock.digest";
/// The config history's created_by of a layer of conda packages / of wheels: the prefix, then
/// the members' labels joined by ", " (`envbuild inspect` lists them per layer).
inline constexpr std::string_view kCondaLayerHistory = "envbuild: conda ";
inline constexpr std::string_view kPypiLayerHistory = "envbuild: pypi ";
/// Where an image without the prefix label keeps its environment (as conda images do).
inline constexpr std::string_view kDefaultImagePrefix = "/opt/conda";

/// One host requirement, e.g. {"__cuda", ">=12.4"}; the spec may be empty (present at all).
struct HostRequirement {
  std::string name;
  std::string spec;
  auto operator<=>(const HostRequirement&) const = default;
  /// "__cuda >=12.4", or the name alone: how labels and reports write it.
  [[nodiscard]] std::string to_string() const { return spec.empty() ? name : name + " " + spec; }
};

/// Parses a conda depends entry on a virtual package: "__cuda >=12.4", "__glibc>=2.17,<3.0.a0",
/// "__cuda" (a build string after the version spec does not matter to a host check).
Result<HostRequirement> parse_host_requirement(std::string_view text);

/// The virtual-package entries of some depends lists, parsed, deduplicated and sorted: what a
/// host must offer. Entries on other packages, and unparsable ones, are left out.
std::vector<HostRequirement> host_requirements(const std::vector<std::string>& depends);

/// The org.envbuild.requirements value for `requirements`.
std::string requirements_label(const std::vector<HostRequirement>& requirements);
/// That value split back into its entries (trimmed, empty ones skipped).
std::vector<std::string> split_requirements_label(std::string_view label);

/// The prefix of an image: its org.envbuild.prefix label, else CONDA_PREFIX in its Env, else
/// kDefaultImagePrefix.
std::string image_prefix_of(const std::map<std::string, std::string>& labels,
                            const std::vector<std::string>& env);

/// Where a SquashFS image of an environment keeps its ImageInfo, relative to the image's root
/// (the prefix): mounted, it is <prefix>/.envbuild/image.json.
inline constexpr std::string_view kImageInfoPath = ".envbuild/image.json";
/// The largest ImageInfo read (the lock label of a big environment is some 100 KB).
inline constexpr size_t kMaxImageInfoBytes = size_t{16} << 20;

/// What the config of an OCI image says about the environment, for images that have no config:
/// the same Env, Entrypoint, Cmd and labels (org.envbuild.prefix, .requirements, .platform, .lock,
/// .version and the user's), with the same meaning.
struct ImageInfo {
  std::vector<std::string> env;  // KEY=VALUE
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::map<std::string, std::string> labels;
  bool operator==(const ImageInfo&) const = default;
};

/// {"format":1,"env":[...],"labels":{...}[,"entrypoint":[...]][,"cmd":[...]]}, keys sorted, no
/// whitespace: the same info gives the same bytes.
std::string to_json_string(const ImageInfo& info);
/// Parses .envbuild/image.json. InvalidInput (naming `what`) for malformed JSON, a field of the
/// wrong type, an unknown format; the values are the image's word and are checked where used.
Result<ImageInfo> parse_image_info(std::string_view text, std::string_view what);

}  // namespace envbuild::conda
