#include "builder/pypi/resolver.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

#include "conda/pypi/name.hpp"

namespace envbuild::builder::pypi {

namespace {

using conda::pypi::CoreMetadata;
using conda::pypi::Marker;
using conda::pypi::MarkerEnvironment;
using conda::pypi::normalize_name;
using conda::pypi::PipEntry;
using conda::pypi::Prereleases;
using conda::pypi::Requirement;
using conda::pypi::SpecifierSet;
using conda::pypi::SupportedTags;
using conda::pypi::Version;
using conda::pypi::WheelFilename;

constexpr double kInfinity = std::numeric_limits<double>::infinity();

std::string identifier_of(const std::string& key, const std::vector<std::string>& extras) {
  if (extras.empty()) return key;
  std::string out = key + "[";
  for (size_t i = 0; i < extras.size(); ++i) out += (i ? "," : "") + extras[i];
  return out + "]";
}

// A requirement on an identifier and who asked for it (resolvelib's RequirementInformation).
struct Info {
  Requirement requirement;
  std::optional<size_t> parent;              // a candidate; none for the pip: section
  std::optional<size_t> explicit_candidate;  // it names exactly this candidate
  std::string origin;                        // "environment.yml:12" for the pip: section
  std::vector<std::string> hashes;           // --hash values of its line
  std::string note;                          // a cause that is no requirement ("requires Python >=3.12")
};

struct Candidate {
  std::string identifier;
  std::string key;
  std::vector<std::string> extras;
  Version version;
  enum class Origin { Index, Url, Conda } origin = Origin::Index;
  DistributionFile file;
};

struct Criterion {
  std::vector<Info> information;
  std::vector<size_t> candidates;  // best first
  std::vector<size_t> incompatibilities;
};

// resolvelib's criteria: a dict that keeps insertion order.
class Criteria {
 public:
  Criterion* find(const std::string& id) {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  const Criterion* find(const std::string& id) const {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  void set(const std::string& id, Criterion c) {
    if (auto* existing = find(id)) {
      *existing = std::move(c);
      return;
    }
    index_.emplace(id, items_.size());
    items_.emplace_back(id, std::move(c));
  }
  [[nodiscard]] const std::vector<std::pair<std::string, Criterion>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Criterion>> items_;
  std::unordered_map<std::string, size_t> index_;
};

struct State {
  std::vector<std::pair<std::string, size_t>> mapping;  // identifier -> candidate, pin order
  Criteria criteria;
  std::vector<Info> backtrack_causes;
  [[nodiscard]] std::optional<size_t> pin(const std::string& id) const {
    for (const auto& [k, c] : mapping)
      if (k == id) return c;
    return std::nullopt;
  }
};

// The wheels of one project the target can use, one per version (the best tag), newest first,
// and what was left out, for explanations.
struct ProjectVersions {
  struct Entry {
    Version version;
    DistributionFile file;
  };
  std::vector<Entry> versions;
  std::set<std::string> sdist_only;  // versions with an sdist and no usable wheel
  std::set<std::string> other_targets;
  std::set<std::string> other_pythons;  // Requires-Python excludes the target
};

// pip's preference key (provider.get_preference); smaller is tried first.
struct Preference {
  bool delay = false;
  bool not_direct = true;
  bool not_pinned = true;
  bool not_backtrack_cause = true;
  double depth = kInfinity;
  double requested_order = kInfinity;
  bool free = true;
  std::string identifier;
  auto operator<=>(const Preference&) const = default;
};

class Resolver {
 public:
  Resolver(DistributionSource& source, const ResolveOptions& options)
      : source_(source),
        options_(options),
        tags_(options.target),
        env_(conda::pypi::marker_environment(options.target)) {}

  Result<Resolution> run(const std::vector<PipEntry>& entries);

 private:
  // --- the provider (pip's find_matches, is_satisfied_by, get_dependencies) ---
  Result<const ProjectVersions*> project(const std::string& key);
  size_t candidate(const std::string& key, const std::vector<std::string>& extras,
                   const Version& version, Candidate::Origin origin, const DistributionFile& file);
  Result<std::vector<size_t>> find_matches(const std::string& id, const Criteria& criteria,
                                           const Info* extra,
                                           const std::vector<size_t>& incompatibilities);
  bool satisfied_by(const Info& info, size_t candidate) const;
  Result<std::optional<std::vector<Info>>> dependencies(size_t candidate, Info& unusable);
  Result<const CoreMetadata*> metadata(const Candidate& c);
  Preference preference(const std::string& id, const State& state);
  Result<Info> requirement_info(const Requirement& r, std::optional<size_t> parent);

  // --- resolvelib ---
  Result<bool> add_to_criteria(Criteria& criteria, const Info& info, Criterion& conflict);
  Result<std::vector<Criterion>> attempt_to_pin(const std::string& id);
  Result<bool> backtrack();
  [[nodiscard]] bool pin_satisfying(const State& state, const std::string& id,
                                    const Criterion& criterion) const;
  Resolution result(const State& state, const std::set<std::string>& requested);
  Error impossible(const std::vector<Info>& causes);

  State& state() { return states_.back(); }

  DistributionSource& source_;
  const ResolveOptions& options_;
  SupportedTags tags_;
  MarkerEnvironment env_;
  std::vector<Candidate> candidates_;
  std::map<std::tuple<std::string, std::string, std::string, int>, size_t> candidate_index_;
  std::map<std::string, ProjectVersions> projects_;
  std::map<std::pair<std::string, std::string>, CoreMetadata> metadata_;  // (key, version)
  std::map<size_t, std::vector<Info>> dependencies_;                      // candidate -> deps
  std::map<std::string, double> known_depths_;
  std::map<std::string, size_t> user_requested_;
  std::vector<State> states_;
  size_t backtracks_ = 0;
};

Result<const ProjectVersions*> Resolver::project(const std::string& key) {
  if (auto it = projects_.find(key); it != projects_.end()) return &it->second;
  ENVB_ASSIGN_OR_RETURN(auto files, source_.files(key));
  ProjectVersions out;
  // version text -> (rank, build, file): the best wheel of each version.
  struct Best {
    Version version;
    size_t rank;
    std::pair<uint64_t, std::string> build;
    DistributionFile file;
  };
  std::map<std::string, Best> best;
  for (auto& f : files) {
    if (!f.filename.ends_with(".whl")) {
      if (auto v = conda::pypi::sdist_version(f.filename, key)) out.sdist_only.insert(v->to_string());
      continue;
    }
    auto wheel = WheelFilename::parse(f.filename);
    if (!wheel || normalize_name(wheel->name) != key) continue;
    const std::string v = wheel->version.to_string();
    auto rank = tags_.rank(*wheel);
    if (!rank) {
      out.other_targets.insert(v);
      continue;
    }
    if (!f.requires_python.empty()) {
      auto spec = SpecifierSet::parse(f.requires_python);
      if (spec && !spec->contains(options_.target.python, Prereleases::Allow)) {
        out.other_pythons.insert(v);
        continue;
      }
    }
    auto build = wheel->build.value_or(std::pair<uint64_t, std::string>{0, ""});
    auto it = best.find(v);
    // pip's sort key within a version: the tag's rank, then the build tag.
    if (it == best.end() || *rank < it->second.rank ||
        (*rank == it->second.rank && build > it->second.build))
      best[v] = Best{wheel->version, *rank, build, std::move(f)};
  }
  for (auto& [v, b] : best) {
    out.versions.push_back({b.version, std::move(b.file)});
    out.sdist_only.erase(v);
    out.other_targets.erase(v);
    out.other_pythons.erase(v);
  }
  std::sort(out.versions.begin(), out.versions.end(),
            [](const auto& a, const auto& b) { return a.version > b.version; });
  return &projects_.emplace(key, std::move(out)).first->second;
}

size_t Resolver::candidate(const std::string& key, const std::vector<std::string>& extras,
                           const Version& version, Candidate::Origin origin,
                           const DistributionFile& file) {
  const std::string id = identifier_of(key, extras);
  auto index_key = std::make_tuple(id, version.to_string(), file.url, static_cast<int>(origin));
  if (auto it = candidate_index_.find(index_key); it != candidate_index_.end()) return it->second;
  candidates_.push_back({id, key, extras, version, origin, file});
  candidate_index_.emplace(index_key, candidates_.size() - 1);
  return candidates_.size() - 1;
}

// The requirements of `id` in `criteria`, and `extra` (the one being added).
std::vector<const Info*> infos_of(const Criteria& criteria, const std::string& id, const Info* extra) {
  std::vector<const Info*> out;
  if (const Criterion* c = criteria.find(id))
    for (const auto& info : c->information) out.push_back(&info);
  if (extra) out.push_back(extra);
  return out;
}

bool contains(const std::vector<size_t>& v, size_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// pip's factory.find_candidates: explicit candidates (URL requirements, the base of an extras
// candidate) when there are any; else the conda distribution; else the index's wheels the
// specifiers allow (pre-releases and yanked files as pip decides), newest first.
Result<std::vector<size_t>> Resolver::find_matches(const std::string& id, const Criteria& criteria,
                                                   const Info* extra,
                                                   const std::vector<size_t>& incompatibilities) {
  const auto infos = infos_of(criteria, id, extra);
  if (infos.empty()) return std::vector<size_t>();
  const std::string key = infos.front()->requirement.key();
  const std::vector<std::string>& extras = infos.front()->requirement.extras;
  std::vector<size_t> explicit_candidates;
  for (const Info* info : infos)
    if (info->explicit_candidate && !contains(explicit_candidates, *info->explicit_candidate))
      explicit_candidates.push_back(*info->explicit_candidate);
  if (!extras.empty()) {
    // `name[x]` takes the file of a `name @ URL` requirement.
    for (const Info* info : infos_of(criteria, key, nullptr)) {
      if (!info->explicit_candidate) continue;
      const Candidate& base = candidates_[*info->explicit_candidate];
      if (base.origin != Candidate::Origin::Url) continue;
      size_t c = candidate(key, extras, base.version, base.origin, base.file);
      if (!contains(explicit_candidates, c)) explicit_candidates.push_back(c);
    }
  }
  auto usable = [&](size_t c) {
    if (contains(incompatibilities, c)) return false;
    return std::all_of(infos.begin(), infos.end(),
                       [&](const Info* info) { return satisfied_by(*info, c); });
  };
  std::vector<size_t> out;
  if (!explicit_candidates.empty()) {
    for (size_t c : explicit_candidates)
      if (usable(c)) out.push_back(c);
    return out;
  }
  SpecifierSet spec;
  std::set<std::string> hashes;
  bool hashed = false;
  for (const Info* info : infos) {
    spec.add(info->requirement.specifier);
    if (!info->hashes.empty()) {
      std::set<std::string> mine(info->hashes.begin(), info->hashes.end());
      if (!hashed) hashes = mine;
      else {
        std::set<std::string> both;
        std::set_intersection(hashes.begin(), hashes.end(), mine.begin(), mine.end(),
                              std::inserter(both, both.end()));
        hashes = both;
      }
      hashed = true;
    }
  }
  if (auto it = options_.conda_installed.find(key); it != options_.conda_installed.end()) {
    size_t c = candidate(key, extras, it->second.version, Candidate::Origin::Conda, {});
    if (spec.contains(it->second.version, Prereleases::Allow) && usable(c)) out.push_back(c);
    return out;
  }
  ENVB_ASSIGN_OR_RETURN(const ProjectVersions* versions, project(key));
  std::vector<Version> listed;
  for (const auto& e : versions->versions) listed.push_back(e.version);
  std::vector<size_t> allowed = conda::pypi::filter_versions(
      spec, listed, options_.pre ? Prereleases::Allow : Prereleases::Default);
  // PEP 592 as pip reads it: yanked files only when every match is yanked and a `==` pins.
  bool pinned = false;
  for (const auto& s : spec.specifiers())
    pinned = pinned || s.op() == conda::pypi::Operator::Arbitrary ||
             (s.op() == conda::pypi::Operator::Equal && !s.wildcard());
  const bool all_yanked = std::all_of(allowed.begin(), allowed.end(), [&](size_t i) {
    return versions->versions[i].file.yanked;
  });
  for (size_t i : allowed) {
    const auto& e = versions->versions[i];
    if (e.file.yanked && !(all_yanked && pinned)) continue;
    if (hashed && !hashes.count(e.file.sha256)) continue;
    size_t c = candidate(key, extras, e.version, Candidate::Origin::Index, e.file);
    if (!contains(incompatibilities, c)) out.push_back(c);
  }
  return out;
}

bool Resolver::satisfied_by(const Info& info, size_t c) const {
  if (info.explicit_candidate) {
    const Candidate& want = candidates_[*info.explicit_candidate];
    const Candidate& have = candidates_[c];
    return want.key == have.key && want.version == have.version && want.origin == have.origin &&
           want.file.url == have.file.url;
  }
  return info.requirement.specifier.contains(candidates_[c].version, Prereleases::Allow);
}

Result<const CoreMetadata*> Resolver::metadata(const Candidate& c) {
  auto cache_key = std::make_pair(c.key, c.version.to_string() + "|" + c.file.url);
  if (auto it = metadata_.find(cache_key); it != metadata_.end()) return &it->second;
  CoreMetadata meta;
  if (c.origin == Candidate::Origin::Conda) {
    const auto& installed = options_.conda_installed.at(c.key);
    if (!installed.metadata.empty()) {
      ENVB_ASSIGN_OR_RETURN(meta, conda::pypi::parse_core_metadata(installed.metadata,
                                                                   installed.package));
    } else {
      meta.name = c.key;
      meta.version = c.version;
    }
  } else {
    ENVB_ASSIGN_OR_RETURN(meta, source_.metadata(c.file).context("reading the metadata of " +
                                                                 c.file.filename));
  }
  return &metadata_.emplace(cache_key, std::move(meta)).first->second;
}

Result<Info> Resolver::requirement_info(const Requirement& r, std::optional<size_t> parent) {
  Info info;
  info.requirement = r;
  info.parent = parent;
  if (!r.url.empty()) {
    std::string filename = r.url.substr(0, r.url.find_first_of("?#"));
    filename = percent_decode(filename.substr(filename.rfind('/') + 1));
    auto wheel = WheelFilename::parse(filename);
    if (!wheel)
      return fail(Errc::Unsupported, r.to_string() + ": the URL is not a wheel")
          .with_hint("envbuild installs wheels only; no build backend runs");
    if (normalize_name(wheel->name) != r.key())
      return fail(Errc::InvalidInput, r.to_string() + ": the wheel is of '" + wheel->name + "'");
    if (!tags_.rank(*wheel))
      return fail(Errc::Unsupported, r.to_string() + ": the wheel does not fit the target (" +
                                         options_.target.subdir + ", python " +
                                         options_.target.python.to_string() + ")");
    DistributionFile file;
    file.filename = filename;
    file.url = r.url.substr(0, r.url.find('#'));
    if (auto hash = r.url.find("#sha256="); hash != std::string::npos) file.sha256 = r.url.substr(hash + 8);
    info.explicit_candidate = candidate(r.key(), {}, wheel->version, Candidate::Origin::Url, file);
  }
  return info;
}

// The requirements of a candidate, or nullopt with `unusable` set when its metadata rules it
// out (another name or version than its file says, a Requires-Python the target fails).
Result<std::optional<std::vector<Info>>> Resolver::dependencies(size_t index, Info& unusable) {
  if (auto it = dependencies_.find(index); it != dependencies_.end())
    return std::optional<std::vector<Info>>(it->second);
  const Candidate c = candidates_[index];
  ENVB_ASSIGN_OR_RETURN(const CoreMetadata* meta, metadata(c));
  unusable = Info{};
  unusable.parent = index;
  if (normalize_name(meta->name) != c.key || meta->version != c.version) {
    unusable.note = c.file.filename + " holds " + meta->name + " " + meta->version.to_string();
    return std::optional<std::vector<Info>>();
  }
  if (meta->requires_python &&
      !meta->requires_python->contains(options_.target.python, Prereleases::Allow)) {
    unusable.note = "requires Python " + meta->requires_python->to_string();
    return std::optional<std::vector<Info>>();
  }
  std::vector<Info> deps;
  if (!c.extras.empty()) {
    // An extras candidate depends on its base, exactly (pip's ExtrasCandidate).
    Info base;
    base.requirement.name = c.key;
    base.requirement.specifier = *SpecifierSet::parse("==" + c.version.to_string());
    base.parent = index;
    base.explicit_candidate = candidate(c.key, {}, c.version, c.origin, c.file);
    deps.push_back(std::move(base));
  }
  const bool conda_base = c.origin == Candidate::Origin::Conda;
  // Conda installs the dependencies of its own packages; only an extra asked of one adds any.
  if (!options_.no_deps && !(conda_base && c.extras.empty())) {
    std::vector<std::string> extras;
    for (const auto& e : c.extras)
      if (std::find(meta->provides_extra.begin(), meta->provides_extra.end(), e) !=
          meta->provides_extra.end())
        extras.push_back(e);
    // pip: with none of the asked extras provided, the base dependencies.
    if (extras.empty()) extras.emplace_back();
    for (const auto& r : meta->requires_dist) {
      bool wanted = false;
      if (!r.marker) {
        wanted = !conda_base;
      } else if (!conda_base || r.marker->mentions_extra()) {
        for (const auto& e : extras) {
          ENVB_ASSIGN_OR_RETURN(bool hit, r.marker->evaluate(env_, e));
          wanted = wanted || hit;
        }
      }
      if (!wanted) continue;
      ENVB_ASSIGN_OR_RETURN(Info info, requirement_info(r, index));
      deps.push_back(std::move(info));
    }
  }
  dependencies_.emplace(index, deps);
  return std::optional<std::vector<Info>>(std::move(deps));
}

Preference Resolver::preference(const std::string& id, const State& state) {
  const Criterion* criterion = state.criteria.find(id);
  Preference p;
  p.identifier = id;
  p.delay = id == "setuptools";
  bool any_operator = false;
  for (const auto& info : criterion->information) {
    if (info.explicit_candidate) p.not_direct = false;
    for (const auto& s : info.requirement.specifier.specifiers()) {
      any_operator = true;
      if (s.op() == conda::pypi::Operator::Equal || s.op() == conda::pypi::Operator::Arbitrary)
        p.not_pinned = false;
    }
  }
  p.free = !any_operator;
  if (auto it = user_requested_.find(id); it != user_requested_.end()) {
    p.depth = 1.0;
    p.requested_order = static_cast<double>(it->second);
  } else {
    double parent_depth = kInfinity;
    for (const auto& info : criterion->information) {
      double d = 0.0;
      if (info.parent) {
        auto known = known_depths_.find(candidates_[*info.parent].identifier);
        d = known == known_depths_.end() ? kInfinity : known->second;
      }
      parent_depth = std::min(parent_depth, d);
    }
    p.depth = parent_depth + 1.0;
  }
  known_depths_[id] = p.depth;
  for (const auto& cause : state.backtrack_causes) {
    if (cause.requirement.name.empty() && !cause.parent) continue;
    const std::string cause_id =
        identifier_of(cause.requirement.key(), cause.requirement.extras);
    if ((!cause.requirement.name.empty() && cause_id == id) ||
        (cause.parent && candidates_[*cause.parent].identifier == id))
      p.not_backtrack_cause = false;
  }
  return p;
}

// resolvelib's _add_to_criteria: false (with `conflict` set) when nothing can meet the
// requirement together with the others on its identifier.
Result<bool> Resolver::add_to_criteria(Criteria& criteria, const Info& info, Criterion& conflict) {
  const std::string id = identifier_of(info.requirement.key(), info.requirement.extras);
  const Criterion* existing = criteria.find(id);
  Criterion next;
  if (existing) {
    next.incompatibilities = existing->incompatibilities;
    next.information = existing->information;
  }
  ENVB_ASSIGN_OR_RETURN(next.candidates, find_matches(id, criteria, &info, next.incompatibilities));
  next.information.push_back(info);
  if (next.candidates.empty()) {
    conflict = std::move(next);
    return false;
  }
  criteria.set(id, std::move(next));
  return true;
}

bool Resolver::pin_satisfying(const State& state, const std::string& id,
                              const Criterion& criterion) const {
  auto pin = state.pin(id);
  if (!pin) return false;
  return std::all_of(criterion.information.begin(), criterion.information.end(),
                     [&](const Info& info) { return satisfied_by(info, *pin); });
}

// resolvelib's _attempt_to_pin_criterion: the first candidate whose dependencies fit is pinned;
// otherwise the criteria that conflicted are returned.
Result<std::vector<Criterion>> Resolver::attempt_to_pin(const std::string& id) {
  const std::vector<size_t> candidates = state().criteria.find(id)->candidates;
  std::vector<Criterion> causes;
  for (size_t c : candidates) {
    Info unusable;
    ENVB_ASSIGN_OR_RETURN(auto deps, dependencies(c, unusable));
    if (!deps) {
      Criterion cause;
      cause.information.push_back(std::move(unusable));
      causes.push_back(std::move(cause));
      continue;
    }
    Criteria criteria = state().criteria;
    bool fits = true;
    for (const auto& dep : *deps) {
      Criterion conflict;
      ENVB_ASSIGN_OR_RETURN(bool added, add_to_criteria(criteria, dep, conflict));
      if (!added) {
        causes.push_back(std::move(conflict));
        fits = false;
        break;
      }
    }
    if (!fits) continue;
    state().criteria = std::move(criteria);
    auto& mapping = state().mapping;
    mapping.erase(std::remove_if(mapping.begin(), mapping.end(),
                                 [&](const auto& m) { return m.first == id; }),
                  mapping.end());
    mapping.emplace_back(id, c);
    return std::vector<Criterion>();
  }
  return causes;
}

// resolvelib's _backtrack: drop the state whose pin failed and the pin before it, and try the
// state before that with what was learnt (the dropped pin is incompatible).
Result<bool> Resolver::backtrack() {
  while (states_.size() >= 3) {
    ++backtracks_;
    states_.pop_back();
    State broken = std::move(states_.back());
    states_.pop_back();
    auto [name, pinned] = broken.mapping.back();
    broken.mapping.pop_back();
    std::vector<std::pair<std::string, std::vector<size_t>>> learnt;
    for (const auto& [k, v] : broken.criteria.items()) learnt.emplace_back(k, v.incompatibilities);
    learnt.emplace_back(name, std::vector<size_t>{pinned});
    states_.push_back(states_.back());
    bool success = true;
    for (auto& [k, incompatibilities] : learnt) {
      if (incompatibilities.empty()) continue;
      const Criterion* criterion = state().criteria.find(k);
      if (!criterion) continue;
      ENVB_ASSIGN_OR_RETURN(auto matches,
                            find_matches(k, state().criteria, nullptr, incompatibilities));
      if (matches.empty()) {
        success = false;
        break;
      }
      Criterion next;
      next.candidates = std::move(matches);
      next.information = criterion->information;
      next.incompatibilities = incompatibilities;
      next.incompatibilities.insert(next.incompatibilities.end(),
                                    criterion->incompatibilities.begin(),
                                    criterion->incompatibilities.end());
      state().criteria.set(k, std::move(next));
    }
    if (success) return true;
  }
  return false;
}

Result<Resolution> Resolver::run(const std::vector<PipEntry>& entries) {
  states_.emplace_back();
  std::set<std::string> requested;
  size_t order = 0;
  for (const auto& entry : entries) {
    if (entry.kind != PipEntry::Kind::Requirement) continue;
    const Requirement& r = entry.requirement;
    if (r.marker) {
      ENVB_ASSIGN_OR_RETURN(bool applies, r.marker->evaluate(env_, ""));
      if (!applies) continue;
    }
    ENVB_ASSIGN_OR_RETURN(Info info, requirement_info(r, std::nullopt).context(entry.origin));
    info.origin = entry.origin;
    info.hashes = entry.hashes;
    const std::string id = identifier_of(r.key(), r.extras);
    user_requested_.emplace(id, order++);
    requested.insert(r.key());
    Criterion conflict;
    ENVB_ASSIGN_OR_RETURN(bool added, add_to_criteria(state().criteria, info, conflict));
    if (!added) return impossible(conflict.information);
  }
  states_.push_back(states_.back());
  for (size_t round = 0; round < options_.max_rounds; ++round) {
    std::optional<Preference> best;
    for (const auto& [id, criterion] : state().criteria.items()) {
      if (pin_satisfying(state(), id, criterion)) continue;
      Preference p = preference(id, state());
      if (!best || p < *best) best = std::move(p);
    }
    if (!best) {
      Resolution out = result(state(), requested);
      out.rounds = round;
      out.backtracks = backtracks_;
      return out;
    }
    ENVB_ASSIGN_OR_RETURN(auto failures, attempt_to_pin(best->identifier));
    if (failures.empty()) {
      states_.push_back(state());
      continue;
    }
    std::vector<Info> causes;
    for (const auto& f : failures)
      causes.insert(causes.end(), f.information.begin(), f.information.end());
    ENVB_ASSIGN_OR_RETURN(bool success, backtrack());
    state().backtrack_causes = causes;
    if (!success) return impossible(causes);
  }
  return fail(Errc::Unsatisfiable, "the pip: requirements need more than " +
                                       std::to_string(options_.max_rounds) +
                                       " resolution rounds; giving up")
      .with_hint("pin a few versions (name==X.Y) to narrow the search");
}

// The pins with a route to the pip: section (resolvelib's _build_result), as wheels.
Resolution Resolver::result(const State& state, const std::set<std::string>& requested) {
  std::map<size_t, std::string> pinned;  // candidate -> identifier
  for (const auto& [id, c] : state.mapping) pinned.emplace(c, id);
  std::set<std::string> connected;
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [id, criterion] : state.criteria.items()) {
      if (connected.count(id)) continue;
      for (const auto& info : criterion.information) {
        const bool from_root = !info.parent;
        auto parent = info.parent ? pinned.find(*info.parent) : pinned.end();
        if (from_root || (parent != pinned.end() && connected.count(parent->second))) {
          connected.insert(id);
          grew = true;
          break;
        }
      }
    }
  }
  Resolution out;
  std::map<std::string, ResolvedWheel> wheels;
  std::map<std::string, std::set<std::pair<std::string, std::string>>> deps;
  for (const auto& [id, c] : state.mapping) {
    if (!connected.count(id)) continue;
    const Candidate& candidate = candidates_[c];
    if (candidate.origin == Candidate::Origin::Conda) {
      if (candidate.extras.empty())
        out.from_conda.push_back(candidate.key + " " + candidate.version.to_string() + " (conda " +
                                 options_.conda_installed.at(candidate.key).package + ")");
    } else {
      ResolvedWheel& w = wheels[candidate.key];
      w.name = candidate.key;
      w.version = candidate.version;
      w.file = candidate.file;
      w.direct_url = candidate.origin == Candidate::Origin::Url;
      w.requested = requested.count(candidate.key) > 0;
      w.extras.insert(w.extras.end(), candidate.extras.begin(), candidate.extras.end());
    }
    if (auto it = dependencies_.find(c); it != dependencies_.end())
      for (const auto& info : it->second)
        if (!info.explicit_candidate || candidates_[*info.explicit_candidate].key != candidate.key)
          deps[candidate.key].emplace(info.requirement.key(),
                                      info.requirement.specifier.to_string());
  }
  for (auto& [key, w] : wheels) {
    std::sort(w.extras.begin(), w.extras.end());
    w.extras.erase(std::unique(w.extras.begin(), w.extras.end()), w.extras.end());
    for (const auto& d : deps[key]) w.dependencies.push_back(d);
    out.wheels.push_back(std::move(w));
  }
  std::sort(out.from_conda.begin(), out.from_conda.end());
  return out;
}

// An Unsatisfiable error that says, per name, which requirements could not be met together,
// who asked for each, and what exists.
Error Resolver::impossible(const std::vector<Info>& causes) {
  std::map<std::string, std::vector<std::string>> by_name;
  std::vector<std::string> notes;
  for (const auto& info : causes) {
    std::string who = "the pip: section";
    if (!info.origin.empty()) who += " (" + info.origin + ")";
    if (info.parent) {
      const Candidate& p = candidates_[*info.parent];
      who = p.identifier + " " + p.version.to_string();
    }
    if (!info.note.empty()) {
      notes.push_back(who + " " + info.note);
      continue;
    }
    std::string text = info.requirement.to_string();
    by_name[info.requirement.key()].push_back(text + " (required by " + who + ")");
  }
  std::string message = "the pip: requirements cannot be satisfied";
  for (auto& [key, lines] : by_name) {
    std::sort(lines.begin(), lines.end());
    lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
    message += "\n  " + key + ": no version fits " + (lines.size() > 1 ? "all of" : "");
    for (const auto& l : lines) message += "\n    " + l;
    if (auto it = options_.conda_installed.find(key); it != options_.conda_installed.end()) {
      message += "\n    conda installs " + key + " " + it->second.version.to_string() + " (" +
                 it->second.package + "); envbuild never installs it again from PyPI";
      continue;
    }
    auto known = projects_.find(key);
    if (known == projects_.end()) continue;
    const ProjectVersions& p = known->second;
    std::string versions;
    for (auto it = p.versions.rbegin(); it != p.versions.rend(); ++it)
      versions += (versions.empty() ? "" : ", ") + it->version.to_string() +
                  (it->file.yanked ? " (yanked)" : "");
    message += "\n    wheels for this target: " + (versions.empty() ? "none" : versions);
    auto list = [](const std::set<std::string>& set) {
      std::string out;
      for (const auto& v : set) out += (out.empty() ? "" : ", ") + v;
      return out;
    };
    if (!p.sdist_only.empty())
      message += "\n    only as source distributions (envbuild installs wheels only, no build "
                 "backend runs): " + list(p.sdist_only);
    if (!p.other_targets.empty())
      message += "\n    wheels only for other platforms or pythons: " + list(p.other_targets);
    if (!p.other_pythons.empty())
      message += "\n    excluded by Requires-Python for python " +
                 options_.target.python.to_string() + ": " + list(p.other_pythons);
  }
  for (const auto& n : notes) message += "\n  " + n;
  return fail(Errc::Unsatisfiable, message)
      .with_hint("relax the pins named above, or move the package to the conda part");
}

}  // namespace

Result<Resolution> resolve(const std::vector<PipEntry>& entries, DistributionSource& source,
                           const ResolveOptions& options) {
  return Resolver(source, options).run(entries);
}

}  // namespace envbuild::builder::pypi
