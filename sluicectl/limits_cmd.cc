// limits_cmd.cc - see limits_cmd.h. One table printer for both modes: a LimitsSource yields the
// rows as policyd's limits.show answers them, and the Redis rows are converted to that form.
#include "limits_cmd.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "admin/admin_client.h"
#include "base/strings.h"
#include "cli_util.h"
#include "ratelimit/redis_limits_view.h"

namespace sluice::ctl {

static const char* kLimitsUsage =
    "Usage: sluicectl limits show [KEY] [--json]\n"
    "       sluicectl limits reset KEY\n"
    "\n"
    "show   the live rate-limit counters: for every rule and window the key (e.g. the SASL\n"
    "       user), units used, units reserved by transactions in progress, the limit, and how\n"
    "       long until one more unit fits. KEY restricts it to one key.\n"
    "reset  forget every counter of KEY in every rule, at once (and in the store).\n"
    "\n"
    "With store.backend: sqlite the counters are those of the running sluice-policyd (asked\n"
    "through its admin socket); with store.backend: redis those in Redis, shared by every host.\n";

static const char* kStatusUsage =
    "Usage: sluicectl status [--json]\n"
    "\n"
    "The state of the running sluice-policyd (asked through its admin socket): listen address,\n"
    "open connections, requests, refusals, store health and failures, as key: value lines or\n"
    "one JSON object. Exit status 1 when the daemon cannot be reached.\n";

constexpr size_t kMaxRows = 10000;  // as policyd's limits.show

// Where the counters are: the running policyd (admin socket) or Redis.
class LimitsSource {
 public:
  virtual ~LimitsSource() = default;
  // Rows as in limits_cmd.h; errors are complete sentences for "sluicectl: ...".
  virtual Result<nlohmann::json> show(const std::string& key) = 0;
  virtual Result<size_t> reset(const std::string& key) = 0;
};

static Result<nlohmann::json> adminRequest(const std::string& sock, const nlohmann::json& req) {
  auto r = admin::adminCall(sock, req);
  if (!r) return r.error();
  if (!r.value().value("ok", false)) return makeError("policyd: " + r.value().value("error", std::string("failed")));
  return r;
}

class AdminSource final : public LimitsSource {
 public:
  explicit AdminSource(const std::string& sock) : sock_(sock) {}
  Result<nlohmann::json> show(const std::string& key) override {
    auto r = adminRequest(sock_, {{"cmd", "limits.show"}, {"key", key}});
    if (!r) return r.error();
    return r.value()["buckets"];
  }
  Result<size_t> reset(const std::string& key) override {
    auto r = adminRequest(sock_, {{"cmd", "limits.reset"}, {"key", key}});
    if (!r) return r.error();
    return r.value()["reset"].get<size_t>();
  }

 private:
  const std::string& sock_;
};

class RedisSource final : public LimitsSource {
 public:
  RedisSource(const config::Config& cfg, const Clock& clock) : cfg_(cfg), clock_(clock) {}
  Result<nlohmann::json> show(const std::string& key) override {
    auto view = store::RedisLimitsView::open(cfg_.store.redis, cfg_.rateLimits);
    if (!view) return view.error();
    auto rows = (*view)->show(key, clock_.nowMs() * 1000, kMaxRows);
    if (!rows) return rows.error();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : *rows) {
      out.push_back({{"rule", v.rule},       {"window", v.window},     {"key", v.key},
                     {"limit", v.limit},     {"per_ms", v.perMs},      {"burst", v.burst},
                     {"used", v.used},       {"reserved", v.reserved}, {"retry_after_ms", v.retryUs / 1000.0}});
    }
    return out;
  }
  Result<size_t> reset(const std::string& key) override {
    auto view = store::RedisLimitsView::open(cfg_.store.redis, cfg_.rateLimits);
    if (!view) return view.error();
    return (*view)->reset(key);
  }

 private:
  const config::Config& cfg_;
  const Clock& clock_;
};

