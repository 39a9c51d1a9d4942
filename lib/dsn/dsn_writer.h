// dsn_writer.h - delivery status notifications (RFC 3464) that sluice-relayd sends to the
// envelope sender when recipients fail (Action: failed) or, if configured, are delayed
// (Action: delayed).
//
// The message is a multipart/report; report-type=delivery-status with three parts: a human
// readable explanation (text/plain), the machine readable message/delivery-status (per-message
// fields Reporting-MTA, Original-Envelope-Id, Arrival-Date; then one block per recipient with
// Final-Recipient, Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
// Last-Attempt-Date, Will-Retry-Until), and the original message (message/rfc822 for RET=FULL or
// when no RET was given, text/rfc822-headers for RET=HDRS, as RFC 3461 4.3 asks). Lines end in
// CRLF; the original is included as queued (dot-stuffing is the SMTP client's job).
// DSNs go from the null sender <> (RFC 3461 6.2) and carry Auto-Submitted: auto-replied.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dsn {

struct DsnRecipient {
  std::string address;       // Final-Recipient (rfc822)
  std::string orcpt;         // ORCPT as given at RCPT ("rfc822;addr"), "" if none
  std::string action;        // "failed" | "delayed" | "delivered" | "relayed" | "expanded"
  std::string status;        // enhanced status code, e.g. "5.1.1"
  std::string remoteMta;     // the MX host that answered, "" if none did
  std::string diagnostic;    // the remote reply or our reason, one line
  bool diagnosticIsSmtp = true;  // "smtp; ..." (a remote reply) or "x-sluice; ..." (ours)
  int64_t lastAttemptMs = 0;
  int64_t willRetryUntilMs = 0;  // delayed only
};

struct DsnInput {
  std::string reportingMta;  // relayd.hostname
  std::string queueId;
  std::string envid;         // ENVID of the original, "" if none
  std::string originalSender;
  std::string ret;           // "FULL", "HDRS" or "" (full)
  int64_t arrivalMs = 0;
  int64_t nowMs = 0;
  std::string original;      // the queued message, CRLF line ends
  std::vector<DsnRecipient> recipients;
  size_t maxOriginal = 10 * 1024 * 1024;  // longer originals are returned as headers only
};

// The whole DSN message (headers and body).
std::string buildDsn(const DsnInput& in);

// The enhanced status code of an SMTP reply ("550 5.1.1 User unknown" -> "5.1.1"); when the
// reply has none, the class of its code with .0.0 ("4.0.0"), or fallback for no code at all.
std::string enhancedStatus(std::string_view reply, std::string_view fallback);

// RFC 5322 date-time (UTC) of a Unix time in milliseconds.
std::string rfc5322Date(int64_t ms);

}  // namespace sluice::dsn
