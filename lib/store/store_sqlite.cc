// store_sqlite.cc - see store_sqlite.h. Every statement is prepared once and cached; every use
// resets it before returning (StmtReset), so no read snapshot outlives the call that needed it.
#include "store/store_sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <system_error>
#include <utility>

#include "base/strings.h"

namespace sluice::store {

namespace {

// Schema migrations: kMigrations[i] takes user_version i to i + 1.
constexpr const char* kMigrations[] = {
    // 1: suppression list with tombstones, seq counter, rate-limit checkpoints. suppression is a
    // rowid table: rows are appended in seq order, so changesSince() and full loads read mostly
    // sequentially through the seq index.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('seq', 0), ('purged_seq', 0);"
    "CREATE TABLE suppression ("
    "  address TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '',"
    "  reason TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL DEFAULT 0,"
    "  seq INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (address, scope));"
    "CREATE UNIQUE INDEX suppression_seq ON suppression (seq);"
    "CREATE INDEX suppression_tombstones ON suppression (created_ms) WHERE deleted = 1;"
    "CREATE TABLE buckets (rule TEXT NOT NULL, \"window\" INTEGER NOT NULL, key TEXT NOT NULL,"
    "  tat_us INTEGER NOT NULL, PRIMARY KEY (rule, \"window\", key)) WITHOUT ROWID;",
};
static_assert(std::size(kMigrations) == static_cast<size_t>(SqliteStore::kSchemaVersion));

constexpr int kCacheKib = 32 * 1024;  // page cache per connection; big imports need it

// RAII: resets a cached statement (ending its read snapshot) when the call using it returns.
class StmtReset {
 public:
  explicit StmtReset(sqlite3_stmt* st) : st_(st) {}
  ~StmtReset() { sqlite3_reset(st_); }
  StmtReset(const StmtReset&) = delete;
  StmtReset& operator=(const StmtReset&) = delete;

 private:
  sqlite3_stmt* st_;
};

void bindText(sqlite3_stmt* st, int i, std::string_view s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}

std::string columnText(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, i)));
}

// Reads address, scope, reason, source, created_ms, expires_ms from columns 0..5.
SuppressionEntry readEntry(sqlite3_stmt* st) {
  SuppressionEntry e;
  e.address = columnText(st, 0);
  e.scope = columnText(st, 1);
  e.reason = columnText(st, 2);
  e.source = columnText(st, 3);
  e.createdMs = sqlite3_column_int64(st, 4);
  e.expiresMs = sqlite3_column_int64(st, 5);
  return e;
}

sqlite3_int64 limitOf(size_t n) { return n == 0 ? -1 : static_cast<sqlite3_int64>(n); }

}  // namespace

enum SqliteStore::Sql : int {
  kBegin, kCommit, kRollback, kMetaGet, kMetaSet, kUpsert, kTombstone, kGet, kCount,
  kChanges, kPurgeMax, kPurgeDelete, kBucketUpsert, kBucketDelete, kBucketLoad, kUserVersion,
};

static constexpr const char* kSql[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT value FROM meta WHERE key = ?1",
    "UPDATE meta SET value = ?2 WHERE key = ?1",
    "INSERT INTO suppression (address, scope, reason, source, created_ms, expires_ms, seq, deleted)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0) ON CONFLICT (address, scope) DO UPDATE SET"
    " reason = excluded.reason, source = excluded.source, created_ms = excluded.created_ms,"
    " expires_ms = excluded.expires_ms, seq = excluded.seq, deleted = 0",
    "UPDATE suppression SET deleted = 1, seq = ?3, created_ms = ?4, reason = '', source = '',"
    " expires_ms = 0 WHERE address = ?1 AND scope = ?2 AND deleted = 0",
    "SELECT address, scope, reason, source, created_ms, expires_ms FROM suppression"
    " WHERE address = ?1 AND scope = ?2 AND deleted = 0",
    "SELECT COUNT(*) FROM suppression WHERE deleted = 0",
    "SELECT address, scope, reason, source, created_ms, expires_ms, seq, deleted FROM suppression"
    " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    "SELECT MAX(seq), COUNT(*) FROM suppression WHERE deleted = 1 AND created_ms < ?1",
    "DELETE FROM suppression WHERE deleted = 1 AND created_ms < ?1",
    "INSERT INTO buckets (rule, \"window\", key, tat_us) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (rule, \"window\", key) DO UPDATE SET tat_us = excluded.tat_us",
    "DELETE FROM buckets WHERE rule = ?1 AND \"window\" = ?2 AND key = ?3",
    "SELECT rule, \"window\", key, tat_us FROM buckets",
    "PRAGMA user_version",
};
static_assert(std::size(kSql) == 16);

