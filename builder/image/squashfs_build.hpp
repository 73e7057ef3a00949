#pragma once

// `envbuild build --output squashfs:FILE`: the environment as one SquashFS image, for HPC file
// systems that choke on 100k-file prefixes. It is written straight from the package cache by the
// same plans as the OCI layers (builder/image/image_build.hpp): every package planned for the prefix
// (patched copies of the placeholder files staged, everything else read where the package cache
// extracted it), then one image whose root *is* the prefix, mounted there by envrun. Nothing is
// staged as a whole prefix on disk.
//
// The image holds what an OCI image's config would say in conda::kImageInfoPath
// (.envbuild/image.json: Env, Cmd, Entrypoint, the org.envbuild.* labels: prefix, requirements,
// lock) and the relocation index in conda-meta/, so envrun can check the host before mounting and
// relocate a copy when it cannot mount. Same inputs (and SOURCE_DATE_EPOCH) -> same bytes.

#include <filesystem>
#include <string>

#include "builder/image/image_build.hpp"
#include "common/result.hpp"
#include "squashfs/writer.hpp"

namespace envbuild::builder {

/// The transport prefix of a SquashFS output: "squashfs:FILE".
inline constexpr std::string_view kSquashfsOutput = "squashfs:";

struct SquashfsOutputOptions {
  squashfs::Compression compression = squashfs::Compression::Zstd;
  std::optional<int> level;  // squashfs::default_level when unset
};

struct SquashfsBuild {
  ImageBuild build;  // the records, requirements, lock and fetch/plan timings
  squashfs::WriteInfo written;
  std::string sha256;  // hex digest of the image file
  double write_ms = 0;
};

/// Fetches and plans the packages for options.prefix (through the plan cache), then writes the
/// image to `output` atomically: every package's files (a later package in link order wins a
/// clobbered path, as in the layers), the files of no package (history, state, env vars, the
/// relocation index), and .envbuild/image.json. options.base is refused (a SquashFS image holds
/// the environment only); options.jobs compression threads, options.source_date_epoch the mtime.
Result<SquashfsBuild> build_environment_squashfs(const EnvironmentSpec& env,
                                                 const ImageBuildOptions& options,
                                                 const SquashfsOutputOptions& output_options,
                                                 const std::filesystem::path& output);

}  // namespace envbuild::builder
