// bounce_match.h - which message and recipient a parsed bounce or complaint refers to; the call
// sluice-relayd's bounce intake makes after BounceParser::parse().
//
// Order of evidence: (1) the envelope recipient the report arrived at (our VERP return path),
// (2) the original Return-Path inside the report (complaints reach feedback-loop addresses, but
// ARF reports carry the original message), (3) the original Message-ID in the report. A VERP
// candidate whose mac does not verify is never used, and is reported in `rejected` so that the
// caller logs it (DESIGN.md: forged DSNs are ignored).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bounce/bounce.h"
#include "verp/verp.h"

namespace sluice::bounce {

struct BounceMatch {
  enum class By { kNone, kVerp, kMessageId };
  By by = By::kNone;
  std::optional<verp::VerpAddress> verp;  // set when by == kVerp
  std::string messageId;                  // the original Message-ID (without <>), if any
  std::vector<std::string> rejected;      // VERP-shaped candidates whose mac failed, with reason
};

BounceMatch matchReport(const Report& report, std::string_view envelopeRecipient, const verp::VerpCodec& codec);

// What the intake does with one recipient of a report (issue 6): hard bounces and complaints are
// suppressed and reported, soft bounces only reported, auto-replies and "delivered" ignored.
enum class Disposition { kIgnore, kEventOnly, kSuppress };
Disposition dispositionOf(const Report& report, const Recipient& r);
const char* toString(Disposition d);

}  // namespace sluice::bounce
