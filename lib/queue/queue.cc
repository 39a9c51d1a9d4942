// queue.cc - see queue.h.
#include "queue/queue.h"

#include <pthread.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <deque>
#include <set>
#include <thread>

#include "base/log.h"
#include "base/strings.h"
#include "queue/queue_sql.h"

namespace sluice::queue {
namespace {

const char* kSchema =
    "CREATE TABLE IF NOT EXISTS messages ("
    " id TEXT PRIMARY KEY, sender TEXT NOT NULL, size INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
    " envid TEXT NOT NULL DEFAULT '', ret TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '',"
    " smtputf8 INTEGER NOT NULL DEFAULT 0, identity TEXT NOT NULL DEFAULT '', client TEXT NOT NULL DEFAULT '',"
    " helo TEXT NOT NULL DEFAULT '', message_id TEXT NOT NULL DEFAULT '', content_deleted INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS recipients ("
    " message_id TEXT NOT NULL, idx INTEGER NOT NULL, address TEXT NOT NULL, domain TEXT NOT NULL,"
    " orcpt TEXT NOT NULL DEFAULT '', notify TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, last_reply TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (message_id, idx));"
    "CREATE INDEX IF NOT EXISTS recipients_due ON recipients (state, next_attempt_ms);"
    // Per destination: its unfinished rows by state (totals), its claimed ones (claimDue's cap) and
    // its parked ones in time order (claimDue's unparking). Replaces (domain, state).
    "CREATE INDEX IF NOT EXISTS recipients_domain_due ON recipients (domain, state, next_attempt_ms);"
    "DROP INDEX IF EXISTS recipients_domain;"
    "CREATE INDEX IF NOT EXISTS messages_message_id ON messages (message_id);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    " message_id TEXT NOT NULL, idx INTEGER NOT NULL, time_ms INTEGER NOT NULL, mx TEXT NOT NULL DEFAULT '',"
    " ip TEXT NOT NULL DEFAULT '', tls TEXT NOT NULL DEFAULT '', reply TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS attempts_rcpt ON attempts (message_id, idx);"
    "CREATE TABLE IF NOT EXISTS pending_suppressions ("
    " message_id TEXT NOT NULL, idx INTEGER NOT NULL, address TEXT NOT NULL, scope TEXT NOT NULL,"
    " reason TEXT NOT NULL, source TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (message_id, idx));";

// ---- Recycled spool files ----
// One pool per state directory and process: the names in spool/free/ that a commit may use next.
// A finished message's file is renamed into spool/free/ at once (so it leaves the spool with its
// index transaction) and the pool's janitor thread empties it (truncate: freeing blocks is slow,
// above all with online discard, and must not hold up the delivery's recorder) before it becomes
// usable, or unlinks it when kFreeMax are kept. After a crash, the files found in spool/free/ are
// emptied at start. The pool of the process that recovers the spool (relayd's committer) is also
// kept at kLowWater files or more: when it runs low the janitor creates empty files, so creating
// inodes (the dearest part of writing a new file on ext4) is off the path of an acknowledgement.
// spool/ is mode 0700, the files 0600.
constexpr size_t kFreeMax = 4096;
constexpr size_t kLowWater = 256, kHighWater = 512;

// Empties a file by opening it with O_TRUNC and closing it: ext4 marks a file truncated to zero
// for auto_da_alloc and clears the mark at the next close, so the close here (of a file with
// nothing to write back) takes it, not the committer's close after it wrote the next message.
bool emptyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  return ::close(fd) == 0;
}

class FreePool {
 public:
  explicit FreePool(std::string dir) : dir_(std::move(dir)) {}
  ~FreePool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (janitor_.joinable()) janitor_.join();
  }
  FreePool(const FreePool&) = delete;
  FreePool& operator=(const FreePool&) = delete;

