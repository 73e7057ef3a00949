#pragma once

// Narrowing the records a solve looks at, before libsolv builds its rules. libsolv adds a
// rule for every pair of records of one name it reaches (only one build of a name may be
// installed), so a name with a thousand builds costs half a million rules; fewer records in
// the pool's `considered` map is the cheapest speed-up there is. Each step below removes only
// records that no solution can hold, so the solution is the one the whole pool gives.

#include <cstddef>
#include <utility>
#include <vector>

#include "builder/solve/solv/internal/libsolv.hpp"

namespace envbuild::builder::solv::internal {

/// Marks in `considered` every record a solve of `roots` (the specs) can reach by name: the
/// records of the specs' names, then of every name in their `depends`, and so on, plus the
/// virtual packages. Every record of a reached name stays, so strict channel priority and
/// the one-build-per-name rules see all builds of it as before; a record of an unreached name
/// is in no rule that could install it (conda records provide only their own name), and its
/// solvable Id is unchanged. False (keep everything) where a name is a pattern (a glob or
/// ^regex$ matches names, not one name) or a dependency has a shape conda's do not.
bool mark_reachable_names(::Pool* pool, const std::vector<Id>& roots, ::Repo* virtual_repo,
                          ::Map* considered);

/// A spec of the job: the records it allows (any channel's, or one channel's); every other
/// record of its name can never be installed, since one build per name is. A spec naming its
/// channel takes its name out of strict channel priority.
struct RootChoice {
  Id name = 0;
  std::vector<Id> allowed;
  bool names_channel = false;
};

/// Clears from `considered` (needs pool_createwhatprovides over it first) the reachable
/// records no solution can hold, until nothing more goes:
///  - with strict channel priority, a record whose channel is below the best channel that has
///    its name, unless a spec names a channel for it (libsolv forbids those by a rule; doing it
///    here keeps the next steps from letting a lower channel in when the best channel's builds
///    are all dropped);
///  - a record of a spec's name that the spec does not allow;
///  - a record with a dependency that no remaining record provides;
///  - a record that `constrains` a spec's or a virtual package's name (one every solution
///    holds) so that none of the name's remaining records fit.
/// What libsolv would say about an unsatisfiable job needs the dropped records (they are the
/// conflict's story): solve again without this step when the narrowed solve fails.
/// Returns how many records were dropped.
size_t drop_uninstallable(::Pool* pool, const std::vector<RootChoice>& roots, bool strict_priority,
                          ::Repo* virtual_repo, ::Map* considered);

/// Clears from `considered` the records nothing can bring in. A record is installed only as
/// one of the `chosen` (every candidate of every spec of the job) or as a provider of a
/// dependency of another installed record: there is no installed repo, and conda has no weak
/// dependencies. A record outside that closure is never chosen, yet libsolv pairs it with every
/// build of its name in a same-name rule, which for names with hundreds of builds is most of
/// the rules a solve sorts. Providers come from the whatprovides index built over
/// `considered` (needed first); a record reached keeps every provider of its dependencies, so
/// no solution changes. Run after drop_uninstallable, whose drops can strand records.
/// Returns how many records were dropped.
size_t drop_unrequired(::Pool* pool, const std::vector<Id>& chosen, ::Repo* virtual_repo,
                       ::Map* considered);

/// Clears from `considered` each build that another build of the same channel and subdir
/// makes redundant: same name, version, dependencies, constraints and track features, and
/// ranked above it by libsolv's own conda policy (build number, then build string). Two such
/// builds sit in the same rules everywhere (every dependency that one provides, the other
/// provides; their own dependencies are the same), so libsolv, which always chooses the
/// better-ranked of two otherwise equal candidates, never installs the lower one; yet every
/// build adds a same-name rule with every other build of its name. Names that a dependency,
/// constraint or `request_deps` (the job's specs) selects by build string are left alone, as
/// are records with dependency kinds conda records do not have. Builds ranked equal all stay.
/// Run last, after drop_unrequired. Returns how many records were dropped.
size_t drop_equivalent_builds(::Pool* pool, const std::vector<Id>& request_deps,
                              ::Repo* virtual_repo, ::Map* considered);

/// The providers of conda dependencies (REL_CONDA) that the pool's whatprovides index has
/// worked out so far, by relation id. Matching every build of a name against a spec is most of
/// what finding providers costs, and the steps above do it for every dependency they look at.
struct KnownRelProviders {
  std::vector<std::pair<Id, std::vector<Id>>> lists;
};
KnownRelProviders known_rel_providers(::Pool* pool);

/// After pool_createwhatprovides over a `considered` map that only lost records since `known`
/// was taken: sets each known dependency's providers to those still considered, in the same
/// order, which is what libsolv would work out again (its lists are in record order over the
/// considered records). Dependencies not known are left to libsolv, as before.
void restore_rel_providers(::Pool* pool, const KnownRelProviders& known, const ::Map* considered);

/// Works out, ahead of libsolv, the providers of the version-only conda dependencies
/// (REL_CONDA "name version", no build part; a plain lower-case name) of the records in
/// `considered`, right after pool_createwhatprovides. libsolv matches every build of the name
/// against the spec, parsing both versions each time; a version-only spec's answer depends on the
/// build's version alone, and a name's builds share a few versions, so each (spec, version)
/// pair is matched once here, with libsolv's own matcher. The lists are libsolv's: the name's
/// providers in order, those that match. Returns how many dependencies were worked out.
size_t work_out_version_providers(::Pool* pool, const ::Map* considered);

}  // namespace envbuild::builder::solv::internal
