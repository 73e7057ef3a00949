#include "conda/pypi/specifier.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "common/ascii.hpp"
#include "conda/internal/text.hpp"

namespace envbuild::conda::pypi {

namespace {

constexpr std::array<std::pair<std::string_view, Operator>, 8> kOperators = {{
    {"===", Operator::Arbitrary},
    {"~=", Operator::Compatible},
    {"==", Operator::Equal},
    {"!=", Operator::NotEqual},
    {"<=", Operator::LessEqual},
    {">=", Operator::GreaterEqual},
    {"<", Operator::Less},
    {">", Operator::Greater},
}};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }
bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// packaging 21.3's _version_split: "1.0rc1" -> ["1", "0", "rc1"]; a digit run followed by a
// pre-release label in one dot-separated item is split in two.
std::vector<std::string> version_split(std::string_view version) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t dot = version.find('.', start);
    std::string_view item = version.substr(start, dot == std::string_view::npos ? dot : dot - start);
    size_t digits = 0;
    while (digits < item.size() && item[digits] >= '0' && item[digits] <= '9') ++digits;
    std::string_view rest = item.substr(digits);
    bool split = false;
    if (digits > 0) {
      for (std::string_view label : {"rc", "a", "b", "c"})
        if (rest.starts_with(label) && is_digits(rest.substr(label.size()))) split = true;
    }
    if (split) {
      out.emplace_back(item.substr(0, digits));
      out.emplace_back(rest);
    } else {
      out.emplace_back(item);
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// packaging 21.3's _pad_version: each side's leading digit items are padded with "0" to the
// longer of the two.
std::pair<std::vector<std::string>, std::vector<std::string>> pad_version(
    const std::vector<std::string>& left, const std::vector<std::string>& right) {
  auto release_length = [](const std::vector<std::string>& v) {
    size_t n = 0;
    while (n < v.size() && is_digits(v[n])) ++n;
    return n;
  };
  const size_t l = release_length(left), r = release_length(right);
  auto pad = [](const std::vector<std::string>& v, size_t have, size_t want) {
    std::vector<std::string> out(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(have));
    for (size_t i = have; i < want; ++i) out.emplace_back("0");
    out.insert(out.end(), v.begin() + static_cast<std::ptrdiff_t>(have), v.end());
    return out;
  };
  return {pad(left, l, std::max(l, r)), pad(right, r, std::max(l, r))};
}

// `==prefix.*` as packaging 21.3 decides it, on the normal forms.
bool prefix_match(const Version& candidate, const std::string& prefix) {
  std::vector<std::string> spec = version_split(prefix);
  std::vector<std::string> prospective = version_split(candidate.public_version().to_string());
  if (prospective.size() > spec.size()) prospective.resize(spec.size());
  auto [padded_spec, padded_prospective] = pad_version(spec, prospective);
  return padded_prospective == padded_spec;
}

bool is_suffix(std::string_view segment) {
  for (std::string_view p : {"dev", "a", "b", "rc", "post"})
    if (segment.starts_with(p)) return true;
  return false;
}

// ~=V: the prefix is V's items up to its first suffix, less the last one.
std::string compatible_prefix(const Version& v) {
  std::vector<std::string> items = version_split(v.to_string());
  size_t keep = 0;
  while (keep < items.size() && !is_suffix(items[keep])) ++keep;
  std::string out;
  for (size_t i = 0; i + 1 < keep; ++i) out += (i ? "." : "") + items[i];
  return out;
}

}  // namespace

std::string_view to_string(Operator op) {
  for (const auto& [text, value] : kOperators)
    if (value == op) return text;
  return "?";
}

Result<Specifier> Specifier::parse(std::string_view text) {
  auto error = [&](size_t pos, std::string_view problem) {
    return internal::parse_error("invalid version specifier", text, pos, problem);
  };
  if (text.size() > kMaxVersionLength + 16)
    return fail(Errc::InvalidInput, "invalid version specifier '" +
                                        std::string(text.substr(0, 64)) + "...': too long");
  size_t pos = 0;
  while (pos < text.size() && is_space(text[pos])) ++pos;
  Specifier spec;
  bool found = false;
  for (const auto& [word, op] : kOperators) {
    if (text.substr(pos, word.size()) == word) {
      spec.op_ = op;
      pos += word.size();
      found = true;
      break;
    }
  }
  if (!found) return error(pos, "expected an operator (==, !=, <=, >=, <, >, ~=, ===)");
  while (pos < text.size() && is_space(text[pos])) ++pos;
  size_t end = text.size();
  while (end > pos && is_space(text[end - 1])) --end;
  std::string_view version = text.substr(pos, end - pos);
  if (version.empty()) return error(pos, "expected a version");
  if (spec.op_ == Operator::Arbitrary) {
    if (std::any_of(version.begin(), version.end(), is_space))
      return error(pos, "=== takes one word");
    spec.arbitrary_ = std::string(version);
    if (auto v = Version::parse(version)) spec.version_ = *v;
    return spec;
  }
  if ((spec.op_ == Operator::Equal || spec.op_ == Operator::NotEqual) && version.ends_with(".*")) {
    spec.wildcard_ = true;
    version.remove_suffix(2);
  }
  auto parsed = Version::parse(version);
  if (!parsed) return internal::rebase_error(parsed.error(), "invalid version specifier", text, pos);
  spec.version_ = std::move(*parsed);
  const Version& v = spec.version_;
  if (spec.wildcard_ && (v.pre() || v.post() || v.dev() || !v.local().empty()))
    return error(pos, "a wildcard (.*) follows a release number only (==1.4.*)");
  const bool ordered = spec.op_ != Operator::Equal && spec.op_ != Operator::NotEqual;
  if (ordered && !v.local().empty())
    return error(pos, "a local version (+...) is allowed with == and != only");
  if (spec.op_ == Operator::Compatible && v.release().size() < 2)
    return error(pos, "~= needs at least two release numbers (~=1.4, not ~=1)");
  return spec;
}

std::string Specifier::to_string() const {
  if (op_ == Operator::Arbitrary) return "===" + arbitrary_;
  return std::string(pypi::to_string(op_)) + version_.to_string() + (wildcard_ ? ".*" : "");
}

bool Specifier::allows_prereleases() const noexcept {
  switch (op_) {
    case Operator::Equal:
    case Operator::GreaterEqual:
    case Operator::LessEqual:
    case Operator::Compatible:
    case Operator::Arbitrary:
      return version_.is_prerelease();
    default:
      return false;
  }
}

bool Specifier::contains(const Version& v) const {
  switch (op_) {
    case Operator::Compatible:
      return v.public_version() >= version_ && prefix_match(v, compatible_prefix(version_));
    case Operator::Equal:
    case Operator::NotEqual: {
      bool equal = wildcard_ ? prefix_match(v, version_.to_string())
                             : (version_.local().empty() ? v.public_version() : v) == version_;
      return op_ == Operator::Equal ? equal : !equal;
    }
    case Operator::LessEqual:
      return v.public_version() <= version_;
    case Operator::GreaterEqual:
      return v.public_version() >= version_;
    case Operator::Less:
      if (!(v < version_)) return false;
      // <3.1 does not take 3.1.dev0 or 3.1rc1 (unless it names a pre-release itself).
      return version_.is_prerelease() || !v.is_prerelease() ||
             v.base_version() != version_.base_version();
    case Operator::Greater:
      if (!(v > version_)) return false;
      // >3.1 takes neither 3.1.post1 (unless it names a post-release) nor 3.1+local.
      if (!version_.is_postrelease() && v.is_postrelease() &&
          v.base_version() == version_.base_version())
        return false;
      return v.local().empty() || v.base_version() != version_.base_version();
    case Operator::Arbitrary:
      return contains_text(v.to_string());
  }
  return false;
}

bool Specifier::contains_text(std::string_view version_text) const {
  if (op_ != Operator::Arbitrary) {
    auto v = Version::parse(version_text);
    return v && contains(*v);
  }
  return common::ascii_lower(version_text) == common::ascii_lower(arbitrary_);
}

Result<SpecifierSet> SpecifierSet::parse(std::string_view text) {
  SpecifierSet set;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (!internal::trim(item).empty()) {
      auto spec = Specifier::parse(item);
      if (!spec)
        return internal::rebase_error(spec.error(), "invalid version specifier", text, start);
      set.specifiers_.push_back(std::move(*spec));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return set;
}

std::string SpecifierSet::to_string() const {
  std::vector<std::string> items;
  for (const auto& s : specifiers_) items.push_back(s.to_string());
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

bool SpecifierSet::allows_prereleases() const noexcept {
  return std::any_of(specifiers_.begin(), specifiers_.end(),
                     [](const Specifier& s) { return s.allows_prereleases(); });
}

bool SpecifierSet::contains(const Version& v, Prereleases pre) const {
  const bool allowed = pre == Prereleases::Allow ||
                       (pre == Prereleases::Default && allows_prereleases());
  if (v.is_prerelease() && !allowed) return false;
  return std::all_of(specifiers_.begin(), specifiers_.end(),
                     [&](const Specifier& s) { return s.contains(v); });
}

void SpecifierSet::add(const SpecifierSet& other) {
  specifiers_.insert(specifiers_.end(), other.specifiers_.begin(), other.specifiers_.end());
}

std::vector<size_t> filter_versions(const SpecifierSet& set, const std::vector<Version>& versions,
                                    Prereleases pre) {
  std::vector<size_t> out;
  if (!set.empty()) {
    // packaging 21.3 filters clause by clause with pre-releases allowed only when asked for or
    // named: a non-empty set never falls back to pre-releases.
    for (size_t i = 0; i < versions.size(); ++i)
      if (set.contains(versions[i], pre)) out.push_back(i);
    return out;
  }
  std::vector<size_t> prereleases;
  for (size_t i = 0; i < versions.size(); ++i) {
    if (versions[i].is_prerelease() && pre != Prereleases::Allow) {
      if (out.empty()) prereleases.push_back(i);
    } else {
      out.push_back(i);
    }
  }
  if (out.empty() && pre == Prereleases::Default) return prereleases;
  return out;
}

}  // namespace envbuild::conda::pypi
