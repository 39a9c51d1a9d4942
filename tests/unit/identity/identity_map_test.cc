// identity_map_test.cc - tests for lib/identity/identity_map.h: sender patterns, protected domains.
#include "identity/identity_map.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

config::IdentityConfig identity(std::vector<std::string> users, std::vector<std::string> senders,
                                 std::vector<std::string> nets = {}) {
  config::IdentityConfig id;
  id.name = users.empty() ? "net" : users[0];
  id.saslUsernames = std::move(users);
  id.senders = std::move(senders);
  for (const auto& n : nets) id.clientNetworks.push_back(*parseCidr(n));
  return id;
}

TEST(IdentityMap, OwnsTable) {
  auto id = identity({"app1"}, {"example.com", "@mail.example.org", "*.corp.example", "alerts@example.net",
                                "app-*@example.info"});
  struct Case { const char* sender; bool want; };
  const Case cases[] = {
      {"a@example.com", true},          {"A@EXAMPLE.COM", true},        {"a@sub.example.com", false},
      {"x@mail.example.org", true},     {"x@example.org", false},       {"x@eu.corp.example", true},
      {"x@corp.example", false},        {"alerts@example.net", true},   {"other@example.net", false},
      {"app-7@example.info", true},     {"app@example.info", false},    {"a@example.com.", true},
      {"no-at-sign", false},            {"@example.com", false},        {"a@evil-example.com", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(IdentityMap::owns(id, c.sender), c.want) << "owns(app1, " << c.sender << ")";
  }
}

TEST(IdentityMap, ProtectedDomains) {
  IdentityMap m({identity({"app1"}, {"example.com", "*.corp.example", "alerts@example.net"})});
  EXPECT_TRUE(m.isProtectedDomain("example.com"));
  EXPECT_TRUE(m.isProtectedDomain("EXAMPLE.com"));
  EXPECT_TRUE(m.isProtectedDomain("eu.corp.example"));
  EXPECT_TRUE(m.isProtectedDomain("example.net")) << "a domain named in an address pattern is protected";
  EXPECT_FALSE(m.isProtectedDomain("corp.example"));
  EXPECT_FALSE(m.isProtectedDomain("unrelated.example"));
}

TEST(IdentityMap, LookupByUserAndNetwork) {
  IdentityMap m({identity({"app1", "app1-alt"}, {"a.example"}), identity({"app1"}, {"b.example"}),
                 identity({}, {"c.example"}, {"192.0.2.0/24"})});
  EXPECT_EQ(m.forSaslUser("app1").size(), 2u);
  EXPECT_EQ(m.forSaslUser("app1-alt").size(), 1u);
  EXPECT_TRUE(m.forSaslUser("nobody").empty());
  EXPECT_EQ(m.forClient(*parseIp("192.0.2.9")).size(), 1u);
  EXPECT_TRUE(m.forClient(*parseIp("198.51.100.1")).empty());
}

TEST(DomainOf, Table) {
  EXPECT_EQ(domainOf("a@Example.COM"), "example.com");
  EXPECT_EQ(domainOf("a@b@c.example"), "c.example");
  EXPECT_EQ(domainOf(""), "");
  EXPECT_EQ(domainOf("postmaster"), "");
}

}  // namespace
}  // namespace sluice
