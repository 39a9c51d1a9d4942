// verp.h - the VERP return path of DESIGN.md: encoding and verification.
//
// Format: <local>+<id>.<rcpt index>.<mac>@<bounce domain>, where mac is the first 8 characters
// of the base32 (RFC 4648 alphabet, lower case, no padding) HMAC-SHA256(server secret,
// id "." index). The id is the queue id (base32 or any [A-Za-z0-9]); because some MTAs fold the
// case of local parts, ids are canonicalised to lower case before the HMAC and compared so.
// decode() takes the last '+' of the local part (the sender's own local part may hold '+'),
// accepts any case, and verifies the mac in constant time: a bounce whose mac does not verify
// must be ignored (logged), so nobody can suppress addresses by forging DSNs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::verp {

struct VerpAddress {
  std::string local;      // the original sender's local part
  std::string queueId;    // lower case
  uint32_t rcptIndex = 0;
  std::string domain;     // the bounce domain, lower case
};

class VerpCodec {
 public:
  // secret: the server secret (raw bytes, at least 16).
  explicit VerpCodec(std::string secret);

  std::string encode(std::string_view local, std::string_view queueId, uint32_t rcptIndex,
                     std::string_view bounceDomain) const;
  // The 8-character mac of (queueId, rcptIndex).
  std::string mac(std::string_view queueId, uint32_t rcptIndex) const;

  // Parses and verifies; the error says why (not VERP-shaped, or the mac does not verify).
  Result<VerpAddress> decode(std::string_view address) const;
  // Only the shape (no mac check): tells "not ours" apart from "forged".
  static bool looksLikeVerp(std::string_view address);

 private:
  std::string secret_;
};

std::string base32Lower(const unsigned char* data, size_t n);

}  // namespace sluice::verp
