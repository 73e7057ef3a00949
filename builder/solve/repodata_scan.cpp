#include "builder/solve/repodata_scan.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "builder/solve/shards.hpp"
#include "common/json.hpp"

namespace envbuild::builder {

namespace {

/// A JSON string's content as written (between the quotes), and whether it holds an escape.
struct RawString {
  std::string_view text;
  bool escaped = false;
};

/// The decoded value of a string written with escapes (rare in repodata: names and
/// dependencies are plain ASCII).
std::string decode(const RawString& s) {
  if (!s.escaped) return std::string(s.text);
  auto j = common::parse_json("\"" + std::string(s.text) + "\"", "a repodata string");
  return j && j->is_string() ? j->get<std::string>() : std::string(s.text);
}

/// Whether a key reads `want` once decoded (libsolv decodes keys: "n\u0061me" is "name").
bool key_is(const RawString& key, std::string_view want) {
  return key.escaped ? decode(key) == want : key.text == want;
}

/// Bytes that end the plain run of a string: the quote, a backslash, a control character.
constexpr std::array<bool, 256> kStringStop = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = t['\\'] = true;
  return t;
}();

/// Bytes of a number or a literal (true, false, null).
constexpr std::array<bool, 256> kScalar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  t['-'] = t['+'] = t['.'] = true;
  return t;
}();

}  // namespace

/// Walks a repodata.json's structure. Every method leaves the cursor after what it read; the
/// first error stops the scan (ok() turns false) and keeps its offset for the message.
class RepodataScanner {
 public:
  explicit RepodataScanner(std::string_view text)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  bool ok() const { return error_.empty(); }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  const std::string& error() const { return error_; }

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at(char c) {
    ws();
    return p_ < end_ && *p_ == c;
  }
  bool expect(char c) {
    if (at(c)) {
      ++p_;
      return true;
    }
    return fail(std::string("expected '") + c + "'");
  }
  bool fail(std::string what) {
    if (error_.empty()) error_ = std::move(what) + " at byte " + std::to_string(offset());
    p_ = end_;
    return false;
  }

