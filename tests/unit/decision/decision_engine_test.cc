// decision_engine_test.cc - tests for lib/decision/decision_engine.h: reserve at RCPT, commit at
// END-OF-MESSAGE, release on abort, sender ownership, monitor mode, store failure.
#include "decision/decision_engine.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "base/log.h"

namespace sluice::decision {
namespace {

using Attrs = std::map<std::string, std::string>;

const char* kBase =
    "state_dir: /tmp/sluice-test\n"
    "identities:\n"
    "  - name: app1\n"
    "    sasl_usernames: [app1]\n"
    "    senders: [example.com]\n"
    "  - name: app2\n"
    "    sasl_usernames: [app2]\n"
    "    senders: [other.example]\n"
    "  - name: lan\n"
    "    client_networks: [192.0.2.0/24]\n"
    "    senders: [lan.example]\n";

class EngineTest : public ::testing::Test {
 protected:
  void configure(const std::string& extra) {
    auto c = config::loadConfigString(std::string(kBase) + extra, "t.yaml");
    ASSERT_TRUE(c) << c.message();
    cfg_ = c.value();
    limiter_ = std::make_unique<ratelimit::RateLimiter>(cfg_->rateLimits);
    backend_ = std::make_unique<ratelimit::MemoryLimitBackend>(limiter_.get(), nullptr);
    engine_ = std::make_unique<DecisionEngine>(cfg_, backend_.get(), &clock_);
  }

  Decision ask(const std::string& state, Attrs attrs, uint64_t conn = 1) {
    std::string block = "request=smtpd_access_policy\nprotocol_state=" + state + "\n";
    if (!attrs.count("client_address")) attrs["client_address"] = "127.0.0.1";
    for (const auto& [k, v] : attrs) block += k + "=" + v + "\n";
    PolicyRequest req;
    EXPECT_TRUE(parsePolicyRequest(block, &req));
    Decision got;
    int answers = 0;
    engine_->decide(req, conn, [&](Decision d) {
      got = std::move(d);
      ++answers;
    });
    EXPECT_EQ(answers, 1) << "the memory backend answers once, before decide() returns";
    return got;
  }

  // One whole message: RCPT for each recipient, then END-OF-MESSAGE. Returns the first refusal.
  Decision message(const std::string& user, const std::string& sender, int rcpts = 1, uint64_t conn = 1) {
    std::string inst = "i" + std::to_string(++instance_);
    int admitted = 0;
    for (int i = 0; i < rcpts; ++i) {
      Decision d = ask("RCPT", {{"sasl_username", user}, {"sender", sender}, {"instance", inst},
                                {"recipient", "r" + std::to_string(i) + "@dest.example"}}, conn);
      if (d.refuses) return d;
      ++admitted;
    }
    return ask("END-OF-MESSAGE", {{"sasl_username", user}, {"sender", sender}, {"instance", inst},
                                  {"recipient_count", std::to_string(admitted)}}, conn);
  }

