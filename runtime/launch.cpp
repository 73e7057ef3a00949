#include "runtime/launch.hpp"

#include "oci/reference.hpp"
#include "runtime/cache.hpp"
#include "runtime/internal/launch_env.hpp"
#include "runtime/prefix_dir.hpp"
#include "runtime/squashfs_image.hpp"

namespace envbuild::runtime {

RunFailure run_in_image(const std::string& image, std::vector<std::string> command,
                        const RunOptions& options) {
  if (auto file = squashfs_argument(image))
    return run_squashfs_image(*file, std::move(command), options);
  if (is_prefix_directory(image)) {
    Cache cache(options.cache_root);  // the host probe's cache
    if (auto checked = cache.check_root(); !checked)
      return internal::failure_of(std::move(checked).error());
    auto env = open_prefix_directory(image);
    if (!env) return internal::failure_of(std::move(env).error());
    return internal::launch_materialized(std::move(*env), std::move(command), options,
                                         cache.root());
  }
  auto ref = oci::ImageReference::parse(image);
  if (!ref) return internal::failure_of(std::move(ref).error());
  Cache cache(options.cache_root);
  UnpackOptions unpack_options;
  unpack_options.precheck = [&](const std::vector<std::string>& requirements) {
    return internal::enforce_host_check(requirements, options, cache.root());
  };  // before any layer is read
  unpack_options.store = options.store;
  auto env = cache.materialize(*ref, unpack_options);
  if (!env) return internal::failure_of(std::move(env).error());
  if (!env->info.squashfs.empty()) {
    env = cache.ready_to_run(std::move(*env));
    if (!env) return internal::failure_of(std::move(env).error());
  }
  return internal::launch_materialized(std::move(*env), std::move(command), options, cache.root());
}

}  // namespace envbuild::runtime
