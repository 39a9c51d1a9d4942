// envelope_policy.h - the envelope checks sluice-milter asks sluice-policyd for when the MTA has no
// policy protocol of its own (Sendmail; milter.policy_service set).
//
// One EnvelopeChecks per milter connection. The milter events fill in the same attributes Postfix
// sends (client_address, helo_name, sender, sasl_username, recipient, size, instance, ...); RCPT
// and END-OF-MESSAGE are asked on one policyd connection held for the SMTP session
// (PolicyClient::Session), so policyd's reserve-at-RCPT / commit-at-end-of-message works exactly as
// with Postfix and nothing is counted twice. The Postfix action policyd answers becomes a milter
// reply with milterActionFor(): REJECT/5NN -> reject, DEFER/DEFER_IF_PERMIT/4NN -> tempfail,
// DISCARD -> discard, HOLD -> quarantine, PREPEND -> a header added at end of message,
// OK/DUNNO/DEFER_IF_REJECT/WARN -> continue; anything else -> 451 4.3.5 (as Postfix answers an
// unknown action).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "message_context.h"
#include "policy_client/policy_client.h"

namespace sluice::milter {

struct MilterAction {
  Verdict verdict;
  std::string prepend;     // PREPEND: the whole "Name: value" field
  bool hold = false;       // HOLD: quarantine the message
  std::string reason;      // HOLD/WARN text, for the quarantine reason and the log
};

// What a Postfix access(5) action means to a milter.
MilterAction milterActionFor(std::string_view action);

class EnvelopeChecks {
 public:
  void connect(std::string clientAddress, std::string clientName);
  void helo(std::string name) { helo_ = std::move(name); }
  // MAIL FROM: starts a transaction (a new `instance`). `esmtpArgs` are MAIL FROM's parameters
  // (SIZE=n is passed on).
  void mail(std::string sender, std::string saslUser, std::string saslMethod, std::string queueId,
            const std::vector<std::string>& esmtpArgs);
  // RCPT TO: asks policyd. A refused recipient is not counted in recipient_count.
  MilterAction rcpt(PolicyClient::Session& session, std::string recipient);
  // End of message (size = header + body bytes seen): asks policyd to commit. The PREPENDs and
  // HOLD gathered at RCPT are merged into the answer.
  MilterAction endOfMessage(PolicyClient::Session& session, uint64_t size);
  void abort() { inTransaction_ = false; }
  // The queue id learnt after MAIL FROM (Postfix: once its queue file exists), sent from then on.
  void setQueueId(std::string id) { queueId_ = std::move(id); }

  // The attributes of a request at protocol_state `state` (public for tests).
  PolicyClient::Attributes attributes(std::string_view state, std::string_view recipient, uint64_t size) const;
  const std::string& instance() const { return instance_; }

 private:
  std::string clientAddress_, clientName_, helo_;
  std::string sender_, saslUser_, saslMethod_, queueId_, sizeParam_, instance_;
  uint64_t accepted_ = 0;
  bool inTransaction_ = false;
  std::vector<std::string> prepends_;
  bool hold_ = false;
  std::string holdReason_;
};

}  // namespace sluice::milter
