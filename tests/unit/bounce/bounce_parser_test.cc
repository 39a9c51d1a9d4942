// bounce_parser_test.cc - tests of lib/bounce: the shipped rules classify a table of real MTA
// replies; DSNs with several recipients, ARF, RFC 3834 auto-replies, human-readable bounces and
// mbox files are read; rules-file errors name FILE:LINE; hostile input (50 MB, deep nesting,
// truncated MIME, binary junk) ends in bounded time with "not a bounce" or "unparseable".
#include "bounce/bounce.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "bounce/bounce_match.h"
#include "bounce/rules.h"

namespace sluice::bounce {
namespace {

std::shared_ptr<const BounceParser> parser() {
  static auto p = [] {
    auto r = BounceParser::load(std::string(SLUICE_SOURCE_DIR) + "/contrib/bounce-rules.conf");
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
    return r.value();
  }();
  return p;
}

struct Case {
  const char* diagnostic;
  const char* status;
  const char* reason;
  int hard;
};

// The cut line (where a returned message starts): at the text's start, on a later line (also
// indented or '>'-quoted), at column 0 only for cut0 rules, or nowhere.
TEST(BounceRules, FindsTheCutLine) {
  const RuleSet& rs = parser()->rules();
  std::string later = "Sorry.\n\n  --- Below this line is a copy of the message.\nReturn-Path: <a@example.org>\n";
  struct CutCase {
    std::string text;
    size_t want;
  } cases[] = {
      {"Return-Path: <a@example.org>\nSubject: x\n", 0},
      {later, later.find("  ---")},
      {"x\n> ----- Original message -----\n", 2},
      {"x\n----- ORIGINAL MESSAGE -----\n", 2},  // any case, after the (case-sensitive) "\n"
      {"x\ny\nRETURN-PATH: <a@example.org>\n", 4},
      {"x\n  Received: from mx.example.org\n", std::string::npos},  // cut0: column 0 only
      {"x\nReceived: from mx.example.org\n", 2},
      {"no returned message here\nat all", std::string::npos},
      {"", std::string::npos},
  };
  for (const CutCase& c : cases) EXPECT_EQ(rs.findCut(c.text), c.want) << c.text;
}

TEST(BounceRules, ClassifiesATableOfReplies) {
  const Case cases[] = {
      {"550 5.1.1 <a@example.org>: Recipient address rejected: User unknown in local recipient table", "", "userunknown", 1},
      {"552 5.2.2 Mailbox full", "", "mailboxfull", 0},
      {"Host or domain name not found. Name service error for name=example.invalid type=A: Host not found", "", "hostunknown", 1},
      {"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "", "blocked", 0},
      {"550 5.7.1 Message rejected as spam by Content Filtering.", "", "spamdetected", 0},
      {"552 5.3.4 Message size exceeds fixed limit", "", "mesgtoobig", 0},
      {"421 4.7.0 Too many concurrent SMTP connections from this IP address; please try again later", "4.7.0", "toomanyconn", 0},
      {"Sorry, I couldn't find any host named example.invalid. (#5.1.2)", "", "hostunknown", 1},
      {"550 5.7.1 Unable to relay for a@example.org", "", "norelaying", 0},
      {"550 5.2.1 This account has been disabled or discontinued", "", "suspend", 0},
      {"retry timeout exceeded", "4.4.7", "expired", 0},
      {"", "5.0.0", "undefined", 0},
      {"550 DMARC check failed. http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1001508&&id=16.", "", "blocked", 0},
      {"542 kijitora@example.com Rejected", "5.0.0", "userunknown", 1},
      {"554 delivery error: dd This user doesn't have a yahoo.com account (k@yahoo.com) [0] - mta1.mail.bf1.yahoo.com", "", "userunknown", 1},
  };
  for (const Case& c : cases) {
    Recipient r;
    r.diagnostic = c.diagnostic;
    r.status = c.status;
    parser()->classify(r);
    EXPECT_EQ(r.reason, c.reason) << c.diagnostic << " (rule " << r.rule << ")";
    EXPECT_EQ(r.hard, c.hard) << c.diagnostic;
    EXPECT_FALSE(r.rule.empty());
    EXPECT_FALSE(r.status.empty());
  }
}

TEST(BounceRules, StatusFromTheTextAndPseudoCodes) {
  Recipient r;
  r.diagnostic = "host mx.example.org[192.0.2.1] said: 550 5.1.1 <x@example.org>: User unknown (in reply to RCPT TO command)";
  parser()->classify(r);
  EXPECT_EQ(r.status, "5.1.1");
  EXPECT_EQ(r.replyCode, "550");
  EXPECT_EQ(r.smtpCommand, "RCPT");
  EXPECT_FALSE(r.statusDerived);
  Recipient p;
  p.diagnostic = "mailbox is full";
  parser()->classify(p);
  EXPECT_EQ(p.reason, "mailboxfull");
  EXPECT_TRUE(p.statusDerived);
  EXPECT_EQ(p.status, "5.0.922");
  // Retries that ran out (Exim's wording) were a temporary condition: a 4.x.x pseudo code.
  Recipient t;
  t.diagnostic = "mailbox is full: retry timeout exceeded";
  parser()->classify(t);
  EXPECT_EQ(t.reason, "mailboxfull");
  EXPECT_EQ(t.status, "4.0.922");
  Recipient u;
  u.diagnostic = "all hosts have been failing for a long time and were last tried after this message arrived";
  parser()->classify(u);
  EXPECT_EQ(u.reason, "expired");
  EXPECT_EQ(u.status, "4.0.947");
  // A "command: DATA" line names the failed command, so "no such user" there is a filter's.
  Recipient d;
  d.diagnostic = "550 x@example.org... No such user -------SMTP command DATA";
  parser()->classify(d);
  EXPECT_EQ(d.smtpCommand, "DATA");
  EXPECT_EQ(d.reason, "filtered");
  // Refused at EHLO or at the greeting with no reason given: the client was blocked.
  Recipient h;
  h.diagnostic = "SMTP error from remote mail server after EHLO relay.example.com: 550 Rejected";
  parser()->classify(h);
  EXPECT_EQ(h.smtpCommand, "HELO");
  EXPECT_EQ(h.reason, "blocked");
  Recipient m;
  m.diagnostic = "SMTP error from remote mail server after MAIL FROM:<a@example.com>: 550 Rejected";
  parser()->classify(m);
  EXPECT_EQ(m.reason, "onhold");
}

// Who wrote a report (lhost: header conditions, "and" lines all hold) and whose provider a
// recipient is at (rhost): a decisive wording counts as ordinary in a "generic" lhost's report
// unless it is "!!"; "!REASON@RHOST" is decisive for that provider's recipients only.
TEST(BounceRules, LhostRhostAndGenericReports) {
  const char* rules =
      "reasons userunknown filtered blocked\n"
      "order userunknown filtered blocked\n"
      "demote userunknown filtered RCPT\n"
      "lhost acme subject ^failure$\nand x-acme .\n"
      "lhost plain subject ^undelivered\n"
      "generic plain\n"
      "rhost bigisp (?:^|\\.)bigisp\\.example$\n"
      "rule !userunknown acme-unknown no such person\n"
      "rule !!blocked agent-block agent says go away\n"
      "rule !userunknown@bigisp bigisp-unknown >: gone\n"
      "rule userunknown unknown user unknown|no such person|>: gone\n";
  auto p = BounceParser::fromText(rules, "t.conf");
  ASSERT_TRUE(p.ok()) << p.message();
  auto report = [&](const std::string& subject, const std::string& extra, const std::string& rcpt, const std::string& diag) {
    std::string m = "From: MAILER-DAEMON@mx.example.net\nTo: s@example.com\nSubject: " + subject + "\n" + extra +
                    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
                    "--B\n\nNot delivered.\n\n--B\nContent-Type: message/delivery-status\n\n"
                    "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; " + rcpt +
                    "\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 " + diag + "\n\n--B--\n";
    return p.value()->parse(m, /*nameMta=*/true);
  };
  Report a = report("failure", "X-Acme: 1\n", "x@example.org", "no such person");
  EXPECT_EQ(a.mta, "acme");
  ASSERT_EQ(a.recipients.size(), 1u);
  EXPECT_EQ(a.recipients[0].reason, "userunknown");  // acme's own wording decides
  Report half = report("failure", "", "x@example.org", "no such person");
  EXPECT_EQ(half.mta, "");  // the "and" condition does not hold
  Report g = report("Undelivered Mail", "", "x@example.org", "no such person");
  EXPECT_EQ(g.mta, "plain");
  ASSERT_EQ(g.recipients.size(), 1u);
  EXPECT_EQ(g.recipients[0].reason, "filtered");  // generic: the unknown command demotes it
  Report b = report("Undelivered Mail", "", "x@example.org", "agent says go away, no such person");
  EXPECT_EQ(b.recipients[0].reason, "blocked");  // "!!" is decisive in a generic report too
  Report kIsp = report("Undelivered Mail", "", "x@mail.bigisp.example", "<x@mail.bigisp.example>: gone");
  EXPECT_EQ(kIsp.recipients[0].reason, "userunknown");  // decisive for bigisp's recipients
  Report other = report("Undelivered Mail", "", "x@example.org", "<x@example.org>: gone");
  EXPECT_EQ(other.recipients[0].reason, "filtered");  // only a wording elsewhere
  auto badRhost = BounceParser::fromText("reasons a\nrule !a@nowhere n x\n", "t.conf");
  ASSERT_FALSE(badRhost.ok());
  EXPECT_NE(badRhost.message().find("t.conf:2: unknown rhost \"nowhere\""), std::string::npos) << badRhost.message();
  auto badAnd = BounceParser::fromText("reasons a\nand subject x\nrule a n x\n", "t.conf");
  ASSERT_FALSE(badAnd.ok());
  EXPECT_NE(badAnd.message().find("t.conf:2: \"and\" without an lhost line"), std::string::npos) << badAnd.message();
}

// "yield REASON OTHER@CMD": the status code's reason gives way to the text's only when the
// failed command is CMD (an X.1.1 "bad mailbox" code under "address rejected" is the sender's
// refusal at MAIL FROM, the recipient's elsewhere).
TEST(BounceRules, YieldToATextReasonAtOneCommand) {
  auto p = BounceParser::fromText(
      "reasons userunknown rejected\nstatus 5.1.1 userunknown\nrule rejected r address rejected\n"
      "yield userunknown rejected@MAIL\n", "t.conf");
  ASSERT_TRUE(p.ok()) << p.message();
  auto at = [&](std::string command) {
    Recipient r;
    r.status = "5.1.1";
    r.diagnostic = "550 5.1.1 Address rejected";
    r.smtpCommand = std::move(command);
    (*p)->classify(r, {});
    return r.reason;
  };
  EXPECT_EQ(at("MAIL"), "rejected");
  EXPECT_EQ(at("RCPT"), "userunknown");
  EXPECT_EQ(at(""), "userunknown");
  auto bad = BounceParser::fromText("reasons a b\nyield a b@\n", "t.conf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("t.conf:2: \"b@\" names no command"), std::string::npos) << bad.message();
}

TEST(BounceRules, FileErrorsNameTheLine) {
  auto bad = BounceParser::fromText("reasons userunknown\nrule userunknown x (unclosed\n", "t.conf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("t.conf:2: bad pattern for rule x: "), std::string::npos) << bad.message();
  auto badLater = BounceParser::fromText("reasons userunknown\nrule userunknown a user unknown\n\nrule userunknown b no such (user|mailbox\n", "t.conf");
  ASSERT_FALSE(badLater.ok());
  EXPECT_NE(badLater.message().find("t.conf:4: bad pattern for rule b: "), std::string::npos) << badLater.message();
  auto unknown = BounceParser::fromText("reasons a\nrule b name x\n", "t.conf");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("t.conf:2: unknown reason"), std::string::npos);
  EXPECT_FALSE(BounceParser::fromText("frobnicate x\n", "t.conf").ok());
  EXPECT_FALSE(BounceParser::load("/nonexistent/rules.conf").ok());
}

const char* kDsn =
    "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
    "To: sender+abc.1.xxxxxxxx@bounce.example.com\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n"
    "--BB\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
    "--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
    "Reporting-MTA: dns; mx.example.net\r\n\r\n"
    "Final-Recipient: rfc822; one@example.org\r\nOriginal-Recipient: rfc822; One@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.org\r\nDiagnostic-Code: smtp; 550 5.1.1 <one@example.org>: User unknown\r\n\r\n"
    "Final-Recipient: rfc822; two@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n"
    "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n"
    "Final-Recipient: rfc822; three@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
    "Diagnostic-Code: X-Postfix; connect to mx.example.org[192.0.2.9]:25: Connection timed out\r\n\r\n"
    "--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    "Return-Path: <sender+abc.1.xxxxxxxx@bounce.example.com>\r\nMessage-ID: <orig-1@example.com>\r\nFrom: sender@example.com\r\n\r\n"
    "--BB--\r\n";

TEST(BounceParser, DsnWithSeveralRecipients) {
  Report rep = parser()->parse(kDsn);
  ASSERT_EQ(rep.kind, Kind::kBounce);
  EXPECT_EQ(rep.format, "rfc3464");
  ASSERT_EQ(rep.recipients.size(), 3u);
  EXPECT_EQ(rep.recipients[0].recipient, "one@example.org");
  EXPECT_EQ(rep.recipients[0].originalRecipient, "One@example.org");
  EXPECT_EQ(rep.recipients[0].reason, "userunknown");
  EXPECT_EQ(rep.recipients[0].hard, 1);
  EXPECT_EQ(rep.recipients[0].remoteMta, "mx.example.org");
  EXPECT_EQ(rep.recipients[1].reason, "mailboxfull");
  EXPECT_EQ(rep.recipients[1].hard, 0);
  EXPECT_EQ(rep.recipients[2].action, "delayed");
  EXPECT_EQ(rep.recipients[2].status, "4.4.1");
  EXPECT_EQ(rep.recipients[2].hard, 0);
  EXPECT_EQ(rep.originalMessageId, "orig-1@example.com");
  EXPECT_EQ(rep.originalReturnPath, "sender+abc.1.xxxxxxxx@bounce.example.com");
}

// A DSN written around a delivery agent's refusal: the agent's lines decide the reason (the
// DSN's Status stays as reported); not when the report's sender is not a bounce sender, and not
// when the agent's words are not understood.
TEST(BounceParser, DeliveryAgentRefusalInsideADsn) {
  auto dsn = [](const std::string& from, const std::string& said) {
    return "From: " + from + "\nTo: <s@example.com>\nSubject: Returned mail\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\n\n"
           "Your message to <nekochan> was automatically rejected:\n" + said + "\n\n--B\n"
           "Content-Type: message/delivery-status\n\nReporting-MTA: dns; gw.example.jp\n\n"
           "Final-Recipient: rfc822; u@example.jp\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 <u@example.jp>... User Unknown\n\n--B--\n";
  };
  Report a = parser()->parse(dsn("Mail Delivery Subsystem <MAILER-DAEMON@gw.example.jp>", "Not enough disk space"));
  ASSERT_EQ(a.recipients.size(), 1u);
  EXPECT_EQ(a.recipients[0].reason, "mailboxfull");
  EXPECT_EQ(a.recipients[0].status, "5.1.1");
  EXPECT_EQ(a.recipients[0].hard, 0);
  EXPECT_EQ(a.recipients[0].rule.rfind("mda:dovecot:", 0), 0u) << a.recipients[0].rule;
  EXPECT_EQ(a.recipients[0].diagnostic, "Not enough disk space");

  Report b = parser()->parse(dsn("Someone <someone@example.jp>", "Not enough disk space"));
  ASSERT_EQ(b.recipients.size(), 1u);
  EXPECT_EQ(b.recipients[0].reason, "userunknown");

  Report c = parser()->parse(dsn("MAILER-DAEMON@gw.example.jp", "Something nobody has written before"));
  ASSERT_EQ(c.recipients.size(), 1u);
  EXPECT_EQ(c.recipients[0].reason, "userunknown");
  EXPECT_EQ(c.recipients[0].rule, "status:5.1.1");

  std::string name;
  const RuleSet& rs = parser()->rules();
  EXPECT_EQ(rs.findMda("x\nprocmail: Quota exceeded while writing \"/var/mail/u\"\n", &name), 2u);
  EXPECT_EQ(name, "procmail");
  EXPECT_EQ(rs.findMda("x\n  procmail: indented is quoted text\n", &name), std::string::npos);
}

// Amazon SES notifications by e-mail: the notification object itself, or the whole SNS envelope
// with the notification as a JSON string in "Message" (line wraps "!\n " undone); the original's
// Message-ID header is what the report names.
TEST(BounceParser, SesNotificationsByMail) {
  std::string head = "From: SES <no-reply@sns.amazonaws.com>\nTo: ops@example.com\nSubject: AWS Notification Message\n\n";
  std::string note =
      R"({"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"gone@example.org","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},"mail":{"source":"app@example.com","messageId":"ses-id-1","commonHeaders":{"messageId":"<orig-7@example.com>"}}})";
  Report a = parser()->parse(head + note + "\n\n--\nfooter\n");
  ASSERT_EQ(a.kind, Kind::kBounce);
  EXPECT_EQ(a.format, "ses-json");
  ASSERT_EQ(a.recipients.size(), 1u);
  EXPECT_EQ(a.recipients[0].recipient, "gone@example.org");
  EXPECT_EQ(a.recipients[0].reason, "userunknown");
  EXPECT_EQ(a.originalMessageId, "orig-7@example.com");
  EXPECT_EQ(a.originalReturnPath, "app@example.com");

  std::string escaped;
  for (char c : note) {
    if (c == '"') escaped += "\\\"";
    else escaped += c;
  }
  escaped.insert(escaped.find("user unknown") + 5, "!\n ");  // SNS's wrap inside the string
  std::string sns = "{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"m-1\",\n  \"Message\" : \"" + escaped +
                    "\",\n  \"Timestamp\" : \"2016-10-21T06:58:02.294Z\"\n}\n";
  Report b = parser()->parse(head + sns);
  ASSERT_EQ(b.kind, Kind::kBounce) << b.problem;
  ASSERT_EQ(b.recipients.size(), 1u);
  EXPECT_EQ(b.recipients[0].recipient, "gone@example.org");
  EXPECT_EQ(b.recipients[0].diagnostic, "550 5.1.1 user unknown");
  EXPECT_EQ(b.originalMessageId, "orig-7@example.com");

  Report c = parser()->parse(head + "{\n  \"Type\" : \"Notification\",\n  \"Message\" : \"not json\"\n}\n");
  EXPECT_NE(c.kind, Kind::kBounce);
}

// fml (mailing-list manager) notices to the list admin: the subject marks them, the address in
// the notice is the recipient (a sentence about a Message-ID is not the Message-ID's value), the
// returned mail after "Original mail as follows:" is not read for recipients.
TEST(BounceParser, FmlNotices) {
  std::string loop = "From: neko-admin@example.co.jp\nTo: neko-admin@example.co.jp\n"
                     "Subject: Loop Alert: Duplicated Message-ID (neko ML)\nX-MLServer: fml [fml 4.0.3]\n\n"
                     "Duplicated Message-ID in <neko@example.co.jp>.\n\n\nOriginal mail as follows:\n\n"
                     "   From: tora@example.org\n   To: neko@example.co.jp\n   Message-ID: <m-1@example.org>\n";
  Report a = parser()->parse(loop);
  ASSERT_EQ(a.kind, Kind::kBounce);
  ASSERT_EQ(a.recipients.size(), 1u);
  EXPECT_EQ(a.recipients[0].recipient, "neko@example.co.jp");
  EXPECT_EQ(a.recipients[0].reason, "systemerror");
  std::string member = "From: cats-admin@example.jp\nTo: cats-admin@example.jp\n"
                       "Subject: NOT MEMBER article from tora@example.org (cats ML)\n\n"
                       "NOT MEMBER article from tora@example.org\n\nOriginal mail as follows:\n\n   Subject: hi\n";
  Report b = parser()->parse(member);
  ASSERT_EQ(b.kind, Kind::kBounce);
  ASSERT_EQ(b.recipients.size(), 1u);
  EXPECT_EQ(b.recipients[0].recipient, "tora@example.org");
  EXPECT_EQ(b.recipients[0].reason, "rejected");
  // A Message-ID's value is never a recipient.
  Report c = parser()->parse("From: MAILER-DAEMON@example.org\nSubject: Undeliverable\nTo: s@example.com\n\n"
                             "<gone@example.net>: 550 user unknown\nMessage-ID: <abc@example.com>\n");
  ASSERT_EQ(c.recipients.size(), 1u);
  EXPECT_EQ(c.recipients[0].recipient, "gone@example.net");
}

// A report's own statement of why (headline rules) names every recipient's reason; without it
// the recipient's line decides. 5.6.0 says nothing by itself: a wording wins, else contenterror.
TEST(BounceParser, HeadlineAndVagueMediaCode) {
  auto text = [](const std::string& said) {
    return "From: Mail Delivery Subsystem <MAILER-DAEMON@lsean.ezweb.ne.jp>\nTo: s@example.com\n"
           "Subject: Mail System Error - Returned Mail\n\n" + said +
           "\n\n<gone@ezweb.ne.jp>: 550 user unknown (in reply to RCPT TO command)\n";
  };
  Report a = parser()->parse(text("The user(s) account is disabled."));
  ASSERT_EQ(a.recipients.size(), 1u);
  EXPECT_EQ(a.recipients[0].reason, "suspend");
  EXPECT_EQ(a.recipients[0].rule, "headline:ezweb-account-disabled");
  EXPECT_EQ(a.recipients[0].hard, 0);
  Report b = parser()->parse(text("Your mail could not be delivered."));
  ASSERT_EQ(b.recipients.size(), 1u);
  EXPECT_EQ(b.recipients[0].reason, "userunknown");

  Recipient spam;
  spam.diagnostic = "554 5.6.0 This message has been scored as spam with a probability of more than 90%";
  parser()->classify(spam);
  EXPECT_EQ(spam.reason, "spamdetected");
  Recipient media;
  media.diagnostic = "554 5.6.0 Something about the body";
  parser()->classify(media);
  EXPECT_EQ(media.reason, "contenterror");
  EXPECT_EQ(media.status, "5.6.0");
}

TEST(BounceParser, ArfComplaint) {
  std::string arf =
      "From: staff@isp.example\nSubject: abuse report\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\n\n"
      "--F\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
      "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\n"
      "Original-Mail-From: <bounce+id.0.abcdefgh@example.com>\nOriginal-Rcpt-To: <victim@isp.example>\n\n"
      "--F\nContent-Type: message/rfc822\n\nMessage-ID: <m1@example.com>\nTo: victim@isp.example\n\nhello\n--F--\n";
  Report rep = parser()->parse(arf);
  ASSERT_EQ(rep.kind, Kind::kComplaint);
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].recipient, "victim@isp.example");
  EXPECT_EQ(rep.recipients[0].reason, "feedback");
  EXPECT_EQ(rep.recipients[0].feedbackType, "abuse");
  EXPECT_EQ(rep.recipients[0].hard, -1);
  EXPECT_EQ(rep.originalMessageId, "m1@example.com");
  EXPECT_EQ(rep.originalReturnPath, "bounce+id.0.abcdefgh@example.com");
}

