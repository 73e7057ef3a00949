#include "conda/pypi/pip_section.hpp"

#include <array>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "conda/internal/text.hpp"
#include "conda/pypi/name.hpp"
#include "conda/pypi/tags.hpp"

namespace envbuild::conda::pypi {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxIncludeDepth = 8;
constexpr size_t kMaxLines = 100'000;
constexpr size_t kMaxRequirementsFile = size_t{1} << 20;

constexpr std::array<std::string_view, 13> kKnownOptions = {
    "--index-url", "-i",       "--extra-index-url", "--find-links", "-f",
    "--no-index",  "--pre",    "--no-deps",         "-r",           "--requirement",
    "-e",          "--editable", "--only-binary"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; }

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

// pip drops a comment that starts a line or follows whitespace.
std::string_view strip_comment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || is_space(line[i - 1]))) return line.substr(0, i);
  return line;
}

bool has_scheme(std::string_view text) {
  auto colon = text.find("://");
  if (colon == std::string_view::npos || colon == 0) return false;
  for (char c : text.substr(0, colon))
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '-' || c == '.'))
      return false;
  return true;
}

bool is_vcs(std::string_view text) {
  for (std::string_view p : {"git+", "hg+", "svn+", "bzr+"})
    if (text.starts_with(p)) return true;
  return false;
}

// pip's rule, roughly: a leading '.', '/' or '~', or a single word with a '/' in it or an
// archive's extension, is a path; anything else is a PEP 508 requirement.
bool looks_like_path(std::string_view text) {
  if (text.starts_with(".") || text.starts_with("/") || text.starts_with("~")) return true;
  if (text.find_first_of(" \t;") != std::string_view::npos) return false;
  return text.find('/') != std::string_view::npos || text.ends_with(".whl") ||
         text.ends_with(".tar.gz") || text.ends_with(".zip");
}

