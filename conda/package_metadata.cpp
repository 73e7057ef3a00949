#include "conda/package_metadata.hpp"

#include <map>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "conda/package_archive.hpp"

namespace envbuild::conda {

using nlohmann::json;

namespace {

std::string get_string(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::vector<std::string> get_strings(const json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return out;
  for (const auto& item : *it)
    if (item.is_string()) out.push_back(item.get<std::string>());
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
    text.remove_suffix(1);
  return text;
}

template <typename F>
void for_each_line(std::string_view text, F&& f) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    f(text.substr(start, end - start));
    start = end + 1;
  }
}

// Splits on whitespace, honouring double quotes (has_prefix fields may be quoted).
Result<std::vector<std::string>> split_fields(std::string_view line) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string field;
    if (line[i] == '"') {
      size_t close = line.find('"', i + 1);
      if (close == std::string_view::npos)
        return fail(Errc::Integrity, "unterminated quote in '" + std::string(line) + "'");
      field = line.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      size_t end = line.find_first_of(" \t", i);
      if (end == std::string_view::npos) end = line.size();
      field = line.substr(i, end - i);
      i = end;
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

}  // namespace

std::string_view to_string(PathType type) {
  switch (type) {
    case PathType::HardLink:
      return "hardlink";
    case PathType::SoftLink:
      return "softlink";
    case PathType::Directory:
      return "directory";
  }
  return "?";
}

std::string_view to_string(FileMode mode) {
  return mode == FileMode::Binary ? "binary" : "text";
}

Result<EntryPoint> EntryPoint::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail(Errc::Integrity, "entry point '" + std::string(text) + "': " + std::string(why) +
                                     " (expected 'name = module:function')");
  };
  auto eq = text.find('=');
  if (eq == std::string_view::npos) return bad("no '='");
  EntryPoint ep;
  ep.command = trim(text.substr(0, eq));
  std::string_view target = trim(text.substr(eq + 1));
  // Extras ("mod:func [extra]") are a setuptools feature conda ignores.
  if (auto bracket = target.find('['); bracket != std::string_view::npos)
    target = trim(target.substr(0, bracket));
  auto colon = target.find(':');
  if (colon == std::string_view::npos) return bad("no ':'");
  ep.module = trim(target.substr(0, colon));
  ep.function = trim(target.substr(colon + 1));
  if (ep.command.empty() || ep.module.empty() || ep.function.empty()) return bad("empty part");
  if (ep.command.find('/') != std::string::npos || ep.command == "." || ep.command == "..")
    return bad("command name is not a plain file name");
  return ep;
}

std::string EntryPoint::to_string() const {
  return command + " = " + module + ":" + function;
}

Result<PackageIndex> parse_index_json(std::string_view text, std::string_view source) {
  ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, source, Errc::Integrity));
  if (!j.is_object()) return fail(Errc::Integrity, std::string(source) + ": not a JSON object");
  PackageIndex index;
  index.name = get_string(j, "name");
  index.version = get_string(j, "version");
  index.build = get_string(j, "build");
  if (index.name.empty() || index.version.empty())
    return fail(Errc::Integrity, std::string(source) + ": missing 'name' or 'version'");
  if (auto it = j.find("build_number"); it != j.end() && it->is_number_integer())
    index.build_number = it->get<int64_t>();
  index.subdir = get_string(j, "subdir");
  if (auto it = j.find("noarch"); it != j.end()) {
    if (it->is_string()) index.noarch = it->get<std::string>();
    // conda-build 2 wrote `"noarch": true` for what became noarch: generic.
    else if (it->is_boolean() && it->get<bool>())
      index.noarch = "generic";
  }
  // Early noarch python packages say so only through "noarch_python": true.
  if (index.noarch.empty()) {
    if (auto it = j.find("noarch_python"); it != j.end() && it->is_boolean() && it->get<bool>())
      index.noarch = "python";
  }
  index.license = get_string(j, "license");
  index.depends = get_strings(j, "depends");
  if (index.depends.empty()) index.depends = get_strings(j, "requires");
  index.constrains = get_strings(j, "constrains");
  if (auto it = j.find("timestamp"); it != j.end() && it->is_number_integer())
    index.timestamp = it->get<int64_t>();
  return index;
}

