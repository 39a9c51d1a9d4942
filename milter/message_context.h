// message_context.h - the state of one milter connection and of its current message, and the
// decisions taken on it. No libmilter types here: milter_callbacks.cc feeds the events in and
// turns the Verdicts into SMFIS_* codes and smfi_setreply calls.
//
// Per message: beginMessage() at MAIL FROM (with {auth_authen}), header() per field, endOfHeaders()
// (From:/Sender: ownership, then the Signer is made from the signing table), body() per chunk,
// endOfMessage() (the DKIM-Signature fields to insert). Rules:
//   - unauthenticated mail is passed unsigned unless it comes from dkim.trusted_networks or
//     dkim.sign_unauthenticated is on (then signed, without the ownership check);
//   - authenticated mail must have exactly one From: (else 550 5.6.0), and every address in
//     From: and Sender: must be owned by the user's identity (else 550 5.7.1);
//   - a broken key or a signing failure gives dkim.key_error_action (451 4.7.0 or unsigned).
// Invariants: one message at a time; beginMessage() forgets everything about the previous one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dkim/message_headers.h"
#include "dkim/signer.h"
#include "identity/identity_map.h"
#include "signing.h"

namespace sluice::milter {

struct Verdict {
  enum class Kind { kContinue, kAccept, kReject, kTempfail, kDiscard };
  Kind kind = Kind::kContinue;
  std::string rcode;  // "550"; empty: the MTA's default reply
  std::string xcode;  // "5.7.1"
  std::string text;

  static Verdict next() { return {}; }
  static Verdict accept() { return {Kind::kAccept, "", "", ""}; }
  static Verdict reject(std::string r, std::string x, std::string t) {
    return {Kind::kReject, std::move(r), std::move(x), std::move(t)};
  }
  static Verdict tempfail(std::string t) { return {Kind::kTempfail, "451", "4.7.0", std::move(t)}; }
  static Verdict tempfail(std::string r, std::string x, std::string t) {
    return {Kind::kTempfail, std::move(r), std::move(x), std::move(t)};
  }
  static Verdict discard() { return {Kind::kDiscard, "", "", ""}; }
};

class MessageContext {
 public:
  MessageContext(const Signing& signing, const IdentityMap& identities)
      : signing_(&signing), identities_(&identities) {}
  // A reloaded configuration, taken at the start of the next message (never within one).
  void rebind(const Signing& signing, const IdentityMap& identities) {
    signing_ = &signing;
    identities_ = &identities;
  }

  // `trustedClient`: the client is in dkim.trusted_networks. `mustSeeAll`: the caller needs every
  // event up to end of message (envelope checks through policyd), so never answer kAccept early.
  Verdict beginMessage(std::string authUser, std::string envelopeFrom, bool trustedClient = false,
                       bool mustSeeAll = false);
  Verdict header(std::string_view name, std::string_view value);
  Verdict endOfHeaders();
  void body(std::string_view chunk);
  // On kContinue, *fields holds the DKIM-Signature fields (whole, CRLF-folded) to insert.
  Verdict endOfMessage(std::vector<std::string>* fields);

  // The MTA's queue id ({i}) once known, first on every log line about the message. Kept by
  // beginMessage(): the caller sets it (again) at each event that brings it.
  void setQueueId(std::string id) { queueId_ = std::move(id); }
  const std::string& queueId() const { return queueId_; }
  const std::string& authUser() const { return authUser_; }
  const std::string& envelopeFrom() const { return envelopeFrom_; }
  bool signing() const { return signer_.has_value(); }

 private:
  Verdict checkOwnership() const;
  Verdict prepareSigner();
  Verdict keyError(const std::string& why) const;

  Verdict pass() const { return mustSeeAll_ ? Verdict::next() : Verdict::accept(); }

  const Signing* signing_;
  const IdentityMap* identities_;
  bool trusted_ = false;
  bool mustSeeAll_ = false;
  std::string authUser_;
  std::string envelopeFrom_;
  std::string queueId_;
  dkim::MessageHeaders headers_;
  std::string headerError_;
  std::optional<dkim::Signer> signer_;
};

// The addresses of a mailbox-list header value ("A <a@x>, b@y (c)" -> a@x, b@y); display names,
// comments and quoted strings are skipped. Group syntax "name: a@x;" yields a@x.
std::vector<std::string> headerAddresses(std::string_view value);
// A whole "DKIM-Signature: v=1; ...\r\n\t..." field as libmilter's smfi_insheader wants the value:
// no name and colon, each CRLF fold as LF, the leading space kept only when `leadingSpace`
// (SMFIP_HDR_LEADSPC negotiated).
std::string milterHeaderValue(std::string_view field, bool leadingSpace);

}  // namespace sluice::milter
