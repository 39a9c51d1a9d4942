// envelope_policy_test.cc - sluice-milter's envelope checks for Sendmail: Postfix actions mapped to
// milter replies, the attributes sent, and RCPT + END-OF-MESSAGE on one policyd connection. The
// policyd peer is a small fake in a thread (a unit test may fake a peer; the e2e tests use the real
// sluice-policyd behind a real Sendmail).
#include "envelope_policy.h"

#include "base/log.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

namespace sluice::milter {
namespace {

using K = Verdict::Kind;

TEST(MilterAction, PostfixActionsBecomeMilterReplies) {
  struct Case {
    const char* action;
    K kind;
    const char* rcode;
    const char* xcode;
    const char* text;
  };
  for (const auto& c : std::vector<Case>{
           {"DUNNO", K::kContinue, "", "", ""},
           {"OK", K::kContinue, "", "", ""},
           {"DEFER_IF_REJECT maybe", K::kContinue, "", "", ""},
           {"WARN look at this", K::kContinue, "", "", ""},
           {"REJECT", K::kReject, "550", "5.7.1", "Access denied"},
           {"reject Go away", K::kReject, "550", "5.7.1", "Go away"},
           {"DEFER_IF_PERMIT 4.7.1 Rate limit exceeded", K::kTempfail, "450", "4.7.1", "Rate limit exceeded"},
           {"DEFER", K::kTempfail, "450", "4.7.1", "Service unavailable"},
           {"450 4.7.1 Slow down", K::kTempfail, "450", "4.7.1", "Slow down"},
           {"421 Closing", K::kTempfail, "421", "4.7.1", "Closing"},
           {"550 5.1.1 Recipient address <a@b> is suppressed (bounce)", K::kReject, "550", "5.1.1",
            "Recipient address <a@b> is suppressed (bounce)"},
           {"553 5.7.1 Sender not owned", K::kReject, "553", "5.7.1", "Sender not owned"},
           {"550 4.1.1 mismatched class keeps the text", K::kReject, "550", "5.7.1",
            "4.1.1 mismatched class keeps the text"},
           {"DISCARD spam", K::kDiscard, "", "", ""},
           {"FILTER smtp:[127.0.0.1]:25", K::kTempfail, "451", "4.3.5", "Server configuration error"},
           {"", K::kTempfail, "451", "4.3.5", "Server configuration error"},
       }) {
    MilterAction a = milterActionFor(c.action);
    EXPECT_EQ(a.verdict.kind, c.kind) << c.action;
    EXPECT_EQ(a.verdict.rcode, c.rcode) << c.action;
    EXPECT_EQ(a.verdict.xcode, c.xcode) << c.action;
    EXPECT_EQ(a.verdict.text, c.text) << c.action;
  }
  MilterAction p = milterActionFor("PREPEND X-Sluice-Limit: near");
  EXPECT_EQ(p.verdict.kind, K::kContinue);
  EXPECT_EQ(p.prepend, "X-Sluice-Limit: near");
  EXPECT_EQ(milterActionFor("PREPEND no colon here").verdict.kind, K::kTempfail);
  MilterAction h = milterActionFor("HOLD needs review");
  EXPECT_TRUE(h.hold);
  EXPECT_EQ(h.reason, "needs review");
  EXPECT_EQ(h.verdict.kind, K::kContinue);
}

// A fake policyd on a unix socket: records every request with the connection it came on and
// answers by the recipient's local part.
class FakePolicyd {
 public:
  FakePolicyd() {
    path_ = ::testing::TempDir() + "/fake_policyd_" + std::to_string(::getpid()) + ".sock";
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, path_.c_str(), sizeof un.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&un), sizeof un), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    thread_ = std::thread([this] { run(); });
  }
  ~FakePolicyd() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::string address() const { return "unix:" + path_; }
  struct Request {
    int conn;
    std::map<std::string, std::string> attrs;
  };
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  static std::string answerFor(const std::map<std::string, std::string>& a) {
    if (a.at("protocol_state") == "END-OF-MESSAGE") return "DUNNO";
    std::string r = a.at("recipient");
    std::string local = r.substr(0, r.find('@'));
    if (local == "reject") return "550 5.1.1 Recipient address <" + r + "> is suppressed (bounce)";
    if (local == "defer") return "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded";
    if (local == "prepend") return "PREPEND X-Policy: seen";
    if (local == "hold") return "HOLD review";
    if (local == "warn") return "WARN near the limit";
    return "DUNNO";
  }
  void run() {
    std::vector<pollfd> fds{{fd_, POLLIN, 0}};
    std::map<int, std::string> bufs;
    int connNo = 0;
    std::map<int, int> ids;
    while (!stop_) {
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        if (fds[i].fd == fd_) {
          int c = ::accept(fd_, nullptr, nullptr);
          if (c >= 0) fds.push_back({c, POLLIN, 0}), ids[c] = ++connNo;
          continue;
        }
        char buf[4096];
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<long>(i));
          break;
        }
        std::string& b = bufs[fds[i].fd];
        b.append(buf, static_cast<size_t>(n));
        size_t end;
        while ((end = b.find("\n\n")) != std::string::npos) {
          std::map<std::string, std::string> attrs;
          size_t pos = 0;
          while (pos < end) {
            size_t nl = b.find('\n', pos);
            std::string line = b.substr(pos, nl - pos);
            size_t eq = line.find('=');
            attrs[line.substr(0, eq)] = line.substr(eq + 1);
            pos = nl + 1;
          }
          b.erase(0, end + 2);
          std::string reply = "action=" + answerFor(attrs) + "\n\n";
          {
            std::lock_guard<std::mutex> l(mu_);  // recorded before the client can see the reply
            requests_.push_back({ids[fds[i].fd], std::move(attrs)});
          }
          ssize_t w = ::write(fds[i].fd, reply.data(), reply.size());
          EXPECT_EQ(w, static_cast<ssize_t>(reply.size()));
        }
      }
    }
    for (size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);
  }

  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

