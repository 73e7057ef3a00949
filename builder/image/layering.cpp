#include "builder/image/layering.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

namespace envbuild::builder {

std::vector<int> dependency_depths(const std::vector<std::vector<size_t>>& deps) {
  std::vector<int> depth(deps.size(), -1);
  std::vector<bool> visiting(deps.size(), false);
  std::function<int(size_t)> visit = [&](size_t i) -> int {
    if (depth[i] >= 0) return depth[i];
    if (visiting[i]) return 0;  // a cycle: cut it here
    visiting[i] = true;
    int d = 0;
    for (size_t j : deps[i])
      if (j != i) d = std::max(d, visit(j) + 1);
    visiting[i] = false;
    return depth[i] = d;
  };
  for (size_t i = 0; i < deps.size(); ++i) visit(i);
  return depth;
}

std::vector<LayerGroup> plan_layers(const std::vector<LayerCandidate>& candidates,
                                    const LayeringOptions& options) {
  std::vector<LayerGroup> groups;
  if (candidates.empty()) return groups;
  size_t used = options.base_layers + options.reserved;
  size_t budget = options.max_layers > used ? options.max_layers - used : 1;

  // Bottom-to-top order: shallow (depended-upon, stable) first, then by name.
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  auto by_depth = [&](size_t a, size_t b) {
    const auto& x = candidates[a];
    const auto& y = candidates[b];
    if (x.depth != y.depth) return x.depth < y.depth;
    return x.label < y.label;
  };
  std::sort(order.begin(), order.end(), by_depth);

  if (candidates.size() <= budget) {
    for (size_t i : order)
      groups.push_back({{i}, candidates[i].size, "alone: the budget allows one layer per package"});
    return groups;
  }

  // The largest packages (python, cuda libraries, pytorch, mkl ...) keep a layer each: they are
  // what a registry and a CI cache most need to share. Half the budget at most.
  std::vector<size_t> by_size(candidates.size());
  std::iota(by_size.begin(), by_size.end(), 0);
  std::sort(by_size.begin(), by_size.end(), [&](size_t a, size_t b) {
    if (candidates[a].size != candidates[b].size) return candidates[a].size > candidates[b].size;
    return candidates[a].label < candidates[b].label;
  });
  uint64_t total = 0;
  for (const auto& c : candidates) total += c.size;
  size_t alone_max = budget / 2;
  std::vector<bool> alone(candidates.size(), false);
  size_t alone_count = 0;
  for (size_t i : by_size) {
    if (alone_count >= alone_max) break;
    // Alone only when it is a real share of the environment (>= 1 %) or at least 8 MiB.
    if (candidates[i].size * 100 < total && candidates[i].size < (8u << 20)) break;
    alone[i] = true;
    ++alone_count;
  }
  size_t group_budget = budget - alone_count;
  std::vector<size_t> rest;
  for (size_t i : order)
    if (!alone[i]) rest.push_back(i);

  // Split the rest, in depth order, into group_budget runs of about equal size.
  std::vector<LayerGroup> small;
  uint64_t rest_total = 0;
  for (size_t i : rest) rest_total += candidates[i].size;
  size_t runs = std::max<size_t>(1, std::min(group_budget, rest.size()));
  uint64_t target = rest_total / runs + 1;
  LayerGroup current;
  for (size_t k = 0; k < rest.size(); ++k) {
    size_t i = rest[k];
    current.members.push_back(i);
    current.size += candidates[i].size;
    size_t left_items = rest.size() - k - 1;
    size_t left_runs = runs - small.size() - 1;
    bool full = current.size >= target && left_runs > 0;
    bool must_close = left_items == left_runs && left_runs > 0;
    if (full || must_close) {
      small.push_back(std::move(current));
      current = {};
    }
  }
  if (!current.members.empty()) small.push_back(std::move(current));
  for (auto& g : small) {
    int lo = candidates[g.members.front()].depth, hi = candidates[g.members.back()].depth;
    g.reason = g.members.size() == 1 ? "alone: budget" :
               "group: dependency depth " + std::to_string(lo) + (lo == hi ? "" : "-" + std::to_string(hi));
    std::sort(g.members.begin(), g.members.end(),
              [&](size_t a, size_t b) { return candidates[a].label < candidates[b].label; });
  }

  // Interleave: big packages alone at their depth position, groups at theirs.
  std::vector<LayerGroup> all = std::move(small);
  for (size_t i = 0; i < candidates.size(); ++i)
    if (alone[i]) all.push_back({{i}, candidates[i].size, "alone: large"});
  auto key = [&](const LayerGroup& g) {
    int depth = candidates[g.members.front()].depth;
    for (size_t m : g.members) depth = std::min(depth, candidates[m].depth);
    return std::make_pair(depth, candidates[g.members.front()].label);
  };
  std::stable_sort(all.begin(), all.end(),
                   [&](const LayerGroup& a, const LayerGroup& b) { return key(a) < key(b); });
  return all;
}

}  // namespace envbuild::builder