SqliteStore::SqliteStore(sqlite3* db, SqliteOptions options, const Clock* clock)
    : db_(db), options_(std::move(options)), clock_(clock != nullptr ? clock : &systemClock_) {}

SqliteStore::~SqliteStore() {
  for (sqlite3_stmt* st : stmts_) sqlite3_finalize(st);
  for (sqlite3_stmt* st : scanStmts_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const SqliteOptions& options,
                                                       const Clock* clock) {
  namespace fs = std::filesystem;
  if (options.path.empty()) return makeError("store: no database path given");
  std::error_code ec;
  fs::path dir = fs::path(options.path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    return makeError("store: cannot open " + options.path + ": directory " + dir.string() +
                     " does not exist");
  }
  if (options.readOnly && !fs::exists(options.path, ec)) {
    return makeError("store: cannot open " + options.path + " read-only: no such file");
  }
  int flags = SQLITE_OPEN_NOMUTEX |
              (options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return makeError("store: cannot open " + options.path + ": " + msg);
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, options, clock));
  if (auto s = store->configure(); !s) return s.error();
  if (auto s = store->migrate(); !s) return s.error();
  return store;
}

Error SqliteStore::sqlError(std::string_view what) const {
  return makeError("store: " + options_.path + ": " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

Status SqliteStore::exec(const char* sql, std::string_view what) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK) return okStatus();
  std::string text = msg != nullptr ? msg : "unknown error";
  sqlite3_free(msg);
  return makeError("store: " + options_.path + ": " + std::string(what) + ": " + text);
}

Status SqliteStore::configure() {
  sqlite3_busy_timeout(db_, static_cast<int>(std::clamp<int64_t>(options_.busyTimeoutMs, 0, INT32_MAX)));
  if (!options_.readOnly) {
    // journal_mode answers with the mode in effect; anything but "wal" means it did not stick.
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &st, nullptr) != SQLITE_OK) {
      return sqlError("setting WAL mode");
    }
    int rc = sqlite3_step(st);
    std::string mode = rc == SQLITE_ROW ? toLower(columnText(st, 0)) : "";
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sqlError("setting WAL mode");
    if (mode != "wal") return makeError("store: " + options_.path + ": cannot use WAL mode (got " + mode + ")");
  }
  std::string pragmas = "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
                        " PRAGMA cache_size=-" + std::to_string(kCacheKib) + ";";
  return exec(pragmas.c_str(), "configuring the connection");
}

Result<int> SqliteStore::schemaVersion() {
  auto st = prepared(kUserVersion);
  if (!st) return st.error();
  StmtReset reset(*st);
  if (sqlite3_step(*st) != SQLITE_ROW) return sqlError("reading user_version");
  return sqlite3_column_int(*st, 0);
}

Status SqliteStore::migrate() {
  auto version = schemaVersion();
  if (!version) return version.error();
  std::string have = std::to_string(*version);
  std::string want = std::to_string(kSchemaVersion);
  if (*version > kSchemaVersion) {
    return makeError("store: " + options_.path + " has schema version " + have +
                     ", newer than this program supports (" + want +
                     "); upgrade sluice or restore a backup made by this version");
  }
  if (options_.readOnly) {
    if (*version == kSchemaVersion) return okStatus();
    return makeError("store: " + options_.path + " has schema version " + have + ", this program needs " +
                     want + "; open it once read-write (e.g. with sluicectl) to migrate it");
  }
  for (int next = *version + 1; next <= kSchemaVersion; ++next) {
    if (auto s = runStatement(kBegin, "starting a migration"); !s) return s;
    // Another process may have migrated while we waited for the write lock.
    auto now = schemaVersion();
    Status s = now ? okStatus() : Status(now.error());
    if (s && *now < next) {
      s = exec(kMigrations[next - 1], "migrating to schema version " + std::to_string(next));
      std::string bump = "PRAGMA user_version = " + std::to_string(next);
      if (s) s = exec(bump.c_str(), "setting user_version");
    }
    if (s) s = runStatement(kCommit, "committing a migration");
    if (!s) {
      (void)runStatement(kRollback, "rolling back");
      return s;
    }
  }
  return okStatus();
}

