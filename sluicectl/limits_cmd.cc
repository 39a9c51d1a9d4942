// limits_cmd.cc - see limits_cmd.h.
#include "limits_cmd.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "admin/admin_client.h"
#include "base/strings.h"

namespace sluice::ctl {

static const char* kLimitsUsage =
    "Usage: sluicectl limits show [KEY] [--json]\n"
    "       sluicectl limits reset KEY\n"
    "\n"
    "show   the live rate-limit counters of the running sluice-policyd: for every rule and window\n"
    "       the key (e.g. the SASL user), units used, units reserved by transactions in progress,\n"
    "       the limit, and how long until one more unit fits. KEY restricts it to one key.\n"
    "reset  forget every counter of KEY in every rule, at once (and in the store).\n";

static Result<nlohmann::json> call(const std::string& sock, const nlohmann::json& req, std::ostream& err) {
  auto r = admin::adminCall(sock, req);
  if (!r) {
    err << "sluicectl: " << r.message() << "\n";
    return r;
  }
  if (!r.value().value("ok", false)) {
    err << "sluicectl: policyd: " << r.value().value("error", std::string("failed")) << "\n";
    return makeError("refused");
  }
  return r;
}

static int show(const std::string& key, bool json, const std::string& sock, std::ostream& out, std::ostream& err) {
  auto r = call(sock, {{"cmd", "limits.show"}, {"key", key}}, err);
  if (!r) return 1;
  const auto& rows = r.value()["buckets"];
  if (json) {
    for (const auto& row : rows) out << row.dump() << "\n";
    return 0;
  }
  if (rows.empty()) {
    out << (key.empty() ? "no counters in use\n" : "no counters for " + key + "\n");
    return 0;
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
  return 0;
}

int runLimitsCommand(const std::vector<std::string>& args, const std::string& sock, std::ostream& out,
                     std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << kLimitsUsage;
    return args.empty() ? 2 : 0;
  }
  std::vector<std::string> words;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else {
      words.push_back(args[i]);
    }
  }
  if (args[0] == "show" && words.size() <= 1) return show(words.empty() ? "" : words[0], json, sock, out, err);
  if (args[0] == "reset" && words.size() == 1) {
    auto r = call(sock, {{"cmd", "limits.reset"}, {"key", words[0]}}, err);
    if (!r) return 1;
    out << "reset " << r.value()["reset"].get<size_t>() << " counter(s) of " << words[0] << "\n";
    return 0;
  }
  err << "sluicectl limits: bad arguments\n\n" << kLimitsUsage;
  return 2;
}

int runStatusCommand(const std::vector<std::string>& args, const std::string& sock, std::ostream& out,
                     std::ostream& err) {
  bool json = !args.empty() && args[0] == "--json";
  auto r = call(sock, {{"cmd", "status"}}, err);
  if (!r) return 1;
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
