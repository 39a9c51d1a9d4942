// suppress_cmd.h - `sluicectl suppress ...`: add, remove, list, import and export entries of the
// suppression list. It works on the store directly (suppress_store.h): the SQLite file (shared
// by several processes in WAL mode; sluice-policyd picks changes up within
// suppression_poll_interval) or, with store.backend: redis, the Redis hashes every policyd
// consults at each RCPT (changes apply at once).
//
// Exit codes: 0 ok, 1 error in the data (invalid address, bad import rows, database error),
// 2 usage error. Listings and exports go to `out`; diagnostics and progress go to `err`.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/config.h"

namespace sluice {

// What the command takes from its process; tests inject their own.
struct SuppressCommandEnv {
  const Clock* clock = nullptr;   // nullptr: the system clock
  std::istream* in = nullptr;     // what "import -" reads; nullptr: std::cin
  bool errIsTty = false;          // redraw the import progress in place with '\r'
  size_t batchRows = 50'000;      // rows per import transaction
};

// args are the words after "sluicectl suppress"; storeCfg chooses the backend (store.backend)
// and holds its settings. Progress is redrawn in place when err is std::cerr and stderr is a
// terminal.
int runSuppressCommand(const std::vector<std::string>& args, const config::StoreConfig& storeCfg,
                       std::ostream& out, std::ostream& err);
int runSuppressCommand(const std::vector<std::string>& args, const config::StoreConfig& storeCfg,
                       std::ostream& out, std::ostream& err, const SuppressCommandEnv& env);
// The same on the SQLite database at dbPath.
int runSuppressCommand(const std::vector<std::string>& args, const std::string& dbPath,
                       std::ostream& out, std::ostream& err);
int runSuppressCommand(const std::vector<std::string>& args, const std::string& dbPath,
                       std::ostream& out, std::ostream& err, const SuppressCommandEnv& env);

// Whether `address` may be put on the list: exactly one unquoted '@', a non-empty local part, a
// domain of letters, digits, hyphens and dots, no spaces or control characters. The error says
// what is wrong, without repeating the address.
Status validateSuppressAddress(std::string_view address);

}  // namespace sluice
