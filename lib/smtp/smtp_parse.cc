// smtp_parse.cc - see smtp_parse.h.
#include "smtp/smtp_parse.h"

#include <cctype>

#include "base/net_addr.h"
#include "base/strings.h"

namespace sluice::smtp {
namespace {

bool isAtext(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
      return true;
    default: return false;
  }
}

bool isUtf8Byte(unsigned char c) { return c >= 0x80; }

// Checks that s is well-formed UTF-8 (no overlongs beyond the first-byte check).
bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 99;
    if (n == 99 || (n == 1 && c < 0xc2)) return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}

Result<std::string> parseDomain(std::string_view d, bool utf8) {
  if (d.empty()) return makeError("empty domain");
  if (d.size() > kMaxDomain) return makeError("domain longer than 255 octets");
  if (d.front() == '[') {
    if (d.back() != ']') return makeError("unterminated address literal");
    std::string_view lit = d.substr(1, d.size() - 2);
    if (istartsWith(lit, "IPv6:")) {
      auto ip = parseIp(lit.substr(5));
      if (!ip || ip->isV4()) return makeError("bad IPv6 address literal");
    } else {
      auto ip = parseIp(lit);
      if (!ip || !ip->isV4() || lit.find(':') != std::string_view::npos) return makeError("bad address literal");
    }
    return toLower(d);
  }
  if (d.back() == '.') return makeError("domain ends with a dot");
  for (auto label : split(d, '.')) {
    if (label.empty()) return makeError("empty label in domain");
    if (label.size() > 63) return makeError("domain label longer than 63 octets");
    if (label.front() == '-' || label.back() == '-') return makeError("domain label starts or ends with '-'");
    for (char ch : label) {
      auto c = static_cast<unsigned char>(ch);
      if (std::isalnum(c) || c == '-') continue;
      if (utf8 && isUtf8Byte(c)) continue;
      return makeError(c >= 0x80 ? "non-ASCII domain without SMTPUTF8" : "bad character in domain");
    }
  }
  if (utf8 && !validUtf8(d)) return makeError("domain is not valid UTF-8");
  return toLower(d);
}

Result<std::string> parseLocal(std::string_view l, bool utf8) {
  if (l.empty()) return makeError("empty local part");
  if (l.size() > kMaxLocalPart) return makeError("local part longer than 64 octets");
  if (l.front() == '"') {
    if (l.size() < 2 || l.back() != '"') return makeError("unterminated quoted local part");
    for (size_t i = 1; i + 1 < l.size(); ++i) {
      auto c = static_cast<unsigned char>(l[i]);
      if (c == '\\') {
        if (i + 2 >= l.size()) return makeError("dangling backslash in quoted local part");
        auto n = static_cast<unsigned char>(l[++i]);
        if (n < 32 || n == 127) return makeError("control character in quoted local part");
        continue;
      }
      if (c == '"') return makeError("unescaped quote in local part");
      if (c < 32 || c == 127) return makeError("control character in quoted local part");
      if (c >= 0x80 && !utf8) return makeError("non-ASCII local part without SMTPUTF8");
    }
    return std::string(l);
  }
  bool dot = true;  // at the start: a dot here is an error
  for (char ch : l) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (dot) return makeError("misplaced dot in local part");
      dot = true;
      continue;
    }
    dot = false;
    if (isAtext(c)) continue;
    if (utf8 && isUtf8Byte(c)) continue;
    return makeError(c >= 0x80 ? "non-ASCII local part without SMTPUTF8" : "bad character in local part");
  }
  if (dot) return makeError("local part ends with a dot");
  if (utf8 && !validUtf8(l)) return makeError("local part is not valid UTF-8");
  return std::string(l);
}