TEST(BounceParser, AutoReplyIsNotABounce) {
  Report rep = parser()->parse(
      "From: Kiji <kiji@example.org>\nTo: me@example.com\nSubject: Out of Office: hello\nAuto-Submitted: auto-replied\n\n"
      "I am away until Monday.\n");
  ASSERT_EQ(rep.kind, Kind::kAutoReply);
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].reason, "vacation");
  EXPECT_EQ(rep.recipients[0].hard, -1);
}

// RFC 3834 / vacation markers decide before the text heuristics: an out-of-office reply to a
// bounce (its Subject and quoted text read like one) is an auto-reply; the same markers on an
// MTA's own bounce (Exim and Google Groups write "Auto-Submitted: auto-replied"), or on a DSN,
// do not make it one.
TEST(BounceParser, DeclaredAutoReplyBeatsBounceWording) {
  const std::string quoted =
      "I am out of the office until Monday.\n\n"
      "> This message was created automatically by mail delivery software.\n"
      "> A message that you sent could not be delivered to one or more of its recipients.\n"
      ">   nobody@example.net\n>     550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown\n";
  struct Marker {
    const char* name;
    std::string headers;
  };
  const Marker cases[] = {
      {"auto-submitted", "Auto-Submitted: auto-replied (vacation)\n"},
      {"x-autoreply", "X-Autoreply: yes\n"},
      {"precedence", "Precedence: auto_reply\n"},
      {"x-autorespond", "X-Autorespond: on\n"},
  };
  for (const Marker& c : cases) {
    Report rep = parser()->parse("From: Kiji <kiji@example.org>\nTo: me@example.com\n"
                                 "Subject: Out of office: Re: Undeliverable: Mail delivery failed\n" +
                                 c.headers + "\n" + quoted);
    EXPECT_EQ(rep.kind, Kind::kAutoReply) << c.name << ": got " << toString(rep.kind);
    ASSERT_EQ(rep.recipients.size(), 1u) << c.name;
    EXPECT_EQ(rep.recipients[0].recipient, "kiji@example.org") << c.name;
    EXPECT_EQ(rep.recipients[0].reason, "vacation") << c.name;
    EXPECT_EQ(rep.recipients[0].hard, -1) << c.name;
  }
  // Without any marker the same message still reads as the bounce it quotes (Subject only).
  Report unmarked = parser()->parse("From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nTo: me@example.com\n"
                                    "Subject: Mail delivery failed: returning message to sender\n"
                                    "Auto-Submitted: auto-replied\nX-Failed-Recipients: nobody@example.net\n\n"
                                    "This message was created automatically by mail delivery software.\n\n"
                                    "A message that you sent could not be delivered to one or more of its\n"
                                    "recipients. This is a permanent error. The following address(es) failed:\n\n"
                                    "  nobody@example.net\n    SMTP error from remote mail server after RCPT TO:<nobody@example.net>:\n"
                                    "    550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown\n");
  EXPECT_EQ(unmarked.kind, Kind::kBounce) << "an Exim bounce with Auto-Submitted: auto-replied";
  ASSERT_EQ(unmarked.recipients.size(), 1u);
  EXPECT_EQ(unmarked.recipients[0].recipient, "nobody@example.net");
  EXPECT_EQ(unmarked.recipients[0].reason, "userunknown");
  // A DSN carrying Auto-Submitted stays a DSN.
  std::string dsn = kDsn;
  dsn.insert(dsn.find("Subject:"), "Auto-Submitted: auto-replied\r\n");
  Report withDsn = parser()->parse(dsn);
  EXPECT_EQ(withDsn.kind, Kind::kBounce);
  EXPECT_EQ(withDsn.recipients.size(), 3u);
}

