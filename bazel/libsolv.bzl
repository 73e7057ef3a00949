"""A repository for the static, conda-enabled libsolv that scripts/bootstrap builds.

Debian's libsolv has no conda support; the bootstrap builds libsolv 0.7.23 from Debian's source
package with ENABLE_CONDA=ON into <workspace>/.deps/libsolv. LIBSOLV_PREFIX (--repo_env) points at
another such prefix.
"""

_BUILD = """
package(default_visibility = ["//visibility:public"])
cc_import(name = "solv_a", static_library = "lib/libsolv.a")
cc_import(name = "solvext_a", static_library = "lib/libsolvext.a")
cc_library(name = "libsolv", hdrs = glob(["include/solv/*.h"]), includes = ["include"], deps = [":solv_a"])
cc_library(name = "libsolvext", deps = [":solvext_a", ":libsolv", "@system_libs//:zlib"])
"""

def _libsolv_impl(ctx):
    prefix = ctx.os.environ.get("LIBSOLV_PREFIX", "")
    if not prefix:
        prefix = str(ctx.path(Label("//:WORKSPACE")).dirname) + "/.deps/libsolv"
    if not ctx.path(prefix + "/lib/libsolv.a").exists:
        fail("No conda-enabled libsolv at %s: run scripts/bootstrap first (or pass --repo_env=LIBSOLV_PREFIX=<prefix>)" % prefix)
    ctx.symlink(prefix + "/include", "include")
    ctx.symlink(prefix + "/lib", "lib")
    ctx.file("BUILD.bazel", _BUILD)

libsolv_repository = repository_rule(
    implementation = _libsolv_impl,
    environ = ["LIBSOLV_PREFIX"],
    local = True,
)
