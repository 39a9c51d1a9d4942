// action.cc - see action.h.
#include "config/action.h"

#include "base/strings.h"

namespace sluice::config {

bool Action::refuses() const {
  switch (kind) {
    case Kind::kDeferIfPermit:
    case Kind::kDefer:
    case Kind::kReject:
    case Kind::kCode:
      return true;
    default:
      return false;
  }
}

bool Action::temporary() const {
  return kind == Kind::kDeferIfPermit || kind == Kind::kDefer || (kind == Kind::kCode && code < 500);
}

static bool isEnhancedCode(std::string_view w, char cls) {
  // X.Y.Z with X the class digit, Y 1-3 digits, Z 1-3 digits.
  auto parts = split(w, '.');
  if (parts.size() != 3 || parts[0].size() != 1 || parts[0][0] != cls) return false;
  for (size_t i = 1; i < 3; ++i) {
    if (parts[i].empty() || parts[i].size() > 3 || !parseUint(parts[i])) return false;
  }
  return true;
}

static Result<Action> parseNumeric(std::string_view text, std::string_view word, std::string_view rest) {
  auto code = parseUint(word);
  if (!code || word.size() != 3 || *code < 400 || *code > 599) {
    return makeError("reply code must be 4NN or 5NN, got \"" + std::string(word) + "\"");
  }
  Action a;
  a.kind = Action::Kind::kCode;
  a.code = static_cast<int>(*code);
  a.text = std::string(text);
  std::string_view first = rest.substr(0, rest.find(' '));
  if (!first.empty() && first[0] >= '0' && first[0] <= '9' && first.find('.') != std::string_view::npos &&
      !isEnhancedCode(first, word[0])) {
    return makeError("enhanced status code \"" + std::string(first) + "\" does not match reply code " +
                     std::string(word));
  }
  return a;
}

Result<Action> parseAction(std::string_view text) {
  text = trim(text);
  if (text.empty()) return makeError("empty action");
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20) return makeError("action contains a control character");
  }
  size_t sp = text.find(' ');
  std::string_view word = text.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : trim(text.substr(sp + 1));
  if (!word.empty() && word[0] >= '0' && word[0] <= '9') return parseNumeric(text, word, rest);
  struct K { const char* name; Action::Kind kind; };
  static const K kVerbs[] = {{"DUNNO", Action::Kind::kDunno},   {"OK", Action::Kind::kOk},
                             {"DEFER_IF_PERMIT", Action::Kind::kDeferIfPermit},
                             {"DEFER", Action::Kind::kDefer},   {"REJECT", Action::Kind::kReject},
                             {"HOLD", Action::Kind::kHold},     {"WARN", Action::Kind::kWarn},
                             {"PREPEND", Action::Kind::kPrepend}};
  for (const auto& v : kVerbs) {
    if (iequals(word, v.name)) {
      Action a;
      a.kind = v.kind;
      a.text = std::string(v.name);
      if (!rest.empty()) a.text += " " + std::string(rest);
      if (a.kind == Action::Kind::kPrepend) {
        size_t colon = rest.find(':');
        if (colon == std::string_view::npos || colon == 0 || rest.substr(0, colon).find(' ') != std::string_view::npos) {
          return makeError("PREPEND needs a header \"Name: value\"");
        }
      }
      return a;
    }
  }
  return makeError("unknown action \"" + std::string(word) +
                   "\" (want DUNNO, OK, DEFER_IF_PERMIT, DEFER, REJECT, HOLD, WARN, PREPEND or 4NN/5NN text)");
}

std::string expandAction(const Action& action, const Vars& vars) {
  const std::string& t = action.text;
  std::string out;
  out.reserve(t.size() + 32);
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      size_t close = t.find('}', i);
      if (close != std::string::npos) {
        std::string_view name(t.data() + i + 1, close - i - 1);
        bool found = false;
        for (const auto& [k, v] : vars) {
          if (k == name) {
            for (char c : v) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
            found = true;
            break;
          }
        }
        if (found) {
          i = close;
          continue;
        }
      }
    }
    out.push_back(t[i]);
  }
  return out;
}

}  // namespace sluice::config
