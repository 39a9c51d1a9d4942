// signing_test.cc - sluice-milter's signing table (config -> specs, broken keys, refused keys) and
// the per-message decisions of MessageContext (From: count, ownership, signing), table-driven.
#include "signing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "config/config.h"
#include "message_context.h"

namespace sluice::milter {
namespace {

std::string tempKey(const std::string& name, dkim::KeyType type, mode_t mode) {
  std::string path = ::testing::TempDir() + "/milter_" + name + ".pem";
  auto pem = dkim::generateKey(type, 2048);
  EXPECT_TRUE(pem) << pem.message();
  std::ofstream(path) << pem.value();
  ::chmod(path.c_str(), mode);
  return path;
}

std::shared_ptr<const config::Config> load(const std::string& yaml) {
  auto cfg = config::loadConfigString(yaml, "t.yaml");
  EXPECT_TRUE(cfg) << cfg.message();
  return cfg ? cfg.value() : nullptr;
}

std::string table(const std::string& rsa, const std::string& ed, const std::string& extra = "") {
  return "identities:\n"
         "  - { name: app1, sasl_usernames: [app1], senders: [example.com] }\n"
         "dkim:\n" + extra +
         "  signing_table:\n"
         "    - domain: example.com\n"
         "      signatures:\n"
         "        - { selector: rsa1, key_file: " + rsa + ", expiration: 1d }\n"
         "        - { selector: ed1, key_file: " + ed + ", body_canonicalization: simple }\n"
         "    - domain: '*.example.org'\n"
         "      sasl_username: app2\n"
         "      signatures:\n"
         "        - { domain: relay.test, selector: r, key_file: " + rsa + " }\n";
}

TEST(MilterSigning, ConfigDefaults) {
  auto cfg = load("");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->milter.listen, "unix:/var/spool/postfix/sluice/milter.sock");
  EXPECT_TRUE(cfg->dkim.keyErrorTempfail);
  EXPECT_FALSE(cfg->dkim.signUnauthenticated);
  EXPECT_TRUE(cfg->dkim.signingTable.empty());
}

TEST(MilterSigning, BadListenIsAConfigError) {
  for (const char* bad : {"127.0.0.1:10046", "inet:0@127.0.0.1", "unix:relative", "inet:10046@nohost"}) {
    auto cfg = config::loadConfigString(std::string("milter: { listen: '") + bad + "' }\n", "t.yaml");
    EXPECT_FALSE(cfg) << "listen " << bad << " accepted";
  }
  EXPECT_TRUE(config::loadConfigString("milter: { listen: 'inet:10046@127.0.0.1' }\n", "t.yaml"));
}

TEST(MilterSigning, TableGivesSpecs) {
  auto rsa = tempKey("rsa", dkim::KeyType::kRsa, 0600);
  auto ed = tempKey("ed", dkim::KeyType::kEd25519, 0400);
  auto cfg = load(table(rsa, ed));
  ASSERT_TRUE(cfg);
  auto s = Signing::build(cfg->dkim);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(s.value()->keyCount(), 2u);  // the RSA key is shared by two rules
  struct Case { const char* from; const char* user; std::vector<std::string> wantD; };
  for (const auto& c : std::vector<Case>{{"example.com", "", {"example.com", "example.com"}},
                                         {"EXAMPLE.com", "app1", {"example.com", "example.com"}},
                                         {"a.example.org", "app2", {"relay.test"}},
                                         {"a.example.org", "app1", {}},
                                         {"example.org", "app2", {}},
                                         {"other.example", "", {}}}) {
    auto plan = s.value()->lookup(c.from, c.user);
    std::vector<std::string> got;
    for (const auto& spec : plan.specs) got.push_back(spec.domain);
    EXPECT_EQ(got, c.wantD) << "From " << c.from << " user " << c.user;
    EXPECT_TRUE(plan.brokenKeys.empty());
  }
  auto plan = s.value()->lookup("example.com", "");
  ASSERT_EQ(plan.specs.size(), 2u);
  EXPECT_EQ(plan.specs[0].key->type(), dkim::KeyType::kRsa);
  EXPECT_EQ(plan.specs[0].expiration.value_or(0), 86400);
  EXPECT_EQ(plan.specs[1].key->type(), dkim::KeyType::kEd25519);
  EXPECT_EQ(plan.specs[1].bodyCanon, dkim::BodyCanon::kSimple);
  EXPECT_EQ(plan.specs[1].headerCanon, dkim::HeaderCanon::kRelaxed);
}

TEST(MilterSigning, GroupReadableKeyRefused) {
  auto rsa = tempKey("rsa644", dkim::KeyType::kRsa, 0644);
  auto ed = tempKey("ed2", dkim::KeyType::kEd25519, 0600);
  auto cfg = load(table(rsa, ed));
  ASSERT_TRUE(cfg);
  auto s = Signing::build(cfg->dkim);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("readable by group or others"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << "want one line, got: " << s.message();
}

TEST(MilterSigning, MissingKeyIsBrokenNotFatal) {
  auto ed = tempKey("ed3", dkim::KeyType::kEd25519, 0600);
  auto cfg = load(table("/nonexistent/k.pem", ed, "  key_error_action: accept\n"));
  ASSERT_TRUE(cfg);
  auto s = Signing::build(cfg->dkim);
  ASSERT_TRUE(s) << s.message();
  EXPECT_FALSE(s.value()->keyErrorTempfail());
  auto plan = s.value()->lookup("example.com", "");
  EXPECT_EQ(plan.specs.size(), 1u);
  EXPECT_EQ(plan.brokenKeys, std::vector<std::string>{"/nonexistent/k.pem"});
  EXPECT_EQ(s.value()->lookup("x.example.org", "app2").specs.size(), 0u);
}

TEST(MilterMessage, HeaderAddresses) {
  struct Case { const char* value; std::vector<std::string> want; };
  for (const auto& c : std::vector<Case>{
           {" Joe <joe@example.com>", {"joe@example.com"}},
           {" joe@example.com (Joe)", {"joe@example.com"}},
           {" \"Doe, <x@evil>\" <joe@example.com>, ann@b.example", {"joe@example.com", "ann@b.example"}},
           {" team: a@x.example, b@y.example;", {"a@x.example", "b@y.example"}}}) {
    EXPECT_EQ(headerAddresses(c.value), c.want) << "value: " << c.value;
  }
  EXPECT_EQ(milterHeaderValue("DKIM-Signature: v=1; a=x;\r\n\tb=y", false), "v=1; a=x;\n\tb=y");
  EXPECT_EQ(milterHeaderValue("DKIM-Signature: v=1;\r\n\tb=y", true), " v=1;\n\tb=y");
}

struct MessageCase {
  const char* name;
  const char* user;
  std::vector<std::pair<const char*, const char*>> headers;
  Verdict::Kind wantEoh;
  const char* wantCode;
  size_t wantSigs;
};

TEST(MilterMessage, Verdicts) {
  auto rsa = tempKey("rsa4", dkim::KeyType::kRsa, 0600);
  auto ed = tempKey("ed4", dkim::KeyType::kEd25519, 0600);
  auto cfg = load(table(rsa, ed));
  ASSERT_TRUE(cfg);
  auto s = Signing::build(cfg->dkim);
  ASSERT_TRUE(s) << s.message();
  IdentityMap ids(cfg->identities);
  using K = Verdict::Kind;
  for (const auto& c : std::vector<MessageCase>{
           {"own From signed twice", "app1", {{"From", " <a@example.com>"}, {"Subject", " hi"}}, K::kContinue, "", 2},
           {"foreign From", "app1", {{"From", " ceo@other.example"}}, K::kReject, "5.7.1", 0},
           {"foreign Sender", "app1", {{"From", " a@example.com"}, {"Sender", " x@other.example"}}, K::kReject, "5.7.1", 0},
           {"two From", "app1", {{"From", " a@example.com"}, {"From", " b@example.com"}}, K::kReject, "5.6.0", 0},
           {"no From", "app1", {{"Subject", " x"}}, K::kReject, "5.6.0", 0},
           {"unknown user", "nobody", {{"From", " a@example.com"}}, K::kReject, "5.7.1", 0}}) {
    MessageContext m(*s.value(), ids);
    EXPECT_EQ(m.beginMessage(c.user, "a@example.com").kind, K::kContinue) << c.name;
    for (const auto& [n, v] : c.headers) m.header(n, v);
    Verdict v = m.endOfHeaders();
    EXPECT_EQ(v.kind, c.wantEoh) << c.name << ": " << v.text;
    EXPECT_EQ(v.xcode, c.wantCode) << c.name;
    if (v.kind != K::kContinue) continue;
    m.body("Hello\r\n");
    std::vector<std::string> fields;
    EXPECT_EQ(m.endOfMessage(&fields).kind, K::kContinue) << c.name;
    EXPECT_EQ(fields.size(), c.wantSigs) << c.name;
  }
  MessageContext unauth(*s.value(), ids);
  EXPECT_EQ(unauth.beginMessage("", "x@example.com").kind, K::kAccept) << "unauthenticated: passed unsigned";
  EXPECT_EQ(unauth.beginMessage("", "x@example.com", false, true).kind, K::kContinue)
      << "envelope checks need every event: no early accept";
  EXPECT_EQ(unauth.endOfHeaders().kind, K::kContinue);

  // A trusted network's mail is signed without SASL, and without the ownership check.
  MessageContext trusted(*s.value(), ids);
  EXPECT_EQ(trusted.beginMessage("", "x@example.com", true).kind, K::kContinue);
  trusted.header("From", " someone@example.com");
  EXPECT_EQ(trusted.endOfHeaders().kind, K::kContinue);
  trusted.body("Hi\r\n");
  std::vector<std::string> fields;
  EXPECT_EQ(trusted.endOfMessage(&fields).kind, K::kContinue);
  EXPECT_EQ(fields.size(), 2u);
}

TEST(MilterSigning, TrustedNetworksAndHeaderLists) {
  auto rsa = tempKey("rsa5", dkim::KeyType::kRsa, 0600);
  auto ed = tempKey("ed5", dkim::KeyType::kEd25519, 0600);
  auto cfg = load(table(rsa, ed, "  trusted_networks: [192.0.2.0/24, '2001:db8::/32']\n"
                                 "  signed_headers: [From, Subject, X-Custom]\n"
                                 "  oversigned_headers: [none]\n"));
  ASSERT_TRUE(cfg);
  auto s = Signing::build(cfg->dkim);
  ASSERT_TRUE(s) << s.message();
  EXPECT_TRUE(s.value()->trustedClient(parseIp("192.0.2.9")));
  EXPECT_TRUE(s.value()->trustedClient(parseIp("2001:db8::1")));
  EXPECT_FALSE(s.value()->trustedClient(parseIp("198.51.100.1")));
  EXPECT_FALSE(s.value()->trustedClient(std::nullopt));
  auto plan = s.value()->lookup("example.com", "app1");
  ASSERT_EQ(plan.specs.size(), 2u);
  EXPECT_EQ(plan.specs[0].policy.sign, (std::vector<std::string>{"from", "subject", "x-custom"}));
  EXPECT_TRUE(plan.specs[0].policy.oversign.empty());
  auto def = load(table(rsa, ed));
  auto s2 = Signing::build(def->dkim);
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2.value()->lookup("example.com", "app1").specs[0].policy.oversign.size(),
            dkim::kDefaultOversignedHeaders.size());
  EXPECT_FALSE(config::loadConfigString("dkim: { signed_headers: [subject] }\n", "t.yaml"))
      << "a signed header list without from is refused";
  EXPECT_FALSE(config::loadConfigString("dkim: { trusted_networks: [nonsense] }\n", "t.yaml"));
  EXPECT_FALSE(config::loadConfigString("milter: { policy_service: 'localhost:10045' }\n", "t.yaml"));
  auto pol = config::loadConfigString("milter: { policy_service: '127.0.0.1:10045', policy_timeout: 2s }\n", "t.yaml");
  ASSERT_TRUE(pol) << pol.message();
  EXPECT_EQ(pol.value()->milter.policyService, "127.0.0.1:10045");
  EXPECT_EQ(pol.value()->milter.policyTimeoutMs, 2000);
  EXPECT_TRUE(pol.value()->milter.policyDefaultAction.temporary());
}

}  // namespace
}  // namespace sluice::milter
