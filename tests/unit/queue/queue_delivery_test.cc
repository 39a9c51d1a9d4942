// queue_delivery_test.cc - tests of the delivery half of lib/queue (queue_delivery.cc):
// claimDue marks the rows it returns 'delivering' and returns only due rows (queued, or deferred
// whose next attempt has come; never held, delivering or final ones) up to its limit;
// resetDelivering turns a crash's leftovers into deferrals due now; record() writes outcomes and
// attempts in one transaction, deletes the spool file once every recipient is final and keeps the
// rows, and rolls everything back when its `extra` step fails; retryNow; purgeFinished; nextDueMs;
// recycled spool files (emptied in spool/free, reused by the next commit, emptied at start);
// record()'s follow-ups (relayd's DSNs, pending suppressions) durable with the outcome, also
// across a kill -9 inside or right after the transaction (a copy of the files at that moment).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "queue/queue.h"

namespace sluice::queue {
namespace {

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class QueueDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-queue-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    q_ = openQueue();
    ASSERT_NE(q_, nullptr);
  }
  void TearDown() override {
    q_.reset();
    // Not the throwing form: the process's spool/free pool outlives the Queue, and its janitor
    // may still be creating files in the directory while it goes (test_util::TempDir does the same).
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::unique_ptr<Queue> openQueue() {
    QueueOptions o;
    o.stateDir = dir_;
    auto q = Queue::open(o);
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.message());
    return q.ok() ? std::move(q.value()) : nullptr;
  }
  // Queues one message to `rcpts`; returns its id.
  std::string add(std::vector<std::string> rcpts, const std::string& subject = "hello") {
    NewMessage m;
    m.sender = "alice@sender.example";
    for (auto& r : rcpts) m.recipients.push_back(NewRecipient{r, "", ""});
    m.content = "Subject: " + subject + "\r\n\r\nbody\r\n";
    m.messageId = "<" + subject + "@sender.example>";
    std::string id = Queue::newId();
    auto st = q_->commit({&m}, {id});
    EXPECT_TRUE(st[0].ok()) << (st[0].ok() ? "" : st[0].message());
    return id;
  }
  std::map<int, std::string> states(const std::string& id) {
    std::map<int, std::string> out;
    auto m = q_->show(id);
    EXPECT_TRUE(m.ok());
    if (m.ok() && m->has_value()) {
      for (const auto& r : m->value().recipients) out[r.index] = r.state;
    }
    return out;
  }
  bool spoolExists(const std::string& id) { return std::filesystem::exists(q_->spoolPath(id)); }
  static Queue::Outcome outcome(const std::string& id, int index, const std::string& state, int64_t next = 0) {
    Queue::Outcome o;
    o.messageId = id;
    o.index = index;
    o.state = state;
    o.reply = state == "delivered" ? "250 2.0.0 Ok" : state == "deferred" ? "451 4.3.0 later" : "550 5.1.1 no";
    o.nextAttemptMs = next;
    o.mx = "mx.dest.example";
    o.ip = "192.0.2.1";
    o.tls = "none";
    return o;
  }

  std::string dir_;
  std::unique_ptr<Queue> q_;
};

TEST_F(QueueDeliveryTest, ClaimDueMarksDeliveringAndReturnsOnlyDueRows) {
  std::string a = add({"one@dest.example", "two@Other.Example"}, "a");
  std::string b = add({"three@dest.example"}, "b");
  int64_t now = wallMs() + 1;
  auto due = q_->claimDue(now, 100);
  ASSERT_TRUE(due.ok()) << due.message();
  ASSERT_EQ(due->size(), 3u);
  std::map<std::string, Queue::Due> byAddr;
  for (const auto& d : *due) byAddr[d.address] = d;
  EXPECT_EQ(byAddr["one@dest.example"].messageId, a);
  EXPECT_EQ(byAddr["one@dest.example"].index, 0);
  EXPECT_EQ(byAddr["two@Other.Example"].index, 1);
  EXPECT_EQ(byAddr["two@Other.Example"].domain, "other.example");  // lower-cased for grouping
  EXPECT_EQ(byAddr["three@dest.example"].messageId, b);
  EXPECT_EQ(byAddr["three@dest.example"].attempts, 0);
  EXPECT_EQ(states(a), (std::map<int, std::string>{{0, "delivering"}, {1, "delivering"}}));
  EXPECT_EQ(states(b), (std::map<int, std::string>{{0, "delivering"}}));
  // Claimed rows are not due again, however late it gets.
  auto again = q_->claimDue(now + 86400000, 100);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << again->size() << " rows claimed twice";
}

