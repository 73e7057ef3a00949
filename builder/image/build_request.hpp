#pragma once

// What `envbuild build` does once its options are known, for one platform: open the --base
// image (a registry's pulled into the cache's store), open the --cache-from layer cache, build
// the image (builder/image/image_build.hpp), attach its SBOM as an artifact, write each output
// (squashfs: ones through squashfs_build.hpp), and push the --cache-to layer cache. The
// command line (builder/cli/build.cpp) reads the environment and options into a BuildRequest
// and prints the result; tests call build_image() in process.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "builder/image/image_build.hpp"
#include "builder/image/squashfs_build.hpp"
#include "common/result.hpp"
#include "oci/image.hpp"

namespace envbuild::builder {

/// A docker:// output's push progress (the CLI's status line): sets output.on_bytes, on_blob
/// and progress for a push of `total` bytes called `what` ("pushing docker://..."), and
/// returns what to call once the push is done (null: nothing to call).
using PushProgress = std::function<std::function<void()>(OutputOptions& output,
                                                         const std::string& what, uint64_t total)>;

/// Told each squashfs: output once written (`file`: its path), with the compression it used.
using SquashfsWritten = std::function<void(const std::string& file, const SquashfsBuild& built,
                                           const SquashfsOutputOptions& output)>;

struct BuildRequest {
  EnvironmentSpec env;
  /// The image build's options; options.cache_root must be set (the packages, layers and the
  /// blob store a registry base is pulled into). build_image() sets base, cache_from and
  /// fetch_cached_layers.
  ImageBuildOptions options;
  std::string tag;                   // -t NAME[:TAG]: the outputs' tag where they give none
  std::vector<std::string> outputs;  // oci:, oci-archive:, docker-archive:, docker://, squashfs:
  std::string base;                  // --base reference, or empty (an image from scratch)
  std::string cache_from;            // docker://HOST/REPO[:TAG] layer caches, or empty
  std::string cache_to;
  /// Scratch directory, TLS and credentials of every registry (outputs, base, caches).
  OutputOptions registry;
  SquashfsOutputOptions squashfs;  // squashfs: outputs' compression and level
  bool plan = false;               // plan the layers only: nothing is built or written
  bool sbom_artifact = true;       // attach the SBOM to the image (an OCI artifact)
  std::string sbom_file;           // also write the SBOM there, or empty
  /// Build the image and hand it back (BuildResult::image) without writing outputs, the SBOM
  /// or --cache-to: one platform of a multi-platform build, which writes the index itself.
  bool keep_image = false;
  /// The build's lines: the base pulled, the layer cache, each output written, warnings.
  std::function<void(const std::string&)> progress;
  PushProgress push_progress;        // unset: pushes show no progress
  SquashfsWritten squashfs_written;  // unset: nothing is told
};

struct BuildResult {
  /// The image built, or the plan (request.plan); nullopt when only squashfs: outputs were
  /// asked for (no OCI image is built).
  std::optional<ImageBuild> build;
  /// A plan from the records' download sizes alone (nothing downloaded).
  bool estimated = false;
  /// request.keep_image: the image, its blobs in build->store.
  std::unique_ptr<oci::Image> image;
  std::string sbom;  // the SPDX JSON of the image built (empty for a plan or keep_image)
};

/// Does what `request` asks (see the file comment); the progress lines are the CLI's.
Result<BuildResult> build_image(const BuildRequest& request);

/// One platform's image of a multi-platform build (build_image with keep_image).
struct PlatformImage {
  std::string subdir;
  ImageBuild build;
  std::unique_ptr<oci::Image> image;
};

/// The image index over several platforms' images and where it goes.
struct IndexRequest {
  std::string tag;                   // the outputs' tag where they give none
  std::vector<std::string> outputs;  // oci:, oci-archive:, docker://
  OutputOptions registry;            // scratch directory, TLS and credentials
  bool sbom_artifact = true;         // attach each image's SBOM (an OCI artifact)
  std::string sbom_file;             // also write FILE.<subdir> per platform, or empty
  std::function<void(const std::string&)> progress;  // "wrote OUTPUT"
};

/// Puts the index over `images` (their blobs in the first one's store), attaches each image's
/// SBOM, writes the outputs. Returns the index's descriptor.
Result<oci::Descriptor> write_platform_index(const std::vector<PlatformImage>& images,
                                             const IndexRequest& request);

}  // namespace envbuild::builder
