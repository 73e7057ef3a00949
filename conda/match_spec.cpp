#include "conda/match_spec.hpp"

#include <array>
#include <cctype>
#include <utility>
#include <vector>

#include "common/ascii.hpp"
#include "common/hash.hpp"
#include "conda/internal/text.hpp"
#include "conda/platform.hpp"

namespace envbuild::conda {
namespace {

constexpr std::string_view kWhat = "invalid match spec";

bool is_op_char(char c) {
  return c == '<' || c == '>' || c == '=' || c == '!' || c == '~' || c == ',' || c == '|';
}
bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

bool needs_quotes(std::string_view value) {
  for (char c : value) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '*' && c != '/') {
      return true;
    }
  }
  return value.empty();
}

// "https://conda.anaconda.org/conda-forge/noarch/" -> "https://conda.anaconda.org/conda-forge"
// Build strings are printed bare after the version, so only what conda builds use is allowed:
// letters, digits, `_ . + -` and `*` globs (quotes, ':' or control bytes would not read back).
size_t first_bad_build_char(std::string_view build) {
  for (size_t i = 0; i < build.size(); ++i) {
    char c = build[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '+' &&
        c != '-' && c != '*')
      return i;
  }
  return std::string_view::npos;
}

std::string_view strip_subdir(std::string_view channel) {
  while (!channel.empty() && channel.back() == '/') channel.remove_suffix(1);
  size_t slash = channel.rfind('/');
  if (slash != std::string_view::npos && Platform::parse(channel.substr(slash + 1))) {
    channel = channel.substr(0, slash);
  }
  return channel;
}

}  // namespace

Result<BuildNumberSpec> BuildNumberSpec::parse(std::string_view input) {
  std::string_view text = internal::trim(input);
  BuildNumberSpec spec;
  static constexpr std::array<std::pair<std::string_view, Op>, 7> kOps = {{
      {"==", Op::Eq},
      {"!=", Op::Ne},
      {"<=", Op::Le},
      {">=", Op::Ge},
      {"<", Op::Lt},
      {">", Op::Gt},
      {"=", Op::Eq},
  }};
  size_t start = 0;
  for (auto [op, value] : kOps) {
    if (text.starts_with(op)) {
      spec.op = value;
      start = op.size();
      break;
    }
  }
  std::string_view digits = text.substr(start);
  if (!internal::is_digits(digits) || digits.size() > 18) {
    return internal::parse_error("invalid build number", text, start, "expected a number");
  }
  spec.value = std::stoull(std::string(digits));
  return spec;
}

std::string BuildNumberSpec::to_string() const {
  static constexpr std::array<std::string_view, 6> kNames = {"", "!=", "<", "<=", ">", ">="};
  return std::string(kNames[static_cast<size_t>(op)]) + std::to_string(value);
}

bool BuildNumberSpec::matches(std::uint64_t n) const {
  switch (op) {
    case Op::Eq:
      return n == value;
    case Op::Ne:
      return n != value;
    case Op::Lt:
      return n < value;
    case Op::Le:
      return n <= value;
    case Op::Gt:
      return n > value;
    case Op::Ge:
      return n >= value;
  }
  return false;
}

class MatchSpecParser {
 public:
  explicit MatchSpecParser(std::string_view text) : input_(internal::trim(text)) {}