Result<sqlite3_stmt*> SqliteStore::prepared(Sql id) {
  sqlite3_stmt*& st = stmts_[static_cast<size_t>(id)];
  if (st == nullptr &&
      sqlite3_prepare_v3(db_, kSql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    st = nullptr;
    return sqlError(std::string("preparing \"") + kSql[id] + "\"");
  }
  return st;
}

Status SqliteStore::runStatement(Sql id, std::string_view what) {
  auto st = prepared(id);
  if (!st) return st.error();
  StmtReset reset(*st);
  int rc = sqlite3_step(*st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sqlError(what);
  return okStatus();
}

Result<int64_t> SqliteStore::readMeta(std::string_view key) {
  auto st = prepared(kMetaGet);
  if (!st) return st.error();
  StmtReset reset(*st);
  bindText(*st, 1, key);
  int rc = sqlite3_step(*st);
  if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(*st, 0));
  if (rc == SQLITE_DONE) return makeError("store: " + options_.path + ": meta row " + std::string(key) + " is missing");
  return sqlError("reading meta " + std::string(key));
}

Status SqliteStore::writeMeta(std::string_view key, int64_t value) {
  auto st = prepared(kMetaSet);
  if (!st) return st.error();
  StmtReset reset(*st);
  bindText(*st, 1, key);
  sqlite3_bind_int64(*st, 2, value);
  if (sqlite3_step(*st) != SQLITE_DONE) return sqlError("writing meta " + std::string(key));
  return okStatus();
}

// Runs body inside BEGIN IMMEDIATE ... COMMIT, rolling back when anything fails. With usesSeq,
// seq_ starts at the stored counter and whatever body advanced it to is stored before COMMIT.
Status SqliteStore::writeTransaction(bool usesSeq, const std::function<Status()>& body) {
  if (options_.readOnly) return makeError("store: " + options_.path + " is open read-only");
  if (auto s = runStatement(kBegin, "starting a transaction"); !s) return s;
  Status s;
  int64_t start = 0;
  if (usesSeq) {
    auto cur = readMeta("seq");
    if (cur) seq_ = start = *cur;
    else s = cur.error();
  }
  if (s) s = body();
  if (s && usesSeq && seq_ != start) s = writeMeta("seq", seq_);
  if (s) s = runStatement(kCommit, "committing");
  if (!s) (void)runStatement(kRollback, "rolling back");
  return s;
}

Status SqliteStore::writeEntry(const SuppressionEntry& e, int64_t nowMs) {
  if (e.address.empty()) return makeError("store: a suppression entry needs an address");
  auto st = prepared(kUpsert);
  if (!st) return st.error();
  StmtReset reset(*st);
  address_.assign(e.address);
  toLowerInPlace(address_);
  scope_.assign(e.scope);
  toLowerInPlace(scope_);
  bindText(*st, 1, address_);
  bindText(*st, 2, scope_);
  bindText(*st, 3, e.reason);
  bindText(*st, 4, e.source);
  sqlite3_bind_int64(*st, 5, e.createdMs != 0 ? e.createdMs : nowMs);
  sqlite3_bind_int64(*st, 6, e.expiresMs);
  sqlite3_bind_int64(*st, 7, ++seq_);
  if (sqlite3_step(*st) != SQLITE_DONE) return sqlError("writing suppression of " + address_);
  return okStatus();
}

Status SqliteStore::writeEntries(std::span<const SuppressionEntry> entries) {
  int64_t now = clock_->nowMs();
  return writeTransaction(true, [&]() -> Status {
    for (const auto& e : entries) {
      if (auto s = writeEntry(e, now); !s) return s;
    }
    return okStatus();
  });
}

Status SqliteStore::add(const SuppressionEntry& entry) { return writeEntries({&entry, 1}); }

Result<size_t> SqliteStore::addBatch(const std::vector<SuppressionEntry>& entries) {
  if (entries.empty()) return size_t{0};
  if (auto s = writeEntries(entries); !s) return s.error();
  return entries.size();
}

Result<bool> SqliteStore::remove(std::string_view address, std::string_view scope) {
  bool removed = false;
  int64_t now = clock_->nowMs();
  Status s = writeTransaction(true, [&]() -> Status {
    auto st = prepared(kTombstone);
    if (!st) return st.error();
    StmtReset reset(*st);
    address_ = toLower(address);
    scope_ = toLower(scope);
    bindText(*st, 1, address_);
    bindText(*st, 2, scope_);
    sqlite3_bind_int64(*st, 3, seq_ + 1);
    sqlite3_bind_int64(*st, 4, now);
    if (sqlite3_step(*st) != SQLITE_DONE) return sqlError("removing suppression of " + address_);
    removed = sqlite3_changes(db_) > 0;
    if (removed) ++seq_;
    return okStatus();
  });
  if (!s) return s.error();
  return removed;
}

Result<std::optional<SuppressionEntry>> SqliteStore::get(std::string_view address, std::string_view scope) {
  auto st = prepared(kGet);
  if (!st) return st.error();
  StmtReset reset(*st);
  address_ = toLower(address);
  scope_ = toLower(scope);
  bindText(*st, 1, address_);
  bindText(*st, 2, scope_);
  int rc = sqlite3_step(*st);
  if (rc == SQLITE_DONE) return std::optional<SuppressionEntry>();
  if (rc != SQLITE_ROW) return sqlError("looking up " + address_);
  return std::optional<SuppressionEntry>(readEntry(*st));
}

// One cached statement per combination of filter conditions (address, scope, reason).
Result<sqlite3_stmt*> SqliteStore::scanStatement(const SuppressionFilter& f, unsigned* variant) {
  bool anyScope = f.scope == "*" || (f.scope.empty() && f.anyScope);
  unsigned v = (f.address.empty() ? 0u : 1u) | (anyScope ? 0u : 2u) | (f.reason.empty() ? 0u : 4u);
  *variant = v;
  sqlite3_stmt*& st = scanStmts_[v];
  if (st != nullptr) return st;
  std::string sql = "SELECT address, scope, reason, source, created_ms, expires_ms FROM suppression"
                    " WHERE deleted = 0";
  if (v & 1u) sql += " AND address = ?1";
  if (v & 2u) sql += " AND scope = ?2";
  if (v & 4u) sql += " AND reason = ?3";
  sql += " ORDER BY address, scope LIMIT ?4 OFFSET ?5";
  if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    st = nullptr;
    return sqlError("preparing a suppression listing");
  }
  return st;
}

