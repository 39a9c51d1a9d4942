// log.cc - see log.h.
#include "base/log.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace sluice {
namespace {

struct LogState {
  std::string prog = "sluice";
  LogTarget target = LogTarget::kStderr;
  bool journal = false;  // stderr is systemd's journal: "<N>line", no NAME[PID]
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

// systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is the journal; the check of
// the descriptor itself tells it apart from a child that merely inherited the variable.
bool stderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  std::string want = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  return want == env;
}

}  // namespace

void setupLogging(std::string_view progName, LogTarget target, LogLevel minLevel,
                  std::string_view facility) {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.prog.assign(progName);
  s.target = target;
  s.minLevel = static_cast<int>(minLevel);
  s.journal = target == LogTarget::kStderr && stderrIsJournal();
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
  if (s.journal) {
    line += '<';
    line += std::to_string(syslogPriority(level));
    line += '>';
    line += prefixFor(level);
    line += clean;
    line += '\n';
    ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
    return;
  }
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

void logQueueLine(LogLevel level, std::string_view queueId, std::string_view message) {
  if (!logEnabled(level)) return;
  if (queueId.empty()) {
    logLine(level, message);
    return;
  }
  std::string line;
  line.reserve(queueId.size() + 2 + message.size());
  line.append(queueId);
  line += ": ";
  line.append(message);
  logLine(level, line);
}

bool logToJournal() { return state().journal; }

}  // namespace sluice
