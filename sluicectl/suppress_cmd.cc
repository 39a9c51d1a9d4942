// suppress_cmd.cc - see suppress_cmd.h.
//
// CSV (import and export) follows RFC 4180: comma-separated; a field holding a comma, a quote or
// a line break is written in double quotes, with "" for a quote. The header is
// `address,scope,reason,source,created,expires` (on import: any order, any subset that includes
// address). Times are ISO-8601 UTC (2024-05-01T12:00:00Z); an empty expires means never, an
// empty scope means global. A file whose first line is not a header is read as one address per
// line. A record may not exceed kMaxRecord bytes. Bad rows are reported as FILE:LINE: reason.
#include "suppress_cmd.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "cli_util.h"
#include "suppress_store.h"

namespace sluice {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitData = 1;
constexpr int kExitUsage = 2;
constexpr size_t kMaxRecord = 64 * 1024;
constexpr size_t kMaxBadRowsShown = 100;
constexpr std::array<std::string_view, 6> kColumns = {"address", "scope", "reason", "source", "created", "expires"};
enum Column { kAddress, kScope, kReason, kSource, kCreated, kExpires };

constexpr const char* kGroupHelp = R"(NAME
    sluicectl suppress - manage the suppression list

SYNOPSIS
    sluicectl suppress add ADDRESS [--scope DOMAIN|global] [--reason REASON] [--expires DURATION]
    sluicectl suppress remove ADDRESS [--scope DOMAIN|global]
    sluicectl suppress list [--scope DOMAIN|global] [--reason REASON] [--limit N] [--json]
    sluicectl suppress import FILE|- [--scope DOMAIN|global] [--reason REASON]
    sluicectl suppress export [FILE|-]

DESCRIPTION
    The suppression list holds recipients Sluice will not send to: everywhere (global scope) or
    only for mail from one sending domain. sluice-policyd refuses them at RCPT TO with
    suppression.reject_action and sees every change within suppression_poll_interval (at
    once with store.backend: redis, where the list is shared by every host);
    sluice-relayd adds hard bounces and complaints by itself. Addresses are case-insensitive.
    Run `sluicectl suppress COMMAND --help` for the details of one command.

EXIT STATUS
    0 success; 1 error in the data (invalid address, bad import rows, database error);
    2 usage error.
)";

constexpr const char* kAddHelp = R"(NAME
    sluicectl suppress add - suppress one recipient address

SYNOPSIS
    sluicectl suppress add ADDRESS [--scope DOMAIN|global] [--reason REASON] [--expires DURATION]

DESCRIPTION
    Puts ADDRESS on the suppression list, replacing its entry in the same scope if it has one.
    The entry's source is "sluicectl".

OPTIONS
    --scope DOMAIN|global   refuse ADDRESS only for mail from sender domain DOMAIN
                            (default: global, i.e. for every sender)
    --reason REASON         why; shown in the rejection and in listings (default: manual).
                            Customary: hard-bounce, complaint, unsubscribe, manual
    --expires DURATION      lift the suppression after DURATION: 45s, 90m, 12h, 30d, 2w
                            (default: never)

EXAMPLES
    sluicectl suppress add jane@example.com --reason complaint
    sluicectl suppress add bob@example.org --scope shop.example.net --expires 30d
)";

constexpr const char* kRemoveHelp = R"(NAME
    sluicectl suppress remove - lift the suppression of one address

SYNOPSIS
    sluicectl suppress remove ADDRESS [--scope DOMAIN|global]

DESCRIPTION
    Removes the entry of ADDRESS in the given scope (default: global). Entries of the same
    address in other scopes stay. Exits 1 when there was no such entry.

EXAMPLES
    sluicectl suppress remove jane@example.com
    sluicectl suppress remove bob@example.org --scope shop.example.net
)";

constexpr const char* kListHelp = R"(NAME
    sluicectl suppress list - show suppressed addresses

SYNOPSIS
    sluicectl suppress list [--scope DOMAIN|global] [--reason REASON] [--limit N] [--json]

