#include "conda/pypi/wheel_archive.hpp"

#include <optional>

#include "conda/package_archive.hpp"

namespace envbuild::conda::pypi {

Result<DistInfoFile> read_dist_info_file(const std::filesystem::path& wheel,
                                         std::string_view file, size_t max_bytes) {
  const std::string name = wheel.filename().string();
  std::optional<DistInfoFile> found;
  std::optional<Error> problem;
  ENVB_TRY(walk_package(wheel, Components::All,
                        [&](const ArchiveEntry& entry, common::ByteSource& data) -> Result<Walk> {
                          auto slash = entry.path.find('/');
                          if (slash == std::string::npos || entry.type != EntryType::File)
                            return Walk::Continue;
                          std::string_view dir = std::string_view(entry.path).substr(0, slash);
                          if (!dir.ends_with(".dist-info") || entry.path.substr(slash + 1) != file)
                            return Walk::Continue;
                          if (found) {
                            problem = fail(Errc::Integrity, name + ": two .dist-info directories ('" +
                                                                found->dist_info + "', '" +
                                                                std::string(dir) + "')");
                            return Walk::Stop;
                          }
                          if (entry.size > max_bytes) {
                            problem = fail(Errc::Integrity, name + ": " + entry.path + " is " +
                                                                std::to_string(entry.size) +
                                                                " bytes, over the limit");
                            return Walk::Stop;
                          }
                          DistInfoFile out{std::string(dir), {}};
                          std::string buffer(64 * 1024, '\0');
                          for (;;) {
                            ENVB_ASSIGN_OR_RETURN(
                                size_t n, data.read(std::as_writable_bytes(std::span(buffer))));
                            if (n == 0) break;
                            if (out.content.size() + n > max_bytes) {
                              problem = fail(Errc::Integrity,
                                             name + ": " + entry.path + " is over the limit");
                              return Walk::Stop;
                            }
                            out.content.append(buffer.data(), n);
                          }
                          found = std::move(out);
                          return Walk::Continue;
                        }));
  if (problem) return std::move(*problem);
  if (!found)
    return fail(Errc::Integrity, name + ": no .dist-info/" + std::string(file) + " in the wheel");
  return std::move(*found);
}

}  // namespace envbuild::conda::pypi
