#include "conda/version.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "common/ascii.hpp"
#include "conda/internal/text.hpp"

namespace envbuild::conda {
namespace {

constexpr std::string_view kWhat = "invalid version";

int rank(const Version::Atom& atom) {
  if (atom.text.empty()) return 2;
  if (atom.text == "dev") return 0;
  if (atom.text == "post") return 3;
  return 1;
}

std::weak_ordering compare_atoms(const Version::Atom& a, const Version::Atom& b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra <=> rb;
  if (ra == 2) return a.number <=> b.number;
  return a.text.compare(b.text) <=> 0;
}

const Version::Atom kZero{};

std::weak_ordering compare_components(const Version::Component& a, const Version::Component& b) {
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    auto c = compare_atoms(i < a.size() ? a[i] : kZero, i < b.size() ? b[i] : kZero);
    if (c != 0) return c;
  }
  return std::weak_ordering::equivalent;
}

std::weak_ordering compare_parts(const std::vector<Version::Component>& a,
                                 const std::vector<Version::Component>& b) {
  static const Version::Component kEmpty;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    auto c = compare_components(i < a.size() ? a[i] : kEmpty, i < b.size() ? b[i] : kEmpty);
    if (c != 0) return c;
  }
  return std::weak_ordering::equivalent;
}

bool is_separator(char c) {
  return c == '.' || c == '_' || c == '-';
}

// Splits `text` (starting at column `offset` of `whole`) into components of atoms.
Result<std::vector<Version::Component>> parse_parts(std::string_view text, std::string_view whole,
                                                    size_t offset) {
  std::vector<Version::Component> parts;
  bool openssl_underscore = false;
  if (text.size() > 1 && text.back() == '_' && !is_separator(text[text.size() - 2])) {
    // openssl-style `1.0.1_`: the trailing underscore is a letter of the last component.
    openssl_underscore = true;
    text.remove_suffix(1);
  }
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && !is_separator(text[i])) continue;
    std::string_view piece = text.substr(start, i - start);
    if (piece.empty()) {
      return internal::parse_error(kWhat, whole, offset + i,
                                   i == text.size() ? "ends with a separator" : "empty component");
    }
    Version::Component component;
    size_t j = 0;
    while (j < piece.size()) {
      size_t k = j;
      bool digits = std::isdigit(static_cast<unsigned char>(piece[j])) != 0;
      while (k < piece.size() &&
             (std::isdigit(static_cast<unsigned char>(piece[k])) != 0) == digits) {
        char c = piece[k];
        if (!digits && !std::isalpha(static_cast<unsigned char>(c))) {
          return internal::parse_error(kWhat, whole, offset + start + k,
                                       std::string("unexpected character '") + c + "'");
        }
        ++k;
      }
      std::string_view run = piece.substr(j, k - j);
      Version::Atom atom;
      if (digits) {
        std::uint64_t value = 0;
        for (char c : run) {
          std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
          if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
            return internal::parse_error(kWhat, whole, offset + start + j, "number too large");
          }
          value = value * 10 + digit;
        }
        atom.number = value;
      } else {
        if (j == 0) component.push_back(Version::Atom{});  // `rc1` is `0rc1`
        atom.text = common::ascii_lower(run);
      }
      component.push_back(std::move(atom));
      j = k;
    }
    parts.push_back(std::move(component));
    start = i + 1;
  }
  if (openssl_underscore) parts.back().push_back(Version::Atom{0, "_"});
  return parts;
}

void strip_trailing_zeros(std::vector<Version::Component>& parts) {
  for (auto& part : parts) {
    while (!part.empty() && part.back() == kZero) part.pop_back();
  }
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
}

}  // namespace