DESCRIPTION
    Prints the entries ordered by address, as a table with aligned columns ADDRESS, SCOPE,
    REASON, SOURCE, CREATED and EXPIRES (UTC), or with --json one JSON object per line:
    {"address", "scope" ("" = global), "reason", "source", "created", "expires" (null = never),
    "created_ms", "expires_ms"}. Expired entries are listed until they are removed.

OPTIONS
    --scope DOMAIN|global   only entries of this scope (default: every scope)
    --reason REASON         only entries with this reason
    --limit N               at most N entries
    --json                  JSON Lines instead of a table
)";

constexpr const char* kImportHelp = R"(NAME
    sluicectl suppress import - add many addresses from a file

SYNOPSIS
    sluicectl suppress import FILE|- [--scope DOMAIN|global] [--reason REASON]

DESCRIPTION
    Reads FILE (or standard input for -) in one of two forms:
      - CSV with the header line address,scope,reason,source,created,expires, as written by
        `sluicectl suppress export` (columns in any order; all but address optional; quoted
        fields allowed). Empty scope = global, empty expires = never, times in ISO-8601 UTC.
      - one address per line, without a header.
    Existing entries with the same address and scope are replaced. Rows are written in
    batches of 50,000 (one SQLite transaction each; pipelined writes with Redis); progress
    (rows done, rows/s) goes to standard error. Invalid rows are reported as FILE:LINE:
    reason and skipped; the exit status is then 1. The source of the new entries is the
    file's source column, else "import:<file name>".

OPTIONS
    --scope DOMAIN|global   scope of rows without a scope column (default: global)
    --reason REASON         reason of rows without a reason (default: manual)

EXAMPLES
    sluicectl suppress import unsubscribed.txt --reason unsubscribe
    sluicectl suppress export backup.csv && sluicectl suppress import backup.csv
)";

constexpr const char* kExportHelp = R"(NAME
    sluicectl suppress export - write the whole list as CSV

SYNOPSIS
    sluicectl suppress export [FILE|-]

DESCRIPTION
    Writes every entry, ordered by address, to FILE or to standard output (the default, or -)
    as CSV with the header address,scope,reason,source,created,expires; times in ISO-8601 UTC,
    empty scope = global, empty expires = never. `sluicectl suppress import` reads it back.
)";

// ---- values ------------------------------------------------------------------------------------

bool isAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }


Status validateDomain(std::string_view d) {
  if (d.empty()) return makeError("empty domain");
  if (d.size() > 253) return makeError("domain longer than 253 characters");
  for (std::string_view label : split(d, '.')) {
    if (label.empty()) return makeError("empty label in the domain (leading, trailing or double dot)");
    if (label.size() > 63) return makeError("domain label longer than 63 characters");
    if (label.front() == '-' || label.back() == '-') return makeError("domain label starts or ends with '-'");
    for (char c : label) {
      if (isAlnum(c) || c == '-') continue;
      return makeError("domain contains '" + ctl::printableArg(std::string_view(&c, 1)) +
                       "'; only letters, digits, hyphens and dots are allowed (use xn-- for IDNs)");
    }
  }
  return okStatus();
}

// "global" or "" is the global scope (""); anything else must be a domain.
Result<std::string> parseScope(std::string_view s) {
  if (s.empty() || iequals(s, "global")) return std::string();
  if (auto v = validateDomain(s); !v) return makeError("invalid scope \"" + ctl::printableArg(s) + "\": " + v.message());
  return toLower(s);
}

