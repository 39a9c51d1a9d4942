// key_record_test.cc - the DKIM key record checks of `sluicectl dkim check`: syntax as verifiers
// read it (RFC 6376 3.6.1, RFC 8463) and the comparison with a private key.
#include "dkim/key_record.h"

#include <gtest/gtest.h>

namespace sluice::dkim {
namespace {

std::string recordOf(const DkimKey& k) {
  auto r = publicKeyRecord(k);
  EXPECT_TRUE(r) << r.message();
  return r ? r.value() : "";
}

TEST(KeyRecord, GoodRecordsMatchTheirKeys) {
  auto rsa = parseKey(generateKey(KeyType::kRsa, 2048).value(), {}, "rsa");
  auto ed = parseKey(generateKey(KeyType::kEd25519).value(), {}, "ed");
  ASSERT_TRUE(rsa && ed);
  auto r = checkKeyRecord(recordOf(rsa.value()));
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.bits, 2048);
  EXPECT_EQ(compareWithKey(r, rsa.value()), "");
  auto e = checkKeyRecord(recordOf(ed.value()) + ";");  // a trailing ';' is fine
  EXPECT_TRUE(e.problems.empty());
  EXPECT_EQ(e.bits, 256);
  EXPECT_EQ(compareWithKey(e, ed.value()), "");
  EXPECT_NE(compareWithKey(r, ed.value()), "") << "k= differs";
  auto rsa2 = parseKey(generateKey(KeyType::kRsa, 2048).value(), {}, "rsa2");
  EXPECT_NE(compareWithKey(r, rsa2.value()), "") << "another key";
  // Folded p= (white space inside) still parses.
  std::string folded = recordOf(rsa.value());
  folded.insert(folded.size() - 10, " \t ");
  EXPECT_TRUE(checkKeyRecord(folded).problems.empty());
}

TEST(KeyRecord, Problems) {
  struct Case {
    const char* record;
    const char* problem;  // a substring of the first problem
  };
  for (const auto& c : std::vector<Case>{
           {"v=DKIM1; k=rsa; p=", "revoked"},
           {"v=DKIM1; k=rsa", "no p= tag"},
           {"v=DKIM2; p=AAAA", "must be DKIM1"},
           {"k=rsa; v=DKIM1; p=AAAA", "v= must be the first tag"},
           {"v=DKIM1; k=dsa; p=AAAA", "unknown key type"},
           {"v=DKIM1; p=AAAA; p=AAAA", "appears twice"},
           {"v=DKIM1; h=sha1; p=AAAA", "excludes sha256"},
           {"v=DKIM1; s=tlsrpt; p=AAAA", "does not allow email"},
           {"v=DKIM1; k=rsa; p=%%%", "not valid base64"},
           {"v=DKIM1; k=rsa; p=AAAA", "not an RSA public key"},
           {"v=DKIM1; k=ed25519; p=AAAA", "32 bytes"},
           {"v=DKIM1; garbage; p=AAAA", "not tag=value"},
       }) {
    auto r = checkKeyRecord(c.record);
    ASSERT_FALSE(r.problems.empty()) << c.record;
    bool found = false;
    for (const auto& p : r.problems) found = found || p.find(c.problem) != std::string::npos;
    EXPECT_TRUE(found) << c.record << ": " << r.problems[0];
  }
  auto t = checkKeyRecord("v=DKIM1; t=y:s; p=");
  EXPECT_TRUE(t.testing);
  EXPECT_FALSE(t.notes.empty());
}

}  // namespace
}  // namespace sluice::dkim
