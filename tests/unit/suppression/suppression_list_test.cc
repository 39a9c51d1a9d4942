// suppression_list_test.cc - tests of policyd's in-memory suppression list
// (lib/suppression/suppression_list.*): scope and expiry semantics, case-insensitivity, following
// another connection's writes with refresh(), the fallback to a full load after a purge, keeping
// the old copy when the store fails, and a randomized comparison against a simple model.
#include "suppression/suppression_list.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <utility>

#include "base/clock.h"
#include "store/store_sqlite.h"

namespace sluice {
namespace {

using store::SqliteStore;
using store::SuppressionEntry;

constexpr int64_t kDayMs = 86'400'000;

SuppressionEntry entry(std::string address, std::string scope = "", int64_t expiresMs = 0,
                       std::string reason = "manual") {
  SuppressionEntry e;
  e.address = std::move(address);
  e.scope = std::move(scope);
  e.reason = std::move(reason);
  e.source = "test";
  e.expiresMs = expiresMs;
  return e;
}

// A store whose every call fails, to check that a failed load keeps the old copy.
class BrokenStore final : public store::SuppressionStore {
 public:
  Status add(const SuppressionEntry&) override { return fail(); }
  Result<size_t> addBatch(const std::vector<SuppressionEntry>&) override { return fail(); }
  Result<bool> remove(std::string_view, std::string_view) override { return fail(); }
  Result<std::vector<SuppressionEntry>> list(const store::SuppressionFilter&) override { return fail(); }
  Result<size_t> count() override { return fail(); }
  Result<std::vector<store::SuppressionChange>> changesSince(int64_t, size_t) override { return fail(); }
  Result<int64_t> currentSeq() override { return seq; }
  Result<int64_t> oldestRetainedSeq() override { return fail(); }
  int64_t seq = 1000;

 private:
  static Error fail() { return makeError("disk on fire"); }
};

class SuppressionListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-suppr-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    writer_ = open();
    reader_ = open();
    ASSERT_TRUE(writer_ && reader_);
  }
  void TearDown() override {
    writer_.reset();
    reader_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<SqliteStore> open() {
    store::SqliteOptions o;
    o.path = dir_ + "/sluice.db";
    auto s = SqliteStore::open(o, &clock_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.message());
    return s.ok() ? std::move(s).value() : nullptr;
  }
  void add(const SuppressionEntry& e) { ASSERT_TRUE(writer_->add(e).ok()); }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<SqliteStore> writer_;  // plays sluicectl / relayd
  std::unique_ptr<SqliteStore> reader_;  // plays policyd
  SuppressionList list_;
};

TEST_F(SuppressionListTest, ScopeAndExpiry) {
  int64_t now = clock_.nowMs();
  add(entry("global@x.com"));
  add(entry("scoped@x.com", "shop.example"));
  add(entry("expiring@x.com", "", now + 1000));
  add(entry("expired@x.com", "", now - 1));
  add(entry("both@x.com", "", now - 1, "old-global"));  // expired global entry
  add(entry("both@x.com", "shop.example", 0, "scoped"));
  ASSERT_TRUE(list_.load(*reader_).ok());
  EXPECT_EQ(list_.size(), 6u);
  struct Case {
    const char* rcpt;
    const char* senderDomain;
    int64_t at;
    const char* wantReason;  // nullptr = not suppressed
    const char* wantScope;
  } cases[] = {
      {"global@x.com", "any.example", now, "manual", ""},
      {"global@x.com", "", now, "manual", ""},
      {"scoped@x.com", "shop.example", now, "manual", "shop.example"},
      {"scoped@x.com", "other.example", now, nullptr, nullptr},
      {"scoped@x.com", "sub.shop.example", now, nullptr, nullptr},
      {"scoped@x.com", "", now, nullptr, nullptr},
      {"expiring@x.com", "a.example", now + 999, "manual", ""},
      {"expiring@x.com", "a.example", now + 1000, nullptr, nullptr},
      {"expired@x.com", "a.example", now, nullptr, nullptr},
      {"both@x.com", "shop.example", now, "scoped", "shop.example"},
      {"both@x.com", "other.example", now, nullptr, nullptr},
      {"nobody@x.com", "shop.example", now, nullptr, nullptr},
      {"GLOBAL@X.COM", "ANY.example", now, "manual", ""},
      {"Scoped@X.com", "SHOP.Example", now, "manual", "shop.example"},
  };
  for (const auto& c : cases) {
    const auto* got = list_.find(c.rcpt, c.senderDomain, c.at);
    std::string where = std::string(c.rcpt) + " from " + c.senderDomain + " at now+" + std::to_string(c.at - now);
    if (c.wantReason == nullptr) {
      EXPECT_EQ(got, nullptr) << where << ": got suppressed (" << (got ? got->reason : "") << "), want not";
      continue;
    }
    ASSERT_NE(got, nullptr) << where << ": got not suppressed, want " << c.wantReason;
    EXPECT_EQ(got->reason, c.wantReason) << where;
    EXPECT_EQ(got->scope, c.wantScope) << where;
  }
}

TEST_F(SuppressionListTest, GlobalEntryWinsOverScoped) {
  add(entry("a@x.com", "shop.example", 0, "scoped"));
  add(entry("a@x.com", "", 0, "global"));
  ASSERT_TRUE(list_.load(*reader_).ok());
  const auto* got = list_.find("a@x.com", "shop.example", clock_.nowMs());
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->reason, "global");
}

