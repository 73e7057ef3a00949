// RegistryServer (tests/testing): free_port() closes the port it found before docker-registry
// binds it, so another process can take it first. The server must notice from the registry's
// own exit ("address already in use") and start on another port, not fail the test.

#include "tests/testing/registry_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {
namespace {

// Listens on 127.0.0.1:`port` until destroyed, as the process that won the race would.
class PortSquatter {
 public:
  explicit PortSquatter(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listening_ =
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 1) == 0;
  }
  ~PortSquatter() { ::close(fd_); }
  PortSquatter(const PortSquatter&) = delete;
  PortSquatter& operator=(const PortSquatter&) = delete;
  [[nodiscard]] bool listening() const { return listening_; }

 private:
  int fd_;
  bool listening_ = false;
};

using RegistryServerTest = TempDirTest;

TEST_F(RegistryServerTest, StartsOnAnotherPortWhenItsPortWasTaken) {
  ENVB_REQUIRE_TOOL("docker-registry");
  RegistryServer registry(dir_ / "registry");
  const int taken = registry.port();
  PortSquatter squatter(taken);
  ASSERT_TRUE(squatter.listening());
  ASSERT_TRUE(registry.start()) << registry.log();
  EXPECT_NE(registry.port(), taken);
  EXPECT_NE(registry.log().find("address already in use"), std::string::npos) << registry.log();
  auto ping =
      run_command("curl -s -o /dev/null -w '%{http_code}' http://" + registry.host() + "/v2/");
  EXPECT_EQ(ping.output, "200") << ping.output;
}

}  // namespace
}  // namespace envbuild::testing