std::string formatIso(int64_t ms) {
  using namespace std::chrono;
  sys_seconds t{seconds{ms >= 0 ? ms / 1000 : (ms - 999) / 1000}};
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

// 2024-05-01, 2024-05-01T12:00:00Z, "2024-05-01 12:00:00", fractions of seconds, +00:00.
std::optional<int64_t> parseIso(std::string_view s) {
  size_t p = 0;
  auto num = [&](size_t n, int* v) {
    if (p + n > s.size()) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i, ++p) {
      if (s[p] < '0' || s[p] > '9') return false;
      *v = *v * 10 + (s[p] - '0');
    }
    return true;
  };
  auto lit = [&](std::string_view chars) {
    if (p >= s.size() || chars.find(s[p]) == std::string_view::npos) return false;
    ++p;
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  if (!num(4, &y) || !lit("-") || !num(2, &mo) || !lit("-") || !num(2, &d)) return std::nullopt;
  if (lit("Tt ")) {
    if (!num(2, &h) || !lit(":") || !num(2, &mi) || !lit(":") || !num(2, &sec)) return std::nullopt;
    if (lit(".")) {
      size_t digits = 0;
      for (; p < s.size() && s[p] >= '0' && s[p] <= '9'; ++p, ++digits) {
        if (digits < 3) ms = ms * 10 + (s[p] - '0');
      }
      if (digits == 0) return std::nullopt;
      for (; digits < 3; ++digits) ms *= 10;
    }
    std::string_view zone = s.substr(p);
    if (zone == "Z" || zone == "z" || zone == "+00:00" || zone == "+0000") p = s.size();
  }
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (p != s.size() || !ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  int64_t secs = sys_days{ymd}.time_since_epoch().count() * int64_t{86400} + h * 3600 + mi * 60 + sec;
  return secs * 1000 + ms;
}

std::string csvField(std::string_view s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos ||
               (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return std::string(s);
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// ---- CSV reading -------------------------------------------------------------------------------

class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : in_(in) {}
  // The next record; false at the end. A malformed record sets *error and still returns true.
  bool next(std::vector<std::string>* fields, std::string* error);
  size_t line() const { return startLine_; }
  uint64_t bytes() const { return bytes_; }

 private:
  bool readLine();

  std::istream& in_;
  std::string line_;
  size_t lineNo_ = 0;
  size_t startLine_ = 0;
  uint64_t bytes_ = 0;
};

bool CsvReader::readLine() {
  if (!std::getline(in_, line_)) return false;
  bytes_ += line_.size() + 1;
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (++lineNo_ == 1 && startsWith(line_, "\xEF\xBB\xBF")) line_.erase(0, 3);  // UTF-8 BOM
  return true;
}

bool CsvReader::next(std::vector<std::string>* fields, std::string* error) {
  fields->clear();
  error->clear();
  if (!readLine()) return false;
  startLine_ = lineNo_;
  std::string field;
  bool inQuotes = false, quoted = false;
  size_t total = line_.size();
  for (size_t i = 0;;) {
    if (i == line_.size()) {
      if (!inQuotes) break;
      if (total > kMaxRecord || !readLine()) {
        *error = total > kMaxRecord ? "record longer than 65536 bytes" : "unterminated quoted field";
        return true;
      }
      field += '\n';
      total += line_.size() + 1;
      i = 0;
      continue;
    }
    char c = line_[i++];
    if (inQuotes) {
      if (c != '"') field += c;
      else if (i < line_.size() && line_[i] == '"') field += line_[i++];
      else inQuotes = false;
    } else if (c == ',') {
      fields->push_back(std::move(field));
      field.clear();
      quoted = false;
    } else if (quoted) {
      *error = "text after a closing quote";
      return true;
    } else if (c == '"' && field.empty()) {
      inQuotes = quoted = true;
    } else {
      field += c;
    }
  }
  if (total > kMaxRecord) *error = "record longer than 65536 bytes";
  fields->push_back(std::move(field));
  return true;
}

// ---- progress ----------------------------------------------------------------------------------

// Import progress on stderr: redrawn with '\r' on a terminal, else one line per 10% of the input
// (or per batch when the size is unknown).
class Progress {
 public:
  Progress(std::ostream& err, bool tty, uint64_t totalBytes)
      : err_(err), tty_(tty), total_(totalBytes), start_(std::chrono::steady_clock::now()) {}
  void update(uint64_t rows, uint64_t bytes, bool last);

 private:
  std::ostream& err_;
  bool tty_;
  uint64_t total_;
  std::chrono::steady_clock::time_point start_;
  uint64_t shownTenth_ = 0;
  uint64_t shownRows_ = UINT64_MAX;
};

void Progress::update(uint64_t rows, uint64_t bytes, bool last) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t tenth = total_ == 0 ? 0 : std::min<uint64_t>(10, bytes * 10 / total_);
  if (!tty_ && !last && total_ != 0 && tenth <= shownTenth_) return;
  if (!tty_ && last && rows == shownRows_) return;  // the final state was just shown
  shownTenth_ = tenth;
  shownRows_ = rows;
  std::string line = "import: " + std::to_string(rows) + " rows, " +
                     std::to_string(static_cast<uint64_t>(secs > 0 ? rows / secs : 0)) + " rows/s";
  if (total_ != 0) {
    uint64_t pct = std::min<uint64_t>(100, bytes * 100 / total_);
    line += " [" + std::string(pct / 5, '#') + std::string(20 - pct / 5, '.') + "] " + std::to_string(pct) + "%";
  }
  if (tty_) err_ << '\r' << line << "\x1b[K" << (last ? "\n" : "") << std::flush;
  else err_ << line << '\n' << std::flush;
}

// ---- arguments ---------------------------------------------------------------------------------

using ctl::OptSpec;
using Parsed = ctl::ParsedArgs;

// ---- the commands ------------------------------------------------------------------------------

class SuppressCmd;
using Handler = int (SuppressCmd::*)(const Parsed&);

struct Subcommand {
  std::string_view name;
  const char* help;
  std::vector<OptSpec> options;
  size_t minArgs, maxArgs;
  Handler run;
  std::string_view argName;
};

struct ImportState {
  std::string name;    // for FILE:LINE messages
  std::string source;  // "import:<basename>"
  std::string scope, reason;
  std::array<int, kColumns.size()> col{};  // field index of each column, -1 = absent
  size_t fields = 0;                       // fields per record when there is a header
  bool header = false;
  uint64_t imported = 0, bad = 0;
  std::vector<store::SuppressionEntry> batch;
};

class SuppressCmd {
 public:
  SuppressCmd(const config::StoreConfig& storeCfg, std::ostream& out, std::ostream& err, const SuppressCommandEnv& env)
      : storeCfg_(storeCfg), out_(out), err_(err), env_(env),
        clock_(env.clock != nullptr ? env.clock : &systemClock_) {}
  int run(const std::vector<std::string>& args);
  int add(const Parsed& p);
  int remove(const Parsed& p);
  int list(const Parsed& p);
  int importCsv(const Parsed& p);
  int exportCsv(const Parsed& p);

 private:
  int usage(const std::string& msg);
  int fail(const std::string& msg);
  Result<std::unique_ptr<ctl::SuppressStore>> openStore(bool readOnly);
  bool readHeader(const std::vector<std::string>& fields, ImportState* st, std::string* error);
  Status parseRow(const std::vector<std::string>& fields, const ImportState& st, store::SuppressionEntry* e);
  Status importRows(CsvReader& reader, ctl::SuppressStore& db, Progress& progress, ImportState& st);
  void printTable(const std::vector<store::SuppressionEntry>& rows);

  const config::StoreConfig& storeCfg_;
  std::ostream& out_;
  std::ostream& err_;
  const SuppressCommandEnv& env_;
  SystemClock systemClock_;
  const Clock* clock_;
  std::string sub_;
};

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> kSubs = {
      {"add", kAddHelp, {{"--scope", true}, {"--reason", true}, {"--expires", true}}, 1, 1, &SuppressCmd::add, "ADDRESS"},
      {"remove", kRemoveHelp, {{"--scope", true}}, 1, 1, &SuppressCmd::remove, "ADDRESS"},
      {"list", kListHelp, {{"--scope", true}, {"--reason", true}, {"--limit", true}, {"--json", false}}, 0, 0,
       &SuppressCmd::list, ""},
      {"import", kImportHelp, {{"--scope", true}, {"--reason", true}}, 1, 1, &SuppressCmd::importCsv, "FILE"},
      {"export", kExportHelp, {}, 0, 1, &SuppressCmd::exportCsv, ""},
  };
  return kSubs;
}

int SuppressCmd::usage(const std::string& msg) {
  err_ << "sluicectl suppress" << (sub_.empty() ? "" : " " + sub_) << ": " << msg << "\n"
       << "Try 'sluicectl suppress" << (sub_.empty() ? "" : " " + sub_) << " --help'.\n";
  return kExitUsage;
}

int SuppressCmd::fail(const std::string& msg) {
  err_ << "sluicectl suppress " << sub_ << ": " << msg << "\n";
  return kExitData;
}

int SuppressCmd::run(const std::vector<std::string>& args) {
  if (args.empty()) return usage("missing command (add, remove, list, import, export)");
  const std::string& first = args[0];
  if (first == "--help" || first == "-h" || first == "help") {
    std::string topic = args.size() > 1 ? args[1] : "";
    auto sub = std::find_if(subcommands().begin(), subcommands().end(),
                            [&](const Subcommand& s) { return s.name == topic; });
    out_ << (sub == subcommands().end() ? kGroupHelp : sub->help);
    return kExitOk;
  }
  auto sub = std::find_if(subcommands().begin(), subcommands().end(), [&](const Subcommand& s) { return s.name == first; });
  if (sub == subcommands().end()) return usage("unknown command " + ctl::printableArg(first));
  sub_ = first;
  if (std::any_of(args.begin() + 1, args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; })) {
    out_ << sub->help;
    return kExitOk;
  }
  Parsed p;
  if (std::string msg = ctl::parseArgs(args, 1, sub->options, &p); !msg.empty()) return usage(msg);
  if (p.positional.size() < sub->minArgs) return usage("missing " + std::string(sub->argName));
  if (p.positional.size() > sub->maxArgs) return usage("unexpected argument " + ctl::printableArg(p.positional[sub->maxArgs]));
  return (this->*(sub->run))(p);
}

