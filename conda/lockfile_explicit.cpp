#include "conda/lockfile_explicit.hpp"

#include "common/hash.hpp"
#include "conda/internal/text.hpp"

namespace envbuild::conda {
namespace {

Error at(std::string_view file, size_t line, size_t column, std::string message) {
  return fail(Errc::InvalidInput, std::string(file) + ":" + std::to_string(line) + ":" +
                                      std::to_string(column) + ": " + std::move(message));
}

bool is_comment_or_blank(std::string_view line) {
  std::string_view t = internal::trim(line);
  return t.empty() || t.front() == '#';
}

}  // namespace

std::string_view ExplicitEntry::file_name() const {
  std::string_view u = url;
  return u.substr(u.rfind('/') + 1);
}

std::string_view ExplicitEntry::subdir() const {
  std::string_view u = url;
  u = u.substr(0, u.rfind('/'));
  size_t slash = u.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : u.substr(slash + 1);
}

std::string_view ExplicitEntry::channel() const {
  std::string_view u = url;
  u = u.substr(0, u.rfind('/'));
  size_t slash = u.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : u.substr(0, slash);
}

std::optional<std::string> ExplicitFile::platform() const {
  for (const auto& line : header) {
    std::string_view t = internal::trim(line);
    if (!t.starts_with("#")) continue;
    t = internal::trim(t.substr(1));
    if (t.starts_with("platform:")) return std::string(internal::trim(t.substr(9)));
  }
  return std::nullopt;
}

Result<ExplicitFile> parse_explicit_file(std::string_view text, std::string_view file) {
  ExplicitFile out;
  out.final_newline = text.empty() || text.back() == '\n';
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  bool seen_marker = false;
  std::vector<std::string> pending;
  size_t line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      return at(file, line_no, line.size(), "CRLF line endings are not supported");
    }
    if (!seen_marker) {
      if (internal::trim(line) == "@EXPLICIT") {
        seen_marker = true;
      } else if (is_comment_or_blank(line)) {
        out.header.emplace_back(line);
      } else {
        return std::move(at(file, line_no, 1, "expected '@EXPLICIT' before the first URL"))
            .with_hint("an explicit file starts with comments, then a line '@EXPLICIT'");
      }
      continue;
    }
    if (is_comment_or_blank(line)) {
      pending.emplace_back(line);
      continue;
    }
    std::string_view t = internal::trim(line);
    size_t column = static_cast<size_t>(t.data() - line.data()) + 1;
    ExplicitEntry entry;
    std::string_view url = t;
    if (size_t hash = t.find('#'); hash != std::string_view::npos) {
      url = t.substr(0, hash);
      std::string_view fragment = t.substr(hash + 1);
      if (fragment.starts_with("sha256:")) {
        fragment.remove_prefix(7);
        if (!common::is_lower_hex(fragment, 64)) {
          return at(file, line_no, column + hash + 8, "expected 64 lowercase hex digits");
        }
        entry.sha256 = std::string(fragment);
      } else if (common::is_lower_hex(fragment, 32)) {
        entry.md5 = std::string(fragment);
      } else if (common::is_lower_hex(fragment, 64)) {
        entry.sha256 = std::string(fragment);
      } else {
        return at(file, line_no, column + hash + 1,
                  "expected '#<md5>' or '#sha256:<hex>' after the URL");
      }
    }
    if (url.find("://") == std::string_view::npos) {
      return at(file, line_no, column, "expected a package URL");
    }
    if (!url.ends_with(".conda") && !url.ends_with(".tar.bz2")) {
      return at(file, line_no, column + url.size() - 1,
                "expected a URL ending in .conda or .tar.bz2");
    }
    entry.url = std::string(url);
    entry.comments_before = std::move(pending);
    pending.clear();
    out.entries.push_back(std::move(entry));
  }
  if (!seen_marker) {
    return std::move(at(file, line_no, 1, "no '@EXPLICIT' line"))
        .with_hint("plain URL lists are not explicit files");
  }
  out.trailer = std::move(pending);
  return out;
}

std::string to_string(const ExplicitFile& file) {
  std::vector<std::string> lines = file.header;
  lines.emplace_back("@EXPLICIT");
  for (const auto& entry : file.entries) {
    for (const auto& c : entry.comments_before) lines.push_back(c);
    std::string line = entry.url;
    if (!entry.md5.empty()) {
      line += "#" + entry.md5;
    } else if (!entry.sha256.empty()) {
      line += "#sha256:" + entry.sha256;
    }
    lines.push_back(std::move(line));
  }
  for (const auto& c : file.trailer) lines.push_back(c);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (i + 1 < lines.size() || file.final_newline) out += '\n';
  }
  return out;
}

}  // namespace envbuild::conda
