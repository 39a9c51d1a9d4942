// main.cc - sluice-policyd: command line, logging set-up, then the Policyd event loop.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "base/log.h"
#include "config/config.h"
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
    "Signals: SIGHUP reloads the configuration (a broken file is refused and the running\n"
    "configuration kept); SIGTERM stops after a final checkpoint of the counters.\n"
    "Logs go to stderr or syslog (log.target), one line per refused request.\n"
    "See sluice-policyd(8) and sluice.yaml(5).\n";

}  // namespace

int main(int argc, char** argv) {
  std::string configPath = sluice::config::kDefaultConfigFile;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      configPath = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      configPath = a.substr(9);
    } else if (a == "-f" || a == "--foreground") {
      continue;
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (a == "-V" || a == "--version") {
      std::cout << "sluice-policyd " << SLUICE_VERSION << "\n";
      return 0;
    } else {
      std::cerr << "sluice-policyd: unknown argument \"" << a << "\"\n\n" << kUsage;
      return 2;
    }
  }
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
