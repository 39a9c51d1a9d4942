// policy_server_test.cc - drives sluice-policyd's PolicyServer in-process on a loopback port:
// answers, pipelining, and every kind of bad input closing only the offending connection.
#include "policy_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "base/log.h"
#include "policy_client/policy_client.h"

namespace sluice::policyd {
namespace {

using namespace std::string_literals;

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerLimits limits = {}) {
    setLogSink([](LogLevel, std::string_view line, void* arg) {
      auto* self = static_cast<ServerTest*>(arg);
      std::lock_guard<std::mutex> lock(self->logMu_);
      self->log_ += std::string(line) + "\n";
    }, this);
    server_ = std::make_unique<PolicyServer>(
        io_,
        [this](const decision::PolicyRequest& r, uint64_t, PolicyServer::Responder respond) {
          ++requests_;
          std::string action =
              r.get(decision::Attr::kSender) == "bad@example.com" ? std::string("REJECT no") : std::string("DUNNO");
          if (r.get(decision::Attr::kProtocolState) == "LATER") {
            // Answer asynchronously, as the Redis backend does.
            asio::post(io_, [respond, action] { respond(action); });
          } else {
            respond(action);
          }
        },
        [this](uint64_t) { ++closed_; });
    server_->setLimits(limits);
    ASSERT_TRUE(server_->listen("127.0.0.1:0"));
    port_ = server_->localPort();
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_->stop(); });
    if (thread_.joinable()) thread_.join();
    setLogSink(nullptr, nullptr);
  }
  int connectFd() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  }
  static void sendAll(int fd, const std::string& s) {
    ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Reads until `n` replies arrived, EOF, or 5 s. Returns what was read; *eof says if closed.
  static std::string readReplies(int fd, int n, bool* eof) {
    std::string in;
    *eof = false;
    char buf[4096];
    for (int waited = 0; waited < 5000;) {
      int count = 0;
      for (size_t p = in.find("\n\n"); p != std::string::npos; p = in.find("\n\n", p + 2)) ++count;
      if (count >= n) return in;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) == 0) {
        waited += 100;
        continue;
      }
      ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        *eof = true;
        return in;
      }
      in.append(buf, static_cast<size_t>(r));
    }
    return in;
  }
  std::string log() {
    std::lock_guard<std::mutex> lock(logMu_);
    return log_;
  }

  asio::io_context io_;
  std::unique_ptr<PolicyServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<int> closed_{0};
  std::mutex logMu_;
  std::string log_;
};

const std::string kReq = "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@example.com\n\n";
const std::string kBad = "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=bad@example.com\n\n";

TEST_F(ServerTest, AnswersInOrderIncludingPipelined) {
  start();
  int fd = connectFd();
  sendAll(fd, kReq);
  bool eof = false;
  EXPECT_EQ(readReplies(fd, 1, &eof), "action=DUNNO\n\n");
  sendAll(fd, kBad + kReq + kBad);
  EXPECT_EQ(readReplies(fd, 3, &eof), "action=REJECT no\n\naction=DUNNO\n\naction=REJECT no\n\n");
  EXPECT_FALSE(eof);
  ::close(fd);
}

TEST_F(ServerTest, AsynchronousAnswersKeepTheOrder) {
  start();
  int fd = connectFd();
  const std::string later = "request=smtpd_access_policy\nprotocol_state=LATER\nsender=bad@example.com\n\n";
  sendAll(fd, later + kReq + later);
  bool eof = false;
  EXPECT_EQ(readReplies(fd, 3, &eof), "action=REJECT no\n\naction=DUNNO\n\naction=REJECT no\n\n");
  ::close(fd);
}

TEST_F(ServerTest, RequestSplitIntoSingleBytes) {
  start();
  int fd = connectFd();
  for (char c : kReq) sendAll(fd, std::string(1, c));
  bool eof = false;
  EXPECT_EQ(readReplies(fd, 1, &eof), "action=DUNNO\n\n");
  ::close(fd);
}

