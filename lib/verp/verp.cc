// verp.cc - VERP encode/decode with an HMAC-SHA256 mac (OpenSSL), see verp.h.
#include "verp/verp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>

#include "base/strings.h"

namespace sluice::verp {

namespace {

constexpr size_t kMacChars = 8;
constexpr size_t kMaxIdChars = 64;

bool idChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

struct Parts {
  std::string_view local, id, index, mac, domain;
};

bool split(std::string_view addr, Parts& p) {
  addr = trim(addr);
  if (!addr.empty() && addr.front() == '<' && addr.back() == '>') addr = addr.substr(1, addr.size() - 2);
  size_t at = addr.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= addr.size()) return false;
  std::string_view lp = addr.substr(0, at);
  p.domain = addr.substr(at + 1);
  size_t plus = lp.rfind('+');
  if (plus == std::string_view::npos || plus == 0) return false;
  p.local = lp.substr(0, plus);
  std::string_view tag = lp.substr(plus + 1);
  size_t d1 = tag.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : tag.find('.', d1 + 1);
  if (d2 == std::string_view::npos || tag.find('.', d2 + 1) != std::string_view::npos) return false;
  p.id = tag.substr(0, d1);
  p.index = tag.substr(d1 + 1, d2 - d1 - 1);
  p.mac = tag.substr(d2 + 1);
  if (p.id.empty() || p.id.size() > kMaxIdChars || p.mac.size() != kMacChars) return false;
  for (char c : p.id)
    if (!idChar(c)) return false;
  for (char c : p.mac)
    if (!idChar(c)) return false;
  if (p.index.empty() || p.index.size() > 9) return false;
  for (char c : p.index)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string base32Lower(const unsigned char* data, size_t n) {
  static const char* kAlpha = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kAlpha[(acc >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(kAlpha[(acc << (5 - bits)) & 31]);
  return out;
}

VerpCodec::VerpCodec(std::string secret) : secret_(std::move(secret)) {}

std::string VerpCodec::mac(std::string_view queueId, uint32_t rcptIndex) const {
  std::string msg = toLower(queueId) + "." + std::to_string(rcptIndex);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
  return base32Lower(md, len).substr(0, kMacChars);
}

std::string VerpCodec::encode(std::string_view local, std::string_view queueId, uint32_t rcptIndex,
                              std::string_view bounceDomain) const {
  return std::string(local) + "+" + toLower(queueId) + "." + std::to_string(rcptIndex) + "." +
         mac(queueId, rcptIndex) + "@" + toLower(bounceDomain);
}

bool VerpCodec::looksLikeVerp(std::string_view address) {
  Parts p;
  return split(address, p);
}

Result<VerpAddress> VerpCodec::decode(std::string_view address) const {
  Parts p;
  if (!split(address, p)) return makeError("not a VERP address: " + std::string(address.substr(0, 256)));
  uint64_t idx = 0;
  for (char c : p.index) idx = idx * 10 + static_cast<uint64_t>(c - '0');
  if (idx > UINT32_MAX) return makeError("VERP recipient index out of range");
  std::string want = mac(p.id, static_cast<uint32_t>(idx));
  std::string got = toLower(p.mac);
  if (CRYPTO_memcmp(want.data(), got.data(), kMacChars) != 0) {
    return makeError("VERP mac does not verify (forged or foreign bounce): " + std::string(address.substr(0, 256)));
  }
  VerpAddress v;
  v.local = std::string(p.local);
  v.queueId = toLower(p.id);
  v.rcptIndex = static_cast<uint32_t>(idx);
  v.domain = toLower(p.domain);
  return v;
}

}  // namespace sluice::verp
