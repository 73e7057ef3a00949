#include "conda/prefix_replace.hpp"

#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "common/format.hpp"
#include "common/fs.hpp"
#include "common/root_dir.hpp"
#include "conda/internal/mapped_file.hpp"

namespace envbuild::conda {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One change to a file: replace `length` bytes at `offset` by `replacement`.
struct Edit {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string replacement;
};

struct Plan {
  std::vector<Edit> edits;
  RelocationRecord record;
};

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  for (;;) {
    size_t pos = text.find(from, start);
    if (pos == std::string_view::npos) break;
    out.append(text.substr(start, pos - start));
    out.append(to);
    start = pos + from.size();
  }
  out.append(text.substr(start));
  return out;
}

std::string for_target(std::string_view prefix, TargetOs target) {
  std::string out(prefix);
  if (target == TargetOs::Windows)
    for (char& c : out)
      if (c == '\\') c = '/';
  return out;
}

// The first line for a new prefix, from the original one holding the placeholder.
std::string first_line_for(std::string_view original, std::string_view placeholder,
                           std::string_view new_prefix, TargetOs target) {
  std::string escaped = "#!" + replace_all(new_prefix, " ", "\\ ");
  std::string line = replace_all(original, "#!" + std::string(placeholder), escaped);
  line = replace_all(line, placeholder, new_prefix);
  return fix_long_shebang(line, target);
}

/// A first line that runs an interpreter inside the prefix: "#!<placeholder>/...". Only such a
/// line is rewritten as a whole by the shebang rules (and recorded as a template); a placeholder
/// elsewhere in a first line is an ordinary occurrence.
bool is_prefix_shebang(std::string_view line, std::string_view placeholder) {
  return line.starts_with("#!") && line.substr(2).starts_with(placeholder) &&
         line.size() > 2 + placeholder.size() && line[2 + placeholder.size()] == '/';
}

/// A prefix shebang that can be recorded as a template: one line (no NUL or CR), of bounded
/// length. The planner templates only these and validate_record() accepts only these, so what
/// the builder records always passes envrun's check; any other first line is ordinary text.
bool is_shebang_template(std::string_view line, std::string_view placeholder) {
  return line.size() <= kMaxShebangTemplateLength && is_prefix_shebang(line, placeholder) &&
         line.find_first_of(std::string_view("\0\n\r", 3)) == std::string_view::npos;
}

Error changed_error(const RelocationRecord& record, uint64_t offset, std::string_view old_prefix) {
  return fail(Errc::Integrity, record.path + ": expected the prefix '" + std::string(old_prefix) +
                                   "' at offset " + std::to_string(offset) +
                                   "; the file changed since it was patched")
      .with_hint("relocate with the prefix the file was last moved to, or reinstall the package");
}

Result<std::optional<Plan>> plan_text(std::string_view view, const PrefixReplacement& r) {
  const std::string& placeholder = r.placeholder;
  std::string new_prefix = for_target(r.new_prefix, r.target);
  Plan plan;
  plan.record.file_mode = FileMode::Text;
  plan.record.target = r.target;
  plan.record.placeholder = placeholder;
  plan.record.room = placeholder.size();
  int64_t delta = 0;
  size_t body = 0;
  if (r.target != TargetOs::Windows && view.starts_with("#!")) {
    size_t end = std::min(view.find('\n'), view.size());
    std::string_view first = view.substr(0, end);
    if (is_shebang_template(first, placeholder)) {
      std::string line = first_line_for(first, placeholder, new_prefix, r.target);
      delta = static_cast<int64_t>(line.size()) - static_cast<int64_t>(end);
      plan.record.shebang_template = std::string(first);
      plan.record.first_line_length = line.size();
      plan.edits.push_back({0, end, std::move(line)});
      body = end;
    }
  }
  for (size_t pos = view.find(placeholder, body); pos != std::string_view::npos;
       pos = view.find(placeholder, pos + placeholder.size())) {
    plan.record.offsets.push_back(static_cast<uint64_t>(static_cast<int64_t>(pos) + delta));
    plan.edits.push_back({pos, placeholder.size(), new_prefix});
    delta += static_cast<int64_t>(new_prefix.size()) - static_cast<int64_t>(placeholder.size());
  }
  if (plan.edits.empty()) return std::nullopt;
  return plan;
}