TEST(BounceParser, QmailTextBounceInAnMbox) {
  std::string qmail =
      "From MAILER-DAEMON Thu Jan  1 00:00:00 2015\n"
      "From: MAILER-DAEMON@mx.example.jp\nTo: sender@example.com\nSubject: failure notice\n\n"
      "Hi. This is the qmail-send program at mx.example.jp.\n"
      "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
      "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
      "<kijitora@example.org>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 <kijitora@example.org>... User unknown\n"
      "Giving up on 192.0.2.1.\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <sender@example.com>\n"
      "Message-ID: <q1@example.com>\nTo: kijitora@example.org\n\nhi\n"
      "\nFrom someone@example.net Thu Jan  1 00:00:00 2015\nFrom: someone@example.net\nSubject: lunch?\n\nnot a bounce\n";
  auto reps = parser()->parseFile(qmail);
  ASSERT_EQ(reps.size(), 2u);
  ASSERT_EQ(reps[0].kind, Kind::kBounce);
  ASSERT_EQ(reps[0].recipients.size(), 1u);
  EXPECT_EQ(reps[0].recipients[0].recipient, "kijitora@example.org");
  EXPECT_EQ(reps[0].recipients[0].reason, "userunknown");
  EXPECT_EQ(reps[0].recipients[0].status, "5.1.1");
  EXPECT_EQ(reps[0].originalMessageId, "q1@example.com");
  EXPECT_EQ(reps[1].kind, Kind::kNotBounce);
  EXPECT_TRUE(reps[1].recipients.empty());
}