  ManualClock clock_;
  std::shared_ptr<const config::Config> cfg_;
  std::unique_ptr<ratelimit::RateLimiter> limiter_;
  std::unique_ptr<ratelimit::MemoryLimitBackend> backend_;
  std::unique_ptr<DecisionEngine> engine_;
  int instance_ = 0;
};

const char* kThreePerHour =
    "rate_limits:\n"
    "  - name: per-user\n"
    "    key: sasl_username\n"
    "    windows: [{limit: 3, per: 1h}]\n"
    "    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}\n";

TEST_F(EngineTest, DefersTheMessageAfterTheLimit) {
  configure(kThreePerHour);
  for (int i = 0; i < 3; ++i) {
    Decision d = message("app1", "a@example.com");
    EXPECT_EQ(d.action, "DUNNO") << "message " << i + 1 << " of 3";
  }
  Decision d = message("app1", "a@example.com");
  EXPECT_TRUE(d.refuses);
  EXPECT_EQ(d.action, "DEFER_IF_PERMIT 4.7.1 Rate limit per-user reached for app1");
  EXPECT_EQ(d.rule, "per-user");
  EXPECT_EQ(message("app2", "b@other.example").action, "DUNNO") << "another user is not affected";
  clock_.advanceMs(20 * 60 * 1000);
  EXPECT_EQ(message("app1", "a@example.com").action, "DUNNO") << "one message back after 20 minutes";
}

TEST_F(EngineTest, ManyRecipientsAreOneMessage) {
  configure(kThreePerHour);
  EXPECT_EQ(message("app1", "a@example.com", 5).action, "DUNNO");
  EXPECT_EQ(message("app1", "a@example.com", 5).action, "DUNNO");
  EXPECT_EQ(message("app1", "a@example.com", 5).action, "DUNNO");
  EXPECT_TRUE(message("app1", "a@example.com", 1).refuses);
}

TEST_F(EngineTest, AbortedTransactionsReleaseTheirReservation) {
  configure(kThreePerHour);
  // Three transactions that stop after RCPT (client sent RSET/QUIT): each new instance on the
  // connection ends the previous one.
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"},
                              {"instance", "abort" + std::to_string(i)}, {"recipient", "x@d.example"}}).refuses);
  }
  engine_->connectionClosed(1);  // and the last one ends with the connection
  EXPECT_EQ(engine_->openTransactions(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(message("app1", "a@example.com", 1, 2).action, "DUNNO") << i;
  EXPECT_TRUE(message("app1", "a@example.com", 1, 2).refuses);
}

TEST_F(EngineTest, ConcurrentReservationsCannotOversubscribe) {
  configure(kThreePerHour);
  // Four smtpd processes each at RCPT for app1 at once: only three reservations fit.
  int admitted = 0;
  for (uint64_t conn = 1; conn <= 4; ++conn) {
    Decision d = ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"},
                              {"instance", "c" + std::to_string(conn)}, {"recipient", "x@d.example"}}, conn);
    admitted += d.refuses ? 0 : 1;
  }
  EXPECT_EQ(admitted, 3);
}

TEST_F(EngineTest, ReservationTtlFreesStaleTransactions) {
  configure(kThreePerHour + std::string("policyd:\n  reservation_ttl: 1m\n"));
  for (uint64_t conn = 1; conn <= 3; ++conn) {
    ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "s" + std::to_string(conn)},
                 {"recipient", "x@d.example"}}, conn);
  }
  EXPECT_TRUE(message("app1", "a@example.com", 1, 9).refuses);
  clock_.advanceMs(61 * 1000);
  EXPECT_EQ(engine_->expireReservations(), 3u);
  EXPECT_EQ(message("app1", "a@example.com", 1, 9).action, "DUNNO");
}

TEST_F(EngineTest, RecipientsCountedAsAcceptedByPostfix) {
  configure(
      "rate_limits:\n"
      "  - {name: rcpts, key: sasl_username, count: recipients, windows: [{limit: 5, per: 1h}]}\n");
  // 4 RCPTs admitted by policyd, but Postfix accepted only 2 (later restrictions refused 2).
  for (int i = 0; i < 4; ++i) {
    ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "m1"},
                 {"recipient", "r" + std::to_string(i) + "@d.example"}});
  }
  ask("END-OF-MESSAGE", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "m1"},
                         {"recipient_count", "2"}});
  auto rows = limiter_->show("app1", static_cast<double>(clock_.nowMs()) * 1000, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].used, 2u);
  EXPECT_EQ(rows[0].reserved, 0u);
}

