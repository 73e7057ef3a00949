#include "conda/version_spec.hpp"

#include <cctype>

#include "conda/internal/text.hpp"

namespace envbuild::conda {

class VersionSpecParser {
 public:
  explicit VersionSpecParser(std::string_view text) : text_(text) {}

  Result<VersionSpec> parse() {
    skip_space();
    if (pos_ == text_.size()) return VersionSpec{};
    ENVB_ASSIGN_OR_RETURN(VersionSpec spec, parse_or());
    skip_space();
    if (pos_ != text_.size()) {
      return error(pos_, text_[pos_] == ')' ? "unbalanced ')'" : "unexpected character");
    }
    return spec;
  }

 private:
  using Kind = VersionSpec::Kind;
  using Op = VersionSpec::Op;

  Error error(size_t pos, std::string_view problem) const {
    return internal::parse_error("invalid version spec", text_, pos, problem);
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static VersionSpec join(Kind kind, std::vector<VersionSpec> items) {
    if (items.size() == 1) return std::move(items.front());
    VersionSpec spec;
    spec.kind_ = kind;
    for (auto& item : items) {
      if (item.kind_ == kind) {  // flatten `(a,b),c`
        for (auto& child : item.children_) spec.children_.push_back(std::move(child));
      } else {
        spec.children_.push_back(std::move(item));
      }
    }
    return spec;
  }

  Result<VersionSpec> parse_or() {
    std::vector<VersionSpec> items;
    do {
      ENVB_ASSIGN_OR_RETURN(VersionSpec item, parse_and());
      items.push_back(std::move(item));
    } while (eat('|'));
    return join(Kind::Or, std::move(items));
  }

  Result<VersionSpec> parse_and() {
    std::vector<VersionSpec> items;
    do {
      ENVB_ASSIGN_OR_RETURN(VersionSpec item, parse_term());
      items.push_back(std::move(item));
    } while (eat(','));
    return join(Kind::And, std::move(items));
  }

  Result<VersionSpec> parse_term() {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      // Real specs nest one or two levels; the cap keeps hostile input off the stack's end.
      if (++depth_ > kMaxDepth) return error(pos_, "parentheses nested too deeply");
      ++pos_;
      ENVB_ASSIGN_OR_RETURN(VersionSpec inner, parse_or());
      --depth_;
      if (!eat(')')) return error(pos_, "expected ')'");
      return inner;
    }
    return parse_predicate();
  }

  Result<VersionSpec> parse_predicate() {
    size_t start = pos_;
    std::string_view op;
    for (std::string_view candidate : {"==", "!=", "<=", ">=", "~=", "<", ">", "="}) {
      if (text_.substr(pos_).starts_with(candidate)) {
        op = candidate;
        break;
      }
    }
    pos_ += op.size();
    skip_space();
    size_t version_start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '|' && text_[pos_] != ')' &&
           text_[pos_] != '(' && !std::isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
    std::string_view word = text_.substr(version_start, pos_ - version_start);
    if (word.empty()) {
      return error(version_start, op.empty()
                                      ? "expected a version"
                                      : "expected a version after '" + std::string(op) + "'");
    }
    if (word.find_first_of("<>=!~") != std::string_view::npos) {
      return error(version_start + word.find_first_of("<>=!~"), "unexpected operator");
    }
    if (word == "*" || word == ".*") {
      if (op.empty() || op == "=" || op == "==" || op == ">=") return VersionSpec{};
      return error(start, "'*' cannot follow '" + std::string(op) + "'");
    }
    // A trailing `*` (or `.*`) means "starts with"; a `*` elsewhere is a glob.
    bool trailing_star = false;
    std::string_view stem = word;
    if (stem.ends_with('*')) {
      trailing_star = true;
      while (stem.ends_with('*')) stem.remove_suffix(1);
      while (stem.ends_with('.')) stem.remove_suffix(1);
    }
    VersionSpec::Predicate predicate;
    if (stem.find('*') != std::string_view::npos) {
      if (!op.empty()) return error(start, "a glob cannot follow an operator");
      for (size_t i = 0; i < word.size(); ++i) {
        char c = word[i];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
            c != '*' && c != '+' && c != '!') {
          return error(version_start + i, "unexpected character");
        }
      }
      predicate.op = Op::Glob;
      predicate.glob = std::string(word);
      return VersionSpec::from_predicate(std::move(predicate));
    }
    auto version = Version::parse(stem);
    if (!version) {
      return internal::rebase_error(version.error(), "invalid version spec", text_, version_start);
    }
    predicate.version = std::move(*version);
    if (op.empty() || op == "==") {
      predicate.op = trailing_star ? Op::StartsWith : Op::Eq;
    } else if (op == "=") {
      predicate.op = Op::StartsWith;
    } else if (op == "!=") {
      predicate.op = trailing_star ? Op::NotStartsWith : Op::Ne;
    } else if (op == "~=") {
      if (trailing_star) return error(start, "'~=' cannot take a '*'");
      predicate.op = Op::Compatible;
    } else if (op == "<") {
      predicate.op = Op::Lt;
    } else if (op == "<=") {
      predicate.op = Op::Le;
    } else if (op == ">") {
      predicate.op = Op::Gt;
    } else {
      predicate.op = Op::Ge;
    }
    return VersionSpec::from_predicate(std::move(predicate));
  }

