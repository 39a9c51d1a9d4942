// queue_delivery.cc - the delivery half of the queue (see queue.h, "Delivery"): claiming due
// recipients, reading envelopes and content, recording outcomes, retention.
//
// Recipient states: queued -> delivering -> delivered | deferred | bounced | expired |
// suppressed, and held (sluicectl); a due row whose domain has its cap of rows in flight waits
// 'parked' (claimDue's fairness, see queue.h) and goes on to 'delivering' from there.
// 'delivering' exists only while an agent works on the recipient; resetDelivering() at start
// turns leftovers from a crash (and parked rows) back into due deferrals.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/log.h"
#include "queue/queue.h"
#include "queue/queue_sql.h"

namespace sluice::queue {
namespace {

bool finalState(const std::string& s) {
  return s == "delivered" || s == "bounced" || s == "expired" || s == "suppressed";
}

}  // namespace

Result<size_t> Queue::deliveringCount(const std::string& domain, std::map<std::string, size_t>* cache) {
  if (auto it = cache->find(domain); it != cache->end()) return it->second;
  // Through (domain, state, next_attempt): reads at most the cap's worth of rows.
  Stmt c(db_, "SELECT COUNT(*) FROM recipients WHERE domain = ? AND state = 'delivering'");
  c.text(1, domain);
  if (sqlite3_step(c.s) != SQLITE_ROW) return dbError(db_, "claim");
  size_t n = static_cast<size_t>(c.num(0));
  (*cache)[domain] = n;
  return n;
}

// The parked rows of each domain in parkedDomains_, round-robin from unparkCursor_: as many as
// its cap leaves free (and the limit), oldest first.
Status Queue::unpark(size_t limit, size_t perDomainCap, std::map<std::string, size_t>* inFlight, std::vector<Due>* out) {
  if (parkedDomains_.empty()) return okStatus();
  std::vector<std::string> order;
  auto split = parkedDomains_.upper_bound(unparkCursor_);
  order.insert(order.end(), split, parkedDomains_.end());
  order.insert(order.end(), parkedDomains_.begin(), split);
  Stmt s(db_,
         "SELECT message_id, idx, address, domain, attempts FROM recipients"
         " WHERE domain = ? AND state = 'parked' ORDER BY next_attempt_ms LIMIT ?");
  for (const std::string& domain : order) {
    if (out->size() >= limit) break;
    auto n = deliveringCount(domain, inFlight);
    if (!n) return n.error();
    if (*n >= perDomainCap) continue;
    size_t want = std::min(perDomainCap - *n, limit - out->size());
    sqlite3_reset(s.s);
    s.text(1, domain);
    s.i64(2, static_cast<int64_t>(want));
    size_t got = 0;
    while (sqlite3_step(s.s) == SQLITE_ROW) {
      out->push_back(Due{s.col(0), static_cast<int>(s.num(1)), s.col(2), s.col(3), static_cast<int>(s.num(4))});
      ++got;
    }
    (*inFlight)[domain] += got;
    unparkCursor_ = domain;
    if (got < want) parkedDomains_.erase(domain);  // none left (or sluicectl held/deleted them)
  }
  return okStatus();
}

Result<std::vector<Queue::Due>> Queue::claimDue(int64_t now, size_t limit, size_t perDomainCap) {
  std::vector<Due> out, park;
  // A claim is committed without waiting for fdatasync (synchronous=NORMAL for this transaction
  // only): losing it to a power cut leaves the rows 'queued', as resetDelivering() would at the
  // next start, so nothing depends on it being on disk; the next synchronous commit on this
  // connection (an outcome record) syncs the WAL and so every claim before it. A kill -9 loses
  // nothing either way: the WAL is in the page cache. It takes an fdatasync out of the path from
  // a message's 250 to its delivery.
  if (auto st = exec("PRAGMA synchronous=NORMAL"); !st) return st.error();
  struct RestoreFull {
    Queue* q;
    ~RestoreFull() { (void)q->exec("PRAGMA synchronous=FULL"); }
  } restore{this};
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st.error();
  auto fail = [&](Error e) -> Result<std::vector<Due>> {
    (void)exec("ROLLBACK");
    return e;
  };
  std::map<std::string, size_t> inFlight;  // per domain: 'delivering' plus claimed here
  if (perDomainCap > 0) {
    if (auto st = unpark(limit, perDomainCap, &inFlight, &out); !st) return fail(st.error());
  }
  if (out.size() < limit) {
    // No ORDER BY: each state's rows come out of the (state, next_attempt_ms) index in time
    // order, and only due rows are read - the cost does not grow with the queue. Without a cap
    // exactly `limit` rows are read; with one, also the rows parked (at most kParkBudget).
    Stmt s(db_,
           "SELECT message_id, idx, address, domain, attempts FROM recipients"
           " WHERE state IN ('deferred', 'queued') AND next_attempt_ms <= ? LIMIT ?");
    s.i64(1, now);
    s.i64(2, static_cast<int64_t>(limit - out.size() + (perDomainCap > 0 ? kParkBudget : 0)));
    while (out.size() < limit && sqlite3_step(s.s) == SQLITE_ROW) {
      Due d{s.col(0), static_cast<int>(s.num(1)), s.col(2), s.col(3), static_cast<int>(s.num(4))};
      if (perDomainCap > 0) {
        auto n = deliveringCount(d.domain, &inFlight);
        if (!n) return fail(n.error());
        if (*n >= perDomainCap || parkedDomains_.count(d.domain) != 0) {
          // At its cap, or older rows of its own wait parked: after them.
          park.push_back(std::move(d));
          continue;
        }
        ++inFlight[d.domain];
      }
      out.push_back(std::move(d));
    }
  }
  Stmt u(db_, "UPDATE recipients SET state = ? WHERE message_id = ? AND idx = ?");
  auto mark = [&](const std::vector<Due>& rows, const std::string& state) {
    for (const Due& d : rows) {
      sqlite3_reset(u.s);
      u.text(1, state);
      u.text(2, d.messageId);
      u.i64(3, d.index);
      if (sqlite3_step(u.s) != SQLITE_DONE) return false;
    }
    return true;
  };
  if (!mark(out, "delivering") || !mark(park, "parked")) return fail(dbError(db_, "claim"));
  if (auto st = exec("COMMIT"); !st) return fail(st.error());
  for (const Due& d : park) parkedDomains_.insert(d.domain);
  return out;
}

Result<std::optional<int64_t>> Queue::nextDueMs() {
  // One index probe per state (MIN over "state IN (...)" would read every such row).
  std::optional<int64_t> best;
  for (const char* state : {"deferred", "queued"}) {
    Stmt s(db_, "SELECT next_attempt_ms FROM recipients WHERE state = ? ORDER BY next_attempt_ms LIMIT 1");
    if (!s.s) return dbError(db_, "next due");
    s.text(1, state);
    if (sqlite3_step(s.s) == SQLITE_ROW && (!best || s.num(0) < *best)) best = s.num(0);
  }
  return best;
}

Result<size_t> Queue::resetDelivering() {
  Stmt p(db_, "UPDATE recipients SET state = 'deferred' WHERE state = 'parked'");
  if (sqlite3_step(p.s) != SQLITE_DONE) return dbError(db_, "reset parked");
  parkedDomains_.clear();
  Stmt s(db_, "UPDATE recipients SET state = 'deferred', next_attempt_ms = ? WHERE state = 'delivering'");
  s.i64(1, nowMs());
  if (sqlite3_step(s.s) != SQLITE_DONE) return dbError(db_, "reset delivering");
  return static_cast<size_t>(sqlite3_changes(db_));
}

Result<std::optional<Queue::Envelope>> Queue::envelope(const std::string& id) {
  Stmt m(db_,
         "SELECT sender, envid, ret, body, identity, message_id, helo, client, smtputf8, size, received_ms"
         " FROM messages WHERE id = ?");
  m.text(1, id);
  if (!m.s) return dbError(db_, "envelope");
  if (sqlite3_step(m.s) != SQLITE_ROW) return std::optional<Envelope>();
  Envelope e;
  e.id = id;
  e.sender = m.col(0);
  e.envid = m.col(1);
  e.ret = m.col(2);
  e.body = m.col(3);
  e.identity = m.col(4);
  e.messageId = m.col(5);
  e.helo = m.col(6);
  e.client = m.col(7);
  e.smtputf8 = m.num(8) != 0;
  e.size = m.num(9);
  e.receivedMs = m.num(10);
  Stmt r(db_, "SELECT idx, address, orcpt, notify, state, attempts FROM recipients WHERE message_id = ? ORDER BY idx");
  r.text(1, id);
  while (sqlite3_step(r.s) == SQLITE_ROW) {
    e.recipients.push_back(
        Envelope::Rcpt{static_cast<int>(r.num(0)), r.col(1), r.col(2), r.col(3), r.col(4), static_cast<int>(r.num(5))});
  }
  return std::optional<Envelope>(std::move(e));
}

Result<std::string> Queue::content(const std::string& id) {
  std::string path = spoolPath(id);
  // O_NOATIME: reading a file just written would otherwise update its atime (relatime), one more
  // dirty inode to write back per message. Only the file's owner (or root) may ask for it; anyone
  // else gets EPERM and reads without it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError("spool file " + path, errno);
  // Read straight into the string, sized from fstat (one copy), with one byte to spare so that
  // the read that sees the end needs no larger buffer; a file that grows meanwhile (it never
  // should) is still read to its end.
  std::string out;
  struct stat st {};
  size_t len = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.resize(static_cast<size_t>(st.st_size) + 1);
  for (;;) {
    if (len == out.size()) out.resize(out.size() + 65536);
    ssize_t n = ::read(fd, out.data() + len, out.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ioError("spool file " + path, err);
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(len);
  return out;
}

Result<std::vector<std::string>> Queue::record(const std::vector<Outcome>& outcomes,
                                               const std::function<Status(sqlite3*)>& extra,
                                               const Followups* followups) {
  // The follow-up messages' files first, synced: a crash from here to the COMMIT leaves files
  // without index rows, which recover() removes (and the outcomes unrecorded).
  std::vector<bool> written;
  if (followups != nullptr && !followups->messages.empty()) {
    std::vector<Status> out(followups->messages.size(), okStatus());
    written.assign(followups->messages.size(), false);
    writeSpoolFiles(followups->messages, followups->ids, &out, &written);
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i]) continue;
      for (size_t k = 0; k < written.size(); ++k) {
        if (written[k]) ::unlink(spoolPath(followups->ids[k]).c_str());
      }
      return makeError("follow-up message " + followups->ids[i] + ": " + out[i].message());
    }
  }
  auto fail = [&](Error e) -> Result<std::vector<std::string>> {
    (void)exec("ROLLBACK");
    for (size_t k = 0; k < written.size(); ++k) {
      if (written[k]) ::unlink(spoolPath(followups->ids[k]).c_str());
    }
    return e;
  };
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return fail(st.error());
  int64_t now = nowMs();
  Stmt u(db_,
         "UPDATE recipients SET state = ?, attempts = attempts + ?, next_attempt_ms = ?, last_reply = ?"
         " WHERE message_id = ? AND idx = ?");
  Stmt a(db_, "INSERT INTO attempts (message_id, idx, time_ms, mx, ip, tls, reply) VALUES (?,?,?,?,?,?,?)");
  if (!u.s || !a.s) return fail(dbError(db_, "prepare"));
  std::set<std::string> touched;
  for (const Outcome& o : outcomes) {
    sqlite3_reset(u.s);
    u.text(1, o.state);
    u.i64(2, o.attempted ? 1 : 0);
    u.i64(3, o.state == "deferred" ? o.nextAttemptMs : 0);
    u.text(4, o.reply);
    u.text(5, o.messageId);
    u.i64(6, o.index);
    if (sqlite3_step(u.s) != SQLITE_DONE) return fail(dbError(db_, "record"));
    auto attempt = [&](const std::string& mx, const std::string& ip, const std::string& tls, const std::string& reply) {
      sqlite3_reset(a.s);
      a.text(1, o.messageId);
      a.i64(2, o.index);
      a.i64(3, now);
      a.text(4, mx);
      a.text(5, ip);
      a.text(6, tls);
      a.text(7, reply);
      return sqlite3_step(a.s) == SQLITE_DONE;
    };
    for (const auto& t : o.tried) {
      std::string tls = t.tls.empty() ? kTriedTls : std::string(kTriedTls) + " " + t.tls;
      if (!attempt(t.mx, t.ip, tls, t.reply)) return fail(dbError(db_, "record attempt"));
    }
    if (o.attempted && !attempt(o.mx, o.ip, o.tls, o.reply)) return fail(dbError(db_, "record attempt"));
    if (finalState(o.state)) touched.insert(o.messageId);
  }
  if (followups != nullptr) {
    if (auto st = insertMessages(followups->messages, followups->ids, written); !st) return fail(st.error());
    Stmt p(db_,
           "INSERT OR REPLACE INTO pending_suppressions (message_id, idx, address, scope, reason, source, created_ms)"
           " VALUES (?,?,?,?,?,?,?)");
    for (const auto& ps : followups->suppressions) {
      sqlite3_reset(p.s);
      p.text(1, ps.messageId);
      p.i64(2, ps.index);
      p.text(3, ps.address);
      p.text(4, ps.scope);
      p.text(5, ps.reason);
      p.text(6, ps.source);
      p.i64(7, ps.createdMs);
      if (sqlite3_step(p.s) != SQLITE_DONE) return fail(dbError(db_, "record suppression"));
    }
  }
  if (extra) {
    if (auto st = extra(db_); !st) return fail(st.error());
  }
  std::vector<std::string> done;
  Stmt open(db_,
            "SELECT COUNT(*) FROM recipients WHERE message_id = ?"
            " AND state NOT IN ('delivered', 'bounced', 'expired', 'suppressed')");
  Stmt mark(db_, "UPDATE messages SET content_deleted = 1 WHERE id = ?");
  for (const std::string& id : touched) {
    sqlite3_reset(open.s);
    open.text(1, id);
    if (sqlite3_step(open.s) != SQLITE_ROW) return fail(dbError(db_, "record"));
    if (open.num(0) != 0) continue;
    sqlite3_reset(mark.s);
    mark.text(1, id);
    if (sqlite3_step(mark.s) != SQLITE_DONE) return fail(dbError(db_, "record"));
    done.push_back(id);
  }
  if (auto st = exec("COMMIT"); !st) return fail(st.error());
  // Only after the commit: a crash before it leaves the file, which recovery keeps.
  for (const std::string& id : done) recycleSpoolFile(id);
  return done;
}

