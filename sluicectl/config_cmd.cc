// config_cmd.cc - see config_cmd.h.
#include "config_cmd.h"

#include <string_view>

#include "cli_util.h"
#include "config/config.h"
#include "config/params.h"

namespace sluice::ctl {

static const char* kConfigUsage =
    "Usage: sluicectl config check [FILE]\n"
    "       sluicectl config params [--man]\n"
    "\n"
    "check   validate FILE (default: the --config file). Prints every error as FILE:LINE: message\n"
    "        and exits 1 if there is any; prints a one-line summary and exits 0 otherwise.\n"
    "params  list every configuration key with its type, default and meaning; --man writes them\n"
    "        as the roff KEYS section of sluice.yaml(5).\n";

static int check(const std::string& file, std::ostream& out, std::ostream& err) {
  auto cfg = config::loadConfigFile(file);
  if (!cfg) {
    err << cfg.message() << "\n";
    return 1;
  }
  const auto& c = *cfg.value();
  out << file << ": OK (" << c.identities.size() << " identities, " << c.rateLimits.size()
      << " rate rules, policyd on " << c.policyd.listen << ", state in " << c.stateDir << ")\n";
  return 0;
}

static int params(std::ostream& out) {
  for (const auto& p : config::allParams()) {
    if (p.type == config::ParamType::kMap) continue;
    out << p.path << " (" << config::paramTypeName(p.type);
    if (p.choices != nullptr) out << ": " << p.choices;
    out << ")";
    if (p.defaultValue == nullptr) {
      out << " required";
    } else {
      out << " default: " << (*p.defaultValue ? p.defaultValue : "\"\"");
    }
    out << "\n    " << p.doc << "\n";
  }
  return 0;
}

namespace {

// Text for roff: backslashes escaped, a leading dot or quote defused.
std::string roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\e";
    else out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

// "log" for "log.level", "rate_limits" for "rate_limits[].name", "" for a top-level scalar.
std::string sectionOf(const config::ParamSpec& p) {
  std::string path = p.path;
  size_t cut = path.find_first_of(".[");
  if (cut != std::string::npos) return path.substr(0, cut);
  return (p.type == config::ParamType::kMap || p.type == config::ParamType::kList) ? path : "";
}

}  // namespace

bool writeParamsRoff(std::ostream& out, std::ostream& err) {
  std::string section = "-";
  bool ok = true;
  for (const auto& p : config::allParams()) {
    if (p.doc == nullptr || std::string_view(p.doc).empty()) {
      err << "sluicectl: configuration key " << p.path << " has no documentation (lib/config/params.cc)\n";
      ok = false;
      continue;
    }
    std::string sec = sectionOf(p);
    bool heading = sec == p.path;  // a top-level map or list: its own section, its doc the intro
    if (sec != section) {
      section = sec;
      out << ".SS " << (sec.empty() ? "General" : roff(sec)) << "\n";
      if (!heading) out << ".PP\n";
    }
    if (!heading) out << ".TP\n.B " << roff(p.path) << "\n";
    out << "(" << config::paramTypeName(p.type);
    if (p.choices != nullptr) {
      std::string choices;
      for (char c : std::string_view(p.choices)) choices += c == '|' ? std::string(", ") : std::string(1, c);
      out << ": " << roff(choices);
    }
    if (p.defaultValue == nullptr) {
      out << "; required)\n";
    } else if (p.type == config::ParamType::kMap) {
      out << ")\n";
    } else {
      out << "; default \\(lq" << roff(p.defaultValue) << "\\(rq)\n";
    }
    out << (heading ? "" : ".br\n") << roff(p.doc) << "\n";
  }
  return ok;
}

int runConfigCommand(const std::vector<std::string>& args, const std::string& defaultFile, std::ostream& out,
                     std::ostream& err) {
  if (auto done = helpOrNoSubcommand(args, kConfigUsage, out, err)) return *done;
  if (args[0] == "check" && args.size() <= 2) return check(args.size() == 2 ? args[1] : defaultFile, out, err);
  if (args[0] == "params" && args.size() == 1) return params(out);
  if (args[0] == "params" && args.size() == 2 && args[1] == "--man") return writeParamsRoff(out, err) ? 0 : 1;
  err << "sluicectl config: bad arguments\n\n" << kConfigUsage;
  return 2;
}

}  // namespace sluice::ctl
