// stmt_cache.cc - the queue's prepared-statement cache (see Stmt in queue_sql.h): statements are
// compiled once per connection and SQL text, reset and kept when a Stmt goes out of scope, and
// finalized when the connection closes (forgetStatements, from ~Queue).
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "queue/queue_sql.h"

namespace sluice::queue {
namespace {

constexpr size_t kMaxCachedPerConnection = 128;  // distinct SQL texts; the queue uses ~40

struct Cache {
  // Kept statements by SQL text. An entry stays when its statements are all in use, so the map's
  // size is the number of distinct texts seen (the bound below), not of statements kept now.
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle;
};

std::mutex& registryMutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<sqlite3*, Cache>& registry() {
  static auto* r = new std::unordered_map<sqlite3*, Cache>();  // never destroyed: used at exit
  return *r;
}

}  // namespace

sqlite3_stmt* takeStatement(sqlite3* db, const char* sql) {
  {
    std::lock_guard<std::mutex> l(registryMutex());
    auto c = registry().find(db);
    if (c != registry().end()) {
      auto it = c->second.idle.find(sql);
      if (it != c->second.idle.end() && !it->second.empty()) {
        sqlite3_stmt* s = it->second.back();
        it->second.pop_back();
        return s;
      }
    }
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return nullptr;
  }
  return s;
}

void returnStatement(sqlite3_stmt* s) {
  if (s == nullptr) return;
  sqlite3_reset(s);  // ends its read or write of the tables; bindings are cleared too
  sqlite3_clear_bindings(s);
  sqlite3* db = sqlite3_db_handle(s);
  const char* sql = sqlite3_sql(s);
  {
    std::lock_guard<std::mutex> l(registryMutex());
    Cache& c = registry()[db];
    auto it = c.idle.find(sql);
    if (it == c.idle.end() && c.idle.size() < kMaxCachedPerConnection) it = c.idle.emplace(sql, std::vector<sqlite3_stmt*>()).first;
    if (it != c.idle.end()) {
      it->second.push_back(s);
      return;
    }
    // too many distinct texts (dynamic SQL): not kept
  }
  sqlite3_finalize(s);
}

void forgetStatements(sqlite3* db) {
  std::vector<sqlite3_stmt*> all;
  {
    std::lock_guard<std::mutex> l(registryMutex());
    auto c = registry().find(db);
    if (c == registry().end()) return;
    for (auto& [sql, v] : c->second.idle) all.insert(all.end(), v.begin(), v.end());
    registry().erase(c);
  }
  for (sqlite3_stmt* s : all) sqlite3_finalize(s);
}

}  // namespace sluice::queue