Status Queue::recordReports(const std::vector<Report>& reports, const std::function<Status(sqlite3*)>& extra) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
  auto fail = [&](Error e) -> Status {
    (void)exec("ROLLBACK");
    return e;
  };
  int64_t now = nowMs();
  Stmt a(db_, "INSERT INTO attempts (message_id, idx, time_ms, mx, ip, tls, reply) VALUES (?,?,?,?,'',?,?)");
  if (!a.s) return fail(dbError(db_, "prepare"));
  for (const Report& r : reports) {
    sqlite3_reset(a.s);
    a.text(1, r.messageId);
    a.i64(2, r.index);
    a.i64(3, now);
    a.text(4, r.mta);
    a.text(5, kReportTls);
    a.text(6, r.text);
    if (sqlite3_step(a.s) != SQLITE_DONE) return fail(dbError(db_, "record report"));
  }
  if (extra) {
    if (auto st = extra(db_); !st) return fail(st.error());
  }
  if (auto st = exec("COMMIT"); !st) return fail(st.error());
  return okStatus();
}

Result<std::vector<Queue::PendingSuppression>> Queue::pendingSuppressions(size_t limit) {
  std::vector<PendingSuppression> out;
  Stmt s(db_,
         "SELECT message_id, idx, address, scope, reason, source, created_ms FROM pending_suppressions"
         " ORDER BY created_ms LIMIT ?");
  if (!s.s) return dbError(db_, "pending suppressions");
  s.i64(1, static_cast<int64_t>(limit));
  while (sqlite3_step(s.s) == SQLITE_ROW) {
    out.push_back(PendingSuppression{s.col(0), static_cast<int>(s.num(1)), s.col(2), s.col(3), s.col(4), s.col(5), s.num(6)});
  }
  return out;
}

