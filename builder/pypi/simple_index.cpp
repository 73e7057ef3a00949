#include "builder/pypi/simple_index.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

#include "builder/solve/channel.hpp"
#include "common/hash.hpp"
#include "common/http.hpp"

namespace envbuild::builder::pypi {

namespace {

constexpr int kMaxJsonDepth = 64;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals_at(std::string_view text, size_t pos, std::string_view word) {
  if (pos + word.size() > text.size()) return false;
  for (size_t i = 0; i < word.size(); ++i)
    if (lower(text[pos + i]) != word[i]) return false;
  return true;
}

// &amp; &lt; &gt; &quot; &#39; &#NN; &#xHH; (what index generators write in attributes).
std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += '&';
      continue;
    }
    std::string_view name = text.substr(i + 1, semi - i - 1);
    if (name == "amp") out += '&';
    else if (name == "lt") out += '<';
    else if (name == "gt") out += '>';
    else if (name == "quot") out += '"';
    else if (name == "apos") out += '\'';
    else if (name.size() > 1 && name[0] == '#') {
      unsigned long code = 0;
      bool hex = name[1] == 'x' || name[1] == 'X';
      try {
        code = std::stoul(std::string(name.substr(hex ? 2 : 1)), nullptr, hex ? 16 : 10);
      } catch (...) {
        out += std::string(text.substr(i, semi - i + 1));
        i = semi;
        continue;
      }
      if (code < 0x80 && code > 0) out += static_cast<char>(code);
      else out += '?';  // nothing in a file name or hash needs more
    } else {
      out += std::string(text.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

// Splits "url#sha256=hex" into the URL and the hash (other fragments are dropped).
void split_fragment(std::string& url, std::string& sha256) {
  auto hash = url.find('#');
  if (hash == std::string::npos) return;
  std::string fragment = url.substr(hash + 1);
  url.resize(hash);
  if (fragment.starts_with("sha256=")) {
    std::string hex = fragment.substr(7);
    for (char& c : hex) c = lower(c);
    if (common::is_lower_hex(hex, 64)) sha256 = hex;
  }
}

struct UrlParts {
  std::string scheme;    // "https://"
  std::string userinfo;  // "user:pass", or empty
  std::string host;      // "host:port"
  std::string rest;      // "/path?query"
};

std::optional<UrlParts> split_url(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::nullopt;
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string_view authority = url.substr(start, end == std::string_view::npos ? end : end - start);
  size_t at = authority.rfind('@');
  UrlParts parts;
  parts.scheme = std::string(url.substr(0, start));
  if (at != std::string_view::npos) parts.userinfo = std::string(authority.substr(0, at));
  parts.host = std::string(at == std::string_view::npos ? authority : authority.substr(at + 1));
  if (end != std::string_view::npos) parts.rest = std::string(url.substr(end));
  return parts;
}

// An absolute URL for a link on a page. Credentials in a link are dropped; a link on the page's
// own host (same scheme) gets the page's credentials in redacted form (`user:***@`), which a
// download puts back (builder/solve/channel.hpp with_credentials); a link to another host gets none.
std::string absolute_link(std::string_view page_url, std::string_view href) {
  std::string resolved = resolve_url(page_url, href);
  auto link = split_url(resolved);
  if (!link) return resolved;
  std::string bare = link->scheme + link->host + link->rest;
  auto page = split_url(common::redact_url(page_url));
  if (!page || page->userinfo.empty() || page->scheme != link->scheme || page->host != link->host)
    return bare;
  return link->scheme + page->userinfo + "@" + link->host + link->rest;
}

// A page's links are untrusted: only http(s) URLs are kept, and file:// ones only on a local
// page (find-links directory); anything else (a scheme-less or malformed URL, which would read as
// a local path) is dropped, so a remote index can never make us read a file of this machine.
std::vector<DistributionFile> only_fetchable(std::vector<DistributionFile> files,
                                             std::string_view page_url) {
  const bool local_page = page_url.starts_with("file://");
  std::erase_if(files, [&](const DistributionFile& f) {
    const auto parts = split_url(f.url);
    const bool web = parts && (parts->scheme == "https://" || parts->scheme == "http://") &&
                     !parts->host.empty();
    return !(web || (local_page && f.url.starts_with("file://")));
  });
  return files;
}

}  // namespace

std::string filename_of(std::string_view url) {
  std::string_view path = url.substr(0, url.find_first_of("?#"));
  auto slash = path.rfind('/');
  return percent_decode(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string percent_decode(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

Result<std::vector<DistributionFile>> parse_simple_json(std::string_view body,
                                                        std::string_view page_url) {
  const std::string page = common::redact_url(page_url);
  if (body.size() > kMaxPageBytes)
    return fail(Errc::InvalidInput, page + ": project page larger than 64 MiB");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(body, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > kMaxJsonDepth) throw std::length_error("nested deeper than 64 levels");
      return true;
    });
  } catch (const std::exception& e) {
    return fail(Errc::InvalidInput, page + ": not a PEP 691 JSON page: " + e.what());
  }
  std::vector<DistributionFile> out;
  if (!json.is_object() || !json.contains("files") || !json["files"].is_array())
    return fail(Errc::InvalidInput, page + ": not a PEP 691 JSON page: no 'files' list");
  for (const auto& f : json["files"]) {
    if (!f.is_object() || !f.contains("url") || !f["url"].is_string() ||
        !f.contains("filename") || !f["filename"].is_string())
      return fail(Errc::InvalidInput, page + ": a file entry without 'url' and 'filename'");
    DistributionFile file;
    std::string url = f["url"].get<std::string>();
    split_fragment(url, file.sha256);
    file.url = absolute_link(page_url, url);
    file.filename = f["filename"].get<std::string>();
    if (auto h = f.find("hashes"); h != f.end() && h->is_object()) {
      if (auto s = h->find("sha256"); s != h->end() && s->is_string()) {
        std::string hex = s->get<std::string>();
        for (char& c : hex) c = lower(c);
        if (common::is_lower_hex(hex, 64)) file.sha256 = hex;
      }
    }
    if (auto r = f.find("requires-python"); r != f.end() && r->is_string())
      file.requires_python = r->get<std::string>();
    if (auto y = f.find("yanked"); y != f.end())
      file.yanked = (y->is_boolean() && y->get<bool>()) || y->is_string();
    for (const char* key : {"core-metadata", "dist-info-metadata", "data-dist-info-metadata"}) {
      auto m = f.find(key);
      if (m == f.end()) continue;
      if (m->is_boolean()) file.has_metadata = m->get<bool>();
      if (m->is_object()) {
        file.has_metadata = true;
        if (auto s = m->find("sha256"); s != m->end() && s->is_string()) {
          std::string hex = s->get<std::string>();
          if (common::is_lower_hex(hex, 64)) file.metadata_sha256 = hex;
        }
      }
      break;
    }
    out.push_back(std::move(file));
  }
  return only_fetchable(std::move(out), page_url);
}

namespace {

// The attributes of one start tag beginning at `pos` (just after "<a" or "<base"); `end`
// is set after the '>'. Unquoted and quoted values; names lowercased.
std::vector<std::pair<std::string, std::string>> read_attributes(std::string_view html, size_t pos,
                                                                 size_t& end) {
  std::vector<std::pair<std::string, std::string>> attrs;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  while (pos < html.size()) {
    while (pos < html.size() && (is_space(html[pos]) || html[pos] == '/')) ++pos;
    if (pos >= html.size() || html[pos] == '>') break;
    size_t name_start = pos;
    while (pos < html.size() && !is_space(html[pos]) && html[pos] != '=' && html[pos] != '>') ++pos;
    std::string name;
    for (char c : html.substr(name_start, pos - name_start)) name += lower(c);
    while (pos < html.size() && is_space(html[pos])) ++pos;
    std::string value;
    if (pos < html.size() && html[pos] == '=') {
      ++pos;
      while (pos < html.size() && is_space(html[pos])) ++pos;
      if (pos < html.size() && (html[pos] == '"' || html[pos] == '\'')) {
        char quote = html[pos++];
        size_t close = html.find(quote, pos);
        if (close == std::string_view::npos) close = html.size();
        value = decode_entities(html.substr(pos, close - pos));
        pos = close + 1;
      } else {
        size_t start = pos;
        while (pos < html.size() && !is_space(html[pos]) && html[pos] != '>') ++pos;
        value = decode_entities(html.substr(start, pos - start));
      }
    }
    if (attrs.size() < 64) attrs.emplace_back(std::move(name), std::move(value));
  }
  end = pos < html.size() ? pos + 1 : html.size();
  return attrs;
}

const std::string* attribute(const std::vector<std::pair<std::string, std::string>>& attrs,
                             std::string_view name) {
  for (const auto& [k, v] : attrs)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace

Result<std::vector<DistributionFile>> parse_simple_html(std::string_view body,
                                                        std::string_view page_url) {
  if (body.size() > kMaxPageBytes)
    return fail(Errc::InvalidInput, common::redact_url(page_url) + ": project page larger than 64 MiB");
  std::string base(page_url);
  std::vector<DistributionFile> out;
  size_t pos = 0;
  while ((pos = body.find('<', pos)) != std::string_view::npos) {
    ++pos;
    if (body.substr(pos, 3) == "!--") {  // a comment: skip it whole
      size_t close = body.find("-->", pos);
      pos = close == std::string_view::npos ? body.size() : close + 3;
      continue;
    }
    const bool is_base = iequals_at(body, pos, "base") && pos + 4 < body.size() &&
                         !std::isalnum(static_cast<unsigned char>(body[pos + 4]));
    const bool is_anchor = iequals_at(body, pos, "a") && pos + 1 < body.size() &&
                           !std::isalnum(static_cast<unsigned char>(body[pos + 1]));
    if (!is_base && !is_anchor) continue;
    size_t end = pos;
    auto attrs = read_attributes(body, pos + (is_base ? 4 : 1), end);
    pos = end;
    const std::string* href = attribute(attrs, "href");
    if (!href || href->empty()) continue;
    if (is_base) {
      base = resolve_url(page_url, *href);
      continue;
    }
    DistributionFile file;
    std::string url = *href;
    split_fragment(url, file.sha256);
    file.url = absolute_link(base, url);
    file.filename = filename_of(file.url);
    if (file.filename.empty()) continue;
    if (const auto* r = attribute(attrs, "data-requires-python")) file.requires_python = *r;
    if (attribute(attrs, "data-yanked")) file.yanked = true;
    const std::string* metadata = attribute(attrs, "data-core-metadata");
    if (!metadata) metadata = attribute(attrs, "data-dist-info-metadata");
    if (metadata && *metadata != "false") {
      file.has_metadata = true;
      if (metadata->starts_with("sha256=") && common::is_lower_hex(metadata->substr(7), 64))
        file.metadata_sha256 = metadata->substr(7);
    }
    out.push_back(std::move(file));
  }
  return only_fetchable(std::move(out), page_url);
}

}  // namespace envbuild::builder::pypi
