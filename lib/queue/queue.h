// queue.h - sluice-relayd's durable queue (DESIGN.md "The queue"): one spool file per message
// under STATE_DIR/spool/<2 chars>/<id> and an SQLite index (STATE_DIR/queue.db: messages,
// recipients, attempts) in WAL mode with synchronous=FULL.
//
// Durability (the promise behind a 250): commit() writes every message of a batch to its spool
// file, makes them durable with one syncfs(2) of the spool's filesystem (file data, inodes and
// new directory entries at once: the group commit), and only then inserts the whole batch into the
// index in one transaction, whose COMMIT is itself synced. A message exists once its index rows
// are committed; a spool file without index rows is debris of a crash before that point, and
// recover() (run by open()) deletes it. So after kill -9 at any moment every message that was
// acknowledged is there exactly once, and half-written ones are gone.
//
// Queue ids: 16 characters of Crockford base32 from an 80-bit value - 48 bits of milliseconds, 32
// of a per-process counter mixed with randomness - so ids sort by arrival time.
// Finished messages' spool files are not unlinked but moved to spool/free/ and emptied there (at
// most 4096 kept), and commit() writes new messages into them and renames them into place:
// creating an inode costs ext4 far more than reusing one when many were deleted recently
// (bench/README.md, relay).
//
// Threading: one Queue per thread (each holds its own SQLite connection); several may share the
// files (sluicectl reads the index while relayd writes it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"

struct sqlite3;

namespace sluice::queue {

struct NewRecipient {
  std::string address;
  std::string orcpt;   // ORCPT as given (xtext decoded), "" if none
  std::string notify;  // NOTIFY as given ("SUCCESS,FAILURE", "NEVER"), "" if none
};

struct NewMessage {
  std::string sender;  // "" = the null sender
  std::vector<NewRecipient> recipients;
  std::string content;  // the whole message, CRLF line ends, as it will be delivered
  std::string envid, ret, body;  // DSN ENVID, RET (FULL/HDRS), BODY (7BIT/8BITMIME/BINARYMIME)
  bool smtputf8 = false;
  std::string identity;       // the submitting SASL user, if known
  std::string clientAddress;  // for the log and `why`
  std::string helo;
  std::string messageId;      // the Message-ID header, if any (complaints match on it)
};

struct MessageInfo {
  std::string id, sender, identity, clientAddress, messageId;
  int64_t size = 0;
  int64_t receivedMs = 0;
  struct Rcpt {
    int index = 0;
    std::string address, state, lastReply;
    int attempts = 0;
    int64_t nextAttemptMs = 0;
  };
  std::vector<Rcpt> recipients;
};

struct QueueOptions {
  std::string stateDir;
  bool readOnly = false;  // sluicectl: never creates, migrates or deletes anything
  bool recover = true;    // false: another connection of the same process runs recover()
  int busyTimeoutMs = 5000;
};

class Queue {
 public:
  static Result<std::unique_ptr<Queue>> open(const QueueOptions& options);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  static std::string newId();
  std::string spoolPath(const std::string& id) const;

  // Makes the batch durable (see above). ids[i] is the queue id chosen for batch[i]. The result
  // has one Status per message: a message whose spool file could not be written fails alone; an
  // index failure fails the whole batch (its files are removed). Errors name ENOSPC/SQLITE_FULL as
  // "insufficient storage" so the caller can answer 452 4.3.1.
  std::vector<Status> commit(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids);
  // commit()'s two halves, for a pipeline that writes the next messages while the previous batch
  // is flushed (relayd's committer): writeSpool() writes one message's spool file; commitWritten()
  // makes a batch of written ones durable (one syncfs, one index transaction) and removes their
  // files if that fails. Nothing is durable before commitWritten() returned ok for it. The one
  // exception to "one Queue per thread": one thread may call writeSpool() while another calls
  // commitWritten() on the same Queue (writeSpool touches neither the index nor the syncfs).
  Status writeSpool(const NewMessage& m, const std::string& id);
  // `suppressed` (may be null): per message, per recipient, the reply of a recipient found on the
  // suppression list at queue time ("" for the others): inserted final ('suppressed', that
  // last_reply), never delivered. A message whose recipients are all suppressed has its content
  // deleted as soon as it is committed.
  using Suppressed = std::vector<std::vector<std::string>>;
  std::vector<Status> commitWritten(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids,
                                    const Suppressed* suppressed = nullptr);

  // What recover() found: files removed (never acknowledged), index rows whose file is missing.
  struct Recovery {
    size_t orphanFiles = 0;
    size_t missingFiles = 0;
  };
  Result<Recovery> recover();

