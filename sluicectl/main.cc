// main.cc - sluicectl: global options, then dispatch to the <topic>_cmd.cc handlers.
#include <iostream>
#include <string>
#include <vector>

#include "bounce_cmd.h"
#include "config/config.h"
#include "config_cmd.h"
#include "dkim_cmd.h"
#include "limits_cmd.h"
#include "suppress_cmd.h"
#include "user_cmd.h"
#include "why_cmd.h"

namespace {

const char* kUsage =
    "Usage: sluicectl [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "The admin tool of Sluice. Commands:\n"
    "  config check [FILE]            validate the configuration (FILE:LINE errors)\n"
    "  config params                  every configuration key, its default and meaning\n"
    "  suppress add|remove|list|import|export ...\n"
    "                                 the suppression list (STATE_DIR/sluice.db, or Redis)\n"
    "  limits show [KEY] | reset KEY  live rate-limit counters (sluice-policyd's, or Redis's)\n"
    "  bounce classify FILE|DIR|MBOX... [--json] [--rules FILE]\n"
    "                                 classify saved bounces and complaints (needs no config)\n"
    "  bounce receive --recipient ADDR < MSG\n"
    "                                 the bounce/complaint intake the MTA pipes to\n"
    "  bounce verp ID INDEX LOCAL@DOMAIN  the VERP return path of a queued recipient\n"
    "  dkim keygen|check ...          a new DKIM key and its DNS record; check the published one\n"
    "  user add|list|rotate|disable|enable|remove ...\n"
    "                                 sluice-relayd's AUTH users (API keys)\n"
    "  queue list|show|hold|release|retry|delete|totals ...\n"
    "                                 sluice-relayd's queue\n"
    "  why ID                         every attempt to deliver a queued message, and what is next\n"
    "  events tail [-n N] [--json] [--follow]\n"
    "                                 sluice-relayd's delivery events\n"
    "  status [--json]                sluice-policyd's connections, requests and state\n"
    "\n"
    "  -c, --config FILE   configuration file (default /etc/sluice/sluice.yaml)\n"
    "  -h, --help          this text; COMMAND --help for a command's own\n"
    "  -V, --version       print the version\n"
    "\n"
    "Exit status: 0 success, 1 failure (the reason on stderr), 2 usage error.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string configPath = sluice::config::kDefaultConfigFile;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (args.empty() && (a == "-c" || a == "--config") && i + 1 < argc) {
      configPath = argv[++i];
    } else if (args.empty() && a.rfind("--config=", 0) == 0) {
      configPath = a.substr(9);
    } else if (args.empty() && (a == "-h" || a == "--help")) {
      std::cout << kUsage;
      return 0;
    } else if (args.empty() && (a == "-V" || a == "--version")) {
      std::cout << "sluicectl " << SLUICE_VERSION << "\n";
      return 0;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "config") return sluice::ctl::runConfigCommand(rest, configPath, std::cout, std::cerr);
  if (cmd == "bounce" && !(rest.size() > 0 && (rest[0] == "receive" || rest[0] == "verp"))) {
    return sluice::ctl::runBounceCommand(rest, std::cout, std::cerr);
  }
  if (cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "dkim") {
    // keygen needs no configuration; check uses it (dns.servers, the signing table) if readable.
    auto dc = sluice::config::loadConfigFile(configPath);
    bool needsConfig = !rest.empty() && rest[0] == "check";
    if (!dc && needsConfig) {
      std::cerr << "sluicectl: " << dc.message() << " (using /etc/resolv.conf; give --key FILE)\n";
    }
    return sluice::ctl::runDkimCommand(rest, dc ? dc.value().get() : nullptr, std::cout, std::cerr);
  }
  // The other commands need the configuration for state_dir, the sockets and the store.
  auto cfg = sluice::config::loadConfigFile(configPath);
  if (!cfg) {
    std::cerr << cfg.message() << "\nsluicectl: fix the configuration first (sluicectl config check)\n";
    return 1;
  }
  const auto& c = *cfg.value();
  if (cmd == "suppress") return sluice::runSuppressCommand(rest, c.store, std::cout, std::cerr);
  if (cmd == "bounce") return sluice::ctl::runBounceReceive(rest, c, std::cin, std::cout, std::cerr);
  if (cmd == "user") return sluice::ctl::runUserCommand(rest, c, std::cout, std::cerr);
  if (cmd == "queue") return sluice::ctl::runQueueCommand(rest, c, std::cout, std::cerr);
  if (cmd == "why") return sluice::ctl::runWhyCommand(rest, c, std::cout, std::cerr);
  if (cmd == "events") return sluice::ctl::runEventsCommand(rest, c, std::cout, std::cerr);
  if (cmd == "limits") return sluice::ctl::runLimitsCommand(rest, c, std::cout, std::cerr);
  if (cmd == "status") return sluice::ctl::runStatusCommand(rest, c.policyd.adminSocket, std::cout, std::cerr);
  std::cerr << "sluicectl: unknown command \"" << cmd << "\"\n\n" << kUsage;
  return 2;
}