Error too_long_error(std::string_view new_prefix, uint64_t room) {
  return fail(Errc::InvalidInput, "the new prefix '" + std::string(new_prefix) + "' is " +
                                      std::to_string(new_prefix.size()) +
                                      " bytes, longer than the " + std::to_string(room) +
                                      "-byte placeholder of a binary file")
      .with_hint("binary files can only take a prefix of at most " + std::to_string(room) +
                 " bytes; choose a shorter install path");
}

// Builds the C string `segments[0] + prefix + segments[1] + ... ` padded with NULs to `room`.
std::string build_cstring(const std::vector<std::string_view>& segments, std::string_view prefix,
                          uint64_t length, std::vector<uint64_t>& positions) {
  std::string out;
  out.reserve(length);
  positions.clear();
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) {
      positions.push_back(out.size());
      out.append(prefix);
    }
    out.append(segments[i]);
  }
  if (out.size() < length) out.append(length - out.size(), '\0');
  return out;
}

Result<std::optional<Plan>> plan_binary(std::string_view view, const PrefixReplacement& r) {
  const std::string& placeholder = r.placeholder;
  size_t pos = view.find(placeholder);
  if (pos == std::string_view::npos) return std::nullopt;
  if (r.target == TargetOs::Windows)
    return fail(Errc::Unsupported,
                "binary prefix replacement for Windows targets (pyzzer launchers) is not "
                "implemented");
  if (r.new_prefix.size() > placeholder.size())
    return too_long_error(r.new_prefix, placeholder.size());
  if (r.new_prefix.find('\0') != std::string::npos)
    return fail(Errc::InvalidInput, "the new prefix contains a NUL byte");
  Plan plan;
  plan.record.file_mode = FileMode::Binary;
  plan.record.target = r.target;
  plan.record.placeholder = placeholder;
  plan.record.room = placeholder.size();
  while (pos != std::string_view::npos) {
    size_t nul = view.find('\0', pos);
    if (nul == std::string_view::npos) break;  // not a C string: conda leaves it too
    std::string_view cstring = view.substr(pos, nul - pos);
    std::vector<std::string_view> segments;
    size_t start = 0;
    for (size_t hit = cstring.find(placeholder); hit != std::string_view::npos;
         hit = cstring.find(placeholder, start)) {
      segments.push_back(cstring.substr(start, hit - start));
      start = hit + placeholder.size();
    }
    segments.push_back(cstring.substr(start));
    BinaryString string{pos, cstring.size(), {}};
    std::string replacement =
        build_cstring(segments, r.new_prefix, cstring.size(), string.prefix_positions);
    if (replacement.size() != cstring.size())
      return fail(Errc::Internal, "binary replacement changed a string's length");
    plan.edits.push_back({pos, cstring.size(), std::move(replacement)});
    plan.record.strings.push_back(std::move(string));
    pos = view.find(placeholder, nul + 1);
  }
  if (plan.edits.empty()) return std::nullopt;
  return plan;
}

