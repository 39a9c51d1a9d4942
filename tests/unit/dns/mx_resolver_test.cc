// mx_resolver_test.cc - MX resolution against a real unbound on loopback serving test zones
// (under .example: libunbound itself answers NXDOMAIN for .test, an RFC 6761 default zone):
// preference order, shuffling among equal preferences, implicit MX, null MX, NXDOMAIN, hosts
// without addresses, REFUSED and a silent server (temporary failures), and TXT lookups.
#include "dns/mx_resolver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "dns/unbound_server.h"

namespace sluice::dns {
namespace {

const char* kZones = R"(local-zone: "a.example." static
local-data: "a.example. MX 20 mx2.a.example."
local-data: "a.example. MX 10 mx1.a.example."
local-data: "mx1.a.example. A 127.0.0.2"
local-data: "mx1.a.example. AAAA ::1"
local-data: "mx2.a.example. A 127.0.0.3"
local-zone: "eq.example." static
local-data: "eq.example. MX 10 m1.eq.example."
local-data: "eq.example. MX 10 m2.eq.example."
local-data: "eq.example. MX 10 m3.eq.example."
local-data: "m1.eq.example. A 127.0.0.11"
local-data: "m2.eq.example. A 127.0.0.12"
local-data: "m3.eq.example. A 127.0.0.13"
local-zone: "implicit.example." static
local-data: "implicit.example. A 127.0.0.4"
local-zone: "null.example." static
local-data: "null.example. MX 0 ."
local-zone: "noaddr.example." static
local-data: "noaddr.example. MX 10 nowhere.noaddr.example."
local-zone: "half.example." static
local-data: "half.example. MX 10 mx.refused.example."
local-data: "half.example. MX 20 mx.half.example."
local-data: "mx.half.example. A 127.0.0.5"
local-zone: "refused.example." refuse
local-zone: "txt.example." static
local-data: 'sel._domainkey.txt.example. TXT "v=DKIM1; " "p=abc"'
)";

class MxResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dns_ = new testing::UnboundServer();
    ASSERT_TRUE(dns_->start(kZones)) << dns_->log();
  }
  static void TearDownTestSuite() {
    delete dns_;
    dns_ = nullptr;
  }
  MxResult resolve(const std::string& domain, ResolverOptions o = {}) {
    if (o.servers.empty()) o.servers = {dns_->address()};
    asio::io_context io;
    MxResolver r(io, o);
    EXPECT_TRUE(r.init());
    MxResult out;
    bool called = false;
    r.resolve(domain, [&](MxResult res) {
      out = std::move(res);
      called = true;
    });
    // Bounded: a lookup that never completes fails the test instead of hanging it (an
    // io_context that still has a wait armed on libunbound's descriptor would never go idle).
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!called && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(called) << domain;
    EXPECT_EQ(r.pending(), 0u);
    return out;
  }
  static testing::UnboundServer* dns_;
};
testing::UnboundServer* MxResolverTest::dns_ = nullptr;

TEST_F(MxResolverTest, PreferenceOrderAndAddresses) {
  auto r = resolve("A.Example.");
  ASSERT_EQ(r.status, MxResult::Status::kOk) << r.error;
  EXPECT_FALSE(r.implicit);
  ASSERT_EQ(r.hosts.size(), 2u);
  EXPECT_EQ(r.hosts[0].name, "mx1.a.example");
  EXPECT_EQ(r.hosts[0].preference, 10);
  ASSERT_EQ(r.hosts[0].addresses.size(), 2u);
  EXPECT_EQ(r.hosts[0].addresses[0].toString(), "::1") << "IPv6 first";
  EXPECT_EQ(r.hosts[0].addresses[1].toString(), "127.0.0.2");
  EXPECT_EQ(r.hosts[1].name, "mx2.a.example");
  EXPECT_EQ(r.hosts[1].addresses.at(0).toString(), "127.0.0.3");
}