  // A usable (empty) file's name, or "" when there is none.
  std::string take() {
    std::lock_guard<std::mutex> l(mu_);
    if (ready_.empty()) return "";
    std::string n = std::move(ready_.back());
    ready_.pop_back();
    if (primed_ && ready_.size() < kLowWater) cv_.notify_one();
    return n;
  }
  // Moves `path` into the pool directory; the janitor empties it. false: it is still at `path`.
  bool give(const std::string& path) {
    std::string name;
    bool keep;
    {
      std::lock_guard<std::mutex> l(mu_);
      name = std::to_string(::getpid()) + "." + std::to_string(++counter_);
      keep = ready_.size() + work_.size() < kFreeMax;
    }
    if (::rename(path.c_str(), (dir_ + "/" + name).c_str()) != 0) return false;
    {
      std::lock_guard<std::mutex> l(mu_);
      work_.push_back({std::move(name), keep});
      startJanitor();
    }
    cv_.notify_one();
    return true;
  }
  // At start: files left in the directory by an earlier run (emptied here, synchronously).
  void adopt() {
    DIR* in = ::opendir(dir_.c_str());
    if (in == nullptr) return;
    std::lock_guard<std::mutex> l(mu_);
    std::set<std::string> known(ready_.begin(), ready_.end());
    for (const auto& w : work_) known.insert(w.name);
    while (dirent* f = ::readdir(in)) {
      std::string name = f->d_name;
      if (name == "." || name == ".." || f->d_type == DT_DIR || known.count(name) != 0) continue;
      if (ready_.size() < kFreeMax && emptyFile(dir_ + "/" + name)) ready_.push_back(name);
      else ::unlinkat(::dirfd(in), name.c_str(), 0);
    }
    ::closedir(in);
    primed_ = true;  // from now on the janitor keeps kLowWater files ready
    startJanitor();
    cv_.notify_one();
  }

 private:
  struct Work {
    std::string name;
    bool keep;
  };
  // Called with mu_ held.
  void startJanitor() {
    if (janitor_.joinable()) return;
    janitor_ = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "sluice-janitor");  // as top -H and perf show it
      run();
    });
  }
  void run() {
    std::unique_lock<std::mutex> l(mu_);
    bool filling = false;
    while (true) {
      cv_.wait(l, [&] { return stop_ || !work_.empty() || (primed_ && ready_.size() < (filling ? kHighWater : kLowWater)); });
      if (work_.empty() && stop_) return;
      if (work_.empty()) {
        filling = true;
        std::string name = std::to_string(::getpid()) + "." + std::to_string(++counter_);
        l.unlock();
        int fd = ::open((dir_ + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) ::close(fd);
        l.lock();
        if (fd < 0) {
          primed_ = false;  // the directory went away (or is full): no more filling
        } else {
          ready_.push_back(std::move(name));
        }
        if (ready_.size() >= kHighWater) filling = false;
        continue;
      }
      Work w = std::move(work_.front());
      work_.pop_front();
      l.unlock();
      std::string path = dir_ + "/" + w.name;
      bool ok = w.keep && emptyFile(path);
      if (!ok) ::unlink(path.c_str());
      l.lock();
      if (ok) ready_.push_back(std::move(w.name));
    }
  }

  std::string dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> ready_;
  std::deque<Work> work_;
  uint64_t counter_ = 0;
  bool stop_ = false;
  bool primed_ = false;
  std::thread janitor_;
};

FreePool& freePool(const std::string& stateDir) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<FreePool>> pools;
  std::lock_guard<std::mutex> l(mu);
  auto& p = pools[stateDir];
  if (!p) p = std::make_unique<FreePool>(stateDir + "/spool/free");
  return *p;
}

// The index has several writers in one process (the intake's committer, the delivery's
// recorder and scheduler): SQLite's default busy handler sleeps 1, 2, 5, 10 ... ms when the
// write lock is taken, far longer than a write transaction holds it (one fsync). This one sleeps
// 100 us at a time, until busy_timeout_ms.
int shortBusyWait(void* arg, int count) {
  const auto* timeoutMs = static_cast<const int*>(arg);
  if (static_cast<int64_t>(count) * 100 >= static_cast<int64_t>(*timeoutMs) * 1000) return 0;
  ::usleep(count < 20 ? 50 : 100);
  return 1;
}

}  // namespace

