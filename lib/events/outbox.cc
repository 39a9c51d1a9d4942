// outbox.cc - see outbox.h.
#include "events/outbox.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::events {
namespace {

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
  ~Stmt() { sqlite3_finalize(s); }
  explicit operator bool() const { return s != nullptr; }
};

Error sqlError(sqlite3* db, const std::string& what) {
  return makeError("event outbox: " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace

bool WebhookEndpoint::wants(EventType t) const {
  if (types.empty()) return true;
  for (auto x : types) {
    if (x == t) return true;
  }
  return false;
}

Status EventOutbox::createSchema(sqlite3* db) {
  const char* sql =
      "CREATE TABLE IF NOT EXISTS event_outbox ("
      " row INTEGER PRIMARY KEY, event_id TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL,"
      " created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,"
      " state TEXT NOT NULL DEFAULT 'pending', last_error TEXT NOT NULL DEFAULT '', done_ms INTEGER NOT NULL DEFAULT 0,"
      " UNIQUE (event_id, url));"
      "CREATE INDEX IF NOT EXISTS event_outbox_due ON event_outbox (state, next_ms);";
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    return makeError("event outbox schema: " + e);
  }
  return okStatus();
}

Result<std::unique_ptr<EventOutbox>> EventOutbox::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return makeError("event outbox " + path + ": " + e);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<EventOutbox> o(new EventOutbox(db));
  if (auto st = o->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !st) return st.error();
  if (auto st = createSchema(db); !st) return st.error();
  return o;
}

EventOutbox::~EventOutbox() { sqlite3_close(db_); }

Status EventOutbox::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    return makeError("event outbox: " + e);
  }
  return okStatus();
}

Status EventOutbox::enqueueIn(sqlite3* db, const Event& e, const std::vector<WebhookEndpoint>& endpoints) {
  std::string body;
  for (const auto& ep : endpoints) {
    if (!ep.wants(e.type)) continue;
    if (body.empty()) body = toJson(e);
    Stmt st(db,
            "INSERT OR IGNORE INTO event_outbox (event_id, url, body, created_ms, next_ms) VALUES (?, ?, ?, ?, ?)");
    if (!st) return sqlError(db, "prepare insert");
    sqlite3_bind_text(st.s, 1, e.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 2, ep.url.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 3, body.c_str(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.s, 4, e.timeMs);
    sqlite3_bind_int64(st.s, 5, e.timeMs);
    if (sqlite3_step(st.s) != SQLITE_DONE) return sqlError(db, "insert");
  }
  return okStatus();
}

Status EventOutbox::enqueue(const Event& e, const std::vector<WebhookEndpoint>& endpoints) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
  Status st = enqueueIn(db_, e, endpoints);
  if (!st) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

Result<std::vector<EventOutbox::Item>> EventOutbox::due(int64_t nowMs, size_t limit) {
  Stmt st(db_,
          "SELECT row, event_id, url, body, attempts, created_ms FROM event_outbox"
          " WHERE state = 'pending' AND next_ms <= ? ORDER BY next_ms LIMIT ?");
  if (!st) return sqlError(db_, "prepare due");
  sqlite3_bind_int64(st.s, 1, nowMs);
  sqlite3_bind_int64(st.s, 2, static_cast<int64_t>(limit));
  std::vector<Item> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    Item it;
    it.row = sqlite3_column_int64(st.s, 0);
    it.eventId = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    it.url = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 2));
    it.body.assign(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 3)), static_cast<size_t>(sqlite3_column_bytes(st.s, 3)));
    it.attempts = sqlite3_column_int(st.s, 4);
    it.createdMs = sqlite3_column_int64(st.s, 5);
    out.push_back(std::move(it));
  }
  if (rc != SQLITE_DONE) return sqlError(db_, "due");
  return out;
}

Status EventOutbox::delivered(int64_t row, int64_t nowMs) {
  Stmt st(db_, "UPDATE event_outbox SET state = 'delivered', attempts = attempts + 1, done_ms = ?, last_error = '' WHERE row = ?");
  sqlite3_bind_int64(st.s, 1, nowMs);
  sqlite3_bind_int64(st.s, 2, row);
  return sqlite3_step(st.s) == SQLITE_DONE ? okStatus() : sqlError(db_, "delivered");
}

Status EventOutbox::retry(int64_t row, int64_t nextMs, const std::string& error) {
  Stmt st(db_, "UPDATE event_outbox SET attempts = attempts + 1, next_ms = ?, last_error = ? WHERE row = ?");
  sqlite3_bind_int64(st.s, 1, nextMs);
  sqlite3_bind_text(st.s, 2, error.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 3, row);
  return sqlite3_step(st.s) == SQLITE_DONE ? okStatus() : sqlError(db_, "retry");
}

Status EventOutbox::giveUp(int64_t row, const std::string& error) {
  Stmt st(db_, "UPDATE event_outbox SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE row = ?");
  sqlite3_bind_text(st.s, 1, error.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 2, row);
  return sqlite3_step(st.s) == SQLITE_DONE ? okStatus() : sqlError(db_, "give up");
}

Result<size_t> EventOutbox::purgeDelivered(int64_t olderThanMs) {
  Stmt st(db_, "DELETE FROM event_outbox WHERE state = 'delivered' AND done_ms < ?");
  sqlite3_bind_int64(st.s, 1, olderThanMs);
  if (sqlite3_step(st.s) != SQLITE_DONE) return sqlError(db_, "purge");
  return static_cast<size_t>(sqlite3_changes(db_));
}

Result<EventOutbox::Counts> EventOutbox::counts() {
  Stmt st(db_, "SELECT state, COUNT(*) FROM event_outbox GROUP BY state");
  Counts c;
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    std::string s = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
    auto n = static_cast<size_t>(sqlite3_column_int64(st.s, 1));
    if (s == "pending") c.pending = n;
    else if (s == "delivered") c.delivered = n;
    else if (s == "dead") c.dead = n;
  }
  return c;
}

Result<std::unique_ptr<EventLog>> EventLog::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return makeError("event log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<EventLog>(new EventLog(fd, path));
}

EventLog::~EventLog() { ::close(fd_); }

Status EventLog::append(const Event& e) {
  std::string line = toJson(e) + "\n";
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    return makeError("event log " + path_ + ": " + (n < 0 ? std::strerror(errno) : "short write"));
  }
  return okStatus();
}

}  // namespace sluice::events
