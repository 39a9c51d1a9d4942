// identity_header_test.cc - the identity header as sluice-milter owns it (identity_header.h):
// which client fields are ours to delete, the value added for an authenticated session, off.
#include "identity_header.h"

#include <gtest/gtest.h>

namespace sluice::milter {
namespace {

TEST(IdentityHeader, MatchesEverySpellingRelaydWouldBelieve) {
  IdentityHeader h("X-Sluice-Auth");
  ASSERT_TRUE(h.enabled());
  struct Case {
    const char* name;
    bool want;
  } cases[] = {{"X-Sluice-Auth", true}, {"x-sluice-auth", true}, {"X-SLUICE-AUTH", true},
               {"X-Sluice-Auth ", true},  // obsolete "name : value" (RFC 5322 4.5.3); relayd trims it
               {"\tX-Sluice-Auth", true},  {"X-Sluice-Auth2", false}, {"X-Sluice", false},
               {"Subject", false},         {"", false}};
  for (const auto& c : cases) EXPECT_EQ(h.matches(c.name), c.want) << "name \"" << c.name << "\": got " << !c.want;
}

TEST(IdentityHeader, CountsPerMessageAndAddsTheSaslLogin) {
  IdentityHeader h("X-Sluice-Auth");
  h.begin("");
  EXPECT_EQ(h.value(), "") << "unauthenticated: nothing added";
  h.seen();
  h.seen();
  EXPECT_EQ(h.instances(), 2);
  h.begin("app1");
  EXPECT_EQ(h.instances(), 0) << "a new message forgets the previous count";
  EXPECT_EQ(h.value(), "app1");
  h.begin(" app1\r\nX-Evil: 1\t");
  EXPECT_EQ(h.value(), "app1X-Evil: 1") << "never a line break in the added field";
}

TEST(IdentityHeader, EmptyNameIsOff) {
  IdentityHeader h("");
  EXPECT_FALSE(h.enabled());
  EXPECT_FALSE(h.matches(""));
  EXPECT_FALSE(h.matches("X-Sluice-Auth"));
  h.begin("app1");
  EXPECT_EQ(h.value(), "") << "off: nothing added";
  h.rename("X-Customer");
  EXPECT_TRUE(h.matches("x-customer"));
}

}  // namespace
}  // namespace sluice::milter
