// dispatch.cc - see dispatch.h.
#include "dispatch.h"

#include <exception>
#include <filesystem>
#include <memory>
#include <new>

#include "bounce_cmd.h"
#include "cli_util.h"
#include "config/config.h"
#include "config_cmd.h"
#include "dkim_cmd.h"
#include "limits_cmd.h"
#include "suppress_cmd.h"
#include "user_cmd.h"
#include "why_cmd.h"

namespace sluice::ctl {

const char* const kSluicectlUsage =
    "Usage: sluicectl [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "The admin tool of Sluice. Commands:\n"
    "  config check [FILE]            validate the configuration (FILE:LINE errors)\n"
    "  config params [--man]          every configuration key, its default and meaning\n"
    "  suppress add|remove|list|import|export ...\n"
    "                                 the suppression list (STATE_DIR/sluice.db, or Redis)\n"
    "  limits show [KEY] | reset KEY  live rate-limit counters (sluice-policyd's, or Redis's)\n"
    "  bounce classify FILE|DIR|MBOX... [--json] [--rules FILE]\n"
    "                                 classify saved bounces and complaints (needs no config)\n"
    "  bounce receive --recipient ADDR [--rules FILE] < MSG\n"
    "                                 the bounce/complaint intake the MTA pipes to\n"
    "  bounce verp ID INDEX LOCAL@DOMAIN\n"
    "                                 the VERP return path of a queued recipient\n"
    "  dkim keygen|check ...          a new DKIM key and its DNS record; check the published one\n"
    "  user add|list|rotate|disable|enable|remove ...\n"
    "                                 sluice-relayd's AUTH users (API keys)\n"
    "  queue list|show|hold|release|retry|delete|totals ...\n"
    "                                 sluice-relayd's queue\n"
    "  why ID [--json]                every attempt to deliver a queued message, and what is next\n"
    "  events tail [-n N] [--json] [-f|--follow]\n"
    "                                 sluice-relayd's delivery events\n"
    "  status [--json]                sluice-policyd's connections, requests and state\n"
    "\n"
    "  -c, --config FILE   configuration file (default /etc/sluice/sluice.yaml)\n"
    "  -h, --help          this text; COMMAND --help for a command's own\n"
    "  -V, --version       print the version\n"
    "\n"
    "Exit status: 0 success, 1 failure (the reason on stderr), 2 usage error; bounce receive:\n"
    "75 (the MTA retries) for every failure that is not the report's own.\n";

namespace {

constexpr int kTempFail = 75;  // EX_TEMPFAIL

// The commands that read the configuration.
bool needsConfig(const std::string& cmd) {
  for (const char* c : {"suppress", "bounce", "user", "queue", "why", "events", "limits", "status"}) {
    if (cmd == c) return true;
  }
  return false;
}

int dispatch(const std::vector<std::string>& argv, std::istream& in, std::ostream& out, std::ostream& err) {
  std::string configPath = config::kDefaultConfigFile;
  std::vector<std::string> args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (!args.empty()) {
      args.push_back(a);
    } else if (a == "-c" || a == "--config") {
      if (i + 1 >= argv.size()) {
        err << "sluicectl: option " << a << " needs a FILE\n\n" << kSluicectlUsage;
        return 2;
      }
      configPath = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      configPath = a.substr(9);
    } else if (a == "-h" || a == "--help") {
      out << kSluicectlUsage;
      return 0;
    } else if (a == "-V" || a == "--version") {
      out << "sluicectl " << SLUICE_VERSION << "\n";
      return 0;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) {
    err << kSluicectlUsage;
    return 2;
  }
  if (args[0] == "help") {  // `sluicectl help` and `sluicectl help COMMAND [SUBCOMMAND]`
    if (args.size() == 1) {
      out << kSluicectlUsage;
      return 0;
    }
    args.erase(args.begin());
    args.push_back("--help");
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  bool receive = cmd == "bounce" && !rest.empty() && rest[0] == "receive";
  bool bounceWithConfig = cmd == "bounce" && !rest.empty() && (rest[0] == "receive" || rest[0] == "verp");
  if (cmd == "config") return runConfigCommand(rest, configPath, out, err);
  if (cmd == "bounce" && !bounceWithConfig) return runBounceCommand(rest, out, err);
  if (!needsConfig(cmd) && cmd != "dkim") {
    err << "sluicectl: unknown command \"" << printableArg(cmd) << "\"\n\n" << kSluicectlUsage;
    return 2;
  }
  // Help never needs the configuration: every handler answers --help before it looks at the
  // configuration it is given, so it gets none (dkim) or an empty one (the others, below).
  bool help = wantsHelp(rest);
  if (cmd == "dkim" && help) return runDkimCommand(rest, nullptr, out, err);
  if (cmd == "dkim") {
    // keygen needs no configuration; check uses it (dns.servers, the signing table) if readable.
    auto dc = config::loadConfigFile(configPath);
    if (!dc && !rest.empty() && rest[0] == "check") {
      err << "sluicectl: " << dc.message() << " (using /etc/resolv.conf; give --key FILE)\n";
    }
    // keygen takes run_as_user (the key's owner when run as root) from it: say when it is ignored.
    std::error_code ec;
    if (!dc && !rest.empty() && rest[0] == "keygen" && std::filesystem::exists(configPath, ec)) {
      err << "sluicectl: " << dc.message() << " (dkim keygen goes on without it)\n";
    }
    return runDkimCommand(rest, dc ? dc.value().get() : nullptr, out, err);
  }
  // The other commands need the configuration for state_dir, the sockets and the store.
  static const config::Config kNone{};
  std::shared_ptr<const config::Config> loaded;
  if (!help) {
    auto cfg = config::loadConfigFile(configPath);
    if (!cfg) {
      err << cfg.message() << "\nsluicectl: fix the configuration first (sluicectl config check)\n";
      // The MTA would bounce the report on any status but 75 (a double bounce: it is lost).
      if (receive) err << "sluicectl bounce receive: exit 75: the MTA keeps the report and retries\n";
      return receive ? kTempFail : 1;
    }
    loaded = cfg.value();
  }
  const config::Config& c = loaded ? *loaded : kNone;
  if (cmd == "suppress") return runSuppressCommand(rest, c.store, out, err);
  if (cmd == "bounce") return runBounceReceive(rest, c, in, out, err);
  if (cmd == "user") return runUserCommand(rest, c, out, err);
  if (cmd == "queue") return runQueueCommand(rest, c, out, err);
  if (cmd == "why") return runWhyCommand(rest, c, out, err);
  if (cmd == "events") return runEventsCommand(rest, c, out, err);
  if (cmd == "limits") return runLimitsCommand(rest, c, out, err);
  return runStatusCommand(rest, c.policyd.adminSocket, out, err);
}

}  // namespace

int runSluicectl(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  // `bounce receive` anywhere after the global options: its failures must be 75, never 1.
  bool receive = false;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "bounce" && args[i + 1] == "receive") receive = true;
  }
  try {
    return dispatch(args, in, out, err);
  } catch (const std::bad_alloc&) {
    err << "sluicectl: out of memory\n";
  } catch (const std::exception& e) {
    err << "sluicectl: unexpected error: " << e.what() << "\n";
  } catch (...) {
    err << "sluicectl: unexpected error\n";
  }
  if (receive) err << "sluicectl bounce receive: exit 75: the MTA keeps the report and retries\n";
  return receive ? kTempFail : 1;
}

}  // namespace sluice::ctl