// A file for message `id`'s content, open for writing: a recycled one from spool/free/ (its name
// in *freeName: commit() renames it into place) or a new one at spoolPath(id) (*freeName empty).
int Queue::openSpoolFile(const std::string& id, std::string* freeName) {
  *freeName = freePool(options_.stateDir).take();
  if (!freeName->empty()) {
    std::string path = options_.stateDir + "/spool/free/" + *freeName;
    // No O_TRUNC: the janitor emptied the file, and a truncation here would mark the inode for
    // ext4's replace-via-truncate heuristic (auto_da_alloc), which starts writeback of this one
    // file at close instead of leaving it to the batch's syncfs. Checked, never assumed.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      struct stat st {};
      if (::fstat(fd, &st) == 0 && st.st_size == 0) return fd;
      if (::ftruncate(fd, 0) == 0) return fd;
      ::close(fd);
    }
    freeName->clear();  // gone (removed by hand?): a new file instead
  }
  return ::open(spoolPath(id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

// After the message's last recipient is final: its file leaves the spool, into the pool (or is
// unlinked when that fails).
void Queue::recycleSpoolFile(const std::string& id) {
  std::string path = spoolPath(id);
  if (!freePool(options_.stateDir).give(path)) ::unlink(path.c_str());
}

// At start (recover()): the files a previous run left in spool/free/ join the pool, emptied.
void Queue::adoptFreeFiles() {
  std::string dir = options_.stateDir + "/spool/free";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return;
  freePool(options_.stateDir).adopt();
}

std::string Queue::newId() {
  static std::atomic<uint32_t> counter{0};
  static const uint32_t salt = [] {
    uint32_t s = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&s), sizeof s);
    return s;
  }();
  uint64_t hi = static_cast<uint64_t>(nowMs()) & ((1ULL << 48) - 1);
  uint32_t lo = (counter.fetch_add(1) * 2654435761u) ^ salt;  // unique per process, spread out
  // 80 bits -> 16 base32 characters, most significant first.
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    int bitPos = (15 - i) * 5;  // bit offset from the least significant end
    uint32_t v;
    if (bitPos + 5 <= 32) {
      v = (lo >> bitPos) & 31;
    } else if (bitPos >= 32) {
      v = static_cast<uint32_t>((hi >> (bitPos - 32)) & 31);
    } else {
      v = ((lo >> bitPos) | static_cast<uint32_t>(hi << (32 - bitPos))) & 31;
    }
    id[static_cast<size_t>(i)] = kBase32[v];
  }
  return id;
}

std::string Queue::spoolPath(const std::string& id) const {
  return options_.stateDir + "/spool/" + id.substr(id.size() - 2) + "/" + id;
}

Result<std::unique_ptr<Queue>> Queue::open(const QueueOptions& o) {
  std::string spool = o.stateDir + "/spool";
  if (!o.readOnly && ::mkdir(spool.c_str(), 0700) != 0 && errno != EEXIST) {
    return ioError("cannot create " + spool, errno);
  }
  int fd = ::open(spool.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ioError("cannot open " + spool, errno);
  sqlite3* db = nullptr;
  std::string path = o.stateDir + "/queue.db";
  int flags = (o.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    ::close(fd);
    return makeError("queue index " + path + ": " + e);
  }
  std::unique_ptr<Queue> q(new Queue(db, o, fd));
  sqlite3_busy_handler(db, shortBusyWait, &q->options_.busyTimeoutMs);
  // 16 MB of page cache per connection instead of SQLite's 2 MB: at a million queued messages the
  // index is ~560 MB (~140,000 pages), whose B-trees' interior pages alone (~1,500) do not fit in
  // 2 MB, so a claim, an envelope or an insert would read some of them again with pread.
  // Allocated only as pages are used.
  if (auto st = q->exec("PRAGMA cache_size=-16384"); !st) return st.error();
  if (!o.readOnly) {
    if (auto st = q->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !st) return st.error();
    if (auto st = q->exec(kSchema); !st) return st.error();
    auto rec = o.recover ? q->recover() : Result<Recovery>(Recovery{});
    if (!rec) return rec.error();
    if (rec->orphanFiles || rec->missingFiles) {
      logWarning("queue recovery: removed " + std::to_string(rec->orphanFiles) +
                 " unacknowledged spool file(s); " + std::to_string(rec->missingFiles) + " message(s) without content");
    }
  }
  return q;
}

Queue::~Queue() {
  forgetStatements(db_);
  sqlite3_close(db_);
  ::close(spoolFd_);
}

Status Queue::exec(const char* sql) {
  if (std::strchr(sql, ';') == nullptr) {
    // One statement (BEGIN, COMMIT, a PRAGMA): from the statement cache, not compiled again.
    Stmt st(db_, sql);
    int rc = st.s ? sqlite3_step(st.s) : sqlite3_errcode(db_);
    while (rc == SQLITE_ROW) rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) return okStatus();
    int code = rc & 0xff;
    return makeError(std::string(code == SQLITE_FULL ? kNoSpace : "") + "queue index: " + sqlite3_errmsg(db_));
  }
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    int code = sqlite3_errcode(db_);
    return makeError(std::string(code == SQLITE_FULL ? kNoSpace : "") + "queue index: " + e);
  }
  return okStatus();
}