Status SqliteStore::scan(const SuppressionFilter& filter,
                         const std::function<void(const SuppressionEntry&)>& fn) {
  unsigned v = 0;
  auto st = scanStatement(filter, &v);
  if (!st) return st.error();
  StmtReset reset(*st);
  std::string address = toLower(filter.address);
  std::string scope = toLower(filter.scope);
  if (v & 1u) bindText(*st, 1, address);
  if (v & 2u) bindText(*st, 2, scope);
  if (v & 4u) bindText(*st, 3, filter.reason);
  sqlite3_bind_int64(*st, 4, limitOf(filter.limit));
  sqlite3_bind_int64(*st, 5, static_cast<sqlite3_int64>(filter.offset));
  int rc;
  while ((rc = sqlite3_step(*st)) == SQLITE_ROW) fn(readEntry(*st));
  if (rc != SQLITE_DONE) return sqlError("listing suppressions");
  return okStatus();
}

Result<std::vector<SuppressionEntry>> SqliteStore::list(const SuppressionFilter& filter) {
  std::vector<SuppressionEntry> out;
  Status s = scan(filter, [&out](const SuppressionEntry& e) { out.push_back(e); });
  if (!s) return s.error();
  return out;
}

Result<size_t> SqliteStore::count() {
  auto st = prepared(kCount);
  if (!st) return st.error();
  StmtReset reset(*st);
  if (sqlite3_step(*st) != SQLITE_ROW) return sqlError("counting suppressions");
  return static_cast<size_t>(sqlite3_column_int64(*st, 0));
}

