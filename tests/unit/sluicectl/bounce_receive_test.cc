// bounce_receive_test.cc - tests of `sluicectl bounce receive` (sluicectl/bounce_receive.cc)
// against a queue index written by lib/queue as relayd writes it: a hard bounce to a VERP return
// path is suppressed and its `bounced` event goes into the webhook outbox (the rows relayd's
// sender posts) in the same transaction as an attempts row marked "(report)" that `sluicectl why`
// shows; a soft bounce is an event without suppression; without webhooks no outbox row but still
// the report row; a forged VERP mac writes nothing; an ARF complaint matched by Message-ID alone
// that names no recipient stands for the original's only recipient, and for nobody (logged)
// when the original had several.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "auth/user_store.h"
#include "bounce_cmd.h"
#include "config/config.h"
#include "events/outbox.h"
#include "queue/queue.h"
#include "suppress_store.h"
#include "temp_dir.h"
#include "verp/verp.h"
#include "why_cmd.h"

namespace sluice {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string dsn(const std::string& to, const std::string& rcpt, const std::string& status, const std::string& diag,
                const std::string& action) {
  return "From: MAILER-DAEMON@mx.dest.example\r\nTo: " + to +
         "\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
         "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.example\r\n\r\n"
         "Final-Recipient: rfc822; " + rcpt + "\r\nAction: " + action + "\r\nStatus: " + status +
         "\r\nRemote-MTA: dns; mx.dest.example\r\nDiagnostic-Code: smtp; " + diag + "\r\n\r\n--b1--\r\n";
}

// An ARF abuse report quoting Message-ID <mid>, naming `rcpt` ("" = nobody: no Original-Rcpt-To
// and no To: in the attached original).
std::string arf(const std::string& mid, const std::string& rcpt) {
  std::string s =
      "From: fbl@isp.example\r\nTo: fbl@example.com\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"f1\"\r\n\r\n"
      "--f1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\r\n"
      "--f1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n";
  if (!rcpt.empty()) s += "Original-Rcpt-To: " + rcpt + "\r\n";
  s += "\r\n--f1\r\nContent-Type: message/rfc822\r\n\r\nFrom: news@example.com\r\n";
  if (!rcpt.empty()) s += "To: " + rcpt + "\r\n";
  s += "Message-Id: <" + mid + ">\r\nSubject: newsletter\r\n\r\nhello\r\n\r\n--f1--\r\n";
  return s;
}

class BounceReceiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::QueueOptions o;
    o.stateDir = dir_;
    auto q = queue::Queue::open(o);  // as relayd: creates the index
    ASSERT_TRUE(q.ok()) << q.message();
    q_ = std::move(q.value());
    auto users = auth::UserStore::open(dir_, true);  // creates STATE_DIR/server.secret
    ASSERT_TRUE(users.ok()) << users.message();
    std::ifstream sf(dir_ + "/server.secret");
    std::getline(sf, secret_);
    ASSERT_GE(secret_.size(), 16u);
  }
  void TearDown() override { q_.reset(); }
  std::shared_ptr<const config::Config> config(bool webhooks) {
    std::string yaml = "state_dir: " + dir_ + "\n";
    if (webhooks) {
      yaml += "events:\n  webhooks:\n    - { url: \"http://127.0.0.1:9/hook\", secret: webhook-secret-0123456789, "
              "types: [bounced, complained] }\n";
    }
    auto c = config::loadConfigString(yaml, "t.yaml");
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.message());
    return c.ok() ? c.value() : nullptr;
  }
  std::string add(const std::vector<std::string>& rcpts, const std::string& messageId) {
    queue::NewMessage m;
    m.sender = "news@example.com";
    for (const auto& r : rcpts) m.recipients.push_back(queue::NewRecipient{r, "", ""});
    m.content = "Subject: newsletter\r\nMessage-Id: <" + messageId + ">\r\n\r\nbody\r\n";
    m.messageId = "<" + messageId + ">";
    m.identity = "newsletters";
    std::string id = queue::Queue::newId();
    auto st = q_->commit({&m}, {id});
    EXPECT_TRUE(st[0].ok()) << (st[0].ok() ? "" : st[0].message());
    return id;
  }
  std::string verp(const std::string& id, uint32_t index) {
    return verp::VerpCodec(secret_).encode("news", id, index, "bounces.example");
  }
  int receive(const config::Config& cfg, const std::string& envelopeRcpt, const std::string& message) {
    std::istringstream in(message);
    out_.str("");
    err_.str("");
    return ctl::runBounceReceive({"receive", "--recipient", envelopeRcpt}, cfg, in, out_, err_);
  }
  std::vector<events::EventOutbox::Item> outbox() {
    auto ob = events::EventOutbox::open(dir_ + "/queue.db");
    EXPECT_TRUE(ob.ok()) << (ob.ok() ? "" : ob.message());
    if (!ob.ok()) return {};
    auto due = ob.value()->due(INT64_MAX, 100);
    EXPECT_TRUE(due.ok());
    return due.ok() ? due.value() : std::vector<events::EventOutbox::Item>{};
  }
  std::vector<queue::Queue::Attempt> reports(const std::string& id) {
    std::vector<queue::Queue::Attempt> out;
    auto a = q_->attempts(id);
    EXPECT_TRUE(a.ok());
    for (const auto& t : a.value()) {
      if (t.tls == queue::Queue::kReportTls) out.push_back(t);
    }
    return out;
  }
  std::string suppressed(const config::Config& cfg) {
    auto s = ctl::openSuppressStore(cfg.store, false, nullptr);
    EXPECT_TRUE(s.ok());
    std::string all;
    if (!s.ok()) return all;
    auto entries = s.value()->list({});
    EXPECT_TRUE(entries.ok());
    if (!entries.ok()) return all;
    for (const auto& e : entries.value()) all += e.address + "/" + e.scope + " ";
    return all;
  }
  std::string why(const config::Config& cfg, const std::string& id) {
    std::ostringstream out, err;
    EXPECT_EQ(ctl::runWhyCommand({id}, cfg, out, err), 0) << err.str();
    return out.str();
  }

  test_util::TempDir tmp_{"sluice-bounce-rcv"};
  const std::string& dir_ = tmp_.path();
  std::string secret_;
  std::unique_ptr<queue::Queue> q_;
  std::ostringstream out_, err_;
};

