// text_layout.cc - internal to lib/bounce: where a human-readable report puts each recipient's
// cause when it is not on the lines after the address: a reply stated once above the recipient
// list (MailMarshal), a Sendmail transcript's recipient line that ends its part and its lines
// about a host (whose code is Sendmail's own), and a report forwarded with "> " quoting. Single
// passes over the text, bounded by its length.
#include <algorithm>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "bounce/bounce.h"
#include "bounce/extract.h"

namespace sluice::bounce::detail {

// A reply stated once above the list of recipients it applies to (MailMarshal: "Could not be
// delivered because of" / "550 5.1.1 User unknown" / "The following recipients were affected:"):
// the last paragraph before `end` whose first line begins with a 4xx/5xx reply code, or "".
std::string replyAbove(std::string_view text, size_t end) {
  std::string_view head = text.substr(0, end);
  size_t pos = 0, found = std::string_view::npos;
  while (pos < head.size()) {
    size_t eol = head.find('\n', pos);
    if (eol == std::string_view::npos) eol = head.size();
    std::string_view line = trim(head.substr(pos, eol - pos));
    if (line.size() > 4 && (line[0] == '4' || line[0] == '5') && line[1] >= '0' && line[1] <= '5' &&
        line[2] >= '0' && line[2] <= '9' && (line[3] == ' ' || line[3] == '-')) {
      found = pos;
    }
    pos = eol + 1;
  }
  if (found == std::string_view::npos) return "";
  size_t stop = head.find("\n\n", found);
  return collapseSpace(head.substr(found, stop == std::string_view::npos ? std::string_view::npos : stop - found));
}

// Sendmail's transcript names each failed recipient on the LAST line of its part, after what the
// server said: "While talking to mx.example.edu:" / ">>> MAIL From:<s@x>" / "<<< 550 Insecure Mail
// Relay" / "554 <rcpt@example.edu>... Remote protocol error". A recipient line is "NNN [X.Y.Z]
// <addr>... text". For addr's recipient line (lower-cased text): its part, from the later of the
// previous recipient line and the last "while talking to" line before it (else its own line) to
// its own line's end; "" when addr has no such line or the text is no Sendmail transcript.
namespace {

bool sendmailRecipientLine(std::string_view line, std::string_view* addr) {
  if (line.size() < 8 || !(line[0] >= '2' && line[0] <= '5') || line[1] < '0' || line[1] > '9' ||
      line[2] < '0' || line[2] > '9' || line[3] != ' ') {
    return false;
  }
  size_t lt = 4, sp = line.find(' ', 4);
  if (sp != std::string_view::npos && sp > 4 && findStatusCode(line.substr(4, sp - 4)) == line.substr(4, sp - 4)) {
    lt = sp + 1;  // "550 5.1.1 <addr>... "
  }
  if (lt >= line.size() || line[lt] != '<') return false;
  size_t gt = line.find(">... ", lt);
  if (gt == std::string_view::npos || line.substr(lt, gt - lt).find('@') == std::string_view::npos) return false;
  *addr = line.substr(lt + 1, gt - lt - 1);
  return true;
}

}  // namespace

bool sendmailTranscript(std::string_view lower) {
  static constexpr std::string_view kTranscript = "transcript of session follows", kTalking = "while talking to ";
  static const size_t kTranscriptAt = rareIndex(kTranscript), kTalkingAt = rareIndex(kTalking);
  return findRare(lower, kTranscript, kTranscriptAt) != std::string_view::npos ||
         findRare(lower, kTalking, kTalkingAt) != std::string_view::npos;
}

std::string sendmailPart(std::string_view text, std::string_view lower, std::string_view addr) {
  size_t pos = 0, start = std::string_view::npos;
  while (pos < lower.size()) {
    size_t eol = lower.find('\n', pos);
    if (eol == std::string_view::npos) eol = lower.size();
    std::string_view line = lower.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view a;
    if (sendmailRecipientLine(line, &a)) {
      if (a == addr) {
        size_t from = start == std::string_view::npos ? pos : start;
        return std::string(text.substr(from, eol - from));
      }
      start = std::min(eol + 1, lower.size());
    } else if (startsWith(line, "while talking to ") || startsWith(line, "... while talking to ")) {
      start = pos;
    }
    pos = eol + 1;
  }
  return "";
}

namespace {

// Sendmail's line about a host it tried, "NNN host (mailer)... text" ("421 example.org (smtp)...
// Deferred: Connection timed out during user open with example.org", "550 example.net (smtp)...
// 550 Host unknown"): NNN is Sendmail's own verdict on that attempt (421 for a deferral), not
// the host's reply; what the host said, if anything, is in the text. Whether line is one.
bool sendmailHostLine(std::string_view line) {
  if (line.size() < 12 || !(line[0] >= '2' && line[0] <= '5') || line[1] < '0' || line[1] > '9' ||
      line[2] < '0' || line[2] > '9' || line[3] != ' ') {
    return false;
  }
  size_t sp = line.find(' ', 4);
  if (sp == std::string_view::npos || sp == 4) return false;
  std::string_view host = line.substr(4, sp - 4);
  if (host.find_first_of("@<>\"()") != std::string_view::npos) return false;  // a recipient line
  if (sp + 1 >= line.size() || line[sp + 1] != '(') return false;
  size_t close = line.find(')', sp + 2);
  if (close == std::string_view::npos || close == sp + 2) return false;
  for (char c : line.substr(sp + 2, close - sp - 2)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;  // "(mailer)": one word
  }
  return line.substr(close + 1, 3) == "...";
}

// Calls f(line start, line end) for every line of t.
template <typename F>
void eachLine(std::string_view t, F f) {
  size_t pos = 0;
  while (pos < t.size()) {
    size_t eol = t.find('\n', pos);
    if (eol == std::string_view::npos) eol = t.size();
    f(pos, eol);
    pos = eol + 1;
  }
}

}  // namespace

std::string sendmailHostLines(std::string_view text) {
  std::string out;
  eachLine(text, [&](size_t from, size_t to) {
    std::string_view line = text.substr(from, to - from);
    if (!sendmailHostLine(line)) return;
    if (!out.empty()) out.push_back('\n');
    out.append(line.substr(4));
  });
  return out;
}

std::string withoutHostCodes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  eachLine(text, [&](size_t from, size_t to) {
    std::string_view line = text.substr(from, to - from);
    out.append(sendmailHostLine(line) ? line.substr(4) : line);
    if (to < text.size()) out.push_back('\n');
  });
  return out;
}

// Text with the quoting of a reply or forward ("> ", ">> ") taken off every line.
std::string unquote(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  size_t pos = 0;
  while (pos < t.size()) {
    size_t eol = t.find('\n', pos);
    if (eol == std::string_view::npos) eol = t.size();
    std::string_view line = t.substr(pos, eol - pos);
    while (!line.empty() && line[0] == '>') {
      line.remove_prefix(1);
      if (!line.empty() && line[0] == ' ') line.remove_prefix(1);
    }
    out.append(line);
    out.push_back('\n');
    pos = eol + 1;
  }
  return out;
}

}  // namespace sluice::bounce::detail
