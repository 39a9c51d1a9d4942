// delivery_test.cc - the parts of relay-core/delivery.cc a reload (SIGHUP) rebuilds, without a
// running delivery: Delivery::makeClientTls (the outbound TLS contexts: delivery.tls_ca_file
// loaded, a missing or unreadable CA file refused with a message naming the key) and
// events::webhookEndpoints, Delivery::webhookOptions (the events section as the sender and outbox take it).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "delivery.h"
#include "events/webhook_config.h"

namespace sluice::relayd {
namespace {

std::string tempDir(const std::string& name) {
  auto d = std::filesystem::path(::testing::TempDir()) / ("delivery_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// A self-signed P-256 certificate in PEM, written to `path` (a CA file of one certificate).
bool writeSelfSigned(const std::string& path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  bool ok = key != nullptr && x != nullptr;
  if (ok) {
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("test CA"), -1, -1, 0);
    X509_set_issuer_name(x, n);
    ok = X509_sign(x, key, EVP_sha256()) > 0;
  }
  if (ok) {
    FILE* f = std::fopen(path.c_str(), "w");
    ok = f != nullptr && PEM_write_X509(f, x) == 1;
    if (f) std::fclose(f);
  }
  X509_free(x);
  EVP_PKEY_free(key);
  return ok;
}

TEST(DeliveryTest, MakeClientTlsLoadsTheCaFileOrRefusesIt) {
  auto dir = tempDir("tls");
  config::DeliveryConfig dc;
  auto system = Delivery::makeClientTls(dc);
  ASSERT_TRUE(system.ok()) << "no tls_ca_file: the system store; got " << system.message();
  EXPECT_NE(system->verify, nullptr);
  EXPECT_NE(system->noVerify, nullptr);

  ASSERT_TRUE(writeSelfSigned(dir + "/ca.pem"));
  dc.tlsCaFile = dir + "/ca.pem";
  auto good = Delivery::makeClientTls(dc);
  ASSERT_TRUE(good.ok()) << good.message();
  X509_STORE* store = SSL_CTX_get_cert_store(good->verify->native_handle());
  EXPECT_EQ(sk_X509_OBJECT_num(X509_STORE_get0_objects(store)), 1) << "the CA file's one certificate is loaded";
  EXPECT_NE(good->verify, system->verify) << "new contexts each time (a reload replaces them)";

  dc.tlsCaFile = dir + "/missing.pem";
  auto missing = Delivery::makeClientTls(dc);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("delivery.tls_ca_file " + dir + "/missing.pem"), std::string::npos)
      << "got: " << missing.message();

  std::ofstream(dir + "/garbage.pem") << "not a certificate\n";
  dc.tlsCaFile = dir + "/garbage.pem";
  auto garbage = Delivery::makeClientTls(dc);
  ASSERT_FALSE(garbage.ok()) << "a CA file without a certificate is refused";
  EXPECT_NE(garbage.message().find("delivery.tls_ca_file"), std::string::npos) << "got: " << garbage.message();
  std::filesystem::remove_all(dir);
}

TEST(DeliveryTest, WebhookEndpointsAndOptionsFromTheEventsSection) {
  config::EventsConfig ec;
  ec.webhooks.push_back({});
  ec.webhooks[0].url = "http://127.0.0.1:1/a";
  ec.webhooks[0].secret = "s1";
  ec.webhooks[0].types = {"delivered", "bounced"};
  ec.webhooks.push_back({});
  ec.webhooks[1].url = "http://127.0.0.1:1/b";
  ec.webhooks[1].secret = "s2";
  ec.webhookTimeoutMs = 1234;
  ec.webhookInitialBackoffMs = 2000;
  ec.webhookMaxBackoffMs = 9000;
  ec.webhookMaxAgeMs = 60000;
  auto eps = events::webhookEndpoints(ec);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].url, "http://127.0.0.1:1/a");
  EXPECT_EQ(eps[0].secret, "s1");
  EXPECT_TRUE(eps[0].wants(events::EventType::kBounced));
  EXPECT_FALSE(eps[0].wants(events::EventType::kDeferred));
  EXPECT_TRUE(eps[1].wants(events::EventType::kDeferred)) << "no types: every type";
  auto wo = Delivery::webhookOptions(ec);
  EXPECT_EQ(wo.timeoutMs, 1234);
  EXPECT_EQ(wo.initialBackoffMs, 2000);
  EXPECT_EQ(wo.maxBackoffMs, 9000);
  EXPECT_EQ(wo.maxAgeMs, 60000);
}

}  // namespace
}  // namespace sluice::relayd
