// main.cc - sluice-policyd: command line, logging set-up, then the Policyd event loop.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "base/log.h"
#include "base/privileges.h"
#include "config/config.h"
#include "config/daemon_args.h"
#include "policyd.h"

namespace {

const char* kUsage =
    "Usage: sluice-policyd [--config FILE] [--foreground]\n"
    "\n"
    "The Postfix policy delegation server of Sluice: rate limits, sender ownership and the\n"
    "suppression list, answered to Postfix's check_policy_service.\n"
    "\n"
    "  -c, --config FILE  configuration file (default /etc/sluice/sluice.yaml)\n"
    "  -f, --foreground   accepted for compatibility; sluice-policyd never detaches\n"
    "  -h, --help         this text\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Started as root, it drops to run_as_user (default sluice) before opening anything.\n"
    "Signals: SIGHUP reloads the configuration (a broken file is refused and the running\n"
    "configuration kept); SIGTERM stops after a final checkpoint of the counters.\n"
    "Logs go to stderr or syslog (log.target), one line per refused request.\n"
    "See sluice-policyd(8) and sluice.yaml(5).\n";

}  // namespace

int main(int argc, char** argv) {
  auto args = sluice::config::parseDaemonArgs(argc, argv, "sluice-policyd", kUsage);
  if (args.exitCode >= 0) return args.exitCode;
  const std::string& configPath = args.configPath;
  std::signal(SIGPIPE, SIG_IGN);
  sluice::setupLogging("sluice-policyd", sluice::LogTarget::kStderr, sluice::LogLevel::kInfo);
  auto cfg = sluice::config::loadConfigFile(configPath);
  if (!cfg) {
    std::cerr << cfg.message() << "\n";
    sluice::logError("fatal: configuration has errors, not starting");
    return 1;
  }
  sluice::LogLevel level = sluice::LogLevel::kInfo;
  sluice::parseLogLevel(cfg.value()->log.level, &level);
  sluice::setupLogging("sluice-policyd",
                       cfg.value()->log.target == "syslog" ? sluice::LogTarget::kSyslog : sluice::LogTarget::kStderr,
                       level, cfg.value()->log.syslogFacility);
  // Nothing here needs root but the directory of a unix: listen socket; the store, the sockets
  // and every reload belong to run_as_user.
  const auto& c = *cfg.value();
  auto dropped = sluice::dropPrivilegesAtStart(c.runAsUser, {c.policyd.listen}, "postfix");
  if (!dropped) {
    sluice::logLine(sluice::LogLevel::kFatal, dropped.message());
    return 1;
  }
  if (auto st = sluice::checkStateDir(c.stateDir); !st) {
    sluice::logLine(sluice::LogLevel::kFatal, st.message());
    return 1;
  }
  if (dropped.value()) sluice::logInfo("started as root, running as " + sluice::effectiveUserDescription());
  try {
    sluice::policyd::Policyd daemon(configPath, cfg.value());
    if (auto st = daemon.start(); !st) {
      sluice::logLine(sluice::LogLevel::kFatal, st.message());
      return 1;
    }
    return daemon.run();
  } catch (const std::exception& e) {
    sluice::logLine(sluice::LogLevel::kFatal, e.what());
    return 1;
  }
}
