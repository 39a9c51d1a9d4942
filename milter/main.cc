// main.cc - sluice-milter: command line, logging set-up, keys and identities loaded once, then
// libmilter's smfi_main(). Any problem before serving is one line on stderr and exit 1.
#include <csignal>
#include <iostream>
#include <string>

#include "base/log.h"
#include "base/privileges.h"
#include "config/config.h"
#include "config/daemon_args.h"
#include "milter_callbacks.h"

namespace {

const char* kUsage =
    "Usage: sluice-milter [--config FILE] [--foreground]\n"
    "\n"
    "The milter of Sluice for Postfix and Sendmail: DKIM signing (RSA-SHA256 and Ed25519-SHA256)\n"
    "and From: ownership for the authenticated (SASL) user.\n"
    "\n"
    "  -c, --config FILE  configuration file (default /etc/sluice/sluice.yaml)\n"
    "  -f, --foreground   accepted for compatibility; sluice-milter never detaches\n"
    "  -h, --help         this text\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Listens on milter.listen (default unix:/var/spool/postfix/sluice/milter.sock, which a\n"
    "chrooted Postfix smtpd names unix:/sluice/milter.sock). Started as root, it creates that\n"
    "directory (run_as_user:postfix, 0750) and drops to run_as_user (default sluice) before\n"
    "reading keys. A key readable by group or others stops the start. SIGTERM stops it.\n"
    "See sluice-milter(8) and sluice.yaml(5).\n";

int fatal(const std::string& message) {
  sluice::logLine(sluice::LogLevel::kFatal, message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = sluice::config::parseDaemonArgs(argc, argv, "sluice-milter", kUsage);
  if (args.exitCode >= 0) return args.exitCode;
  const std::string& configPath = args.configPath;
  std::signal(SIGPIPE, SIG_IGN);
  sluice::setupLogging("sluice-milter", sluice::LogTarget::kStderr, sluice::LogLevel::kInfo);
  auto cfg = sluice::config::loadConfigFile(configPath);
  if (!cfg) {
    std::cerr << cfg.message() << "\n";
    return fatal("configuration has errors, not starting");
  }
  const auto& c = *cfg.value();
  sluice::LogLevel level = sluice::LogLevel::kInfo;
  sluice::parseLogLevel(c.log.level, &level);
  sluice::setupLogging("sluice-milter", c.log.target == "syslog" ? sluice::LogTarget::kSyslog : sluice::LogTarget::kStderr,
                       level, c.log.syslogFacility);
  // Root is needed only to create the socket directory in Postfix's spool (sluice:postfix 0750,
  // so that Postfix's smtpd can reach the socket); keys and the socket are opened as run_as_user.
  auto dropped = sluice::dropPrivilegesAtStart(c.runAsUser, {c.milter.listen}, "postfix");
  if (!dropped) return fatal(dropped.message());
  if (auto st = sluice::checkStateDir(c.stateDir); !st) return fatal(st.message());
  try {
    sluice::milter::MilterRuntime rt;
    rt.config = cfg.value();
    auto signing = sluice::milter::Signing::build(c.dkim);
    if (!signing) return fatal(signing.message() + "; not starting");
    rt.signing = std::move(signing.value());
    if (dropped.value()) sluice::logInfo("started as root, running as " + sluice::effectiveUserDescription());
    rt.identities = std::make_unique<sluice::IdentityMap>(c.identities);
    if (auto st = sluice::milter::runMilter(rt); !st) return fatal(st.message());
    sluice::logInfo("stopped");
    return 0;
  } catch (const std::exception& e) {
    return fatal(e.what());
  }
}
