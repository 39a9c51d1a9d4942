// log.cc - see log.h.
#include "base/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

namespace sluice {
namespace {

struct LogState {
  std::string prog = "sluice";
  LogTarget target = LogTarget::kStderr;
  std::atomic<int> minLevel{static_cast<int>(LogLevel::kInfo)};
  LogSink sink = nullptr;
  void* sinkArg = nullptr;
  std::mutex mu;
};

LogState& state() {
  static LogState s;
  return s;
}

int facilityFromName(std::string_view name) {
  struct F { const char* n; int v; };
  static const F kFacilities[] = {
      {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
      {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
      {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
  for (const auto& f : kFacilities) {
    if (name == f.n) return f.v;
  }
  return LOG_MAIL;
}

int syslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return LOG_DEBUG;
    case LogLevel::kInfo: return LOG_INFO;
    case LogLevel::kWarning: return LOG_WARNING;
    case LogLevel::kError: return LOG_ERR;
    case LogLevel::kFatal: return LOG_CRIT;
  }
  return LOG_INFO;
}

// Postfix's convention: info lines carry no prefix, the others "warning: ", "error: ", "fatal: ".
const char* prefixFor(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug: ";
    case LogLevel::kInfo: return "";
    case LogLevel::kWarning: return "warning: ";
    case LogLevel::kError: return "error: ";
    case LogLevel::kFatal: return "fatal: ";
  }
  return "";
}

}  // namespace

void setupLogging(std::string_view progName, LogTarget target, LogLevel minLevel,
                  std::string_view facility) {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.prog.assign(progName);
  s.target = target;
  s.minLevel = static_cast<int>(minLevel);
  if (target == LogTarget::kSyslog) {
    openlog(s.prog.c_str(), LOG_PID | LOG_NDELAY, facilityFromName(facility));
  }
}

void setLogLevel(LogLevel minLevel) { state().minLevel = static_cast<int>(minLevel); }

bool logEnabled(LogLevel level) { return static_cast<int>(level) >= state().minLevel.load(); }

const char* logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
    case LogLevel::kFatal: return "fatal";
  }
  return "info";
}

bool parseLogLevel(std::string_view text, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (text == logLevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

void setLogSink(LogSink sink, void* arg) {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.sink = sink;
  s.sinkArg = arg;
}

void logLine(LogLevel level, std::string_view message) {
  LogState& s = state();
  if (!logEnabled(level)) return;
  // Control characters from the network never reach the log verbatim.
  std::string clean;
  clean.reserve(message.size());
  for (char c : message) {
    unsigned char u = static_cast<unsigned char>(c);
    clean.push_back((u < 0x20 || u == 0x7f) ? '?' : c);
  }
  if (s.sink != nullptr) {
    s.sink(level, clean, s.sinkArg);
    return;
  }
  if (s.target == LogTarget::kSyslog) {
    syslog(syslogPriority(level), "%s%s", prefixFor(level), clean.c_str());
    return;
  }
  std::string line;
  line.reserve(clean.size() + s.prog.size() + 32);
  line += s.prog;
  line += '[';
  line += std::to_string(getpid());
  line += "]: ";
  line += prefixFor(level);
  line += clean;
  line += '\n';
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace sluice
