// verp_test.cc - tests of lib/verp: round trip, the documented mac (first 8 base32 characters of
// HMAC-SHA256(secret, id "." index)), case folding by MTAs, '+' in the sender's local part, and
// rejection of forged or malformed addresses.
#include "verp/verp.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sluice::verp {
namespace {

const char* kSecret = "a server secret of some length!!";

TEST(Verp, RoundTrip) {
  VerpCodec c(kSecret);
  std::string a = c.encode("news+list", "01HF2K3M4N5P6Q7R", 42, "Bounce.Example.COM");
  EXPECT_EQ(a.substr(0, 10), "news+list+");
  EXPECT_NE(a.find("@bounce.example.com"), std::string::npos);
  auto d = c.decode(a);
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->local, "news+list");
  EXPECT_EQ(d->queueId, "01hf2k3m4n5p6q7r");
  EXPECT_EQ(d->rcptIndex, 42u);
  EXPECT_EQ(d->domain, "bounce.example.com");
  std::string upper = a;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_TRUE(c.decode(upper).ok());
  EXPECT_TRUE(c.decode("<" + a + ">").ok());
}

TEST(Verp, MacIsTheDocumentedHmac) {
  VerpCodec c(kSecret);
  std::string msg = "abc123.7";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, 32, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
  EXPECT_EQ(c.mac("abc123", 7), base32Lower(md, len).substr(0, 8));
  EXPECT_EQ(base32Lower(reinterpret_cast<const unsigned char*>("foobar"), 6), "mzxw6ytboi");  // RFC 4648
}

TEST(Verp, RejectsForgeriesAndJunk) {
  VerpCodec c(kSecret);
  std::string a = c.encode("s", "ID1", 3, "b.example");
  std::string otherIndex = a;
  otherIndex.replace(otherIndex.find(".3."), 3, ".4.");
  EXPECT_FALSE(c.decode(otherIndex).ok());
  EXPECT_FALSE(VerpCodec("another secret, another server!!").decode(a).ok());
  for (const char* bad : {"", "plain@example.org", "s+id.1@x.example", "s+id.x.abcdefgh@x.example",
                          "s+id.1.abcdefg@x.example", "s+.1.abcdefgh@x.example", "+id.1.abcdefgh@x.example",
                          "s+id.1.abcdefgh", "s+i-d.1.abcdefgh@x.example", "s+id.99999999999.abcdefgh@x.example"}) {
    EXPECT_FALSE(c.decode(bad).ok()) << bad;
  }
  EXPECT_TRUE(VerpCodec::looksLikeVerp("s+id.1.abcdefgh@x.example"));
  EXPECT_FALSE(VerpCodec::looksLikeVerp("plain@example.org"));
}

}  // namespace
}  // namespace sluice::verp