// MailMarshal states the reply once, above the list of recipients it applies to.
TEST(BounceParser, ReplyStatedAboveTheRecipientList) {
  Report rep = parser()->parse(
      "From: postmaster@relay.example.com\nTo: s@example.com\nSubject: Undeliverable Mail\n\n"
      "Your message:\n   From:    s@example.com\n   Subject: Hello\n\nCould not be delivered because of\n\n"
      "550 5.1.1 User unknown\n\nThe following recipients were affected: \n    kijitora@example.org\n\n\n"
      "Additional Information\n======================\nOriginal Sender:    <s@example.com>\n");
  ASSERT_EQ(rep.kind, Kind::kBounce);
  ASSERT_EQ(rep.recipients.size(), 1u);
  const Recipient& r = rep.recipients[0];
  EXPECT_EQ(r.recipient, "kijitora@example.org");
  EXPECT_EQ(r.reason, "userunknown") << r.rule;
  EXPECT_EQ(r.status, "5.1.1");
  EXPECT_EQ(r.replyCode, "550");
}

// A Sendmail transcript names each recipient on the last line of its part.
TEST(BounceParser, SendmailTranscriptPartEndsAtTheRecipientLine) {
  Report rep = parser()->parse(
      "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.jp>\nTo: s@example.jp\n"
      "Subject: Returned mail: Remote protocol error\n\n   ----- Transcript of session follows -----\n"
      "While talking to mx.example.edu:\n>>> MAIL From:<s@example.jp>\n<<< 550 Insecure Mail Relay\n"
      "554 <kijitora@example.edu>... Remote protocol error\n"
      "421 example.org (smtp)... Deferred: Connection timed out during user open with example.org\n"
      "550 example.net (smtp)... 550 Host unknown\n554 <neko@example.net>... 550 Host unknown\n\n"
      "   ----- Unsent message follows -----\n\nhi\n");
  ASSERT_EQ(rep.kind, Kind::kBounce);
  ASSERT_EQ(rep.recipients.size(), 2u);
  EXPECT_EQ(rep.recipients[0].recipient, "kijitora@example.edu");
  EXPECT_EQ(rep.recipients[0].reason, "norelaying") << rep.recipients[0].diagnostic;
  EXPECT_EQ(rep.recipients[0].replyCode, "550");
  EXPECT_EQ(rep.recipients[1].recipient, "neko@example.net");
  EXPECT_EQ(rep.recipients[1].reason, "hostunknown") << rep.recipients[1].diagnostic;
}

