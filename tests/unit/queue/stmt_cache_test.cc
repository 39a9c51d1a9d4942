// stmt_cache_test.cc - lib/queue's prepared-statement cache (stmt_cache.cc, Stmt in queue_sql.h):
// a statement is compiled once per connection and SQL text and handed out again after use, reset
// and unbound, for as many uses as come (the bound is on distinct texts); two live uses of one
// text get two statements; connections do not share; a bad SQL text gives nullptr;
// forgetStatements lets the connection close cleanly.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "queue/queue_sql.h"

namespace sluice::queue {
namespace {

class StmtCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db_, "CREATE TABLE t (k INTEGER, v TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  void TearDown() override {
    forgetStatements(db_);
    EXPECT_EQ(sqlite3_close(db_), SQLITE_OK) << "every cached statement was finalized";
  }
  sqlite3* db_ = nullptr;
};

TEST_F(StmtCacheTest, SameTextIsCompiledOnceAndComesBackResetAndUnbound) {
  const char* sql = "SELECT v FROM t WHERE k = ?";
  sqlite3_stmt* first;
  {
    Stmt s(db_, sql);
    ASSERT_NE(s.s, nullptr);
    first = s.s;
    s.i64(1, 2);
    ASSERT_EQ(sqlite3_step(s.s), SQLITE_ROW);
    EXPECT_EQ(s.col(0), "two");
    // left mid-result: the cache must reset it
  }
  Stmt again(db_, sql);
  EXPECT_EQ(again.s, first) << "the compiled statement is reused";
  EXPECT_EQ(sqlite3_stmt_busy(again.s), 0) << "reset when it was given back";
  EXPECT_EQ(sqlite3_step(again.s), SQLITE_DONE) << "its binding was cleared (k = NULL matches nothing)";
}

TEST_F(StmtCacheTest, StaysCachedOverManyUsesOfFewTexts) {
  // The bound is on distinct SQL texts: taking and giving back the same few statements thousands
  // of times (every queue transaction does) must never push them out of the cache. A statement
  // compiled again could sit at the same address, so its run counter tells: it counts the runs of
  // that compiled statement since it was prepared.
  const char* a = "SELECT v FROM t WHERE k = ?";
  const char* b = "SELECT COUNT(*) FROM t";
  for (int i = 1; i <= 5000; ++i) {
    Stmt sa(db_, a);
    Stmt sb(db_, b);
    ASSERT_NE(sa.s, nullptr);
    ASSERT_NE(sb.s, nullptr);
    sa.i64(1, 1);
    ASSERT_EQ(sqlite3_step(sa.s), SQLITE_ROW);
    ASSERT_EQ(sqlite3_step(sb.s), SQLITE_ROW);
    ASSERT_EQ(sqlite3_stmt_status(sa.s, SQLITE_STMTSTATUS_RUN, 0), i) << "compiled again before use " << i;
    ASSERT_EQ(sqlite3_stmt_status(sb.s, SQLITE_STMTSTATUS_RUN, 0), i) << "compiled again before use " << i;
  }
}

TEST_F(StmtCacheTest, ManyDistinctTextsAreBoundedAndStillWork) {
  // Dynamic SQL (a new text each time) is compiled, run and finalized past the bound; the texts
  // already cached stay cached.
  const char* kept = "SELECT k FROM t WHERE k = 1";
  {
    Stmt s(db_, kept);
    ASSERT_EQ(sqlite3_step(s.s), SQLITE_ROW);
  }
  for (int i = 0; i < 500; ++i) {
    std::string sql = "SELECT " + std::to_string(i) + " FROM t WHERE k = 2";
    Stmt s(db_, sql.c_str());
    ASSERT_NE(s.s, nullptr);
    ASSERT_EQ(sqlite3_step(s.s), SQLITE_ROW);
    EXPECT_EQ(s.num(0), i);
  }
  Stmt again(db_, kept);
  ASSERT_EQ(sqlite3_step(again.s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_stmt_status(again.s, SQLITE_STMTSTATUS_RUN, 0), 2) << "the cached one, not compiled again";
}

TEST_F(StmtCacheTest, TwoLiveUsesOfOneTextGetTwoStatements) {
  const char* sql = "SELECT k FROM t ORDER BY k";
  Stmt a(db_, sql);
  Stmt b(db_, sql);
  ASSERT_NE(a.s, nullptr);
  ASSERT_NE(b.s, nullptr);
  EXPECT_NE(a.s, b.s);
  ASSERT_EQ(sqlite3_step(a.s), SQLITE_ROW);
  ASSERT_EQ(sqlite3_step(b.s), SQLITE_ROW);
  EXPECT_EQ(a.num(0), 1);
  EXPECT_EQ(b.num(0), 1);
}

TEST_F(StmtCacheTest, ConnectionsDoNotShareAndBadSqlGivesNull) {
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "CREATE TABLE t (k INTEGER, v TEXT);", nullptr, nullptr, nullptr), SQLITE_OK);
  const char* sql = "SELECT COUNT(*) FROM t";
  sqlite3_stmt* mine;
  {
    Stmt s(db_, sql);
    mine = s.s;
  }
  {
    Stmt s(other, sql);
    ASSERT_NE(s.s, nullptr);
    EXPECT_NE(s.s, mine);
    EXPECT_EQ(sqlite3_db_handle(s.s), other);
    ASSERT_EQ(sqlite3_step(s.s), SQLITE_ROW);
    EXPECT_EQ(s.num(0), 0);
  }
  forgetStatements(other);
  EXPECT_EQ(sqlite3_close(other), SQLITE_OK);

  Stmt bad(db_, "SELECT FROM nowhere WHERE");
  EXPECT_EQ(bad.s, nullptr);
}

}  // namespace
}  // namespace sluice::queue
