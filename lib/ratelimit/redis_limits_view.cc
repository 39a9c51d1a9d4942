// redis_limits_view.cc - see redis_limits_view.h.
#include "ratelimit/redis_limits_view.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "base/strings.h"
#include "ratelimit/gcra.h"
#include "store/redis_keys.h"
#include "store/redis_sync.h"

namespace sluice::store {
namespace {

constexpr size_t kBucketsPerRead = 100;  // buckets per pipelined round trip (3 commands each)

double parseNumber(const std::string& s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : 0;
}

// field -> value of an HGETALL reply.
std::map<std::string, std::string> fieldsOf(const redisReply* r) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    out[replyText(r->element[i])] = replyText(r->element[i + 1]);
  }
  return out;
}

// Units reserved by the live members (a ZRANGEBYSCORE reply) according to the u hash.
uint64_t reservedUnits(const redisReply* live, const std::map<std::string, std::string>& units) {
  uint64_t sum = 0;
  for (size_t i = 0; live->type == REDIS_REPLY_ARRAY && i < live->elements; ++i) {
    auto it = units.find(replyText(live->element[i]));
    if (it == units.end()) continue;
    double n = parseNumber(it->second);
    if (n > 0) sum += static_cast<uint64_t>(n);
  }
  return sum;
}

}  // namespace

RedisLimitsView::RedisLimitsView(std::unique_ptr<RedisSync> link, std::string prefix,
                                 std::vector<config::RateRuleConfig> rules)
    : link_(std::move(link)), prefix_(std::move(prefix)), rules_(std::move(rules)) {}

RedisLimitsView::~RedisLimitsView() = default;

Result<std::unique_ptr<RedisLimitsView>> RedisLimitsView::open(const config::RedisConfig& cfg,
                                                               std::vector<config::RateRuleConfig> rules) {
  auto link = RedisSync::open(cfg);
  if (!link) return link.error();
  return std::unique_ptr<RedisLimitsView>(new RedisLimitsView(std::move(link).value(), cfg.keyPrefix, std::move(rules)));
}

Result<std::vector<RedisLimitsView::Bucket>> RedisLimitsView::allBuckets() {
  std::vector<Bucket> out;
  for (std::string_view kind : {"t:", "r:"}) {
    std::string head = prefix_ + std::string(kind);
    auto keys = link_->scanKeys(head);
    if (!keys) return keys.error();
    for (const auto& k : *keys) {
      std::string_view rest = std::string_view(k).substr(head.size());
      size_t best = rules_.size();
      for (size_t i = 0; i < rules_.size(); ++i) {
        const std::string& name = rules_[i].name;
        bool fits = rest.size() > name.size() && startsWith(rest, name) && rest[name.size()] == ':';
        if (fits && (best == rules_.size() || name.size() > rules_[best].name.size())) best = i;
      }
      if (best < rules_.size()) out.emplace_back(best, std::string(rest.substr(rules_[best].name.size() + 1)));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status RedisLimitsView::readBuckets(const std::vector<Bucket>& buckets, int64_t nowUs, std::vector<LimitRow>* out) {
  std::string nowMs = std::to_string(nowUs / 1000);
  std::vector<std::vector<std::string>> commands;
  for (const auto& [rule, key] : buckets) {
    const std::string& name = rules_[rule].name;
    commands.push_back({"HGETALL", redis_keys::tat(prefix_, name, key)});
    commands.push_back({"ZRANGEBYSCORE", redis_keys::reservations(prefix_, name, key), "(" + nowMs, "+inf"});
    commands.push_back({"HGETALL", redis_keys::reservedUnits(prefix_, name, key)});
  }
  auto replies = link_->pipeline(commands);
  if (!replies) return replies.error();
  double now = static_cast<double>(nowUs);
  for (size_t b = 0; b < buckets.size(); ++b) {
    const config::RateRuleConfig& rule = rules_[buckets[b].first];
    auto tats = fieldsOf((*replies)[3 * b].get());
    uint64_t reserved = reservedUnits((*replies)[3 * b + 1].get(), fieldsOf((*replies)[3 * b + 2].get()));
    if (tats.empty() && reserved == 0) continue;
    for (uint32_t w = 0; w < rule.windows.size(); ++w) {
      const config::RateWindow& cw = rule.windows[w];
      auto spec = ratelimit::WindowSpec::make(cw.limit, cw.perMs, cw.burst);
      auto it = tats.find(std::to_string(w));
      ratelimit::WindowState state{it == tats.end() ? 0.0 : parseNumber(it->second), reserved};
      out->push_back({rule.name, w, buckets[b].second, cw.limit, cw.perMs, cw.burst, state.used(spec, now), reserved,
                      state.retryAfterUs(spec, now, 1)});
    }
  }
  return okStatus();
}

Result<std::vector<LimitRow>> RedisLimitsView::show(std::string_view key, int64_t nowUs, size_t max) {
  std::vector<Bucket> buckets;
  if (key.empty()) {
    auto all = allBuckets();
    if (!all) return all.error();
    buckets = std::move(all).value();
  } else {
    for (size_t i = 0; i < rules_.size(); ++i) buckets.emplace_back(i, std::string(key));
  }
  std::vector<LimitRow> rows;
  for (size_t first = 0; first < buckets.size() && (max == 0 || rows.size() < max); first += kBucketsPerRead) {
    auto end = buckets.begin() + static_cast<std::ptrdiff_t>(std::min(buckets.size(), first + kBucketsPerRead));
    std::vector<Bucket> chunk(buckets.begin() + static_cast<std::ptrdiff_t>(first), end);
    if (auto s = readBuckets(chunk, nowUs, &rows); !s) return s.error();
  }
  if (max != 0 && rows.size() > max) rows.resize(max);
  return rows;
}

Result<size_t> RedisLimitsView::reset(std::string_view key) {
  std::vector<std::vector<std::string>> commands;
  for (const auto& rule : rules_) {
    commands.push_back({"DEL", redis_keys::tat(prefix_, rule.name, key), redis_keys::reservations(prefix_, rule.name, key),
                        redis_keys::reservedUnits(prefix_, rule.name, key)});
  }
  auto replies = link_->pipeline(commands);
  if (!replies) return replies.error();
  size_t n = 0;
  for (const auto& r : *replies) {
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) ++n;
  }
  return n;
}

}  // namespace sluice::store
