#pragma once

// The parts of conda's order of preferences (docs/design.md, "Solving") that libsolv 0.7.23's
// conda policy lacks, added from outside libsolv: through what goes into the pool (ties broken
// by timestamp) and through which records a second solve may use (track features).

#include <cstddef>
#include <set>
#include <vector>

#include "builder/solve/solv/internal/libsolv.hpp"

namespace envbuild::builder::solv::internal {

/// Lets libsolv break a tie between records of one name with the same version and build number
/// by the newer `timestamp`, as conda, mamba and rattler do. libsolv's conda policy compares
/// the build number (as a conda version string) and then the build string, never the
/// timestamp; so in such a group every record with a timestamp gets the build number
/// "<number>.<timestamp in seconds>", which sorts like (number, timestamp) and changes no
/// other comparison (a record outside the group differs in version or number first). A group
/// whose records depend on one name with different specs is left alone (conda weighs the
/// dependencies' versions before timestamps, which libsolv's per-name choice cannot). Nothing
/// else in libsolv reads the build number: match specs do not, and the solution's
/// `build_number` is the part before the dot. Call on a freshly loaded, internalized repo
/// (the result goes into its .solv cache). Returns how many records were ranked.
size_t rank_ties_by_timestamp(::Repo* repo);

/// The track features (`track_features`) of the records `ids`.
std::set<Id> track_features_of(::Pool* pool, const std::vector<Id>& ids);

/// Clears from `considered` every record that carries one of `features`.
void exclude_featured(::Pool* pool, const std::set<Id>& features, ::Map* considered);

}  // namespace envbuild::builder::solv::internal
