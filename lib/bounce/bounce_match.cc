// bounce_match.cc - matchReport(): a verified VERP address; the Message-ID for complaints only.
#include "bounce/bounce_match.h"

namespace sluice::bounce {

BounceMatch matchReport(const Report& report, std::string_view envelopeRecipient, const verp::VerpCodec& codec) {
  BounceMatch m;
  m.messageId = report.originalMessageId;
  for (std::string_view cand : {envelopeRecipient, std::string_view(report.originalReturnPath)}) {
    if (cand.empty() || !verp::VerpCodec::looksLikeVerp(cand)) continue;
    auto v = codec.decode(cand);
    if (v) {
      m.by = BounceMatch::By::kVerp;
      m.verp = std::move(v.value());
      return m;
    }
    m.rejected.push_back(v.message());
  }
  if (!m.rejected.empty()) {
    m.ignored = "a VERP address in it does not verify (forged?); the Message-ID is not used";
  } else if (report.kind != Kind::kComplaint) {
    m.ignored = "a bounce needs our verified VERP return path; a quoted Message-ID alone is not trusted";
  } else if (m.messageId.empty()) {
    m.ignored = "a complaint with neither our VERP return path nor the original Message-ID";
  } else {
    m.by = BounceMatch::By::kMessageId;
  }
  return m;
}

Disposition dispositionOf(const Report& report, const Recipient& r) {
  if (report.kind == Kind::kComplaint) return Disposition::kSuppress;
  if (report.kind != Kind::kBounce || r.reason == "delivered" || r.reason == "vacation") return Disposition::kIgnore;
  return r.hard == 1 ? Disposition::kSuppress : Disposition::kEventOnly;
}

const char* toString(Disposition d) {
  switch (d) {
    case Disposition::kIgnore: return "ignore";
    case Disposition::kEventOnly: return "event";
    case Disposition::kSuppress: return "suppress";
  }
  return "?";
}

}  // namespace sluice::bounce