Result<std::unique_ptr<ctl::SuppressStore>> SuppressCmd::openStore(bool readOnly) {
  return ctl::openSuppressStore(storeCfg_, readOnly, clock_);
}

std::string describe(const store::SuppressionEntry& e) {
  return "scope " + (e.scope.empty() ? std::string("global") : e.scope) + ", reason " + e.reason +
         ", expires " + (e.expiresMs == 0 ? std::string("never") : formatIso(e.expiresMs));
}

int SuppressCmd::add(const Parsed& p) {
  store::SuppressionEntry e;
  e.address = p.positional[0];
  if (auto v = validateSuppressAddress(e.address); !v) {
    return fail("invalid address \"" + ctl::printableArg(e.address) + "\": " + v.message());
  }
  auto scope = parseScope(p.get("--scope") ? *p.get("--scope") : "");
  if (!scope) return usage(scope.message());
  e.scope = *scope;
  e.reason = p.get("--reason") ? *p.get("--reason") : "manual";
  if (e.reason.empty() || ctl::printableArg(e.reason) != e.reason) return usage("--reason must be non-empty, without control characters");
  e.source = "sluicectl";
  e.createdMs = clock_->nowMs();
  if (const std::string* x = p.get("--expires")) {
    auto d = parseDurationMs(*x);
    if (!d || *d <= 0) return usage("invalid --expires \"" + ctl::printableArg(*x) + "\": want a duration like 45s, 90m, 12h, 30d, 2w");
    e.expiresMs = e.createdMs + *d;
  }
  auto db = openStore(false);
  if (!db) return fail(db.message());
  if (auto s = (*db)->add(e); !s) return fail(s.message());
  e.address = toLower(e.address);
  out_ << "suppressed " << ctl::printableArg(e.address) << " (" << describe(e) << ")\n";
  return kExitOk;
}

