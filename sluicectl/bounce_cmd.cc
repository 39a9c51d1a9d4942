// bounce_cmd.cc - `sluicectl bounce classify`: runs lib/bounce over files, directories (every
// regular file, sorted by name) and mbox files; one record per recipient: a table for people,
// JSON Lines with --json. Messages that are not bounces get one record with an empty recipient
// and kind "not-a-bounce" or "unparseable", so nothing is silently skipped.
#include "bounce_cmd.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bounce/bounce.h"
#include "cli_util.h"

namespace sluice::ctl {

namespace {

const char* kBounceUsage =
    "Usage: sluicectl bounce classify FILE|DIR|MBOX... [--json] [--rules FILE]\n"
    "  Parses bounces, complaints (ARF) and auto-replies; prints one record per recipient:\n"
    "  reason (Sisimai names; reason5 = 5.x name), hard/soft, status, reply code, rule, diagnostic.\n"
    "  --json        JSON Lines instead of a table\n"
    "  --rules FILE  rules file (default $SLUICE_BOUNCE_RULES, /etc/sluice/bounce-rules.conf,\n"
    "                /usr/share/sluice/bounce-rules.conf)\n";

nlohmann::json toJson(const std::string& file, size_t msgIndex, size_t rcptIndex,
                      const bounce::Report& rep, const bounce::Recipient* r) {
  nlohmann::json j;
  j["file"] = file;
  j["msgindex"] = msgIndex;
  j["rcptindex"] = rcptIndex;
  j["kind"] = bounce::toString(rep.kind);
  j["format"] = rep.format;
  j["mta"] = rep.mta;
  if (!rep.problem.empty()) j["problem"] = rep.problem;
  j["original_message_id"] = rep.originalMessageId;
  j["original_return_path"] = rep.originalReturnPath;
  j["original_from"] = rep.originalFrom;
  if (!r) {
    j["recipient"] = "";
    return j;
  }
  j["recipient"] = r->recipient;
  j["original_recipient"] = r->originalRecipient;
  j["reason"] = r->reason;
  j["reason5"] = r->reason5;
  j["hard"] = r->hard < 0 ? nlohmann::json() : nlohmann::json(r->hard == 1);
  j["softbounce"] = r->hard < 0 ? -1 : (r->hard == 1 ? 0 : 1);
  j["status"] = r->status;
  j["status_derived"] = r->statusDerived;
  j["replycode"] = r->replyCode;
  j["action"] = r->action;
  j["remote_mta"] = r->remoteMta;
  j["smtp_command"] = r->smtpCommand;
  j["rule"] = r->rule;
  j["feedback_type"] = r->feedbackType;
  j["diagnostic"] = r->diagnostic;
  return j;
}

std::string clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n - 1) + "~"; }

void printRow(std::ostream& out, const std::string& where, const bounce::Report& rep, const bounce::Recipient* r) {
  out << std::left << std::setw(28) << clip(where, 27) << ' ';
  if (!r) {
    out << std::setw(34) << ("(" + std::string(bounce::toString(rep.kind)) + ")") << rep.problem << "\n";
    return;
  }
  const char* hs = r->hard < 0 ? "-" : r->hard ? "hard" : "soft";
  out << std::setw(34) << clip(r->recipient, 33) << ' ' << std::setw(15) << r->reason << ' ' << std::setw(4) << hs
      << ' ' << std::setw(9) << r->status << ' ' << std::setw(4) << r->replyCode << ' ' << clip(r->rule, 40) << "\n";
}

void collect(const std::filesystem::path& p, std::vector<std::filesystem::path>& files) {
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) {
    std::vector<std::filesystem::path> v;
    for (const auto& e : std::filesystem::directory_iterator(p, ec))
      if (e.is_regular_file()) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    files.insert(files.end(), v.begin(), v.end());
  } else {
    files.push_back(p);
  }
}

int classify(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  std::string rulesPath = bounce::defaultRulesPath();
  std::vector<std::filesystem::path> files;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    else if (args[i] == "--rules" && i + 1 < args.size()) rulesPath = args[++i];
    else if (args[i] == "-h" || args[i] == "--help") { out << kBounceUsage; return 0; }
    else if (args[i] == "--rules") {
      err << "sluicectl bounce classify: option --rules needs a value\n" << kBounceUsage;
      return 2;
    } else if (!args[i].empty() && args[i][0] == '-') {
      err << "sluicectl bounce classify: unknown option " << printableArg(args[i]) << "\n" << kBounceUsage;
      return 2;
    }
    else collect(args[i], files);
  }
  if (files.empty()) {
    err << kBounceUsage;
    return 2;
  }
  auto parser = bounce::BounceParser::load(rulesPath);
  if (!parser) {
    err << "sluicectl: " << parser.message() << "\n";
    return 1;
  }
  if (!json) {
    out << std::left << std::setw(28) << "FILE#MSG" << ' ' << std::setw(34) << "RECIPIENT" << ' ' << std::setw(15)
        << "REASON" << ' ' << std::setw(4) << "H/S" << ' ' << std::setw(9) << "STATUS" << ' ' << std::setw(4) << "CODE"
        << " RULE\n";
  }
  int rc = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      err << "sluicectl: cannot read " << f.string() << "\n";
      rc = 1;
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    std::string name = f.filename().string();
    auto reports = (*parser)->parseFile(data, /*nameMta=*/true);
    for (size_t m = 0; m < reports.size(); ++m) {
      const auto& rep = reports[m];
      std::string where = name + "#" + std::to_string(m + 1);
      if (rep.recipients.empty()) {
        if (json) out << toJson(name, m + 1, 0, rep, nullptr).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        else printRow(out, where, rep, nullptr);
      }
      for (size_t k = 0; k < rep.recipients.size(); ++k) {
        if (json) out << toJson(name, m + 1, k + 1, rep, &rep.recipients[k]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        else printRow(out, where, rep, &rep.recipients[k]);
      }
    }
  }
  return rc;
}

}  // namespace

int runBounceCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (auto done = helpOrNoSubcommand(args, kBounceUsage, out, err)) return *done;
  if (args[0] == "classify") return classify(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
  err << "sluicectl: unknown bounce command \"" << args[0] << "\"\n" << kBounceUsage;
  return 2;
}

}  // namespace sluice::ctl
