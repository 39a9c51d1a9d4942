// rate_limiter.cc - see rate_limiter.h.
#include "ratelimit/rate_limiter.h"

#include <cmath>

namespace sluice::ratelimit {

static std::vector<WindowSpec> specsFor(const config::RateRuleConfig& r) {
  std::vector<WindowSpec> out;
  for (const auto& w : r.windows) out.push_back(WindowSpec::make(w.limit, w.perMs, w.burst));
  return out;
}

RateLimiter::RateLimiter(const std::vector<config::RateRuleConfig>& rules) { reconfigure(rules); }

void RateLimiter::reconfigure(const std::vector<config::RateRuleConfig>& rules) {
  std::vector<Rule> next;
  next.reserve(rules.size());
  for (const auto& cfg : rules) {
    Rule r;
    r.cfg = cfg;
    r.specs = specsFor(cfg);
    for (auto& old : rules_) {
      if (old.cfg.name != cfg.name) continue;
      r.buckets = std::move(old.buckets);
      for (auto& [key, b] : r.buckets) {
        b.windows.resize(r.specs.size());
        b.dirty = false;
      }
    }
    next.push_back(std::move(r));
  }
  rules_ = std::move(next);
  dirty_.clear();
  for (uint32_t i = 0; i < rules_.size(); ++i) {
    for (auto& [key, b] : rules_[i].buckets) markDirty(i, key, b);
  }
}

RateLimiter::Bucket& RateLimiter::bucketFor(uint32_t rule, std::string_view key) {
  Rule& r = rules_[rule];
  auto it = r.buckets.find(key);
  if (it == r.buckets.end()) {
    it = r.buckets.emplace(std::string(key), Bucket{}).first;
    it->second.windows.resize(r.specs.size());
  }
  return it->second;
}

void RateLimiter::markDirty(uint32_t rule, const std::string& key, Bucket& b) {
  if (b.dirty) return;
  b.dirty = true;
  dirty_.emplace_back(rule, key);
}

Verdict RateLimiter::check(uint32_t rule, std::string_view key, uint64_t units, double nowUs) const {
  const Rule& r = rules_[rule];
  auto it = r.buckets.find(key);
  Verdict v;
  for (uint32_t w = 0; w < r.specs.size(); ++w) {
    WindowState empty;
    const WindowState& s = it == r.buckets.end() ? empty : it->second.windows[w];
    if (!s.fits(r.specs[w], nowUs, units)) {
      v.fits = false;
      v.window = w;
      v.retryUs = s.retryAfterUs(r.specs[w], nowUs, units);
      return v;
    }
  }
  return v;
}

void RateLimiter::reserve(uint32_t rule, std::string_view key, uint64_t units) {
  for (auto& s : bucketFor(rule, key).windows) s.reserved += units;
}

void RateLimiter::release(uint32_t rule, std::string_view key, uint64_t units) {
  auto it = rules_[rule].buckets.find(key);
  if (it == rules_[rule].buckets.end()) return;
  for (auto& s : it->second.windows) s.reserved -= std::min(s.reserved, units);
}

void RateLimiter::commit(uint32_t rule, std::string_view key, uint64_t reserved, uint64_t units, double nowUs) {
  Rule& r = rules_[rule];
  Bucket& b = bucketFor(rule, key);
  for (uint32_t w = 0; w < r.specs.size(); ++w) {
    WindowState& s = b.windows[w];
    s.reserved -= std::min(s.reserved, reserved);
    if (units > 0) s.commit(r.specs[w], nowUs, units);
  }
  if (units > 0) markDirty(rule, r.buckets.find(key)->first, b);
}

void RateLimiter::takeCheckpoint(double nowUs, std::vector<store::BucketState>* changed,
                                 std::vector<store::BucketState>* removed) {
  (void)nowUs;
  for (auto& [rule, key] : dirty_) {
    if (rule >= rules_.size()) continue;
    auto it = rules_[rule].buckets.find(key);
    if (it == rules_[rule].buckets.end() || !it->second.dirty) continue;
    it->second.dirty = false;
    it->second.persisted = true;
    for (uint32_t w = 0; w < it->second.windows.size(); ++w) {
      changed->push_back({rules_[rule].cfg.name, w, key, static_cast<int64_t>(std::llround(it->second.windows[w].tatUs))});
    }
  }
  dirty_.clear();
  // A bucket reset and then used again within one interval is written, not deleted.
  for (auto& gone : removed_) {
    bool rewritten = false;
    for (const auto& c : *changed) {
      if (c.rule == gone.rule && c.window == gone.window && c.key == gone.key) {
        rewritten = true;
        break;
      }
    }
    if (!rewritten) removed->push_back(std::move(gone));
  }
  removed_.clear();
}

void RateLimiter::sweepIdle(double nowUs) {
  for (auto& r : rules_) {
    for (auto it = r.buckets.begin(); it != r.buckets.end();) {
      bool idle = true;
      for (const auto& s : it->second.windows) idle = idle && s.idle(nowUs);
      if (!idle) {
        ++it;
        continue;
      }
      if (it->second.persisted || it->second.dirty) {
        for (uint32_t w = 0; w < it->second.windows.size(); ++w) removed_.push_back({r.cfg.name, w, it->first, 0});
      }
      it = r.buckets.erase(it);
    }
  }
}

void RateLimiter::load(const std::vector<store::BucketState>& buckets) {
  for (const auto& bs : buckets) {
    for (uint32_t i = 0; i < rules_.size(); ++i) {
      if (rules_[i].cfg.name != bs.rule || bs.window >= rules_[i].specs.size()) continue;
      Bucket& b = bucketFor(i, bs.key);
      b.windows[bs.window].tatUs = static_cast<double>(bs.tatUs);
      b.persisted = true;
    }
  }
}

std::vector<BucketView> RateLimiter::show(std::string_view key, double nowUs, size_t max) const {
  std::vector<BucketView> out;
  for (const auto& r : rules_) {
    for (const auto& [k, b] : r.buckets) {
      if (!key.empty() && k != key) continue;
      for (uint32_t w = 0; w < r.specs.size() && out.size() < max; ++w) {
        const auto& cw = r.cfg.windows[w];
        const WindowState& s = b.windows[w];
        out.push_back({r.cfg.name, w, k, cw.limit, cw.perMs, cw.burst, s.used(r.specs[w], nowUs), s.reserved,
                       s.retryAfterUs(r.specs[w], nowUs, 1)});
      }
    }
  }
  return out;
}

size_t RateLimiter::reset(std::string_view key) {
  size_t n = 0;
  for (auto& r : rules_) {
    auto it = r.buckets.find(key);
    if (it == r.buckets.end()) continue;
    for (uint32_t w = 0; w < it->second.windows.size(); ++w) removed_.push_back({r.cfg.name, w, it->first, 0});
    r.buckets.erase(it);
    ++n;
  }
  return n;
}

size_t RateLimiter::bucketCount() const {
  size_t n = 0;
  for (const auto& r : rules_) n += r.buckets.size();
  return n;
}

}  // namespace sluice::ratelimit