Result<Version> Version::parse(std::string_view text) {
  if (text.empty()) return fail(Errc::InvalidInput, "invalid version '': empty");
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '!' && c != '+') {
      return internal::parse_error(kWhat, text, i, std::string("unexpected character '") + c + "'");
    }
  }
  Version v;
  v.text_ = std::string(text);
  std::string_view rest = text;
  size_t offset = 0;
  if (size_t bang = rest.find('!'); bang != std::string_view::npos) {
    std::string_view epoch = rest.substr(0, bang);
    if (!internal::is_digits(epoch)) {
      return internal::parse_error(kWhat, text, 0, "epoch must be a number");
    }
    if (epoch.size() > 18) return internal::parse_error(kWhat, text, 0, "epoch too large");
    v.epoch_ = std::stoull(std::string(epoch));
    rest.remove_prefix(bang + 1);
    offset = bang + 1;
    if (size_t again = rest.find('!'); again != std::string_view::npos) {
      return internal::parse_error(kWhat, text, offset + again, "more than one '!'");
    }
  }
  std::string_view local;
  if (size_t plus = rest.find('+'); plus != std::string_view::npos) {
    local = rest.substr(plus + 1);
    if (size_t again = local.find('+'); again != std::string_view::npos) {
      return internal::parse_error(kWhat, text, offset + plus + 1 + again, "more than one '+'");
    }
    if (local.empty()) {
      return internal::parse_error(kWhat, text, offset + plus + 1, "empty local version after '+'");
    }
    ENVB_ASSIGN_OR_RETURN(v.local_, parse_parts(local, text, offset + plus + 1));
    rest = rest.substr(0, plus);
  }
  if (rest.empty()) return internal::parse_error(kWhat, text, offset, "empty version");
  ENVB_ASSIGN_OR_RETURN(v.version_, parse_parts(rest, text, offset));
  return v;
}

std::weak_ordering operator<=>(const Version& a, const Version& b) {
  if (auto c = a.epoch_ <=> b.epoch_; c != 0) return c;
  if (auto c = compare_parts(a.version_, b.version_); c != 0) return c;
  return compare_parts(a.local_, b.local_);
}

namespace {
bool parts_start_with(const std::vector<Version::Component>& v,
                      const std::vector<Version::Component>& prefix) {
  static const Version::Component kEmpty;
  if (prefix.empty()) return true;
  size_t last = prefix.size() - 1;
  for (size_t i = 0; i < last; ++i) {
    if (compare_components(i < v.size() ? v[i] : kEmpty, prefix[i]) != 0) return false;
  }
  const Version::Component& p = prefix[last];
  const Version::Component& c = last < v.size() ? v[last] : kEmpty;
  if (p.empty()) return true;
  for (size_t j = 0; j + 1 < p.size(); ++j) {
    if (compare_atoms(j < c.size() ? c[j] : kZero, p[j]) != 0) return false;
  }
  const Version::Atom& pa = p.back();
  const Version::Atom& ca = p.size() - 1 < c.size() ? c[p.size() - 1] : kZero;
  if (!pa.text.empty() && !ca.text.empty()) return ca.text.starts_with(pa.text);
  return compare_atoms(ca, pa) == 0;
}
}  // namespace

bool Version::starts_with(const Version& prefix) const {
  if (epoch_ != prefix.epoch_) return false;
  if (!prefix.local_.empty()) {
    return compare_parts(version_, prefix.version_) == 0 && parts_start_with(local_, prefix.local_);
  }
  return parts_start_with(version_, prefix.version_);
}

bool Version::compatible_with(const Version& base) const {
  if (*this < base) return false;
  if (base.version_.size() < 2) return true;
  Version stem = base;
  stem.version_.pop_back();
  stem.local_.clear();
  return starts_with(stem);
}

std::size_t Version::hash() const noexcept {
  std::vector<Component> main = version_;
  std::vector<Component> local = local_;
  strip_trailing_zeros(main);
  strip_trailing_zeros(local);
  std::size_t h = std::hash<std::uint64_t>{}(epoch_);
  auto mix = [&h](std::size_t value) { h ^= value + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  for (const auto* parts : {&main, &local}) {
    mix(parts->size());
    for (const auto& component : *parts) {
      mix(component.size());
      for (const auto& atom : component) {
        mix(std::hash<std::uint64_t>{}(atom.number));
        mix(std::hash<std::string>{}(atom.text));
      }
    }
  }
  return h;
}

}  // namespace envbuild::conda
