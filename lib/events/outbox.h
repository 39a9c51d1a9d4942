// outbox.h - the durable webhook outbox and the JSON Lines event log.
//
// EventOutbox: an SQLite table (event_outbox) holding one row per (event, webhook endpoint) until
// the endpoint answered 2xx. enqueue() may run inside the caller's own transaction on the same
// database (relayd writes a recipient's new state and its event in one transaction, so neither
// exists without the other). Rows are delivered at least once: a crash between the POST and
// delivered() repeats the POST; receivers de-duplicate on the event id. Due work is read through
// an index on (state, next_ms); delivered rows are purged after the retention time.
//
// EventLog: appends one JSON line per event to a file (one write(2) per line, O_APPEND, so several
// writers never interleave a line); `sluicectl events tail` reads it. The outbox, not this file,
// is the durable record.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "events/event.h"

struct sqlite3;

namespace sluice::events {

struct WebhookEndpoint {
  std::string url;
  std::string secret;                 // HMAC-SHA256 key of the signature header
  std::vector<EventType> types;       // empty: every type
  bool wants(EventType t) const;
};

class EventOutbox {
 public:
  static Result<std::unique_ptr<EventOutbox>> open(const std::string& path);
  ~EventOutbox();
  EventOutbox(const EventOutbox&) = delete;
  EventOutbox& operator=(const EventOutbox&) = delete;

  static Status createSchema(sqlite3* db);
  // One row per endpoint that wants the event, in the caller's transaction on db (no BEGIN here).
  static Status enqueueIn(sqlite3* db, const Event& e, const std::vector<WebhookEndpoint>& endpoints);
  // The same in a transaction of its own.
  Status enqueue(const Event& e, const std::vector<WebhookEndpoint>& endpoints);

  struct Item {
    int64_t row = 0;
    std::string eventId;
    std::string url;
    std::string body;
    int attempts = 0;
    int64_t createdMs = 0;
  };
  Result<std::vector<Item>> due(int64_t nowMs, size_t limit);
  Status delivered(int64_t row, int64_t nowMs);
  Status retry(int64_t row, int64_t nextMs, const std::string& error);
  Status giveUp(int64_t row, const std::string& error);
  Result<size_t> purgeDelivered(int64_t olderThanMs);

  struct Counts {
    size_t pending = 0, delivered = 0, dead = 0;
  };
  Result<Counts> counts();
  sqlite3* db() { return db_; }

 private:
  explicit EventOutbox(sqlite3* db) : db_(db) {}
  Status exec(const std::string& sql);
  sqlite3* db_;
};

class EventLog {
 public:
  static Result<std::unique_ptr<EventLog>> open(const std::string& path);
  ~EventLog();
  Status append(const Event& e);
  const std::string& path() const { return path_; }

 private:
  EventLog(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace sluice::events
