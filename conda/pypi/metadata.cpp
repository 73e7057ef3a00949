#include "conda/pypi/metadata.hpp"

#include <algorithm>

#include "common/ascii.hpp"
#include "conda/internal/text.hpp"
#include "conda/pypi/name.hpp"

namespace envbuild::conda::pypi {

namespace {

constexpr size_t kMaxHeaderBlock = size_t{8} << 20;
constexpr size_t kMaxRecordRows = 1'000'000;

struct Header {
  std::string name;  // lowercased
  std::string value;
};

// RFC 822 headers up to the first empty line; continuation lines (leading whitespace) are
// joined to the previous value with a newline, as the email parser does.
std::vector<Header> read_headers(std::string_view text) {
  std::vector<Header> out;
  size_t start = 0;
  const size_t end_of_block = std::min(text.size(), kMaxHeaderBlock);
  while (start < end_of_block) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (line.empty()) break;  // the body starts
    if ((line.front() == ' ' || line.front() == '\t') && !out.empty()) {
      out.back().value += "\n" + std::string(internal::trim(line));
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not a header: ignored, as email does
    out.push_back({common::ascii_lower(internal::trim(line.substr(0, colon))),
                   std::string(internal::trim(line.substr(colon + 1)))});
  }
  return out;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_dotted(std::string_view s) {
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (!is_identifier(s.substr(start, dot == std::string_view::npos ? dot : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

Result<CoreMetadata> parse_core_metadata(std::string_view text, std::string_view origin) {
  CoreMetadata out;
  std::string version_text;
  const std::string where(origin);
  for (auto& h : read_headers(text)) {
    if (h.name == "name") {
      out.name = h.value;
    } else if (h.name == "version") {
      version_text = h.value;
    } else if (h.name == "requires-dist") {
      auto r = Requirement::parse(h.value);
      if (!r) return std::move(r).error().with_context(where + ": Requires-Dist");
      out.requires_dist.push_back(std::move(*r));
    } else if (h.name == "requires-python") {
      auto s = SpecifierSet::parse(h.value);
      if (!s) return std::move(s).error().with_context(where + ": Requires-Python");
      out.requires_python = std::move(*s);
    } else if (h.name == "provides-extra") {
      out.provides_extra.push_back(normalize_name(h.value));
    }
  }
  if (!is_valid_name(out.name))
    return fail(Errc::InvalidInput, where + ": no valid Name header ('" + out.name + "')");
  auto version = Version::parse(version_text);
  if (!version) return std::move(version).error().with_context(where + ": Version");
  out.version = std::move(*version);
  return out;
}

Result<WheelInfo> parse_wheel_info(std::string_view text, std::string_view origin) {
  WheelInfo info;
  bool seen_version = false;
  for (const auto& h : read_headers(text)) {
    if (h.name == "wheel-version") {
      info.wheel_version = h.value;
      seen_version = true;
    } else if (h.name == "root-is-purelib") {
      info.root_is_purelib = common::ascii_lower(h.value) == "true";
    }
  }
  if (!seen_version)
    return fail(Errc::InvalidInput, std::string(origin) + ": no Wheel-Version");
  if (!info.wheel_version.starts_with("1."))
    return fail(Errc::Unsupported, std::string(origin) + ": Wheel-Version " + info.wheel_version +
                                       " (envbuild installs wheel format 1.x)");
  return info;
}

Result<std::vector<ScriptEntryPoint>> parse_entry_points(std::string_view text,
                                                         std::string_view origin) {
  std::vector<ScriptEntryPoint> out;
  std::string section;
  size_t start = 0, line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = internal::trim(text.substr(start, end - start));
    start = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      section = std::string(internal::trim(line.substr(1, line.find(']') - 1)));
      continue;
    }
    if (section != "console_scripts" && section != "gui_scripts") continue;
    auto where = [&] { return std::string(origin) + ":" + std::to_string(line_no); };
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return fail(Errc::InvalidInput, where() + ": expected 'name = module:object'");
    ScriptEntryPoint ep;
    ep.gui = section == "gui_scripts";
    ep.name = std::string(internal::trim(line.substr(0, eq)));
    std::string_view target = internal::trim(line.substr(eq + 1));
    target = internal::trim(target.substr(0, target.find('[')));  // extras do not matter here
    auto colon = target.find(':');
    ep.module = std::string(internal::trim(target.substr(0, colon)));
    if (colon != std::string_view::npos) ep.object = std::string(internal::trim(target.substr(colon + 1)));
    if (ep.name.empty() || ep.name.find_first_of("/\\") != std::string::npos || ep.name == "." ||
        ep.name == ".." || internal::first_control_char(ep.name) != std::string::npos)
      return fail(Errc::InvalidInput, where() + ": script name '" + ep.name + "' is not a file name");
    if (!is_dotted(ep.module) || (!ep.object.empty() && !is_dotted(ep.object)))
      return fail(Errc::InvalidInput, where() + ": '" + std::string(target) +
                                          "' is not module:object with dotted names");
    out.push_back(std::move(ep));
  }
  return out;
}

std::string entry_point_launcher(const ScriptEntryPoint& ep) {
  // pypa/installer's script template: imports the module, then calls the attribute chain.
  std::string import_name = ep.object.substr(0, ep.object.find('.'));
  std::string call = ep.object.empty() ? "" : ep.object;
  if (ep.object.empty())
    return "# -*- coding: utf-8 -*-\nimport runpy\nimport sys\nif __name__ == \"__main__\":\n"
           "    sys.exit(runpy.run_module(\"" + ep.module + "\", run_name=\"__main__\"))\n";
  return "# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom " + ep.module + " import " +
         import_name +
         "\nif __name__ == \"__main__\":\n"
         "    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n"
         "    sys.exit(" + call + "())\n";
}

std::string record_hash_from_hex(std::string_view hex) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::vector<unsigned char> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    bytes.push_back(static_cast<unsigned char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  std::string out = "sha256=";
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = bytes[i] << 16;
    if (i + 1 < bytes.size()) n |= bytes[i + 1] << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (i + 1 < bytes.size()) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::string to_record_text(const std::vector<RecordRow>& rows) {
  auto field = [](const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  std::string out;
  for (const auto& r : rows)
    out += field(r.path) + "," + field(r.hash) + "," + (r.size ? std::to_string(*r.size) : "") + "\n";
  return out;
}

Result<std::vector<RecordRow>> parse_record(std::string_view text, std::string_view origin) {
  std::vector<RecordRow> rows;
  std::vector<std::string> fields(1);
  bool quoted = false;
  auto finish_row = [&]() -> Result<void> {
    if (fields.size() == 1 && fields[0].empty()) return ok();
    if (rows.size() >= kMaxRecordRows)
      return fail(Errc::InvalidInput, std::string(origin) + ": more than 1000000 rows");
    RecordRow row;
    row.path = fields[0];
    if (fields.size() > 1) row.hash = fields[1];
    if (fields.size() > 2 && !fields[2].empty()) {
      uint64_t size = 0;
      for (char c : fields[2]) {
        if (c < '0' || c > '9' || size > (uint64_t{1} << 50))
          return fail(Errc::InvalidInput, std::string(origin) + ": bad size '" + fields[2] + "'");
        size = size * 10 + static_cast<uint64_t>(c - '0');
      }
      row.size = size;
    }
    rows.push_back(std::move(row));
    return ok();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n') {
      ENVB_TRY(finish_row());
      fields.assign(1, std::string());
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  ENVB_TRY(finish_row());
  return rows;
}

}  // namespace envbuild::conda::pypi
