#include "conda/internal/yaml.hpp"

#include <optional>
#include <vector>

namespace envbuild::conda::internal {

namespace {

// environment.yml files are a few KiB; the largest conda-lock.yml files (a CUDA environment for
// four platforms) a few MiB.
constexpr size_t kMaxYamlBytes = size_t{64} << 20;
// Real files nest 4 to 6 levels. yaml-cpp parses (and its users walk) a document with one
// stack frame per level, and gives up only at 2000 levels, too deep for a thread's stack
// under a sanitizer.
constexpr size_t kMaxYamlDepth = 100;

struct Position {
  size_t line = 0;  // 1-based
  size_t column = 0;
};

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

/// Estimates, without parsing, how deeply `text` nests collections, and returns where it first
/// goes beyond `limit`. The estimate never falls short of yaml-cpp's: each line counts its block
/// indentation levels, its leading "- " and "? " indicators (one more level each: "- - - x") and
/// the flow collections open on it ("[", "{"). Quoted scalars, comments and block scalars
/// (`|`, `>`) are skipped, so brackets inside them do not count.
class NestingScan {
 public:
  explicit NestingScan(size_t limit) : limit_(limit) {}

  std::optional<Position> beyond(std::string_view text) {
    size_t start = 0;
    for (size_t line_no = 1; start <= text.size(); ++line_no) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      if (auto column = scan_line(text.substr(start, end - start)))
        return Position{line_no, *column + 1};
      start = end + 1;
    }
    return std::nullopt;
  }

 private:
  /// The column where the line goes beyond the limit, if it does.
  std::optional<size_t> scan_line(std::string_view line) {
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    const bool empty = indent == line.size() || line[indent] == '#' || line[indent] == '\r';
    if (block_scalar_indent_) {
      if (empty || indent > *block_scalar_indent_) return std::nullopt;  // the scalar's text
      block_scalar_indent_.reset();
    }
    size_t i = 0;
    size_t base = indents_.size();
    // Where the line's first node starts, after its "- " indicators: a block scalar on this
    // line holds the lines indented deeper than that (deeper than its parent node in YAML's
    // terms, which for "- |" is further left: skipping fewer lines only counts more).
    size_t node_column = indent;
    if (quote_ == 0 && flow_ == 0) {
      if (empty) return std::nullopt;
      while (!indents_.empty() && indents_.back() >= indent) indents_.pop_back();
      indents_.push_back(indent);
      base = indents_.size();
      for (i = indent; i < line.size() && (line[i] == '-' || line[i] == '?') &&
                       (i + 1 == line.size() || is_blank(line[i + 1]));) {
        ++base;
        for (++i; i < line.size() && is_blank(line[i]);) ++i;
      }
      if (base > limit_) return i;
      node_column = i;
    }
    bool node_start = true;  // a node may begin here (a quote or a bracket opens one)
    for (; i < line.size(); ++i) {
      const char c = line[i];
      if (quote_ != 0) {
        if (quote_ == '"' && c == '\\') {
          ++i;
        } else if (c == quote_) {
          if (quote_ == '\'' && i + 1 < line.size() && line[i + 1] == '\'')
            ++i;  // ''
          else
            quote_ = 0;
        }
        continue;
      }
      if (is_blank(c) || c == '\r') continue;
      if (c == '#' && (i == 0 || is_blank(line[i - 1]))) break;
      if (node_start && (c == '\'' || c == '"')) {
        quote_ = c;
        node_start = false;
      } else if ((c == '[' || c == '{') && (node_start || flow_ > 0)) {
        if (base + ++flow_ > limit_) return i;
        node_start = true;
      } else if ((c == ']' || c == '}') && flow_ > 0) {
        --flow_;
        node_start = false;
      } else if ((c == ',' && flow_ > 0) ||
                 (c == ':' && (i + 1 == line.size() || is_blank(line[i + 1]) || flow_ > 0))) {
        node_start = true;
      } else if ((c == '|' || c == '>') && node_start && flow_ == 0) {
        block_scalar_indent_ = node_column;
        break;
      } else {
        node_start = false;
      }
    }
    return std::nullopt;
  }

  size_t limit_;
  std::vector<size_t> indents_;  // columns of the open block levels, innermost last
  size_t flow_ = 0;              // open flow collections
  char quote_ = 0;               // the quote of a scalar that goes on to the next line
  std::optional<size_t> block_scalar_indent_;  // in a | or > scalar: see node_column
};

}  // namespace

Error yaml_error(std::string_view file, const YAML::Mark& mark, std::string message) {
  std::string where(file);
  if (!mark.is_null()) {
    where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return fail(Errc::InvalidInput, where + ": " + std::move(message));
}

Result<YAML::Node> load_yaml(std::string_view text, std::string_view file) {
  if (text.size() > kMaxYamlBytes)
    return fail(Errc::InvalidInput, std::string(file) + ": " + std::to_string(text.size()) +
                                        " bytes, more than the " + std::to_string(kMaxYamlBytes) +
                                        " a YAML file may have; refusing to read it");
  if (auto deep = NestingScan(kMaxYamlDepth).beyond(text))
    return fail(Errc::InvalidInput,
                std::string(file) + ":" + std::to_string(deep->line) + ":" +
                    std::to_string(deep->column) + ": collections nested more than " +
                    std::to_string(kMaxYamlDepth) + " levels deep; refusing to read it");
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return yaml_error(file, e.mark, "invalid YAML: " + e.msg);
  }
}

Result<std::string> scalar(const YAML::Node& node, std::string_view file, std::string_view what) {
  if (!node.IsScalar()) {
    return yaml_error(file, node.Mark(), std::string(what) + " must be a string");
  }
  return node.Scalar();
}

Result<std::string> optional_scalar(const YAML::Node& node, std::string_view file,
                                    std::string_view what) {
  if (!node || node.IsNull()) return std::string();
  return scalar(node, file, what);
}

Result<std::vector<std::string>> scalar_list(const YAML::Node& node, std::string_view file,
                                             std::string_view what) {
  std::vector<std::string> out;
  if (!node || node.IsNull()) return out;
  if (!node.IsSequence()) return yaml_error(file, node.Mark(), std::string(what) + " must be a list");
  for (const auto& item : node) {
    ENVB_ASSIGN_OR_RETURN(std::string s, optional_scalar(item, file, what));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace envbuild::conda::internal
