// dkim_test_util.h - helpers shared by the lib/dkim tests: corpus paths, file I/O, temp key files,
// DKIM tag parsing and an OpenSSL verification of a b= value against a DNS key record (the
// independent check that a signature made with our canonicalization is the published one).
#pragma once

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/strings.h"
#include "dkim/canon.h"
#include "dkim/dkim_key.h"

namespace sluice::dkim::testing {

inline std::string corpus(const std::string& rel) {
  return std::string(SLUICE_SHARED_DIR) + "/corpus/dkim/" + rel;
}

// A file that cannot be opened is an error with its path, not an empty string: the corpus lives
// in ../shared beside the checkout (SLUICE_SHARED_DIR), and a checkout without it must say so
// rather than fail later on an empty JSON text.
inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " (the DKIM corpus is read from SLUICE_SHARED_DIR = " + SLUICE_SHARED_DIR + ")");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A private temp directory, removed with everything in it at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-dkim-test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Writes a file with the given mode; returns its path.
  std::string write(const std::string& name, std::string_view content, mode_t mode = 0600) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(content.data(), static_cast<std::streamsize>(content.size()));
    ::chmod(p.c_str(), mode);
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string stripWhitespace(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  }
  return out;
}

// Tags of a DKIM-Signature field (name -> value with FWS kept; the field name is skipped).
inline std::map<std::string, std::string> parseTags(std::string_view field) {
  std::map<std::string, std::string> tags;
  size_t colon = field.find(':');
  std::string_view rest = colon == std::string_view::npos ? field : field.substr(colon + 1);
  for (std::string_view t : split(rest, ';')) {
    size_t eq = t.find('=');
    if (eq == std::string_view::npos) continue;
    tags[stripWhitespace(t.substr(0, eq))] = std::string(t.substr(eq + 1));
  }
  return tags;
}

inline std::vector<std::string> parseHList(std::string_view h) {
  std::vector<std::string> out;
  const std::string names = stripWhitespace(h);
  for (std::string_view n : split(names, ':')) out.emplace_back(n);
  return out;
}

inline std::string digestB64(const Sha256Digest& d) {
  return base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// Verifies base64 signature `b` over `data` (rsa-sha256 or ed25519-sha256) with the p= of a key
// record. RSASSA-PKCS1-v1_5 and Ed25519 are deterministic: a pass means that signing `data` with
// the private key gives exactly `b`.
inline bool verifyWithRecord(std::string_view record, bool ed25519, std::string_view data, std::string_view b) {
  std::string p;
  for (std::string_view t : split(record, ';')) {
    std::string_view tt = trim(t);
    if (startsWith(tt, "p=")) p = std::string(tt.substr(2));
  }
  auto der = base64Decode(p);
  auto sig = base64Decode(b);
  auto digest = sha256(data);
  if (!der || !sig || !digest) return false;
  EVP_PKEY* pkey = nullptr;
  if (ed25519) {
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                       reinterpret_cast<const unsigned char*>(der->data()), der->size());
  } else {
    const auto* q = reinterpret_cast<const unsigned char*>(der->data());
    pkey = d2i_PUBKEY(nullptr, &q, static_cast<long>(der->size()));
  }
  if (pkey == nullptr) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = false;
  const auto* s = reinterpret_cast<const unsigned char*>(sig->data());
  if (ed25519) {
    ok = EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pkey) == 1 &&
         EVP_DigestVerify(md, s, sig->size(), digest->data(), digest->size()) == 1;
  } else {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pkey, nullptr);
    ok = ctx && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_verify(ctx, s, sig->size(), digest->data(), digest->size()) == 1;
    EVP_PKEY_CTX_free(ctx);
  }
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pkey);
  return ok;
}

}  // namespace sluice::dkim::testing
