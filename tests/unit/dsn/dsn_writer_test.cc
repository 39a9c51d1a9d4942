// dsn_writer_test.cc - tests of lib/dsn: a DSN built by buildDsn() and read back by our own
// bounce parser (lib/bounce) gives its recipients, Action, Status, Diagnostic-Code and remote MTA;
// RET=HDRS (and an original past maxOriginal) returns text/rfc822-headers, RET=FULL the whole
// message/rfc822; CR/LF in a diagnostic, an address, an ORCPT or the host name cannot add a header
// field or a delivery-status field; every line stays within RFC 5322's 998 octets; the
// enhancedStatus() table.
#include "dsn/dsn_writer.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "bounce/bounce.h"
#include "mime/mime.h"

namespace sluice::dsn {
namespace {

std::shared_ptr<const bounce::BounceParser> parser() {
  static auto p = [] {
    auto r = bounce::BounceParser::load(std::string(SLUICE_SOURCE_DIR) + "/contrib/bounce-rules.conf");
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
    return r.value();
  }();
  return p;
}

const char* kOriginal =
    "From: Alice <alice@sender.example>\r\n"
    "To: bob@dest.example\r\n"
    "Subject: the original\r\n"
    "Message-ID: <orig-42@sender.example>\r\n"
    "\r\n"
    "The body of the original.\r\n"
    "A second line that only a full return includes.\r\n";

DsnInput baseInput() {
  DsnInput in;
  in.reportingMta = "relay.sluice.example";
  in.queueId = "0123456789ABCDEF";
  in.envid = "env-1";
  in.originalSender = "alice@sender.example";
  in.arrivalMs = 1700000000000;
  in.nowMs = 1700000600000;
  in.original = kOriginal;
  DsnRecipient failed;
  failed.address = "bob@dest.example";
  failed.orcpt = "rfc822;Bob@Dest.example";
  failed.action = "failed";
  failed.status = "5.1.1";
  failed.remoteMta = "mx1.dest.example";
  failed.diagnostic = "550 5.1.1 <bob@dest.example>: Recipient address rejected: User unknown";
  failed.lastAttemptMs = in.nowMs;
  DsnRecipient delayed;
  delayed.address = "carol@other.example";
  delayed.action = "delayed";
  delayed.status = "4.4.1";
  delayed.diagnostic = "connect to mx.other.example[192.0.2.7]:25: Connection timed out";
  delayed.diagnosticIsSmtp = false;
  delayed.lastAttemptMs = in.nowMs;
  delayed.willRetryUntilMs = in.arrivalMs + 5 * 86400 * 1000LL;
  in.recipients = {failed, delayed};
  return in;
}

// The MIME parts of a DSN: root, then the three parts of the multipart/report.
struct Parsed {
  std::unique_ptr<mime::Message> msg;
  const mime::Part* text = nullptr;
  const mime::Part* status = nullptr;
  const mime::Part* original = nullptr;
};

Parsed parseParts(const std::string& dsn) {
  Parsed p;
  p.msg = mime::parse(dsn);
  const mime::Part& root = p.msg->root();
  EXPECT_EQ(root.type, "multipart/report");
  EXPECT_EQ(root.children.size(), 3u);
  if (root.children.size() == 3) {
    p.text = &root.children[0];
    p.status = &root.children[1];
    p.original = &root.children[2];
  }
  return p;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t nl = s.find("\r\n", at);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(at, nl - at));
    at = nl + 2;
  }
  return out;
}

