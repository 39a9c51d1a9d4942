// events_test.cc - event records (ids, JSON), the webhook signature, the SQLite outbox, and the
// webhook sender against a small HTTP server in a thread (a faked peer: it answers 500 first,
// then 200, and records what it got, so retries, back-off and signatures are observed).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "events/event.h"
#include "events/outbox.h"
#include "events/webhook_sender.h"

namespace sluice::events {
namespace {

std::string tempDir(const std::string& name) {
  auto d = std::filesystem::path(::testing::TempDir()) / ("events_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

Event sample(EventType t, int64_t ms) {
  Event e;
  e.id = newEventId(ms);
  e.type = t;
  e.timeMs = ms;
  e.queueId = "0G5Q3ABCDEFGHJKM";
  e.recipient = "bob@dest.example";
  e.sender = "alice@example.com";
  e.messageId = "<m1@example.com>";
  e.identity = "app1";
  e.details = {{"reply", "250 2.0.0 Ok"}, {"mx", "mx1.dest.example"}, {"attempt", 1}};
  return e;
}

TEST(Events, IdsSortByTimeAndDoNotCollide) {
  std::set<std::string> seen;
  std::string prev;
  for (int64_t ms = 1700000000000; ms < 1700000000000 + 2000; ms += 2) {
    std::string id = newEventId(ms);
    ASSERT_EQ(id.size(), 26u);
    EXPECT_TRUE(seen.insert(id).second);
    EXPECT_LT(prev, id);
    prev = id;
  }
  EXPECT_NE(newEventId(1), newEventId(1)) << "same millisecond, different random part";
}

TEST(Events, JsonRoundTrip) {
  Event e = sample(EventType::kBounced, 1700000000123);
  e.details["diagnostic"] = std::string("550 5.1.1 \xff\xfe bad utf8");
  std::string j = toJson(e);
  EXPECT_NE(j.find("\"time\":\"2023-11-14T22:13:20.123Z\""), std::string::npos) << j;
  EXPECT_EQ(j.find('\n'), std::string::npos) << "one line";
  auto back = eventFromJson(j);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(back->id, e.id);
  EXPECT_EQ(back->type, EventType::kBounced);
  EXPECT_EQ(back->timeMs, e.timeMs);
  EXPECT_EQ(back->recipient, e.recipient);
  EXPECT_EQ(back->details["mx"], "mx1.dest.example");
  EXPECT_FALSE(eventFromJson("{\"id\":\"x\",\"type\":\"nonsense\"}"));
  EXPECT_FALSE(eventFromJson("not json"));
  for (auto t : {EventType::kAccepted, EventType::kDelivered, EventType::kDeferred, EventType::kBounced,
                 EventType::kExpired, EventType::kSuppressed, EventType::kComplained}) {
    EXPECT_EQ(parseEventType(toString(t)), t);
  }
}

TEST(Events, WebhookSignatureIsHmacSha256OfTimestampDotBody) {
  // python3: hmac.new(b's3cret', b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
  EXPECT_EQ(webhookSignature("s3cret", 1700000000, "{\"a\":1}"),
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
}

TEST(Events, OutboxRowsPerEndpointAndState) {
  auto dir = tempDir("outbox");
  auto o = EventOutbox::open(dir + "/q.db");
  ASSERT_TRUE(o) << o.message();
  std::vector<WebhookEndpoint> eps = {{"http://127.0.0.1:1/all", "k1", {}},
                                      {"http://127.0.0.1:1/bounces", "k2", {EventType::kBounced}}};
  ASSERT_TRUE(o.value()->enqueue(sample(EventType::kDelivered, 1000), eps));
  Event b = sample(EventType::kBounced, 2000);
  ASSERT_TRUE(o.value()->enqueue(b, eps));
  ASSERT_TRUE(o.value()->enqueue(b, eps)) << "the same event twice is stored once";
  auto due = o.value()->due(5000, 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 3u) << "delivered -> /all; bounced -> /all and /bounces";
  ASSERT_TRUE(o.value()->retry(due->at(0).row, 9000, "HTTP 500"));
  ASSERT_TRUE(o.value()->delivered(due->at(1).row, 5000));
  ASSERT_TRUE(o.value()->giveUp(due->at(2).row, "gone"));
  EXPECT_EQ(o.value()->due(5000, 10)->size(), 0u) << "the retry is not due before 9000";
  EXPECT_EQ(o.value()->due(9000, 10)->size(), 1u);
  auto c = o.value()->counts();
  EXPECT_EQ(c->pending, 1u);
  EXPECT_EQ(c->delivered, 1u);
  EXPECT_EQ(c->dead, 1u);
  EXPECT_EQ(o.value()->purgeDelivered(6000).value(), 1u);

  auto log = EventLog::open(dir + "/events.jsonl");
  ASSERT_TRUE(log);
  ASSERT_TRUE(log.value()->append(b));
  ASSERT_TRUE(log.value()->append(sample(EventType::kDeferred, 3000)));
  std::ifstream in(dir + "/events.jsonl");
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_EQ(eventFromJson(l1)->id, b.id);
  EXPECT_EQ(eventFromJson(l2)->type, EventType::kDeferred);
}

// A tiny HTTP/1.1 server: answers the first `failFirst` requests with 500, then 200.
class FakeReceiver {
 public:
  explicit FakeReceiver(int failFirst) : failFirst_(failFirst) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeReceiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  struct Request {
    std::string head, body;
  };
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }
  void serve(int c) {
    std::string buf;
    char tmp[4096];
    while (!stop_) {
      size_t he = buf.find("\r\n\r\n");
      if (he != std::string::npos) {
        std::string head = buf.substr(0, he);
        size_t cl = 0;
        auto pos = head.find("Content-Length: ");
        if (pos != std::string::npos) cl = std::stoul(head.substr(pos + 16));
        if (buf.size() >= he + 4 + cl) {
          Request r{head, buf.substr(he + 4, cl)};
          buf.erase(0, he + 4 + cl);
          int n;
          {
            std::lock_guard<std::mutex> l(mu_);
            requests_.push_back(r);
            n = static_cast<int>(requests_.size());
          }
          std::string reply = n <= failFirst_ ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
                                              : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
          if (::write(c, reply.data(), reply.size()) < 0) return;
          continue;
        }
      }
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::read(c, tmp, sizeof tmp);
      if (n <= 0) return;
      buf.append(tmp, static_cast<size_t>(n));
    }
  }
  int failFirst_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

std::string header(const std::string& head, const std::string& name) {
  auto p = head.find(name + ": ");
  if (p == std::string::npos) return "";
  auto e = head.find("\r\n", p);
  return head.substr(p + name.size() + 2, e - p - name.size() - 2);
}

TEST(Events, WebhookRetriesUntilDeliveredAndSigns) {
  FakeReceiver rx(2);
  auto dir = tempDir("webhook");
  std::vector<WebhookEndpoint> eps = {{rx.url(), "topsecret", {}}};
  Event e = sample(EventType::kDelivered, 1700000000000);
  {
    auto o = EventOutbox::open(dir + "/q.db");
    ASSERT_TRUE(o);
    ASSERT_TRUE(o.value()->enqueue(e, eps));
  }
  WebhookOptions opt;
  opt.timeoutMs = 2000;
  opt.initialBackoffMs = 1000;
  WebhookSender s(dir + "/q.db", eps, opt);
  int64_t now = 1700000001000;
  EXPECT_EQ(s.runOnce(now).value(), 1u);   // 500
  EXPECT_EQ(s.runOnce(now).value(), 0u) << "not due again before its back-off";
  now += 1200;
  EXPECT_EQ(s.runOnce(now).value(), 1u);   // 500 again; back-off doubles (~2 s)
  now += 1200;
  EXPECT_EQ(s.runOnce(now).value(), 0u);
  now += 1200;
  EXPECT_EQ(s.runOnce(now).value(), 1u);   // 200
  EXPECT_EQ(s.delivered.load(), 1u);
  EXPECT_EQ(s.failedAttempts.load(), 2u);
  now += 60000;
  EXPECT_EQ(s.runOnce(now).value(), 0u) << "delivered rows are not posted again";

  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.body, toJson(e));
    EXPECT_EQ(header(r.head, "X-Sluice-Event-Id"), e.id);
    std::string sig = header(r.head, "X-Sluice-Signature");
    auto t = std::stoll(sig.substr(2, sig.find(',') - 2));
    EXPECT_EQ(sig, webhookSignature("topsecret", t, r.body)) << "the receiver can verify it";
  }
}

TEST(Events, WebhookGivesUpAfterMaxAge) {
  auto dir = tempDir("dead");
  std::vector<WebhookEndpoint> eps = {{"http://127.0.0.1:9/nothing-listens", "k", {}}};
  {
    auto o = EventOutbox::open(dir + "/q.db");
    ASSERT_TRUE(o.value()->enqueue(sample(EventType::kBounced, 1000), eps));
  }
  WebhookOptions opt;
  opt.timeoutMs = 500;
  opt.maxAgeMs = 10000;
  WebhookSender s(dir + "/q.db", eps, opt);
  EXPECT_EQ(s.runOnce(2000).value(), 1u);
  EXPECT_EQ(s.dead.load(), 0u);
  EXPECT_EQ(s.runOnce(20000).value(), 1u);
  EXPECT_EQ(s.dead.load(), 1u);
  EXPECT_EQ(s.runOnce(40000).value(), 0u);
}


// A reload (reconfigure): the next pass posts to the new endpoints with their secrets; rows of an
// endpoint no longer configured are not posted; without endpoints nothing is posted and rows wait.
TEST(Events, WebhookReconfigureSwitchesEndpointsAndSecrets) {
  FakeReceiver a(0), b(0);
  auto dir = tempDir("reconfigure");
  std::vector<WebhookEndpoint> epsA = {{a.url(), "secret-a", {}}};
  std::vector<WebhookEndpoint> epsB = {{b.url(), "secret-b", {}}};
  Event e1 = sample(EventType::kDelivered, 1700000000000);
  Event e2 = sample(EventType::kBounced, 1700000000100);
  Event e3 = sample(EventType::kBounced, 1700000000200);
  auto o = EventOutbox::open(dir + "/q.db");
  ASSERT_TRUE(o);
  ASSERT_TRUE(o.value()->enqueue(e1, epsA));
  WebhookOptions opt;
  opt.timeoutMs = 2000;
  WebhookSender s(dir + "/q.db", {}, opt);
  EXPECT_EQ(s.runOnce(1700000001000).value(), 0u) << "no endpoint: nothing posted";
  s.reconfigure(epsA, opt);
  EXPECT_EQ(s.runOnce(1700000001000).value(), 1u);
  ASSERT_EQ(a.requests().size(), 1u) << "the row waited for an endpoint";

  s.reconfigure(epsB, opt);
  ASSERT_TRUE(o.value()->enqueue(e2, epsB));
  ASSERT_TRUE(o.value()->enqueue(e3, epsA));  // enqueued for an endpoint just removed
  EXPECT_EQ(s.runOnce(1700000002000).value(), 2u);
  EXPECT_EQ(a.requests().size(), 1u) << "nothing more to the removed endpoint";
  auto reqs = b.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0].head, "X-Sluice-Event-Id"), e2.id);
  std::string sig = header(reqs[0].head, "X-Sluice-Signature");
  auto t = std::stoll(sig.substr(2, sig.find(',') - 2));
  EXPECT_EQ(sig, webhookSignature("secret-b", t, reqs[0].body)) << "signed with the new secret";
  EXPECT_EQ(s.failedAttempts.load(), 1u) << "the removed endpoint's row failed, to be retried";
}

}  // namespace
}  // namespace sluice::events
