// log_test.cc - lib/base/log: the queue id comes first (Postfix's convention), the level prefix
// before it, and stderr lines become "<PRIORITY>line" when stderr is systemd's journal.
#include "base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sluice {
namespace {

struct Captured {
  std::vector<std::string> lines;
};

void capture(LogLevel level, std::string_view line, void* arg) {
  auto* c = static_cast<Captured*>(arg);
  c->lines.push_back(std::string(logLevelName(level)) + "|" + std::string(line));
}

TEST(Log, QueueIdFirst) {
  Captured c;
  setLogSink(capture, &c);
  logQueueLine(LogLevel::kInfo, "3F9AKQ2M7C0PB1XZ", "to=<b@example.net>, status=sent (250 2.0.0 Ok)");
  logQueueLine(LogLevel::kWarning, "3F9AKQ2M7C0PB1XZ", "conversation timed out");
  setLogSink(nullptr, nullptr);
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[0], "info|3F9AKQ2M7C0PB1XZ: to=<b@example.net>, status=sent (250 2.0.0 Ok)");
  EXPECT_EQ(c.lines[1], "warning|3F9AKQ2M7C0PB1XZ: conversation timed out");
}

TEST(Log, QueueLineWithoutAnIdIsThePlainLine) {
  Captured c;
  setLogSink(capture, &c);
  logQueueLine(LogLevel::kInfo, "", "reject: RCPT from client.example[192.0.2.7]: ...");
  setLogSink(nullptr, nullptr);
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0], "info|reject: RCPT from client.example[192.0.2.7]: ...") << "no \": \" before it";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `body` with stderr sent to a file; returns what it wrote.
template <class F>
std::string withStderrToFile(bool asJournal, F body) {
  char path[] = "/tmp/sluice-log-test.XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  struct stat st {};
  ::fstat(STDERR_FILENO, &st);
  if (asJournal) {
    ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
  } else {
    ::setenv("JOURNAL_STREAM", "1:1", 1);  // some other stream: not ours
  }
  body();
  ::unsetenv("JOURNAL_STREAM");
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::string text = slurp(path);
  ::unlink(path);
  return text;
}

TEST(Log, JournalStreamGetsPriorityPrefixesAndNoNamePid) {
  std::string text = withStderrToFile(true, [] {
    setupLogging("sluice-test", LogTarget::kStderr, LogLevel::kInfo);
    EXPECT_TRUE(logToJournal());
    logInfo("started");
    logQueueLine(LogLevel::kWarning, "ABC123", "deferred");
    logError("broken");
  });
  setupLogging("sluice-test", LogTarget::kStderr, LogLevel::kInfo);
  EXPECT_EQ(text, "<6>started\n<4>warning: ABC123: deferred\n<3>error: broken\n");
}

TEST(Log, PlainStderrHasNameAndPid) {
  std::string text = withStderrToFile(false, [] {
    setupLogging("sluice-test", LogTarget::kStderr, LogLevel::kInfo);
    EXPECT_FALSE(logToJournal());
    logQueueLine(LogLevel::kInfo, "ABC123", "from=<a@example.com>, size=10");
  });
  EXPECT_EQ(text, "sluice-test[" + std::to_string(::getpid()) + "]: ABC123: from=<a@example.com>, size=10\n");
}

}  // namespace
}  // namespace sluice