TEST(EnvelopeChecks, OneTransactionOnOnePolicydConnection) {
  FakePolicyd fake;
  PolicyClient::Options o;
  o.address = fake.address();
  o.timeoutMs = 2000;
  PolicyClient client(o);
  PolicyClient::Session session(client);
  EnvelopeChecks e;
  e.connect("192.0.2.7", "");
  e.helo("client.example");
  e.mail("alice@example.com", "app1", "PLAIN", "4AB12CD", {"SIZE=1234", "BODY=8BITMIME"});
  EXPECT_EQ(e.rcpt(session, "bob@dest.example").verdict.kind, K::kContinue);
  MilterAction r = e.rcpt(session, "reject@dest.example");
  EXPECT_EQ(r.verdict.kind, K::kReject);
  EXPECT_EQ(r.verdict.xcode, "5.1.1");
  EXPECT_EQ(e.rcpt(session, "defer@dest.example").verdict.kind, K::kTempfail);
  EXPECT_EQ(e.rcpt(session, "prepend@dest.example").verdict.kind, K::kContinue);
  EXPECT_EQ(e.rcpt(session, "hold@dest.example").verdict.kind, K::kContinue);
  MilterAction end = e.endOfMessage(session, 4321);
  EXPECT_EQ(end.verdict.kind, K::kContinue);
  EXPECT_EQ(end.prepend, "X-Policy: seen");
  EXPECT_TRUE(end.hold);
  EXPECT_EQ(end.reason, "review");

  auto reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 6u);
  for (const auto& q : reqs) {
    EXPECT_EQ(q.conn, reqs[0].conn) << "every question of the session on one connection";
    EXPECT_EQ(q.attrs.at("instance"), e.instance());
    EXPECT_EQ(q.attrs.at("request"), "smtpd_access_policy");
    EXPECT_EQ(q.attrs.at("client_address"), "192.0.2.7");
    EXPECT_EQ(q.attrs.at("client_name"), "unknown");
    EXPECT_EQ(q.attrs.at("helo_name"), "client.example");
    EXPECT_EQ(q.attrs.at("sender"), "alice@example.com");
    EXPECT_EQ(q.attrs.at("sasl_username"), "app1");
    EXPECT_EQ(q.attrs.at("sasl_method"), "PLAIN");
    EXPECT_EQ(q.attrs.at("queue_id"), "4AB12CD");
    EXPECT_EQ(q.attrs.at("protocol_name"), "ESMTPA");
  }
  EXPECT_EQ(reqs[0].attrs.at("protocol_state"), "RCPT");
  EXPECT_EQ(reqs[0].attrs.at("recipient"), "bob@dest.example");
  EXPECT_EQ(reqs[0].attrs.at("size"), "1234") << "SIZE= from MAIL FROM at RCPT";
  EXPECT_EQ(reqs[5].attrs.at("protocol_state"), "END-OF-MESSAGE");
  EXPECT_EQ(reqs[5].attrs.at("recipient_count"), "3") << "bob, prepend, hold: the refused two not counted";
  EXPECT_EQ(reqs[5].attrs.at("size"), "4321");

  // The next message gets a new instance on the same connection.
  std::string first = e.instance();
  e.mail("alice@example.com", "app1", "PLAIN", "", {});
  EXPECT_NE(e.instance(), first);
  EXPECT_EQ(e.rcpt(session, "bob@dest.example").verdict.kind, K::kContinue);
  EXPECT_EQ(fake.requests().back().conn, reqs[0].conn);
}