  Result<MatchSpec> parse() {
    if (input_.empty()) return fail(Errc::InvalidInput, "invalid match spec '': empty");
    if (size_t bad = internal::first_control_char(input_); bad != std::string_view::npos)
      return error(bad, "control character in match spec");
    size_t pos = 0;
    size_t end = input_.size();
    // channel[/subdir]:: — the last "::" before any brackets, because a path channel may itself
    // end in ':' ("../x:" prints as "../x:::pkg") while a package name never contains one.
    std::string_view head = input_.substr(0, input_.find('['));
    if (size_t sep = head.rfind("::"); sep != std::string_view::npos) {
      auto channel = UnresolvedChannel::parse(input_.substr(0, sep));
      if (!channel) return internal::rebase_error(channel.error(), kWhat, input_, size_t{0});
      set_channel(*channel);
      pos = sep + 2;
    }
    // [key=value,...]
    if (size_t open = input_.find('[', pos); open != std::string_view::npos) {
      ENVB_TRY(parse_brackets(open));
      end = open;
    }
    // name
    size_t name_start = pos;
    while (pos < end && !is_space(input_[pos]) && !is_op_char(input_[pos])) {
      char c = input_[pos];
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
          c != '*') {
        return error(pos, std::string("unexpected character '") + c + "' in package name");
      }
      ++pos;
    }
    if (pos == name_start) return error(name_start, "expected a package name");
    spec_.name_ = common::ascii_lower(input_.substr(name_start, pos - name_start));
    ENVB_TRY(parse_version_and_build(pos, end));
    return std::move(spec_);
  }

 private:
  Error error(size_t pos, std::string_view problem) const {
    return internal::parse_error(kWhat, input_, pos, problem);
  }

  void set_channel(const UnresolvedChannel& channel) {
    if (channel.platforms().size() == 1 && channel.kind() == UnresolvedChannel::Kind::Name) {
      spec_.subdir_ = channel.platforms().front();
      spec_.channel_ = channel.without_platforms();
    } else {
      spec_.channel_ = channel;
    }
  }

  // `rest` is everything between the name and the brackets: "", " 1.26.*", ">=1.20,<2",
  // "=2.1=*cuda*", " >= 1.5.0,  < 2.0.0", " 1.26.4 py311h_0".
  Result<void> parse_version_and_build(size_t begin, size_t end) {
    std::string norm;
    std::vector<size_t> origin;
    bool pending_space = false;
    size_t space_at = 0;
    for (size_t i = begin; i < end; ++i) {
      char c = input_[i];
      if (is_space(c)) {
        if (!pending_space) space_at = i;
        pending_space = true;
        continue;
      }
      if (pending_space && !norm.empty() && !is_op_char(norm.back()) && !is_op_char(c)) {
        norm += ' ';
        origin.push_back(space_at);
      }
      pending_space = false;
      norm += c;
      origin.push_back(i);
    }
    if (norm.empty()) return ok();
    std::string version_text = norm;
    std::string build_text;
    size_t build_at = norm.size();
    if (size_t space = norm.find(' '); space != std::string::npos) {
      if (size_t again = norm.find(' ', space + 1); again != std::string::npos) {
        return error(origin[again + 1], "unexpected text after the build string");
      }
      version_text = norm.substr(0, space);
      build_at = space + 1;
    } else if (size_t eq = norm.rfind('=');
               eq != std::string::npos && eq > 0 && !is_op_char(norm[eq - 1]) &&
               eq + 1 < norm.size() && norm.find_first_of("<>=!~,|", eq + 1) == std::string::npos) {
      version_text = norm.substr(0, eq);
      build_at = eq + 1;
    }
    if (build_at < norm.size()) {
      build_text = norm.substr(build_at);
      if (size_t bad = first_bad_build_char(build_text); bad != std::string::npos) {
        return error(origin[build_at + bad], "unexpected character in build string");
      }
      // `name=1.2=build` pins the version exactly (as libsolv and `conda list --export` do).
      if (version_text.size() > 1 && version_text[0] == '=' && !is_op_char(version_text[1]) &&
          version_text.find_first_of(",|") == std::string::npos) {
        version_text = "=" + version_text;
        origin.insert(origin.begin(), origin.front());
      }
    }
    auto version = VersionSpec::parse(version_text);
    if (!version) return internal::rebase_error(version.error(), kWhat, input_, origin);
    if (!spec_.version_.is_any() && !version->is_any()) {
      return error(origin.front(), "version given twice (also in [version=...])");
    }
    if (spec_.version_.is_any()) spec_.version_ = std::move(*version);
    if (!build_text.empty() && build_text != "*") {
      if (!spec_.build_.empty()) return error(origin[build_at], "build given twice");
      spec_.build_ = build_text;
    }
    return ok();
  }

  Result<void> parse_brackets(size_t open) {
    size_t pos = open + 1;
    static constexpr std::array<std::string_view, 10> kKeys = {
        "build", "build_number", "channel", "fn",  "license",
        "md5",   "sha256",       "subdir",  "url", "version"};
    while (true) {
      while (pos < input_.size() && is_space(input_[pos])) ++pos;
      if (pos < input_.size() && input_[pos] == ']') break;
      size_t key_start = pos;
      while (pos < input_.size() &&
             (std::isalnum(static_cast<unsigned char>(input_[pos])) || input_[pos] == '_')) {
        ++pos;
      }
      std::string_view key = input_.substr(key_start, pos - key_start);
      if (key.empty()) return error(key_start, "expected a key");
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
        Error e = error(key_start, "unknown key '" + std::string(key) + "'");
        if (auto guess = internal::did_you_mean(key, kKeys)) {
          return std::move(e).with_hint("did you mean '" + *guess + "'?");
        }
        return e;
      }
      while (pos < input_.size() && is_space(input_[pos])) ++pos;
      if (pos >= input_.size() || input_[pos] != '=') return error(pos, "expected '='");
      ++pos;
      while (pos < input_.size() && is_space(input_[pos])) ++pos;
      size_t value_start = pos;
      std::string_view value;
      if (pos < input_.size() && (input_[pos] == '\'' || input_[pos] == '"')) {
        char quote = input_[pos];
        size_t close = input_.find(quote, pos + 1);
        if (close == std::string_view::npos) return error(pos, "unterminated quote");
        value_start = pos + 1;
        value = input_.substr(pos + 1, close - pos - 1);
        pos = close + 1;
      } else {
        while (pos < input_.size() && input_[pos] != ',' && input_[pos] != ']') ++pos;
        value = internal::trim(input_.substr(value_start, pos - value_start));
      }
      // Values are printed back inside one kind of quotes, so they may not hold either kind.
      if (size_t quote = value.find_first_of("'\""); quote != std::string_view::npos)
        return error(value_start + quote, "quote inside a value");
      ENVB_TRY(apply(key, value, value_start));
      while (pos < input_.size() && is_space(input_[pos])) ++pos;
      if (pos < input_.size() && input_[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < input_.size() && input_[pos] == ']') break;
      return error(pos, "expected ',' or ']'");
    }
    if (pos + 1 != input_.size()) return error(pos + 1, "unexpected text after ']'");
    return ok();
  }

  Result<void> apply(std::string_view key, std::string_view value, size_t at) {
    if (key == "version") {
      auto version = VersionSpec::parse(value);
      if (!version) return internal::rebase_error(version.error(), kWhat, input_, at);
      spec_.version_ = std::move(*version);
    } else if (key == "build") {
      if (size_t bad = first_bad_build_char(value); bad != std::string_view::npos) {
        return error(at + bad, "unexpected character in build");
      }
      spec_.build_ = value == "*" ? "" : std::string(value);
    } else if (key == "build_number") {
      auto number = BuildNumberSpec::parse(value);
      if (!number) return internal::rebase_error(number.error(), kWhat, input_, at);
      spec_.build_number_ = *number;
    } else if (key == "channel") {
      auto channel = UnresolvedChannel::parse(value);
      if (!channel) return internal::rebase_error(channel.error(), kWhat, input_, at);
      set_channel(*channel);
    } else if (key == "subdir") {
      if (!Platform::parse(value)) return error(at, "unknown subdir");
      spec_.subdir_ = std::string(value);
    } else if (key == "md5") {
      if (!common::is_lower_hex(value, 32)) return error(at, "md5 must be 32 lowercase hex digits");
      spec_.md5_ = std::string(value);
    } else if (key == "sha256") {
      if (!common::is_lower_hex(value, 64)) {
        return error(at, "sha256 must be 64 lowercase hex digits");
      }
      spec_.sha256_ = std::string(value);
    } else if (key == "fn") {
      spec_.fn_ = std::string(value);
    } else if (key == "license") {
      spec_.license_ = std::string(value);
    } else if (key == "url") {
      spec_.url_ = std::string(value);
    }
    return ok();
  }

  std::string_view input_;
  MatchSpec spec_;
};