TEST(DsnWriter, ReadBackByOurBounceParser) {
  DsnInput in = baseInput();
  std::string dsn = buildDsn(in);
  bounce::Report rep = parser()->parse(dsn);
  ASSERT_EQ(rep.kind, bounce::Kind::kBounce) << rep.problem;
  EXPECT_EQ(rep.format, "rfc3464");
  ASSERT_EQ(rep.recipients.size(), 2u);

  const bounce::Recipient& b = rep.recipients[0];
  EXPECT_EQ(b.recipient, "bob@dest.example");
  EXPECT_EQ(b.originalRecipient, "Bob@dest.example");
  EXPECT_EQ(b.action, "failed");
  EXPECT_EQ(b.status, "5.1.1");
  EXPECT_EQ(b.diagnostic, "550 5.1.1 <bob@dest.example>: Recipient address rejected: User unknown");
  EXPECT_EQ(b.remoteMta, "mx1.dest.example");
  EXPECT_EQ(b.reportingMta, "relay.sluice.example");
  EXPECT_EQ(b.reason, "userunknown");
  EXPECT_EQ(b.hard, 1);

  const bounce::Recipient& c = rep.recipients[1];
  EXPECT_EQ(c.recipient, "carol@other.example");
  EXPECT_EQ(c.action, "delayed");
  EXPECT_EQ(c.status, "4.4.1");
  EXPECT_EQ(c.diagnostic, "connect to mx.other.example[192.0.2.7]:25: Connection timed out");
  EXPECT_EQ(c.remoteMta, "");
  EXPECT_EQ(c.hard, 0);

  EXPECT_EQ(rep.originalMessageId, "orig-42@sender.example");
  EXPECT_NE(dsn.find("Diagnostic-Code: smtp; 550 5.1.1 "), std::string::npos);
  EXPECT_NE(dsn.find("Diagnostic-Code: x-sluice; connect to "), std::string::npos);
  EXPECT_NE(dsn.find("Original-Envelope-Id: env-1\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Will-Retry-Until: "), std::string::npos);
}

TEST(DsnWriter, HeaderAndReportStructure) {
  std::string dsn = buildDsn(baseInput());
  Parsed p = parseParts(dsn);
  ASSERT_NE(p.status, nullptr);
  const mime::Part& root = p.msg->root();
  EXPECT_EQ(root.headers.get("To"), "<alice@sender.example>");
  EXPECT_EQ(root.headers.get("Auto-Submitted"), "auto-replied");
  EXPECT_EQ(root.headers.get("Subject"), "Undelivered Mail Returned to Sender");
  EXPECT_NE(root.headers.get("Content-Type").find("report-type=delivery-status"), std::string_view::npos);
  EXPECT_EQ(p.text->type, "text/plain");
  EXPECT_EQ(p.status->type, "message/delivery-status");
  auto groups = mime::parseFieldGroups(p.status->body);
  ASSERT_EQ(groups.size(), 3u);  // per-message, then one per recipient
  EXPECT_EQ(groups[0].get("Reporting-MTA"), "dns; relay.sluice.example");
  EXPECT_EQ(groups[0].get("Arrival-Date"), rfc5322Date(1700000000000));
  EXPECT_EQ(groups[1].get("Final-Recipient"), "rfc822; bob@dest.example");
  EXPECT_EQ(groups[1].get("Original-Recipient"), "rfc822; Bob@Dest.example");
  EXPECT_EQ(groups[1].get("Remote-MTA"), "dns; mx1.dest.example");
  EXPECT_EQ(groups[2].get("Action"), "delayed");
  EXPECT_EQ(p.original->type, "message/rfc822");  // no RET: the whole message
  EXPECT_NE(std::string(p.original->body).find("A second line that only a full return includes."), std::string::npos);
  // Only delayed recipients: the subject says so.
  DsnInput only = baseInput();
  only.recipients.erase(only.recipients.begin());
  EXPECT_NE(buildDsn(only).find("Subject: Delayed Mail (still being retried)\r\n"), std::string::npos);
}