TEST_F(MxResolverTest, EqualPreferencesAreShuffled) {
  std::set<std::string> firsts;
  for (int i = 0; i < 30 && firsts.size() < 2; ++i) {
    auto r = resolve("eq.example");
    ASSERT_EQ(r.hosts.size(), 3u);
    firsts.insert(r.hosts[0].name);
  }
  EXPECT_GE(firsts.size(), 2u) << "30 lookups always gave the same first host";
}

TEST_F(MxResolverTest, ImplicitNullNxdomainNoAddress) {
  auto imp = resolve("implicit.example");
  ASSERT_EQ(imp.status, MxResult::Status::kOk) << imp.error;
  EXPECT_TRUE(imp.implicit);
  ASSERT_EQ(imp.hosts.size(), 1u);
  EXPECT_EQ(imp.hosts[0].addresses.at(0).toString(), "127.0.0.4");

  auto null = resolve("null.example");
  EXPECT_EQ(null.status, MxResult::Status::kNullMx);
  EXPECT_TRUE(null.permanent());
  EXPECT_NE(null.error.find("RFC 7505"), std::string::npos);

  auto nx = resolve("nosuch.a.example");
  EXPECT_EQ(nx.status, MxResult::Status::kNxDomain);
  EXPECT_TRUE(nx.permanent());

  auto none = resolve("noaddr.example");
  EXPECT_EQ(none.status, MxResult::Status::kNoAddress) << none.error;
  EXPECT_TRUE(none.permanent());
}

TEST_F(MxResolverTest, TemporaryFailures) {
  auto refused = resolve("x.refused.example");
  EXPECT_EQ(refused.status, MxResult::Status::kTempFail);
  EXPECT_FALSE(refused.permanent());
  // The upstream's REFUSED reaches us as SERVFAIL (libunbound as a forwarder).
  EXPECT_NE(refused.error.find("SERVFAIL"), std::string::npos) << refused.error;

  // One MX host fails temporarily, the other resolves: deliver to the one that works.
  auto half = resolve("half.example");
  ASSERT_EQ(half.status, MxResult::Status::kOk) << half.error;
  ASSERT_EQ(half.hosts.size(), 1u);
  EXPECT_EQ(half.hosts[0].name, "mx.half.example");

  // A server that never answers: the lookup times out, a temporary failure.
  ResolverOptions silent;
  silent.servers = {"127.0.0.1@" + std::to_string(testing::RedisServer::freePort())};
  silent.timeoutMs = 300;
  auto t0 = std::chrono::steady_clock::now();
  auto to = resolve("a.example", silent);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(to.status, MxResult::Status::kTempFail);
  EXPECT_LT(ms, 3000) << "the timeout bounds the lookup";
}

TEST_F(MxResolverTest, TxtLookup) {
  ResolverOptions o;
  o.servers = {dns_->address()};
  auto t = lookupTxt("sel._domainkey.txt.example", o);
  ASSERT_EQ(t.status, TxtAnswer::Status::kOk) << t.error;
  ASSERT_EQ(t.records.size(), 1u);
  EXPECT_EQ(t.records[0], "v=DKIM1; p=abc") << "the strings of one record are joined";
  EXPECT_EQ(lookupTxt("missing.txt.example", o).status, TxtAnswer::Status::kNxDomain);
  EXPECT_EQ(lookupTxt("txt.example", o).status, TxtAnswer::Status::kNoData);
}

TEST(MxRdata, Parse) {
  int pref = 0;
  std::string host;
  EXPECT_TRUE(parseMxRdata(std::string("\x00\x0a\x02mx\x07" "example\x03" "com\x00", 18), &pref, &host));
  EXPECT_EQ(pref, 10);
  EXPECT_EQ(host, "mx.example.com");
  EXPECT_TRUE(parseMxRdata(std::string("\x00\x00\x00", 3), &pref, &host));
  EXPECT_EQ(host, "") << "the null MX target";
  EXPECT_FALSE(parseMxRdata(std::string("\x00\x0a\x05mx", 5), &pref, &host)) << "truncated";
  EXPECT_FALSE(parseMxRdata(std::string("\x00\x0a\xc0\x0c", 4), &pref, &host)) << "compression pointer";
}

}  // namespace
}  // namespace sluice::dns
