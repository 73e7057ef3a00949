#include "builder/solve/solv/internal/preferences.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

namespace envbuild::builder::solv::internal {

namespace {

/// One record of a repo, by what libsolv's conda policy compares before the build string.
struct TieKey {
  Id name = 0;
  Id evr = 0;
  Id build_number = 0;  // the string repo_add_conda wrote, as a pool string (a few distinct)
  unsigned long long timestamp = 0;  // seconds, 0 when the record has none
  Id id = 0;
  [[nodiscard]] bool same_group(const TieKey& o) const {
    return name == o.name && evr == o.evr && build_number == o.build_number;
  }
};

/// The package name a dependency is on.
Id dependency_name(::Pool* pool, Id dep) {
  while (ISRELDEP(dep)) dep = GETRELDEP(pool, dep)->name;
  return dep;
}

/// True when two records of keys[begin, end) depend on one name with different specs (cuda
/// builds pinning different cuda-version ranges). conda takes the highest versions of the
/// dependencies before the newest timestamp; libsolv chooses a name at a time, so ranking
/// such a group by timestamp lets a newer build pin an older dependency (a lower
/// cuda-version on the synthetic ML environment). Those groups keep libsolv's own order.
bool pins_differ(::Pool* pool, const std::vector<TieKey>& keys, size_t begin, size_t end) {
  std::map<Id, Id> spec_of;  // dependency name -> the first spec seen for it
  for (size_t i = begin; i < end; ++i) {
    const ::Solvable* s = pool_id2solvable(pool, keys[i].id);
    if (!s->dep_requires) continue;
    for (const Id* dep = s->repo->idarraydata + s->dep_requires; *dep; ++dep) {
      if (*dep == SOLVABLE_PREREQMARKER) continue;
      auto [it, added] = spec_of.emplace(dependency_name(pool, *dep), *dep);
      if (!added && it->second != *dep) return true;
    }
  }
  return false;
}

}  // namespace

size_t rank_ties_by_timestamp(::Repo* repo) {
  ::Pool* pool = repo->pool;
  std::vector<TieKey> keys;
  keys.reserve(static_cast<size_t>(repo->nsolvables));
  Id p = 0;
  ::Solvable* s = nullptr;
  FOR_REPO_SOLVABLES(repo, p, s) {
    const char* number = solvable_lookup_str(s, SOLVABLE_BUILDVERSION);
    // A record without a build number is left alone: libsolv compares it as "", and a
    // "0.<timestamp>" of its own would order it against records of build number 0.
    if (!number || !*number) continue;
    keys.push_back(TieKey{s->name, s->evr, pool_str2id(pool, number, 1),
                          solvable_lookup_num(s, SOLVABLE_BUILDTIME, 0), p});
  }
  std::sort(keys.begin(), keys.end(), [](const TieKey& a, const TieKey& b) {
    return std::tie(a.name, a.evr, a.build_number) < std::tie(b.name, b.evr, b.build_number);
  });
  std::vector<std::pair<Id, std::string>> ranked;
  for (size_t begin = 0, end = 0; begin < keys.size(); begin = end) {
    end = begin + 1;
    bool differ = false;
    while (end < keys.size() && keys[end].same_group(keys[begin])) {
      differ = differ || keys[end].timestamp != keys[begin].timestamp;
      ++end;
    }
    if (!differ || pins_differ(pool, keys, begin, end)) continue;
    for (size_t i = begin; i < end; ++i)
      if (keys[i].timestamp)
        ranked.emplace_back(keys[i].id, std::string(pool_id2str(pool, keys[i].build_number)) + "." +
                                            std::to_string(keys[i].timestamp));
  }
  if (ranked.empty()) return 0;
  Repodata* data = repo_last_repodata(repo);
  for (const auto& [id, number] : ranked)
    repodata_set_str(data, id, SOLVABLE_BUILDVERSION, number.c_str());
  repo_internalize(repo);
  return ranked.size();
}

std::set<Id> track_features_of(::Pool* pool, const std::vector<Id>& ids) {
  std::set<Id> out;
  ::Queue q;
  queue_init(&q);
  for (Id id : ids) {
    solvable_lookup_idarray(pool_id2solvable(pool, id), SOLVABLE_TRACK_FEATURES, &q);
    out.insert(q.elements, q.elements + q.count);
  }
  queue_free(&q);
  return out;
}

void exclude_featured(::Pool* pool, const std::set<Id>& features, ::Map* considered) {
  ::Queue q;
  queue_init(&q);
  for (Id p = 2; p < pool->nsolvables; ++p) {
    if (!MAPTST(considered, p)) continue;
    solvable_lookup_idarray(pool_id2solvable(pool, p), SOLVABLE_TRACK_FEATURES, &q);
    if (std::any_of(q.elements, q.elements + q.count, [&](Id f) { return features.contains(f); }))
      MAPCLR(considered, p);
  }
  queue_free(&q);
}

}  // namespace envbuild::builder::solv::internal
