#include "builder/image/squashfs_build.hpp"

#include <chrono>
#include <map>

#include "builder/image/internal/image_plan.hpp"
#include "common/clock.hpp"
#include "common/hash.hpp"
#include "conda/image_contract.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

/// The OCI config's Env, Entrypoint, Cmd and labels, as image.json keeps them.
conda::ImageInfo image_info_of(const oci::ConfigChanges& config) {
  conda::ImageInfo info;
  for (const auto& [key, value] : config.env) info.env.push_back(key + "=" + value);
  info.entrypoint = config.entrypoint;
  info.cmd = config.cmd;
  info.labels = config.labels;
  return info;
}

}  // namespace

Result<SquashfsBuild> build_environment_squashfs(const EnvironmentSpec& env,
                                                 const ImageBuildOptions& o,
                                                 const SquashfsOutputOptions& output_options,
                                                 const fs::path& output) {
  if (o.base != nullptr)
    return fail(Errc::InvalidInput, "--base does not apply to a squashfs: output")
        .with_hint("a SquashFS image holds the environment only; envrun runs it on the host");
  ENVB_ASSIGN_OR_RETURN(internal::Prepared p, internal::prepare(env, o));
  auto start = common::Clock::now();
  // Every package staged (patched copies of its placeholder files): the image reads the files of
  // each package from its plan.
  for (size_t k = 0; k < p.plans.size(); ++k) ENVB_TRY(internal::stage_plan(p, o, k));
  p.build.plans_staged = p.plans.size();

  std::map<std::string, squashfs::Entry> entries;  // path -> entry; later packages win
  auto add = [&](const std::vector<PlannedFile>& files) {
    for (const auto& f : files)
      entries.insert_or_assign(f.path, f.kind == PlannedFile::Kind::Symlink
                                           ? squashfs::Entry::symlink(f.path, f.target)
                                           : squashfs::Entry::file(f.path, f.source));
  };
  for (const auto& plan : p.plans) add(plan.files);
  // The pip: section's wheels, planned after the packages (none overwrites a package's file).
  for (const auto& wheel : p.wheels) add(wheel.content.files);
  for (auto& [path, content] : internal::environment_files_of(p, env, o))
    entries.insert_or_assign(path, squashfs::Entry::file_with_content(path, std::move(content)));
  const oci::ConfigChanges config = internal::environment_config(p.build, env, o);
  const std::string info_path(conda::kImageInfoPath);
  entries.insert_or_assign(info_path, squashfs::Entry::file_with_content(
                                          info_path, conda::to_json_string(image_info_of(config))));

  std::vector<squashfs::Entry> list;
  list.reserve(entries.size());
  for (auto& [_, e] : entries) list.push_back(std::move(e));
  squashfs::WriteOptions write;
  write.compression = output_options.compression;
  write.level = output_options.level;
  write.mtime = internal::layer_mtime(o);
  write.jobs = o.jobs;
  SquashfsBuild out;
  ENVB_ASSIGN_OR_RETURN(
      out.written,
      squashfs::write_image(std::move(list), write, output).context("writing " + output.string()));
  ENVB_ASSIGN_OR_RETURN(out.sha256, common::sha256_file(output.string()));
  out.write_ms = common::ms_since(start);
  out.build = std::move(p.build);
  return out;
}

}  // namespace envbuild::builder