TEST_F(EngineTest, BytesUseTheRealSizeAtEndOfMessage) {
  configure(
      "rate_limits:\n"
      "  - {name: bytes, key: sasl_username, count: bytes, windows: [{limit: 10000, per: 1h}]}\n");
  // SIZE= announced 1000 but the message is 9000: counted as 9000.
  ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "b1"}, {"size", "1000"},
               {"recipient", "r@d.example"}});
  EXPECT_EQ(ask("END-OF-MESSAGE", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "b1"},
                                   {"size", "9000"}}).action, "DUNNO");
  // Next: no SIZE= at RCPT, 2000 bytes at the end: over the 10000 limit, deferred at end of data.
  EXPECT_FALSE(ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "b2"},
                            {"recipient", "r@d.example"}}).refuses);
  Decision d = ask("END-OF-MESSAGE", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "b2"},
                                      {"size", "2000"}});
  EXPECT_TRUE(d.refuses) << d.action;
}

TEST_F(EngineTest, EndOfMessageWithoutReservationIsCountedOnce) {
  configure(kThreePerHour);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ask("END-OF-MESSAGE", {{"sasl_username", "app1"}, {"instance", "e" + std::to_string(i)},
                                     {"recipient_count", "1"}}).action, "DUNNO");
  }
  EXPECT_TRUE(ask("END-OF-MESSAGE", {{"sasl_username", "app1"}, {"instance", "e9"}}).refuses);
}

TEST_F(EngineTest, MonitorModeOnlyLogs) {
  configure(
      "rate_limits:\n"
      "  - {name: watch, key: sasl_username, mode: monitor, action: REJECT, windows: [{limit: 1, per: 1h}]}\n");
  EXPECT_EQ(message("app1", "a@example.com").action, "DUNNO");
  EXPECT_EQ(message("app1", "a@example.com").action, "DUNNO");
  EXPECT_EQ(engine_->stats().monitorHits, 1u);
}

TEST_F(EngineTest, NonRefusingActionsPassThrough) {
  configure(
      "rate_limits:\n"
      "  - {name: soft, key: sasl_username, action: 'PREPEND X-Sluice-Rate: over', windows: [{limit: 1, per: 1h}]}\n"
      "  - {name: hard, key: sasl_username, windows: [{limit: 3, per: 1h}]}\n");
  EXPECT_EQ(message("app1", "a@example.com").action, "DUNNO");
  Decision d = ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "p"},
                            {"recipient", "x@d.example"}});
  EXPECT_EQ(d.action, "PREPEND X-Sluice-Rate: over");
  EXPECT_FALSE(d.refuses);
}

TEST_F(EngineTest, SenderOwnership) {
  configure("");
  struct Case { Attrs attrs; bool refuses; const char* want; };
  const Case cases[] = {
      {{{"sasl_username", "app1"}, {"sender", "a@example.com"}}, false, "DUNNO"},
      {{{"sasl_username", "app1"}, {"sender", "a@other.example"}}, true,
       "553 5.7.1 Sender address <a@other.example> is not owned by user app1"},
      {{{"sasl_username", "ghost"}, {"sender", "a@free.example"}}, true, "not owned by user ghost"},
      {{{"sasl_username", "app1"}, {"sender", ""}}, false, "DUNNO"},
      {{{"sender", "x@example.com"}, {"client_address", "198.51.100.7"}}, true,
       "553 5.7.1 Sender domain example.com requires authentication"},
      {{{"sender", "x@free.example"}, {"client_address", "198.51.100.7"}}, false, "DUNNO"},
      {{{"sender", "x@lan.example"}, {"client_address", "192.0.2.8"}}, false, "DUNNO"},
      {{{"sender", "x@free.example"}, {"client_address", "192.0.2.8"}}, true, "not owned by user client 192.0.2.8"},
  };
  for (const auto& c : cases) {
    Attrs a = c.attrs;
    a["recipient"] = "r@dest.example";
    Decision d = ask("RCPT", a);
    EXPECT_EQ(d.refuses, c.refuses) << "sender=" << a["sender"] << " user=" << a["sasl_username"] << ": " << d.action;
    EXPECT_NE(d.action.find(c.want), std::string::npos) << "got " << d.action << " want " << c.want;
  }
}

