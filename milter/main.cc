// main.cc - sluice-milter: command line, logging set-up, keys and identities loaded once, then
// the chosen engine (the built-in one, or libmilter's smfi_main()). Any problem before serving is one line on stderr and exit 1.
#include <pthread.h>

#include <asio.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "base/log.h"
#include "base/privileges.h"
#include "config/config.h"
#include "config/daemon_args.h"
#include "libmilter_glue.h"
#include "milter_callbacks.h"
#include "milter_server.h"
#include "net/metrics_server.h"

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
    "reading keys. A key readable by group or others stops the start. SIGHUP reloads the\n"
    "configuration and the keys (a broken new one is refused and the old one kept); SIGTERM\n"
    "stops it. With milter.policy_service set (Sendmail), the envelope is checked by sluice-policyd.\n"
    "See sluice-milter(8) and sluice.yaml(5).\n";

int fatal(const std::string& message) {
  sluice::logLine(sluice::LogLevel::kFatal, message);
  return 1;
}

void applyLogging(const sluice::config::Config& c) {
  sluice::LogLevel level = sluice::LogLevel::kInfo;
  sluice::parseLogLevel(c.log.level, &level);
  sluice::setupLogging("sluice-milter",
                       c.log.target == "syslog" ? sluice::LogTarget::kSyslog : sluice::LogTarget::kStderr, level,
                       c.log.syslogFacility);
}

// SIGHUP: re-read the configuration and the keys; a broken one is refused and the old one kept.
void reload(const std::string& configPath) {
  auto& stats = sluice::milter::stats();
  auto cfg = sluice::config::loadConfigFile(configPath);
  auto old = sluice::milter::currentState();
  if (!cfg) {
    ++stats.reloadFailures;
    sluice::logError("reload refused, keeping the running configuration: " + cfg.message());
    return;
  }
  auto st = sluice::milter::buildState(cfg.value(), old.get());
  if (!st) {
    ++stats.reloadFailures;
    sluice::logError("reload refused, keeping the running configuration: " + st.message());
    return;
  }
  if (old && old->config->milter.listen != cfg.value()->milter.listen) {
    sluice::logWarning("milter.listen changed to " + cfg.value()->milter.listen + "; it takes effect at restart");
  }
  if (old && old->config->milter.engine != cfg.value()->milter.engine) {
    sluice::logWarning("milter.engine changed to " + cfg.value()->milter.engine + "; it takes effect at restart");
  }
  if (old && old->config->milter.metricsListen != cfg.value()->milter.metricsListen) {
    sluice::logWarning("milter.metrics_listen changed; it takes effect at restart");
  }
  applyLogging(*cfg.value());
  sluice::milter::installState(std::move(st.value()));
  ++stats.reloads;
  sluice::logInfo("reloaded " + configPath + ": " +
                  std::to_string(sluice::milter::currentState()->signing->keyCount()) + " DKIM keys");
}

// libmilter's worker pool starts and ends threads all the time (about one per two messages under
// load). With the default 8 MiB stacks glibc's stack cache (40 MiB) keeps only a few of them, so
// most new workers mmap, mprotect and fault in a fresh stack; 1 MiB stacks - far more than a
// callback needs - stay cached. Set just before libmilter starts its threads.
void useSmallThreadStacks() {
  constexpr size_t kStackBytes = 1024 * 1024;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  if (pthread_attr_setstacksize(&attr, kStackBytes) == 0 && pthread_setattr_default_np(&attr) != 0) {
    sluice::logWarning("cannot set the default thread stack size; keeping the system's");
  }
  pthread_attr_destroy(&attr);
}