  std::string_view text_;
  size_t pos_ = 0;
  static constexpr int kMaxDepth = 32;
  int depth_ = 0;
};

Result<VersionSpec> VersionSpec::parse(std::string_view text) {
  return VersionSpecParser(text).parse();
}

VersionSpec VersionSpec::from_predicate(Predicate predicate) {
  VersionSpec spec;
  spec.kind_ = Kind::Leaf;
  spec.predicate_ = std::move(predicate);
  return spec;
}

const Version* VersionSpec::exact() const noexcept {
  return kind_ == Kind::Leaf && predicate_.op == Op::Eq ? &predicate_.version : nullptr;
}

std::string VersionSpec::to_string() const {
  return to_string(false);
}

std::string VersionSpec::to_string(bool inside_and) const {
  switch (kind_) {
    case Kind::Any:
      return "*";
    case Kind::Leaf: {
      const std::string& v = predicate_.version.to_string();
      switch (predicate_.op) {
        case Op::Eq:
          return "==" + v;
        case Op::Ne:
          return "!=" + v;
        case Op::Lt:
          return "<" + v;
        case Op::Le:
          return "<=" + v;
        case Op::Gt:
          return ">" + v;
        case Op::Ge:
          return ">=" + v;
        case Op::StartsWith:
          return v + ".*";
        case Op::NotStartsWith:
          return "!=" + v + ".*";
        case Op::Compatible:
          return "~=" + v;
        case Op::Glob:
          return predicate_.glob;
      }
      return {};
    }
    case Kind::And:
    case Kind::Or: {
      std::string out;
      for (const auto& child : children_) {
        if (!out.empty()) out += kind_ == Kind::And ? "," : "|";
        out += child.to_string(kind_ == Kind::And);
      }
      return kind_ == Kind::Or && inside_and ? "(" + out + ")" : out;
    }
  }
  return {};
}

bool VersionSpec::matches(const Version& v) const {
  switch (kind_) {
    case Kind::Any:
      return true;
    case Kind::And:
      for (const auto& child : children_) {
        if (!child.matches(v)) return false;
      }
      return true;
    case Kind::Or:
      for (const auto& child : children_) {
        if (child.matches(v)) return true;
      }
      return false;
    case Kind::Leaf:
      break;
  }
  const Version& p = predicate_.version;
  switch (predicate_.op) {
    case Op::Eq:
      return v == p;
    case Op::Ne:
      return v != p;
    case Op::Lt:
      return v < p;
    case Op::Le:
      return v <= p;
    case Op::Gt:
      return v > p;
    case Op::Ge:
      return v >= p;
    case Op::StartsWith:
      return v.starts_with(p);
    case Op::NotStartsWith:
      return !v.starts_with(p);
    case Op::Compatible:
      return v.compatible_with(p);
    case Op::Glob:
      return internal::glob_match(predicate_.glob, v.to_string());
  }
  return false;
}

}  // namespace envbuild::conda
