// plan_layers: one layer per package when the budget allows, otherwise large packages alone and
// the rest grouped by dependency depth; never over budget; every package exactly once; the
// result does not depend on the input order.

#include "builder/image/layering.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace envbuild::builder {
namespace {

std::vector<LayerCandidate> make_candidates(size_t n) {
  std::vector<LayerCandidate> out;
  for (size_t i = 0; i < n; ++i) {
    std::string name = "pkg" + std::to_string(1000 + i);
    // A few big ones (like python, cudnn, mkl), many small ones.
    uint64_t size = (i % 17 == 0) ? (200ull << 20) : (50ull << 10) * (1 + i % 7);
    out.push_back({name, name + "-1.0-0", size, static_cast<int>(i % 5)});
  }
  return out;
}

// Every candidate once; returns the member lists as label sets for comparisons.
std::vector<std::set<std::string>> check_partition(const std::vector<LayerCandidate>& c,
                                                   const std::vector<LayerGroup>& groups) {
  std::vector<int> seen(c.size(), 0);
  std::vector<std::set<std::string>> labels;
  for (const auto& g : groups) {
    EXPECT_FALSE(g.members.empty());
    uint64_t size = 0;
    std::set<std::string> s;
    for (size_t m : g.members) {
      EXPECT_LT(m, c.size());
      ++seen[m];
      size += c[m].size;
      s.insert(c[m].label);
    }
    EXPECT_EQ(g.size, size);
    labels.push_back(std::move(s));
  }
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(seen[i], 1) << c[i].label;
  return labels;
}

TEST(PlanLayers, OneLayerPerPackageWhenTheBudgetAllows) {
  auto c = make_candidates(20);
  auto groups = plan_layers(c, {100, 0, 1});
  ASSERT_EQ(groups.size(), 20u);
  check_partition(c, groups);
  // Bottom first: shallow (depended-upon) packages below deeper ones.
  for (size_t i = 1; i < groups.size(); ++i)
    EXPECT_LE(c[groups[i - 1].members[0]].depth, c[groups[i].members[0]].depth);
}

TEST(PlanLayers, StaysWithinTheBudgetCountingBaseAndReserved) {
  auto c = make_candidates(250);  // a CUDA/PyTorch-sized environment
  for (size_t max : {3u, 10u, 30u, 64u, 100u, 127u}) {
    SCOPED_TRACE(max);
    auto groups = plan_layers(c, {max, 2, 1});
    EXPECT_LE(groups.size() + 2 + 1, std::max<size_t>(max, 4));
    EXPECT_GE(groups.size(), 1u);
    check_partition(c, groups);
  }
}

TEST(PlanLayers, LargePackagesKeepALayerOfTheirOwn) {
  auto c = make_candidates(250);
  auto groups = plan_layers(c, {60, 0, 1});
  size_t big_alone = 0;
  for (const auto& g : groups)
    if (g.members.size() == 1 && c[g.members[0]].size == (200ull << 20)) ++big_alone;
  EXPECT_EQ(big_alone, 15u);  // 250 / 17 rounded up: all fit in half the budget
}

TEST(PlanLayers, IndependentOfInputOrder) {
  auto c = make_candidates(120);
  auto a = check_partition(c, plan_layers(c, {40, 1, 1}));
  auto shuffled = c;
  std::mt19937 rng(42);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  auto b = check_partition(shuffled, plan_layers(shuffled, {40, 1, 1}));
  EXPECT_EQ(a, b);
}

TEST(PlanLayers, TinyBudgetGivesOneGroup) {
  auto c = make_candidates(10);
  auto groups = plan_layers(c, {2, 1, 1});  // no room at all: still one layer
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].members.size(), 10u);
  EXPECT_TRUE(plan_layers({}, {}).empty());
}

TEST(DependencyDepths, ChainsDiamondsAndCycles) {
  // 0 <- 1 <- 2, 0 <- 3 <- 2 (diamond), 4 <-> 5 (cycle), 6 alone.
  std::vector<std::vector<size_t>> deps = {{}, {0}, {1, 3}, {0}, {5}, {4}, {}};
  auto d = dependency_depths(deps);
  EXPECT_EQ(d[0], 0);
  EXPECT_EQ(d[1], 1);
  EXPECT_EQ(d[2], 2);
  EXPECT_EQ(d[3], 1);
  EXPECT_EQ(d[6], 0);
  EXPECT_GE(d[4], 0);  // a cycle is cut, not an endless loop
  EXPECT_GE(d[5], 0);
}

}  // namespace
}  // namespace envbuild::builder