// V5 Sendmail's line about a host, "421 host (mailer)... Deferred: ...", carries Sendmail's own
// code, not a reply: a message returned after days of deferrals is no temporary failure. The
// recipient the transcript does not name (taken from the returned message) failed as it says.
TEST(BounceParser, SendmailHostLineCodeIsNoReply) {
  Report rep = parser()->parse(
      "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.jp>\nTo: s@example.jp\n"
      "Subject: Returned mail: Cannot send message for 5 days\n\n   ----- Transcript of session follows -----\n"
      "421 mx.example.org (smtp)... Deferred: Connection timed out during user open with mx.example.org\n\n"
      "   ----- Unsent message follows -----\nFrom: s@example.jp\nTo: tama@example.org\nSubject: x\n\nhi\n");
  ASSERT_EQ(rep.kind, Kind::kBounce);
  ASSERT_EQ(rep.recipients.size(), 1u);
  const Recipient& r = rep.recipients[0];
  EXPECT_EQ(r.recipient, "tama@example.org");
  EXPECT_EQ(r.diagnostic, "mx.example.org (smtp)... Deferred: Connection timed out during user open with mx.example.org");
  EXPECT_EQ(r.replyCode, "");
  EXPECT_EQ(r.reason, "expired") << r.rule;
  EXPECT_EQ(r.status, "5.0.947");
  EXPECT_TRUE(r.statusDerived);
  // A recipient line keeps its code; a host line inside the next recipient's part loses its own.
  Report two = parser()->parse(
      "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.jp>\nTo: s@example.jp\n"
      "Subject: Returned mail: Service unavailable\n\n   ----- Transcript of session follows -----\n"
      "550 <kijitora@example.edu>... User unknown\n"
      "421 example.net (smtp)... Deferred: Connection refused by example.net\n"
      "554 <neko@example.net>... Service unavailable\n\n   ----- Unsent message follows -----\n\nhi\n");
  ASSERT_EQ(two.recipients.size(), 2u);
  EXPECT_EQ(two.recipients[0].replyCode, "550");
  EXPECT_EQ(two.recipients[1].recipient, "neko@example.net");
  EXPECT_EQ(two.recipients[1].diagnostic,
            "example.net (smtp)... Deferred: Connection refused by example.net 554 <neko@example.net>... Service unavailable");
  EXPECT_EQ(two.recipients[1].replyCode, "554");
  EXPECT_EQ(two.recipients[1].status.substr(0, 2), "5.") << two.recipients[1].status;
}