Result<std::vector<SuppressionChange>> SqliteStore::changesSince(int64_t afterSeq, size_t max) {
  auto st = prepared(kChanges);
  if (!st) return st.error();
  StmtReset reset(*st);
  sqlite3_bind_int64(*st, 1, afterSeq);
  sqlite3_bind_int64(*st, 2, limitOf(max));
  std::vector<SuppressionChange> out;
  out.reserve(max == 0 ? 64 : std::min<size_t>(max, 16'384));
  int rc;
  while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
    SuppressionChange c;
    c.seq = sqlite3_column_int64(*st, 6);
    c.deleted = sqlite3_column_int(*st, 7) != 0;
    if (c.deleted) {
      c.entry.address = columnText(*st, 0);
      c.entry.scope = columnText(*st, 1);
    } else {
      c.entry = readEntry(*st);
    }
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return sqlError("reading suppression changes");
  return out;
}

Result<int64_t> SqliteStore::currentSeq() { return readMeta("seq"); }

Result<int64_t> SqliteStore::oldestRetainedSeq() {
  auto purged = readMeta("purged_seq");
  if (!purged) return purged.error();
  return *purged + 1;
}

Result<size_t> SqliteStore::purgeTombstones(int64_t olderThanMs) {
  size_t purged = 0;
  Status s = writeTransaction(false, [&]() -> Status {
    auto st = prepared(kPurgeMax);
    if (!st) return st.error();
    int64_t maxSeq = 0;
    {
      StmtReset reset(*st);
      sqlite3_bind_int64(*st, 1, olderThanMs);
      if (sqlite3_step(*st) != SQLITE_ROW) return sqlError("finding old tombstones");
      maxSeq = sqlite3_column_int64(*st, 0);
      purged = static_cast<size_t>(sqlite3_column_int64(*st, 1));
    }
    if (purged == 0) return okStatus();
    auto del = prepared(kPurgeDelete);
    if (!del) return del.error();
    StmtReset reset(*del);
    sqlite3_bind_int64(*del, 1, olderThanMs);
    if (sqlite3_step(*del) != SQLITE_DONE) return sqlError("purging tombstones");
    auto old = readMeta("purged_seq");
    if (!old) return old.error();
    return maxSeq > *old ? writeMeta("purged_seq", maxSeq) : okStatus();
  });
  if (!s) return s.error();
  return purged;
}

Status SqliteStore::saveBuckets(const std::vector<BucketState>& changed,
                                const std::vector<BucketState>& expired) {
  if (changed.empty() && expired.empty()) return okStatus();
  return writeTransaction(false, [&]() -> Status {
    for (const auto& b : changed) {
      auto st = prepared(kBucketUpsert);
      if (!st) return st.error();
      StmtReset reset(*st);
      bindText(*st, 1, b.rule);
      sqlite3_bind_int64(*st, 2, b.window);
      bindText(*st, 3, b.key);
      sqlite3_bind_int64(*st, 4, b.tatUs);
      if (sqlite3_step(*st) != SQLITE_DONE) return sqlError("saving bucket " + b.rule);
    }
    for (const auto& b : expired) {
      auto st = prepared(kBucketDelete);
      if (!st) return st.error();
      StmtReset reset(*st);
      bindText(*st, 1, b.rule);
      sqlite3_bind_int64(*st, 2, b.window);
      bindText(*st, 3, b.key);
      if (sqlite3_step(*st) != SQLITE_DONE) return sqlError("deleting bucket " + b.rule);
    }
    return okStatus();
  });
}

Result<std::vector<BucketState>> SqliteStore::loadBuckets() {
  auto st = prepared(kBucketLoad);
  if (!st) return st.error();
  StmtReset reset(*st);
  std::vector<BucketState> out;
  int rc;
  while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
    BucketState b;
    b.rule = columnText(*st, 0);
    b.window = static_cast<uint32_t>(sqlite3_column_int64(*st, 1));
    b.key = columnText(*st, 2);
    b.tatUs = sqlite3_column_int64(*st, 3);
    out.push_back(std::move(b));
  }
  if (rc != SQLITE_DONE) return sqlError("loading buckets");
  return out;
}

}  // namespace sluice::store