Status Queue::ensureDir(const std::string& sub) {
  size_t slot = static_cast<size_t>((std::strchr(kBase32, sub[0]) - kBase32) * 32 + (std::strchr(kBase32, sub[1]) - kBase32));
  if (slot < dirMade_.size() && dirMade_[slot]) return okStatus();
  std::string dir = options_.stateDir + "/spool/" + sub;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ioError("cannot create " + dir, errno);
  if (slot < dirMade_.size()) dirMade_[slot] = true;
  return okStatus();
}

// The two halves in one thread: each message written, then the written ones made durable.
std::vector<Status> Queue::commit(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids) {
  std::vector<Status> out(batch.size(), okStatus());
  std::vector<const NewMessage*> written;
  std::vector<std::string> writtenIds;
  std::vector<size_t> where;
  for (size_t i = 0; i < batch.size(); ++i) {
    out[i] = writeSpool(*batch[i], ids[i]);
    if (!out[i]) continue;
    written.push_back(batch[i]);
    writtenIds.push_back(ids[i]);
    where.push_back(i);
  }
  auto results = commitWritten(written, writtenIds);
  for (size_t k = 0; k < where.size(); ++k) out[where[k]] = results[k];
  return out;
}

void Queue::writeSpoolFiles(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids,
                            std::vector<Status>* outp, std::vector<bool>* writtenp) {
  std::vector<Status>& out = *outp;
  std::vector<bool>& written = *writtenp;
  // 1. content, each in its own file
  for (size_t i = 0; i < batch.size(); ++i) {
    out[i] = writeSpool(*batch[i], ids[i]);
    written[i] = out[i].ok();
  }
  // 2. one flush of the spool's filesystem for the whole batch
  if (::syncfs(spoolFd_) != 0) {
    Status st = ioError("syncfs of the spool", errno);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (written[i]) ::unlink(spoolPath(ids[i]).c_str());
      written[i] = false;
      if (out[i]) out[i] = st;
    }
  }
}

