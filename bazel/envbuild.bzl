"""Bazel rules that build conda environments into OCI images with envbuild.

    load("@envbuild//bazel:envbuild.bzl", "conda_channel", "envbuild_image")

    envbuild_image(
        name = "image",
        environment = "environment.yml",   # or lock = "conda-lock.yml" (no solve)
        channels = [":channel"],           # replace the file's channels (local, offline builds)
        pip_find_links = [":channel"],     # and its pip: --find-links (the channel's wheels/)
        tag = "myproject/train:1",
    )

`bazel build //pkg:image` writes `image.oci/` (an OCI image layout) and, with
`docker_archive = True`, `image.tar` (for `docker load` / `podman load`). The image's digest is
in `image.digest`. Builds are bit-reproducible for the same package URLs: SOURCE_DATE_EPOCH is
fixed by the `epoch` attribute. Package records keep their channel URL, so an image made from a
local channel (a path in the output tree) is identical for one workspace; use an http(s)
channel or a lock file for images identical across machines.

envbuild runs in the target configuration (not the exec one) so the tool shares its object files
with the rest of the build instead of compiling the whole tree a second time.
"""

CondaChannelInfo = provider(
    doc = "A local conda channel directory (subdir folders with repodata.json).",
    fields = {"dir": "the channel directory (a tree artifact or a source folder's File)"},
)

def _channel_path(target):
    """Path of a channel given as a conda_channel target or as the files of a source channel."""
    if CondaChannelInfo in target:
        return target[CondaChannelInfo].dir.path
    for f in target.files.to_list():
        if f.is_directory:
            return f.path
        if f.basename == "repodata.json":
            # <channel>/<subdir>/repodata.json
            return f.dirname.rpartition("/")[0]
    fail("%s is not a conda channel: give a conda_channel target or a filegroup containing " % target.label +
         "<channel>/<subdir>/repodata.json")

def _wheels_path(target):
    """Folder of wheels given as a conda_channel target (its wheels/ folder) or as files."""
    if CondaChannelInfo in target:
        return target[CondaChannelInfo].dir.path + "/wheels"
    for f in target.files.to_list():
        return f.path if f.is_directory else f.dirname
    fail("%s has no files: give a conda_channel target or a filegroup of wheels" % target.label)

def _envbuild_image_impl(ctx):
    if bool(ctx.file.environment) == bool(ctx.file.lock):
        fail("envbuild_image %s: set exactly one of environment and lock" % ctx.label)
    layout = ctx.actions.declare_directory(ctx.label.name + ".oci")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    outputs = [layout, digest]
    tag = ctx.attr.tag or "%s:latest" % ctx.label.name

    args = ctx.actions.args()
    args.add("build")
    if ctx.file.environment:
        args.add("--file", ctx.file.environment)
    else:
        args.add("--lock", ctx.file.lock)
    args.add("--tag", tag)
    args.add("--output", "oci:%s:%s" % (layout.path, tag.rpartition(":")[2] if ":" in tag else "latest"))
    if ctx.attr.docker_archive:
        archive = ctx.actions.declare_file(ctx.label.name + ".tar")
        outputs.append(archive)
        args.add("--output", "docker-archive:%s:%s" % (archive.path, tag))
    inputs = []
    if ctx.file.environment:
        inputs.append(ctx.file.environment)
    if ctx.file.lock:
        inputs.append(ctx.file.lock)
    for channel in ctx.attr.channels:
        # "./": a path, not a channel name to resolve against the channel alias.
        args.add("--channel", "./" + _channel_path(channel))
        inputs.extend(channel.files.to_list())
    for target in ctx.attr.pip_find_links:
        # "./": a path, not a URL. Replaces the pip: section's own --find-links locations.
        args.add("--pip-find-links", "./" + _wheels_path(target))
        inputs.extend(target.files.to_list())
    if ctx.attr.base:
        base_files = ctx.attr.base.files.to_list()
        if len(base_files) != 1:
            fail("envbuild_image %s: base must be one OCI layout dir or archive" % ctx.label)
        base = base_files[0]
        inputs.append(base)
        kind = "oci" if base.is_directory else ctx.attr.base_format
        args.add("--base", "%s:%s" % (kind, base.path))
    if ctx.attr.prefix:
        args.add("--prefix", ctx.attr.prefix)
    if ctx.attr.platform:
        args.add("--platform", ctx.attr.platform)
    if ctx.attr.max_layers:
        args.add("--max-layers", str(ctx.attr.max_layers))
    args.add("--compression", ctx.attr.compression)
    if ctx.attr.entrypoint:
        args.add("--entrypoint", json.encode(ctx.attr.entrypoint))
    if ctx.attr.cmd:
        args.add("--cmd", json.encode(ctx.attr.cmd))
    if ctx.attr.workdir:
        args.add("--workdir", ctx.attr.workdir)
    if ctx.attr.user:
        args.add("--user", ctx.attr.user)
    for key, value in sorted(ctx.attr.labels.items()):
        args.add("--label", "%s=%s" % (key, value))
    for key, value in sorted(ctx.attr.annotations.items()):
        args.add("--annotation", "%s=%s" % (key, value))

    args.add("--quiet")

    ctx.actions.run_shell(
        outputs = outputs,
        inputs = inputs,
        tools = [ctx.executable._envbuild],
        # A private package and layer cache per action, removed afterwards: Bazel caches the result.
        command = 'cache=$(mktemp -d) && trap \'rm -rf "$cache"\' EXIT && ' +
                  '"$1" "${@:3}" --cache-dir "$cache" > "$2"',
        arguments = [ctx.executable._envbuild.path, digest.path, args],
        env = {"SOURCE_DATE_EPOCH": str(ctx.attr.epoch)},
        # Package records keep their channel URL; a local channel's path must not be a per-action
        # sandbox directory, or the image would differ from build to build.
        execution_requirements = {"no-sandbox": "1"},
        mnemonic = "EnvbuildImage",
        progress_message = "Building conda image %s (%s)" % (ctx.label, tag),
    )
    return [DefaultInfo(files = depset(outputs))]