TEST_F(QueueDeliveryTest, ClaimDueHonoursLimitTimeAndHeld) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(add({"r" + std::to_string(i) + "@dest.example"}, "m" + std::to_string(i)));
  std::string held = add({"held@dest.example"}, "held");
  ASSERT_EQ(q_->hold(held).value(), 1u);
  // Queued rows are due from their arrival: nothing is due before it.
  auto early = q_->claimDue(0, 100);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty());
  int64_t now = wallMs() + 1;
  auto first = q_->claimDue(now, 2);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 2u);
  auto rest = q_->claimDue(now, 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 3u) << "the held recipient must not be claimed";
  for (const auto& d : *rest) EXPECT_NE(d.messageId, held);
  EXPECT_EQ(states(held), (std::map<int, std::string>{{0, "held"}}));

  // Deferred: due only once its next attempt has come.
  std::vector<Queue::Outcome> out;
  for (const auto& d : *first) out.push_back(outcome(d.messageId, d.index, "deferred", now + 60000));
  ASSERT_TRUE(q_->record(out).ok());
  auto notYet = q_->claimDue(now + 59999, 100);
  ASSERT_TRUE(notYet.ok());
  EXPECT_TRUE(notYet->empty());
  auto due = q_->claimDue(now + 60000, 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].attempts, 1) << "the deferral counted as an attempt";
}

