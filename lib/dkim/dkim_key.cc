// dkim_key.cc - loading, checking, publishing and generating DKIM keys (see dkim_key.h).
#include "dkim/dkim_key.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/privileges.h"
#include "base/strings.h"

namespace sluice::dkim {
namespace {

constexpr size_t kMaxKeyFileBytes = 64 * 1024;
constexpr size_t kEd25519SeedBytes = 32;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

// The oldest queued OpenSSL error as text (for our messages); clears the queue.
std::string opensslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

int refusePassword(char*, int, int, void*) { return -1; }  // never prompt on a terminal

Result<EVP_PKEY*> parsePem(std::string_view text, const std::string& src) {
  if (text.find("ENCRYPTED") != std::string_view::npos) {
    return makeError("key " + src + " is encrypted; DKIM keys must be stored unencrypted (mode 0600)");
  }
  if (text.find("PRIVATE KEY-----") == std::string_view::npos) {
    return makeError("key " + src + " holds no private key (a public key or certificate?)");
  }
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return makeError("key " + src + ": " + opensslError());
  EVP_PKEY* p = PEM_read_bio_PrivateKey(bio.get(), nullptr, refusePassword, nullptr);
  if (p == nullptr) return makeError("key " + src + ": not a valid PEM private key (" + opensslError() + ")");
  return p;
}

Result<EVP_PKEY*> parseSeed(std::string_view text, const std::string& src) {
  auto seed = base64Decode(text);
  if (!seed || seed->size() != kEd25519SeedBytes) {
    if (seed) OPENSSL_cleanse(seed->data(), seed->size());
    return makeError("key " + src + ": neither a PEM private key nor a base64 Ed25519 seed (32 bytes)");
  }
  EVP_PKEY* p = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed->data()), seed->size());
  OPENSSL_cleanse(seed->data(), seed->size());
  if (p == nullptr) return makeError("key " + src + ": bad Ed25519 seed (" + opensslError() + ")");
  return p;
}

Result<std::string> readKeyFile(const std::string& path, bool checkPermissions) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 && errno == EACCES) {
    // Keys belong to run_as_user (the daemon opens them after dropping root), mode 0600.
    return makeError("key file " + path + ": permission denied for " + effectiveUserDescription() +
                     ", who runs this daemon; keys must belong to that user, mode 0600");
  }
  if (fd < 0) return makeError("key file " + path + ": " + std::strerror(errno));
  struct stat st {};
  std::string err;
  if (::fstat(fd, &st) != 0) {
    err = "key file " + path + ": " + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    err = "key file " + path + " is not a regular file";
  } else if (checkPermissions && (st.st_mode & 077) != 0) {
    err = "key file " + path + " is readable by group or others (mode " + modeString(st.st_mode) +
          "); chmod 600 it";
  } else if (static_cast<size_t>(st.st_size) > kMaxKeyFileBytes) {
    err = "key file " + path + " is larger than 64 KiB: not a DKIM key";
  }
  std::string text;
  if (err.empty()) {
    text.resize(kMaxKeyFileBytes + 1);
    size_t got = 0;
    while (got < text.size()) {
      ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) err = "key file " + path + ": " + std::strerror(errno);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got > kMaxKeyFileBytes) err = "key file " + path + " is larger than 64 KiB: not a DKIM key";
    text.resize(got);
  }
  ::close(fd);
  if (!err.empty()) {
    OPENSSL_cleanse(text.data(), text.size());
    return makeError(err);
  }
  return text;
}

}  // namespace

void DkimKey::Free::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
void DkimKey::Free::operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }

DkimKey::DkimKey(EVP_PKEY* p, KeyType t, int bits, std::string source)
    : pkey_(p), type_(t), bits_(bits), source_(std::move(source)) {
  if (t != KeyType::kRsa) return;
  // Making and initialising a context fetches the algorithm from the provider each time; a
  // template dup()ed per signature does not.
  std::unique_ptr<EVP_PKEY_CTX, Free> ctx(EVP_PKEY_CTX_new(p, nullptr));
  if (ctx && EVP_PKEY_sign_init(ctx.get()) > 0 && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) > 0 &&
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) > 0) {
    rsaSign_ = std::move(ctx);
  }
  ERR_clear_error();
}

