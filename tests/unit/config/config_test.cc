// config_test.cc - tests for lib/config: defaults from the params table, FILE:LINE errors, and
// that the shipped contrib/sluice.yaml documents every key of the table.
#include "config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/params.h"

namespace sluice::config {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Config, EmptyFileGivesDocumentedDefaults) {
  auto cfg = loadConfigString("", "t.yaml");
  ASSERT_TRUE(cfg) << cfg.message();
  const Config& c = *cfg.value();
  EXPECT_EQ(c.stateDir, "/var/lib/sluice");
  EXPECT_EQ(c.policyd.listen, "127.0.0.1:10045");
  EXPECT_EQ(c.policyd.maxRequestSize, 64u * 1024);
  EXPECT_EQ(c.policyd.checkpointIntervalMs, 1000);
  EXPECT_EQ(c.policyd.adminSocket, "/var/lib/sluice/policyd.sock");
  EXPECT_EQ(c.store.sqlitePath, "/var/lib/sluice/sluice.db");
  EXPECT_TRUE(c.senderLogin.enabled);
  EXPECT_EQ(c.senderLogin.rejectAction.code, 553);
  EXPECT_EQ(c.suppression.rejectAction.code, 550);
  EXPECT_EQ(c.policyd.storeErrorAction.kind, Action::Kind::kDeferIfPermit);
}

TEST(Config, ShippedExampleLoadsAndNamesEveryKey) {
  std::string path = std::string(SLUICE_SOURCE_DIR) + "/contrib/sluice.yaml";
  auto cfg = loadConfigFile(path);
  ASSERT_TRUE(cfg) << cfg.message();
  std::string text = readFile(path);
  for (const auto& p : allParams()) {
    std::string path2 = p.path;
    std::string leaf = path2.substr(path2.find_last_of(".]") == std::string::npos ? 0 : path2.find_last_of(".]") + 1);
    EXPECT_NE(text.find(leaf + ":"), std::string::npos) << "contrib/sluice.yaml does not mention key " << p.path;
    EXPECT_NE(std::string(p.doc), "") << "key " << p.path << " has no documentation";
  }
}

