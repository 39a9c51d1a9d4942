// store_sqlite_test.cc - tests of the SQLite store (lib/store/store_sqlite.*): migrations, the
// suppression table's seq/tombstone contract, filters, purging, buckets, several connections on
// one file. Each test works in its own temporary directory with an injected clock.
#include "store/store_sqlite.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"

namespace sluice::store {
namespace {

constexpr int64_t kDayMs = 86'400'000;

SuppressionEntry entry(std::string address, std::string scope = "", std::string reason = "manual") {
  SuppressionEntry e;
  e.address = std::move(address);
  e.scope = std::move(scope);
  e.reason = std::move(reason);
  e.source = "test";
  return e;
}

// Runs one statement on the file with plain sqlite3, as another program would.
std::string rawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    out = t != nullptr ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sluice.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteStore> open(bool readOnly = false) {
    SqliteOptions o;
    o.path = path_;
    o.readOnly = readOnly;
    auto s = SqliteStore::open(o, &clock_);
    EXPECT_TRUE(s.ok()) << "open: got error " << (s.ok() ? "" : s.message());
    return s.ok() ? std::move(s).value() : nullptr;
  }
  int64_t seq(SqliteStore& s) {
    auto r = s.currentSeq();
    EXPECT_TRUE(r.ok());
    return r.valueOr(-1);
  }

  std::string dir_;
  std::string path_;
  ManualClock clock_;
};

TEST_F(SqliteStoreTest, MigratesFreshDatabaseAndReopens) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->schemaVersion().valueOr(-1), SqliteStore::kSchemaVersion);
    ASSERT_TRUE(s->add(entry("a@example.com")).ok());
  }
  EXPECT_EQ(rawQuery(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(rawQuery(path_, "PRAGMA user_version"), std::to_string(SqliteStore::kSchemaVersion));
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->schemaVersion().valueOr(-1), SqliteStore::kSchemaVersion);
  auto got = s->get("a@example.com", "");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->has_value()) << "entry written before reopening: got none, want it";
  EXPECT_EQ(seq(*s), 1);
}

TEST_F(SqliteStoreTest, RefusesNewerSchema) {
  { ASSERT_TRUE(open()); }
  rawQuery(path_, "PRAGMA user_version = 99");
  SqliteOptions o;
  o.path = path_;
  auto s = SqliteStore::open(o, &clock_);
  ASSERT_FALSE(s.ok()) << "got a store for a schema-99 database, want an error";
  EXPECT_NE(s.message().find("newer"), std::string::npos) << "got: " << s.message();
  EXPECT_NE(s.message().find("99"), std::string::npos) << "got: " << s.message();
  EXPECT_EQ(rawQuery(path_, "PRAGMA user_version"), "99") << "the refused database was modified";
}

TEST_F(SqliteStoreTest, ReadOnlyOpenRefusesUnmigratedDatabase) {
  rawQuery(path_, "CREATE TABLE other (x)");  // a database at user_version 0
  SqliteOptions o;
  o.path = path_;
  o.readOnly = true;
  auto s = SqliteStore::open(o, &clock_);
  ASSERT_FALSE(s.ok()) << "got a read-only store on an unmigrated database, want an error";
  EXPECT_NE(s.message().find("read-write"), std::string::npos) << "got: " << s.message();
  EXPECT_EQ(rawQuery(path_, "PRAGMA user_version"), "0");
  EXPECT_TRUE(open()) << "a read-write open migrates it";
  EXPECT_EQ(rawQuery(path_, "PRAGMA user_version"), std::to_string(SqliteStore::kSchemaVersion));
}

TEST_F(SqliteStoreTest, MissingDirectoryIsAClearErrorAndNotCreated) {
  SqliteOptions o;
  o.path = dir_ + "/nope/sluice.db";
  auto s = SqliteStore::open(o, &clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not exist"), std::string::npos) << "got: " << s.message();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/nope"));
}

TEST_F(SqliteStoreTest, ReadOnlyOpenReadsAndRefusesWrites) {
  {
    SqliteOptions o;
    o.path = path_;
    o.readOnly = true;
    auto missing = SqliteStore::open(o, &clock_);
    EXPECT_FALSE(missing.ok()) << "read-only open of a missing file: got a store, want an error";
  }
  auto w = open();
  ASSERT_TRUE(w->add(entry("a@example.com")).ok());
  auto r = open(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count().valueOr(0), 1u);
  ASSERT_TRUE(w->add(entry("b@example.com")).ok());
  EXPECT_EQ(r->count().valueOr(0), 2u) << "the reader must see a later commit";
  auto st = r->add(entry("c@example.com"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("read-only"), std::string::npos) << "got: " << st.message();
}

TEST_F(SqliteStoreTest, UpsertReplacesAndLowerCases) {
  auto s = open();
  ASSERT_TRUE(s->add(entry("User@Example.COM", "Shop.Example", "hard-bounce")).ok());
  ASSERT_TRUE(s->add(entry("user@example.com", "shop.example", "complaint")).ok());
  EXPECT_EQ(s->count().valueOr(0), 1u);
  auto got = s->get("USER@example.com", "SHOP.example.");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value()) << "a different scope must not match";
  got = s->get("USER@example.com", "SHOP.example");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->address, "user@example.com");
  EXPECT_EQ((*got)->scope, "shop.example");
  EXPECT_EQ((*got)->reason, "complaint") << "the second add must replace the first";
  EXPECT_EQ((*got)->createdMs, clock_.nowMs()) << "createdMs 0 means now";
}

