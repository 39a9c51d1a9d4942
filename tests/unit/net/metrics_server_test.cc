// metrics_server_test.cc - tests for lib/net/metrics_server.h: scrape, 404, 400, oversized head.
#include "net/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace sluice::net {
namespace {

std::string fetch(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return in;
}

TEST(MetricsServer, Table) {
  asio::io_context io;
  MetricsServer server(io, [] {
    std::string out;
    appendMetric(&out, "sluice_test_total", "counter", "A test counter.", 42);
    return out;
  });
  ASSERT_TRUE(server.listen("127.0.0.1:0"));
  std::thread t([&] { io.run(); });
  struct Case { std::string request; const char* wantStatus; const char* wantBody; };
  const Case cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.0 200 OK", "# TYPE sluice_test_total counter\nsluice_test_total 42\n"},
      {"GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK", "sluice_test_total 42"},
      {"GET /other HTTP/1.0\r\n\r\n", "HTTP/1.0 404", "try /metrics"},
      {"POST /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 400", "only GET"},
      {"GET /metrics HTTP/1.0\r\n" + std::string(9000, 'x'), "HTTP/1.0 400", "too large"},
  };
  for (const auto& c : cases) {
    std::string got = fetch(server.localPort(), c.request);
    EXPECT_EQ(got.rfind(c.wantStatus, 0), 0u) << "request " << c.request.substr(0, 30) << " got: " << got.substr(0, 60);
    EXPECT_NE(got.find(c.wantBody), std::string::npos) << "got: " << got;
  }
  asio::post(io, [&] { server.stop(); });
  t.join();
}

}  // namespace
}  // namespace sluice::net