// Fairness: a backlog of due mail to one domain does not take every claim. With a cap per
// domain, the other domain's one due message (the newest) is claimed in the first claim; the
// backlog's rows past the cap wait parked (not due, not skipped again), go on oldest first as the
// domain's claimed rows finish, and are deferred again by resetDelivering() (a restart).
TEST_F(QueueDeliveryTest, ClaimDueIsFairAcrossDomains) {
  // 20 messages of 100 recipients each (rows are what a claim reads; few spool files keep the
  // test fast).
  constexpr size_t kMessages = 20, kPerMessage = 100, kBacklog = kMessages * kPerMessage, kCap = 100;
  std::vector<std::string> busyIds;
  std::vector<std::pair<std::string, int>> busy;  // rows in arrival order
  std::vector<NewMessage> msgs(kMessages);
  std::vector<const NewMessage*> batch;
  for (size_t i = 0; i < kMessages; ++i) {
    msgs[i].sender = "alice@sender.example";
    for (size_t k = 0; k < kPerMessage; ++k) {
      msgs[i].recipients.push_back(NewRecipient{"r" + std::to_string(i * kPerMessage + k) + "@busy.example", "", ""});
    }
    msgs[i].content = "Subject: b\r\n\r\nbody\r\n";
    batch.push_back(&msgs[i]);
    busyIds.push_back(Queue::newId());
    for (size_t k = 0; k < kPerMessage; ++k) busy.emplace_back(busyIds.back(), static_cast<int>(k));
  }
  for (const auto& st : q_->commit(batch, busyIds)) ASSERT_TRUE(st.ok()) << st.message();
  std::string quiet = add({"someone@quiet.example"}, "quiet");
  int64_t now = wallMs() + 1;

  // Without a cap (the old behaviour) the oldest rows would fill the claim: all busy.example.
  auto first = q_->claimDue(now, 500, kCap);
  ASSERT_TRUE(first.ok()) << first.message();
  std::map<std::string, size_t> byDomain;
  for (const auto& d : *first) ++byDomain[d.domain];
  EXPECT_EQ(byDomain["quiet.example"], 1u) << "the other domain's message must be claimed in the first claim";
  EXPECT_EQ(byDomain["busy.example"], kCap) << "got " << byDomain["busy.example"] << " busy rows, want the cap";
  auto counts = [&] {
    std::map<std::string, int64_t> m;
    auto c = q_->countsByState();
    EXPECT_TRUE(c.ok());
    if (c.ok()) {
      for (const auto& [state, n] : *c) m[state] = n;
    }
    return m;
  };
  EXPECT_EQ(counts()["parked"], static_cast<int64_t>(kBacklog - kCap));
  EXPECT_EQ(counts()["delivering"], static_cast<int64_t>(kCap + 1));
  EXPECT_EQ(q_->nextDueMs().value(), std::nullopt) << "parked rows are not read by the due index again";

  // At its cap the busy domain gets nothing more, however often the scheduler claims.
  auto second = q_->claimDue(now, 500, kCap);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty()) << second->size() << " rows claimed past the cap";
  // A new due message to a third domain is still claimed at once.
  std::string third = add({"x@third.example"}, "third");
  auto third1 = q_->claimDue(wallMs() + 1, 500, kCap);
  ASSERT_TRUE(third1.ok());
  ASSERT_EQ(third1->size(), 1u);
  EXPECT_EQ((*third1)[0].messageId, third);

  // Half of the busy domain's claimed rows finish: the next claim gives it as many, the oldest
  // parked ones first.
  std::vector<Queue::Outcome> done;
  for (size_t i = 0; i < kCap / 2; ++i) done.push_back(outcome((*first)[i].messageId, (*first)[i].index, "delivered"));
  ASSERT_TRUE(q_->record(done).ok());
  auto refill = q_->claimDue(wallMs() + 1, 500, kCap);
  ASSERT_TRUE(refill.ok());
  ASSERT_EQ(refill->size(), kCap / 2);
  std::vector<std::pair<std::string, int>> got, want(busy.begin() + kCap, busy.begin() + kCap + kCap / 2);
  for (const auto& d : *refill) got.emplace_back(d.messageId, d.index);
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want) << "parked rows go on in arrival order";

  // A parked recipient can be held (sluicectl queue hold), and a restart makes the parked rows
  // due deferrals again.
  ASSERT_EQ(q_->hold(busyIds.back()).value(), kPerMessage);
  auto reset = q_->resetDelivering();
  ASSERT_TRUE(reset.ok());
  auto after = counts();
  EXPECT_EQ(after["parked"], 0);
  EXPECT_EQ(after["held"], static_cast<int64_t>(kPerMessage));
  // Everything not delivered or held: the busy rows, quiet's and third's.
  EXPECT_EQ(after["deferred"], static_cast<int64_t>(kBacklog - kCap / 2 - kPerMessage + 2));
  auto again = q_->claimDue(wallMs() + 1, 5000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), static_cast<size_t>(after["deferred"]));
  (void)quiet;
}

TEST_F(QueueDeliveryTest, NextDueMs) {
  auto none = q_->nextDueMs();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  int64_t before = wallMs();
  std::string a = add({"one@dest.example", "two@dest.example"});
  auto next = q_->nextDueMs();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_GE(**next, before);
  EXPECT_LE(**next, wallMs());
  auto due = q_->claimDue(wallMs() + 1, 100);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_FALSE(q_->nextDueMs()->has_value()) << "delivering rows are not due";
  int64_t t = wallMs() + 3600000;
  ASSERT_TRUE(q_->record({outcome(a, 0, "deferred", t + 5), outcome(a, 1, "deferred", t)}).ok());
  EXPECT_EQ(q_->nextDueMs()->value_or(-1), t);
  ASSERT_TRUE(q_->record({outcome(a, 1, "bounced")}).ok());
  EXPECT_EQ(q_->nextDueMs()->value_or(-1), t + 5) << "final rows are not due";
}