TEST_F(BounceReceiveTest, HardBounceGoesIntoTheOutboxWithAReportRowAndIsSuppressed) {
  auto cfg = config(true);
  ASSERT_NE(cfg, nullptr);
  std::string id = add({"bob@dest.example", "carol@dest.example"}, "nl-1@example.com");
  ASSERT_EQ(receive(*cfg, verp(id, 0),
                    dsn(verp(id, 0), "bob@dest.example", "5.1.1", "550 5.1.1 <bob@dest.example>: User unknown", "failed")),
            0)
      << err_.str();
  EXPECT_EQ(out_.str(), "handled: 1 recipient(s), 1 suppressed\n") << err_.str();
  EXPECT_EQ(suppressed(*cfg), "bob@dest.example/example.com ");

  auto rows = outbox();
  ASSERT_EQ(rows.size(), 1u) << "want one outbox row (one endpoint), got " << rows.size();
  EXPECT_EQ(rows[0].url, "http://127.0.0.1:9/hook");
  auto ev = events::eventFromJson(rows[0].body);
  ASSERT_TRUE(ev.ok()) << rows[0].body;
  EXPECT_EQ(ev.value().type, events::EventType::kBounced);
  EXPECT_EQ(ev.value().queueId, id);
  EXPECT_EQ(ev.value().recipient, "bob@dest.example");
  EXPECT_EQ(ev.value().identity, "newsletters");
  EXPECT_EQ(ev.value().details["reason"], "userunknown");
  EXPECT_EQ(ev.value().details["suppressed"], true);
  EXPECT_EQ(rows[0].eventId, ev.value().id);

  auto r = reports(id);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].index, 0);
  EXPECT_EQ(r[0].mx, "mx.dest.example");
  EXPECT_NE(r[0].reply.find("bounce report (userunknown, 5.1.1), suppressed: 550 5.1.1"), std::string::npos) << r[0].reply;
  std::string w = why(*cfg, id);
  EXPECT_NE(w.find("from mx.dest.example  bounce report (userunknown, 5.1.1), suppressed"), std::string::npos) << w;

  // The convenience copy in events.jsonl carries the same event id.
  EXPECT_NE(readFile(dir_ + "/events.jsonl").find(ev.value().id), std::string::npos);
}