TEST_F(SuppressionListTest, RefreshFollowsAnotherConnection) {
  add(entry("a@x.com"));
  ASSERT_TRUE(list_.load(*reader_).ok());
  EXPECT_EQ(list_.lastSeq(), 1);
  EXPECT_EQ(list_.refresh(*reader_).valueOr(99), 0u) << "nothing changed";

  add(entry("B@X.com", "Shop.Example"));
  ASSERT_TRUE(writer_->remove("a@x.com", "").value());
  add(entry("c@x.com", "", 0, "first"));
  add(entry("c@x.com", "", 0, "second"));
  auto n = list_.refresh(*reader_);
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, 3u) << "b added, a removed, c added (its first version was replaced)";
  EXPECT_EQ(list_.lastSeq(), writer_->currentSeq().value());
  EXPECT_EQ(list_.size(), 2u);
  int64_t now = clock_.nowMs();
  EXPECT_EQ(list_.find("a@x.com", "", now), nullptr) << "removed entry still found";
  EXPECT_NE(list_.find("b@x.com", "shop.example", now), nullptr);
  ASSERT_NE(list_.find("c@x.com", "", now), nullptr);
  EXPECT_EQ(list_.find("c@x.com", "", now)->reason, "second");
  EXPECT_EQ(list_.fullLoads(), 1u) << "refresh must not reload when tombstones are kept";
}

TEST_F(SuppressionListTest, RefreshAfterPurgeForcesFullLoad) {
  add(entry("a@x.com"));
  add(entry("b@x.com"));
  ASSERT_TRUE(list_.load(*reader_).ok());
  ASSERT_TRUE(writer_->remove("a@x.com", "").value());
  clock_.advanceMs(8 * kDayMs);
  ASSERT_EQ(writer_->purgeTombstones(clock_.nowMs() - 7 * kDayMs).valueOr(0), 1u);
  auto n = list_.refresh(*reader_);
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(list_.fullLoads(), 2u) << "the reader missed a purged tombstone: want a full reload";
  EXPECT_EQ(list_.find("a@x.com", "", clock_.nowMs()), nullptr) << "purged deletion not applied";
  EXPECT_EQ(list_.size(), 1u);
  EXPECT_EQ(list_.refresh(*reader_).valueOr(99), 0u) << "no reload loop after the full load";
  EXPECT_EQ(list_.fullLoads(), 2u);
}

TEST_F(SuppressionListTest, PurgeOfSeenTombstonesDoesNotReload) {
  add(entry("a@x.com"));
  ASSERT_TRUE(writer_->remove("a@x.com", "").value());
  ASSERT_TRUE(list_.load(*reader_).ok());
  clock_.advanceMs(8 * kDayMs);
  ASSERT_EQ(writer_->purgeTombstones(clock_.nowMs() - 7 * kDayMs).valueOr(0), 1u);
  add(entry("b@x.com"));
  EXPECT_EQ(list_.refresh(*reader_).valueOr(99), 1u);
  EXPECT_EQ(list_.fullLoads(), 1u);
}

TEST_F(SuppressionListTest, FailedLoadKeepsTheOldCopy) {
  add(entry("a@x.com"));
  ASSERT_TRUE(list_.load(*reader_).ok());
  BrokenStore broken;
  EXPECT_FALSE(list_.load(broken).ok());
  EXPECT_FALSE(list_.refresh(broken).ok());
  EXPECT_EQ(list_.size(), 1u);
  EXPECT_NE(list_.find("a@x.com", "", clock_.nowMs()), nullptr) << "a broken store emptied the list";
}

// Random adds and removes over a few addresses and scopes, refreshed at random points, compared
// with a std::map model. Exercises chains, slot deletion and table growth.
TEST_F(SuppressionListTest, RandomizedAgainstModel) {
  std::mt19937 rng(12345);
  const char* scopes[] = {"", "a.example", "b.example"};
  std::map<std::pair<std::string, std::string>, std::string> model;
  ASSERT_TRUE(list_.load(*reader_).ok());
  for (int round = 0; round < 25; ++round) {
    std::vector<SuppressionEntry> batch;
    for (int i = 0; i < 200; ++i) {
      std::string addr = "u" + std::to_string(rng() % 300) + "@x.com";
      std::string scope = scopes[rng() % 3];
      if (rng() % 3 == 0) {
        if (!batch.empty()) {
          ASSERT_TRUE(writer_->addBatch(batch).ok());
        }
        batch.clear();
        ASSERT_TRUE(writer_->remove(addr, scope).ok());
        model.erase({addr, scope});
      } else {
        std::string reason = "r" + std::to_string(round) + "." + std::to_string(i);
        batch.push_back(entry(addr, scope, 0, reason));
        model[{addr, scope}] = reason;
      }
    }
    if (!batch.empty()) {
      ASSERT_TRUE(writer_->addBatch(batch).ok());
    }
    ASSERT_TRUE(list_.refresh(*reader_).ok());
    ASSERT_EQ(list_.size(), model.size()) << "round " << round;
    for (int a = 0; a < 300; ++a) {
      std::string addr = "u" + std::to_string(a) + "@x.com";
      for (const char* sc : {"a.example", "b.example"}) {
        const auto* got = list_.find(addr, sc, clock_.nowMs());
        auto g = model.find({addr, ""});
        auto s = model.find({addr, sc});
        const std::string* want = g != model.end() ? &g->second : s != model.end() ? &s->second : nullptr;
        ASSERT_EQ(got == nullptr, want == nullptr) << "round " << round << " " << addr << " from " << sc;
        if (want != nullptr) {
          EXPECT_EQ(got->reason, *want) << "round " << round << " " << addr << " from " << sc;
        }
      }
    }
  }
  SuppressionList fresh;
  ASSERT_TRUE(fresh.load(*reader_).ok());
  EXPECT_EQ(fresh.size(), model.size());
  EXPECT_EQ(fresh.lastSeq(), list_.lastSeq());
}

}  // namespace
}  // namespace sluice