// X-Failed-Recipients against the text: the text's list (an address at a line's start) decides
// when the header names an address the text does not; an address named in a sentence (Google
// Groups greets the sender by address) does not.
TEST(BounceParser, TextListAgainstXFailedRecipients) {
  const std::string head =
      "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nTo: s@example.jp\n"
      "Subject: Mail delivery failed: returning message to sender\n";
  Report exim = parser()->parse(head + "X-Failed-Recipients: tama@example.jp\n\n"
      "This message was created automatically by mail delivery software.\n\n"
      "A message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. "
      "The following address(es) failed:\n\n  tama@lists.example.jp\n    SMTP error from remote mail server after RCPT TO:<tama@lists.example.jp>:\n"
      "    host mx.example.jp [192.0.2.1]: 550 5.1.1 User unknown\n");
  ASSERT_EQ(exim.recipients.size(), 1u);
  EXPECT_EQ(exim.recipients[0].recipient, "tama@lists.example.jp");
  EXPECT_EQ(exim.recipients[0].reason, "userunknown") << exim.recipients[0].rule;
  Report same = parser()->parse(head + "X-Failed-Recipients: tama@example.jp\n\nThe following address(es) failed:\n\n"
      "  tama@example.jp\n    550 5.1.1 User unknown\n");
  ASSERT_EQ(same.recipients.size(), 1u);
  EXPECT_EQ(same.recipients[0].recipient, "tama@example.jp");
  Report groups = parser()->parse(
      "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nTo: s@example.jp\n"
      "Subject: Delivery Status Notification (Failure)\nX-Failed-Recipients: group@googlegroups.com\n\n"
      "Hello s@example.jp, we are writing to let you know that the group you tried to contact (group) may not exist,\n"
      "or you may not have permission to post messages to the group.\n");
  ASSERT_EQ(groups.recipients.size(), 1u);
  EXPECT_EQ(groups.recipients[0].recipient, "group@googlegroups.com");
  Report greeting = parser()->parse(
      "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nTo: s@example.jp\n"
      "Subject: Delivery Status Notification (Failure)\nX-Failed-Recipients: group@googlegroups.com\n\n"
      "Dear other@example.net, we are writing to let you know that the group you tried to contact may not exist.\n");
  ASSERT_EQ(greeting.recipients.size(), 1u);
  EXPECT_EQ(greeting.recipients[0].recipient, "group@googlegroups.com");
}

// A DSN's own category field (PowerMTA's X-PowerMTA-BounceCategory) names the reason, whatever
// the diagnostic's words and the status code say; an unknown category leaves them to decide.
TEST(BounceParser, DsnCategoryFieldNamesTheReason) {
  auto dsn = [](std::string_view category) {
    return "From: postmaster@mta.example.net\nTo: b@example.net\nSubject: Delivery report\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
           "--b\nContent-Type: text/plain\n\nDelivery failed.\n\n--b\nContent-Type: message/delivery-status\n\n"
           "Reporting-MTA: dns;mta.example.net\n\nFinal-Recipient: rfc822;tama@example.jp\nAction: failed\n"
           "Status: 5.2.1 (mailbox disabled, not accepting messages)\n"
           "Diagnostic-Code: smtp;550 5.2.1 <tama@example.jp>... User Unknown\n"
           "X-PowerMTA-BounceCategory: " + std::string(category) + "\n\n--b--\n";
  };
  Report quota = parser()->parse(dsn("Quota-Issues"));
  ASSERT_EQ(quota.recipients.size(), 1u);
  EXPECT_EQ(quota.recipients[0].reason, "mailboxfull");
  EXPECT_EQ(quota.recipients[0].rule, "category:quota-issues");
  EXPECT_EQ(quota.recipients[0].status, "5.2.1");
  Report other = parser()->parse(dsn("something-new"));
  ASSERT_EQ(other.recipients.size(), 1u);
  EXPECT_EQ(other.recipients[0].rule.rfind("category:", 0), std::string::npos) << other.recipients[0].rule;
  auto bad = BounceParser::fromText("reasons a\ncategory x-cat v\n", "t.conf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("t.conf:2: category needs FIELD VALUE REASON"), std::string::npos) << bad.message();
  auto unknown = BounceParser::fromText("reasons a\ncategory x-cat v b\n", "t.conf");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("t.conf:2: unknown reason \"b\""), std::string::npos) << unknown.message();
}

// A gateway's notice that lists nobody, the MTA's DSN attached as the "original message".
TEST(BounceParser, NoticeWrappingTheRealReport) {
  std::string inner =
      "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.jp>\nTo: s@example.jp\n"
      "Subject: Returned mail: User unknown\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"in\"\n\n"
      "--in\nContent-Type: text/plain\n\nThe following addresses had permanent delivery errors\n"
      "kijitora@example.org\n\n--in\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.jp\n\n"
      "Final-Recipient: rfc822; kijitora@example.org\nAction: failed\nStatus: 5.1.1\n"
      "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n\n--in--\n";
  Report rep = parser()->parse(
      "From: Mail Delivery Subsystem <MAILER-DAEMON@gw.example.jp>\nTo: notify@gw.example.jp\n"
      "Subject: Returned mail: User unknown\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"out\"\n\n"
      "--out\nContent-Type: text/plain\n\nThe original message was received at Thu Oct 13 15:22:22 2015\n\n"
      "----- The following addresses had permanent delivery errors -----\n\n"
      "--out\nContent-Type: message/rfc822\n\n" + inner + "\n--out--\n");
  ASSERT_EQ(rep.kind, Kind::kBounce);
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].recipient, "kijitora@example.org");
  EXPECT_EQ(rep.recipients[0].reason, "userunknown");
  EXPECT_EQ(rep.recipients[0].status, "5.1.1");
}

