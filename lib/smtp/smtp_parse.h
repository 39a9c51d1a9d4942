// smtp_parse.h - the server side of RFC 5321 commands: verbs, paths and ESMTP parameters, with
// the limits a public listener needs. Shared by sluice-relayd's intake and its tests/fuzzers.
//
// Paths (RFC 5321 4.1.2, RFC 6531 for UTF-8):
//   Path = "<" [ A-d-l ":" ] Mailbox ">"     A-d-l (a source route "@a,@b:") is accepted and
//                                            ignored, as RFC 5321 4.1.1.3 / C say it must be
//   Mailbox = Local-part "@" ( Domain / address-literal )
//   Local-part = Dot-string / Quoted-string  (returned as written, quotes included)
// Refused (an error naming why, for a 501/553 reply): no angle brackets, a missing or empty
// domain, a domain with a trailing dot, empty labels, characters outside the grammar, non-ASCII
// without SMTPUTF8, a local part over 64 octets, a domain over 255, a path over 256, a malformed
// address literal. `%` and `!` are legal local-part characters: they are not routing to us, and
// relaying decisions never look inside the local part.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sluice::smtp {

inline constexpr size_t kMaxCommandLine = 512;  // RFC 5321 4.5.3.1.4, CRLF included
// MAIL and RCPT lines may be longer: RFC 5321 4.5.3.1.4 lets each extension raise the limit, and
// RFC 3461 (DSN) section 5 adds 100 octets to MAIL for ENVID and 500 to RCPT for NOTIFY/ORCPT
// (RFC 4954 adds 500 to MAIL for AUTH=). Postfix accepts up to its line_length_limit, 2048.
inline constexpr size_t kMaxMailRcptLine = 2048;  // CRLF included
inline constexpr size_t kMaxTextLine = 1000;    // RFC 5321 4.5.3.1.6, CRLF included
inline constexpr size_t kMaxLocalPart = 64;
inline constexpr size_t kMaxDomain = 255;
inline constexpr size_t kMaxPath = 256;

enum class Verb { kEhlo, kHelo, kMail, kRcpt, kData, kBdat, kRset, kNoop, kQuit, kVrfy, kExpn, kHelp,
                  kStartTls, kAuth, kUnknown };

struct Command {
  Verb verb = Verb::kUnknown;
  std::string verbText;  // as sent (upper-cased), for the log
  std::string arg;       // the rest of the line, leading spaces removed
};

// One command line without its CRLF.
Command parseCommand(std::string_view line);

struct Address {
  std::string local;   // as written (a quoted local part keeps its quotes)
  std::string domain;  // lower-cased; an address literal keeps its brackets
  bool null() const { return local.empty() && domain.empty(); }
  std::string str() const { return null() ? std::string() : local + "@" + domain; }
};

struct EsmtpParam {
  std::string key;    // upper-cased
  std::string value;  // as written ("" when no '=')
  bool hasValue = false;
};

struct PathArg {
  Address address;
  std::vector<EsmtpParam> params;
};

// "FROM:<path> params" (allowNull: "<>" is the null reverse-path) or "TO:<path> params".
Result<PathArg> parseMailArg(std::string_view arg, bool utf8Allowed);
Result<PathArg> parseRcptArg(std::string_view arg, bool utf8Allowed);
Result<Address> parseMailbox(std::string_view mailbox, bool utf8Allowed);

// xtext (RFC 3461 4): "+HH" hex escapes. nullopt when malformed.
std::optional<std::string> decodeXtext(std::string_view s);
std::string encodeXtext(std::string_view s);

// "250-" / "250 " multi-line replies; each line gets the code and the enhanced code.
std::string reply(int code, std::string_view enhanced, std::string_view text);
std::string replyLines(int code, const std::vector<std::string>& lines);

}  // namespace sluice::smtp
