// delivery_report_test.cc - tests of relay-core/delivery_report.cc that need no network:
// Delivery::redriveSuppressions, run at start, adds to the suppression list the hard bounces a
// crash left recorded in the queue index (Queue::PendingSuppression) but not yet on the list, and
// forgets them there; running it again changes nothing.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "delivery.h"
#include "queue/queue.h"
#include "store/store_sqlite.h"

namespace sluice::relayd {
namespace {

TEST(DeliveryReportTest, RedriveAddsPendingSuppressionsOnceAndForgetsThem) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-redrive-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  {
    queue::QueueOptions qo;
    qo.stateDir = dir;
    auto q = queue::Queue::open(qo);
    ASSERT_TRUE(q.ok()) << q.message();
    queue::Queue& queue = *q.value();
    // A bounce recorded with its suppression; the process died before the list was written.
    queue::NewMessage m;
    m.sender = "alice@sender.example";
    m.recipients = {{"Gone@Dest.Example", "", ""}, {"also-gone@dest.example", "", ""}};
    m.content = "Subject: x\r\n\r\nx\r\n";
    std::string id = queue::Queue::newId();
    ASSERT_TRUE(queue.commit({&m}, {id})[0].ok());
    ASSERT_EQ(queue.claimDue(INT64_MAX / 2, 10)->size(), 2u);
    queue::Queue::Followups f;
    std::vector<queue::Queue::Outcome> out;
    for (int i = 0; i < 2; ++i) {
      queue::Queue::Outcome o;
      o.messageId = id;
      o.index = i;
      o.state = "bounced";
      o.reply = "550 5.1.1 no such user";
      out.push_back(o);
    }
    f.suppressions.push_back({id, 0, "gone@dest.example", "sender.example", "hard-bounce:5.1.1", "relayd:" + id, 1});
    f.suppressions.push_back({id, 1, "also-gone@dest.example", "", "hard-bounce:5.1.1", "relayd:" + id, 2});
    ASSERT_TRUE(queue.record(out, nullptr, &f).ok());

    store::SqliteOptions so;
    so.path = dir + "/sluice.db";
    auto s = store::SqliteStore::open(so);
    ASSERT_TRUE(s.ok()) << s.message();
    store::SqliteStore& list = *s.value();
    auto n = Delivery::redriveSuppressions(queue, list);
    ASSERT_TRUE(n.ok()) << n.message();
    EXPECT_EQ(*n, 2u);
    auto entries = list.list(store::SuppressionFilter{});
    ASSERT_TRUE(entries.ok()) << entries.message();
    ASSERT_EQ(entries->size(), 2u) << "got " << entries->size() << " suppression entries, want 2";
    std::map<std::string, store::SuppressionEntry> byAddr;
    for (const auto& e : entries.value()) byAddr[e.address] = e;
    EXPECT_EQ(byAddr["gone@dest.example"].scope, "sender.example");
    EXPECT_EQ(byAddr["gone@dest.example"].reason, "hard-bounce:5.1.1");
    EXPECT_EQ(byAddr["gone@dest.example"].source, "relayd:" + id);
    EXPECT_EQ(byAddr["also-gone@dest.example"].scope, "") << "a global-scope entry stays global";
    EXPECT_TRUE(queue.pendingSuppressions()->empty());
    auto again = Delivery::redriveSuppressions(queue, list);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
    EXPECT_EQ(list.list(store::SuppressionFilter{})->size(), 2u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::relayd