TEST_F(BounceReceiveTest, SoftBounceIsAnEventOnly) {
  auto cfg = config(true);
  ASSERT_NE(cfg, nullptr);
  std::string id = add({"bob@dest.example", "carol@dest.example"}, "nl-2@example.com");
  ASSERT_EQ(receive(*cfg, verp(id, 1),
                    dsn(verp(id, 1), "carol@dest.example", "4.2.2", "452 4.2.2 Mailbox full", "delayed")),
            0);
  EXPECT_EQ(out_.str(), "handled: 1 recipient(s), 0 suppressed\n") << err_.str();
  EXPECT_EQ(suppressed(*cfg), "");
  auto rows = outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0].body.find("\"recipient\":\"carol@dest.example\""), std::string::npos) << rows[0].body;
  EXPECT_NE(rows[0].body.find("\"suppressed\":false"), std::string::npos) << rows[0].body;
  auto r = reports(id);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].index, 1);
  EXPECT_NE(r[0].reply.find(", event only"), std::string::npos) << r[0].reply;
}

TEST_F(BounceReceiveTest, WithoutWebhooksNoOutboxRowButTheReportRow) {
  auto cfg = config(false);
  ASSERT_NE(cfg, nullptr);
  std::string id = add({"bob@dest.example"}, "nl-3@example.com");
  ASSERT_EQ(receive(*cfg, verp(id, 0), dsn(verp(id, 0), "bob@dest.example", "5.1.1", "550 5.1.1 User unknown", "failed")), 0);
  EXPECT_EQ(out_.str(), "handled: 1 recipient(s), 1 suppressed\n") << err_.str();
  EXPECT_TRUE(outbox().empty());
  EXPECT_EQ(reports(id).size(), 1u);
}

TEST_F(BounceReceiveTest, ForgedVerpWritesNothing) {
  auto cfg = config(true);
  ASSERT_NE(cfg, nullptr);
  std::string id = add({"bob@dest.example"}, "nl-4@example.com");
  std::string forged = verp(id, 0);
  forged.replace(forged.find('@') - 8, 8, forged.substr(forged.find('@') - 8, 8) == "aaaaaaaa" ? "bbbbbbbb" : "aaaaaaaa");
  ASSERT_EQ(receive(*cfg, forged, dsn(forged, "bob@dest.example", "5.1.1", "550 5.1.1 User unknown", "failed")), 0);
  EXPECT_EQ(out_.str(), "ignored: not verified\n");
  EXPECT_TRUE(outbox().empty());
  EXPECT_TRUE(reports(id).empty());
  EXPECT_EQ(suppressed(*cfg), "");
}

TEST_F(BounceReceiveTest, NamelessComplaintMeansTheOnlyRecipient) {
  auto cfg = config(true);
  ASSERT_NE(cfg, nullptr);
  std::string id = add({"dave@dest.example"}, "nl-5@example.com");
  ASSERT_EQ(receive(*cfg, "fbl@example.com", arf("nl-5@example.com", "")), 0);
  EXPECT_EQ(out_.str(), "handled: 1 recipient(s), 1 suppressed\n") << err_.str();
  EXPECT_EQ(suppressed(*cfg), "dave@dest.example/example.com ");
  auto rows = outbox();
  ASSERT_EQ(rows.size(), 1u);
  auto ev = events::eventFromJson(rows[0].body);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev.value().type, events::EventType::kComplained);
  EXPECT_EQ(ev.value().recipient, "dave@dest.example");
  EXPECT_EQ(ev.value().details["matched_by"], "message-id");
  EXPECT_TRUE(ev.value().details.contains("recipient_inferred")) << rows[0].body;
  auto r = reports(id);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NE(r[0].reply.find("complaint (abuse), suppressed"), std::string::npos) << r[0].reply;
}

TEST_F(BounceReceiveTest, NamelessComplaintAboutSeveralRecipientsSuppressesNobody) {
  auto cfg = config(true);
  ASSERT_NE(cfg, nullptr);
  std::string id = add({"erin@dest.example", "frank@dest.example"}, "nl-6@example.com");
  ASSERT_EQ(receive(*cfg, "fbl@example.com", arf("nl-6@example.com", "")), 0);
  EXPECT_EQ(out_.str(), "handled: 0 recipient(s), 0 suppressed\n") << err_.str();
  EXPECT_EQ(suppressed(*cfg), "");
  EXPECT_TRUE(outbox().empty());
  EXPECT_TRUE(reports(id).empty());
  // A complaint that names one of them still suppresses exactly that one.
  ASSERT_EQ(receive(*cfg, "fbl@example.com", arf("nl-6@example.com", "frank@dest.example")), 0);
  EXPECT_EQ(out_.str(), "handled: 1 recipient(s), 1 suppressed\n") << err_.str();
  EXPECT_EQ(suppressed(*cfg), "frank@dest.example/example.com ");
}

}  // namespace
}  // namespace sluice