Status Queue::forgetSuppressions(const std::vector<PendingSuppression>& done) {
  if (done.empty()) return okStatus();
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
  Stmt d(db_, "DELETE FROM pending_suppressions WHERE message_id = ? AND idx = ?");
  for (const auto& ps : done) {
    sqlite3_reset(d.s);
    d.text(1, ps.messageId);
    d.i64(2, ps.index);
    if (sqlite3_step(d.s) != SQLITE_DONE) {
      Error e = dbError(db_, "forget suppression");
      (void)exec("ROLLBACK");
      return e;
    }
  }
  return exec("COMMIT");
}

Result<std::vector<Queue::Attempt>> Queue::attempts(const std::string& id) {
  std::vector<Attempt> out;
  Stmt s(db_, "SELECT idx, time_ms, mx, ip, tls, reply FROM attempts WHERE message_id = ? ORDER BY time_ms, rowid");
  if (!s.s) return dbError(db_, "attempts");
  s.text(1, id);
  while (sqlite3_step(s.s) == SQLITE_ROW) {
    out.push_back(Attempt{static_cast<int>(s.num(0)), s.num(1), s.col(2), s.col(3), s.col(4), s.col(5)});
  }
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> Queue::countsByState() {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const char* state : {"queued", "delivering", "deferred", "parked", "held", "delivered", "bounced", "expired", "suppressed"}) {
    Stmt s(db_, "SELECT COUNT(*) FROM recipients WHERE state = ?");
    if (!s.s) return dbError(db_, "counts");
    s.text(1, state);
    if (sqlite3_step(s.s) != SQLITE_ROW) return dbError(db_, "counts");
    out.emplace_back(state, s.num(0));
  }
  return out;
}

