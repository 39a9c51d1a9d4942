// policy_request_writer.h - writes Postfix-shaped policy delegation requests into a fixed buffer.
//
// The attribute set and its order are what Postfix 3.7.11 smtpd sends to check_policy_service
// (captured from a real instance, see bench/README.md): name=value lines ended by an empty line.
//   request=smtpd_access_policy, protocol_state=RCPT|END-OF-MESSAGE, protocol_name=ESMTP,
//   client_address, client_name, client_port, reverse_client_name, server_address, server_port,
//   helo_name, sender, recipient, recipient_count, queue_id, instance, size, etrn_domain, stress,
//   sasl_method, sasl_username, sasl_sender, ccert_subject, ccert_issuer, ccert_fingerprint,
//   ccert_pubkey_fingerprint, encryption_protocol, encryption_cipher, encryption_keysize,
//   policy_context
// As Postfix does: recipient_count is 0 at RCPT and the number of accepted recipients at
// END-OF-MESSAGE; recipient is empty at END-OF-MESSAGE unless exactly one was accepted; queue_id is
// empty at RCPT (the queue file is opened after the first accepted recipient's checks).
// Nothing here allocates: every field is copied or formatted (std::to_chars) into the buffer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bench {

// One SMTP transaction as seen by the policy service: one authenticated user, one message.
struct Transaction {
  std::uint32_t user = 0;         // SASL user number: sasl_username=user<N>, sender user<N>@example.com
  std::uint64_t id = 0;           // unique per run: recipients, queue_id and instance derive from it
  std::uint32_t connection = 0;   // the load client's connection (an smtpd process in Postfix terms)
  std::uint32_t clientPort = 0;   // the submitting client's source port (one per SMTP session)
  std::uint32_t messageSize = 0;  // size= at both stages (the MAIL FROM SIZE= and the final size)
};

class PolicyRequestWriter {
 public:
  static constexpr std::size_t kCapacity = 2048;

  // instancePrefix is a per-run hex token (Postfix uses its process id) that keeps instance values
  // unique across runs against the same daemon.
  explicit PolicyRequestWriter(std::uint32_t instancePrefix) : instancePrefix_(instancePrefix) {}

  // protocol_state=RCPT for recipient number `rcptIndex` (0-based) of the transaction.
  void writeRcpt(const Transaction& txn, std::uint32_t rcptIndex);
  // protocol_state=END-OF-MESSAGE; `accepted` recipients were accepted at RCPT, the only one
  // being number `onlyRcpt` when accepted == 1.
  void writeEndOfMessage(const Transaction& txn, std::uint32_t accepted, std::uint32_t onlyRcpt);

  const char* data() const { return buf_; }
  std::size_t size() const { return len_; }

 private:
  void writeCommon(const Transaction& txn, const char* state);
  void writeTail(const Transaction& txn);
  void put(const char* text);
  void putNumber(std::uint64_t value, int base = 10);
  void putRecipient(const Transaction& txn, std::uint32_t rcptIndex);
  void putInstance(const Transaction& txn);

  std::uint32_t instancePrefix_;
  char buf_[kCapacity];
  std::size_t len_ = 0;
};

}  // namespace bench