int SuppressCmd::remove(const Parsed& p) {
  const std::string& address = p.positional[0];
  auto scope = parseScope(p.get("--scope") ? *p.get("--scope") : "");
  if (!scope) return usage(scope.message());
  std::string scopeName = scope->empty() ? "global" : *scope;
  auto db = openStore(false);
  if (!db) return fail(db.message());
  auto removed = (*db)->remove(address, *scope);
  if (!removed) return fail(removed.message());
  if (!*removed) return fail(ctl::printableArg(address) + " is not suppressed in scope " + scopeName);
  out_ << "removed " << ctl::printableArg(toLower(address)) << " (scope " << scopeName << ")\n";
  return kExitOk;
}

void SuppressCmd::printTable(const std::vector<store::SuppressionEntry>& rows) {
  std::vector<std::array<std::string, 6>> cells;
  cells.push_back({"ADDRESS", "SCOPE", "REASON", "SOURCE", "CREATED", "EXPIRES"});
  int64_t now = clock_->nowMs();
  for (const auto& e : rows) {
    std::string expires = e.expiresMs == 0 ? "never" : formatIso(e.expiresMs) + (e.expiresMs <= now ? " (expired)" : "");
    cells.push_back({ctl::printableArg(e.address), e.scope.empty() ? "global" : ctl::printableArg(e.scope), ctl::printableArg(e.reason),
                     ctl::printableArg(e.source), formatIso(e.createdMs), expires});
  }
  std::array<size_t, 6> width{};
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out_ << line << '\n';
  }
}