TEST_F(QueueDeliveryTest, ResetDeliveringMakesCrashLeftoversDueNow) {
  std::string a = add({"one@dest.example", "two@dest.example"}, "a");
  std::string b = add({"three@dest.example"}, "b");
  auto due = q_->claimDue(wallMs() + 1, 100);
  ASSERT_EQ(due->size(), 3u);
  ASSERT_TRUE(q_->record({outcome(b, 0, "delivered")}).ok());
  // A new process (after kill -9): the queue is opened again and the claims reset.
  q_ = openQueue();
  ASSERT_NE(q_, nullptr);
  int64_t before = wallMs();
  auto n = q_->resetDelivering();
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(states(a), (std::map<int, std::string>{{0, "deferred"}, {1, "deferred"}}));
  EXPECT_EQ(states(b), (std::map<int, std::string>{{0, "delivered"}}));
  auto next = q_->nextDueMs();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_GE(**next, before);
  EXPECT_LE(**next, wallMs());
  auto again = q_->claimDue(wallMs() + 1, 100);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 2u);
  EXPECT_EQ(q_->resetDelivering().value(), 2u);
  EXPECT_EQ(q_->resetDelivering().value(), 0u);
}

TEST_F(QueueDeliveryTest, RecordDeletesContentWhenAllFinalAndKeepsRows) {
  std::string a = add({"one@dest.example", "two@dest.example", "three@dest.example"});
  auto due = q_->claimDue(wallMs() + 1, 100);
  ASSERT_EQ(due->size(), 3u);
  ASSERT_TRUE(spoolExists(a));
  auto r1 = q_->record({outcome(a, 0, "delivered"), outcome(a, 1, "deferred", wallMs() + 60000)});
  ASSERT_TRUE(r1.ok()) << r1.message();
  EXPECT_TRUE(r1->empty());
  EXPECT_TRUE(spoolExists(a)) << "recipients 1 and 2 are not final";
  EXPECT_TRUE(q_->content(a).ok());

  Queue::Outcome supp = outcome(a, 2, "suppressed");
  supp.attempted = false;
  auto r2 = q_->record({supp});
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->empty());
  EXPECT_TRUE(spoolExists(a)) << "recipient 1 is still deferred";

  auto again = q_->claimDue(wallMs() + 120000, 100);
  ASSERT_EQ(again->size(), 1u);
  auto r3 = q_->record({outcome(a, 1, "bounced")});
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(*r3, std::vector<std::string>{a});
  EXPECT_FALSE(spoolExists(a)) << "every recipient is final: the content goes";
  EXPECT_FALSE(q_->content(a).ok());

  // The rows stay (late bounces and complaints match them).
  EXPECT_EQ(states(a), (std::map<int, std::string>{{0, "delivered"}, {1, "bounced"}, {2, "suppressed"}}));
  auto env = q_->envelope(a);
  ASSERT_TRUE(env.ok() && env->has_value());
  EXPECT_EQ(env->value().messageId, "<hello@sender.example>");
  ASSERT_EQ(env->value().recipients.size(), 3u);
  EXPECT_EQ(env->value().recipients[1].attempts, 2);
  EXPECT_EQ(env->value().recipients[2].attempts, 0) << "a suppression is not an attempt";
  auto att = q_->attempts(a);
  ASSERT_TRUE(att.ok());
  ASSERT_EQ(att->size(), 3u) << "attempts: 0 delivered, 1 deferred, 1 bounced; none for the suppression";
  EXPECT_EQ((*att)[0].mx, "mx.dest.example");
  EXPECT_EQ((*att)[0].ip, "192.0.2.1");
  EXPECT_EQ((*att)[2].reply, "550 5.1.1 no");
  // The spool file does not come back with a reopen (recovery) either.
  q_ = openQueue();
  EXPECT_FALSE(spoolExists(a));
  EXPECT_EQ(states(a).size(), 3u);
}

