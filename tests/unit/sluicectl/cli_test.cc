// cli_test.cc - sluicectl's command line as a whole (sluicectl/dispatch.cc, cli_util.cc and the
// argument handling of every <topic>_cmd.cc): every numeric argument goes through one checked
// parser and a bad number is a usage error naming the option (exit 2), never an exception;
// `COMMAND --help` and `COMMAND SUBCOMMAND --help` print the command's usage and exit 0 even
// when the configuration file is missing or broken; unknown subcommands and options are usage
// errors naming them; the top-level usage lists every command, aligned; and `bounce receive`,
// which Postfix's pipe(8) runs, exits 75 (the MTA keeps the report) for every failure that is
// not the report's own, never 1 or 2 (Postfix would bounce the report: it would be lost).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "auth/user_store.h"
#include "bounce_cmd.h"
#include "cli_util.h"
#include "config/config.h"
#include "ctl_run.h"
#include "dispatch.h"
#include "queue/queue.h"
#include "temp_dir.h"
#include "verp/verp.h"
#include "why_cmd.h"

namespace sluice {
namespace {

using testing::CtlRun;
using testing::sluicectl;

std::string show(const std::vector<std::string>& args) { return ::testing::PrintToString(args); }

class SluicectlCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(stateDir_);
    std::ofstream(config_) << "state_dir: " << stateDir_ << "\n";
    std::ofstream(broken_) << "state_dir: [unclosed\nno_such_key: 1\n";
  }
  // args after `sluicectl --config FILE`.
  CtlRun withConfig(std::vector<std::string> args, const std::string& file = "") {
    args.insert(args.begin(), {"--config", file.empty() ? config_ : file});
    return sluicectl(args);
  }
  test_util::TempDir tmp_{"sluicectl-cli"};
  std::string stateDir_ = tmp_.path() + "/state";
  std::string config_ = tmp_.path() + "/sluice.yaml";
  std::string broken_ = tmp_.path() + "/broken.yaml";
  std::string missing_ = tmp_.path() + "/missing.yaml";
};

// ---- numbers ---------------------------------------------------------------------------------

TEST(ParseNumberArg, TakesDigitsOnlyWithinTheRange) {
  EXPECT_EQ(ctl::parseNumberArg("-n", "0").value(), 0u);
  EXPECT_EQ(ctl::parseNumberArg("-n", "20").value(), 20u);
  EXPECT_EQ(ctl::parseNumberArg("-n", "18446744073709551615").value(), UINT64_MAX);
  EXPECT_EQ(ctl::parseNumberArg("INDEX", "4294967295", 0, UINT32_MAX).value(), UINT32_MAX);
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"abc", "invalid -n \"abc\": not a whole number"},
      {"", "invalid -n \"\": not a whole number"},
      {"-5", "invalid -n \"-5\": not a whole number"},
      {"+5", "not a whole number"},
      {"5x", "invalid -n \"5x\": not a whole number"},
      {" 5", "not a whole number"},
      {"5 ", "not a whole number"},
      {"0x10", "not a whole number"},
      {"1e3", "not a whole number"},
      {"18446744073709551616", "invalid -n \"18446744073709551616\": too large"},
      {"99999999999999999999999999", "too large"},
      {"\x1b[2J", "invalid -n \"\\x1b[2J\""},
  };
  for (const auto& c : cases) {
    auto r = ctl::parseNumberArg("-n", c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.message().find(c.want), std::string::npos) << "got: " << r.message() << "\nwant: " << c.want;
  }
  auto big = ctl::parseNumberArg("INDEX", "4294967296", 0, UINT32_MAX);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.message().find("too large (want from 0 to 4294967295)"), std::string::npos) << big.message();
  auto small = ctl::parseNumberArg("--bits", "0", 1, 10);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.message().find("too small"), std::string::npos) << small.message();
}