// A Sendmail transcript whose reply follows "while talking to" answered the connection: refused.
TEST(BounceParser, SendmailGreetingRefusalIsBlocked) {
  Report rep = parser()->parse(
      "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.jp>\nTo: s@example.jp\n"
      "Subject: Returned mail: see transcript for details\n\n"
      "   ----- The following addresses had permanent fatal errors -----\n<kijitora@example.org>\n"
      "    (reason: 554 IP=192.0.2.254 - A problem occurred. (BL))\n\n"
      "   ----- Transcript of session follows -----\n... while talking to mx03.example.org.:\n"
      "<<< 554 IP=192.0.2.254 - A problem occurred. (BL)\n554 5.0.0 Service unavailable\n");
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].reason, "blocked") << rep.recipients[0].rule;
  EXPECT_EQ(rep.recipients[0].smtpCommand, "HELO");
}

// A bounce forwarded inline: its DSN fields are quoted with "> ".
TEST(BounceParser, QuotedDsnInAForwardedBounce) {
  Report rep = parser()->parse(
      "From: someone@example.jp\nTo: support@example.jp\nSubject: Fwd: Returned mail: see transcript for details\n\n"
      "Begin forwarded message:\n> From: Mail Delivery Subsystem <MAILER-DAEMON>\n>\n"
      ">    ----- The following addresses had permanent fatal errors -----\n> <k@docomo.example.jp>\n"
      ">     (reason: 550 Unknown user k@docomo.example.jp)\n>\n> Reporting-MTA: dns; smtp.example.jp\n>\n"
      "> Final-Recipient: RFC822; k@docomo.example.jp\n> Action: failed\n> Status: 5.2.0\n"
      "> Diagnostic-Code: SMTP; 550 Unknown user k@docomo.example.jp\n>\n");
  ASSERT_EQ(rep.format, "rfc3464");
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].recipient, "k@docomo.example.jp");
  EXPECT_EQ(rep.recipients[0].status, "5.2.0");
  EXPECT_EQ(rep.recipients[0].diagnostic, "550 Unknown user k@docomo.example.jp");
}

// Exim's delivery to a file: the DSN's recipient is the path, the text names the address.
TEST(BounceParser, DsnStatusOfADeliveryToAFile) {
  Report rep = parser()->parse(
      "From: Mail Delivery System <Mailer-Daemon@mx.example.jp>\nTo: s@example.jp\n"
      "Subject: Mail delivery failed: returning message to sender\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
      "--b\nContent-type: text/plain; charset=us-ascii\n\n"
      "A message that you sent could not be delivered to one or more of its\n"
      "recipients. This is a permanent error. The following address(es) failed:\n\n"
      "  save to /mail/spool/example.jp/n/neko\n    generated by neko@example.jp\n"
      "    mailbox is full: retry timeout exceeded\n\n"
      "--b\nContent-type: message/delivery-status\n\nReporting-MTA: dns; mx.example.jp\n\n"
      "Action: failed\nFinal-Recipient: rfc822;/mail/spool/example.jp/n/neko\nStatus: 5.0.0\n\n--b--\n");
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].recipient, "neko@example.jp");
  EXPECT_EQ(rep.recipients[0].reason, "mailboxfull");
  EXPECT_EQ(rep.recipients[0].status, "5.0.0");
}

TEST(BounceParser, HtmlOnlyBounceIsReadWithoutItsTags) {
  Report rep = parser()->parse(
      "From: MAILER-DAEMON@mx.example.jp\nTo: sender@example.com\nSubject: Undelivered Mail\n"
      "Content-Type: text/html\n\n<html><body><p>Delivery to <b>kijitora@example.org</b> failed:</p>"
      "<p>550 5.1.1 user unknown > x</p></body></html>\n");
  ASSERT_EQ(rep.kind, Kind::kBounce);
  ASSERT_EQ(rep.recipients.size(), 1u);
  EXPECT_EQ(rep.recipients[0].recipient, "kijitora@example.org");
  EXPECT_EQ(rep.recipients[0].status, "5.1.1");
  EXPECT_EQ(rep.recipients[0].diagnostic.find('<'), std::string::npos);
  EXPECT_EQ(rep.recipients[0].diagnostic.find('>'), std::string::npos);
}

TEST(BounceParser, OrdinaryMailIsNotABounce) {
  Report rep = parser()->parse("From: a@example.org\nTo: b@example.com\nSubject: hi\n\nsee you at 5, c@example.net\n");
  EXPECT_EQ(rep.kind, Kind::kNotBounce);
  EXPECT_TRUE(rep.recipients.empty());
}

