// suppress_cmd_test.cc - tests of `sluicectl suppress` (sluicectl/suppress_cmd.*): usage errors
// and help, address validation, add/remove/list, CSV import/export with quoting and bad rows,
// plain address lists, progress output, and a timed import of 1,000,000 rows.
#include "suppress_cmd.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "store/store_sqlite.h"
#include "suppression/suppression_list.h"

namespace sluice {
namespace {

struct CmdResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SuppressCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-ctl-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_ = dir_ + "/sluice.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CmdResult run(std::vector<std::string> args, const std::string& stdinText = "", bool tty = false) {
    std::ostringstream out, err;
    std::istringstream in(stdinText);
    SuppressCommandEnv env;
    env.clock = &clock_;
    env.in = &in;
    env.errIsTty = tty;
    env.batchRows = batchRows_;
    CmdResult r;
    r.code = runSuppressCommand(args, db_, out, err, env);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::unique_ptr<store::SqliteStore> openStore() {
    store::SqliteOptions o;
    o.path = db_;
    auto s = store::SqliteStore::open(o, &clock_);
    EXPECT_TRUE(s.ok());
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Imports `rows` CSV rows through the command (50,000-row transactions), then loads them into
  // a SuppressionList. Prints the times and the list's memory; asserts only correctness.
  void timedImport(int rows) {
    std::string path = dir_ + "/big.csv";
    {
      std::ofstream f(path, std::ios::binary);
      f << "address,scope,reason\n";
      for (int i = 0; i < rows; ++i) f << "user" << i << "@example" << (i % 1000) << ".com,,hard-bounce\n";
    }
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();
    CmdResult r = run({"import", path});
    auto t1 = std::chrono::steady_clock::now();
    std::clock_t c1 = std::clock();
    ASSERT_EQ(r.code, 0) << r.err;
    auto store = openStore();
    long rss0 = rssKb();
    size_t heap0 = mallinfo2().uordblks + mallinfo2().hblkhd;
    SuppressionList list;
    ASSERT_TRUE(list.load(*store).ok());
    auto t2 = std::chrono::steady_clock::now();
    long rss1 = rssKb();
    size_t heap1 = mallinfo2().uordblks + mallinfo2().hblkhd;
    EXPECT_EQ(list.size(), static_cast<size_t>(rows));
    std::string last = "user" + std::to_string(rows - 1) + "@example" + std::to_string((rows - 1) % 1000) + ".com";
    EXPECT_NE(list.find(last, "", 0), nullptr);
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    std::cout << "[ timing   ] import of " << rows << " rows: " << ms(t1 - t0) << " ms wall, "
              << (c1 - c0) * 1000 / CLOCKS_PER_SEC << " ms cpu; SuppressionList load: " << ms(t2 - t1)
              << " ms, list holds " << (heap1 - heap0) / (1024 * 1024) << " MB of heap (+" << (rss1 - rss0) / 1024
              << " MB resident)\n";
  }
  static long rssKb() {
    long pages = 0, resident = 0;
    std::ifstream("/proc/self/statm") >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
  }

  std::string dir_;
  std::string db_;
  ManualClock clock_{1'714'564'800'000};  // 2024-05-01T12:00:00Z
  size_t batchRows_ = 50'000;
};

TEST_F(SuppressCmdTest, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    const char* wantErr;
  } cases[] = {
      {{}, "missing command"},
      {{"frobnicate"}, "unknown command frobnicate"},
      {{"add"}, "missing ADDRESS"},
      {{"add", "a@x.com", "b@x.com"}, "unexpected argument b@x.com"},
      {{"add", "a@x.com", "--bogus"}, "unknown option --bogus"},
      {{"add", "a@x.com", "--scope"}, "--scope needs a value"},
      {{"add", "a@x.com", "--expires", "soon"}, "invalid --expires \"soon\""},
      {{"add", "a@x.com", "--scope", "bad_domain"}, "invalid scope \"bad_domain\""},
      {{"list", "--limit", "ten"}, "invalid --limit"},
      {{"list", "--json=yes"}, "--json takes no value"},
      {{"import"}, "missing FILE"},
      {{"export", "a", "b"}, "unexpected argument b"},
  };
  for (const auto& c : cases) {
    CmdResult r = run(c.args);
    std::string what = "args: " + ::testing::PrintToString(c.args);
    EXPECT_EQ(r.code, 2) << what;
    EXPECT_NE(r.err.find(c.wantErr), std::string::npos) << what << "\ngot err: " << r.err << "want: " << c.wantErr;
    EXPECT_NE(r.err.find("--help"), std::string::npos) << what << ": usage errors point at --help";
  }
  EXPECT_FALSE(std::filesystem::exists(db_)) << "usage errors must not create the database";
}

TEST_F(SuppressCmdTest, HelpForGroupAndEachCommand) {
  struct Case {
    std::vector<std::string> args;
    const char* want;
  } cases[] = {
      {{"--help"}, "sluicectl suppress - manage the suppression list"},
      {{"help"}, "EXIT STATUS"},
      {{"help", "import"}, "sluicectl suppress import - "},
      {{"add", "--help"}, "--expires DURATION"},
      {{"remove", "-h"}, "sluicectl suppress remove - "},
      {{"list", "--json", "--help"}, "--limit N"},
      {{"import", "--help"}, "address,scope,reason,source,created,expires"},
      {{"export", "--help"}, "SYNOPSIS"},
  };
  for (const auto& c : cases) {
    CmdResult r = run(c.args);
    EXPECT_EQ(r.code, 0) << ::testing::PrintToString(c.args);
    EXPECT_NE(r.out.find(c.want), std::string::npos) << ::testing::PrintToString(c.args) << "\ngot: " << r.out;
  }
}

TEST_F(SuppressCmdTest, AddressValidation) {
  struct Case {
    const char* address;
    const char* wantError;  // "" = valid
  } cases[] = {
      {"user@example.com", ""},
      {"First.Last+tag@mail.Example-Shop.co.uk", ""},
      {"\"john@home\"@example.com", ""},
      {"\xc3\xbcser@example.com", ""},  // UTF-8 local part (SMTPUTF8)
      {"", "empty address"},
      {"no-at-sign", "no '@'"},
      {"a@b@example.com", "more than one unquoted '@'"},
      {"@example.com", "empty local part"},
      {"user@", "empty domain"},
      {"us er@example.com", "contains a space"},
      {"user@exa\x01mple.com", "control character"},
      {"user@exa_mple.com", "only letters, digits, hyphens and dots"},
      {"user@[192.0.2.1]", "contains '['"},
      {"user@example..com", "empty label"},
      {"user@-example.com", "starts or ends with '-'"},
      {"a,b@example.com", "contains ','"},
      {"\"open@example.com", "unterminated quote"},
      {"user@\xc3\xa9xample.com", "xn--"},
  };
  for (const auto& c : cases) {
    Status got = validateSuppressAddress(c.address);
    if (*c.wantError == '\0') {
      EXPECT_TRUE(got.ok()) << c.address << ": got error " << (got.ok() ? "" : got.message()) << ", want valid";
      continue;
    }
    ASSERT_FALSE(got.ok()) << c.address << ": got valid, want error " << c.wantError;
    EXPECT_NE(got.message().find(c.wantError), std::string::npos)
        << c.address << ": got \"" << got.message() << "\", want it to mention \"" << c.wantError << "\"";
  }
  CmdResult r = run({"add", "us er@example.com"});
  EXPECT_EQ(r.code, 1) << "an invalid address is an error in the data";
  EXPECT_NE(r.err.find("invalid address \"us er@example.com\": contains a space"), std::string::npos) << r.err;
}

TEST_F(SuppressCmdTest, AddListRemove) {
  CmdResult r = run({"add", "Jane@Example.com", "--reason", "complaint"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "suppressed jane@example.com (scope global, reason complaint, expires never)\n");
  r = run({"add", "bob@example.org", "--scope", "Shop.Example.net", "--expires", "30d"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "suppressed bob@example.org (scope shop.example.net, reason manual, expires 2024-05-31T12:00:00Z)\n");

  r = run({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ADDRESS           SCOPE             REASON     SOURCE     CREATED               EXPIRES\n"
            "bob@example.org   shop.example.net  manual     sluicectl  2024-05-01T12:00:00Z  2024-05-31T12:00:00Z\n"
            "jane@example.com  global            complaint  sluicectl  2024-05-01T12:00:00Z  never\n");

  r = run({"list", "--json", "--scope", "global"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["address"], "jane@example.com");
  EXPECT_EQ(j["scope"], "");
  EXPECT_TRUE(j["expires"].is_null());
  EXPECT_EQ(j["created"], "2024-05-01T12:00:00Z");

  struct ListCase {
    std::vector<std::string> args;
    size_t wantLines;
  } lists[] = {{{"list", "--json"}, 2}, {{"list", "--json", "--reason", "manual"}, 1},
               {{"list", "--json", "--scope", "shop.example.net"}, 1}, {{"list", "--json", "--limit", "1"}, 1},
               {{"list", "--json", "--scope", "nothing.example"}, 0}};
  for (const auto& c : lists) {
    r = run(c.args);
    EXPECT_EQ(static_cast<size_t>(std::count(r.out.begin(), r.out.end(), '\n')), c.wantLines)
        << ::testing::PrintToString(c.args) << "\ngot: " << r.out;
  }

  r = run({"remove", "JANE@example.com"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = run({"remove", "jane@example.com"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("jane@example.com is not suppressed in scope global"), std::string::npos) << r.err;
  r = run({"remove", "bob@example.org"});
  EXPECT_EQ(r.code, 1) << "bob is only suppressed in shop.example.net";
  EXPECT_EQ(run({"remove", "bob@example.org", "--scope", "shop.example.net"}).code, 0);
}

TEST_F(SuppressCmdTest, CsvImportExportRoundTripWithQuotingAndBadRows) {
  std::string csv =
      "\xEF\xBB\xBF" "Address,Scope,Reason,Source,Created,Expires\r\n"
      "a@example.com,,hard-bounce,relayd,2024-01-02T03:04:05Z,\r\n"
      "\"b@example.com\",shop.example,\"complaint, via \"\"FBL\"\"\",,2024-01-02,2025-01-01T00:00:00Z\n"
      "not-an-address,,manual,,,\n"
      "c@example.com,,\"multi\nline reason\",x,,\n"
      "d@example.com,,manual\n"
      "e@example.com,,manual,,yesterday,\n"
      "\n"
      "\"f@example.com\"x,,manual,,,\n"
      "g@example.com,bad_scope,manual,,,\n"
      "H@Example.COM,,,,,\n";
  std::string in = write("in.csv", csv);
  CmdResult r = run({"import", in, "--reason", "imported"});
  EXPECT_EQ(r.code, 1) << "bad rows make the exit status 1";
  EXPECT_NE(r.out.find("imported 4 entries from " + in + "; 5 bad rows skipped"), std::string::npos) << r.out;
  // c@example.com's quoted reason spans lines 5 and 6, so later rows are one line further down.
  const char* wantErrs[] = {":4: invalid address \"not-an-address\": no '@'",
                            ":7: expected 6 fields, got 3",
                            ":8: invalid created time \"yesterday\"",
                            ":10: text after a closing quote",
                            ":11: invalid scope \"bad_scope\""};
  for (const char* want : wantErrs) {
    EXPECT_NE(r.err.find(in + want), std::string::npos) << "got err:\n" << r.err << "want: " << want;
  }

  auto store = openStore();
  auto b = store->get("b@example.com", "shop.example");
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->reason, "complaint, via \"FBL\"");
  EXPECT_EQ((*b)->source, "import:in.csv") << "an empty source cell means the import";
  EXPECT_EQ((*b)->createdMs, 1'704'153'600'000);
  EXPECT_EQ((*b)->expiresMs, 1'735'689'600'000);
  auto h = store->get("h@example.com", "");
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_EQ((*h)->reason, "imported") << "--reason fills empty reason cells";
  EXPECT_EQ(store->get("c@example.com", "").value()->reason, "multi\nline reason");
  store.reset();

  std::string out1 = dir_ + "/out1.csv";
  r = run({"export", out1});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "exported 4 entries to " + out1 + "\n");
  std::string exported = readFile(out1);
  EXPECT_EQ(exported,
            "address,scope,reason,source,created,expires\n"
            "a@example.com,,hard-bounce,relayd,2024-01-02T03:04:05Z,\n"
            "b@example.com,shop.example,\"complaint, via \"\"FBL\"\"\",import:in.csv,2024-01-02T00:00:00Z,"
            "2025-01-01T00:00:00Z\n"
            "c@example.com,,\"multi\nline reason\",x,2024-05-01T12:00:00Z,\n"
            "h@example.com,,imported,import:in.csv,2024-05-01T12:00:00Z,\n");

  db_ = dir_ + "/second.db";
  r = run({"import", out1});
  ASSERT_EQ(r.code, 0) << r.err;
  r = run({"export"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, exported) << "export -> import -> export must give the same file";
}

TEST_F(SuppressCmdTest, PlainListFromStdinAndFile) {
  CmdResult r = run({"import", "-", "--scope", "News.Example", "--reason", "unsubscribe"},
              "one@example.com\r\n\r\n  Two@Example.com  \nbad@@example.com\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("stdin:4: invalid address"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("imported 2 entries from stdin; 1 bad rows skipped"), std::string::npos) << r.out;
  auto store = openStore();
  auto two = store->get("two@example.com", "news.example");
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ((*two)->reason, "unsubscribe");
  EXPECT_EQ((*two)->source, "import:stdin");
  store.reset();

  std::string list = write("unsubscribed.txt", "three@example.com\nfour@example.com,extra\n");
  r = run({"import", list});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(":2: expected one address per line (no header line), got 2 fields"), std::string::npos)
      << r.err;
  EXPECT_EQ(openStore()->get("three@example.com", "").value()->source, "import:unsubscribed.txt");
  EXPECT_EQ(run({"import", dir_ + "/missing.csv"}).code, 1);
}

TEST_F(SuppressCmdTest, ImportProgress) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "user" + std::to_string(i) + "@example.com\n";
  std::string file = write("list.txt", text);
  batchRows_ = 100;
  CmdResult r = run({"import", file});
  ASSERT_EQ(r.code, 0) << r.err;
  size_t lines = static_cast<size_t>(std::count(r.err.begin(), r.err.end(), '\n'));
  EXPECT_GE(lines, 9u) << "not a tty: about one line per 10%\n" << r.err;
  EXPECT_LE(lines, 11u) << r.err;
  EXPECT_NE(r.err.find("import: 1000 rows"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << r.err;
  r = run({"import", file}, "", true);
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "a tty gets one line redrawn with \\r";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\r'), 11);
}

TEST_F(SuppressCmdTest, Import100kRowsTimed) { timedImport(100'000); }

// 1,000,000 rows: run with --gtest_also_run_disabled_tests. Disabled by default because it
// writes ~150 MB of temporary files and takes several seconds.
TEST_F(SuppressCmdTest, DISABLED_Import1MRowsTimed) { timedImport(1'000'000); }

}  // namespace
}  // namespace sluice