TEST_F(SluicectlCliTest, BadNumbersAreUsageErrorsNamingTheOption) {
  struct Case {
    std::vector<std::string> args;
    const char* want;
  } cases[] = {
      {{"events", "tail", "-n", "abc"}, "invalid -n \"abc\""},
      {{"events", "tail", "-n", "-5"}, "invalid -n \"-5\""},
      {{"events", "tail", "-n", "99999999999999999999999"}, "invalid -n \"99999999999999999999999\": too large"},
      {{"events", "tail", "-n", "5x"}, "invalid -n \"5x\""},
      {{"events", "tail", "-n", ""}, "invalid -n \"\""},
      {{"events", "tail", "-n=abc"}, "invalid -n \"abc\""},
      {{"events", "tail", "--json", "-n"}, "option -n needs a value"},
      {{"events", "tail", "-n"}, "option -n needs a value"},
      {{"queue", "list", "--limit", "abc"}, "invalid --limit \"abc\""},
      {{"queue", "list", "--limit", "-1"}, "invalid --limit \"-1\""},
      {{"queue", "list", "--limit", "18446744073709551616"}, "invalid --limit \"18446744073709551616\": too large"},
      {{"queue", "list", "--limit=10k"}, "invalid --limit \"10k\""},
      {{"queue", "list", "--limit"}, "option --limit needs a value"},
      {{"suppress", "list", "--limit", "ten"}, "invalid --limit \"ten\""},
      {{"suppress", "list", "--limit", "-1"}, "invalid --limit \"-1\""},
      {{"dkim", "keygen", "--domain", "example.com", "--selector", "s", "--bits", "2k"}, "invalid --bits \"2k\""},
      // 2^32 + 2048 once became 2048 on its way to an int.
      {{"dkim", "keygen", "--domain", "example.com", "--selector", "s", "--bits", "4294969344"},
       "invalid --bits \"4294969344\": too large"},
      {{"dkim", "keygen", "--domain", "example.com", "--selector", "s", "--bits"}, "option --bits needs a value"},
      {{"bounce", "verp", "0123456789ABCDEF", "x", "news@bounces.example"}, "invalid INDEX \"x\""},
      {{"bounce", "verp", "0123456789ABCDEF", "-1", "news@bounces.example"}, "invalid INDEX \"-1\""},
      {{"bounce", "verp", "0123456789ABCDEF", "4294967296", "news@bounces.example"}, "invalid INDEX \"4294967296\": too large"},
  };
  for (const auto& c : cases) {
    CtlRun r;
    EXPECT_NO_THROW(r = withConfig(c.args)) << show(c.args);
    EXPECT_EQ(r.code, 2) << show(c.args) << "\n" << r.err;
    EXPECT_NE(r.err.find(c.want), std::string::npos) << show(c.args) << "\ngot: " << r.err << "want: " << c.want;
    EXPECT_EQ(r.out, "") << show(c.args);
  }
  EXPECT_TRUE(std::filesystem::is_empty(stateDir_)) << "a usage error must not create files";
}

