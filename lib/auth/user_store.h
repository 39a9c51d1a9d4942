// user_store.h - sluice-relayd's SMTP AUTH users: API-key style secrets (shown once by `sluicectl
// user add`), stored only as HMAC-SHA256(server secret, key). API keys are 32 random bytes, so a
// slow KDF would only burn CPU at every AUTH; the server secret (STATE_DIR/server.secret, 32
// random bytes, mode 0600, made on first use) means a stolen users.db alone reveals nothing usable.
// Which sender domains a user may use is the YAML identity map's business, as for every identity;
// the `domains` column is a note for the sysadmin.
//
// Table users in STATE_DIR/users.db (WAL): name, key_hash (hex), disabled, created_ms, rotated_ms,
// domains. Verification compares in constant time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

struct sqlite3;

namespace sluice::auth {

struct User {
  std::string name;
  bool disabled = false;
  int64_t createdMs = 0, rotatedMs = 0;
  std::string domains;
};

class UserStore {
 public:
  // Opens STATE_DIR/users.db and the server secret (created when `create` and missing).
  static Result<std::unique_ptr<UserStore>> open(const std::string& stateDir, bool create = true);
  ~UserStore();
  UserStore(const UserStore&) = delete;
  UserStore& operator=(const UserStore&) = delete;

  // Returns the new secret (to be shown once). Fails if the user exists.
  Result<std::string> add(const std::string& name, const std::string& domains);
  Result<std::string> rotate(const std::string& name);
  Result<bool> setDisabled(const std::string& name, bool disabled);
  Result<bool> remove(const std::string& name);
  Result<std::vector<User>> list();
  // True when the user exists, is enabled and the secret matches.
  Result<bool> verify(const std::string& name, const std::string& secret);

  static bool validName(const std::string& name);

 private:
  UserStore(sqlite3* db, std::string secret) : db_(db), serverSecret_(std::move(secret)) {}
  std::string hash(const std::string& key) const;
  sqlite3* db_;
  std::string serverSecret_;
};

}  // namespace sluice::auth