  // Administration (sluicectl queue ...).
  Result<std::vector<MessageInfo>> list(size_t limit = 0);
  Result<std::optional<MessageInfo>> show(const std::string& id);
  Result<size_t> hold(const std::string& id);     // recipients queued/deferred -> held
  Result<size_t> release(const std::string& id);  // held -> queued, due now
  Result<bool> remove(const std::string& id);     // index rows and spool file
  struct Totals {
    std::vector<std::pair<std::string, int64_t>> byState;        // recipients per state
    std::vector<std::pair<std::string, int64_t>> byDestination;  // unfinished recipients per domain
    int64_t messages = 0;
  };
  Result<Totals> totals();

  // Delivery (queue_delivery.cc): what sluice-relayd's scheduler and delivery agents read and
  // write. Every state change is one transaction; a crash at any point loses nothing (a claimed
  // recipient goes back to deferred at the next start, so at worst a delivery is repeated).
  struct Due {
    std::string messageId;
    int index = 0;
    std::string address, domain;
    int attempts = 0;
  };
  // Up to `limit` recipients due at nowMs (queued or deferred with next_attempt <= nowMs), marked
  // 'delivering' in one transaction. Reads only due rows through the (state, next_attempt) index.
  //
  // Fairness (perDomainCap > 0): no recipient domain gets more than perDomainCap rows
  // 'delivering' at once, so one slow destination with a large backlog cannot take every slot of
  // the caller's in-flight limit. A due row of a domain at its cap is not skipped (skipping would
  // read the whole backlog at every claim) but parked: state 'parked', out of the due index, kept
  // in time order by the (domain, state, next_attempt) index. Each claim first gives every domain
  // with parked rows, round-robin, what its cap leaves free (its oldest parked rows), then reads
  // the due index. Each row is parked at most once per due time, and at most kParkBudget per claim
  // (the rest are parked by the next claims), so the cost per delivery stays flat. Parked rows are
  // due; resetDelivering() (at start) makes them deferred again with their own next attempt.
  // The set of domains with parked rows lives in this Queue object: one object must make the
  // claims (relayd's recorder), and resetDelivering() must run before its first claim.
  static constexpr size_t kParkBudget = 20000;
  Result<std::vector<Due>> claimDue(int64_t nowMs, size_t limit, size_t perDomainCap = 0);
  // The earliest next attempt of a queued or deferred recipient; nullopt when there is none.
  Result<std::optional<int64_t>> nextDueMs();
  // At start: recipients left 'delivering' by a crash become deferred and due now; parked ones
  // (claimDue) deferred, due at their own next attempt.
  Result<size_t> resetDelivering();

  struct Envelope {
    std::string id, sender, envid, ret, body, identity, messageId, helo, client;
    bool smtputf8 = false;
    int64_t size = 0, receivedMs = 0;
    struct Rcpt {
      int index = 0;
      std::string address, orcpt, notify, state;
      int attempts = 0;
    };
    std::vector<Rcpt> recipients;
    // The recipient with that index, or nullptr.
    const Rcpt* rcpt(int index) const {
      for (const auto& r : recipients) {
        if (r.index == index) return &r;
      }
      return nullptr;
    }
  };
  Result<std::optional<Envelope>> envelope(const std::string& id);
  Result<std::string> content(const std::string& id);

  // One recipient's new state after an attempt (or without one: suppressed, expired).
  struct Outcome {
    std::string messageId;
    int index = 0;
    std::string state;           // delivered | deferred | bounced | expired | suppressed
    std::string reply;           // the remote reply or our own diagnostic
    int64_t nextAttemptMs = 0;   // deferred only
    bool attempted = true;       // counts as an attempt and gets an attempts row
    bool recipientRefused = false;  // bounced because the address is bad: suppressed (hard bounce)
    std::string mx, ip, tls;     // of the attempt
    // MX hosts tried before this one in the same attempt (connection refused, greeting refused,
    // TLS policy): each gets its own attempts row, so `sluicectl why` shows the failover.
    // Their rows' tls column is kTriedTls, then the TLS policy that applied ("(tried) policy=verify").
    struct Tried {
      std::string mx, ip, reply, tls;
    };
    std::vector<Tried> tried;
  };
  // A hard-bounced recipient to add to the suppression list (which lives in another database):
  // kept in the queue index, in the transaction of the bounce, until the caller has added it to
  // the list and forgotten it here; what a crash left is re-driven at the next start.
  struct PendingSuppression {
    std::string messageId;  // with index: the bounced recipient (one row per recipient)
    int index = 0;
    std::string address, scope, reason, source;
    int64_t createdMs = 0;
  };
  // What must become durable together with a batch of outcomes: relayd's own DSNs (new messages,
  // ids[i] for messages[i]) and the suppressions of hard bounces.
  struct Followups {
    std::vector<const NewMessage*> messages;
    std::vector<std::string> ids;
    std::vector<PendingSuppression> suppressions;
  };
  // All outcomes in one transaction, with `extra` run inside it (events into the outbox); then the
  // content of every message whose recipients are all final is deleted (the rows stay for late
  // bounces). Returns the ids whose content went.
  // `followups`: their messages' spool files are written and synced before the transaction and
  // their index rows inserted in it, with the pending suppressions - so after a crash at any
  // point there are either the outcomes and their DSNs, or neither (a DSN file without index rows
  // is removed by recover(), and the recipients, still 'delivering', are due again).
  Result<std::vector<std::string>> record(const std::vector<Outcome>& outcomes,
                                          const std::function<Status(sqlite3*)>& extra = nullptr,
                                          const Followups* followups = nullptr);
  // Suppressions recorded and not yet forgotten (oldest first, at most `limit`).
  Result<std::vector<PendingSuppression>> pendingSuppressions(size_t limit = 1000);
  Status forgetSuppressions(const std::vector<PendingSuppression>& done);