int SuppressCmd::list(const Parsed& p) {
  store::SuppressionFilter f;
  if (const std::string* s = p.get("--scope")) {
    auto scope = parseScope(*s);
    if (!scope) return usage(scope.message());
    f.scope = *scope;
    f.anyScope = false;
  }
  if (const std::string* r = p.get("--reason")) f.reason = *r;
  if (const std::string* l = p.get("--limit")) {
    auto n = ctl::parseNumberArg("--limit", *l, 0, std::numeric_limits<size_t>::max());
    if (!n) return usage(n.message());
    f.limit = static_cast<size_t>(*n);
  }
  auto db = openStore(true);
  if (!db) return fail(db.message());
  if (p.get("--json") == nullptr) {
    auto rows = (*db)->list(f);
    if (!rows) return fail(rows.message());
    printTable(*rows);
    return kExitOk;
  }
  Status s = (*db)->scan(f, [&](const store::SuppressionEntry& e) {
    nlohmann::ordered_json j = {{"address", e.address}, {"scope", e.scope}, {"reason", e.reason},
                                {"source", e.source}, {"created", formatIso(e.createdMs)},
                                {"expires", e.expiresMs == 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(formatIso(e.expiresMs))},
                                {"created_ms", e.createdMs}, {"expires_ms", e.expiresMs}};
    out_ << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
  });
  return s ? kExitOk : fail(s.message());
}

int SuppressCmd::exportCsv(const Parsed& p) {
  std::string target = p.positional.empty() ? "-" : p.positional[0];
  auto db = openStore(true);
  if (!db) return fail(db.message());
  std::ofstream file;
  std::ostream* os = &out_;
  if (target != "-") {
    file.open(target, std::ios::binary | std::ios::trunc);
    if (!file) return fail("cannot write " + target + ": " + std::strerror(errno));
    os = &file;
  }
  *os << "address,scope,reason,source,created,expires\n";
  uint64_t n = 0;
  Status s = (*db)->scan({}, [&](const store::SuppressionEntry& e) {
    *os << csvField(e.address) << ',' << csvField(e.scope) << ',' << csvField(e.reason) << ','
        << csvField(e.source) << ',' << formatIso(e.createdMs) << ','
        << (e.expiresMs == 0 ? std::string() : formatIso(e.expiresMs)) << '\n';
    ++n;
  });
  if (!s) return fail(s.message());
  os->flush();
  if (!*os) return fail("error writing " + (target == "-" ? std::string("standard output") : target));
  if (target != "-") out_ << "exported " << n << " entries to " << target << "\n";
  return kExitOk;
}

// ---- import ------------------------------------------------------------------------------------

// Recognizes the header line; false when the first record is data (a plain address list).
bool SuppressCmd::readHeader(const std::vector<std::string>& fields, ImportState* st, std::string* error) {
  if (fields.empty() || toLower(trim(fields[0])) != "address") return false;
  st->header = true;
  st->fields = fields.size();
  st->col.fill(-1);
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string name = toLower(trim(fields[i]));
    auto it = std::find(kColumns.begin(), kColumns.end(), name);
    if (it == kColumns.end()) {
      *error = "unknown column \"" + ctl::printableArg(name) + "\" (known: address,scope,reason,source,created,expires)";
    } else if (st->col[static_cast<size_t>(it - kColumns.begin())] != -1) {
      *error = "column \"" + name + "\" appears twice";
    } else {
      st->col[static_cast<size_t>(it - kColumns.begin())] = static_cast<int>(i);
    }
  }
  return true;
}

