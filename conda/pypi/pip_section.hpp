#pragma once

// The `pip:` list of an environment.yml read the way conda hands it to pip (a requirements
// file, run from the environment file's directory): PEP 508 requirement lines, direct
// references to wheels, and the option lines envbuild understands (--index-url,
// --extra-index-url, --find-links, --no-index, --pre, --no-deps, -r FILE, -e / local trees).

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "conda/environment_file.hpp"
#include "conda/pypi/requirement.hpp"

namespace envbuild::conda::pypi {

struct PipOptions {
  std::optional<std::string> index_url;  // --index-url: replaces https://pypi.org/simple
  std::vector<std::string> extra_index_urls;
  std::vector<std::string> find_links;  // URLs, or directories (absolute after parsing)
  bool no_index = false;
  bool pre = false;      // --pre: pre-releases allowed everywhere
  bool no_deps = false;  // --no-deps: the listed requirements only
  bool operator==(const PipOptions&) const = default;
};

/// One thing to install.
struct PipEntry {
  enum class Kind {
    Requirement,  // name[extras] specifiers, or name @ URL (URL of a wheel)
    SourceTree,   // a local directory or an sdist: needs a build backend
    Editable,     // -e: needs a build backend and stays tied to its source
    Vcs,          // git+https://...: needs a checkout and a build backend
  };
  Kind kind = Kind::Requirement;
  Requirement requirement;  // Kind::Requirement (a wheel path or URL becomes `name @ URL`)
  std::string location;     // SourceTree, Editable, Vcs: the path or URL as written
  std::vector<std::string> hashes;  // --hash=sha256:HEX on the line: the file must be one of them
  std::string origin;       // "environment.yml:12" or "requirements.txt:3", for messages
  bool operator==(const PipEntry&) const = default;
};

struct PipSection {
  PipOptions options;
  std::vector<PipEntry> entries;
  /// Non-fatal findings ("environment.yml:9: --trusted-host is ignored: TLS is always ...").
  std::vector<std::string> warnings;
};

struct PipSectionContext {
  /// Relative paths (-r files, find-links directories, wheel paths) are taken from here: the
  /// environment file's directory, as conda runs pip there.
  std::filesystem::path base_dir;
  std::string file_name = "environment.yml";  // for messages
  /// Reads a -r file (default: common::read_file with a 1 MiB bound).
  std::function<Result<std::string>(const std::filesystem::path&)> read_file;
};

/// Parses the lines. Errors (InvalidInput) name the file and line and quote it; an unknown
/// option is an error with the list of known ones. -r files nest up to 8 deep.
Result<PipSection> parse_pip_section(const std::vector<PipRequirement>& lines,
                                     const PipSectionContext& context);

/// A requirements.txt text (comments, `\` continuations, options) as parse_pip_section does for
/// a -r file; `file_name` is used in messages.
Result<PipSection> parse_requirements_text(std::string_view text, const std::string& file_name,
                                           const PipSectionContext& context);

}  // namespace envbuild::conda::pypi
