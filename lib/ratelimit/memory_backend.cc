// memory_backend.cc - see memory_backend.h.
#include "ratelimit/memory_backend.h"

#include "suppression/suppression_list.h"

namespace sluice::ratelimit {

bool MemoryLimitBackend::check(const RcptQuery& q, RcptOutcome* out) const {
  double nowUs = static_cast<double>(q.nowMs) * 1000.0;
  out->fits.assign(q.charges.size(), true);
  out->retryUs.assign(q.charges.size(), 0.0);
  bool blocked = false;
  for (size_t i = 0; i < q.charges.size(); ++i) {
    const LimitCharge& c = q.charges[i];
    if (c.units == 0) continue;
    Verdict v = limiter_->check(c.rule, c.key, c.units, nowUs);
    out->fits[i] = v.fits;
    out->retryUs[i] = v.retryUs;
    blocked = blocked || (!v.fits && c.blocking);
  }
  return !blocked;
}

void MemoryLimitBackend::rcpt(RcptQuery q, RcptCallback done) {
  RcptOutcome out;
  if (suppression_ != nullptr && !q.recipient.empty()) {
    if (const auto* e = suppression_->find(q.recipient, q.senderDomain, q.nowMs)) {
      out.suppressed = *e;
      done(std::move(out));
      return;
    }
  }
  if (check(q, &out)) {
    for (size_t i = 0; i < q.charges.size(); ++i) {
      if (out.fits[i]) limiter_->reserve(q.charges[i].rule, q.charges[i].key, q.charges[i].units);
    }
    out.reserved = true;
  }
  done(std::move(out));
}

void MemoryLimitBackend::commit(const std::string&, std::vector<HeldUnits> held, int64_t nowMs) {
  double nowUs = static_cast<double>(nowMs) * 1000.0;
  for (const auto& h : held) limiter_->commit(h.rule, h.key, h.reserved, h.units, nowUs);
}

void MemoryLimitBackend::release(const std::string&, std::vector<HeldUnits> held) {
  for (const auto& h : held) limiter_->release(h.rule, h.key, h.reserved);
}

void MemoryLimitBackend::charge(RcptQuery q, RcptCallback done) {
  RcptOutcome out;
  if (check(q, &out)) {
    double nowUs = static_cast<double>(q.nowMs) * 1000.0;
    for (size_t i = 0; i < q.charges.size(); ++i) {
      if (out.fits[i] && q.charges[i].units > 0) limiter_->commit(q.charges[i].rule, q.charges[i].key, 0, q.charges[i].units, nowUs);
    }
    out.reserved = true;
  }
  done(std::move(out));
}

}  // namespace sluice::ratelimit
