// The README's main job: examples/demo/run.sh (what scripts/demo runs after building) end to end
// with this build's envbuild and envrun: channel and wheels made from source, lock, plan, image,
// push and push again, envrun check, train.py and every tool of the environment from the image,
// including the pip: section's console script.

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

using testing::q;
using testing::run_command;

class DemoTest : public testing::TempDirTest {};

TEST_F(DemoTest, TheReadmeDemoRunsEndToEnd) {
  auto r = run_command("PATH=" + q(testing::binary_dir().string()) + ":\"$PATH\" DEMO_OUT=" +
                       q(dir_ / "demo") + " " + q(testing::source_dir() / "examples/demo/run.sh") +
                       " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string want : {
           "wheels/demo_metrics-1.0-py3-none-any.whl",       // make_channel.py wrote the wheels
           "fetched 6/6 ",                                   // wheels counted with packages
           "demo-metrics-1.0 (wheel)",                       // layered like a package
           "0 uploaded, 8 already there",                    // the second push sends nothing
           "  ok    __glibc >=2.17",                          // envrun check
           "DEMO_MODE=image  (from environment.yml variables)",  // train.py, activated
           "r2 0.99",                                        // train.py imports the wheel
           "Hello from a relocated conda binary!",           // the binary placeholder
           "demo-info: environment at ",                     // the text placeholder
           "demo-metrics 1.0 with demo-units 0.2",           // the wheel's console script
       })
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
}

}  // namespace
}  // namespace envbuild::builder