Result<Plan> plan_relocate(std::string_view view, const RelocationRecord& record,
                           std::string_view old_prefix_raw, std::string_view new_prefix_raw) {
  Plan plan;
  plan.record = record;
  std::string old_prefix = for_target(old_prefix_raw, record.target);
  std::string new_prefix = for_target(new_prefix_raw, record.target);
  if (old_prefix.empty()) return fail(Errc::InvalidInput, "relocate: empty old prefix");
  if (record.file_mode == FileMode::Text) {
    int64_t delta = 0;
    if (record.shebang_template) {
      uint64_t end = record.first_line_length;
      if (end > view.size() || (end < view.size() && view[end] != '\n') ||
          view.substr(0, end) != first_line_for(*record.shebang_template, record.placeholder,
                                                old_prefix, record.target))
        return changed_error(record, 0, old_prefix);
      std::string line =
          first_line_for(*record.shebang_template, record.placeholder, new_prefix, record.target);
      delta = static_cast<int64_t>(line.size()) - static_cast<int64_t>(end);
      plan.record.first_line_length = line.size();
      plan.edits.push_back({0, end, std::move(line)});
    }
    plan.record.offsets.clear();
    for (uint64_t offset : record.offsets) {
      if (offset > view.size() || view.substr(offset, old_prefix.size()) != old_prefix)
        return changed_error(record, offset, old_prefix);
      plan.record.offsets.push_back(static_cast<uint64_t>(static_cast<int64_t>(offset) + delta));
      plan.edits.push_back({offset, old_prefix.size(), new_prefix});
      delta += static_cast<int64_t>(new_prefix.size()) - static_cast<int64_t>(old_prefix.size());
    }
    return plan;
  }
  if (new_prefix.size() > record.room) return too_long_error(new_prefix, record.room);
  if (new_prefix.find('\0') != std::string::npos)
    return fail(Errc::InvalidInput, "the new prefix contains a NUL byte");
  plan.record.strings.clear();
  for (const BinaryString& string : record.strings) {
    if (string.offset + string.length > view.size())
      return changed_error(record, string.offset, old_prefix);
    std::string_view region = view.substr(string.offset, string.length);
    std::vector<std::string_view> segments;
    size_t start = 0;
    for (uint64_t position : string.prefix_positions) {
      if (position < start || region.substr(position, old_prefix.size()) != old_prefix)
        return changed_error(record, string.offset + position, old_prefix);
      segments.push_back(region.substr(start, position - start));
      start = position + old_prefix.size();
    }
    size_t end = std::min(region.find('\0', start), region.size());
    segments.push_back(region.substr(start, end - start));
    BinaryString moved{string.offset, string.length, {}};
    std::string replacement =
        build_cstring(segments, new_prefix, string.length, moved.prefix_positions);
    if (replacement.size() != string.length) return too_long_error(new_prefix, record.room);
    plan.edits.push_back({string.offset, string.length, std::move(replacement)});
    plan.record.strings.push_back(std::move(moved));
  }
  return plan;
}

std::string apply_in_memory(std::string_view view, const std::vector<Edit>& edits) {
  std::string out;
  out.reserve(view.size());
  uint64_t previous = 0;
  for (const Edit& edit : edits) {
    out.append(view.substr(previous, edit.offset - previous));
    out.append(edit.replacement);
    previous = edit.offset + edit.length;
  }
  out.append(view.substr(previous));
  return out;
}

Result<void> pwrite_all(int fd, std::string_view data, uint64_t offset, const std::string& shown) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return common::errno_error("pwrite", shown, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return ok();
}

/// Binary edits keep the length: written into the file itself, opened again beneath the root
/// and checked to be the inode that was mapped. A read-only file is made writable for the patch.
Result<void> patch_in_place(const common::RootDir& root, const std::string& relative,
                            const internal::MappedFile& mapped, const std::vector<Edit>& edits) {
  const std::string shown = root.shown(relative);
  const struct stat& st = mapped.stat();
  const bool read_only = (st.st_mode & S_IWUSR) == 0;
  if (read_only && ::fchmod(mapped.fd().get(), (st.st_mode & 07777) | S_IWUSR) != 0)
    return common::errno_error("fchmod", shown, errno);
  auto patched = [&]() -> Result<void> {
    ENVB_ASSIGN_OR_RETURN(common::Fd fd, root.open_regular(relative, O_WRONLY));
    struct stat now {};
    if (::fstat(fd.get(), &now) != 0) return common::errno_error("fstat", shown, errno);
    if (now.st_ino != st.st_ino || now.st_dev != st.st_dev)
      return fail(Errc::Io, shown + ": replaced while it was being relocated");
    for (const Edit& edit : edits)
      ENVB_TRY(pwrite_all(fd.get(), edit.replacement, edit.offset, shown));
    return ok();
  }();
  if (read_only) (void)::fchmod(mapped.fd().get(), st.st_mode & 07777);
  return patched;
}