TEST_F(ServerTest, BadInputClosesOnlyThatConnection) {
  ServerLimits lim;
  lim.maxRequestSize = 4096;
  start(lim);
  struct Case { std::string input; const char* wantLog; };
  const Case cases[] = {
      {"this is not a policy request\n\n", "bad request: malformed line"},
      {"request=smtpd_access_policy\nsender=a\0b\n\n"s, "NUL byte"},
      {"request=smtpd_access_policy\nsender=" + std::string(5000, 'x') + "\n\n", "request exceeds 4096 bytes"},
      {"request=smtpd_access_policy\nsender=" + std::string(8000, 'y'), "request exceeds 4096 bytes"},
      {"protocol_state=RCPT\n\n", "request attribute missing"},
  };
  int healthy = connectFd();
  for (const auto& c : cases) {
    int fd = connectFd();
    sendAll(fd, c.input);
    bool eof = false;
    std::string got = readReplies(fd, 1, &eof);
    EXPECT_TRUE(eof) << "connection should be closed after: " << c.input.substr(0, 40);
    EXPECT_EQ(got.find("action="), std::string::npos) << "no answer to bad input";
    EXPECT_NE(log().find(c.wantLog), std::string::npos) << "log lacks \"" << c.wantLog << "\":\n" << log();
    ::close(fd);
    sendAll(healthy, kReq);
    EXPECT_EQ(readReplies(healthy, 1, &eof), "action=DUNNO\n\n") << "other clients keep being served";
  }
  ::close(healthy);
}

TEST_F(ServerTest, DisconnectMidRequestIsLogged) {
  start();
  int fd = connectFd();
  sendAll(fd, "request=smtpd_access_policy\nsender=x");
  ::close(fd);
  for (int i = 0; i < 50 && closed_ == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(closed_, 1);
  EXPECT_NE(log().find("disconnected in the middle of a request"), std::string::npos) << log();
}

TEST_F(ServerTest, SlowRequestTimesOut) {
  ServerLimits lim;
  lim.requestTimeoutMs = 200;
  start(lim);
  int fd = connectFd();
  sendAll(fd, "request=smtpd_access_policy\n");
  bool eof = false;
  readReplies(fd, 1, &eof);
  EXPECT_TRUE(eof) << "an unfinished request is cut off after request_timeout (+ the 1 s sweep)";
  EXPECT_NE(log().find("request not completed within 200 ms"), std::string::npos) << log();
  ::close(fd);
}

TEST_F(ServerTest, ConnectionLimit) {
  ServerLimits lim;
  lim.maxConnections = 3;
  start(lim);
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(connectFd());
    sendAll(fds.back(), kReq);
    bool eof = false;
    ASSERT_EQ(readReplies(fds.back(), 1, &eof), "action=DUNNO\n\n");
  }
  int extra = connectFd();
  bool eof = false;
  readReplies(extra, 1, &eof);
  EXPECT_TRUE(eof) << "the 4th connection is refused";
  EXPECT_NE(log().find("policyd.max_connections"), std::string::npos) << log();
  ::close(extra);
  for (int fd : fds) ::close(fd);
}

TEST_F(ServerTest, TenThousandConnectionsOpenedAndDropped) {
  start();
  for (int i = 0; i < 10000; ++i) {
    int fd = connectFd();
    if (i % 2 == 0) sendAll(fd, "request=smtpd_access_policy\nsend");  // half drop mid-request
    ::close(fd);
  }
  int fd = connectFd();
  sendAll(fd, kReq);
  bool eof = false;
  EXPECT_EQ(readReplies(fd, 1, &eof), "action=DUNNO\n\n");
  ::close(fd);
  for (int i = 0; i < 200 && closed_ < 10000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(closed_, 10000) << "every dropped connection is cleaned up";
}

TEST_F(ServerTest, PolicyClientAsksAndFallsBack) {
  start();
  PolicyClient::Options o;
  o.address = "127.0.0.1:" + std::to_string(port_);
  PolicyClient client(o);
  auto r = client.query({{"protocol_state", "RCPT"}, {"sender", "bad@example.com"}});
  ASSERT_TRUE(r) << r.message();
  EXPECT_EQ(r.value(), "REJECT no");
  EXPECT_EQ(client.ask({{"sender", "a@example.com"}}), "DUNNO");
  EXPECT_FALSE(client.query({{"sender", "a\nb"}})) << "an attribute with a line feed is refused";

  PolicyClient::Options down = o;
  down.address = "127.0.0.1:1";
  down.timeoutMs = 500;
  PolicyClient dead(down);
  EXPECT_EQ(dead.ask({{"sender", "a@example.com"}}), down.defaultAction);
}

}  // namespace
}  // namespace sluice::policyd