void captureLog(LogLevel, std::string_view line, void* arg) {
  static_cast<std::vector<std::string>*>(arg)->push_back(std::string(line));
}

// Postfix has no queue id at MAIL FROM (its queue file is opened after the first accepted RCPT):
// the milter learns {i} later and sends it from then on, and its log lines start with it.
TEST(EnvelopeChecks, QueueIdLearntAfterMailIsSentAndLogged) {
  FakePolicyd fake;
  PolicyClient::Options o;
  o.address = fake.address();
  o.timeoutMs = 2000;
  PolicyClient client(o);
  PolicyClient::Session session(client);
  std::vector<std::string> lines;
  setLogSink(captureLog, &lines);
  EnvelopeChecks e;
  e.connect("192.0.2.7", "");
  e.mail("alice@example.com", "app1", "PLAIN", "", {});
  EXPECT_EQ(e.rcpt(session, "warn@dest.example").verdict.kind, K::kContinue);
  e.setQueueId("4AB12CD");
  EXPECT_EQ(e.rcpt(session, "warn@other.example").verdict.kind, K::kContinue);
  EXPECT_EQ(e.endOfMessage(session, 10).verdict.kind, K::kContinue);
  setLogSink(nullptr, nullptr);
  auto reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].attrs.at("queue_id"), "") << "first RCPT: not known yet";
  EXPECT_EQ(reqs[1].attrs.at("queue_id"), "4AB12CD");
  EXPECT_EQ(reqs[2].attrs.at("queue_id"), "4AB12CD") << "END-OF-MESSAGE";
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "policy: WARN near the limit for <alice@example.com> -> <warn@dest.example>");
  EXPECT_EQ(lines[1], "4AB12CD: policy: WARN near the limit for <alice@example.com> -> <warn@other.example>");
}

TEST(EnvelopeChecks, UnreachablePolicydAppliesTheDefaultAction) {
  PolicyClient::Options o;
  o.address = "unix:" + ::testing::TempDir() + "/no-such-policyd.sock";
  o.timeoutMs = 500;
  o.defaultAction = "DEFER_IF_PERMIT 4.3.0 Policy service unavailable, try again later";
  PolicyClient client(o);
  PolicyClient::Session session(client);
  EnvelopeChecks e;
  e.connect("127.0.0.2", "client.example");
  e.mail("alice@example.com", "", "", "", {});
  MilterAction a = e.rcpt(session, "bob@dest.example");
  EXPECT_EQ(a.verdict.kind, K::kTempfail);
  EXPECT_EQ(a.verdict.rcode, "450");
  EXPECT_EQ(a.verdict.xcode, "4.3.0");
  EXPECT_EQ(a.verdict.text, "Policy service unavailable, try again later");
  EXPECT_EQ(e.attributes("RCPT", "x@y", 0)[1].second, "ESMTP") << "unauthenticated";
}

}  // namespace
}  // namespace sluice::milter