Result<MatchSpec> MatchSpec::parse(std::string_view text) {
  return MatchSpecParser(text).parse();
}

bool MatchSpec::name_is_glob() const noexcept {
  return name_.find('*') != std::string::npos;
}

std::string MatchSpec::to_string() const {
  std::string out;
  // A channel whose text holds '[' (a platform list, or a URL or path with one, both only
  // given as `channel=`) goes in the brackets: before "::" it would read as their start.
  const std::string channel = channel_ ? channel_->to_string() : std::string();
  const bool channel_in_brackets = channel.find('[') != std::string::npos;
  if (channel_ && !channel_in_brackets) {
    out += channel;
    if (!subdir_.empty()) out += "/" + subdir_;
    out += "::";
  }
  out += to_libsolv_string();
  std::vector<std::pair<std::string_view, std::string>> extras;
  if (channel_in_brackets) extras.emplace_back("channel", channel);
  if ((!channel_ || channel_in_brackets) && !subdir_.empty()) extras.emplace_back("subdir", subdir_);
  if (build_number_) extras.emplace_back("build_number", build_number_->to_string());
  if (!md5_.empty()) extras.emplace_back("md5", md5_);
  if (!sha256_.empty()) extras.emplace_back("sha256", sha256_);
  if (!fn_.empty()) extras.emplace_back("fn", fn_);
  if (!license_.empty()) extras.emplace_back("license", license_);
  if (!url_.empty()) extras.emplace_back("url", url_);
  if (!extras.empty()) {
    out += "[";
    for (size_t i = 0; i < extras.size(); ++i) {
      if (i) out += ",";
      const std::string& value = extras[i].second;
      char quote = value.find('\'') == std::string::npos ? '\'' : '"';
      out += std::string(extras[i].first) + "=" +
             (needs_quotes(value) ? quote + value + quote : value);
    }
    out += "]";
  }
  return out;
}

