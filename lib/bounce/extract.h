// extract.h - internal to lib/bounce: the readers that turn a parsed message into recipients
// (RFC 3464 DSN, RFC 5965 ARF, RFC 3834 auto-reply, human-readable MTA text). Not for callers
// outside the module; bounce.h is the interface.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bounce/bounce.h"
#include "bounce/rules.h"
#include "mime/mime.h"

namespace sluice::bounce::detail {

// What every reader needs to know about one report.
struct Envelope {
  const mime::Message* msg = nullptr;
  std::string from;             // address in From:
  std::string fromRaw;          // From: as written (decoded words)
  std::string to;               // first address in To:
  std::string subject;          // decoded
  const mime::Part* deliveryStatus = nullptr;  // message/delivery-status part
  const mime::Part* feedback = nullptr;        // message/feedback-report part
  const mime::Fields* originalPart = nullptr;  // headers of the returned message/rfc822 part
  mime::Fields originalInline;  // or of a returned message written inline after a cut line
  // Headers of the returned original message (may be empty).
  const mime::Fields& original() const { return originalPart ? *originalPart : originalInline; }
  // The human-readable text, cut before the returned message (at most 64 KiB). The cut (an RE2
  // search of the cut rules) is made the first time text() is asked for: a DSN whose returned
  // message is a part of its own often needs only its fields, and gates can look at fullText.
  std::string_view text() const;
  std::string_view fullText;    // the same, not cut (first 256 KiB)
  // text() lower-cased (ASCII), made once for the readers and the parser that need it.
  const std::string& lowerText() const;
  const RuleSet* rules = nullptr;
  mutable bool cut = false;     // text_ holds the cut text
  mutable std::string_view text_;
  mutable bool lowered = false;  // lower_ holds lowerText()
  mutable std::string lower_;
  std::string ownedText;        // backing store when the text is not a part's body (HTML)
  std::set<std::string> notRecipients;  // the original sender, the report's own addresses
  std::string originalFrom;        // first address of original().get("from") (extractAddress)
  std::string originalReturnPath;  // the same of its Return-Path
};

Envelope inspect(const mime::Message& msg, const RuleSet& rules);
bool looksLikeBounce(const Envelope& env, const RuleSet& rules);

bool readArf(const Envelope& env, const RuleSet& rules, Report& out);
bool readDsn(const Envelope& env, const RuleSet& rules, Report& out);
// Amazon SES notifications sent by e-mail (SNS): JSON with bounce/complaint/delivery records.
bool readSesJson(const Envelope& env, Report& out);
bool readText(const Envelope& env, const RuleSet& rules, Report& out);
bool readAutoReply(const Envelope& env, const RuleSet& rules, Report& out);
// Marked an automatic reply in its headers (RFC 3834 Auto-Submitted, or a vacation program's
// X-Autoreply, Precedence: auto_reply ...), with no DSN or ARF part, not from a bounce sender
// and without X-Failed-Recipients: an auto-reply whatever its Subject or text quote ("Out of
// office: Re: Undeliverable ..."), read before the text-bounce heuristics.
bool declaredAutoReply(const Envelope& env, const RuleSet& rules);

// collapseSpace() and ASCII lower-casing in one pass.
std::string collapseLower(std::string_view text, size_t max = kMaxDiagnostic);
// The first occurrence of needle in hay, or npos: memchr for the needle's rarest byte
// (byteCommonness), one comparison at each. std::string_view::find stops at every occurrence of
// the needle's first byte, in report text a letter as common as 't' or 'w'. Exact bytes.
size_t findRare(std::string_view hay, std::string_view needle);
// The same with the anchor given: rareIndex(needle), worked out once for a fixed needle.
size_t rareIndex(std::string_view needle);
size_t findRare(std::string_view hay, std::string_view needle, size_t anchor);
// How many bytes of s are control bytes other than TAB, LF and CR (SSE2 where available).
size_t controlByteCount(std::string_view s);
// First address at or after pos in t; *at/*end get its bounds. Domain lower-cased.
std::string addressAt(std::string_view t, size_t pos, size_t* at, size_t* end);
// The paragraph(s) of text about one address: from its line to the next other recipient's line.
// lower is text lower-cased (same length).
std::string blockFor(std::string_view text, std::string_view lower, std::string_view addr,
                     const std::vector<std::string>& others);

// Layouts of the recipients' causes in report text (text_layout.cc).
// The last paragraph before `end` whose first line begins with a 4xx/5xx reply code, or "".
std::string replyAbove(std::string_view text, size_t end);
// In a Sendmail transcript (sendmailTranscript(lower)), addr's part: up to its "NNN <addr>...
// text" line, from the previous such line or the last "while talking to"; "" when there is none.
std::string sendmailPart(std::string_view text, std::string_view lower, std::string_view addr);
// Whether lower (lower-cased text) is a Sendmail transcript ("transcript of session follows",
// "while talking to").
bool sendmailTranscript(std::string_view lower);
// A Sendmail transcript's lines about a host ("421 example.org (smtp)... Deferred: ..."), whose
// code is Sendmail's verdict on the attempt, not a reply: all of them without the code, one a
// line ("" when there is none); and text with the code of each such line dropped.
std::string sendmailHostLines(std::string_view text);
std::string withoutHostCodes(std::string_view text);
// t with the quoting of a reply or forward ("> ", ">> ") taken off every line.
std::string unquote(std::string_view t);

}  // namespace sluice::bounce::detail