TEST(Config, FullRuleAndIdentity) {
  const char* yaml =
      "state_dir: /tmp/x\n"
      "identities:\n"
      "  - name: app1\n"
      "    sasl_usernames: [app1]\n"
      "    senders: [Example.COM, '*.example.org', 'alerts@example.net']\n"
      "rate_limits:\n"
      "  - name: r1\n"
      "    key: client_network\n"
      "    count: recipients\n"
      "    networks: [192.0.2.0/24]\n"
      "    windows:\n"
      "      - { limit: 10, per: 1m }\n"
      "      - { limit: 100, per: 1h, burst: 5 }\n"
      "    action: 450 4.7.1 slow down {key}\n"
      "    mode: monitor\n";
  auto cfg = loadConfigString(yaml, "t.yaml");
  ASSERT_TRUE(cfg) << cfg.message();
  const Config& c = *cfg.value();
  ASSERT_EQ(c.identities.size(), 1u);
  EXPECT_EQ(c.identities[0].senders[0], "example.com");
  ASSERT_EQ(c.rateLimits.size(), 1u);
  const auto& r = c.rateLimits[0];
  EXPECT_EQ(r.key, LimitKey::kClientNetwork);
  EXPECT_EQ(r.count, LimitCount::kRecipients);
  EXPECT_TRUE(r.monitor);
  ASSERT_EQ(r.windows.size(), 2u);
  EXPECT_EQ(r.windows[0].burst, 10u) << "burst defaults to the limit";
  EXPECT_EQ(r.windows[1].burst, 5u);
  EXPECT_EQ(r.windows[0].perMs, 60'000);
  EXPECT_EQ(r.action.code, 450);
  EXPECT_EQ(r.line, 7);
}

TEST(Config, ErrorsNameFileAndLine) {
  struct Case { const char* yaml; const char* want; };
  const Case cases[] = {
      {"state_dir: /x\npolicyd:\n  lisen: 1.2.3.4:5\n", "t.yaml:3: policyd.lisen: unknown key in policyd"},
      {"policyd:\n  idle_timeout: 10 parsecs\n", "t.yaml:2: policyd.idle_timeout: expected a duration"},
      {"policyd:\n  checkpoint_interval: 5m\n", "t.yaml:2: policyd.checkpoint_interval: must be from 100ms to 1m"},
      {"policyd:\n  listen: localhost\n", "t.yaml:2: policyd.listen: expected IP:PORT"},
      {"policyd:\n  max_connections: -5\n", "t.yaml:2: policyd.max_connections: expected a whole number"},
      {"log:\n  level: loud\n", "t.yaml:2: log.level: expected one of debug,info,warning,error"},
      {"sender_login:\n  reject_action: BOUNCE now\n", "t.yaml:2: sender_login.reject_action: unknown action \"BOUNCE\""},
      {"suppression:\n  reject_action: 550 4.1.1 no\n", "does not match reply code 550"},
      {"suppression:\n  enabled: maybe\n", "t.yaml:2: suppression.enabled: expected true or false"},
      {"rate_limits:\n  - name: a\n    key: sasl_username\n", "t.yaml:2: rate_limits[].windows: required key is missing"},
      {"rate_limits:\n  - name: a\n    key: client_network\n    windows: [{limit: 1, per: 1h}]\n",
       "key client_network needs a list of networks"},
      {"rate_limits:\n  - {name: a, key: sender, windows: [{limit: 1, per: 1h}]}\n  - {name: a, key: sender, windows: [{limit: 1, per: 1h}]}\n",
       "t.yaml:3: rate_limits[].name: duplicate rule name \"a\""},
      {"rate_limits:\n  - {name: a, key: sender, windows: [{limit: 0, per: 1h}]}\n", "rate_limits[].windows[].limit: expected a whole number from 1"},
      {"identities:\n  - name: x\n    senders: [a.com]\n", "needs sasl_usernames or client_networks"},
      {"identities:\n  - name: x\n    client_networks: [10.0.0.0/99]\n    senders: [a.com]\n", "t.yaml:3: identities[].client_networks: expected a network"},
      {"identities:\n  - name: x\n    sasl_usernames: [u]\n    senders: ['bad pattern']\n", "bad sender pattern"},
      {"state_dir: /a\nstate_dir: /b\n", "t.yaml:2: state_dir: duplicate key"},
      {"state_dir: relative/dir\n", "state_dir: must be an absolute path"},
      {"policyd: [1, 2]\n", "t.yaml:1: policyd: expected a map of keys"},
      {"policyd:\n  listen: [a]\n", "t.yaml:2: policyd.listen: expected a single value"},
      {"a: b: c\n", "t.yaml:1: YAML syntax error"},
      {"- just\n- a list\n", "must be a map of keys"},
      {"delivery:\n  destination_rate: fast\n", "t.yaml:2: delivery.destination_rate: expected a rate from 0 to 100000"},
      {"delivery:\n  destination_rate: 200000/s\n", "delivery.destination_rate: expected a rate"},
  };
  for (const auto& c : cases) {
    auto cfg = loadConfigString(c.yaml, "t.yaml");
    ASSERT_FALSE(cfg) << "want an error for:\n" << c.yaml;
    EXPECT_NE(cfg.message().find(c.want), std::string::npos) << "got: " << cfg.message() << "\nwant: " << c.want;
  }
}

TEST(Config, DestinationRateTakesRatesBelowOneAndAboveAThousandPerSecond) {
  struct Case {
    const char* text;
    double want;
  };
  for (const auto& c : {Case{"0", 0}, Case{"50", 50}, Case{"0.5", 0.5}, Case{"30/m", 0.5}, Case{"2500/s", 2500},
                        Case{"100000", 100000}}) {
    auto cfg = loadConfigString(std::string("delivery:\n  destination_rate: \"") + c.text + "\"\n", "t.yaml");
    ASSERT_TRUE(cfg) << c.text << ": " << cfg.message();
    EXPECT_DOUBLE_EQ(cfg.value()->delivery.destinationRate, c.want) << "destination_rate " << c.text;
  }
}

TEST(Config, IdentityHeaderEmptyIsOffAndNamesAreChecked) {
  auto def = loadConfigString("", "t.yaml");
  ASSERT_TRUE(def) << def.message();
  EXPECT_EQ(def.value()->relayd.identityHeader, "X-Sluice-Auth");
  auto off = loadConfigString("relayd:\n  identity_header: \"\"\n", "t.yaml");
  ASSERT_TRUE(off) << off.message();
  EXPECT_EQ(off.value()->relayd.identityHeader, "") << "identity_header: \"\" must switch it off";
  auto other = loadConfigString("relayd:\n  identity_header: X-Customer\n", "t.yaml");
  ASSERT_TRUE(other) << other.message();
  EXPECT_EQ(other.value()->relayd.identityHeader, "X-Customer");
  for (const char* bad : {"'X Sluice'", "'X-Sluice-Auth:'", "\"X-\\u00e9\""}) {
    auto cfg = loadConfigString(std::string("relayd:\n  identity_header: ") + bad + "\n", "t.yaml");
    EXPECT_FALSE(cfg) << "identity_header " << bad << " accepted";
  }
}

TEST(Config, ReportsAllErrorsAtOnce) {
  auto cfg = loadConfigString("bogus: 1\npolicyd:\n  idle_timeout: x\n  nope: 2\n", "t.yaml");
  ASSERT_FALSE(cfg);
  int lines = 1;
  for (char ch : cfg.message()) lines += ch == '\n';
  EXPECT_EQ(lines, 3) << cfg.message();
}

TEST(Action, ParseTable) {
  struct Case { const char* in; bool ok; Action::Kind kind; bool refuses; bool temporary; };
  const Case cases[] = {
      {"DUNNO", true, Action::Kind::kDunno, false, false},
      {"defer_if_permit over limit", true, Action::Kind::kDeferIfPermit, true, true},
      {"REJECT", true, Action::Kind::kReject, true, false},
      {"HOLD spooled for review", true, Action::Kind::kHold, false, false},
      {"WARN", true, Action::Kind::kWarn, false, false},
      {"PREPEND X-Sluice: over", true, Action::Kind::kPrepend, false, false},
      {"PREPEND nocolon", false, Action::Kind::kDunno, false, false},
      {"450 4.7.1 slow", true, Action::Kind::kCode, true, true},
      {"550 5.7.1 no", true, Action::Kind::kCode, true, false},
      {"250 ok", false, Action::Kind::kDunno, false, false},
      {"45 x", false, Action::Kind::kDunno, false, false},
      {"450 5.7.1 mismatch", false, Action::Kind::kDunno, false, false},
      {"", false, Action::Kind::kDunno, false, false},
      {"FILTER smtp:x", false, Action::Kind::kDunno, false, false},
  };
  for (const auto& c : cases) {
    auto a = parseAction(c.in);
    ASSERT_EQ(static_cast<bool>(a), c.ok) << "parseAction(\"" << c.in << "\")" << (a ? "" : ": " + a.message());
    if (!c.ok) continue;
    EXPECT_EQ(a->kind, c.kind) << c.in;
    EXPECT_EQ(a->refuses(), c.refuses) << c.in;
    EXPECT_EQ(a->temporary(), c.temporary) << c.in;
  }
}

TEST(Action, ExpandSanitisesValues) {
  auto a = parseAction("550 5.1.1 <{recipient}> is {reason} {unknown}");
  ASSERT_TRUE(a);
  std::string got = expandAction(*a, {{"recipient", "a@b\r\nX"}, {"reason", "gone"}});
  EXPECT_EQ(got, "550 5.1.1 <a@b??X> is gone {unknown}");
}

}  // namespace
}  // namespace sluice::config
