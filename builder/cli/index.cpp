// `envbuild index DIR`: write repodata.json (+ .zst) for a local channel directory.

#include <iostream>

#include "builder/cli/cli.hpp"
#include "builder/solve/index.hpp"

namespace envbuild::builder::cli {

namespace {

struct IndexCliOptions {
  std::string dir;
  bool no_zst = false;
  bool quiet = false;
};

Result<int> run_index(const IndexCliOptions& o) {
  IndexOptions options;
  options.write_zst = !o.no_zst;
  ENVB_ASSIGN_OR_RETURN(auto subdirs,
                        index_channel(o.dir, options).context("indexing channel " + o.dir));
  for (const auto& s : subdirs) {
    for (const auto& w : s.warnings) std::cerr << "warning: " << w << "\n";
    if (!o.quiet)
      std::cout << s.subdir << ": " << s.packages << " .tar.bz2 + " << s.conda_packages
                << " .conda\n";
  }
  return 0;
}

}  // namespace

void register_index(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<IndexCliOptions>();
  CLI::App* cmd = app.add_subcommand("index", "Write repodata.json for a local channel directory");
  cmd->add_option("dir", options->dir, "channel directory (holds linux-64/, noarch/, ...)")
      ->required();
  cmd->add_flag("--no-zst", options->no_zst, "do not write repodata.json.zst");
  cmd->add_flag("-q,--quiet", options->quiet, "print nothing but errors");
  cmd->callback([options, &outcome] { outcome.result = run_index(*options); });
}

}  // namespace envbuild::builder::cli