/// Writes the edited content under a temporary name beside the file and renames it over the
/// file: a new inode with the old mode (plus an owner write bit when the old inode was shared)
/// and mtime. No fsync: callers mark their trees complete with one durable write afterwards.
Result<void> rewrite_beneath(const common::RootDir& root, const std::string& relative,
                             const internal::MappedFile& mapped, const std::vector<Edit>& edits) {
  const std::string shown = root.shown(relative);
  ENVB_ASSIGN_OR_RETURN(common::DirEntry entry, root.parent_of(relative));
  const std::string temp = common::temp_sibling(entry.name).string();
  int raw = ::openat(entry.dir.get(), temp.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return common::errno_error("openat", shown, errno);
  common::Fd out(raw);
  const struct stat& st = mapped.stat();
  auto written = [&]() -> Result<void> {
    std::string_view view = mapped.view();
    auto put = [&](std::string_view data) {
      return out.write_all(std::as_bytes(std::span(data.data(), data.size())), shown);
    };
    uint64_t previous = 0;
    for (const Edit& edit : edits) {
      ENVB_TRY(put(view.substr(previous, edit.offset - previous)));
      ENVB_TRY(put(edit.replacement));
      previous = edit.offset + edit.length;
    }
    ENVB_TRY(put(view.substr(previous)));
    mode_t mode = (st.st_mode & 07777) | (st.st_nlink > 1 ? S_IWUSR : 0);
    if (::fchmod(out.get(), mode) != 0) return common::errno_error("fchmod", shown, errno);
    timespec times[2] = {st.st_atim, st.st_mtim};
    (void)::futimens(out.get(), times);
    if (::renameat(entry.dir.get(), temp.c_str(), entry.dir.get(), entry.name.c_str()) != 0)
      return common::errno_error("rename", shown, errno);
    return ok();
  }();
  if (!written) (void)::unlinkat(entry.dir.get(), temp.c_str(), 0);
  return written;
}

// Writes the plan to `file`, whose current content is `mapped` (install: a private copy).
Result<void> apply_to_file(const fs::path& file, const internal::MappedFile& mapped, FileMode mode,
                           const std::vector<Edit>& edits) {
  if (mode == FileMode::Binary) {
    ENVB_ASSIGN_OR_RETURN(common::Fd fd, common::Fd::open(file.string(), O_WRONLY | O_NOFOLLOW));
    for (const Edit& edit : edits)
      ENVB_TRY(pwrite_all(fd.get(), edit.replacement, edit.offset, file.string()));
    return ok();
  }
  std::string_view view = mapped.view();
  ENVB_ASSIGN_OR_RETURN(common::AtomicFile out,
                        common::AtomicFile::create(file, static_cast<int>(mapped.mode())));
  uint64_t previous = 0;
  for (const Edit& edit : edits) {
    ENVB_TRY(out.write(view.substr(previous, edit.offset - previous)));
    ENVB_TRY(out.write(edit.replacement));
    previous = edit.offset + edit.length;
  }
  ENVB_TRY(out.write(view.substr(previous)));
  // Callers patch files in trees that are marked complete by one durable write afterwards.
  return out.commit_unsynced();
}

}  // namespace

std::string_view to_string(TargetOs os) {
  switch (os) {
    case TargetOs::Linux:
      return "linux";
    case TargetOs::MacOs:
      return "macos";
    case TargetOs::Windows:
      return "windows";
  }
  return "?";
}

TargetOs target_os_for_subdir(std::string_view subdir) {
  if (subdir.starts_with("win-")) return TargetOs::Windows;
  if (subdir.starts_with("osx-")) return TargetOs::MacOs;
  return TargetOs::Linux;
}

size_t max_shebang_length(TargetOs os) {
  return os == TargetOs::MacOs ? 512 : 127;
}

std::string fix_long_shebang(std::string_view line, TargetOs target) {
  if (target == TargetOs::Windows || !line.starts_with("#!")) return std::string(line);
  size_t i = 2;
  while (i < line.size()) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == ' ') {
      i += 2;
    } else if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
      break;
    } else {
      ++i;
    }
  }
  std::string_view executable = line.substr(2, i - 2);
  std::string_view arguments = line.substr(i);
  size_t slash = executable.rfind('/');
  if (executable.empty() || slash == std::string_view::npos) return std::string(line);
  std::string_view directory = executable.substr(0, slash);
  std::string_view name = executable.substr(slash + 1);
  bool too_long = line.size() > max_shebang_length(target);
  bool escaped_space = directory.find("\\ ") != std::string_view::npos;
  if (!too_long && !escaped_space) return std::string(line);
  return "#!/usr/bin/env " + std::string(name) + std::string(arguments);
}