TEST(DsnWriter, RetHdrsReturnsHeadersOnly) {
  DsnInput in = baseInput();
  in.ret = "HDRS";
  std::string dsn = buildDsn(in);
  Parsed p = parseParts(dsn);
  ASSERT_NE(p.original, nullptr);
  EXPECT_EQ(p.original->type, "text/rfc822-headers");
  EXPECT_EQ(dsn.find("The body of the original."), std::string::npos) << dsn;
  EXPECT_NE(dsn.find("Subject: the original\r\n"), std::string::npos);
  EXPECT_EQ(parser()->parse(dsn).originalMessageId, "orig-42@sender.example");

  DsnInput full = baseInput();
  full.ret = "FULL";
  Parsed pf = parseParts(buildDsn(full));
  ASSERT_NE(pf.original, nullptr);
  EXPECT_EQ(pf.original->type, "message/rfc822");

  DsnInput big = baseInput();  // past maxOriginal: headers only, whatever RET says
  big.maxOriginal = 64;
  std::string bigDsn = buildDsn(big);
  Parsed pb = parseParts(bigDsn);
  ASSERT_NE(pb.original, nullptr);
  EXPECT_EQ(pb.original->type, "text/rfc822-headers");
  EXPECT_EQ(bigDsn.find("The body of the original."), std::string::npos);
}

TEST(DsnWriter, NoHeaderInjectionThroughCrLf) {
  DsnInput in = baseInput();
  in.reportingMta = "relay.sluice.example\r\nBcc: victim1@evil.example";
  in.originalSender = "alice@sender.example>\r\nBcc: <victim2@evil.example";
  in.queueId = "ID\nX-Injected-Id: 1";
  in.envid = "env\r\n\r\nX-Injected-Envid: 1";
  in.recipients[0].address = "bob@dest.example\r\nX-Injected-Rcpt: 1";
  in.recipients[0].orcpt = "rfc822;bob@dest.example\nX-Injected-Orcpt: 1";
  in.recipients[0].remoteMta = "mx1.dest.example\rX-Injected-Mta: 1";
  in.recipients[0].diagnostic = "550 5.1.1 no\r\nBcc: victim3@evil.example\r\n\r\nX-Injected-Diag: 1";
  in.recipients[0].status = "5.1.1\r\nX-Injected-Status: 1";
  in.recipients[1].action = "delayed\r\nAction: delivered";
  std::string dsn = buildDsn(in);
  for (const std::string& l : lines(dsn)) {
    EXPECT_NE(l.rfind("Bcc:", 0), 0u) << l;
    EXPECT_NE(l.rfind("X-Injected", 0), 0u) << l;
    EXPECT_NE(l.rfind("Action: delivered", 0), 0u) << l;
    EXPECT_EQ(l.find('\r'), std::string::npos) << "a bare CR in a line";
    EXPECT_EQ(l.find('\n'), std::string::npos) << "a bare LF in a line";
  }
  Parsed p = parseParts(dsn);
  ASSERT_NE(p.status, nullptr);
  const mime::Part& root = p.msg->root();
  EXPECT_EQ(root.headers.find("Bcc"), nullptr);
  for (const mime::Field& f : root.headers.items()) EXPECT_EQ(std::string(f.name).find("X-Injected"), std::string::npos);
  auto groups = mime::parseFieldGroups(p.status->body);
  ASSERT_EQ(groups.size(), 3u) << "an empty line injected into a field would start a new group";
  EXPECT_EQ(groups[1].get("Action"), "failed");
  EXPECT_EQ(groups[2].get("Action"), "delayed  Action: delivered");
  bounce::Report rep = parser()->parse(dsn);
  ASSERT_EQ(rep.recipients.size(), 2u);
  EXPECT_EQ(rep.recipients[0].action, "failed");
}

