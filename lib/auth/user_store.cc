// user_store.cc - see user_store.h.
#include "auth/user_store.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::auth {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hex(const unsigned char* p, size_t n) {
  static const char* h = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += h[p[i] >> 4];
    out += h[p[i] & 15];
  }
  return out;
}

// "sk_" + 52 characters of base32 (32 random bytes).
std::string newSecret() {
  unsigned char raw[32];
  RAND_bytes(raw, sizeof raw);
  static const char* b32 = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out = "sk_";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out += b32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += b32[(acc << (5 - bits)) & 31];
  return out;
}

Result<std::string> readOrMakeSecret(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    unsigned char raw[32];
    RAND_bytes(raw, sizeof raw);
    std::string s = hex(raw, sizeof raw);
    int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w >= 0) {
      bool ok = ::write(w, s.data(), s.size()) == static_cast<ssize_t>(s.size()) && ::fsync(w) == 0;
      ::close(w);
      if (!ok) return makeError("cannot write " + path + ": " + std::strerror(errno));
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) return makeError("cannot read the server secret " + path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return makeError("server secret " + path + " is readable by group or others; chmod 600 it");
  }
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 32) return makeError("server secret " + path + " is too short (want 64 hex characters)");
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

bool UserStore::validName(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '@')) return false;
  }
  return true;
}

Result<std::unique_ptr<UserStore>> UserStore::open(const std::string& stateDir, bool create) {
  auto secret = readOrMakeSecret(stateDir + "/server.secret", create);
  if (!secret) return secret.error();
  sqlite3* db = nullptr;
  std::string path = stateDir + "/users.db";
  int flags = (create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return makeError("users " + path + ": " + e);
  }
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, key_hash TEXT NOT NULL,"
      " disabled INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, rotated_ms INTEGER NOT NULL DEFAULT 0,"
      " domains TEXT NOT NULL DEFAULT '');";
  if (sqlite3_exec(db, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db);
    return makeError("users " + path + ": " + e);
  }
  ::chmod(path.c_str(), 0600);
  return std::unique_ptr<UserStore>(new UserStore(db, secret.value()));
}

UserStore::~UserStore() { sqlite3_close(db_); }

std::string UserStore::hash(const std::string& key) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), serverSecret_.data(), static_cast<int>(serverSecret_.size()),
       reinterpret_cast<const unsigned char*>(key.data()), key.size(), mac, &len);
  return hex(mac, len);
}

Result<std::string> UserStore::add(const std::string& name, const std::string& domains) {
  if (!validName(name)) return makeError("bad user name \"" + name + "\" (letters, digits, . _ - @; up to 64)");
  std::string secret = newSecret();
  Stmt s(db_, "INSERT INTO users (name, key_hash, created_ms, domains) VALUES (?, ?, ?, ?)");
  sqlite3_bind_text(s.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  std::string h = hash(secret);
  sqlite3_bind_text(s.s, 2, h.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.s, 3, nowMs());
  sqlite3_bind_text(s.s, 4, domains.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s.s);
  if (rc == SQLITE_CONSTRAINT) return makeError("user " + name + " exists (rotate its key with `sluicectl user rotate`)");
  if (rc != SQLITE_DONE) return makeError(std::string("users: ") + sqlite3_errmsg(db_));
  return secret;
}

Result<std::string> UserStore::rotate(const std::string& name) {
  std::string secret = newSecret();
  Stmt s(db_, "UPDATE users SET key_hash = ?, rotated_ms = ? WHERE name = ?");
  std::string h = hash(secret);
  sqlite3_bind_text(s.s, 1, h.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.s, 2, nowMs());
  sqlite3_bind_text(s.s, 3, name.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(s.s) != SQLITE_DONE) return makeError(std::string("users: ") + sqlite3_errmsg(db_));
  if (sqlite3_changes(db_) == 0) return makeError("no user " + name);
  return secret;
}

Result<bool> UserStore::setDisabled(const std::string& name, bool disabled) {
  Stmt s(db_, "UPDATE users SET disabled = ? WHERE name = ?");
  sqlite3_bind_int(s.s, 1, disabled ? 1 : 0);
  sqlite3_bind_text(s.s, 2, name.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(s.s) != SQLITE_DONE) return makeError(std::string("users: ") + sqlite3_errmsg(db_));
  return sqlite3_changes(db_) > 0;
}

Result<bool> UserStore::remove(const std::string& name) {
  Stmt s(db_, "DELETE FROM users WHERE name = ?");
  sqlite3_bind_text(s.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(s.s) != SQLITE_DONE) return makeError(std::string("users: ") + sqlite3_errmsg(db_));
  return sqlite3_changes(db_) > 0;
}

Result<std::vector<User>> UserStore::list() {
  std::vector<User> out;
  Stmt s(db_, "SELECT name, disabled, created_ms, rotated_ms, domains FROM users ORDER BY name");
  while (sqlite3_step(s.s) == SQLITE_ROW) {
    User u;
    u.name = reinterpret_cast<const char*>(sqlite3_column_text(s.s, 0));
    u.disabled = sqlite3_column_int(s.s, 1) != 0;
    u.createdMs = sqlite3_column_int64(s.s, 2);
    u.rotatedMs = sqlite3_column_int64(s.s, 3);
    u.domains = reinterpret_cast<const char*>(sqlite3_column_text(s.s, 4));
    out.push_back(std::move(u));
  }
  return out;
}

Result<bool> UserStore::verify(const std::string& name, const std::string& secret) {
  Stmt s(db_, "SELECT key_hash, disabled FROM users WHERE name = ?");
  sqlite3_bind_text(s.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s.s);
  std::string want = hash(secret);  // computed either way: the time does not tell whether the user exists
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return makeError(std::string("users: ") + sqlite3_errmsg(db_));
  std::string have = reinterpret_cast<const char*>(sqlite3_column_text(s.s, 0));
  bool disabled = sqlite3_column_int(s.s, 1) != 0;
  bool match = have.size() == want.size() && CRYPTO_memcmp(have.data(), want.data(), have.size()) == 0;
  return match && !disabled;
}

}  // namespace sluice::auth
