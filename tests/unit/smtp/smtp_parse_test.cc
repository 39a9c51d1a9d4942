// smtp_parse_test.cc - RFC 5321/6531 command and path parsing: what is accepted, what is refused
// and why, and the address tricks open-relay tests use.
#include "smtp/smtp_parse.h"

#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

TEST(SmtpParse, Verbs) {
  EXPECT_EQ(parseCommand("ehlo client.example").verb, Verb::kEhlo);
  EXPECT_EQ(parseCommand("EHLO client.example").arg, "client.example");
  EXPECT_EQ(parseCommand("MAIL FROM:<a@b.example>").verb, Verb::kMail);
  EXPECT_EQ(parseCommand("StartTLS").verb, Verb::kStartTls);
  EXPECT_EQ(parseCommand("BDAT 100 LAST").arg, "100 LAST");
  EXPECT_EQ(parseCommand("XYZZY").verb, Verb::kUnknown);
  EXPECT_EQ(parseCommand("").verb, Verb::kUnknown);
}

TEST(SmtpParse, Paths) {
  struct Case {
    const char* arg;
    bool rcpt;
    bool utf8;
    const char* want;  // "" = refused
  };
  for (const auto& c : std::vector<Case>{
           {"FROM:<a@b.example>", false, false, "a@b.example"},
           {"FROM:<>", false, false, ""},
           {"from:<A.B@Example.COM> SIZE=100", false, false, "A.B@example.com"},
           {"TO:<@hop1.example,@hop2.example:user@dest.example>", true, false, "user@dest.example"},
           {"TO:<\"user@other\"@dest.example>", true, false, "\"user@other\"@dest.example"},
           {"TO:<user%other.example@dest.example>", true, false, "user%other.example@dest.example"},
           {"TO:<other.example!user@dest.example>", true, false, "other.example!user@dest.example"},
           {"TO:<user@[192.0.2.1]>", true, false, "user@[192.0.2.1]"},
           {"TO:<user@[IPv6:2001:db8::1]>", true, false, "user@[ipv6:2001:db8::1]"},
           {"TO:<用户@例子.example>", true, true, "用户@例子.example"},
       }) {
    auto r = c.rcpt ? parseRcptArg(c.arg, c.utf8) : parseMailArg(c.arg, c.utf8);
    ASSERT_TRUE(r) << c.arg << ": " << r.message();
    EXPECT_EQ(r->address.str(), c.want) << c.arg;
  }
  for (const char* bad : {"TO:<>", "TO:user@dest.example", "TO:<user@dest.example.>", "TO:<user@>",
                          "TO:<@dest.example>", "TO:<user>", "TO:<user@dest..example>", "TO:<.user@dest.example>",
                          "TO:<user.@dest.example>", "TO:<us er@dest.example>", "TO:<user@[300.1.1.1]>",
                          "TO:<user@dest.example", "TO:<@hop1.example>", "TO:<@:user@dest.example>",
                          "TO:<用户@dest.example>", "TO:<a@b.example> X=1 X=2", "TO:<a@b.example>garbage",
                          "TO:<\"unterminated@dest.example>"}) {
    EXPECT_FALSE(parseRcptArg(bad, false)) << bad;
  }
  std::string longLocal(65, 'a');
  EXPECT_FALSE(parseRcptArg("TO:<" + longLocal + "@dest.example>", false));
  auto p = parseMailArg("FROM:<a@b.example> SIZE=100 BODY=8BITMIME SMTPUTF8", false);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->params.size(), 3u);
  EXPECT_EQ(p->params[0].key, "SIZE");
  EXPECT_EQ(p->params[0].value, "100");
  EXPECT_FALSE(p->params[2].hasValue);
}

TEST(SmtpParse, Xtext) {
  EXPECT_EQ(decodeXtext("rfc822+3Ba@b.example").value(), "rfc822;a@b.example");
  EXPECT_FALSE(decodeXtext("a+2"));
  EXPECT_FALSE(decodeXtext("a+zz"));
  EXPECT_EQ(encodeXtext("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(decodeXtext(encodeXtext("x=+ y")).value(), "x=+ y");
}

}  // namespace
}  // namespace sluice::smtp
