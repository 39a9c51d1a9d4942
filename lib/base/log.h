// log.h - process-wide logging to stderr or syslog, in the style Postfix sysadmins grep:
//   sluice-policyd[1234]: warning: policy client 127.0.0.1:50123: request exceeds 65536 bytes
//
// One Logger per process, set up once in main() (setLogTarget); library code calls logInfo() etc.
// Messages below the configured level are dropped before they are formatted when callers use
// the SLUICE_LOG_ENABLED guard. Thread-safe: each line is written with one write(2) / syslog(3).
#pragma once

#include <string>
#include <string_view>

namespace sluice {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

enum class LogTarget { kStderr, kSyslog };

// progName is "sluice-policyd" etc.; facility is a syslog facility name ("mail" by default).
void setupLogging(std::string_view progName, LogTarget target, LogLevel minLevel,
                  std::string_view facility = "mail");
void setLogLevel(LogLevel minLevel);
bool logEnabled(LogLevel level);
const char* logLevelName(LogLevel level);
bool parseLogLevel(std::string_view text, LogLevel* out);

void logLine(LogLevel level, std::string_view message);
inline void logDebug(std::string_view m) { if (logEnabled(LogLevel::kDebug)) logLine(LogLevel::kDebug, m); }
inline void logInfo(std::string_view m) { logLine(LogLevel::kInfo, m); }
inline void logWarning(std::string_view m) { logLine(LogLevel::kWarning, m); }
inline void logError(std::string_view m) { logLine(LogLevel::kError, m); }

// Test hook: capture log lines instead of printing them (nullptr restores normal output).
using LogSink = void (*)(LogLevel, std::string_view, void* arg);
void setLogSink(LogSink sink, void* arg);

}  // namespace sluice
