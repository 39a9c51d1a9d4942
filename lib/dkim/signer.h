// signer.h - DKIM signatures (RFC 6376; Ed25519 per RFC 8463) made in one pass over a message,
// and the signing table that picks them.
//
// A Signer makes every signature of one message: any mix of rsa-sha256 and ed25519-sha256, any
// number of d= (the author domain and the relay's own, say). Use: headers() once, body() with
// chunks in order, finish(). Each distinct body canonicalization is hashed once, however many
// signatures use it. finish() returns whole header fields, ready to prepend:
//   DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;\r\n\ts=sel; t=...; ...
// folded with CRLF+TAB at about 78 columns, tags v a c d i s t x h bh b, b= last. A milter that
// hands the value to the MTA may turn each CRLF into LF; the signature does not change.
//
// Header selection (RFC 6376 5.4.2): the h= list is walked in order; the k-th occurrence of a
// name selects the k-th instance of that field counted from the bottom; a name with no instance
// left selects nothing (oversigning: no field of that name may be added later). The message must
// have exactly one From: field (RFC 6376 5.4 / DMARC); otherwise finish() fails and nothing is
// signed. Keys are only referenced: a DkimKey must outlive the Signer and the SigningTable.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dkim/canon.h"
#include "dkim/dkim_key.h"
#include "dkim/message_headers.h"

namespace sluice::dkim {

// The default selection: every present instance of these is signed, in this order ...
inline constexpr std::array<std::string_view, 19> kDefaultSignedHeaders = {
    "from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from",
    "resent-to", "resent-cc", "in-reply-to", "references", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "list-id", "list-unsubscribe",
    "list-unsubscribe-post"};
// ... and these get one more, empty, instance (absent ones are listed once, as protection).
inline constexpr std::array<std::string_view, 10> kDefaultOversignedHeaders = {
    "from", "to", "cc", "subject", "date", "reply-to", "message-id", "mime-version",
    "content-type", "content-transfer-encoding"};

struct HeaderPolicy {
  std::vector<std::string> sign;      // each present instance is signed
  std::vector<std::string> oversign;  // listed once more than present (a name here is signed too)
};
HeaderPolicy defaultHeaderPolicy();
// The h= list for this message: names in `sign` order (then oversign-only names), lowercase.
std::vector<std::string> expandHeaderList(const HeaderPolicy& policy, const MessageHeaders& headers);

struct SignatureSpec {
  std::string domain;    // d=
  std::string selector;  // s=
  const DkimKey* key = nullptr;
  // The h= list verbatim (5.4.2 semantics above); must name "from". Empty: `policy` is expanded
  // against each message.
  std::vector<std::string> headers;
  HeaderPolicy policy = defaultHeaderPolicy();
  HeaderCanon headerCanon = HeaderCanon::kRelaxed;
  BodyCanon bodyCanon = BodyCanon::kRelaxed;
  std::optional<int64_t> timestamp;   // t= (seconds since the epoch)
  std::optional<int64_t> expiration;  // x= t + expiration; t= is then written (now, if unset)
  std::string identity;               // i= (optional): "user@d" or "@sub.d", at d= or below
};

// Why a spec cannot be used (empty message when it can).
Status validateSpec(const SignatureSpec& spec);

class Signer {
 public:
  explicit Signer(std::vector<SignatureSpec> specs);
  void headers(const MessageHeaders& headers);
  void body(std::string_view chunk);
  // The DKIM-Signature fields, in spec order, without a final CRLF. Call once.
  Result<std::vector<std::string>> finish();

 private:
  Result<std::string> makeSignature(size_t i, const Sha256Digest& bodyHash) const;

  std::vector<SignatureSpec> specs_;
  std::vector<std::vector<std::string>> hLists_;  // per spec, fixed by headers()
  std::vector<std::string> headerData_;           // per spec: canonical selected fields
  std::array<std::optional<BodyHasher>, 2> hashers_;  // by BodyCanon
  std::string error_;
  bool haveHeaders_ = false;
  bool finished_ = false;
};

// --- the steps of one signature, public for golden tests and for a future verifier ---------
// RFC 6376 3.7: the canonical selected header fields, then the DKIM-Signature field itself
// (`sigField`: the whole field with an empty b= value) canonical without its final CRLF.
std::string signedHeaderData(const MessageHeaders& headers, const std::vector<std::string>& hList,
                             HeaderCanon canon, std::string_view sigField);
// SHA-256 of data signed with the key (RSASSA-PKCS1-v1_5, or PureEdDSA over the digest as
// RFC 8463 3 says), base64: the b= value.
Result<std::string> signData(const DkimKey& key, std::string_view data);
// The field with the value of its b= tag removed (RFC 6376 3.5, 3.7).
std::string withoutSignatureValue(std::string_view sigField);

// --- signing table --------------------------------------------------------------------------
// A rule matches a message when its domain pattern matches the From: domain and its SASL user
// matches the authenticated identity. Patterns: "example.com" (exactly), "*.example.com" (any
// subdomain, not example.com itself), "*" (any domain), "" (any, even none: then saslUser must be
// set). saslUser "" matches anyone, authenticated or not. The first matching rule, in the order
// added, gives the signatures; a template's domain "" or "%" becomes the From: domain.
struct SigningRule {
  std::string domain;
  std::string saslUser;
  std::vector<SignatureSpec> signatures;
};

class SigningTable {
 public:
  Status add(SigningRule rule);
  std::vector<SignatureSpec> lookup(std::string_view fromDomain, std::string_view saslUser) const;
  size_t size() const { return rules_.size(); }

 private:
  std::vector<SigningRule> rules_;
};

}  // namespace sluice::dkim