Result<std::optional<PatchedContent>> replace_prefix(std::string_view content,
                                                     const PrefixReplacement& replacement) {
  if (replacement.placeholder.empty())
    return fail(Errc::InvalidInput, "replace_prefix: empty placeholder");
  auto planned = replacement.mode == FileMode::Binary ? plan_binary(content, replacement)
                                                      : plan_text(content, replacement);
  ENVB_ASSIGN_OR_RETURN(std::optional<Plan> plan, std::move(planned));
  if (!plan) return std::nullopt;
  return PatchedContent{apply_in_memory(content, plan->edits), std::move(plan->record)};
}

Result<PatchedContent> relocate_content(std::string_view content, const RelocationRecord& record,
                                        std::string_view old_prefix, std::string_view new_prefix) {
  ENVB_ASSIGN_OR_RETURN(Plan plan, plan_relocate(content, record, old_prefix, new_prefix));
  return PatchedContent{apply_in_memory(content, plan.edits), std::move(plan.record)};
}

Result<std::optional<RelocationRecord>> replace_prefix_in_file(
    const fs::path& file, const PrefixReplacement& replacement,
    std::optional<std::string> record_path) {
  std::string what = "replacing the prefix in " + file.string();
  if (replacement.placeholder.empty())
    return fail(Errc::InvalidInput, "empty placeholder").with_context(what);
  ENVB_ASSIGN_OR_RETURN(internal::MappedFile mapped,
                        internal::MappedFile::open(file.string()).context(what));
  auto planned = replacement.mode == FileMode::Binary ? plan_binary(mapped.view(), replacement)
                                                      : plan_text(mapped.view(), replacement);
  ENVB_ASSIGN_OR_RETURN(std::optional<Plan> plan, std::move(planned).context(what));
  if (!plan) return std::nullopt;
  ENVB_TRY(apply_to_file(file, mapped, replacement.mode, plan->edits).context(what));
  plan->record.path = record_path ? *record_path : file.string();
  return std::optional<RelocationRecord>(std::move(plan->record));
}

Result<RelocationRecord> relocate(const common::RootDir& root, const RelocationRecord& record,
                                  std::string_view old_prefix, std::string_view new_prefix) {
  const std::string shown = root.shown(record.path);
  std::string what = "relocating " + shown + " to " + std::string(new_prefix);
  ENVB_TRY(validate_record(record).context(what));
  ENVB_ASSIGN_OR_RETURN(common::Fd fd, root.open_regular(record.path).context(what));
  ENVB_ASSIGN_OR_RETURN(internal::MappedFile mapped,
                        internal::MappedFile::map(std::move(fd), shown).context(what));
  ENVB_ASSIGN_OR_RETURN(Plan plan,
                        plan_relocate(mapped.view(), record, old_prefix, new_prefix).context(what));
  // A binary file that is ours alone is patched in place (its length never changes); anything
  // else gets a new inode, so a file shared by hard links with a package or layer cache, or with
  // another prefix, is never written through.
  if (record.file_mode == FileMode::Binary && mapped.stat().st_nlink == 1)
    ENVB_TRY(patch_in_place(root, record.path, mapped, plan.edits).context(what));
  else
    ENVB_TRY(rewrite_beneath(root, record.path, mapped, plan.edits).context(what));
  return std::move(plan.record);
}

Result<void> validate_record(const RelocationRecord& record) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::Integrity,
                "relocation record for '" + common::printable(record.path) + "': " + why);
  };
  if (!common::is_safe_relative_path(record.path))
    return bad("the path must stay inside the prefix");
  const std::string& ph = record.placeholder;
  if (ph.empty() || ph.size() > kMaxPlaceholderLength || ph.front() != '/' ||
      ph.find_first_of(std::string_view("\0\n\r", 3)) != std::string::npos)
    return bad("the placeholder must be an absolute path of at most " +
               std::to_string(kMaxPlaceholderLength) + " bytes on one line");
  if (record.room != ph.size()) return bad("its room differs from its placeholder's length");
  if (record.file_mode == FileMode::Text) {
    if (record.shebang_template) {
      const std::string& line = *record.shebang_template;
      if (!is_shebang_template(line, ph))
        return bad("the shebang template must be one line '#!" + ph +
                   "/...' naming an interpreter of the prefix");
    }
    uint64_t previous = record.shebang_template ? record.first_line_length : 0;
    bool first = true;
    for (uint64_t offset : record.offsets) {
      if (!first && offset < previous) return bad("its offsets overlap or are not sorted");
      if (first && offset < previous) return bad("an offset lies inside the shebang line");
      previous = offset + 1;
      first = false;
    }
    return ok();
  }
  if (record.shebang_template || !record.offsets.empty())
    return bad("a binary record holds text fields");
  uint64_t end = 0;
  for (const BinaryString& string : record.strings) {
    if (string.offset < end || string.length > kMaxBinaryStringLength)
      return bad("its strings overlap, are not sorted or are too long");
    end = string.offset + string.length;
    uint64_t position_end = 0;
    for (uint64_t position : string.prefix_positions) {
      if (position < position_end || position > string.length)
        return bad("a prefix position lies outside its string");
      position_end = position + 1;
    }
  }
  return ok();
}