TEST_F(EngineTest, UnknownUsersAllowedWhenConfigured) {
  configure("sender_login:\n  allow_unknown_users: true\n");
  EXPECT_FALSE(ask("RCPT", {{"sasl_username", "ghost"}, {"sender", "a@free.example"}}).refuses);
  EXPECT_TRUE(ask("RCPT", {{"sasl_username", "ghost"}, {"sender", "a@example.com"}}).refuses)
      << "but never a protected domain";
}

TEST_F(EngineTest, RefusedSenderReservesNothing) {
  configure(kThreePerHour);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(message("app1", "a@other.example").refuses);
  EXPECT_EQ(message("app1", "a@example.com").action, "DUNNO");
  EXPECT_EQ(limiter_->show("app1", static_cast<double>(clock_.nowMs()) * 1000, 10)[0].used, 1u);
}

TEST_F(EngineTest, StoreFailureAnswersTheConfiguredAction) {
  configure("");
  engine_->setStoreHealthy(false);
  Decision d = ask("RCPT", {{"sasl_username", "app1"}, {"sender", "a@example.com"}});
  EXPECT_TRUE(d.refuses);
  EXPECT_EQ(d.rule, "store_error");
  EXPECT_EQ(d.action.rfind("DEFER_IF_PERMIT", 0), 0u) << d.action;
  EXPECT_EQ(ask("CONNECT", {}).action, "DUNNO") << "only RCPT and END-OF-MESSAGE depend on the store";
}

TEST_F(EngineTest, OtherProtocolStatesAreDunno) {
  configure(kThreePerHour);
  for (const char* s : {"CONNECT", "EHLO", "HELO", "DATA", "VRFY", "ETRN", "BDAT"}) {
    EXPECT_EQ(ask(s, {{"sasl_username", "app1"}}).action, "DUNNO") << s;
  }
}

void captureLog(LogLevel, std::string_view line, void* arg) {
  static_cast<std::vector<std::string>*>(arg)->push_back(std::string(line));
}

// Decision and monitor lines start with Postfix's queue_id when the request has one (a second
// RCPT, END-OF-MESSAGE), as Postfix's own lines about the message do.
TEST_F(EngineTest, DecisionLinesStartWithTheQueueId) {
  configure(
      "rate_limits:\n"
      "  - {name: watch, key: sasl_username, mode: monitor, action: REJECT, windows: [{limit: 1, per: 1h}]}\n");
  struct Case {
    const char* name;
    std::string state;
    Attrs attrs;
    std::string wantPrefix;
  };
  const Case cases[] = {
      {"first RCPT: no queue id yet", "RCPT",
       {{"sasl_username", "app1"}, {"sender", "a@other.example"}, {"recipient", "r@dest.example"}, {"instance", "q1"}},
       "reject: RCPT from -[127.0.0.1]: instance=q1 sasl_username=app1 from=<a@other.example>"},
      {"second RCPT: the queue id first", "RCPT",
       {{"sasl_username", "app1"}, {"sender", "a@other.example"}, {"recipient", "s@dest.example"}, {"instance", "q1"},
        {"queue_id", "4F2A1B3C"}},
       "4F2A1B3C: reject: RCPT from -[127.0.0.1]: instance=q1"},
      {"monitor line", "END-OF-MESSAGE",
       {{"sasl_username", "app1"}, {"sender", "a@example.com"}, {"instance", "q2"}, {"queue_id", "4F2A1B3D"},
        {"recipient_count", "1"}},
       "4F2A1B3D: monitor: rule=watch key=app1 state=END-OF-MESSAGE"},
  };
  EXPECT_EQ(message("app1", "a@example.com").action, "DUNNO");  // watch's one message of the hour
  for (const auto& c : cases) {
    std::vector<std::string> lines;
    setLogSink(captureLog, &lines);
    ask(c.state, c.attrs);
    setLogSink(nullptr, nullptr);
    ASSERT_EQ(lines.size(), 1u) << c.name;
    EXPECT_EQ(lines[0].substr(0, c.wantPrefix.size()), c.wantPrefix) << c.name << ": got " << lines[0];
  }
}

}  // namespace
}  // namespace sluice::decision