Status SuppressCmd::parseRow(const std::vector<std::string>& fields, const ImportState& st,
                             store::SuppressionEntry* e) {
  if (!st.header && fields.size() != 1) {
    return makeError("expected one address per line (no header line), got " + std::to_string(fields.size()) + " fields");
  }
  if (st.header && fields.size() != st.fields) {
    return makeError("expected " + std::to_string(st.fields) + " fields, got " + std::to_string(fields.size()));
  }
  auto cell = [&](Column c) -> std::string_view {
    int i = st.header ? st.col[c] : (c == kAddress ? 0 : -1);
    return i < 0 ? std::string_view() : trim(fields[static_cast<size_t>(i)]);
  };
  e->address = std::string(cell(kAddress));
  if (auto v = validateSuppressAddress(e->address); !v) {
    return makeError("invalid address \"" + ctl::printableArg(e->address) + "\": " + v.message());
  }
  e->scope = st.scope;
  if (st.header && st.col[kScope] >= 0) {
    auto scope = parseScope(cell(kScope));
    if (!scope) return scope.error();
    e->scope = *scope;
  }
  e->reason = cell(kReason).empty() ? st.reason : std::string(cell(kReason));
  e->source = cell(kSource).empty() ? st.source : std::string(cell(kSource));
  e->createdMs = clock_->nowMs();
  e->expiresMs = 0;
  for (Column c : {kCreated, kExpires}) {
    if (cell(c).empty()) continue;
    auto t = parseIso(cell(c));
    if (!t) return makeError("invalid " + std::string(kColumns[c]) + " time \"" + ctl::printableArg(cell(c)) + "\" (want ISO-8601 UTC, e.g. 2024-05-01T12:00:00Z)");
    (c == kCreated ? e->createdMs : e->expiresMs) = *t;
  }
  return okStatus();
}

// Reads every record into batches of env_.batchRows written in one transaction each. Bad rows
// are reported and counted; the error returned is fatal (bad header, database failure).
Status SuppressCmd::importRows(CsvReader& reader, ctl::SuppressStore& db, Progress& progress,
                               ImportState& st) {
  size_t batchRows = std::max<size_t>(1, env_.batchRows);
  auto flush = [&]() -> Status {
    auto n = db.addBatch(st.batch);
    if (!n) return makeError(n.message() + " (" + std::to_string(st.imported) + " rows were imported before)");
    st.imported += *n;
    st.batch.clear();
    progress.update(st.imported, reader.bytes(), false);
    return okStatus();
  };
  std::vector<std::string> fields;
  std::string error;
  bool first = true;
  while (reader.next(&fields, &error)) {
    if (error.empty() && fields.size() == 1 && trim(fields[0]).empty()) continue;  // blank line
    if (std::exchange(first, false) && error.empty() && readHeader(fields, &st, &error)) {
      if (!error.empty()) return makeError(st.name + ":" + std::to_string(reader.line()) + ": " + error);
      continue;
    }
    store::SuppressionEntry e;
    Status row = error.empty() ? parseRow(fields, st, &e) : Status(makeError(error));
    if (!row) {
      if (++st.bad <= kMaxBadRowsShown) err_ << st.name << ":" << reader.line() << ": " << row.message() << "\n";
      continue;
    }
    st.batch.push_back(std::move(e));
    if (st.batch.size() >= batchRows) {
      if (auto s = flush(); !s) return s;
    }
  }
  return st.batch.empty() ? okStatus() : flush();
}