std::string MatchSpec::to_libsolv_string() const {
  std::string out = name_;
  if (!version_.is_any() || !build_.empty()) out += " " + version_.to_string();
  if (!build_.empty()) out += " " + build_;
  return out;
}

bool MatchSpec::has_extra_constraints() const {
  return channel_ || !subdir_.empty() || build_number_ || !md5_.empty() || !sha256_.empty() ||
         !fn_.empty() || !license_.empty() || !url_.empty();
}

bool MatchSpec::matches(const PackageRecord& r) const {
  if (name_is_glob() ? !internal::glob_match(name_, common::ascii_lower(r.name))
                     : common::ascii_lower(r.name) != name_) {
    return false;
  }
  if (!version_.matches(r.version)) return false;
  if (!build_.empty() && !internal::glob_match(build_, r.build)) return false;
  if (build_number_ && !build_number_->matches(r.build_number)) return false;
  if (!md5_.empty() && r.md5 != md5_) return false;
  if (!sha256_.empty() && r.sha256 != sha256_) return false;
  if (!subdir_.empty() && r.subdir != subdir_) return false;
  if (!fn_.empty() && r.fn != fn_) return false;
  if (!license_.empty() && r.license != license_) return false;
  if (!url_.empty() && r.url != url_) return false;
  if (channel_) {
    std::string_view have = strip_subdir(r.channel.empty() ? r.url : r.channel);
    if (r.channel.empty()) have = strip_subdir(have.substr(0, have.rfind('/')));
    std::string_view want = channel_->location();
    while (want.size() > 1 && want.back() == '/') want.remove_suffix(1);
    bool same = have == want || (channel_->kind() == UnresolvedChannel::Kind::Name &&
                                 have.ends_with("/" + std::string(want)));
    if (!same) return false;
  }
  return true;
}

}  // namespace envbuild::conda
