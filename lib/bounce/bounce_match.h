// bounce_match.h - which message and recipient a parsed bounce or complaint refers to; the call
// sluice-relayd's bounce intake makes after BounceParser::parse().
//
// Evidence (DESIGN.md, "Return path (VERP) and complaints"):
//   1. a VERP address whose mac verifies: the envelope recipient the report arrived at (our
//      return path), else the original Return-Path inside the report (ARF reports carry the
//      original message). Good for bounces and complaints alike.
//   2. the original Message-ID quoted in the report: for complaints (ARF) only, which arrive at
//      feedback-loop addresses, not the VERP address. Anybody can quote a Message-ID, so a DSN or
//      other bounce is never matched by it: a bounce needs a verified VERP address.
// A VERP-shaped candidate whose mac does not verify is never used and is listed in `rejected`
// (the caller logs it); unless the other candidate verifies, it poisons the whole report: no
// fallback to the Message-ID, complaints included, the match is kNone (forged DSNs suppress
// nobody). `ignored` then says why, for the caller's log line.
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
  std::string ignored;                    // by == kNone: why the report matches nothing (for the log)
};

BounceMatch matchReport(const Report& report, std::string_view envelopeRecipient, const verp::VerpCodec& codec);

// What the intake does with one recipient of a report (issue 6): hard bounces and complaints are
// suppressed and reported, soft bounces only reported, auto-replies and "delivered" ignored.
enum class Disposition { kIgnore, kEventOnly, kSuppress };
Disposition dispositionOf(const Report& report, const Recipient& r);
const char* toString(Disposition d);

}  // namespace sluice::bounce