Result<std::vector<PathEntry>> parse_paths_json(std::string_view text, std::string_view source) {
  ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, source, Errc::Integrity));
  std::string where(source);
  if (!j.is_object() || !j.contains("paths") || !j["paths"].is_array())
    return fail(Errc::Integrity, where + ": no 'paths' array");
  if (auto v = j.find("paths_version"); v != j.end() && v->is_number_integer() && *v != 1)
    return fail(Errc::Unsupported,
                where + ": paths_version " + v->dump() + " (only version 1 is known)");
  std::vector<PathEntry> out;
  out.reserve(j["paths"].size());
  size_t index = 0;
  for (const auto& item : j["paths"]) {
    std::string at = where + ": paths[" + std::to_string(index++) + "]";
    if (!item.is_object()) return fail(Errc::Integrity, at + ": not an object");
    PathEntry entry;
    entry.path = get_string(item, "_path");
    if (!common::is_safe_relative_path(entry.path))
      return fail(Errc::Integrity, at + ": unsafe or missing _path '" + entry.path + "'");
    std::string type = get_string(item, "path_type");
    if (type.empty() || type == "hardlink")
      entry.path_type = PathType::HardLink;
    else if (type == "softlink")
      entry.path_type = PathType::SoftLink;
    else if (type == "directory")
      entry.path_type = PathType::Directory;
    else
      return fail(Errc::Integrity, at + ": unknown path_type '" + type + "'");
    std::string mode = get_string(item, "file_mode");
    if (mode.empty() || mode == "text")
      entry.file_mode = FileMode::Text;
    else if (mode == "binary")
      entry.file_mode = FileMode::Binary;
    else
      return fail(Errc::Integrity, at + ": unknown file_mode '" + mode + "'");
    entry.prefix_placeholder = get_string(item, "prefix_placeholder");
    if (auto it = item.find("no_link"); it != item.end() && it->is_boolean())
      entry.no_link = it->get<bool>();
    entry.sha256 = get_string(item, "sha256");
    if (auto it = item.find("size_in_bytes"); it != item.end() && it->is_number_unsigned())
      entry.size_in_bytes = it->get<uint64_t>();
    out.push_back(std::move(entry));
  }
  return out;
}

Result<std::vector<HasPrefixEntry>> parse_has_prefix(std::string_view text,
                                                     std::string_view source) {
  std::vector<HasPrefixEntry> out;
  std::optional<Error> error;
  size_t line_no = 0;
  for_each_line(text, [&](std::string_view raw) {
    ++line_no;
    if (error) return;
    std::string_view line = trim(raw);
    if (line.empty()) return;
    auto fields = split_fields(line);
    auto where = std::string(source) + ":" + std::to_string(line_no);
    if (!fields) {
      error = std::move(fields).error().with_context(where);
      return;
    }
    HasPrefixEntry entry;
    if (fields->size() == 1) {
      entry.placeholder = kDefaultPlaceholder;
      entry.path = (*fields)[0];
    } else if (fields->size() == 3) {
      entry.placeholder = (*fields)[0];
      const std::string& mode = (*fields)[1];
      if (mode == "text")
        entry.file_mode = FileMode::Text;
      else if (mode == "binary")
        entry.file_mode = FileMode::Binary;
      else {
        error = fail(Errc::Integrity, where + ": unknown mode '" + mode + "'");
        return;
      }
      entry.path = (*fields)[2];
    } else {
      error = fail(Errc::Integrity, where + ": expected 'path' or 'placeholder mode path', got '" +
                                        std::string(line) + "'");
      return;
    }
    out.push_back(std::move(entry));
  });
  if (error) return std::move(*error);
  return out;
}

Result<LinkJson> parse_link_json(std::string_view text, std::string_view source) {
  ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, source, Errc::Integrity));
  LinkJson link;
  if (!j.is_object()) return fail(Errc::Integrity, std::string(source) + ": not a JSON object");
  auto noarch = j.find("noarch");
  if (noarch == j.end() || !noarch->is_object()) return link;
  link.noarch_type = get_string(*noarch, "type");
  for (const std::string& text_ep : get_strings(*noarch, "entry_points")) {
    ENVB_ASSIGN_OR_RETURN(EntryPoint ep, EntryPoint::parse(text_ep).context(std::string(source)));
    link.entry_points.push_back(std::move(ep));
  }
  return link;
}

Result<AboutJson> parse_about_json(std::string_view text, std::string_view source) {
  ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, source, Errc::Integrity));
  if (!j.is_object()) return fail(Errc::Integrity, std::string(source) + ": not a JSON object");
  AboutJson about;
  about.license = get_string(j, "license");
  about.license_family = get_string(j, "license_family");
  about.summary = get_string(j, "summary");
  about.home = get_string(j, "home");
  return about;
}

std::vector<PathEntry> paths_from_legacy(std::string_view files,
                                         const std::vector<HasPrefixEntry>& has_prefix,
                                         std::string_view no_link,
                                         const std::vector<std::string>& symlinks) {
  std::map<std::string, const HasPrefixEntry*, std::less<>> prefixed;
  for (const auto& entry : has_prefix) prefixed[entry.path] = &entry;
  std::map<std::string, bool, std::less<>> copied;
  for_each_line(no_link, [&](std::string_view line) {
    line = trim(line);
    if (!line.empty()) copied[std::string(line)] = true;
  });
  std::map<std::string, bool, std::less<>> links;
  for (const auto& link : symlinks) links[link] = true;
  std::vector<PathEntry> out;
  for_each_line(files, [&](std::string_view line) {
    line = trim(line);
    if (line.empty()) return;
    PathEntry entry;
    entry.path = line;
    if (links.count(line)) entry.path_type = PathType::SoftLink;
    if (auto it = prefixed.find(line); it != prefixed.end()) {
      entry.prefix_placeholder = it->second->placeholder;
      entry.file_mode = it->second->file_mode;
    }
    entry.no_link = copied.count(line) > 0;
    out.push_back(std::move(entry));
  });
  return out;
}

