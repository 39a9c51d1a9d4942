// config_cmd.cc - see config_cmd.h.
#include "config_cmd.h"

#include "config/config.h"
#include "config/params.h"

namespace sluice::ctl {

static const char* kConfigUsage =
    "Usage: sluicectl config check [FILE]\n"
    "       sluicectl config params\n"
    "\n"
    "check   validate FILE (default: the --config file). Prints every error as FILE:LINE: message\n"
    "        and exits 1 if there is any; prints a one-line summary and exits 0 otherwise.\n"
    "params  list every configuration key with its type, default and meaning.\n";

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

int runConfigCommand(const std::vector<std::string>& args, const std::string& defaultFile, std::ostream& out,
                     std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << kConfigUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "check" && args.size() <= 2) return check(args.size() == 2 ? args[1] : defaultFile, out, err);
  if (args[0] == "params" && args.size() == 1) return params(out);
  err << "sluicectl config: bad arguments\n\n" << kConfigUsage;
  return 2;
}

}  // namespace sluice::ctl
