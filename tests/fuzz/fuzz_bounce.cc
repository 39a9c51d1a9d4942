// fuzz_bounce.cc - libFuzzer target for lib/bounce: the whole parse (mbox split, MIME, DSN/ARF/
// text/auto-reply readers, classification) with the shipped rules. Checks the invariants every
// record keeps: a reason, hard in {-1,0,1}, bounded recipients and diagnostics; and the VERP
// decoder on the report's return path.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bounce/bounce.h"
#include "bounce/bounce_match.h"

namespace {
const sluice::bounce::BounceParser* parser() {
  static auto p = [] {
    std::string path = SLUICE_FUZZ_RULES;
    if (const char* e = std::getenv("SLUICE_BOUNCE_RULES")) path = e;
    auto r = sluice::bounce::BounceParser::load(path);
    if (!r) std::abort();
    return r.value();
  }();
  return p.get();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const sluice::verp::VerpCodec codec("fuzz secret fuzz secret fuzz sec");
  for (const auto& rep : parser()->parseFile(in)) {
    if (rep.recipients.size() > sluice::bounce::kMaxRecipients) std::abort();
    for (const auto& r : rep.recipients) {
      if (r.reason.empty() || r.hard < -1 || r.hard > 1) std::abort();
      if (r.diagnostic.size() > sluice::bounce::kMaxDiagnostic + 8) std::abort();
    }
    auto m = sluice::bounce::matchReport(rep, "", codec);
    if (m.by == sluice::bounce::BounceMatch::By::kVerp && !m.verp) std::abort();
  }
  return 0;
}