TEST_F(QueueDeliveryTest, RecordIsOneTransactionWithItsExtraStep) {
  std::string a = add({"one@dest.example"});
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 100)->size(), 1u);
  auto failed = q_->record({outcome(a, 0, "delivered")}, [](sqlite3*) -> Status { return makeError("outbox full"); });
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("outbox full"), std::string::npos) << failed.message();
  EXPECT_EQ(states(a), (std::map<int, std::string>{{0, "delivering"}})) << "rolled back";
  EXPECT_TRUE(spoolExists(a));
  EXPECT_TRUE(q_->attempts(a)->empty());
  bool ran = false;
  auto ok = q_->record({outcome(a, 0, "delivered")}, [&ran](sqlite3* db) -> Status {
    ran = db != nullptr;
    return okStatus();
  });
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_TRUE(ran);
  EXPECT_FALSE(spoolExists(a));
}

TEST_F(QueueDeliveryTest, RetryNow) {
  std::string a = add({"one@dest.example", "two@dest.example"}, "a");
  std::string b = add({"three@dest.example"}, "b");
  std::string c = add({"four@dest.example"}, "c");
  ASSERT_TRUE(q_->hold(c).ok());
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 100)->size(), 3u);
  int64_t later = wallMs() + 3600000;
  ASSERT_TRUE(q_->record({outcome(a, 0, "deferred", later), outcome(a, 1, "delivered"), outcome(b, 0, "deferred", later)}).ok());
  EXPECT_TRUE(q_->claimDue(wallMs() + 1, 100)->empty());

  auto one = q_->retryNow(a);
  ASSERT_TRUE(one.ok()) << one.message();
  EXPECT_EQ(*one, 1u) << "only the deferred recipient of a";
  auto due = q_->claimDue(wallMs() + 1, 100);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].messageId, a);
  EXPECT_EQ((*due)[0].index, 0);

  auto all = q_->retryNow("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 1u) << "b's deferral; not delivering, delivered or held rows";
  due = q_->claimDue(wallMs() + 1, 100);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].messageId, b);
  EXPECT_EQ(states(c), (std::map<int, std::string>{{0, "held"}}));
  EXPECT_EQ(q_->retryNow("NOSUCHID00000000").value(), 0u);
}

TEST_F(QueueDeliveryTest, PurgeFinished) {
  std::string done = add({"one@dest.example"}, "done");
  std::string open = add({"two@dest.example", "three@dest.example"}, "open");
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 100)->size(), 3u);
  ASSERT_TRUE(q_->record({outcome(done, 0, "delivered"), outcome(open, 0, "bounced"),
                          outcome(open, 1, "deferred", wallMs() + 60000)}).ok());
  // Nothing was received before the cut-off: nothing goes.
  auto none = q_->purgeFinished(0);
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(states(done).size(), 1u);

  auto n = q_->purgeFinished(wallMs() + 1000);
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, 1u);
  auto gone = q_->show(done);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value()) << "the finished message's rows are removed";
  EXPECT_FALSE(q_->envelope(done)->has_value());
  EXPECT_TRUE(q_->attempts(done)->empty());
  EXPECT_EQ(states(open), (std::map<int, std::string>{{0, "bounced"}, {1, "deferred"}})) << "unfinished: kept";
  EXPECT_FALSE(q_->attempts(open)->empty());
  EXPECT_TRUE(spoolExists(open));
}