TEST_F(SluicectlCliTest, TheHandlersThemselvesNeverThrowOnBadNumbers) {
  auto cfg = config::loadConfigString("state_dir: " + stateDir_ + "\n", "t.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  std::ostringstream out, err;
  int rc = -1;
  EXPECT_NO_THROW(rc = ctl::runEventsCommand({"tail", "-n", "abc"}, *cfg.value(), out, err));
  EXPECT_EQ(rc, 2) << err.str();
  EXPECT_NO_THROW(rc = ctl::runEventsCommand({"tail", "-n"}, *cfg.value(), out, err));
  EXPECT_EQ(rc, 2) << err.str();
}

TEST_F(SluicectlCliTest, GoodNumbersStillWork) {
  {
    std::ofstream ev(stateDir_ + "/events.jsonl");
    for (int i = 0; i < 5; ++i) ev << "line " << i << "\n";
  }
  CtlRun r = withConfig({"events", "tail", "-n", "2", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "line 3\nline 4\n");
  r = withConfig({"events", "tail", "--json", "-n=0"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = withConfig({"events", "tail", "--json"});
  EXPECT_EQ(r.out, "line 0\nline 1\nline 2\nline 3\nline 4\n");
}

// ---- help ------------------------------------------------------------------------------------

TEST_F(SluicectlCliTest, HelpNeedsNoConfiguration) {
  struct Case {
    std::vector<std::string> args;
    const char* want;  // in the usage printed
  } cases[] = {
      {{"suppress", "--help"}, "sluicectl suppress add"},
      {{"suppress", "list", "--help"}, "sluicectl suppress list"},
      {{"limits", "--help"}, "sluicectl limits show"},
      {{"limits", "show", "--help"}, "sluicectl limits show"},
      {{"limits", "reset", "-h"}, "sluicectl limits reset"},
      {{"user", "--help"}, "sluicectl user add"},
      {{"user", "add", "--help"}, "sluicectl user add"},
      {{"user", "list", "-h"}, "sluicectl user list"},
      {{"queue", "--help"}, "sluicectl queue list"},
      {{"queue", "list", "--help"}, "sluicectl queue list"},
      {{"queue", "show", "--help"}, "sluicectl queue show"},
      {{"why", "--help"}, "sluicectl why ID"},
      {{"why", "-h"}, "sluicectl why ID"},
      {{"events", "--help"}, "sluicectl events tail"},
      {{"events", "tail", "--help"}, "sluicectl events tail"},
      {{"status", "--help"}, "sluicectl status"},
      {{"status", "-h"}, "sluicectl status"},
      {{"bounce", "receive", "--help"}, "sluicectl bounce receive"},
      {{"bounce", "verp", "--help"}, "sluicectl bounce verp"},
      {{"bounce", "--help"}, "sluicectl bounce classify"},
      {{"bounce", "classify", "--help"}, "sluicectl bounce classify"},
      {{"dkim", "--help"}, "sluicectl dkim keygen"},
      {{"dkim", "check", "--help"}, "sluicectl dkim check"},
      {{"config", "--help"}, "sluicectl config check"},
      {{"config", "check", "--help"}, "sluicectl config check"},
      {{"help", "queue"}, "sluicectl queue list"},
      {{"help", "status"}, "sluicectl status"},
  };
  for (const std::string& file : {missing_, broken_}) {
    for (const auto& c : cases) {
      CtlRun r = withConfig(c.args, file);
      std::string what = show(c.args) + " with " + file;
      EXPECT_EQ(r.code, 0) << what << "\n" << r.err;
      EXPECT_NE(r.out.find(c.want), std::string::npos) << what << "\ngot: " << r.out;
      EXPECT_EQ(r.err, "") << what;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(missing_));
}

TEST_F(SluicectlCliTest, StatusHelpDoesNotAskTheDaemon) {
  // With a valid configuration too: no policyd runs, so asking it would fail (exit 1).
  CtlRun r = withConfig({"status", "--help"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Usage: sluicectl status [--json]"), std::string::npos) << r.out;
}

// ---- unknown commands and options ------------------------------------------------------------

TEST_F(SluicectlCliTest, UnknownSubcommandsAndOptionsAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    const char* want;
  } cases[] = {
      {{"user", "foo"}, "sluicectl user: unknown command \"foo\""},
      {{"user", "add"}, "sluicectl user add: needs NAME"},
      {{"user", "list", "--bogus"}, "unknown option --bogus"},
      {{"user", "add", "bob", "--domain", "x"}, "unknown option --domain"},
      {{"queue", "foo"}, "sluicectl queue: unknown command \"foo\""},
      {{"queue", "list", "--bogus"}, "sluicectl queue list: unknown option --bogus"},
      {{"queue", "show", "ID", "--bogus"}, "sluicectl queue show: unknown option --bogus"},
      {{"queue", "hold", "ID", "--force"}, "sluicectl queue hold: unknown option --force"},
      {{"queue", "release", "ID", "-x"}, "sluicectl queue release: unknown option -x"},
      {{"queue", "delete", "ID", "--json"}, "sluicectl queue delete: unknown option --json"},
      {{"queue", "retry", "--everything"}, "sluicectl queue retry: unknown option --everything"},
      {{"queue", "totals", "--limit", "3"}, "sluicectl queue totals: unknown option --limit"},
      {{"queue", "list", "extra"}, "unexpected argument \"extra\""},
      {{"queue", "retry"}, "needs a queue ID or --all"},
      {{"queue", "retry", "ID", "--all"}, "not both"},
      {{"queue", "show"}, "needs a queue ID"},
      {{"why"}, "sluicectl why: needs a queue ID"},
      {{"why", "ID", "--bogus"}, "unknown option --bogus"},
      {{"events", "head"}, "sluicectl events: unknown command \"head\""},
      {{"events", "tail", "--bogus"}, "unknown option --bogus"},
      {{"status", "--bogus"}, "sluicectl status: unknown option --bogus"},
      {{"status", "now"}, "unexpected argument \"now\""},
      {{"limits", "frob"}, "sluicectl limits: unknown command \"frob\""},
      {{"limits", "show", "--bogus"}, "unknown option --bogus"},
      {{"frobnicate"}, "sluicectl: unknown command \"frobnicate\""},
      {{"--config"}, "option --config needs a FILE"},
  };
  for (const auto& c : cases) {
    CtlRun r = withConfig(c.args);
    EXPECT_EQ(r.code, 2) << show(c.args) << "\n" << r.err;
    EXPECT_NE(r.err.find(c.want), std::string::npos) << show(c.args) << "\ngot: " << r.err << "want: " << c.want;
  }
  EXPECT_TRUE(std::filesystem::is_empty(stateDir_)) << "a usage error must not create files";
}

// ---- the top-level usage ---------------------------------------------------------------------

TEST(SluicectlUsage, ListsEveryCommandAligned) {
  CtlRun r = sluicectl({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, ctl::kSluicectlUsage);
  for (const char* want : {"  config check [FILE]", "  config params [--man]", "  why ID [--json]",
                           "  bounce receive --recipient ADDR [--rules FILE] < MSG", "  bounce verp ID INDEX LOCAL@DOMAIN",
                           "  events tail [-n N] [--json] [-f|--follow]", "  status [--json]"}) {
    size_t at = r.out.find("\n" + std::string(want));
    ASSERT_NE(at, std::string::npos) << want << "\n" << r.out;
    char next = r.out[at + 1 + std::string(want).size()];
    EXPECT_TRUE(next == ' ' || next == '\n') << want << "\n" << r.out;
  }
  // Between "Commands:" and the blank line, every description starts in column 33: on the
  // command's line, or on the next line when the command is longer.
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line) && line.find("Commands:") == std::string::npos) {}
  const size_t col = 33;
  int described = 0;
  while (std::getline(lines, line) && !line.empty()) {
    ASSERT_EQ(line.rfind("  ", 0), 0u) << line;
    size_t gap = line.find("  ", 2);
    if (gap == std::string::npos) continue;  // a long command; its description on the next line
    size_t desc = line.find_first_not_of(' ', gap);
    EXPECT_EQ(desc, col) << "description not in column " << col << ": \"" << line << "\"";
    ++described;
  }
  EXPECT_GE(described, 13);  // 13 commands, each described
}

// ---- bounce receive: 75 for every failure that is not the report's ---------------------------

std::string dsn(const std::string& to, const std::string& rcpt) {
  return "From: MAILER-DAEMON@mx.dest.example\r\nTo: " + to +
         "\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
         "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.example\r\n\r\n"
         "Final-Recipient: rfc822; " + rcpt + "\r\nAction: failed\r\nStatus: 5.1.1\r\n"
         "Remote-MTA: dns; mx.dest.example\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--b1--\r\n";
}

TEST_F(SluicectlCliTest, BounceReceiveWithoutItsConfigurationExits75) {
  std::string msg = dsn("news+x@bounces.example", "bob@dest.example");
  for (const std::string& file : {missing_, broken_}) {
    CtlRun r = sluicectl({"--config", file, "bounce", "receive", "--recipient", "news+x@bounces.example"}, msg);
    EXPECT_EQ(r.code, 75) << file << "\n" << r.err;
    EXPECT_NE(r.err.find("fix the configuration first"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the MTA keeps the report and retries"), std::string::npos) << r.err;
  }
  // The other commands still exit 1 for it.
  CtlRun q = sluicectl({"--config", missing_, "queue", "list"});
  EXPECT_EQ(q.code, 1) << q.err;
  CtlRun v = sluicectl({"--config", missing_, "bounce", "verp", "0123456789ABCDEF", "0", "news@bounces.example"});
  EXPECT_EQ(v.code, 1) << v.err;
}

TEST_F(SluicectlCliTest, BounceReceiveUsageErrorsExit75) {
  // A wrong command line is an error in master.cf, not in the report: keep it queued.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"bounce", "receive", "--recipient"},
           {"bounce", "receive", "--recipient", "a@b", "--bogus"},
           {"bounce", "receive", "--rules"},
           {"bounce", "receive", "stray"}}) {
    CtlRun r = withConfig(args);
    EXPECT_EQ(r.code, 75) << show(args) << "\n" << r.err;
    EXPECT_NE(r.err.find("sluicectl bounce receive: "), std::string::npos) << r.err;
  }
}

class BounceReceiveFailureTest : public SluicectlCliTest {
 protected:
  void SetUp() override {
    SluicectlCliTest::SetUp();
    auto users = auth::UserStore::open(stateDir_, true);  // creates STATE_DIR/server.secret
    ASSERT_TRUE(users.ok()) << users.message();
    std::ifstream sf(stateDir_ + "/server.secret");
    std::getline(sf, secret_);
    ASSERT_GE(secret_.size(), 16u);
  }
  std::string verp(const std::string& id) { return verp::VerpCodec(secret_).encode("news", id, 0, "bounces.example"); }
  CtlRun receive(const std::string& to) {
    return sluicectl({"--config", config_, "bounce", "receive", "--recipient", to}, dsn(to, "bob@dest.example"));
  }
  std::string secret_;
};

TEST_F(BounceReceiveFailureTest, AnUnreadableQueueIndexIsATemporaryFailureNotAnIgnoredReport) {
  // A verified VERP address, but relayd's queue index cannot be opened (here: it is missing):
  // the report was ignored with exit 0 ("no matching message") and lost.
  std::string id = queue::Queue::newId();
  ASSERT_FALSE(std::filesystem::exists(stateDir_ + "/queue.db"));
  CtlRun r = receive(verp(id));
  EXPECT_EQ(r.code, 75) << r.out << r.err;
  EXPECT_EQ(r.out.find("ignored"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("queue index"), std::string::npos) << r.err;
}

TEST_F(BounceReceiveFailureTest, PermanentProblemsStillExit0) {
  {
    queue::QueueOptions o;
    o.stateDir = stateDir_;
    auto q = queue::Queue::open(o);  // an index without the message
    ASSERT_TRUE(q.ok()) << q.message();
  }
  CtlRun r = receive(verp(queue::Queue::newId()));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ignored: no matching message\n");
  CtlRun forged = receive("news+0123456789ABCDEF.0.aaaaaaaaaaaa@bounces.example");
  EXPECT_EQ(forged.code, 0) << forged.err;
  EXPECT_EQ(forged.out, "ignored: not verified\n");
  CtlRun notBounce = sluicectl({"--config", config_, "bounce", "receive", "--recipient", "x@bounces.example"},
                            "From: a@b.example\r\nSubject: hello\r\n\r\njust a note\r\n");
  EXPECT_EQ(notBounce.code, 0) << notBounce.err;
  EXPECT_EQ(notBounce.out.rfind("ignored: ", 0), 0u) << notBounce.out;
}

}  // namespace
}  // namespace sluice
