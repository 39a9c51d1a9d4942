// dkim_key.h - DKIM private keys: loaded and parsed once (at start and on reload), then shared
// read-only by every signature. The only module that reads key files, so that key handling can
// later move into a process of its own (as OpenSMTPD's ca.c).
//
// Key files read:
//   PEM RSA, PKCS#1 ("BEGIN RSA PRIVATE KEY") or PKCS#8 ("BEGIN PRIVATE KEY");
//   PEM Ed25519, PKCS#8 ("BEGIN PRIVATE KEY");
//   a raw Ed25519 seed: one line of base64 that decodes to exactly 32 bytes (RFC 8463 A.1 form).
// Refused, with a message a sysadmin can act on: a file whose mode has any group/other bit
// (mode & 077, as opendkim refuses), a non-regular file, a file over 64 KiB, encrypted PEM,
// public keys, RSA keys under KeyLoadOptions::minRsaBits (2048; RFC 8301 is 1024 but 2048 is
// the modern floor), and any other key type.
//
// Invariants: a DkimKey always holds a usable private key of type kRsa or kEd25519. An OpenSSL
// EVP_PKEY may be used by several threads at once for signing (each with its own contexts, which
// for RSA are copies of the key's read-only template).
#pragma once

#include <openssl/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::dkim {

enum class KeyType { kRsa, kEd25519 };

const char* toString(KeyType t);             // "rsa" / "ed25519" (the k= tag)
const char* algorithmName(KeyType t);        // "rsa-sha256" / "ed25519-sha256" (the a= tag)
std::optional<KeyType> parseKeyType(std::string_view s);  // "rsa" / "ed25519"

struct KeyLoadOptions {
  bool checkPermissions = true;  // false only in tests (corpus files are mode 0444)
  int minRsaBits = 2048;         // tests of the RFC examples lower this to 1024
};

class DkimKey {
 public:
  KeyType type() const { return type_; }
  int bits() const { return bits_; }
  const std::string& source() const { return source_; }  // the file name (for log lines)
  EVP_PKEY* pkey() const { return pkey_.get(); }
  // RSA: a signing context set up once (RSASSA-PKCS1-v1_5, SHA-256) for EVP_PKEY_CTX_dup(), which
  // takes it const and so may be called from several threads at once; null for Ed25519 or when
  // OpenSSL could not set it up (signers then make their own).
  const EVP_PKEY_CTX* rsaSignTemplate() const { return rsaSign_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* p) const;
    void operator()(EVP_PKEY_CTX* c) const;
  };
  friend Result<DkimKey> parseKey(std::string_view, const KeyLoadOptions&, std::string_view);
  DkimKey(EVP_PKEY* p, KeyType t, int bits, std::string source);

  std::unique_ptr<EVP_PKEY, Free> pkey_;
  std::unique_ptr<EVP_PKEY_CTX, Free> rsaSign_;
  KeyType type_;
  int bits_;
  std::string source_;
};

// Reads and parses a key file (see above).
Result<DkimKey> loadKey(const std::string& path, const KeyLoadOptions& options = {});
// Parses key text already in memory; `source` names it in error messages.
Result<DkimKey> parseKey(std::string_view text, const KeyLoadOptions& options,
                         std::string_view source);

// The DNS TXT value publishing the public half: "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>" or
// "v=DKIM1; k=ed25519; p=<32 raw bytes>" (RFC 6376 3.6.1, RFC 8463 4).
Result<std::string> publicKeyRecord(const DkimKey& key);

// A new private key in PEM (PKCS#8): RSA of `bits` (2048..8192) or Ed25519 (bits ignored).
Result<std::string> generateKey(KeyType type, int bits = 2048);

// Base64 (RFC 4648, with padding). decode skips ASCII white space (folded tags) and fails on
// anything else that is not base64.
std::string base64Encode(std::string_view data);
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace sluice::dkim
