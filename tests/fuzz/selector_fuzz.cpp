// Fuzzes the `# [selector]` evaluator: the expression alone, for several platforms, and as the
// comment of a line in an environment file (which finds it without std::regex). Besides
// crashes, checks that the boolean algebra holds for every expression that evaluates:
// `not (X)` is the negation of X, `(X)` and `X and X` are X.

#include <cstddef>
#include <cstdint>
#include <string>

#include "conda/environment_file.hpp"
#include "conda/platform.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::conda;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Platform platforms[] = {
      Platform::parse("linux-64").value(), Platform::parse("osx-arm64").value(),
      Platform::parse("win-64").value(), Platform::parse("linux-aarch64").value()};
  const std::string expression(envbuild::fuzz::as_text(data, size));
  for (const auto& platform : platforms) {
    auto value = evaluate_selector(expression, platform);
    if (!value) continue;
    auto negated = evaluate_selector("not (" + expression + ")", platform);
    auto grouped = evaluate_selector("(" + expression + ")", platform);
    auto twice = evaluate_selector("(" + expression + ") and (" + expression + ")", platform);
    // One more level of nesting may cross the depth limit: then the wrapped form is an error.
    if (negated && *negated == *value)
      envbuild::fuzz::fail("not (X) == X for '" + expression + "'");
    if (grouped && *grouped != *value) envbuild::fuzz::fail("(X) != X for '" + expression + "'");
    if (twice && *twice != *value) envbuild::fuzz::fail("X and X != X for '" + expression + "'");
  }
  if (expression.find('\n') == std::string::npos) {
    EnvironmentFileOptions options;
    options.target = platforms[0];
    (void)parse_environment_file("dependencies:\n  - zlib  # [" + expression + "]\n", options);
  }
  return 0;
}