Result<int64_t> Queue::attemptsSince(const std::string& id, int index, int64_t sinceMs) {
  Stmt s(db_, "SELECT COUNT(*) FROM attempts WHERE message_id = ? AND idx = ? AND time_ms >= ? AND tls NOT LIKE '(tried)%' AND tls <> '(report)'");
  if (!s.s) return dbError(db_, "attempts");
  s.text(1, id);
  s.i64(2, index);
  s.i64(3, sinceMs);
  if (sqlite3_step(s.s) != SQLITE_ROW) return dbError(db_, "attempts");
  return s.num(0);
}

Result<size_t> Queue::retryNow(const std::string& id) {
  const char* sql = id.empty() ? "UPDATE recipients SET next_attempt_ms = ? WHERE state = 'deferred'"
                               : "UPDATE recipients SET next_attempt_ms = ? WHERE state = 'deferred' AND message_id = ?";
  Stmt s(db_, sql);
  s.i64(1, nowMs());
  if (!id.empty()) s.text(2, id);
  if (sqlite3_step(s.s) != SQLITE_DONE) return dbError(db_, "retry");
  return static_cast<size_t>(sqlite3_changes(db_));
}

Result<size_t> Queue::purgeFinished(int64_t olderThanMs) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st.error();
  const char* old = "(SELECT id FROM messages WHERE content_deleted = 1 AND received_ms < ?)";
  size_t n = 0;
  for (const char* table : {"attempts", "recipients", "messages"}) {
    std::string sql = std::string("DELETE FROM ") + table + " WHERE " +
                      (std::string(table) == "messages" ? "id" : "message_id") + " IN " + old;
    Stmt s(db_, sql.c_str());
    s.i64(1, olderThanMs);
    if (sqlite3_step(s.s) != SQLITE_DONE) {
      Error e = dbError(db_, "purge");
      (void)exec("ROLLBACK");
      return e;
    }
    n = static_cast<size_t>(sqlite3_changes(db_));
  }
  if (auto st = exec("COMMIT"); !st) return st.error();
  return n;
}

}  // namespace sluice::queue