  // Reports about recipients that arrive after relayd finished with them (asynchronous bounces
  // and complaints, `sluicectl bounce receive`): one attempts row each (tls kReportTls, mx the
  // reporting/remote MTA, reply what the report said), so `sluicectl why` shows them; the
  // recipients' states are left alone. All rows and `extra` (the events into the webhook
  // outbox) in one transaction. Another process may call this while relayd runs (WAL; the
  // write lock is held for one short transaction).
  struct Report {
    std::string messageId;
    int index = 0;
    std::string mta, text;
  };
  static constexpr const char* kReportTls = "(report)";
  static constexpr const char* kTriedTls = "(tried)";  // a prefix: "(tried) policy=may"
  Status recordReports(const std::vector<Report>& reports, const std::function<Status(sqlite3*)>& extra = nullptr);

  struct Attempt {
    int index = 0;
    int64_t timeMs = 0;
    std::string mx, ip, tls, reply;
  };
  Result<std::vector<Attempt>> attempts(const std::string& id);
  // Recipients per state, one index count per state (no scan of the domain columns): for metrics.
  Result<std::vector<std::pair<std::string, int64_t>>> countsByState();
  // How many attempts of recipient (id, index) were made at or after sinceMs.
  Result<int64_t> attemptsSince(const std::string& id, int index, int64_t sinceMs);
  // Deferred recipients of `id` (every message when id is "") become due now.
  Result<size_t> retryNow(const std::string& id);
  // Message rows (and their recipients and attempts) finished before olderThanMs are removed.
  Result<size_t> purgeFinished(int64_t olderThanMs);
  sqlite3* db() { return db_; }

 private:
  Queue(sqlite3* db, QueueOptions o, int spoolFd) : db_(db), options_(std::move(o)), spoolFd_(spoolFd) {}
  Status exec(const char* sql);
  // commit() in two halves, which record() also uses for its follow-up messages: the spool files
  // (out[i] fails alone; written[i] when the file is there) with one syncfs, then the index rows
  // inside a transaction the caller opened.
  void writeSpoolFiles(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids,
                       std::vector<Status>* out, std::vector<bool>* written);
  Status insertMessages(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids,
                        const std::vector<bool>& written, const Suppressed* suppressed = nullptr,
                        std::vector<std::string>* allSuppressed = nullptr);
  Status ensureDir(const std::string& sub);
  // Spool inodes are recycled (see queue.cc "Recycled spool files"): a finished message's file
  // goes, emptied, to spool/free/ and the next commit() writes into it.
  int openSpoolFile(const std::string& id, std::string* freeName);
  void recycleSpoolFile(const std::string& id);
  void adoptFreeFiles();

  sqlite3* db_;
  QueueOptions options_;
  int spoolFd_;
  std::vector<bool> dirMade_ = std::vector<bool>(1024, false);
  // claimDue's fairness: domains with parked rows, and where the last round-robin stopped.
  std::set<std::string> parkedDomains_;
  std::string unparkCursor_;
  Status unpark(size_t limit, size_t perDomainCap, std::map<std::string, size_t>* inFlight, std::vector<Due>* out);
  Result<size_t> deliveringCount(const std::string& domain, std::map<std::string, size_t>* cache);
};

// "insufficient storage" errors (ENOSPC, EDQUOT, SQLITE_FULL) carry this prefix.
inline constexpr const char* kNoSpace = "insufficient storage: ";

}  // namespace sluice::queue
