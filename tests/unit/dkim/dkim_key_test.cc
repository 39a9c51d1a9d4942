// dkim_key_test.cc - tests for lib/dkim/dkim_key.h: the key-loading table (PKCS#1, PKCS#8,
// Ed25519 PEM and raw seed; refusals for group/world-readable files, RSA under 2048 bits, other key
// types, encrypted and public keys, garbage), DNS records (the RFC 6376 App. C and RFC 8463 A.2
// published records are reproduced from the example private keys), key generation, base64.
#include "dkim/dkim_key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim_test_util.h"

namespace sluice::dkim {
namespace {

using testing::corpus;
using testing::readFile;
using testing::TempDir;

const KeyLoadOptions kAllow1024{.checkPermissions = true, .minRsaBits = 1024};

std::string ecKeyPem() {
  EVP_PKEY* p = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, p, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(p);
  return pem;
}

TEST(DkimKey, LoadTable) {
  TempDir dir;
  auto rsa2048 = generateKey(KeyType::kRsa, 2048);
  auto ed = generateKey(KeyType::kEd25519);
  ASSERT_TRUE(rsa2048 && ed);
  std::string rfc1024 = readFile(corpus("rfc6376-appendix-a/brisbane.private.pem"));
  struct Case {
    std::string name;
    std::string content;
    mode_t mode;
    KeyLoadOptions options;
    std::string wantError;  // empty: loads
    KeyType wantType;
    int wantBits;
  };
  const Case cases[] = {
      {"rsa2048 pkcs8 (generated)", *rsa2048, 0600, {}, "", KeyType::kRsa, 2048},
      {"rsa2048 pkcs1 (dkimpy)", readFile(corpus("dkimpy/data/2048_testkey.key")), 0600, {}, "", KeyType::kRsa, 2048},
      {"rsa2048 pkcs8 (dkimpy)", readFile(corpus("dkimpy/data/2048_testkey_PKCS8.key")), 0400, {}, "", KeyType::kRsa, 2048},
      {"ed25519 pem", *ed, 0600, {}, "", KeyType::kEd25519, 256},
      {"ed25519 seed (RFC 8463 A.1)", readFile(corpus("rfc8463-appendix-a/ed25519.seed.b64")), 0600, {}, "",
       KeyType::kEd25519, 256},
      {"rsa1024 allowed for tests", rfc1024, 0600, kAllow1024, "", KeyType::kRsa, 1024},
      {"mode 0644", *rsa2048, 0644, {}, "is readable by group or others (mode 0644); chmod 600 it", {}, 0},
      {"mode 0640", *ed, 0640, {}, "(mode 0640); chmod 600 it", {}, 0},
      {"mode 0604", *ed, 0604, {}, "(mode 0604)", {}, 0},
      {"permission check off", *ed, 0644, {.checkPermissions = false}, "", KeyType::kEd25519, 256},
      {"rsa1024 refused", rfc1024, 0600, {}, "has 1024 bits; at least 2048 are required", {}, 0},
      {"ec key", ecKeyPem(), 0600, {}, "unsupported type EC", {}, 0},
      {"garbage", "hello world\n", 0600, {}, "neither a PEM private key nor a base64 Ed25519 seed", {}, 0},
      {"empty", "", 0600, {}, "neither a PEM private key", {}, 0},
      {"seed of 31 bytes", base64Encode(std::string(31, 'k')), 0600, {}, "Ed25519 seed (32 bytes)", {}, 0},
      {"broken pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600, {},
       "not a valid PEM private key", {}, 0},
      {"public key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 0600, {}, "holds no private key",
       {}, 0},
      {"encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", 0600, {},
       "is encrypted", {}, 0},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::string path = dir.write("key" + std::to_string(i++), c.content, c.mode);
    auto key = loadKey(path, c.options);
    if (c.wantError.empty()) {
      ASSERT_TRUE(key) << c.name << ": " << key.message();
      EXPECT_EQ(key->type(), c.wantType) << c.name;
      EXPECT_EQ(key->bits(), c.wantBits) << c.name;
      EXPECT_EQ(key->source(), path);
    } else {
      ASSERT_FALSE(key) << c.name << ": loaded, want error \"" << c.wantError << "\"";
      EXPECT_NE(key.message().find(c.wantError), std::string::npos)
          << c.name << ": got \"" << key.message() << "\", want \"" << c.wantError << "\"";
    }
  }
}

TEST(DkimKey, PermissionMessageIsExact) {
  TempDir dir;
  auto ed = generateKey(KeyType::kEd25519);
  ASSERT_TRUE(ed);
  std::string path = dir.write("k.pem", *ed, 0644);
  auto key = loadKey(path);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.message(), "key file " + path + " is readable by group or others (mode 0644); chmod 600 it");
  // The corpus files are 0444: refused unless the check is off.
  EXPECT_FALSE(loadKey(corpus("rfc8463-appendix-a/test.rsa.private.pem"), kAllow1024));
}

TEST(DkimKey, FileErrors) {
  TempDir dir;
  auto missing = loadKey(dir.path() + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("No such file"), std::string::npos) << missing.message();
  auto isDir = loadKey(dir.path(), {.checkPermissions = false});
  ASSERT_FALSE(isDir);
  EXPECT_NE(isDir.message().find("not a regular file"), std::string::npos) << isDir.message();
  auto big = loadKey(dir.write("big", std::string(70000, 'A')));
  ASSERT_FALSE(big);
  EXPECT_NE(big.message().find("larger than 64 KiB"), std::string::npos) << big.message();
}

// The public halves of the RFC example keys are the published DNS records.
TEST(DkimKey, PublicKeyRecordsMatchTheRfcs) {
  const KeyLoadOptions opts{.checkPermissions = false, .minRsaBits = 1024};
  auto brisbane = loadKey(corpus("rfc6376-appendix-a/brisbane.private.pem"), opts);
  auto test = loadKey(corpus("rfc8463-appendix-a/test.rsa.private.pem"), opts);
  auto ed = loadKey(corpus("rfc8463-appendix-a/ed25519.seed.b64"), opts);
  ASSERT_TRUE(brisbane && test && ed);
  auto p = [](std::string rec) { return rec.substr(rec.find("p=")); };
  std::string dns6376 = readFile(corpus("rfc6376-appendix-a/dns.txt"));
  std::string dns8463 = readFile(corpus("rfc8463-appendix-a/dns.txt"));
  auto r1 = publicKeyRecord(*brisbane);
  auto r2 = publicKeyRecord(*test);
  auto r3 = publicKeyRecord(*ed);
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_TRUE(startsWith(*r1, "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEB")) << *r1;
  EXPECT_NE(dns6376.find(p(*r1)), std::string::npos) << *r1;
  EXPECT_NE(dns8463.find(p(*r2)), std::string::npos) << *r2;
  EXPECT_EQ(*r3, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
}

TEST(DkimKey, GenerateKey) {
  EXPECT_FALSE(generateKey(KeyType::kRsa, 1024));
  EXPECT_FALSE(generateKey(KeyType::kRsa, 16384));
  auto ed = generateKey(KeyType::kEd25519);
  ASSERT_TRUE(ed);
  EXPECT_TRUE(startsWith(*ed, "-----BEGIN PRIVATE KEY-----")) << *ed;
  auto key = parseKey(*ed, {}, "generated");
  ASSERT_TRUE(key) << key.message();
  auto rec = publicKeyRecord(*key);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->size(), std::string("v=DKIM1; k=ed25519; p=").size() + 44);
  EXPECT_EQ(parseKeyType("ED25519"), KeyType::kEd25519);
  EXPECT_STREQ(algorithmName(KeyType::kRsa), "rsa-sha256");
}

TEST(DkimKey, Base64) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto back = base64Decode(base64Encode(s));
    ASSERT_TRUE(back) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Decode("Zm9v\r\n\t YmE="), "fooba");
  EXPECT_FALSE(base64Decode("Zm9"));
  EXPECT_FALSE(base64Decode("Zm9v!"));
  EXPECT_FALSE(base64Decode("Zg==Zg=="));
  EXPECT_FALSE(base64Decode("Z==="));
}

}  // namespace
}  // namespace sluice::dkim