TEST_F(QueueDeliveryTest, ContentComesBackByteForByteAtEverySize) {
  // content() sizes its buffer from fstat with a byte to spare; the sizes around the 64 KB read
  // step and an empty body must all come back exactly.
  for (size_t n : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{65537}, size_t{102400}, size_t{300001}}) {
    NewMessage m;
    m.sender = "alice@sender.example";
    m.recipients.push_back(NewRecipient{"bob@dest.example", "", ""});
    m.content.reserve(n);
    for (size_t i = 0; i < n; ++i) m.content += static_cast<char>('a' + i % 26);
    std::string id = Queue::newId();
    auto st = q_->commit({&m}, {id});
    ASSERT_TRUE(st[0].ok()) << st[0].message();
    auto c = q_->content(id);
    ASSERT_TRUE(c.ok()) << c.message();
    EXPECT_EQ(c.value().size(), n);
    EXPECT_TRUE(c.value() == m.content) << "size " << n;
  }
}

// A finished message's spool file leaves the spool at once and is emptied in spool/free/; new
// messages go into files of that pool (recycled, or created ahead by its janitor), not new
// inodes; files a crash left there with content are emptied at start.
TEST_F(QueueDeliveryTest, FinishedSpoolFilesAreEmptiedAndReused) {
  namespace fs = std::filesystem;
  std::string a = add({"one@dest.example"}, "first");
  struct stat st {};
  ASSERT_EQ(::stat(q_->spoolPath(a).c_str(), &st), 0);
  ino_t inode = st.st_ino;
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 10)->size(), 1u);
  auto r = q_->record({outcome(a, 0, "delivered")});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(spoolExists(a));
  fs::path free = fs::path(dir_) / "spool" / "free";
  auto inodes = [&] {
    std::map<ino_t, uintmax_t> out;  // inode -> size
    for (const auto& e : fs::directory_iterator(free)) {
      struct stat s {};
      if (::stat(e.path().c_str(), &s) == 0) out[s.st_ino] = static_cast<uintmax_t>(s.st_size);
    }
    return out;
  };
  bool emptied = false;
  for (int i = 0; i < 200 && !emptied; ++i) {
    auto in = inodes();
    emptied = in.count(inode) != 0 && in[inode] == 0;
    if (!emptied) usleep(10000);
  }
  ASSERT_TRUE(emptied) << "the finished message's file is in spool/free, emptied";

  // The janitor also keeps a stock of new empty files (256-512) once the queue was opened with
  // recovery: wait until it has stopped adding, so that `before` holds every file b may take.
  auto before = inodes();
  for (int i = 0; i < 300; ++i) {
    usleep(20000);
    auto now = inodes();
    if (now.size() == before.size()) break;
    before = std::move(now);
  }
  std::string b = add({"two@dest.example"}, "second");
  ASSERT_EQ(::stat(q_->spoolPath(b).c_str(), &st), 0);
  EXPECT_EQ(before.count(st.st_ino), 1u) << "the new message went into a file of the pool, not a new inode";
  auto c = q_->content(b);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.value(), "Subject: second\r\n\r\nbody\r\n");
  EXPECT_EQ(inodes().count(st.st_ino), 0u);

  // A file with content left in spool/free (a crash inside commit) is emptied by the next start.
  std::string leftover = (free / "12345.1").string();
  FILE* f = fopen(leftover.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("Subject: never acknowledged\r\n", f);
  fclose(f);
  q_ = openQueue();
  ASSERT_NE(q_, nullptr);
  EXPECT_EQ(fs::file_size(leftover), 0u);
  EXPECT_TRUE(spoolExists(b)) << "an acknowledged message is untouched";
}


// ---- follow-ups: relayd's DSNs and hard-bounce suppressions, durable with the outcome ----

NewMessage dsnFor(const std::string& id) {
  NewMessage m;
  m.sender = "";
  m.recipients.push_back(NewRecipient{"alice@sender.example", "", "NEVER"});
  m.content = "Subject: Undelivered Mail Returned to Sender\r\nX-Dsn-For: " + id + "\r\n\r\nreport\r\n";
  m.messageId = "<dsn-" + id + "@relay.example>";
  return m;
}

Queue::PendingSuppression suppressionFor(const std::string& id, int index, const std::string& address) {
  return Queue::PendingSuppression{id, index, address, "sender.example", "hard-bounce:5.1.1", "relayd:" + id, 1234};
}