// Splits "<path> params": the path up to the matching '>' (quotes respected).
Result<PathArg> parsePathArg(std::string_view rest, bool allowNull, bool utf8) {
  rest = trim(rest);
  if (rest.empty() || rest.front() != '<') return makeError("the address must be in angle brackets");
  size_t i = 1;
  bool quoted = false;
  for (; i < rest.size(); ++i) {
    char c = rest[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '>') {
      break;
    }
  }
  if (i >= rest.size()) return makeError("missing '>'");
  std::string_view path = rest.substr(1, i - 1);
  if (path.size() + 2 > kMaxPath) return makeError("path longer than 256 octets");
  PathArg out;
  if (path.empty()) {
    if (!allowNull) return makeError("empty address");
  } else {
    // A source route "@a,@b:" is accepted and dropped (RFC 5321 4.1.1.3, C).
    if (path.front() == '@') {
      size_t colon = path.find(':');
      if (colon == std::string_view::npos) return makeError("source route without ':'");
      for (auto hop : split(path.substr(0, colon), ',')) {
        if (hop.size() < 2 || hop.front() != '@') return makeError("bad source route");
        if (auto d = parseDomain(hop.substr(1), utf8); !d) return makeError("bad source route: " + d.message());
      }
      path = path.substr(colon + 1);
    }
    auto mb = parseMailbox(path, utf8);
    if (!mb) return mb.error();
    out.address = mb.value();
  }
  std::string_view params = trim(rest.substr(i + 1));
  if (!params.empty() && rest[i + 1] != ' ') return makeError("garbage after '>'");
  for (auto p : split(params, ' ')) {
    if (p.empty()) continue;
    EsmtpParam ep;
    size_t eq = p.find('=');
    std::string_view key = p.substr(0, eq);
    if (key.empty()) return makeError("empty ESMTP parameter name");
    for (char c : key) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return makeError("bad ESMTP parameter name");
    }
    std::string k(key);
    for (char& c : k) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ep.key = k;
    if (eq != std::string_view::npos) {
      ep.hasValue = true;
      ep.value = std::string(p.substr(eq + 1));
      for (char c : ep.value) {
        auto u = static_cast<unsigned char>(c);
        if (u < 33 || u == 127 || u == '=') {
          if (!(utf8 && u >= 0x80)) return makeError("bad ESMTP parameter value");
        }
      }
    }
    for (const auto& prev : out.params) {
      if (prev.key == ep.key) return makeError("duplicate ESMTP parameter " + ep.key);
    }
    out.params.push_back(std::move(ep));
  }
  return out;
}

}  // namespace

Command parseCommand(std::string_view line) {
  Command c;
  size_t sp = line.find(' ');
  std::string verb(line.substr(0, sp));
  for (char& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  c.verbText = verb;
  if (sp != std::string_view::npos) {
    std::string_view a = line.substr(sp + 1);
    while (!a.empty() && (a.front() == ' ' || a.front() == '\t')) a.remove_prefix(1);
    while (!a.empty() && (a.back() == ' ' || a.back() == '\t')) a.remove_suffix(1);
    c.arg = std::string(a);
  }
  static const std::pair<const char*, Verb> kVerbs[] = {
      {"EHLO", Verb::kEhlo}, {"HELO", Verb::kHelo}, {"MAIL", Verb::kMail}, {"RCPT", Verb::kRcpt},
      {"DATA", Verb::kData}, {"BDAT", Verb::kBdat}, {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop},
      {"QUIT", Verb::kQuit}, {"VRFY", Verb::kVrfy}, {"EXPN", Verb::kExpn}, {"HELP", Verb::kHelp},
      {"STARTTLS", Verb::kStartTls}, {"AUTH", Verb::kAuth}};
  for (const auto& [name, v] : kVerbs) {
    if (verb == name) c.verb = v;
  }
  return c;
}

Result<Address> parseMailbox(std::string_view mb, bool utf8) {
  // The '@' that separates: the last one outside quotes.
  size_t at = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 0; i < mb.size(); ++i) {
    char c = mb[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '@') {
      at = i;
    }
  }
  if (at == std::string_view::npos) return makeError("no '@' in the address (a domain is required)");
  auto local = parseLocal(mb.substr(0, at), utf8);
  if (!local) return local.error();
  auto domain = parseDomain(mb.substr(at + 1), utf8);
  if (!domain) return domain.error();
  return Address{local.value(), domain.value()};
}

Result<PathArg> parseMailArg(std::string_view arg, bool utf8) {
  if (!istartsWith(arg, "FROM:")) return makeError("expected FROM:<address>");
  return parsePathArg(arg.substr(5), true, utf8);
}

Result<PathArg> parseRcptArg(std::string_view arg, bool utf8) {
  if (!istartsWith(arg, "TO:")) return makeError("expected TO:<address>");
  return parsePathArg(arg.substr(3), false, utf8);
}

std::optional<std::string> decodeXtext(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int a = hex(s[i + 1]), b = hex(s[i + 2]);
      if (a < 0 || b < 0) return std::nullopt;
      out += static_cast<char>(a * 16 + b);
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return std::nullopt;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string encodeXtext(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out += '+';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string reply(int code, std::string_view enhanced, std::string_view text) {
  std::string out = std::to_string(code) + " ";
  if (!enhanced.empty()) out += std::string(enhanced) + " ";
  out += text;
  out += "\r\n";
  return out;
}

std::string replyLines(int code, const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += std::to_string(code) + (i + 1 < lines.size() ? "-" : " ") + lines[i] + "\r\n";
  }
  return out;
}

}  // namespace sluice::smtp
