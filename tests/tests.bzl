"""envbuild_tests(folder): one cc_test of tests/<folder>/*_test.cpp against //<folder>."""

def envbuild_tests(folder):
    srcs = native.glob([folder + "/*_test.cpp"])
    if not srcs:
        return
    native.cc_test(
        name = folder + "_tests",
        size = "medium",
        timeout = "long",
        srcs = srcs + native.glob([folder + "/*.hpp"]),
        # data/**: the real packages, repodata, environment and lock files (data/README.md).
        data = [":bin"] + native.glob(
            [folder + "/**", "testing/**", "data/**"],
            exclude = [folder + "/*.cpp"],
        ),
        deps = [
            ":testing",
            "//" + folder,
            "@system_libs//:gtest_main",
        ] + (["//builder:cli"] if folder == "builder" else []),
    )
