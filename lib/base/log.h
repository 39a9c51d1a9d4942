// log.h - process-wide logging to stderr or syslog, in the style Postfix sysadmins grep:
//   sluice-policyd[1234]: warning: policy client 127.0.0.1:50123: request exceeds 65536 bytes
//
// Lines about one message start with its queue id, as Postfix's do (logQueueLine):
//   sluice-relayd[1234]: 3F9AKQ2M7C0PB1XZ: to=<b@example.net>, relay=mx.example.net[192.0.2.9]:25, status=sent (250 2.0.0 Ok)
//   sluice-relayd[1234]: warning: 3F9AKQ2M7C0PB1XZ: ...          (the level prefix comes first)
// Targets: kStderr writes "NAME[PID]: line"; when stderr is systemd's journal (JOURNAL_STREAM
// names it), it writes "<PRIORITY>line" instead, and the journal adds NAME[PID] itself (and the
// priority reaches syslog with the unit's SyslogFacility). kSyslog uses openlog(NAME, LOG_PID,
// facility), so /var/log/mail.log shows "host NAME[PID]: line" like Postfix's own lines.
//
// One Logger per process, set up once in main() (setupLogging); library code calls logInfo() etc.
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
// "QUEUEID: message" (the queue id first, Postfix's convention for lines about one message);
// just "message" while the id is not known yet (queueId empty: Postfix has not opened its queue
// file, so neither its policy requests nor its milter macros carry one).
void logQueueLine(LogLevel level, std::string_view queueId, std::string_view message);
// True when stderr lines go to systemd's journal (set by setupLogging; for tests and messages).
bool logToJournal();

// Test hook: capture log lines instead of printing them (nullptr restores normal output).
using LogSink = void (*)(LogLevel, std::string_view, void* arg);
void setLogSink(LogSink sink, void* arg);

}  // namespace sluice