Result<PackageMetadata> read_package_metadata(const std::filesystem::path& package) {
  static constexpr std::string_view kWanted[] = {
      "info/index.json", "info/paths.json", "info/files",     "info/has_prefix",
      "info/no_link",    "info/link.json",  "info/about.json"};
  std::map<std::string, std::string, std::less<>> texts;
  std::string name = package.filename().string();
  ENVB_TRY(walk_package(package, Components::Info,
                        [&](const ArchiveEntry& entry, common::ByteSource& data) -> Result<Walk> {
                          if (entry.type != EntryType::File) return Walk::Continue;
                          bool wanted = false;
                          for (auto w : kWanted) wanted = wanted || entry.path == w;
                          if (!wanted) return Walk::Continue;
                          if (entry.size > kMaxInfoFileBytes)
                            return fail(Errc::Integrity, name + ": " + entry.path + " is " +
                                                             std::to_string(entry.size) +
                                                             " bytes; refusing to read it");
                          common::StringSink sink;
                          ENVB_TRY(common::copy_stream(data, sink));
                          texts[entry.path] = std::move(sink.out);
                          return Walk::Continue;
                        }));
  auto text_of = [&](std::string_view path) -> const std::string* {
    auto it = texts.find(path);
    return it == texts.end() ? nullptr : &it->second;
  };
  PackageMetadata meta;
  const std::string* index = text_of("info/index.json");
  if (!index)
    return fail(Errc::Integrity, name + ": no info/index.json; not a conda package")
        .with_hint("the archive is incomplete or was not built by conda-build/rattler-build");
  ENVB_ASSIGN_OR_RETURN(meta.index, parse_index_json(*index, name + "/info/index.json"));
  if (const std::string* paths = text_of("info/paths.json")) {
    ENVB_ASSIGN_OR_RETURN(meta.paths, parse_paths_json(*paths, name + "/info/paths.json"));
  } else {
    meta.paths_from_legacy = true;
    std::vector<HasPrefixEntry> has_prefix;
    if (const std::string* hp = text_of("info/has_prefix")) {
      ENVB_ASSIGN_OR_RETURN(has_prefix, parse_has_prefix(*hp, name + "/info/has_prefix"));
    }
    std::vector<std::string> symlinks;
    ENVB_TRY(walk_package(package, Components::Pkg,
                          [&](const ArchiveEntry& entry, common::ByteSource&) -> Result<Walk> {
                            if (entry.type == EntryType::Symlink) symlinks.push_back(entry.path);
                            return Walk::Continue;
                          }));
    const std::string* files = text_of("info/files");
    const std::string* no_link = text_of("info/no_link");
    meta.paths = paths_from_legacy(files ? *files : std::string(), has_prefix,
                                   no_link ? *no_link : std::string(), symlinks);
  }
  if (const std::string* link = text_of("info/link.json")) {
    ENVB_ASSIGN_OR_RETURN(meta.link, parse_link_json(*link, name + "/info/link.json"));
  }
  if (const std::string* about = text_of("info/about.json")) {
    ENVB_ASSIGN_OR_RETURN(meta.about, parse_about_json(*about, name + "/info/about.json"));
  }
  return meta;
}

json to_json(const PathEntry& entry) {
  json j{{"_path", entry.path}, {"path_type", to_string(entry.path_type)}};
  if (!entry.prefix_placeholder.empty()) {
    j["prefix_placeholder"] = entry.prefix_placeholder;
    j["file_mode"] = to_string(entry.file_mode);
  }
  if (entry.no_link) j["no_link"] = true;
  if (!entry.sha256.empty()) j["sha256"] = entry.sha256;
  if (entry.size_in_bytes) j["size_in_bytes"] = *entry.size_in_bytes;
  return j;
}

json to_json(const PackageIndex& index) {
  json j{{"name", index.name},
         {"version", index.version},
         {"build", index.build},
         {"build_number", index.build_number},
         {"subdir", index.subdir},
         {"depends", index.depends},
         {"constrains", index.constrains},
         {"license", index.license}};
  if (!index.noarch.empty()) j["noarch"] = index.noarch;
  if (index.timestamp) j["timestamp"] = *index.timestamp;
  return j;
}

}  // namespace envbuild::conda