static void printRows(const nlohmann::json& rows, const std::string& key, bool json, std::ostream& out) {
  if (json) {
    for (const auto& row : rows) out << row.dump() << "\n";
    return;
  }
  if (rows.empty()) {
    out << (key.empty() ? "no counters in use\n" : "no counters for " + key + "\n");
    return;
  }
  char line[512];
  std::snprintf(line, sizeof line, "%-20s %-30s %6s %10s %10s %14s %10s\n", "RULE", "KEY", "WINDOW", "USED",
                "RESERVED", "LIMIT", "RETRY_IN");
  out << line;
  for (const auto& row : rows) {
    std::string limit = std::to_string(row["limit"].get<uint64_t>()) + "/" + formatDurationMs(row["per_ms"].get<int64_t>());
    double retry = row["retry_after_ms"].get<double>();
    std::string retryText = retry <= 0 ? "-" : formatDurationMs(static_cast<int64_t>(retry / 1000 + 1) * 1000);
    std::snprintf(line, sizeof line, "%-20s %-30s %6u %10llu %10llu %14s %10s\n",
                  row["rule"].get<std::string>().c_str(), row["key"].get<std::string>().c_str(),
                  row["window"].get<unsigned>(), static_cast<unsigned long long>(row["used"].get<uint64_t>()),
                  static_cast<unsigned long long>(row["reserved"].get<uint64_t>()), limit.c_str(), retryText.c_str());
    out << line;
  }
}

static int runLimits(const std::vector<std::string>& args, LimitsSource& source, std::ostream& out,
                     std::ostream& err) {
  if (wantsHelp(args)) {
    out << kLimitsUsage;
    return 0;
  }
  if (args.empty() || (args[0] != "show" && args[0] != "reset")) {
    if (!args.empty()) err << "sluicectl limits: unknown command \"" << printableArg(args[0]) << "\"\n";
    err << kLimitsUsage;
    return 2;
  }
  ParsedArgs p;
  std::string bad = parseArgs(args, 1, args[0] == "show" ? std::vector<OptSpec>{{"--json"}} : std::vector<OptSpec>{}, &p);
  const std::vector<std::string>& words = p.positional;
  bool json = p.has("--json");
  if (bad.empty() && args[0] == "reset" && words.empty()) bad = "needs KEY";
  if (bad.empty() && words.size() > 1) bad = "unexpected argument \"" + printableArg(words[1]) + "\"";
  if (!bad.empty()) {
    err << "sluicectl limits " << args[0] << ": " << bad << "\n" << kLimitsUsage;
    return 2;
  }
  if (args[0] == "show" && words.size() <= 1) {
    std::string key = words.empty() ? "" : words[0];
    auto rows = source.show(key);
    if (!rows) {
      err << "sluicectl: " << rows.message() << "\n";
      return 1;
    }
    printRows(*rows, key, json, out);
    return 0;
  }
  if (args[0] == "reset" && words.size() == 1) {
    auto n = source.reset(words[0]);
    if (!n) {
      err << "sluicectl: " << n.message() << "\n";
      return 1;
    }
    out << "reset " << *n << " counter(s) of " << words[0] << "\n";
    return 0;
  }
  return 2;  // not reached: every other form is refused above
}

int runLimitsCommand(const std::vector<std::string>& args, const std::string& sock, std::ostream& out,
                     std::ostream& err) {
  AdminSource source(sock);
  return runLimits(args, source, out, err);
}

int runLimitsCommand(const std::vector<std::string>& args, const config::Config& cfg, std::ostream& out,
                     std::ostream& err, const Clock* clock) {
  if (!cfg.store.useRedis()) return runLimitsCommand(args, cfg.policyd.adminSocket, out, err);
  SystemClock systemClock;
  RedisSource source(cfg, clock != nullptr ? *clock : systemClock);
  return runLimits(args, source, out, err);
}

int runStatusCommand(const std::vector<std::string>& args, const std::string& sock, std::ostream& out,
                     std::ostream& err) {
  if (wantsHelp(args)) {
    out << kStatusUsage;
    return 0;
  }
  ParsedArgs p;
  std::string bad = parseArgs(args, 0, {{"--json"}}, &p);
  if (bad.empty() && !p.positional.empty()) bad = "unexpected argument \"" + printableArg(p.positional[0]) + "\"";
  if (!bad.empty()) {
    err << "sluicectl status: " << bad << "\n" << kStatusUsage;
    return 2;
  }
  bool json = p.has("--json");
  auto r = adminRequest(sock, {{"cmd", "status"}});
  if (!r) {
    err << "sluicectl: " << r.message() << "\n";
    return 1;
  }
  nlohmann::json v = r.value();
  v.erase("ok");
  if (json) {
    out << v.dump() << "\n";
    return 0;
  }
  for (const auto& [k, val] : v.items()) out << k << ": " << (val.is_string() ? val.get<std::string>() : val.dump()) << "\n";
  return 0;
}

}  // namespace sluice::ctl