const char* toString(KeyType t) { return t == KeyType::kRsa ? "rsa" : "ed25519"; }
const char* algorithmName(KeyType t) { return t == KeyType::kRsa ? "rsa-sha256" : "ed25519-sha256"; }

std::optional<KeyType> parseKeyType(std::string_view s) {
  if (iequals(s, "rsa")) return KeyType::kRsa;
  if (iequals(s, "ed25519")) return KeyType::kEd25519;
  return std::nullopt;
}

Result<DkimKey> loadKey(const std::string& path, const KeyLoadOptions& options) {
  auto text = readKeyFile(path, options.checkPermissions);
  if (!text) return text.error();
  auto key = parseKey(*text, options, path);
  OPENSSL_cleanse(text->data(), text->size());
  return key;
}

Result<DkimKey> parseKey(std::string_view text, const KeyLoadOptions& options, std::string_view source) {
  std::string src(source);
  std::string_view t = trim(text);
  auto parsed = t.find("-----BEGIN") != std::string_view::npos ? parsePem(t, src) : parseSeed(t, src);
  if (!parsed) return parsed.error();
  EVP_PKEY* p = *parsed;
  int id = EVP_PKEY_get_base_id(p);
  if (id == EVP_PKEY_ED25519) return DkimKey(p, KeyType::kEd25519, 256, std::move(src));
  if (id == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(p);
    if (bits < options.minRsaBits) {
      EVP_PKEY_free(p);
      return makeError("RSA key " + src + " has " + std::to_string(bits) + " bits; at least " +
                       std::to_string(options.minRsaBits) + " are required (make a new one)");
    }
    return DkimKey(p, KeyType::kRsa, bits, std::move(src));
  }
  const char* name = EVP_PKEY_get0_type_name(p);
  std::string typeName = name ? name : "unknown";
  EVP_PKEY_free(p);
  return makeError("key " + src + " is of unsupported type " + typeName + " (DKIM signs with RSA or Ed25519)");
}

Result<std::string> publicKeyRecord(const DkimKey& key) {
  std::string der;
  if (key.type() == KeyType::kEd25519) {
    der.resize(32);
    size_t len = der.size();
    if (EVP_PKEY_get_raw_public_key(key.pkey(), reinterpret_cast<unsigned char*>(der.data()), &len) != 1) {
      return makeError("key " + key.source() + ": " + opensslError());
    }
    der.resize(len);
  } else {
    int len = i2d_PUBKEY(key.pkey(), nullptr);
    if (len <= 0) return makeError("key " + key.source() + ": " + opensslError());
    der.resize(static_cast<size_t>(len));
    auto* out = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_PUBKEY(key.pkey(), &out) != len) return makeError("key " + key.source() + ": " + opensslError());
  }
  return std::string("v=DKIM1; k=") + toString(key.type()) + "; p=" + base64Encode(der);
}

Result<std::string> generateKey(KeyType type, int bits) {
  EVP_PKEY* p = nullptr;
  if (type == KeyType::kRsa) {
    if (bits < 2048 || bits > 8192) return makeError("RSA key size must be 2048..8192 bits");
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  } else {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  if (p == nullptr) return makeError("key generation failed: " + opensslError());
  std::unique_ptr<EVP_PKEY, PkeyFree> owned(p);
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), p, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return makeError("key generation failed: " + opensslError());
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(n));
  OPENSSL_cleanse(data, static_cast<size_t>(n));
  return pem;
}

// ---------------------------------------------------------------------------------------------
// base64

std::string base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int nbits = 0;
  size_t chars = 0;
  size_t pad = 0;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') v = -1;
    else return std::nullopt;
    ++chars;
    if (v < 0) {
      if (++pad > 2) return std::nullopt;
      continue;
    }
    if (pad > 0) return std::nullopt;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out += static_cast<char>((acc >> nbits) & 0xff);
    }
  }
  if (chars % 4 != 0) return std::nullopt;
  return out;
}

}  // namespace sluice::dkim