TEST(DsnWriter, EveryLineWithin998Octets) {
  DsnInput in = baseInput();
  std::string local(64, 'l');
  std::string host(200, 'h');
  in.recipients[0].address = local + "@" + host + ".example";
  in.recipients[0].remoteMta = "mx." + host + ".example";
  in.recipients[0].diagnostic = "550 5.1.1 " + std::string(4000, 'x');
  in.recipients[0].orcpt = "rfc822;" + in.recipients[0].address;
  in.originalSender = local + "@" + host + ".example";
  std::string dsn = buildDsn(in);
  size_t header = dsn.find(kOriginal);
  ASSERT_NE(header, std::string::npos);
  for (const std::string& l : lines(dsn.substr(0, header))) EXPECT_LE(l.size(), 998u) << l.substr(0, 60);
  EXPECT_EQ(parser()->parse(dsn).recipients.size(), 2u);
}

TEST(DsnWriter, NonAsciiAddressAndOriginal) {
  DsnInput in = baseInput();
  in.recipients[0].address = "j\xC3\xB6rg@d\xC3\xB6st.example";
  in.original = std::string("Subject: gr\xC3\xBC\xC3\x9F" "e\r\n\r\n8-bit body \xC3\xA9\r\n");
  std::string dsn = buildDsn(in);
  EXPECT_NE(dsn.find("Final-Recipient: utf-8; j\xC3\xB6rg@d\xC3\xB6st.example\r\n"), std::string::npos);
  Parsed p = parseParts(dsn);
  ASSERT_NE(p.original, nullptr);
  EXPECT_EQ(p.original->headers.get("Content-Transfer-Encoding"), "8bit");
}

TEST(DsnWriter, EnhancedStatusTable) {
  struct Case {
    const char* reply;
    const char* fallback;
    const char* want;
  };
  const Case cases[] = {
      {"550 5.1.1 <a@b.example>: User unknown", "5.0.0", "5.1.1"},
      {"550-5.1.1 first line of several", "5.0.0", "5.1.1"},
      {"250 2.0.0 Ok: queued as ABC", "2.0.0", "2.0.0"},
      {"421 4.7.0 Try again later", "4.0.0", "4.7.0"},
      {"556 5.1.10 domain does not accept mail (null MX)", "5.0.0", "5.1.10"},
      {"552 5.3.4 message size exceeds", "5.0.0", "5.3.4"},
      {"554 5.7.123 three-digit detail", "5.0.0", "5.7.123"},
      {"550 5.1.1. trailing dot", "5.0.0", "5.1.1"},
      {"451 Try again later", "4.0.0", "4.0.0"},     // no enhanced code: the class
      {"550 Rejected", "4.0.0", "5.0.0"},             // the class wins over the fallback
      {"250 Ok", "9.9.9", "2.0.0"},
      {"550 4.1.1 class disagrees", "5.0.0", "5.0.0"},
      {"550 5.1234.1 subject too long", "5.0.0", "5.0.0"},
      {"550 5.1.1234 detail too long", "5.0.0", "5.0.0"},
      {"550 5..1 empty subject", "5.0.0", "5.0.0"},
      {"550 5.1. no detail", "5.0.0", "5.0.0"},
      {"550 5.1", "5.0.0", "5.0.0"},
      {"550", "4.0.0", "5.0.0"},
      {"354 End data with <CR><LF>.<CR><LF>", "4.0.0", "4.0.0"},  // not a 2/4/5 class
      {"", "4.4.7", "4.4.7"},
      {"lost connection with mx.example", "4.0.0", "4.0.0"},
      {"55 5.1.1 two digits", "5.0.0", "5.0.0"},
      {"5500 5.1.1 four digits", "4.0.0", "4.0.0"},
      {"timeout waiting for a reply", "4.4.2", "4.4.2"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(enhancedStatus(c.reply, c.fallback), c.want) << "reply \"" << c.reply << "\" fallback " << c.fallback;
  }
}

TEST(DsnWriter, Rfc5322Date) {
  EXPECT_EQ(rfc5322Date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322Date(1700000000999), "Tue, 14 Nov 2023 22:13:20 +0000");
}

}  // namespace
}  // namespace sluice::dsn