int SuppressCmd::importCsv(const Parsed& p) {
  ImportState st;
  std::string file = p.positional[0];
  auto scope = parseScope(p.get("--scope") ? *p.get("--scope") : "");
  if (!scope) return usage(scope.message());
  st.scope = *scope;
  st.reason = p.get("--reason") && !p.get("--reason")->empty() ? *p.get("--reason") : "manual";
  st.name = file == "-" ? "stdin" : file;
  st.source = "import:" + (file == "-" ? std::string("stdin") : std::filesystem::path(file).filename().string());
  std::ifstream fileIn;
  std::error_code ec;
  uint64_t total = 0;
  if (file != "-") {
    fileIn.open(file, std::ios::binary);
    if (!fileIn) return fail("cannot read " + file + ": " + std::strerror(errno));
    if (std::filesystem::is_regular_file(file, ec)) total = std::filesystem::file_size(file, ec);
  }
  std::istream& in = file != "-" ? fileIn : env_.in != nullptr ? *env_.in : std::cin;
  auto db = openStore(false);
  if (!db) return fail(db.message());
  CsvReader reader(in);
  Progress progress(err_, env_.errIsTty, ec ? 0 : total);
  if (auto s = importRows(reader, **db, progress, st); !s) return fail(s.message());
  if (in.bad()) return fail("error reading " + st.name);
  progress.update(st.imported, reader.bytes(), true);
  if (st.bad > kMaxBadRowsShown) err_ << st.name << ": " << (st.bad - kMaxBadRowsShown) << " more bad rows not shown\n";
  out_ << "imported " << st.imported << " entries from " << st.name;
  if (st.bad > 0) out_ << "; " << st.bad << " bad rows skipped";
  out_ << "\n";
  return st.bad > 0 ? kExitData : kExitOk;
}

}  // namespace

Status validateSuppressAddress(std::string_view a) {
  if (a.empty()) return makeError("empty address");
  if (a.size() > 254) return makeError("longer than 254 characters");
  bool inQuote = false;
  size_t at = std::string_view::npos;
  int ats = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    auto c = static_cast<unsigned char>(a[i]);
    if (c == ' ' || c == '\t') return makeError("contains a space");
    if (c < 0x20 || c == 0x7f) return makeError("contains a control character");
    if (inQuote) {
      if (c == '\\' && ++i == a.size()) break;
      if (c == '"') inQuote = false;
    } else if (c == '"') {
      inQuote = true;
    } else if (c == '@') {
      ++ats;
      at = i;
    } else if (std::string_view("()<>[]:;,\\").find(static_cast<char>(c)) != std::string_view::npos) {
      return makeError(std::string("contains '") + static_cast<char>(c) + "' outside quotes");
    }
  }
  if (inQuote) return makeError("unterminated quote");
  if (ats == 0) return makeError("no '@'");
  if (ats > 1) return makeError("more than one unquoted '@'");
  if (at == 0) return makeError("empty local part (nothing before '@')");
  if (at > 64) return makeError("local part longer than 64 characters");
  return validateDomain(a.substr(at + 1));
}

int runSuppressCommand(const std::vector<std::string>& args, const config::StoreConfig& storeCfg,
                       std::ostream& out, std::ostream& err, const SuppressCommandEnv& env) {
  return SuppressCmd(storeCfg, out, err, env).run(args);
}

int runSuppressCommand(const std::vector<std::string>& args, const config::StoreConfig& storeCfg,
                       std::ostream& out, std::ostream& err) {
  SuppressCommandEnv env;
  env.in = &std::cin;
  env.errIsTty = &err == &std::cerr && isatty(STDERR_FILENO) == 1;
  return runSuppressCommand(args, storeCfg, out, err, env);
}

static config::StoreConfig sqliteAt(const std::string& dbPath) {
  config::StoreConfig cfg;
  cfg.backend = "sqlite";
  cfg.sqlitePath = dbPath;
  return cfg;
}

int runSuppressCommand(const std::vector<std::string>& args, const std::string& dbPath,
                       std::ostream& out, std::ostream& err, const SuppressCommandEnv& env) {
  return runSuppressCommand(args, sqliteAt(dbPath), out, err, env);
}

int runSuppressCommand(const std::vector<std::string>& args, const std::string& dbPath,
                       std::ostream& out, std::ostream& err) {
  return runSuppressCommand(args, sqliteAt(dbPath), out, err);
}

}  // namespace sluice