// The built-in engine: serves on this thread; SIGTERM/SIGINT (taken by a thread of ours, as
// libmilter's signal thread would) stop it.
sluice::Status runBuiltin(const std::string& listen) {
  if (auto s = sluice::milter::prepareSocket(listen); !s) return s;
  sluice::milter::MilterServer server(sluice::milter::filterCallbacks());
  if (auto s = server.listen(listen); !s) return s;
  sluice::milter::logListening(listen, "built-in engine");
  std::thread([&server] {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    while (true) {
      int sig = sigwaitinfo(&stop, nullptr);
      if (sig == SIGTERM || sig == SIGINT) break;
    }
    sluice::logInfo("stopping: no new MTA connections; waiting for those in progress");
    server.stop();
  }).detach();
  server.serve();
  return sluice::okStatus();
}

}  // namespace

// libmilter's signal thread sigwait()s for SIGHUP, SIGTERM and SIGINT and stops the milter on
// SIGHUP. sluice-milter links libmilter statically with -Wl,--wrap=sigwait so that this wrapper
// takes SIGHUP out of libmilter's set; the reload thread below waits for it instead.
extern "C" int __real_sigwait(const sigset_t* set, int* sig);
extern "C" int __wrap_sigwait(const sigset_t* set, int* sig) {
  sigset_t mine = *set;
  sigdelset(&mine, SIGHUP);
  return __real_sigwait(&mine, sig);
}

int main(int argc, char** argv) {
  auto args = sluice::config::parseDaemonArgs(argc, argv, "sluice-milter", kUsage);
  if (args.exitCode >= 0) return args.exitCode;
  const std::string& configPath = args.configPath;
  std::signal(SIGPIPE, SIG_IGN);
  // HUP, TERM and INT are blocked in every thread (they inherit this mask): SIGHUP is taken by
  // the reload thread, TERM and INT by the engine's signal thread, which stops the milter.
  sigset_t hup, all;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  all = hup;
  sigaddset(&all, SIGTERM);
  sigaddset(&all, SIGINT);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  sluice::setupLogging("sluice-milter", sluice::LogTarget::kStderr, sluice::LogLevel::kInfo);
  auto cfg = sluice::config::loadConfigFile(configPath);
  if (!cfg) {
    std::cerr << cfg.message() << "\n";
    return fatal("configuration has errors, not starting");
  }
  const auto& c = *cfg.value();
  applyLogging(c);
  // Root is needed only to create the socket directory in Postfix's spool (sluice:postfix 0750,
  // so that Postfix's smtpd can reach the socket); keys and the socket are opened as run_as_user.
  auto dropped = sluice::dropPrivilegesAtStart(c.runAsUser, {c.milter.listen}, "postfix");
  if (!dropped) return fatal(dropped.message());
  if (auto st = sluice::checkStateDir(c.stateDir); !st) return fatal(st.message());
  try {
    auto st = sluice::milter::buildState(cfg.value(), nullptr);
    if (!st) return fatal(st.message() + "; not starting");
    sluice::milter::installState(std::move(st.value()));
    if (dropped.value()) sluice::logInfo("started as root, running as " + sluice::effectiveUserDescription());
    std::thread([configPath, hup] {
      while (true) {
        if (sigwaitinfo(&hup, nullptr) == SIGHUP) reload(configPath);
      }
    }).detach();
    asio::io_context io;
    std::unique_ptr<sluice::net::MetricsServer> metrics;
    if (!c.milter.metricsListen.empty()) {
      metrics = std::make_unique<sluice::net::MetricsServer>(io, [] { return sluice::milter::renderMetrics(); });
      if (auto s = metrics->listen(c.milter.metricsListen); !s) {
        sluice::logWarning("metrics listener " + s.message() + "; running without metrics (milter.metrics_listen)");
        metrics.reset();
      } else {
        std::thread([&io] {
          auto guard = asio::make_work_guard(io);
          io.run();
        }).detach();
      }
    }
    useSmallThreadStacks();
    if (c.milter.engine == "libmilter") {
      if (auto s = sluice::milter::runLibmilter(c.milter.listen); !s) return fatal(s.message());
    } else if (auto s = runBuiltin(c.milter.listen); !s) {
      return fatal(s.message());
    }
    sluice::logInfo("stopped");
    std::_Exit(0);  // the detached threads hold no state that needs flushing
  } catch (const std::exception& e) {
    return fatal(e.what());
  }
}
