#pragma once

// Conda-aware layering under a budget. One layer per package when the budget allows (the same
// package then gives the same layer in every image); otherwise large packages keep a layer of
// their own and the small ones are grouped by dependency depth, so that the layers near the base
// hold the packages that change least, and the leaves (what users bump most) sit on top.

#include <cstdint>
#include <string>
#include <vector>

namespace envbuild::builder {

struct LayerCandidate {
  std::string name;
  std::string label;       // name-version-build, for plans and messages
  uint64_t size = 0;       // installed bytes
  int depth = 0;           // longest dependency chain below it (0: depends on nothing here)
};

struct LayerGroup {
  std::vector<size_t> members;  // indexes into the candidates, sorted by name
  uint64_t size = 0;
  std::string reason;  // "alone: large", "alone: budget allows", "group: depth 2-3"
};

struct LayeringOptions {
  size_t max_layers = 100;   // the image's whole budget, base layers included
  size_t base_layers = 0;    // layers the base image already has
  size_t reserved = 1;       // envbuild's own top layer (history, relocation index, ...)
};

/// Groups the candidates into at most the budget's layers, bottom first. Deterministic for a
/// given candidate set (order of the input does not matter).
std::vector<LayerGroup> plan_layers(const std::vector<LayerCandidate>& candidates,
                                    const LayeringOptions& options);

/// Dependency depth of each record given name-level edges (deps[i] = indexes i depends on).
std::vector<int> dependency_depths(const std::vector<std::vector<size_t>>& deps);

}  // namespace envbuild::builder
