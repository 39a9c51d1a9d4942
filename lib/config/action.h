// action.h - Postfix access(5) actions as the config writes them and policyd answers them:
//   DUNNO | OK | DEFER_IF_PERMIT [text] | DEFER [text] | REJECT [text] | HOLD [text] |
//   WARN [text] | PREPEND Header: value | 4NN [4.X.Y] text | 5NN [5.X.Y] text
// Text may hold {placeholders} that expandAction() fills in; values are sanitised so that no
// control character from a request can break the one-line policy reply.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace sluice::config {

struct Action {
  enum class Kind { kDunno, kOk, kDeferIfPermit, kDefer, kReject, kHold, kWarn, kPrepend, kCode };
  Kind kind = Kind::kDunno;
  int code = 0;          // kCode only: 400..599
  std::string text;      // the whole action as written, e.g. "450 4.7.1 Slow down {key}"

  // True when the action refuses the recipient/message (temporarily or for good).
  bool refuses() const;
  // True when it refuses with a temporary (4xx) reply.
  bool temporary() const;
};

Result<Action> parseAction(std::string_view text);

using Vars = std::vector<std::pair<std::string_view, std::string_view>>;
// Replaces each {name} in the action text by its value; unknown names stay as written.
std::string expandAction(const Action& action, const Vars& vars);

}  // namespace sluice::config
