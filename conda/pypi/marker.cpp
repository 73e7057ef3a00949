#include "conda/pypi/marker.hpp"

#include <array>
#include <utility>

#include "conda/internal/text.hpp"
#include "conda/pypi/name.hpp"
#include "conda/pypi/specifier.hpp"

namespace envbuild::conda::pypi {

namespace {

// PEP 508 names, and the dotted spellings packaging still reads (PEP 345), by canonical name.
constexpr std::array<std::pair<std::string_view, std::string_view>, 18> kVariables = {{
    {"implementation_name", "implementation_name"},
    {"implementation_version", "implementation_version"},
    {"os_name", "os_name"},
    {"platform_machine", "platform_machine"},
    {"platform_python_implementation", "platform_python_implementation"},
    {"platform_release", "platform_release"},
    {"platform_system", "platform_system"},
    {"platform_version", "platform_version"},
    {"python_full_version", "python_full_version"},
    {"python_version", "python_version"},
    {"sys_platform", "sys_platform"},
    {"extra", "extra"},
    {"os.name", "os_name"},
    {"sys.platform", "sys_platform"},
    {"platform.version", "platform_version"},
    {"platform.machine", "platform_machine"},
    {"platform.python_implementation", "platform_python_implementation"},
    {"python_implementation", "platform_python_implementation"},
}};

constexpr std::array<std::string_view, 8> kComparisons = {"===", "==", ">=", "<=",
                                                          "!=",  "~=", ">",  "<"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }
bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Marker::Node> parse() {
    ENVB_ASSIGN_OR_RETURN(Marker::Node node, expression(0));
    skip_space();
    if (pos_ < text_.size()) return error("expected 'and', 'or' or the end of the marker");
    return node;
  }