  /// A string at the cursor.
  bool string(RawString& out) {
    if (!expect('"')) return false;
    const char* start = p_;
    bool escaped = false;
    while (p_ < end_) {
      while (p_ < end_ && !kStringStop[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) break;
      const char c = *p_;
      if (c == '"') {
        out = RawString{std::string_view(start, static_cast<size_t>(p_ - start)), escaped};
        ++p_;
        return true;
      }
      if (c == '\\') {
        escaped = true;
        p_ += (end_ - p_ >= 2) ? 2 : 1;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("a control character in a string");
      ++p_;
    }
    return fail("an unterminated string");
  }

  /// Any value at the cursor, not read.
  bool skip_value(int depth) {
    if (depth > kMaxScanDepth) return fail("nesting deeper than " + std::to_string(kMaxScanDepth));
    ws();
    if (p_ >= end_) return fail("a value expected");
    RawString s;
    switch (*p_) {
      case '"':
        return string(s);
      case '{':
        return members(depth, [&](const RawString&, size_t) { return skip_value(depth + 1); });
      case '[':
        return elements(depth, [&] { return skip_value(depth + 1); });
      default: {
        const char* start = p_;
        while (p_ < end_ && kScalar[static_cast<unsigned char>(*p_)]) ++p_;
        const std::string_view word(start, static_cast<size_t>(p_ - start));
        if (word.empty()) return fail("a value expected");
        // A literal is one of three words (libsolv refuses others); a number starts with a
        // digit or '-'.
        if (std::isalpha(static_cast<unsigned char>(word[0])))
          return word == "true" || word == "false" || word == "null" ||
                 (p_ = start, fail("an invalid literal"));
        return word.find_first_not_of("0123456789+-.eE") == std::string_view::npos ||
               (p_ = start, fail("an invalid number"));
      }
    }
  }

  /// An object at the cursor: `on_member(key, at)` reads each member's value; `at` is the
  /// offset of the member's key.
  template <typename OnMember>
  bool members(int depth, OnMember&& on_member) {
    if (depth > kMaxScanDepth) return fail("nesting deeper than " + std::to_string(kMaxScanDepth));
    if (!expect('{')) return false;
    if (at('}')) return ++p_, true;
    for (;;) {
      RawString key;
      const size_t key_at = (ws(), offset());
      if (!string(key) || !expect(':') || !on_member(key, key_at)) return false;
      if (at(',')) {
        ++p_;
        continue;
      }
      return expect('}');
    }
  }

  /// An array at the cursor: `on_element()` reads each element.
  template <typename OnElement>
  bool elements(int depth, OnElement&& on_element) {
    if (depth > kMaxScanDepth) return fail("nesting deeper than " + std::to_string(kMaxScanDepth));
    if (!expect('[')) return false;
    if (at(']')) return ++p_, true;
    for (;;) {
      if (!on_element()) return false;
      if (at(',')) {
        ++p_;
        continue;
      }
      return expect(']');
    }
  }

  /// A "packages" object: each record object indexed by its name; other values skipped, as
  /// libsolv skips them.
  bool records(RepodataIndex& index, size_t member) {
    return members(1, [&](const RawString&, size_t begin) {
      const size_t value_at = (ws(), offset());
      if (!at('{')) return skip_value(2);
      RawString name;
      bool named = false;
      const bool read = members(2, [&](const RawString& key, size_t) {
        // The last "name" counts, as in libsolv.
        if (key_is(key, "name") && at('"')) {
          named = true;
          return string(name);
        }
        return skip_value(3);
      });
      if (!read) return false;
      ++index.records_;
      if (!named) return true;  // no name: nothing can depend on it
      std::string_view key = name.text;
      if (name.escaped) key = index.decoded_names_.emplace_back(decode(name));
      index.by_name_[key].push_back(RepodataIndex::Span{begin, offset(), value_at, member});
      return true;
    });
  }

  /// The names a record's "depends" list (the object at the cursor) names.
  bool depends(NameSet& out) {
    return members(2, [&](const RawString& key, size_t) {
      // libsolv reads "requires" as it reads "depends".
      if ((!key_is(key, "depends") && !key_is(key, "requires")) || !at('[')) return skip_value(3);
      return elements(3, [&] {
        if (!at('"')) return skip_value(4);
        RawString dep;
        if (!string(dep)) return false;
        add_dependency(decode(dep), out);
        return true;
      });
    });
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
  std::string error_;
};

Result<RepodataIndex> RepodataIndex::build(std::string text, std::string_view what) {
  RepodataIndex index;
  index.text_ = std::make_unique<const std::string>(std::move(text));
  RepodataScanner scan(*index.text_);
  bool list = false;
  scan.members(0, [&](const RawString& key, size_t begin) {
    const bool packages = key_is(key, "packages") || key_is(key, "packages.conda");
    if (packages && scan.at('[')) list = true;
    if (!packages || list) {
      if (!scan.skip_value(1)) return false;
      index.members_.push_back(Member{begin, scan.offset(), false, {}, key_is(key, "info")});
      return true;
    }
    index.members_.push_back(Member{begin, 0, true, std::string(key.text)});
    if (!scan.records(index, index.members_.size() - 1)) return false;
    index.members_.back().end = scan.offset();
    return true;
  });
  if (scan.ok()) {
    scan.ws();
    if (scan.offset() != index.text_->size()) scan.fail("text after the top-level object");
  }
  if (!scan.ok())
    return fail(Errc::InvalidInput, std::string(what) + ": " + scan.error());
  if (list)
    return fail(Errc::Unsupported, std::string(what) + ": \"packages\" is a list (the old form)");
  return index;
}

RepodataIndex::Writer::Writer(size_t bytes) {
  text_.reserve(bytes + 2);
  text_ += '{';
}

void RepodataIndex::Writer::member(std::string_view key, std::string_view value) {
  // The scan would take these for records members.
  ENVB_CHECK(key != "packages" && key != "packages.conda");
  if (!std::exchange(first_member_, false)) text_ += ',';
  const size_t begin = text_.size();
  text_ += '"';
  text_ += key;
  text_ += "\":";
  text_ += value;
  index_.members_.push_back(Member{begin, text_.size(), false, {}, key == "info"});
}

void RepodataIndex::Writer::begin_records(std::string_view key) {
  if (!std::exchange(first_member_, false)) text_ += ',';
  index_.members_.push_back(Member{text_.size(), 0, true, std::string(key)});
  text_ += '"';
  text_ += key;
  text_ += "\":{";
  first_record_ = true;
}

void RepodataIndex::Writer::record(std::string_view quoted_file_name, std::string_view name,
                                   std::string_view record) {
  ENVB_CHECK(!index_.members_.empty() && index_.members_.back().records);  // begin_records first
  if (!std::exchange(first_record_, false)) text_ += ',';
  const size_t begin = text_.size();
  text_ += quoted_file_name;
  text_ += ':';
  const size_t value_at = text_.size();
  text_ += record;
  ++index_.records_;
  // Keyed by a name of its own, one per name (the text moves into the index at the end); the
  // scan would key it by its decoded "name", which is `name`.
  auto it = index_.by_name_.find(name);
  if (it == index_.by_name_.end())
    it = index_.by_name_.try_emplace(index_.decoded_names_.emplace_back(name)).first;
  it->second.push_back(Span{begin, text_.size(), value_at, index_.members_.size() - 1});
}

void RepodataIndex::Writer::end_records() {
  text_ += '}';
  index_.members_.back().end = text_.size();
}

RepodataIndex RepodataIndex::Writer::finish() && {
  text_ += '}';
  index_.text_ = std::make_unique<const std::string>(std::move(text_));
  return std::move(index_);
}

void RepodataIndex::add_depends_of(std::string_view name, NameSet& depends) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return;
  for (const Span& span : it->second) {
    RepodataScanner scan(std::string_view(*text_).substr(span.value, span.end - span.value));
    scan.depends(depends);  // the record was scanned whole when indexed: no error here
  }
}

std::vector<NameSet> RepodataIndex::split_names(size_t parts) const {
  struct Name {
    size_t first = 0, bytes = 0;
    std::string_view name;
  };
  std::vector<Name> names;
  size_t total = 0;
  for (const auto& [name, spans] : by_name_) {
    Name n{SIZE_MAX, 0, name};
    for (const Span& span : spans) {
      n.first = std::min(n.first, span.begin);
      n.bytes += span.end - span.begin;
    }
    total += n.bytes;
    names.push_back(n);
  }
  std::sort(names.begin(), names.end(), [](const Name& a, const Name& b) { return a.first < b.first; });
  parts = std::clamp<size_t>(parts, 1, std::max<size_t>(names.size(), 1));
  std::vector<NameSet> out(1);
  size_t bytes = 0;
  for (const Name& n : names) {
    // A new group once this one holds its share (the last takes whatever is left).
    if (out.size() < parts && bytes >= total * out.size() / parts && !out.back().empty())
      out.emplace_back();
    out.back().emplace(n.name);
    bytes += n.bytes;
  }
  return out;
}

std::string RepodataIndex::subset(const NameSet& names, Members others) const {
  std::vector<const Span*> reached;
  size_t bytes = 2;
  for (const std::string& name : names) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) continue;
    for (const Span& span : it->second) {
      reached.push_back(&span);
      bytes += span.end - span.begin + 1;
    }
  }
  // In the original order: libsolv then numbers the records as it would in the whole file.
  std::sort(reached.begin(), reached.end(),
            [](const Span* a, const Span* b) { return a->begin < b->begin; });
  std::string out;
  out.reserve(bytes + 64 * members_.size());
  const std::string_view text(*text_);
  out += '{';
  size_t next = 0;  // the next reached record
  bool first_member = true;
  for (size_t m = 0; m < members_.size(); ++m) {
    const Member& member = members_[m];
    if (!member.records && !member.info && others == Members::InfoOnly) continue;
    if (!first_member) out += ',';
    first_member = false;
    if (!member.records) {
      out.append(text.substr(member.begin, member.end - member.begin));
      continue;
    }
    out += '"';
    out += member.key;
    out += "\":{";
    bool first = true;
    for (; next < reached.size() && reached[next]->member == m; ++next) {
      if (!first) out += ',';
      first = false;
      out.append(text.substr(reached[next]->begin, reached[next]->end - reached[next]->begin));
    }
    out += '}';
  }
  out += '}';
  return out;
}

}  // namespace envbuild::builder
