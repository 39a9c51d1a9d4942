// queue_sql.h - internal helpers shared by the queue's source files (queue.cc: intake, recovery
// and administration; queue_delivery.cc: what the scheduler and delivery agents read and write).
// Not part of the module's interface: nothing outside lib/queue includes it.
#pragma once

#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/result.h"
#include "base/strings.h"
#include "queue/queue.h"

namespace sluice::queue {

inline constexpr const char* kBase32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

inline int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The prepared-statement cache (stmt_cache.cc): a statement compiled earlier on `db` for the
// same SQL text and not in use, or a newly compiled one (nullptr on error); returnStatement resets
// it and keeps it for the next caller; forgetStatements finalizes every kept statement of `db`
// (before sqlite3_close).
sqlite3_stmt* takeStatement(sqlite3* db, const char* sql);
void returnStatement(sqlite3_stmt* s);
void forgetStatements(sqlite3* db);

// A prepared statement from the cache, given back when it goes out of scope (compiling the SQL
// each time cost more than running it); binds copy their text.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) : s(takeStatement(db, sql)) {}
  ~Stmt() { returnStatement(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  void text(int i, const std::string& v) { sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void i64(int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  std::string col(int i) {
    const unsigned char* t = sqlite3_column_text(s, i);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s, i))) : "";
  }
  int64_t num(int i) { return sqlite3_column_int64(s, i); }
};

inline Error dbError(sqlite3* db, const std::string& what) {
  int code = sqlite3_errcode(db);
  std::string prefix = (code == SQLITE_FULL || code == SQLITE_IOERR) ? kNoSpace : "";
  return makeError(prefix + "queue index: " + what + ": " + sqlite3_errmsg(db));
}

inline Error ioError(const std::string& what, int err) {
  std::string prefix = (err == ENOSPC || err == EDQUOT) ? kNoSpace : "";
  return makeError(prefix + what + ": " + std::strerror(err));
}

inline std::string domainOf(const std::string& address) {
  size_t at = address.rfind('@');
  return at == std::string::npos ? "" : toLower(address.substr(at + 1));
}

}  // namespace sluice::queue