 private:
  Error error(std::string_view problem) const {
    return internal::parse_error("invalid marker", text_, pos_, problem);
  }
  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }
  bool eat(std::string_view word) {
    skip_space();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // or-expression: and-expressions joined by "or"; a lone child is returned as itself.
  Result<Marker::Node> expression(size_t depth) {
    Marker::Node any;
    any.kind = Marker::Node::Kind::Or;
    for (;;) {
      ENVB_ASSIGN_OR_RETURN(Marker::Node all, conjunction(depth));
      any.children.push_back(std::move(all));
      if (!eat("or")) break;
    }
    if (any.children.size() == 1) return std::move(any.children.front());
    return any;
  }

  Result<Marker::Node> conjunction(size_t depth) {
    Marker::Node all;
    all.kind = Marker::Node::Kind::And;
    for (;;) {
      ENVB_ASSIGN_OR_RETURN(Marker::Node atom, this->atom(depth));
      all.children.push_back(std::move(atom));
      if (!eat("and")) break;
    }
    if (all.children.size() == 1) return std::move(all.children.front());
    return all;
  }

  Result<Marker::Node> atom(size_t depth) {
    if (eat("(")) {
      if (depth + 1 > kMaxMarkerDepth)
        return error("parentheses nested deeper than " + std::to_string(kMaxMarkerDepth));
      ENVB_ASSIGN_OR_RETURN(Marker::Node inner, expression(depth + 1));
      if (!eat(")")) return error("expected ')'");
      return inner;
    }
    Marker::Node node;
    ENVB_TRY(value(node.lhs, node.lhs_is_variable));
    ENVB_TRY(comparison(node.op));
    ENVB_TRY(value(node.rhs, node.rhs_is_variable));
    return node;
  }

  Result<void> value(std::string& out, bool& is_variable) {
    skip_space();
    if (pos_ >= text_.size()) return error("expected a variable or a quoted string");
    char quote = text_[pos_];
    if (quote == '"' || quote == '\'') {
      size_t end = text_.find(quote, pos_ + 1);
      if (end == std::string_view::npos) return error("unterminated string");
      out = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
      pos_ = end + 1;
      is_variable = false;
      return ok();
    }
    size_t start = pos_;
    while (pos_ < text_.size() && is_identifier_char(text_[pos_])) ++pos_;
    std::string_view word = text_.substr(start, pos_ - start);
    for (const auto& [name, canonical] : kVariables) {
      if (word == name) {
        out = std::string(canonical);
        is_variable = true;
        return ok();
      }
    }
    pos_ = start;
    return error(word.empty() ? "expected a variable or a quoted string"
                              : "unknown variable '" + std::string(word) + "'");
  }

  Result<void> comparison(std::string& op) {
    skip_space();
    for (std::string_view candidate : kComparisons) {
      if (text_.substr(pos_, candidate.size()) == candidate) {
        op = std::string(candidate);
        pos_ += candidate.size();
        return ok();
      }
    }
    if (text_.substr(pos_, 2) == "in") {
      pos_ += 2;
      op = "in";
      return ok();
    }
    if (text_.substr(pos_, 3) == "not") {
      size_t save = pos_;
      pos_ += 3;
      size_t before_space = pos_;
      skip_space();
      if (pos_ > before_space && text_.substr(pos_, 2) == "in") {
        pos_ += 2;
        op = "not in";
        return ok();
      }
      pos_ = save;
    }
    return error("expected a comparison (==, !=, <, <=, >, >=, ~=, ===, in, not in)");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

std::string quoted(const std::string& s) {
  return s.find('"') == std::string::npos ? "\"" + s + "\"" : "'" + s + "'";
}

std::string node_text(const Marker::Node& node, bool nested) {
  using Kind = Marker::Node::Kind;
  if (node.kind == Kind::Compare)
    return (node.lhs_is_variable ? node.lhs : quoted(node.lhs)) + " " + node.op + " " +
           (node.rhs_is_variable ? node.rhs : quoted(node.rhs));
  std::string out;
  for (const auto& child : node.children) {
    if (!out.empty()) out += node.kind == Kind::And ? " and " : " or ";
    // An `or` inside an `and` needs its parentheses back.
    out += node_text(child, node.kind == Kind::And && child.kind == Kind::Or);
  }
  return nested ? "(" + out + ")" : out;
}

Result<bool> compare(const std::string& op, const std::string& lhs, const std::string& rhs) {
  // A right side that makes a version specifier with the operator is a version comparison
  // (pip's packaging 21.3: pre-releases only when the specifier names one; a left side that is
  // no version never matches).
  if (op != "in" && op != "not in") {
    if (auto spec = Specifier::parse(op + rhs)) {
      if (spec->op() == Operator::Arbitrary) return spec->contains_text(lhs);
      auto version = Version::parse(lhs);
      if (!version) return false;
      if (version->is_prerelease() && !spec->allows_prereleases()) return false;
      return spec->contains(*version);
    }
  }
  if (op == "in") return rhs.find(lhs) != std::string::npos;
  if (op == "not in") return rhs.find(lhs) == std::string::npos;
  if (op == "==") return lhs == rhs;
  if (op == "!=") return lhs != rhs;
  if (op == "<") return lhs < rhs;
  if (op == "<=") return lhs <= rhs;
  if (op == ">") return lhs > rhs;
  if (op == ">=") return lhs >= rhs;
  return fail(Errc::InvalidInput, "marker comparison '\"" + lhs + "\" " + op + " \"" + rhs +
                                      "\"' is undefined for strings that are not versions");
}

Result<bool> evaluate_node(const Marker::Node& node, const MarkerEnvironment& env,
                           std::string_view extra) {
  using Kind = Marker::Node::Kind;
  if (node.kind != Kind::Compare) {
    const bool want_all = node.kind == Kind::And;
    for (const auto& child : node.children) {
      ENVB_ASSIGN_OR_RETURN(bool value, evaluate_node(child, env, extra));
      if (value != want_all) return value;
    }
    return want_all;
  }
  const bool about_extra = (node.lhs_is_variable && node.lhs == "extra") ||
                           (node.rhs_is_variable && node.rhs == "extra");
  auto resolve = [&](const std::string& text, bool is_variable) -> std::string {
    if (!is_variable) return text;
    if (text == "extra") return std::string(extra);
    const std::string* value = env.find(text);
    return value ? *value : std::string();
  };
  std::string lhs = resolve(node.lhs, node.lhs_is_variable);
  std::string rhs = resolve(node.rhs, node.rhs_is_variable);
  if (about_extra) {
    // Extras compare by their normal forms (PEP 685): `extra == "Foo_Bar"` matches "foo-bar".
    lhs = normalize_name(lhs);
    rhs = normalize_name(rhs);
    if (node.op == "==" || node.op == "===") return lhs == rhs;
    if (node.op == "!=") return lhs != rhs;
  }
  return compare(node.op, lhs, rhs);
}

bool node_mentions_extra(const Marker::Node& node) {
  if (node.kind == Marker::Node::Kind::Compare)
    return (node.lhs_is_variable && node.lhs == "extra") ||
           (node.rhs_is_variable && node.rhs == "extra");
  for (const auto& child : node.children)
    if (node_mentions_extra(child)) return true;
  return false;
}

}  // namespace

const std::string* MarkerEnvironment::find(std::string_view variable) const {
  for (const auto& [name, canonical] : kVariables) {
    if (name != variable) continue;
    if (canonical == "implementation_name") return &implementation_name;
    if (canonical == "implementation_version") return &implementation_version;
    if (canonical == "os_name") return &os_name;
    if (canonical == "platform_machine") return &platform_machine;
    if (canonical == "platform_python_implementation") return &platform_python_implementation;
    if (canonical == "platform_release") return &platform_release;
    if (canonical == "platform_system") return &platform_system;
    if (canonical == "platform_version") return &platform_version;
    if (canonical == "python_full_version") return &python_full_version;
    if (canonical == "python_version") return &python_version;
    if (canonical == "sys_platform") return &sys_platform;
  }
  return nullptr;
}

Result<Marker> Marker::parse(std::string_view text) {
  if (text.size() > kMaxMarkerLength)
    return fail(Errc::InvalidInput, "invalid marker '" + std::string(text.substr(0, 64)) +
                                        "...': longer than " + std::to_string(kMaxMarkerLength) +
                                        " characters");
  Marker marker;
  ENVB_ASSIGN_OR_RETURN(marker.root_, Parser(text).parse());
  return marker;
}

Result<bool> Marker::evaluate(const MarkerEnvironment& env, std::string_view extra) const {
  return evaluate_node(root_, env, extra);
}

Result<bool> Marker::evaluate_any(const MarkerEnvironment& env,
                                  const std::vector<std::string>& extras) const {
  if (extras.empty()) return evaluate(env, "");
  for (const auto& extra : extras) {
    ENVB_ASSIGN_OR_RETURN(bool value, evaluate(env, extra));
    if (value) return true;
  }
  return false;
}

bool Marker::mentions_extra() const { return node_mentions_extra(root_); }

std::string Marker::to_string() const { return node_text(root_, false); }

}  // namespace envbuild::conda::pypi
