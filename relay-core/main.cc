// main.cc - sluice-relayd: command line, logging, then the intake on one io_context until SIGTERM.
// Any problem before serving is one line on stderr and exit 1.
#include <sqlite3.h>

#include <asio.hpp>
#include <csignal>
#include <iostream>

#include "base/log.h"
#include "base/privileges.h"
#include "config/config.h"
#include "config/daemon_args.h"
#include "relayd.h"

namespace {

const char* kUsage =
    "Usage: sluice-relayd [--config FILE]\n"
    "\n"
    "The smarthost of Sluice: takes mail from the local MTA (relayd.listen, default\n"
    "127.0.0.1:10030: Postfix's relayhost, Sendmail's SMART_HOST) and from applications\n"
    "(relayd.submission_listen with STARTTLS, relayd.smtps_listen with implicit TLS; AUTH with\n"
    "the keys of `sluicectl user add`), and queues it durably: a 250 reply means the message is\n"
    "on disk (STATE_DIR/spool and STATE_DIR/queue.db) and survives a crash.\n"
    "\n"
    "  -c, --config FILE  configuration file (default /etc/sluice/sluice.yaml)\n"
    "  -h, --help         this text\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "SIGHUP reloads the configuration and the TLS certificate (a broken one is refused, the\n"
    "running one kept); SIGTERM stops accepting, lets sessions finish (10 s), then exits.\n"
    "See sluice-relayd(8) and sluice.yaml(5).\n";

int fatal(const std::string& message) {
  sluice::logLine(sluice::LogLevel::kFatal, message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Before SQLite is first used: no memory-usage statistics (they take one global mutex on every
  // allocation of every connection - the committer's, the recorder's, the delivery's - and
  // nothing here reads them).
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  auto args = sluice::config::parseDaemonArgs(argc, argv, "sluice-relayd", kUsage);
  if (args.exitCode >= 0) return args.exitCode;
  std::signal(SIGPIPE, SIG_IGN);
  sluice::setupLogging("sluice-relayd", sluice::LogTarget::kStderr, sluice::LogLevel::kInfo);
  auto cfg = sluice::config::loadConfigFile(args.configPath);
  if (!cfg) {
    std::cerr << cfg.message() << "\n";
    return fatal("configuration has errors, not starting");
  }
  const auto& c = *cfg.value();
  sluice::LogLevel level = sluice::LogLevel::kInfo;
  sluice::parseLogLevel(c.log.level, &level);
  sluice::setupLogging("sluice-relayd", c.log.target == "syslog" ? sluice::LogTarget::kSyslog : sluice::LogTarget::kStderr,
                       level, c.log.syslogFacility);
  try {
    // Destruction order: d goes first, then io, which destroys the sessions still suspended in
    // it after a forced stop (the 10 s bound); they see d's alive token expired and leave it be.
    asio::io_context io(1);
    sluice::relayd::Relayd d(io, cfg.value(), args.configPath);
    // As root only to bind (587/465 are privileged ports); then run_as_user for everything else.
    auto who = sluice::runAsFor(c.runAsUser);
    if (!who) return fatal(who.message());
    if (auto st = d.bind(); !st) return fatal(st.message() + "; not starting");
    if (who.value()) {
      if (auto st = sluice::dropPrivileges(*who.value()); !st) return fatal(st.message());
    }
    if (auto st = sluice::checkStateDir(c.stateDir); !st) return fatal(st.message());
    if (auto st = d.start(); !st) return fatal(st.message() + "; not starting");
    if (who.value()) sluice::logInfo("started as root, running as " + sluice::effectiveUserDescription());
    asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    std::function<void(const asio::error_code&, int)> onSignal = [&](const asio::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        d.reload();
        signals.async_wait(onSignal);
        return;
      }
      sluice::logInfo("stopping (signal " + std::to_string(sig) + "): no new sessions; 10 s for open ones");
      d.stop();
      // Poll until the open sessions are done, 10 s at most.
      auto t = std::make_shared<asio::steady_timer>(io);
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      // The pending wait owns the poll; the poll itself holds only a weak reference (no cycle).
      auto poll = std::make_shared<std::function<void()>>();
      *poll = [&io, &d, t, until, weak = std::weak_ptr<std::function<void()>>(poll)] {
        if (d.sessions() == 0 || std::chrono::steady_clock::now() >= until) {
          io.stop();
          return;
        }
        t->expires_after(std::chrono::milliseconds(100));
        t->async_wait([self = weak.lock()](const asio::error_code&) { (*self)(); });
      };
      (*poll)();
      signals.async_wait([&io](const asio::error_code& e2, int) {
        if (!e2) io.stop();  // a second signal: now
      });
    };
    signals.async_wait(onSignal);
    io.run();
    sluice::logInfo("stopped");
    return 0;
  } catch (const std::exception& e) {
    return fatal(e.what());
  }
}