TEST_F(SqliteStoreTest, RemoveReportsWhetherThereWasAnEntry) {
  auto s = open();
  ASSERT_TRUE(s->add(entry("a@example.com", "shop.example")).ok());
  struct Case {
    const char* address;
    const char* scope;
    bool want;
  } cases[] = {
      {"b@example.com", "", false},             // never added
      {"a@example.com", "", false},             // other scope
      {"A@EXAMPLE.COM", "Shop.Example", true},  // case-insensitive
      {"a@example.com", "shop.example", false}, // already removed
  };
  for (const auto& c : cases) {
    int64_t before = seq(*s);
    auto got = s->remove(c.address, c.scope);
    ASSERT_TRUE(got.ok()) << got.message();
    EXPECT_EQ(*got, c.want) << "remove(" << c.address << ", " << c.scope << ")";
    EXPECT_EQ(seq(*s), before + (c.want ? 1 : 0)) << "only a real removal takes a seq";
  }
  EXPECT_EQ(s->count().valueOr(99), 0u);
}

TEST_F(SqliteStoreTest, SeqStrictlyIncreasesAcrossAddRemoveReadd) {
  auto s = open();
  int64_t last = seq(*s);
  EXPECT_EQ(last, 0);
  auto step = [&](const char* what) {
    int64_t now = seq(*s);
    EXPECT_GT(now, last) << "after " << what << ": got seq " << now << ", want > " << last;
    last = now;
  };
  ASSERT_TRUE(s->add(entry("a@example.com")).ok());
  step("add");
  ASSERT_TRUE(s->remove("a@example.com", "").ok());
  step("remove");
  ASSERT_TRUE(s->add(entry("a@example.com")).ok());
  step("re-add");
  ASSERT_TRUE(s->addBatch({entry("b@example.com"), entry("c@example.com"), entry("a@example.com")}).ok());
  step("addBatch");
  EXPECT_EQ(last, 6);
  ASSERT_TRUE(s->remove("c@example.com", "").ok());
  clock_.advanceMs(kDayMs);
  ASSERT_TRUE(s->purgeTombstones(clock_.nowMs()).ok());
  step("remove + purge");
  ASSERT_TRUE(s->add(entry("c@example.com")).ok());
  step("add after purge");
  EXPECT_EQ(last, 8) << "the purged tombstone's seq 7 must not be reused";
  auto changes = s->changesSince(0, 0);
  ASSERT_TRUE(changes.ok());
  for (size_t i = 1; i < changes->size(); ++i) {
    EXPECT_LT((*changes)[i - 1].seq, (*changes)[i].seq) << "changesSince must be ordered by seq";
  }
}

TEST_F(SqliteStoreTest, ChangesSinceSeesTombstones) {
  auto s = open();
  ASSERT_TRUE(s->addBatch({entry("a@example.com", "", "complaint"), entry("b@example.com")}).ok());
  int64_t afterAdds = seq(*s);
  ASSERT_TRUE(s->remove("a@example.com", "").ok());
  auto changes = s->changesSince(afterAdds, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_TRUE((*changes)[0].deleted);
  EXPECT_EQ((*changes)[0].entry.address, "a@example.com");
  EXPECT_EQ((*changes)[0].seq, afterAdds + 1);
  auto all = s->changesSince(0, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].entry.address, "b@example.com");
  EXPECT_FALSE((*all)[0].deleted);
  EXPECT_TRUE((*all)[1].deleted);
  auto limited = s->changesSince(0, 1);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 1u);
  EXPECT_EQ(s->count().valueOr(0), 1u) << "count must skip tombstones";
  EXPECT_EQ(s->list({}).value().size(), 1u) << "list must skip tombstones";
  EXPECT_FALSE(s->get("a@example.com", "").value().has_value());
}

TEST_F(SqliteStoreTest, TwoConnectionsOnOneFile) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->add(entry("x@example.com")).ok());
  EXPECT_EQ(seq(*a), 1) << "a must see b's commit";
  ASSERT_TRUE(a->add(entry("y@example.com")).ok());
  EXPECT_EQ(seq(*b), 2) << "b's next write must follow a's seq";
  ASSERT_TRUE(b->remove("x@example.com", "").value());
  auto changes = a->changesSince(1, 0);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[1].seq, 3);
  EXPECT_TRUE((*changes)[1].deleted);
}

