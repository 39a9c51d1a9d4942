// policy_request_writer.cc - see policy_request_writer.h for the wire format and field order.
#include "policy_request_writer.h"

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace bench {

void PolicyRequestWriter::put(const char* text) {
  std::size_t n = std::strlen(text);
  if (len_ + n > kCapacity) std::abort();  // broken invariant: the fields are bounded by design
  std::memcpy(buf_ + len_, text, n);
  len_ += n;
}

void PolicyRequestWriter::putNumber(std::uint64_t value, int base) {
  auto [end, ec] = std::to_chars(buf_ + len_, buf_ + kCapacity, value, base);
  if (ec != std::errc()) std::abort();
  len_ = static_cast<std::size_t>(end - buf_);
}

void PolicyRequestWriter::putRecipient(const Transaction& txn, std::uint32_t rcptIndex) {
  put("r");
  putNumber(txn.id);
  put("-");
  putNumber(rcptIndex);
  put("@dest");
  putNumber(txn.id % 97);
  put(".example");
}

// Postfix: "%x.%lx.%lx.%x" (process id, seconds, microseconds, sequence number).
void PolicyRequestWriter::putInstance(const Transaction& txn) {
  putNumber(instancePrefix_, 16);
  put(".");
  putNumber(txn.connection, 16);
  put(".");
  putNumber(txn.id, 16);
  put(".0");
}

void PolicyRequestWriter::writeCommon(const Transaction& txn, const char* state) {
  len_ = 0;
  put("request=smtpd_access_policy\nprotocol_state=");
  put(state);
  put("\nprotocol_name=ESMTP\nclient_address=10.");
  putNumber((txn.user >> 16) & 255);
  put(".");
  putNumber((txn.user >> 8) & 255);
  put(".");
  putNumber(txn.user & 255);
  put("\nclient_name=unknown\nclient_port=");
  putNumber(txn.clientPort);
  put("\nreverse_client_name=unknown\nserver_address=127.0.0.1\nserver_port=587\nhelo_name=app");
  putNumber(txn.user);
  put(".clients.example\nsender=user");
  putNumber(txn.user);
  put("@example.com\nrecipient=");
}

void PolicyRequestWriter::writeTail(const Transaction& txn) {
  put("\ninstance=");
  putInstance(txn);
  put("\nsize=");
  putNumber(txn.messageSize);
  put("\netrn_domain=\nstress=\nsasl_method=PLAIN\nsasl_username=user");
  putNumber(txn.user);
  put("\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
      "ccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n"
      "encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\npolicy_context=\n\n");
}

void PolicyRequestWriter::writeRcpt(const Transaction& txn, std::uint32_t rcptIndex) {
  writeCommon(txn, "RCPT");
  putRecipient(txn, rcptIndex);
  put("\nrecipient_count=0\nqueue_id=");
  writeTail(txn);
}

void PolicyRequestWriter::writeEndOfMessage(const Transaction& txn, std::uint32_t accepted,
                                            std::uint32_t onlyRcpt) {
  writeCommon(txn, "END-OF-MESSAGE");
  if (accepted == 1) putRecipient(txn, onlyRcpt);
  put("\nrecipient_count=");
  putNumber(accepted);
  put("\nqueue_id=");
  // 11 upper-case hex digits, the short queue id format.
  std::uint64_t q = (txn.id * 0x9E3779B97F4A7C15ull) >> 20;
  static constexpr char kHex[] = "0123456789ABCDEF";
  char id[12];
  for (int i = 10; i >= 0; --i, q >>= 4) id[i] = kHex[q & 15];
  id[11] = '\0';
  put(id);
  writeTail(txn);
}

}  // namespace bench
