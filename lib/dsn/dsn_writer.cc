// dsn_writer.cc - see dsn_writer.h.
#include "dsn/dsn_writer.h"

#include <openssl/rand.h>

#include <cctype>
#include <ctime>

namespace sluice::dsn {
namespace {

// Header or field values must stay on one line: CR, LF and other controls become spaces.
std::string oneLine(std::string_view s, size_t max = 900) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
    if (out.size() >= max) break;
  }
  return out;
}

std::string boundary() {
  unsigned char r[12];
  RAND_bytes(r, sizeof r);
  static const char* hex = "0123456789abcdef";
  std::string b = "=_sluice_";
  for (unsigned char c : r) {
    b += hex[c >> 4];
    b += hex[c & 15];
  }
  return b;
}

// The header block of a message (up to and including the empty line, or all of it).
std::string_view headerBlock(std::string_view msg) {
  size_t end = msg.find("\r\n\r\n");
  return end == std::string_view::npos ? msg : msg.substr(0, end + 2);
}

bool asciiOnly(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string orcptField(const std::string& orcpt) {
  // ORCPT is "addr-type;address" (RFC 3461 4.2); anything else is reported as rfc822.
  size_t semi = orcpt.find(';');
  if (semi == std::string::npos) return "rfc822; " + oneLine(orcpt);
  return oneLine(orcpt.substr(0, semi)) + "; " + oneLine(orcpt.substr(semi + 1));
}

// One line per recipient, within RFC 5322's 998 octets: the diagnostic gets what the address
// and the host name leave.
void appendRecipientText(std::string* out, const DsnRecipient& r) {
  std::string line = "<" + oneLine(r.address, 300) + ">: ";
  if (!r.remoteMta.empty() && r.diagnosticIsSmtp) {
    line += "host " + oneLine(r.remoteMta, 300) + " said: ";
  }
  line += oneLine(r.diagnostic, 998 - line.size());
  *out += line + "\r\n";
}

}  // namespace

std::string rfc5322Date(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string enhancedStatus(std::string_view reply, std::string_view fallback) {
  size_t i = 0;
  while (i < reply.size() && std::isdigit(static_cast<unsigned char>(reply[i]))) ++i;
  if (i != 3) return std::string(fallback);
  char cls = reply[0];
  // "550 5.1.1" or "550-5.1.1"
  size_t j = i + 1;
  if (j < reply.size() && (reply[j] == cls) && j + 1 < reply.size() && reply[j + 1] == '.') {
    size_t k = j + 2;
    size_t d1 = k;
    while (k < reply.size() && std::isdigit(static_cast<unsigned char>(reply[k]))) ++k;
    if (k > d1 && k - d1 <= 3 && k < reply.size() && reply[k] == '.') {
      size_t d2 = ++k;
      while (k < reply.size() && std::isdigit(static_cast<unsigned char>(reply[k]))) ++k;
      if (k > d2 && k - d2 <= 3) return std::string(reply.substr(j, k - j));
    }
  }
  if (cls == '4' || cls == '5' || cls == '2') return std::string(1, cls) + ".0.0";
  return std::string(fallback);
}

std::string buildDsn(const DsnInput& in) {
  bool anyFailed = false, anyDelayed = false;
  for (const auto& r : in.recipients) {
    anyFailed |= r.action == "failed";
    anyDelayed |= r.action == "delayed";
  }
  std::string b = boundary();
  std::string m;
  m.reserve(in.original.size() + 4096);
  m += "From: Mail Delivery System <MAILER-DAEMON@" + oneLine(in.reportingMta) + ">\r\n";
  m += "To: <" + oneLine(in.originalSender) + ">\r\n";
  m += std::string("Subject: ") +
       (anyFailed ? "Undelivered Mail Returned to Sender" : anyDelayed ? "Delayed Mail (still being retried)"
                                                                      : "Successful Mail Delivery Report") +
       "\r\n";
  m += "Date: " + rfc5322Date(in.nowMs) + "\r\n";
  m += "Message-ID: <" + oneLine(in.queueId) + ".dsn." + std::to_string(in.nowMs) + "@" + oneLine(in.reportingMta) + ">\r\n";
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + b + "\"\r\n";
  m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  // 1. for people
  m += "--" + b + "\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
  m += "This is the mail system at host " + oneLine(in.reportingMta) + ".\r\n\r\n";
  if (anyFailed) {
    m += "I'm sorry to have to inform you that your message could not\r\n"
         "be delivered to one or more recipients. It's attached below.\r\n\r\n";
  } else if (anyDelayed) {
    m += "Your message could not be delivered yet to one or more recipients.\r\n"
         "It will be retried until it is too old; you need not send it again.\r\n\r\n";
  } else {
    m += "Your message was delivered to the recipients below.\r\n\r\n";
  }
  for (const auto& r : in.recipients) appendRecipientText(&m, r);
  m += "\r\n";

  // 2. for programs
  m += "--" + b + "\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n";
  m += "Reporting-MTA: dns; " + oneLine(in.reportingMta) + "\r\n";
  m += "X-Sluice-Queue-ID: " + oneLine(in.queueId) + "\r\n";
  if (!in.envid.empty()) m += "Original-Envelope-Id: " + oneLine(in.envid) + "\r\n";
  if (!in.originalSender.empty()) m += "X-Original-Sender: rfc822; " + oneLine(in.originalSender) + "\r\n";
  if (in.arrivalMs > 0) m += "Arrival-Date: " + rfc5322Date(in.arrivalMs) + "\r\n";
  for (const auto& r : in.recipients) {
    m += "\r\n";
    m += std::string(asciiOnly(r.address) ? "Final-Recipient: rfc822; " : "Final-Recipient: utf-8; ") + oneLine(r.address) + "\r\n";
    if (!r.orcpt.empty()) m += "Original-Recipient: " + orcptField(r.orcpt) + "\r\n";
    m += "Action: " + oneLine(r.action) + "\r\n";
    m += "Status: " + oneLine(r.status) + "\r\n";
    if (!r.remoteMta.empty()) m += "Remote-MTA: dns; " + oneLine(r.remoteMta) + "\r\n";
    if (!r.diagnostic.empty()) {
      m += std::string("Diagnostic-Code: ") + (r.diagnosticIsSmtp ? "smtp; " : "x-sluice; ") + oneLine(r.diagnostic) + "\r\n";
    }
    if (r.lastAttemptMs > 0) m += "Last-Attempt-Date: " + rfc5322Date(r.lastAttemptMs) + "\r\n";
    if (r.willRetryUntilMs > 0) m += "Will-Retry-Until: " + rfc5322Date(r.willRetryUntilMs) + "\r\n";
  }
  m += "\r\n";

  // 3. the original
  bool full = in.ret != "HDRS" && in.original.size() <= in.maxOriginal;
  std::string_view orig = full ? std::string_view(in.original) : headerBlock(in.original);
  m += "--" + b + "\r\n";
  m += full ? "Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n"
            : "Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n";
  if (!asciiOnly(orig)) m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "\r\n";
  m.append(orig.data(), orig.size());
  if (orig.size() < 2 || orig.substr(orig.size() - 2) != "\r\n") m += "\r\n";
  m += "\r\n--" + b + "--\r\n";
  return m;
}

}  // namespace sluice::dsn
