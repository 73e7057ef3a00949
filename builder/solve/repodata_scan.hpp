#pragma once

// Picking the records a solve can reach out of a whole repodata.json, without parsing all of it.
//
// One pass over the text finds where each record lies and whose it is (its "name"); it checks
// the JSON's structure (strings, nesting, separators) and decodes nothing else. Of the records
// a solve reaches, only "depends" is read. The subset is written from the original bytes: the
// top-level members as they were, "packages" and "packages.conda" holding only the records of
// the names asked for, in their original order. libsolv then parses a few percent of a large
// channel instead of all of it (the synthetic 345k-record channel: ~23k records for an ML
// environment), and loads exactly what it would have loaded of those records from the whole.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder {

using NameSet = std::set<std::string, std::less<>>;

/// The largest nesting the scan follows (repodata records nest two or three levels).
inline constexpr int kMaxScanDepth = 64;

class RepodataIndex {
 public:
  /// Indexes `text`, a whole repodata.json. InvalidInput naming `what` and the byte offset when
  /// it is not a JSON object of objects as repodata is, or nests deeper than kMaxScanDepth, or
  /// "packages" is a list (the old form): the caller then loads every record the usual way, and
  /// the usual parser reports what is wrong.
  static Result<RepodataIndex> build(std::string text, std::string_view what);

  /// Adds the names the records of package `name` depend on to `depends` (`__` virtual names
  /// left out); nothing when there are none of that name.
  void add_depends_of(std::string_view name, NameSet& depends) const;

  /// A repodata.json of the records of `names`, every other top-level member as it was; with
  /// Members::InfoOnly, "info" only (a piece after the first of a file cut in pieces: other
  /// members, such as "removed" or "signatures", once are enough, and a hostile file's large
  /// one is not repeated in every piece).
  enum class Members { All, InfoOnly };
  std::string subset(const NameSet& names, Members others = Members::All) const;

  /// The names of the records in at most `parts` groups of about equal bytes, each a run of
  /// names in the order of their first record: a document cut into pieces that parse alone
  /// (every record of a name, both package formats included, in one piece) and the same
  /// pieces wherever it is cut.
  std::vector<NameSet> split_names(size_t parts) const;

  size_t records() const { return records_; }

  /// The document indexed.
  std::string_view text() const { return *text_; }

  class Writer;

  /// Calls `f` with the package name of each record group (in no particular order).
  void for_each_name(const std::function<void(std::string_view)>& f) const {
    for (const auto& [name, spans] : by_name_) f(name);
  }

 private:
  struct Member {  // a top-level member: [begin, end) of `"key": value`
    size_t begin = 0, end = 0;
    bool records = false;  // "packages" or "packages.conda": written as the reached records
    std::string key;       // of a records member, as written
    bool info = false;     // the "info" member (every piece of a file keeps it)
  };
  struct Span {  // a record: [begin, end) of `"file name": {...}` in member `member`
    size_t begin = 0, end = 0, value = 0;
    size_t member = 0;
  };

  std::unique_ptr<const std::string> text_;  // not moved with the index: by_name_ views it
  std::vector<Member> members_;
  std::deque<std::string> decoded_names_;  // names written with escapes, decoded (rare)
  std::unordered_map<std::string_view, std::vector<Span>> by_name_;
  size_t records_ = 0;

  friend class RepodataScanner;
};

/// Writes a repodata.json member by member and indexes it as it goes, as RepodataIndex::build
/// would index the text written, without scanning it: for a document made of records already
/// apart (the subset of a walk of shards, cut into pieces by the loader right after).
class RepodataIndex::Writer {
 public:
  /// `bytes`: about the size of the document, reserved at once.
  explicit Writer(size_t bytes);
  /// A member without records, `"<key>":<value>`: `key` needs no escape, `value` is JSON text.
  void member(std::string_view key, std::string_view value);
  /// Opens a records member ("packages", "packages.conda"; `key` needs no escape).
  void begin_records(std::string_view key);
  /// Adds `<file name>:<record>` to the open records member: `quoted_file_name` a JSON string,
  /// `record` a JSON object whose (last string) "name" is `name`.
  void record(std::string_view quoted_file_name, std::string_view name, std::string_view record);
  void end_records();
  /// The document (closed) and its index.
  RepodataIndex finish() &&;

 private:
  RepodataIndex index_;
  std::string text_;
  bool first_member_ = true, first_record_ = true;
};

}  // namespace envbuild::builder
