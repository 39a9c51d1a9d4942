// net_addr_test.cc - tests for lib/base/net_addr.h.
#include "base/net_addr.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Cidr, Contains) {
  struct Case { const char* net; const char* addr; bool want; };
  const Case cases[] = {
      {"192.0.2.0/24", "192.0.2.77", true},  {"192.0.2.0/24", "192.0.3.1", false},
      {"192.0.2.9", "192.0.2.9", true},      {"192.0.2.9", "192.0.2.10", false},
      {"10.0.0.0/8", "10.255.1.1", true},    {"0.0.0.0/0", "203.0.113.5", true},
      {"2001:db8::/32", "2001:db8:1::5", true}, {"2001:db8::/32", "2001:db9::1", false},
      {"192.0.2.0/24", "::ffff:192.0.2.1", true}, {"192.0.2.0/25", "192.0.2.200", false},
      {"192.0.2.77/24", "192.0.2.1", true},  // host bits in the network are ignored
  };
  for (const auto& c : cases) {
    auto n = parseCidr(c.net);
    auto a = parseIp(c.addr);
    ASSERT_TRUE(n && a) << c.net << " / " << c.addr;
    EXPECT_EQ(n->contains(*a), c.want) << c.net << " contains " << c.addr;
  }
}

TEST(Cidr, RejectsBadInput) {
  for (const char* bad : {"", "192.0.2.0/33", "2001:db8::/129", "example.com", "1.2.3.4/", "1.2.3.4/x", "300.1.1.1"}) {
    EXPECT_FALSE(parseCidr(bad)) << "parseCidr(\"" << bad << "\") should fail";
  }
}

TEST(IpAddr, ToString) {
  EXPECT_EQ(parseIp("192.0.2.1")->toString(), "192.0.2.1");
  EXPECT_EQ(parseIp("2001:DB8::1")->toString(), "2001:db8::1");
}

}  // namespace
}  // namespace sluice
