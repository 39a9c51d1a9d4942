// policy_request.h - the Postfix policy delegation protocol (SMTPD_POLICY_README), both sides.
//
// Wire format: a request is lines "name=value\n" ended by an empty line; the reply is
// "action=ACTION\n\n". Names are lower-case ASCII; values are any bytes but NUL and LF. Postfix
// sends request=smtpd_access_policy and ignores nothing we answer but `action`; we ignore
// attributes we do not know (the protocol requires it), but refuse NUL bytes, lines without
// '=', empty names, more than kMaxAttributes lines, and a request larger than the configured
// bound (the caller enforces that while framing). Parsed values are string_views into the
// caller's buffer: the PolicyRequest is valid only while that buffer is unchanged.
// The milter and relayd build the same attribute map to ask policyd (lib/policy_client).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::decision {

enum class Attr : uint8_t {
  kRequest, kProtocolState, kProtocolName, kHeloName, kQueueId, kSender, kRecipient,
  kRecipientCount, kClientAddress, kClientName, kReverseClientName, kInstance, kSaslMethod,
  kSaslUsername, kSaslSender, kSize, kEtrnDomain, kStress, kCcertSubject, kCcertIssuer,
  kCcertFingerprint, kCcertPubkeyFingerprint, kEncryptionProtocol, kEncryptionCipher,
  kEncryptionKeysize, kServerAddress, kServerPort, kClientPort, kPolicyContext,
  kCompatibilityLevel, kMailVersion, kCount
};

inline constexpr size_t kMaxAttributes = 256;

const char* attrName(Attr a);

class PolicyRequest {
 public:
  std::string_view get(Attr a) const { return values_[static_cast<size_t>(a)]; }
  void set(Attr a, std::string_view v) { values_[static_cast<size_t>(a)] = v; }
  size_t unknownCount() const { return unknown_; }
  void clear() {
    values_.fill(std::string_view());
    unknown_ = 0;
  }
  void countUnknown() { ++unknown_; }

 private:
  std::array<std::string_view, static_cast<size_t>(Attr::kCount)> values_{};
  size_t unknown_ = 0;
};

// Parses the attribute lines of one request (everything before the empty line; a trailing
// "\r" on a line is tolerated). On error the message says what was wrong, for the log.
Status parsePolicyRequest(std::string_view block, PolicyRequest* out);

// Framing. Looks for the empty line that ends a request in buf, resuming at *scan (start at 0,
// keep the value between calls on the same growing buffer). Returns the offset just past the
// empty line, or npos if the request is not complete yet. *blockEnd gets the end of the lines.
size_t findRequestEnd(std::string_view buf, size_t* scan, size_t* blockEnd);

// Client side: appends "name=value\n" (values with LF or NUL are refused) and the reply parser.
Status appendAttribute(std::string* out, std::string_view name, std::string_view value);
// Extracts ACTION from "action=ACTION\n\n" (other attributes ignored). Error if malformed.
Result<std::string> parsePolicyReply(std::string_view block);

}  // namespace sluice::decision
