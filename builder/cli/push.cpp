// `envbuild push SRC DEST` and `envbuild pull SRC DEST`: copy an image to or from a registry,
// with skopeo's reference syntax (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE,
// docker://HOST/REPO[:TAG|@sha256:...]).

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "builder/cli/cli.hpp"
#include "builder/cli/progress.hpp"
#include "common/format.hpp"
#include "oci/reference.hpp"
#include "oci/registry/copy.hpp"

namespace envbuild::builder::cli {

namespace {

struct CopyFlags {
  std::string src;
  std::string dest;
  std::string creds;
  bool tls_verify = true;
  std::string cert_dir;
  std::string platform;
  size_t jobs = 4;
  std::vector<std::string> mount_from;
  bool quiet = false;
};

Result<int> run_copy(const CopyFlags& flags, bool pushing) {
  ENVB_ASSIGN_OR_RETURN(oci::ImageReference src, oci::ImageReference::parse(flags.src));
  ENVB_ASSIGN_OR_RETURN(oci::ImageReference dest, oci::ImageReference::parse(flags.dest));
  if (pushing && dest.transport != oci::Transport::Registry)
    return fail(Errc::InvalidInput,
                "push: DEST must be docker://HOST/REPO[:TAG], got '" + flags.dest + "'");
  if (!pushing && src.transport != oci::Transport::Registry)
    return fail(Errc::InvalidInput,
                "pull: SRC must be docker://HOST/REPO[:TAG], got '" + flags.src + "'");
  oci::registry::CopyOptions options;
  options.registry.transport.tls.verify = flags.tls_verify;
  options.registry.transport.tls.cert_dir = flags.cert_dir;
  options.registry.jobs = std::max<size_t>(1, flags.jobs);
  options.registry.mount_from = flags.mount_from;
  if (!flags.creds.empty()) {
    ENVB_ASSIGN_OR_RETURN(options.registry.credentials, oci::registry::parse_creds(flags.creds));
  }
  if (!flags.platform.empty()) {
    ENVB_ASSIGN_OR_RETURN(options.platform, oci::parse_platform(flags.platform));
  }
  // A push shows what it sends (the total is not known before the source is read).
  std::shared_ptr<common::TransferProgress> progress;
  if (pushing)
    progress = attach_push_progress(options.registry.on_bytes, options.registry.on_blob,
                                    "pushing " + flags.dest, 0, flags.quiet);
  ENVB_ASSIGN_OR_RETURN(oci::registry::TransferReport r,
                        oci::registry::copy_image(src, dest, options));
  if (progress) progress->finish();
  if (!flags.quiet) {
    std::cout << (pushing ? "pushed " : "pulled ") << flags.dest << "@"
              << r.manifest.digest.to_string() << ": " << r.blobs << " blobs (" << r.uploaded
              << (pushing ? " uploaded, " : " downloaded, ") << r.existed << " already there, "
              << r.mounted << " mounted), " << human_bytes(r.blob_bytes) << ", " << r.requests
              << " requests in " << r.elapsed.count() / 1000.0 << " s\n";
  }
  return 0;
}

void add_copy_command(CLI::App& app, Outcome& outcome, bool pushing) {
  auto flags = std::make_shared<CopyFlags>();
  CLI::App* cmd = app.add_subcommand(
      pushing ? "push" : "pull",
      pushing ? "Copy an image to a registry (skopeo copy syntax: SRC oci:DIR:TAG, oci-archive:F, "
                "docker-archive:F; DEST docker://HOST/REPO:TAG)"
              : "Copy an image from a registry (SRC docker://HOST/REPO[:TAG|@DIGEST]; DEST "
                "oci:DIR:TAG, oci-archive:F, docker-archive:F or docker://)");
  cmd->add_option("SRC", flags->src, "source image reference")->required();
  cmd->add_option("DEST", flags->dest, "destination image reference")->required();
  cmd->add_option("--creds", flags->creds,
                  "USERNAME:PASSWORD for the registry (default: podman/docker stored logins)");
  cmd->add_option("--tls-verify", flags->tls_verify,
                  "verify TLS certificates (false: also falls back to plain http)")
      ->default_str("true");
  cmd->add_option("--cert-dir", flags->cert_dir,
                  "directory with *.crt CAs and *.cert/*.key client certificates");
  cmd->add_option("--platform", flags->platform, "OS/ARCH[/VARIANT] to pick from an index");
  cmd->add_option("-j,--jobs", flags->jobs, "parallel blob transfers")->default_str("4");
  cmd->add_option("--mount-from", flags->mount_from,
                  "other repository on the same registry to mount blobs from");
  cmd->add_flag("-q,--quiet", flags->quiet, "print nothing on success");
  cmd->callback([flags, &outcome, pushing] { outcome.result = run_copy(*flags, pushing); });
}

}  // namespace

void register_push(CLI::App& app, Outcome& outcome) {
  add_copy_command(app, outcome, true);
}
void register_pull(CLI::App& app, Outcome& outcome) {
  add_copy_command(app, outcome, false);
}

}  // namespace envbuild::builder::cli