// What a hard bounce of message `id`'s recipient 0 (gone@dest.example) calls for: its DSN and its
// suppression.
Queue::Followups bounceFollowups(const std::string& id, const NewMessage& dsn) {
  Queue::Followups f;
  f.messages = {&dsn};
  f.ids = {Queue::newId()};
  f.suppressions = {suppressionFor(id, 0, "gone@dest.example")};
  return f;
}

// Messages (by sender) whose content mentions `needle`, and their states.
std::vector<MessageInfo> dsnsIn(Queue& q, const std::string& forId) {
  std::vector<MessageInfo> out;
  auto all = q.list();
  EXPECT_TRUE(all.ok());
  if (!all.ok()) return out;
  for (auto& m : all.value()) {
    if (m.sender.empty() && m.messageId == "<dsn-" + forId + "@relay.example>") out.push_back(m);
  }
  return out;
}

// What a kill -9 at this moment leaves on disk: the index and its WAL (not the shared-memory
// index, which SQLite rebuilds) and the spool files, copied to `to`.
void crashImage(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(to + "/spool", ec);
  for (const char* f : {"queue.db", "queue.db-wal"}) fs::copy_file(from + "/" + f, to + "/" + f, ec);
  for (const auto& d : fs::directory_iterator(from + "/spool", ec)) {
    if (!d.is_directory() || d.path().filename() == "free") continue;
    fs::copy(d.path(), to + "/spool/" + d.path().filename().string(), fs::copy_options::recursive, ec);
  }
}

TEST_F(QueueDeliveryTest, RecordCommitsFollowupDsnAndSuppressionWithTheOutcome) {
  std::string a = add({"gone@dest.example", "ok@dest.example"});
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 100)->size(), 2u);
  NewMessage dsn = dsnFor(a);
  Queue::Followups f = bounceFollowups(a, dsn);
  auto r = q_->record({outcome(a, 0, "bounced"), outcome(a, 1, "delivered")}, nullptr, &f);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(states(a), (std::map<int, std::string>{{0, "bounced"}, {1, "delivered"}}));
  auto dsns = dsnsIn(*q_, a);
  ASSERT_EQ(dsns.size(), 1u) << "got " << dsns.size() << " DSNs, want 1";
  EXPECT_EQ(dsns[0].id, f.ids[0]);
  ASSERT_EQ(dsns[0].recipients.size(), 1u);
  EXPECT_EQ(dsns[0].recipients[0].address, "alice@sender.example");
  EXPECT_EQ(dsns[0].recipients[0].state, "queued");
  EXPECT_EQ(q_->content(f.ids[0]).valueOr(""), dsn.content);
  auto env = q_->envelope(f.ids[0]);
  ASSERT_TRUE(env.ok() && env->has_value());
  EXPECT_EQ(env->value().recipients[0].notify, "NEVER");

  auto pending = q_->pendingSuppressions();
  ASSERT_TRUE(pending.ok()) << pending.message();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].messageId, a);
  EXPECT_EQ((*pending)[0].index, 0);
  EXPECT_EQ((*pending)[0].address, "gone@dest.example");
  EXPECT_EQ((*pending)[0].scope, "sender.example");
  EXPECT_EQ((*pending)[0].reason, "hard-bounce:5.1.1");
  EXPECT_EQ((*pending)[0].createdMs, 1234);
  // Still there after a restart until forgotten.
  q_ = openQueue();
  ASSERT_EQ(q_->pendingSuppressions()->size(), 1u);
  ASSERT_TRUE(q_->forgetSuppressions(*pending).ok());
  EXPECT_TRUE(q_->pendingSuppressions()->empty());
  EXPECT_TRUE(q_->forgetSuppressions(*pending).ok()) << "forgetting twice is harmless";
}