TEST_F(SqliteStoreTest, ListFilters) {
  auto s = open();
  ASSERT_TRUE(s->addBatch({entry("a@x.com", "", "complaint"), entry("a@x.com", "shop.example", "manual"),
                           entry("b@x.com", "shop.example", "complaint"), entry("c@x.com", "", "manual"),
                           entry("d@x.com", "news.example", "hard-bounce")})
                  .ok());
  auto global = [] { SuppressionFilter f; f.anyScope = false; return f; };
  auto scoped = [](const char* sc) { SuppressionFilter f; f.scope = sc; f.anyScope = false; return f; };
  auto reason = [](const char* r) { SuppressionFilter f; f.reason = r; return f; };
  auto addr = [](const char* a) { SuppressionFilter f; f.address = a; return f; };
  auto page = [](size_t limit, size_t offset) { SuppressionFilter f; f.limit = limit; f.offset = offset; return f; };
  auto star = [] { SuppressionFilter f; f.scope = "*"; f.anyScope = false; return f; };
  struct Case {
    const char* name;
    SuppressionFilter filter;
    std::string want;  // "address/scope" joined by spaces, in order
  } cases[] = {
      {"everything", {}, "a@x.com/ a@x.com/shop.example b@x.com/shop.example c@x.com/ d@x.com/news.example"},
      {"global only", global(), "a@x.com/ c@x.com/"},
      {"one scope", scoped("SHOP.example"), "a@x.com/shop.example b@x.com/shop.example"},
      {"star scope", star(), "a@x.com/ a@x.com/shop.example b@x.com/shop.example c@x.com/ d@x.com/news.example"},
      {"reason", reason("complaint"), "a@x.com/ b@x.com/shop.example"},
      {"address", addr("A@X.com"), "a@x.com/ a@x.com/shop.example"},
      {"limit and offset", page(2, 1), "a@x.com/shop.example b@x.com/shop.example"},
  };
  for (const auto& c : cases) {
    auto got = s->list(c.filter);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.message();
    std::string joined;
    for (const auto& e : *got) joined += (joined.empty() ? "" : " ") + e.address + "/" + e.scope;
    EXPECT_EQ(joined, c.want) << c.name;
  }
}

TEST_F(SqliteStoreTest, PurgeTombstonesKeepsRecentOnesAndReportsHorizon) {
  auto s = open();
  ASSERT_TRUE(s->addBatch({entry("a@x.com"), entry("b@x.com"), entry("c@x.com")}).ok());
  EXPECT_EQ(s->oldestRetainedSeq().valueOr(-1), 1);
  ASSERT_TRUE(s->remove("a@x.com", "").value());  // seq 4, at day 0
  clock_.advanceMs(8 * kDayMs);
  ASSERT_TRUE(s->remove("b@x.com", "").value());  // seq 5, at day 8
  auto purged = s->purgeTombstones(clock_.nowMs() - 7 * kDayMs);
  ASSERT_TRUE(purged.ok()) << purged.message();
  EXPECT_EQ(*purged, 1u) << "only the 8-day-old tombstone is older than 7 days";
  EXPECT_EQ(s->oldestRetainedSeq().valueOr(-1), 5) << "changes from seq 5 on are complete";
  EXPECT_EQ(seq(*s), 5) << "purging must not change the seq counter";
  auto changes = s->changesSince(0, 0);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 2u) << "c (live) and b's tombstone remain";
  EXPECT_EQ(s->purgeTombstones(clock_.nowMs() - 7 * kDayMs).valueOr(99), 0u);
  EXPECT_EQ(s->oldestRetainedSeq().valueOr(-1), 5);
}

TEST_F(SqliteStoreTest, BucketsSaveLoadDelete) {
  auto s = open();
  std::vector<BucketState> first = {{"per_user", 0, "alice", 100}, {"per_user", 1, "alice", 200},
                                    {"per_domain", 0, "example.com", 300}};
  ASSERT_TRUE(s->saveBuckets(first, {}).ok());
  ASSERT_TRUE(s->saveBuckets({{"per_user", 0, "alice", 150}}, {{"per_domain", 0, "example.com", 0}}).ok());
  auto got = s->loadBuckets();
  ASSERT_TRUE(got.ok()) << got.message();
  std::map<std::string, int64_t> byKey;
  for (const auto& b : *got) byKey[b.rule + "/" + std::to_string(b.window) + "/" + b.key] = b.tatUs;
  std::map<std::string, int64_t> want = {{"per_user/0/alice", 150}, {"per_user/1/alice", 200}};
  EXPECT_EQ(byKey, want);
}

TEST_F(SqliteStoreTest, FailedBatchRollsBack) {
  auto s = open();
  ASSERT_TRUE(s->add(entry("a@x.com")).ok());
  auto r = s->addBatch({entry("b@x.com"), entry("")});
  EXPECT_FALSE(r.ok()) << "an entry without an address must fail the batch";
  EXPECT_EQ(s->count().valueOr(0), 1u) << "the batch must be rolled back";
  EXPECT_EQ(seq(*s), 1);
  ASSERT_TRUE(s->add(entry("c@x.com")).ok()) << "the store must stay usable";
  EXPECT_EQ(seq(*s), 2);
}

}  // namespace
}  // namespace sluice::store
