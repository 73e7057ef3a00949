#include "builder/solve/solv/internal/prune.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>

#include "builder/solve/dependency_names.hpp"
#include "common/ascii.hpp"

namespace envbuild::builder::solv::internal {

bool mark_reachable_names(::Pool* pool, const std::vector<Id>& roots, ::Repo* virtual_repo,
                          ::Map* considered) {
  // Records by name id (a counting sort: one pass to count, one to place).
  const Id nstrings = pool->ss.nstrings;
  std::vector<Id> start(static_cast<size_t>(nstrings) + 1, 0);
  for (Id p = 2; p < pool->nsolvables; ++p) {
    const ::Solvable* s = pool->solvables + p;
    if (s->repo && s->name > 0 && s->name < nstrings) ++start[s->name + 1];
  }
  for (Id i = 0; i < nstrings; ++i) start[i + 1] += start[i];
  std::vector<Id> by_name(static_cast<size_t>(start[nstrings]));
  {
    std::vector<Id> next(start.begin(), start.end() - 1);
    for (Id p = 2; p < pool->nsolvables; ++p) {
      const ::Solvable* s = pool->solvables + p;
      if (s->repo && s->name > 0 && s->name < nstrings) by_name[next[s->name]++] = p;
    }
  }
  std::vector<char> seen(static_cast<size_t>(nstrings), 0);
  std::vector<Id> todo;
  auto add_name = [&](Id name) {
    if (name <= 0 || name >= nstrings) return false;
    std::string_view text = pool_id2str(pool, name);
    if (names_a_pattern(text)) return false;
    if (!seen[name]) {
      seen[name] = 1;
      todo.push_back(name);
    }
    // Conda matches names case-insensitively (libsolv lower-cases a dependency's name).
    if (std::any_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      const std::string lower = common::ascii_lower(text);
      if (Id id = pool_str2id(pool, lower.c_str(), 0); id > 0 && id < nstrings && !seen[id]) {
        seen[id] = 1;
        todo.push_back(id);
      }
    }
    return true;
  };
  auto add_dep = [&](auto& self, Id dep) -> bool {
    if (!ISRELDEP(dep)) return add_name(dep);
    const ::Reldep* rd = GETRELDEP(pool, dep);
    switch (rd->flags) {
      case REL_CONDA:
      case REL_GT:
      case REL_EQ:
      case REL_LT:
      case REL_GT | REL_EQ:
      case REL_LT | REL_EQ:
      case REL_GT | REL_LT:
        return self(self, rd->name);
      case REL_AND:
      case REL_OR:
      case REL_WITH:
      case REL_WITHOUT:
      case REL_COND:
      case REL_UNLESS:
      case REL_ELSE:
        return self(self, rd->name) && self(self, rd->evr);
      default:
        return false;
    }
  };
  for (Id root : roots)
    if (!add_dep(add_dep, root)) return false;
  while (!todo.empty()) {
    const Id name = todo.back();
    todo.pop_back();
    for (Id i = start[name]; i < start[name + 1]; ++i) {
      const ::Solvable* s = pool->solvables + by_name[i];
      MAPSET(considered, by_name[i]);
      if (!s->dep_requires) continue;
      for (const Id* dp = s->repo->idarraydata + s->dep_requires; *dp; ++dp)
        if (*dp != SOLVABLE_PREREQMARKER && !add_dep(add_dep, *dp)) return false;
    }
  }
  MAPSET(considered, SYSTEMSOLVABLE);
  if (virtual_repo) {
    for (Id p = virtual_repo->start; p < virtual_repo->end; ++p)
      if (pool->solvables[p].repo == virtual_repo) MAPSET(considered, p);
  }
  return true;
}

size_t drop_unrequired(::Pool* pool, const std::vector<Id>& chosen, ::Repo* virtual_repo,
                       ::Map* considered) {
  std::vector<char> reached(static_cast<size_t>(pool->nsolvables), 0);
  std::vector<Id> todo;
  auto reach = [&](Id p) {
    if (p <= 0 || p >= pool->nsolvables || reached[p] || !MAPTST(considered, p)) return;
    reached[p] = 1;
    todo.push_back(p);
  };
  for (Id p : chosen) reach(p);
  if (virtual_repo) {
    for (Id p = virtual_repo->start; p < virtual_repo->end; ++p)
      if (pool->solvables[p].repo == virtual_repo) reach(p);
  }
  // Many records share a dependency (the same Id): its providers are walked once.
  std::vector<char> seen_dep(static_cast<size_t>(pool->ss.nstrings), 0);
  std::vector<char> seen_rel(static_cast<size_t>(pool->nrels), 0);
  auto first_time = [&](Id dep) {
    std::vector<char>& seen = ISRELDEP(dep) ? seen_rel : seen_dep;
    const size_t i = static_cast<size_t>(ISRELDEP(dep) ? GETRELID(dep) : dep);
    if (i >= seen.size()) return true;
    if (seen[i]) return false;
    seen[i] = 1;
    return true;
  };
  while (!todo.empty()) {
    const ::Solvable* s = pool->solvables + todo.back();
    todo.pop_back();
    if (!s->repo || !s->dep_requires) continue;
    for (const Id* dp = s->repo->idarraydata + s->dep_requires; *dp; ++dp) {
      if (*dp == SOLVABLE_PREREQMARKER || !first_time(*dp)) continue;
      for (const Id* q = pool_whatprovides_ptr(pool, *dp); *q; ++q) reach(*q);
    }
  }
  size_t dropped = 0;
  for (Id p = 2; p < pool->nsolvables; ++p) {
    const ::Solvable* s = pool->solvables + p;
    if (s->repo && s->repo != virtual_repo && MAPTST(considered, p) && !reached[p]) {
      MAPCLR(considered, p);
      ++dropped;
    }
  }
  return dropped;
}

size_t drop_uninstallable(::Pool* pool, const std::vector<RootChoice>& roots, bool strict_priority,
                          ::Repo* virtual_repo, ::Map* considered) {
  const auto nstrings = static_cast<size_t>(pool->ss.nstrings);
  size_t dropped = 0;
  auto drop = [&](Id p) {
    if (MAPTST(considered, p)) {
      MAPCLR(considered, p);
      ++dropped;
    }
  };
  std::vector<Id> live;
  for (Id p = 2; p < pool->nsolvables; ++p) {
    const ::Solvable* s = pool->solvables + p;
    if (s->repo && s->repo != virtual_repo && MAPTST(considered, p)) live.push_back(p);
  }
  if (strict_priority) {
    // The best channel per name, over the virtual packages too (they stand above all).
    std::vector<int> best(nstrings, std::numeric_limits<int>::min());
    for (Id p = 2; p < pool->nsolvables; ++p) {
      const ::Solvable* s = pool->solvables + p;
      if (!s->repo || !MAPTST(considered, p) || static_cast<size_t>(s->name) >= nstrings) continue;
      best[s->name] = std::max(best[s->name], s->repo->priority);
    }
    for (const RootChoice& root : roots)
      if (root.names_channel && static_cast<size_t>(root.name) < nstrings)
        best[root.name] = std::numeric_limits<int>::min();
    for (Id p : live) {
      const ::Solvable* s = pool->solvables + p;
      if (static_cast<size_t>(s->name) < nstrings && s->repo->priority < best[s->name]) drop(p);
    }
  }
  for (const RootChoice& root : roots) {
    Id p = 0, pp = 0;
    FOR_PROVIDES(p, pp, root.name) {
      if (pool->solvables[p].name != root.name || pool->solvables[p].repo == virtual_repo) continue;
      if (!std::binary_search(root.allowed.begin(), root.allowed.end(), p)) drop(p);
    }
  }
  // Names every solution holds: the specs' (one build each) and the virtual packages'. A
  // record that `constrains` such a name so that none of its remaining builds fit is out.
  std::vector<char> always(nstrings, 0);
  for (const RootChoice& root : roots)
    if (static_cast<size_t>(root.name) < nstrings) always[root.name] = 1;
  if (virtual_repo) {
    for (Id p = virtual_repo->start; p < virtual_repo->end; ++p)
      if (pool->solvables[p].repo == virtual_repo) always[pool->solvables[p].name] = 1;
  }
  struct Constraint {
    Id record = 0;
    Id dep = 0;
    Id name = 0;
  };
  std::vector<Constraint> constraints;
  {
    ::Queue deps;
    queue_init(&deps);
    for (Id p : live) {
      if (!MAPTST(considered, p)) continue;
      queue_empty(&deps);
      solvable_lookup_idarray(pool->solvables + p, SOLVABLE_CONSTRAINS, &deps);
      for (int i = 0; i < deps.count; ++i) {
        const Id dep = deps.elements[i];
        if (!ISRELDEP(dep)) continue;
        const Id name = GETRELDEP(pool, dep)->name;
        if (!ISRELDEP(name) && static_cast<size_t>(name) < nstrings && always[name])
          constraints.push_back({p, dep, name});
      }
    }
    queue_free(&deps);
  }
  // Whether a record still considered provides `dep` (of the name `name`, when not 0).
  auto provided = [&](Id dep, Id name) {
    for (const Id* q = pool_whatprovides_ptr(pool, dep); *q; ++q)
      if ((!name || pool->solvables[*q].name == name) && MAPTST(considered, *q)) return true;
    return false;
  };
  auto requirements_met = [&](Id p) {
    const ::Solvable* s = pool->solvables + p;
    if (!s->dep_requires) return true;
    for (const Id* dp = s->repo->idarraydata + s->dep_requires; *dp; ++dp)
      if (*dp != SOLVABLE_PREREQMARKER && !provided(*dp, 0)) return false;
    return true;
  };
  // A record whose dependency nothing left provides goes; that can strand others, so again
  // until a pass drops nothing (as many passes as the longest such chain, a handful).
  for (bool changed = true; changed;) {
    changed = false;
    for (const Constraint& c : constraints) {
      if (MAPTST(considered, c.record) && !provided(c.dep, c.name)) {
        drop(c.record);
        changed = true;
      }
    }
    size_t kept = 0;
    for (Id p : live) {
      if (!MAPTST(considered, p)) continue;
      if (requirements_met(p)) {
        live[kept++] = p;
      } else {
        drop(p);
        changed = true;
      }
    }
    live.resize(kept);
  }
  return dropped;
}

namespace {

/// Marks the names a dependency selects by build string: REL_CONDA(name, "version build").
/// False when it cannot say which names those are: a build selected under a name pattern
/// (`numpy*`, `^numpy$`: libsolv matches it against every name) or a shape conda's
/// dependencies do not have.
bool mark_build_selected(::Pool* pool, Id dep, std::vector<char>& by_build,
                         std::vector<char>& seen_rel, int depth = 0) {
  if (!ISRELDEP(dep)) return true;
  const auto rel = static_cast<size_t>(GETRELID(dep));
  if (depth > 64 || rel >= seen_rel.size()) return false;
  if (seen_rel[rel]) return true;
  seen_rel[rel] = 1;
  const ::Reldep* rd = GETRELDEP(pool, dep);
  if (rd->flags != REL_CONDA)
    return mark_build_selected(pool, rd->name, by_build, seen_rel, depth + 1) &&
           mark_build_selected(pool, rd->evr, by_build, seen_rel, depth + 1);
  if (ISRELDEP(rd->name) || ISRELDEP(rd->evr)) return false;
  if (std::string_view(pool_id2str(pool, rd->evr)).find(' ') == std::string_view::npos)
    return true;  // version only
  const std::string_view name = pool_id2str(pool, rd->name);
  if (name.empty() || names_a_pattern(name) || static_cast<size_t>(rd->name) >= by_build.size())
    return false;
  by_build[rd->name] = 1;
  return true;
}

/// libsolv's conda order of two builds of one version (policy.c: build number, then build
/// string, each compared as a version): > 0 when `a` ranks above `b`.
int compare_builds(::Pool* pool, ::Solvable* a, ::Solvable* b) {
  auto text = [](const char* s) { return s ? s : ""; };
  const char* an = solvable_lookup_str(a, SOLVABLE_BUILDVERSION);
  const char* bn = solvable_lookup_str(b, SOLVABLE_BUILDVERSION);
  if (an || bn) {
    if (int r = pool_evrcmp_str(pool, text(an), text(bn), EVRCMP_COMPARE)) return r;
  }
  const char* af = solvable_lookup_str(a, SOLVABLE_BUILDFLAVOR);
  const char* bf = solvable_lookup_str(b, SOLVABLE_BUILDFLAVOR);
  if (!af && !bf) return 0;
  return pool_evrcmp_str(pool, text(af), text(bf), EVRCMP_COMPARE);
}

struct IdsHash {
  size_t operator()(const std::vector<Id>& ids) const noexcept {
    uint64_t h = 1469598103934665603ULL;
    for (Id id : ids) h = (h ^ static_cast<uint32_t>(id)) * 1099511628211ULL;
    return static_cast<size_t>(h);
  }
};

}  // namespace

size_t drop_equivalent_builds(::Pool* pool, const std::vector<Id>& request_deps,
                              ::Repo* virtual_repo, ::Map* considered) {
  const auto nstrings = static_cast<size_t>(pool->ss.nstrings);
  std::vector<char> by_build(nstrings, 0);
  std::vector<char> seen_rel(static_cast<size_t>(pool->nrels), 0);
  // Every dependency is read before anything is dropped: one that selects builds under a name
  // pattern leaves every name alone.
  bool known = true;
  for (Id dep : request_deps) known = mark_build_selected(pool, dep, by_build, seen_rel) && known;
  std::vector<Id> live;
  ::Queue constrains;
  queue_init(&constrains);
  std::vector<std::vector<Id>> constrains_of;
  for (Id p = 2; p < pool->nsolvables; ++p) {
    const ::Solvable* s = pool->solvables + p;
    if (!s->repo || s->repo == virtual_repo || !MAPTST(considered, p)) continue;
    live.push_back(p);
    if (s->dep_requires)
      for (const Id* dp = s->repo->idarraydata + s->dep_requires; *dp; ++dp)
        known = mark_build_selected(pool, *dp, by_build, seen_rel) && known;
    queue_empty(&constrains);
    solvable_lookup_idarray(pool->solvables + p, SOLVABLE_CONSTRAINS, &constrains);
    constrains_of.emplace_back(constrains.elements, constrains.elements + constrains.count);
    for (Id dep : constrains_of.back())
      known = mark_build_selected(pool, dep, by_build, seen_rel) && known;
  }
  queue_free(&constrains);
  if (!known) return 0;

  // Records by what the solver sees of them, less the build: each group's best builds stay.
  std::unordered_map<std::vector<Id>, std::vector<Id>, IdsHash> groups;
  ::Queue features;
  queue_init(&features);
  for (size_t i = 0; i < live.size(); ++i) {
    const Id p = live[i];
    const ::Solvable* s = pool->solvables + p;
    if (static_cast<size_t>(s->name) >= nstrings || by_build[s->name] || s->dep_conflicts ||
        s->dep_obsoletes || s->dep_recommends || s->dep_suggests || s->dep_supplements ||
        s->dep_enhances)
      continue;
    std::vector<Id> key{s->repo->repoid, s->name, s->evr, s->arch, s->vendor};
    const size_t requires_at = key.size();
    if (s->dep_requires)
      for (const Id* dp = s->repo->idarraydata + s->dep_requires; *dp; ++dp) key.push_back(*dp);
    std::sort(key.begin() + static_cast<std::ptrdiff_t>(requires_at), key.end());
    key.push_back(0);  // no Id is 0: ends the section
    std::vector<Id> cons = constrains_of[i];
    std::sort(cons.begin(), cons.end());
    key.insert(key.end(), cons.begin(), cons.end());
    key.push_back(0);
    queue_empty(&features);
    solvable_lookup_idarray(pool->solvables + p, SOLVABLE_TRACK_FEATURES, &features);
    std::vector<Id> tracked(features.elements, features.elements + features.count);
    std::sort(tracked.begin(), tracked.end());
    key.insert(key.end(), tracked.begin(), tracked.end());
    groups[std::move(key)].push_back(p);
  }
  queue_free(&features);

  size_t dropped = 0;
  for (auto& [key, members] : groups) {
    if (members.size() < 2) continue;
    Id best = members[0];
    for (Id p : members)
      if (compare_builds(pool, pool->solvables + p, pool->solvables + best) > 0) best = p;
    for (Id p : members) {
      if (compare_builds(pool, pool->solvables + best, pool->solvables + p) > 0) {
        MAPCLR(considered, p);
        ++dropped;
      }
    }
  }
  return dropped;
}

KnownRelProviders known_rel_providers(::Pool* pool) {
  KnownRelProviders known;
  if (!pool->whatprovides_rel) return known;
  for (Id d = 1; d < pool->nrels; ++d) {
    const Offset at = pool->whatprovides_rel[d];
    const ::Reldep* rd = pool->rels + d;
    if (at == 0 || rd->flags != REL_CONDA || ISRELDEP(rd->name) || ISRELDEP(rd->evr)) continue;
    std::vector<Id> providers;
    for (const Id* q = pool->whatprovidesdata + at; *q; ++q) providers.push_back(*q);
    known.lists.emplace_back(d, std::move(providers));
  }
  return known;
}

void restore_rel_providers(::Pool* pool, const KnownRelProviders& known, const ::Map* considered) {
  if (!pool->whatprovides_rel) return;
  std::vector<Id> still;
  for (const auto& [d, providers] : known.lists) {
    // Right after pool_createwhatprovides every entry is 0 (not worked out), and no compound
    // dependency has cached a list built on this one, so setting it is all pool_set_whatprovides
    // would do.
    if (d >= pool->nrels || pool->whatprovides_rel[d] != 0) continue;
    still.clear();
    for (Id p : providers)
      if (p == SYSTEMSOLVABLE || (p > 0 && p < pool->nsolvables && MAPTST(considered, p)))
        still.push_back(p);
    pool->whatprovides_rel[d] = pool_ids2whatprovides(pool, still.data(), static_cast<int>(still.size()));
  }
}

size_t work_out_version_providers(::Pool* pool, const ::Map* considered) {
  if (!pool->whatprovides_rel) return 0;
  std::vector<char> seen(static_cast<size_t>(pool->nrels), 0);
  std::vector<Id> deps;
  auto note = [&](Id dep) {
    if (!ISRELDEP(dep)) return;
    const auto d = static_cast<size_t>(GETRELID(dep));
    if (d >= seen.size() || seen[d] || pool->whatprovides_rel[d]) return;
    seen[d] = 1;
    const ::Reldep* rd = pool->rels + d;
    if (rd->flags != REL_CONDA || ISRELDEP(rd->name) || ISRELDEP(rd->evr) || rd->evr <= 1) return;
    const std::string_view name = pool_id2str(pool, rd->name);
    // libsolv lower-cases an upper-case name before it looks it up.
    if (name.empty() || names_a_pattern(name) ||
        std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
      return;
    if (std::string_view(pool_id2str(pool, rd->evr)).find(' ') != std::string_view::npos) return;
    deps.push_back(static_cast<Id>(d));
  };
  ::Queue constrains;
  queue_init(&constrains);
  for (Id p = 2; p < pool->nsolvables; ++p) {
    ::Solvable* s = pool->solvables + p;
    if (!s->repo || !MAPTST(considered, p)) continue;
    if (s->dep_requires)
      for (const Id* dp = s->repo->idarraydata + s->dep_requires; *dp; ++dp) note(*dp);
    queue_empty(&constrains);
    solvable_lookup_idarray(s, SOLVABLE_CONSTRAINS, &constrains);
    for (int i = 0; i < constrains.count; ++i) note(constrains.elements[i]);
  }
  queue_free(&constrains);
  // Per name: its providers' distinct versions, and which one each provider has.
  struct NameVersions {
    std::vector<Id> versions;
    std::vector<uint32_t> version_of;  // by position in the name's provider list
  };
  std::unordered_map<Id, NameVersions> tables;
  auto table_of = [&](Id name) -> const NameVersions& {
    auto [it, added] = tables.try_emplace(name);
    if (added) {
      std::unordered_map<Id, uint32_t> index;
      for (const Id* q = pool_whatprovides_ptr(pool, name); *q; ++q) {
        const Id evr = pool->solvables[*q].evr;
        auto [at, fresh] = index.try_emplace(evr, static_cast<uint32_t>(it->second.versions.size()));
        if (fresh) it->second.versions.push_back(evr);
        it->second.version_of.push_back(at->second);
      }
    }
    return it->second;
  };
  std::vector<signed char> verdict;  // per distinct version: -1 not asked yet, else 0/1
  ::Queue found;
  queue_init(&found);
  for (Id d : deps) {
    const ::Reldep* rd = pool->rels + d;
    const char* spec = pool_id2str(pool, rd->evr);
    const NameVersions& table = table_of(rd->name);
    const Offset name_list = pool_whatprovides(pool, rd->name);
    verdict.assign(table.versions.size(), -1);
    queue_empty(&found);
    bool all = true;
    size_t i = 0;
    for (const Id* q = pool->whatprovidesdata + name_list; *q; ++q, ++i) {
      signed char& v = verdict[table.version_of[i]];
      if (v < 0) v = solvable_conda_matchversion(pool->solvables + *q, spec) != 0 ? 1 : 0;
      if (v) {
        queue_push(&found, *q);
      } else {
        all = false;
      }
    }
    // As libsolv: when every provider of the name matches, the name's own list.
    pool->whatprovides_rel[d] = all && name_list ? name_list : pool_queuetowhatprovides(pool, &found);
  }
  queue_free(&found);
  return deps.size();
}

}  // namespace envbuild::builder::solv::internal