std::string last_segment(std::string_view url) {
  std::string_view path = url.substr(0, url.find_first_of("?#"));
  auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

class SectionParser {
 public:
  explicit SectionParser(const PipSectionContext& context) : context_(context) {}

  // One logical line (continuations already joined) of `file` in directory `dir`.
  Result<void> line(std::string_view raw, const std::string& origin, const fs::path& dir,
                    size_t depth) {
    if (++lines_ > kMaxLines)
      return fail(Errc::InvalidInput, origin + ": more than " + std::to_string(kMaxLines) +
                                          " pip requirement lines");
    std::string_view text = internal::trim(strip_comment(raw));
    if (text.empty()) return ok();
    if (text.front() == '-') return option(text, origin, dir, depth);
    return requirement(text, origin, dir);
  }

  Result<void> text(std::string_view content, const std::string& file, const fs::path& dir,
                    size_t depth) {
    std::string logical;
    size_t line_no = 0, first_line = 0;
    size_t start = 0;
    while (start <= content.size()) {
      size_t end = content.find('\n', start);
      if (end == std::string_view::npos) end = content.size();
      std::string_view piece = content.substr(start, end - start);
      if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
      ++line_no;
      if (logical.empty()) first_line = line_no;
      // A trailing backslash joins the next line (pip's requirements-file syntax).
      if (!piece.empty() && piece.back() == '\\') {
        logical.append(piece.substr(0, piece.size() - 1));
      } else {
        logical.append(piece);
        ENVB_TRY(line(logical, file + ":" + std::to_string(first_line), dir, depth));
        logical.clear();
      }
      start = end + 1;
    }
    if (!logical.empty())
      ENVB_TRY(line(logical, file + ":" + std::to_string(first_line), dir, depth));
    return ok();
  }

  PipSection take() { return std::move(section_); }

 private:
  Error error(const std::string& origin, std::string_view text, std::string message) const {
    return fail(Errc::InvalidInput, origin + ": '" + std::string(text) + "': " + message);
  }

  std::string absolute(const fs::path& dir, const std::string& path) const {
    if (has_scheme(path)) return path;
    fs::path p = path;
    if (path.starts_with("~/"))
      if (const char* home = std::getenv("HOME")) p = fs::path(home) / path.substr(2);
    return (p.is_absolute() ? p : dir / p).lexically_normal().string();
  }

  Result<void> option(std::string_view text, const std::string& origin, const fs::path& dir,
                      size_t depth) {
    std::vector<std::string> args = words(text);
    std::string name = args.front();
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos && name.starts_with("--")) {
      value = name.substr(eq + 1);
      name.resize(eq);
      args.erase(args.begin());
    } else {
      args.erase(args.begin());
      if (!args.empty()) {
        value = args.front();
        args.erase(args.begin());
      }
    }
    // Short options glued to their value: -rfile.txt, -ihttps://...
    if (name.size() > 2 && name[1] != '-' && value.empty()) {
      value = name.substr(2);
      name.resize(2);
    }
    auto need_value = [&]() -> Result<void> {
      if (value.empty()) return error(origin, text, name + " needs a value");
      if (!args.empty()) return error(origin, text, "unexpected '" + args.front() + "'");
      return ok();
    };
    auto no_value = [&]() -> Result<void> {
      if (!value.empty()) return error(origin, text, name + " takes no value");
      return ok();
    };
    PipOptions& o = section_.options;
    if (name == "--index-url" || name == "-i") {
      ENVB_TRY(need_value());
      o.index_url = value;
    } else if (name == "--extra-index-url") {
      ENVB_TRY(need_value());
      o.extra_index_urls.push_back(value);
    } else if (name == "--find-links" || name == "-f") {
      ENVB_TRY(need_value());
      o.find_links.push_back(absolute(dir, value));
    } else if (name == "--no-index") {
      ENVB_TRY(no_value());
      o.no_index = true;
    } else if (name == "--pre") {
      ENVB_TRY(no_value());
      o.pre = true;
    } else if (name == "--no-deps") {
      ENVB_TRY(no_value());
      o.no_deps = true;
    } else if (name == "--only-binary" || name == "--prefer-binary") {
      // Wheels only is what envbuild always does.
    } else if (name == "--trusted-host") {
      section_.warnings.push_back(origin + ": --trusted-host is ignored: TLS is always verified");
    } else if (name == "-r" || name == "--requirement") {
      ENVB_TRY(need_value());
      return include(value, origin, dir, depth);
    } else if (name == "-e" || name == "--editable") {
      ENVB_TRY(need_value());
      PipEntry entry;
      entry.kind = PipEntry::Kind::Editable;
      entry.location = absolute(dir, value);
      entry.origin = origin;
      section_.entries.push_back(std::move(entry));
    } else if (name == "--no-binary") {
      return error(origin, text, "--no-binary asks for builds from source, which envbuild never runs")
          .with_hint("remove it: envbuild installs wheels only");
    } else {
      Error e = error(origin, text, "unknown pip option '" + name + "'");
      if (auto guess = internal::did_you_mean(name, kKnownOptions))
        return std::move(e).with_hint("did you mean '" + *guess + "'?");
      return std::move(e).with_hint(
          "known: --index-url, --extra-index-url, --find-links, --no-index, --pre, --no-deps, "
          "-r FILE, -e PATH");
    }
    return ok();
  }

  Result<void> include(const std::string& file, const std::string& origin, const fs::path& dir,
                       size_t depth) {
    if (has_scheme(file))
      return fail(Errc::Unsupported, origin + ": -r " + file + ": requirements files by URL are "
                                                  "not supported")
          .with_hint("download it next to the environment file and give its path");
    if (depth + 1 > kMaxIncludeDepth)
      return fail(Errc::InvalidInput, origin + ": -r " + file + ": requirements files nest deeper "
                                                  "than " + std::to_string(kMaxIncludeDepth));
    fs::path path = absolute(dir, file);
    auto content = context_.read_file ? context_.read_file(path)
                                      : common::read_file(path, kMaxRequirementsFile);
    if (!content) return std::move(content).error().with_context(origin + ": -r " + file);
    return text(*content, file, path.parent_path(), depth + 1);
  }

  Result<void> requirement(std::string_view text, const std::string& origin, const fs::path& dir) {
    PipEntry entry;
    entry.origin = origin;
    // Per-requirement options: `pkg==1.0 --hash=sha256:...`.
    std::string_view spec = text;
    if (auto opt = text.find(" --"); opt != std::string_view::npos) {
      spec = internal::trim(text.substr(0, opt));
      for (const auto& word : words(text.substr(opt))) {
        if (!word.starts_with("--hash=sha256:"))
          return error(origin, text, "unsupported option '" + word + "' on a requirement line")
              .with_hint("only --hash=sha256:<hex> is understood here");
        std::string hex = word.substr(14);
        if (!common::is_lower_hex(hex, 64))
          return error(origin, text, "'" + word + "' is not a sha256 hash");
        entry.hashes.push_back(hex);
      }
    }
    const bool reference = spec.find(" @ ") != std::string_view::npos ||
                            spec.find("@ ") != std::string_view::npos;
    if (!reference && (is_vcs(spec) || has_scheme(spec) || looks_like_path(spec))) {
      std::string location = std::string(spec);
      if (is_vcs(spec)) {
        entry.kind = PipEntry::Kind::Vcs;
        entry.location = location;
      } else if (last_segment(location).ends_with(".whl")) {
        // A wheel by path or URL: its name and version are in its file name.
        auto wheel = WheelFilename::parse(last_segment(location));
        if (!wheel) return error(origin, text, wheel.error().message());
        entry.requirement.name = normalize_name(wheel->name);
        entry.requirement.url = has_scheme(location) ? location : "file://" + absolute(dir, location);
      } else {
        entry.kind = PipEntry::Kind::SourceTree;
        entry.location = has_scheme(location) ? location : absolute(dir, location);
      }
      section_.entries.push_back(std::move(entry));
      return ok();
    }
    auto parsed = Requirement::parse(spec);
    if (!parsed) return std::move(parsed).error().with_context(origin);
    entry.requirement = std::move(*parsed);
    const std::string& url = entry.requirement.url;
    if (!url.empty()) {
      if (is_vcs(url)) {
        entry.kind = PipEntry::Kind::Vcs;
        entry.location = url;
      } else if (!last_segment(url).ends_with(".whl")) {
        entry.kind = PipEntry::Kind::SourceTree;
        entry.location = url.starts_with("file://") ? url.substr(7) : url;
      }
    }
    section_.entries.push_back(std::move(entry));
    return ok();
  }

  const PipSectionContext& context_;
  PipSection section_;
  size_t lines_ = 0;
};

}  // namespace

Result<PipSection> parse_pip_section(const std::vector<PipRequirement>& lines,
                                     const PipSectionContext& context) {
  SectionParser parser(context);
  for (const auto& line : lines)
    ENVB_TRY(parser.line(line.text, context.file_name + ":" + std::to_string(line.line),
                         context.base_dir, 0));
  return parser.take();
}

Result<PipSection> parse_requirements_text(std::string_view text, const std::string& file_name,
                                           const PipSectionContext& context) {
  SectionParser parser(context);
  ENVB_TRY(parser.text(text, file_name, context.base_dir, 0));
  return parser.take();
}

}  // namespace envbuild::conda::pypi
