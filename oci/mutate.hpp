#pragma once

// Building on a base image (like go-containerregistry's mutate.Append): the base's layer blobs
// are kept byte-identical, new layers and config changes go on top.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/image.hpp"
#include "oci/layer_writer.hpp"

namespace envbuild::oci {

struct ConfigChanges {
  std::vector<std::pair<std::string, std::string>> env;  // set KEY=VALUE, in order
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::optional<std::string> working_dir;
  std::optional<std::string> user;
  std::map<std::string, std::string> labels;  // added or replaced
  std::optional<std::string> created;         // RFC 3339
  std::optional<Platform> platform;           // only for an empty base
};

struct AppendedLayer {
  LayerInfo layer;  // its blob must already be in the target store, unless `elsewhere`
  History history;
  /// The blob is not in the store but in a registry the image goes to (a layer cache).
  bool elsewhere = false;
};

/// Writes a new image into `store`: the base's blobs (linked or copied, verified), its layers
/// then `layers`, its config with the diff_ids, history and `changes` applied. Docker layer
/// media types of the base become their OCI equivalents (same bytes). Returns the manifest
/// descriptor (not yet tagged).
Result<Descriptor> append_layers(const Image& base, const std::vector<AppendedLayer>& layers,
                                 const ConfigChanges& changes, const BlobStore& store);

/// The same, from scratch: an image with no base.
Result<Descriptor> build_image(const Platform& platform, const std::vector<AppendedLayer>& layers,
                               const ConfigChanges& changes, const BlobStore& store);

}  // namespace envbuild::oci