json to_json(const RelocationRecord& record) {
  json j{{"path", record.path},
         {"file_mode", to_string(record.file_mode)},
         {"target", to_string(record.target)},
         {"placeholder", record.placeholder},
         {"room", record.room}};
  if (record.file_mode == FileMode::Text) {
    j["offsets"] = record.offsets;
    if (record.shebang_template) {
      j["shebang_template"] = *record.shebang_template;
      j["first_line_length"] = record.first_line_length;
    }
  } else {
    json strings = json::array();
    for (const auto& s : record.strings)
      strings.push_back(
          {{"offset", s.offset}, {"length", s.length}, {"prefix_positions", s.prefix_positions}});
    j["strings"] = std::move(strings);
  }
  return j;
}

namespace {

/// A count or offset of an untrusted relocation index: a non-negative integer, never a float
/// (nlohmann converts 1e300 to an integer with undefined behaviour) or a negative number.
uint64_t unsigned_at(const json& v, std::string_view key) {
  if (!v.is_number_unsigned())
    throw std::invalid_argument(std::string(key) + " is not a non-negative integer");
  return v.get<uint64_t>();
}

std::vector<uint64_t> unsigned_list_at(const json& v, std::string_view key) {
  if (!v.is_array()) throw std::invalid_argument(std::string(key) + " is not a list");
  std::vector<uint64_t> out;
  out.reserve(v.size());
  for (const json& e : v) out.push_back(unsigned_at(e, key));
  return out;
}

}  // namespace

Result<RelocationRecord> relocation_record_from_json(const json& j) {
  try {
    RelocationRecord record;
    record.path = j.at("path").get<std::string>();
    std::string mode = j.at("file_mode").get<std::string>();
    if (mode != "text" && mode != "binary")
      return fail(Errc::InvalidInput, "relocation record: unknown file_mode '" + mode + "'");
    record.file_mode = mode == "binary" ? FileMode::Binary : FileMode::Text;
    std::string target = j.at("target").get<std::string>();
    if (target == "linux")
      record.target = TargetOs::Linux;
    else if (target == "macos")
      record.target = TargetOs::MacOs;
    else if (target == "windows")
      record.target = TargetOs::Windows;
    else
      return fail(Errc::InvalidInput, "relocation record: unknown target '" + target + "'");
    record.placeholder = j.at("placeholder").get<std::string>();
    record.room = unsigned_at(j.at("room"), "room");
    if (record.file_mode == FileMode::Text) {
      if (j.contains("offsets")) record.offsets = unsigned_list_at(j.at("offsets"), "offsets");
      if (j.contains("shebang_template")) {
        record.shebang_template = j.at("shebang_template").get<std::string>();
        record.first_line_length = unsigned_at(j.at("first_line_length"), "first_line_length");
      }
    } else {
      for (const auto& s : j.at("strings"))
        record.strings.push_back({unsigned_at(s.at("offset"), "offset"),
                                  unsigned_at(s.at("length"), "length"),
                                  unsigned_list_at(s.at("prefix_positions"), "prefix_positions")});
    }
    return record;
  } catch (const json::exception& e) {
    return fail(Errc::InvalidInput, std::string("relocation record: ") + e.what());
  } catch (const std::invalid_argument& e) {
    return fail(Errc::InvalidInput, std::string("relocation record: ") + e.what());
  }
}

}  // namespace envbuild::conda