double seconds(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(BounceBadInput, FiftyMegabyteMessage) {
  std::string big = "From: someone@example.org\nSubject: big\nContent-Type: text/plain\n\n";
  big.reserve(50u << 20);
  while (big.size() < (50u << 20)) big += "lorem ipsum dolor sit amet user unknown mailbox full x@y.example\n";
  auto t0 = std::chrono::steady_clock::now();
  Report rep = parser()->parse(big);
  EXPECT_LT(seconds(t0), 10.0);
  EXPECT_TRUE(rep.truncated);
  EXPECT_EQ(rep.kind, Kind::kNotBounce);
}

TEST(BounceBadInput, FiftyMegabyteBounceStillParses) {
  std::string big(kDsn);
  big.insert(big.find("--BB--"), "--BB\r\nContent-Type: application/octet-stream\r\n\r\n" + std::string(50u << 20, 'A') + "\r\n");
  auto t0 = std::chrono::steady_clock::now();
  Report rep = parser()->parse(big);
  EXPECT_LT(seconds(t0), 10.0);
  EXPECT_EQ(rep.kind, Kind::kBounce);
  EXPECT_EQ(rep.recipients.size(), 3u);
}

TEST(BounceBadInput, ThousandNestedMultiparts) {
  std::string in = "From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n";
  std::string tail;
  for (int i = 0; i < 1000; ++i) {
    in += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
    tail = "\n--b" + std::to_string(i) + "--\n" + tail;
  }
  in += tail;
  auto t0 = std::chrono::steady_clock::now();
  Report rep = parser()->parse(in);
  EXPECT_LT(seconds(t0), 2.0);
  EXPECT_TRUE(rep.kind == Kind::kNotBounce || rep.kind == Kind::kBounce);
  EXPECT_LE(rep.recipients.size(), kMaxRecipients);
}

TEST(BounceBadInput, TruncatedMimeAndMissingBoundary) {
  std::string dsn(kDsn);
  for (size_t cut : {size_t{40}, size_t{300}, dsn.size() / 2, dsn.size() - 10}) {
    Report rep = parser()->parse(dsn.substr(0, cut));
    EXPECT_NE(rep.kind, Kind::kComplaint) << cut;
    for (const auto& r : rep.recipients) EXPECT_FALSE(r.reason.empty());
  }
  std::string noBoundary = dsn;
  noBoundary.replace(noBoundary.find("boundary=\"BB\""), 13, "boundary=\"ZZ\"");
  Report rep = parser()->parse(noBoundary);  // the DSN fields are still found in the text
  EXPECT_EQ(rep.kind, Kind::kBounce);
}

TEST(BounceBadInput, BinaryJunkIsUnparseable) {
  std::string junk;
  for (int i = 0; i < 200000; ++i) junk.push_back(static_cast<char>((i * 7919) & 0xFF));
  Report rep = parser()->parse(junk);
  EXPECT_EQ(rep.kind, Kind::kUnparseable);
  EXPECT_FALSE(rep.problem.empty());
  EXPECT_EQ(parser()->parse("").kind, Kind::kUnparseable);
  EXPECT_EQ(parser()->parseFile("").at(0).kind, Kind::kUnparseable);
  EXPECT_EQ(parser()->parse("no header block here at all\n\n").kind, Kind::kUnparseable);
}

TEST(BounceMatch, VerpFirstThenMessageId) {
  verp::VerpCodec codec("0123456789abcdef0123456789abcdef");
  std::string rp = codec.encode("sender", "ABCDEFGHJKLMNPQR", 1, "bounce.example.com");
  std::string dsn(kDsn);
  size_t p;
  while ((p = dsn.find("sender+abc.1.xxxxxxxx@bounce.example.com")) != std::string::npos) dsn.replace(p, 40, rp);
  Report rep = parser()->parse(dsn);
  BounceMatch m = matchReport(rep, "", codec);
  ASSERT_EQ(m.by, BounceMatch::By::kVerp);
  EXPECT_EQ(m.verp->queueId, "abcdefghjklmnpqr");
  EXPECT_EQ(m.verp->rcptIndex, 1u);
  BounceMatch e = matchReport(Report{}, "", codec);
  EXPECT_EQ(e.by, BounceMatch::By::kNone);
}

// Issue 6: the Message-ID is evidence for complaints only; a forged VERP mac poisons the report.
TEST(BounceMatch, MessageIdOnlyForComplaintsAndNeverPastABadMac) {
  verp::VerpCodec codec("0123456789abcdef0123456789abcdef");
  std::string good = codec.encode("sender", "ABCDEFGHJKLMNPQR", 0, "bounce.example.com");
  std::string bad = good.substr(0, good.find('@') - 8) + "aaaaaaaa" + good.substr(good.find('@'));
  ASSERT_TRUE(verp::VerpCodec::looksLikeVerp(bad));
  auto report = [](Kind kind, std::string returnPath, std::string messageId) {
    Report r;
    r.kind = kind;
    r.originalReturnPath = std::move(returnPath);
    r.originalMessageId = std::move(messageId);
    return r;
  };
  struct MatchCase {
    const char* name;
    Report rep;
    std::string envelopeRcpt;
    BounceMatch::By want;
    bool wantRejected;
  } cases[] = {
      {"DSN to our VERP address", report(Kind::kBounce, "", "m1@example.com"), good, BounceMatch::By::kVerp, false},
      {"DSN quoting our VERP return path", report(Kind::kBounce, good, "m1@example.com"), "postmaster@example.com",
       BounceMatch::By::kVerp, false},
      {"DSN to a non-VERP address quoting a real Message-ID", report(Kind::kBounce, "", "m1@example.com"),
       "postmaster@example.com", BounceMatch::By::kNone, false},
      {"DSN to a VERP address with a forged mac quoting a real Message-ID", report(Kind::kBounce, "", "m1@example.com"),
       bad, BounceMatch::By::kNone, true},
      {"DSN quoting a forged VERP return path and a real Message-ID", report(Kind::kBounce, bad, "m1@example.com"),
       "", BounceMatch::By::kNone, true},
      {"complaint at the FBL address with the original Message-ID", report(Kind::kComplaint, "", "m1@example.com"),
       "fbl@example.com", BounceMatch::By::kMessageId, false},
      {"complaint with our VERP return path", report(Kind::kComplaint, good, "m1@example.com"), "fbl@example.com",
       BounceMatch::By::kVerp, false},
      {"complaint with a forged VERP return path and a real Message-ID",
       report(Kind::kComplaint, bad, "m1@example.com"), "fbl@example.com", BounceMatch::By::kNone, true},
      {"complaint sent to a forged VERP address", report(Kind::kComplaint, "", "m1@example.com"), bad,
       BounceMatch::By::kNone, true},
      {"complaint with no evidence at all", report(Kind::kComplaint, "", ""), "fbl@example.com",
       BounceMatch::By::kNone, false},
  };
  for (const auto& c : cases) {
    BounceMatch m = matchReport(c.rep, c.envelopeRcpt, codec);
    EXPECT_EQ(static_cast<int>(m.by), static_cast<int>(c.want)) << c.name;
    EXPECT_EQ(!m.rejected.empty(), c.wantRejected) << c.name << ": rejected list";
    EXPECT_EQ(m.by == BounceMatch::By::kNone, !m.ignored.empty()) << c.name << ": a reason to log iff ignored";
    EXPECT_EQ(m.messageId, c.rep.originalMessageId) << c.name;
  }
  // The forged mac of the shipped sample DSN: ignored, not matched by its Message-ID any more.
  Report forged = parser()->parse(kDsn);
  BounceMatch f = matchReport(forged, "sender+abc.1.xxxxxxxx@bounce.example.com", codec);
  EXPECT_EQ(f.by, BounceMatch::By::kNone);
  EXPECT_EQ(f.messageId, "orig-1@example.com");
  EXPECT_FALSE(f.rejected.empty());
}

TEST(BounceMatch, Disposition) {
  Report rep = parser()->parse(kDsn);
  ASSERT_EQ(rep.recipients.size(), 3u);
  EXPECT_EQ(dispositionOf(rep, rep.recipients[0]), Disposition::kSuppress);   // user unknown
  EXPECT_EQ(dispositionOf(rep, rep.recipients[1]), Disposition::kEventOnly);  // mailbox full
  Report complaint;
  complaint.kind = Kind::kComplaint;
  EXPECT_EQ(dispositionOf(complaint, Recipient{}), Disposition::kSuppress);
  Report vacation;
  vacation.kind = Kind::kAutoReply;
  EXPECT_EQ(dispositionOf(vacation, Recipient{}), Disposition::kIgnore);
  EXPECT_STREQ(toString(Disposition::kEventOnly), "event");
}

}  // namespace
}  // namespace sluice::bounce