TEST_F(QueueDeliveryTest, FailedRecordLeavesNeitherOutcomeNorFollowups) {
  std::string a = add({"gone@dest.example"});
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 100)->size(), 1u);
  NewMessage dsn = dsnFor(a);
  Queue::Followups f = bounceFollowups(a, dsn);
  auto r = q_->record({outcome(a, 0, "bounced")}, [](sqlite3*) -> Status { return makeError("outbox full"); }, &f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(states(a), (std::map<int, std::string>{{0, "delivering"}}));
  EXPECT_TRUE(dsnsIn(*q_, a).empty());
  EXPECT_FALSE(spoolExists(f.ids[0])) << "the DSN's spool file is removed with the rolled-back transaction";
  EXPECT_TRUE(q_->pendingSuppressions()->empty());
}

// kill -9 between the DSN's synced spool file and the COMMIT of the bounce: after the restart
// the bounce is not recorded, the DSN file is gone (recover), the recipient is due again, and the
// next attempt's bounce brings exactly one DSN; a kill -9 right after the COMMIT keeps both, and
// the suppression waits in the index for the re-drive at start.
TEST_F(QueueDeliveryTest, CrashAroundRecordNeverLosesOrDoublesTheDsn) {
  std::string a = add({"gone@dest.example"});
  ASSERT_EQ(q_->claimDue(wallMs() + 1, 100)->size(), 1u);
  NewMessage dsn = dsnFor(a);
  Queue::Followups f = bounceFollowups(a, dsn);
  std::string before = dir_ + "-crash-before-commit";
  auto r = q_->record({outcome(a, 0, "bounced")}, [&](sqlite3*) -> Status {
    EXPECT_TRUE(spoolExists(f.ids[0])) << "the DSN's file is written before the transaction commits";
    crashImage(dir_, before);
    return okStatus();
  }, &f);
  ASSERT_TRUE(r.ok()) << r.message();
  std::string after = dir_ + "-crash-after-commit";
  crashImage(dir_, after);

  {  // restart from the image taken inside the transaction
    QueueOptions o;
    o.stateDir = before;
    auto q = Queue::open(o);
    ASSERT_TRUE(q.ok()) << q.message();
    Queue& cq = *q.value();
    EXPECT_FALSE(std::filesystem::exists(cq.spoolPath(f.ids[0]))) << "recover() removes the DSN file without index rows";
    EXPECT_TRUE(dsnsIn(cq, a).empty());
    EXPECT_TRUE(cq.pendingSuppressions()->empty());
    ASSERT_EQ(cq.resetDelivering().value(), 1u) << "the bounced recipient is due again";
    auto due = cq.claimDue(wallMs() + 1, 100);
    ASSERT_EQ(due->size(), 1u);
    EXPECT_EQ((*due)[0].messageId, a);
    Queue::Followups again = f;
    again.ids = {Queue::newId()};
    ASSERT_TRUE(cq.record({outcome(a, 0, "bounced")}, nullptr, &again).ok());
    EXPECT_EQ(dsnsIn(cq, a).size(), 1u) << "exactly one DSN after the retried bounce";
    EXPECT_EQ(cq.pendingSuppressions()->size(), 1u);
  }
  {  // restart from the image taken after the COMMIT
    QueueOptions o;
    o.stateDir = after;
    auto q = Queue::open(o);
    ASSERT_TRUE(q.ok()) << q.message();
    Queue& cq = *q.value();
    EXPECT_EQ(cq.resetDelivering().value(), 0u);
    auto dsns = dsnsIn(cq, a);
    ASSERT_EQ(dsns.size(), 1u);
    EXPECT_EQ(dsns[0].recipients[0].state, "queued") << "the DSN is there, due for delivery";
    EXPECT_TRUE(cq.content(f.ids[0]).ok());
    ASSERT_EQ(cq.pendingSuppressions()->size(), 1u) << "the suppression waits for the re-drive";
  }
  std::filesystem::remove_all(before);
  std::filesystem::remove_all(after);
}

}  // namespace
}  // namespace sluice::queue