envbuild_image = rule(
    implementation = _envbuild_image_impl,
    doc = "A layered, reproducible OCI image of a conda environment, built by `envbuild build`.",
    attrs = {
        "environment": attr.label(allow_single_file = [".yml", ".yaml"], doc = "environment.yml to solve"),
        "lock": attr.label(allow_single_file = True, doc = "conda-lock.yml or @EXPLICIT file (no solve)"),
        "channels": attr.label_list(
            allow_files = True,
            doc = "local channels that replace the environment's (conda_channel targets or filegroups)",
        ),
        "pip_find_links": attr.label_list(
            allow_files = True,
            doc = "folders of wheels that replace the pip: section's --find-links locations " +
                  "(a conda_channel target stands for its wheels/ folder; a filegroup for its files' folder)",
        ),
        "base": attr.label(allow_files = True, doc = "base image: an OCI layout dir or an archive"),
        "base_format": attr.string(
            default = "oci-archive",
            values = ["oci-archive", "docker-archive"],
            doc = "format of a base given as a file",
        ),
        "tag": attr.string(doc = "NAME[:TAG] (default: <rule name>:latest)"),
        "prefix": attr.string(doc = "environment prefix in the image (envbuild's default: /opt/conda)"),
        "platform": attr.string(doc = "conda platform, e.g. linux-64 (default: the host's)"),
        "max_layers": attr.int(doc = "layer budget, base layers included"),
        "compression": attr.string(default = "gzip", values = ["gzip", "zstd"]),
        "entrypoint": attr.string_list(),
        "cmd": attr.string_list(),
        "workdir": attr.string(),
        "user": attr.string(),
        "labels": attr.string_dict(doc = "image config labels"),
        "annotations": attr.string_dict(doc = "manifest annotations"),
        "docker_archive": attr.bool(default = False, doc = "also write <name>.tar for docker load"),
        "epoch": attr.int(default = 0, doc = "SOURCE_DATE_EPOCH: the image's created time"),
        "_envbuild": attr.label(
            default = Label("//builder:envbuild"),
            executable = True,
            cfg = "target",
        ),
    },
)

def _conda_channel_impl(ctx):
    channel = ctx.actions.declare_directory(ctx.label.name)
    ctx.actions.run_shell(
        outputs = [channel],
        inputs = [ctx.file.script] + ctx.files.srcs,
        tools = [ctx.executable._envbuild],
        command = '"$1" "$2" "$4" && "$3" index --quiet "$4"',
        arguments = [ctx.attr.interpreter, ctx.file.script.path, ctx.executable._envbuild.path, channel.path],
        # The script may compile (cc) and compress (zstd) with the host's tools.
        use_default_shell_env = True,
        env = {"SOURCE_DATE_EPOCH": str(ctx.attr.epoch)},
        mnemonic = "CondaChannel",
        progress_message = "Making conda channel %s" % ctx.label,
    )
    return [DefaultInfo(files = depset([channel])), CondaChannelInfo(dir = channel)]

conda_channel = rule(
    implementation = _conda_channel_impl,
    doc = "A local conda channel written by `INTERPRETER SCRIPT CHANNEL_DIR`, then indexed by `envbuild index` " +
          "(wheels the script writes to CHANNEL_DIR/wheels serve envbuild_image's pip_find_links).",
    attrs = {
        "script": attr.label(allow_single_file = True, mandatory = True, doc = "writes <dir>/<subdir>/*.conda"),
        "srcs": attr.label_list(allow_files = True, doc = "files the script reads"),
        "interpreter": attr.string(default = "python3"),
        "epoch": attr.int(default = 1700000000, doc = "SOURCE_DATE_EPOCH for the packages"),
        "_envbuild": attr.label(
            default = Label("//builder:envbuild"),
            executable = True,
            cfg = "target",
        ),
    },
)