Status Queue::writeSpool(const NewMessage& m, const std::string& id) {
  if (auto st = ensureDir(id.substr(id.size() - 2)); !st) return st;
  std::string path = spoolPath(id), freeName;
  int fd = openSpoolFile(id, &freeName);
  if (fd < 0) return ioError("spool file " + path, errno);
  std::string freePath = freeName.empty() ? "" : options_.stateDir + "/spool/free/" + freeName;
  const std::string& c = m.content;
  size_t off = 0;
  int err = 0;
  while (off < c.size()) {
    ssize_t n = ::write(fd, c.data() + off, c.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  // A recycled file moves into place; it never replaces a file already there.
  if (err == 0 && !freeName.empty() && ::renameat2(AT_FDCWD, freePath.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    err = errno;
  }
  if (err != 0) {
    ::unlink(freeName.empty() ? path.c_str() : freePath.c_str());
    return ioError("spool file " + path, err);
  }
  return okStatus();
}

std::vector<Status> Queue::commitWritten(const std::vector<const NewMessage*>& batch,
                                         const std::vector<std::string>& ids, const Suppressed* suppressed) {
  std::vector<Status> out(batch.size(), okStatus());
  if (batch.empty()) return out;
  std::vector<bool> written(batch.size(), true);
  auto failAll = [&](const Error& e, bool inTransaction = true) {
    if (inTransaction) (void)exec("ROLLBACK");
    for (size_t i = 0; i < batch.size(); ++i) {
      ::unlink(spoolPath(ids[i]).c_str());
      out[i] = e;
    }
    return out;
  };
  // one flush of the spool's filesystem for the whole batch
  if (::syncfs(spoolFd_) != 0) return failAll(ioError("syncfs of the spool", errno), false);
  std::vector<std::string> finished;
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return failAll(st.error());
  if (auto st = insertMessages(batch, ids, written, suppressed, &finished); !st) return failAll(st.error());
  if (auto st = exec("COMMIT"); !st) return failAll(st.error());
  for (const std::string& id : finished) recycleSpoolFile(id);  // every recipient suppressed
  return out;
}

Status Queue::insertMessages(const std::vector<const NewMessage*>& batch, const std::vector<std::string>& ids,
                             const std::vector<bool>& written, const Suppressed* suppressed,
                             std::vector<std::string>* allSuppressed) {
  int64_t now = nowMs();
  Stmt m(db_,
         "INSERT INTO messages (id, sender, size, received_ms, envid, ret, body, smtputf8, identity, client, helo, message_id)"
         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  Stmt r(db_,
         "INSERT INTO recipients (message_id, idx, address, domain, orcpt, notify, state, next_attempt_ms, last_reply)"
         " VALUES (?,?,?,?,?,?,?,?,?)");
  Stmt done(db_, "UPDATE messages SET content_deleted = 1 WHERE id = ?");
  if (!m.s || !r.s || !done.s) return dbError(db_, "prepare");
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!written[i]) continue;
    const NewMessage& nm = *batch[i];
    sqlite3_reset(m.s);
    m.text(1, ids[i]);
    m.text(2, nm.sender);
    m.i64(3, static_cast<int64_t>(nm.content.size()));
    m.i64(4, now);
    m.text(5, nm.envid);
    m.text(6, nm.ret);
    m.text(7, nm.body);
    m.i64(8, nm.smtputf8 ? 1 : 0);
    m.text(9, nm.identity);
    m.text(10, nm.clientAddress);
    m.text(11, nm.helo);
    m.text(12, nm.messageId);
    if (sqlite3_step(m.s) != SQLITE_DONE) return dbError(db_, "insert message");
    size_t dropped = 0;
    for (size_t k = 0; k < nm.recipients.size(); ++k) {
      const auto& rc = nm.recipients[k];
      const std::string* why = nullptr;
      if (suppressed != nullptr && i < suppressed->size() && k < (*suppressed)[i].size() && !(*suppressed)[i][k].empty()) {
        why = &(*suppressed)[i][k];
        ++dropped;
      }
      sqlite3_reset(r.s);
      r.text(1, ids[i]);
      r.i64(2, static_cast<int64_t>(k));
      r.text(3, rc.address);
      r.text(4, domainOf(rc.address));
      r.text(5, rc.orcpt);
      r.text(6, rc.notify);
      r.text(7, why != nullptr ? "suppressed" : "queued");
      r.i64(8, why != nullptr ? 0 : now);
      r.text(9, why != nullptr ? *why : "");
      if (sqlite3_step(r.s) != SQLITE_DONE) return dbError(db_, "insert recipient");
    }
    if (dropped > 0 && dropped == nm.recipients.size()) {
      sqlite3_reset(done.s);
      done.text(1, ids[i]);
      if (sqlite3_step(done.s) != SQLITE_DONE) return dbError(db_, "insert message");
      if (allSuppressed != nullptr) allSuppressed->push_back(ids[i]);
    }
  }
  return okStatus();
}

Result<Queue::Recovery> Queue::recover() {
  Recovery rec;
  std::set<std::string> indexed;
  {
    Stmt s(db_, "SELECT id FROM messages WHERE content_deleted = 0");
    while (sqlite3_step(s.s) == SQLITE_ROW) indexed.insert(s.col(0));
  }
  std::set<std::string> onDisk;
  std::string spool = options_.stateDir + "/spool";
  DIR* top = ::opendir(spool.c_str());
  if (top == nullptr) return ioError("cannot read " + spool, errno);
  while (dirent* d = ::readdir(top)) {
    std::string sub = d->d_name;
    // Only our own two-character base32 directories ("..", too, is two characters long).
    if (sub.size() != 2 || std::strchr(kBase32, sub[0]) == nullptr || std::strchr(kBase32, sub[1]) == nullptr ||
        sub[0] == '\0' || sub[1] == '\0') {
      continue;
    }
    std::string dir = spool + "/" + sub;
    DIR* in = ::opendir(dir.c_str());
    if (in == nullptr) continue;
    while (dirent* f = ::readdir(in)) {
      std::string name = f->d_name;
      if (name == "." || name == ".." || f->d_type == DT_DIR) continue;
      if (indexed.count(name) != 0) {
        onDisk.insert(name);
        continue;
      }
      ::unlink((dir + "/" + name).c_str());  // never acknowledged
      ++rec.orphanFiles;
    }
    ::closedir(in);
  }
  ::closedir(top);
  for (const auto& id : indexed) {
    if (onDisk.count(id) == 0) {
      ++rec.missingFiles;
      logError("queue: message " + id + " has no spool file " + spoolPath(id));
    }
  }
  if (rec.orphanFiles > 0 && ::syncfs(spoolFd_) != 0) return ioError("syncfs", errno);
  adoptFreeFiles();
  return rec;
}

Result<std::vector<MessageInfo>> Queue::list(size_t limit) {
  std::vector<MessageInfo> out;
  Stmt s(db_,
         "SELECT m.id, m.sender, m.size, m.received_ms, m.identity, m.client, m.message_id, r.idx, r.address, r.state,"
         " r.attempts, r.next_attempt_ms, r.last_reply FROM messages m JOIN recipients r ON r.message_id = m.id"
         " ORDER BY m.id, r.idx");
  if (!s.s) return dbError(db_, "list");
  while (sqlite3_step(s.s) == SQLITE_ROW) {
    std::string id = s.col(0);
    if (out.empty() || out.back().id != id) {
      if (limit > 0 && out.size() == limit) break;
      MessageInfo mi;
      mi.id = id;
      mi.sender = s.col(1);
      mi.size = sqlite3_column_int64(s.s, 2);
      mi.receivedMs = sqlite3_column_int64(s.s, 3);
      mi.identity = s.col(4);
      mi.clientAddress = s.col(5);
      mi.messageId = s.col(6);
      out.push_back(std::move(mi));
    }
    MessageInfo::Rcpt r;
    r.index = sqlite3_column_int(s.s, 7);
    r.address = s.col(8);
    r.state = s.col(9);
    r.attempts = sqlite3_column_int(s.s, 10);
    r.nextAttemptMs = sqlite3_column_int64(s.s, 11);
    r.lastReply = s.col(12);
    out.back().recipients.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<MessageInfo>> Queue::show(const std::string& id) {
  auto all = list();  // small queues in admin use; the index makes the join cheap
  if (!all) return all.error();
  for (auto& m : all.value()) {
    if (m.id == id) return std::optional<MessageInfo>(std::move(m));
  }
  return std::optional<MessageInfo>();
}

Result<size_t> Queue::hold(const std::string& id) {
  Stmt s(db_, "UPDATE recipients SET state = 'held' WHERE message_id = ? AND state IN ('queued', 'deferred', 'parked')");
  s.text(1, id);
  if (sqlite3_step(s.s) != SQLITE_DONE) return dbError(db_, "hold");
  return static_cast<size_t>(sqlite3_changes(db_));
}

Result<size_t> Queue::release(const std::string& id) {
  Stmt s(db_, "UPDATE recipients SET state = 'queued', next_attempt_ms = ? WHERE message_id = ? AND state = 'held'");
  s.i64(1, nowMs());
  s.text(2, id);
  if (sqlite3_step(s.s) != SQLITE_DONE) return dbError(db_, "release");
  return static_cast<size_t>(sqlite3_changes(db_));
}

Result<bool> Queue::remove(const std::string& id) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st.error();
  Stmt a(db_, "DELETE FROM attempts WHERE message_id = ?");
  Stmt r(db_, "DELETE FROM recipients WHERE message_id = ?");
  Stmt m(db_, "DELETE FROM messages WHERE id = ?");
  a.text(1, id);
  r.text(1, id);
  m.text(1, id);
  if (sqlite3_step(a.s) != SQLITE_DONE || sqlite3_step(r.s) != SQLITE_DONE || sqlite3_step(m.s) != SQLITE_DONE) {
    Error e = dbError(db_, "delete");
    (void)exec("ROLLBACK");
    return e;
  }
  bool found = sqlite3_changes(db_) > 0;
  if (auto st = exec("COMMIT"); !st) return st.error();
  if (found) ::unlink(spoolPath(id).c_str());
  return found;
}

Result<Queue::Totals> Queue::totals() {
  Totals t;
  {
    Stmt s(db_, "SELECT state, COUNT(*) FROM recipients GROUP BY state ORDER BY state");
    while (sqlite3_step(s.s) == SQLITE_ROW) t.byState.emplace_back(s.col(0), sqlite3_column_int64(s.s, 1));
  }
  {
    Stmt s(db_,
           "SELECT domain, COUNT(*) FROM recipients WHERE state IN ('queued','deferred','parked','delivering','held')"
           " GROUP BY domain ORDER BY COUNT(*) DESC LIMIT 50");
    while (sqlite3_step(s.s) == SQLITE_ROW) t.byDestination.emplace_back(s.col(0), sqlite3_column_int64(s.s, 1));
  }
  {
    Stmt s(db_, "SELECT COUNT(*) FROM messages");
    if (sqlite3_step(s.s) == SQLITE_ROW) t.messages = sqlite3_column_int64(s.s, 0);
  }
  return t;
}

}  // namespace sluice::queue
