// store_redis.cc - see store_redis.h.
#include "store/store_redis.h"

#include <algorithm>
#include <utility>

#include "base/strings.h"
#include "store/redis_keys.h"
#include "store/redis_sync.h"

namespace sluice::store {
namespace {

constexpr size_t kKeysPerRead = 1000;  // HGETALL / HLEN commands per pipelined round trip

std::string scopeField(std::string_view scope) {
  return scope.empty() ? std::string(redis_keys::kGlobalScopeField) : toLower(scope);
}

std::string scopeOfField(std::string_view field) {
  return field == redis_keys::kGlobalScopeField ? std::string() : std::string(field);
}

// The scope filter as SqliteStore reads it: "*" (or "" with anyScope) is any scope.
bool scopeMatches(const SuppressionFilter& f, const std::string& scope) {
  if (f.scope == "*" || (f.scope.empty() && f.anyScope)) return true;
  return scope == toLower(f.scope);
}

Result<int64_t> integerOf(const redisReply* r, const std::string& what) {
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<int64_t>(r->integer);
  if (r->type == REDIS_REPLY_NIL) return int64_t{0};
  if (r->type == REDIS_REPLY_STRING) {
    if (auto v = parseUint(replyText(r))) return static_cast<int64_t>(*v);
  }
  return makeError("unexpected reply from Redis to " + what);
}

}  // namespace

RedisSuppressionStore::RedisSuppressionStore(std::unique_ptr<RedisSync> link, std::string prefix, const Clock* clock)
    : link_(std::move(link)), prefix_(std::move(prefix)), clock_(clock != nullptr ? clock : &systemClock_) {}

RedisSuppressionStore::~RedisSuppressionStore() = default;

Result<std::unique_ptr<RedisSuppressionStore>> RedisSuppressionStore::open(const config::RedisConfig& cfg,
                                                                           const Clock* clock) {
  auto link = RedisSync::open(cfg);
  if (!link) return link.error();
  return std::unique_ptr<RedisSuppressionStore>(
      new RedisSuppressionStore(std::move(link).value(), cfg.keyPrefix, clock));
}

std::vector<std::string> RedisSuppressionStore::hashSet(const SuppressionEntry& e, int64_t nowMs) const {
  return {"HSET", redis_keys::suppression(prefix_, toLower(e.address)), scopeField(e.scope),
          redis_keys::encodeSuppression(e.reason, e.source, e.createdMs == 0 ? nowMs : e.createdMs, e.expiresMs)};
}

Status RedisSuppressionStore::add(const SuppressionEntry& entry) {
  auto r = link_->pipeline({hashSet(entry, clock_->nowMs()), {"INCR", redis_keys::suppressionSeq(prefix_)}});
  if (!r) return r.error();
  return okStatus();
}

// Sends the HSETs in *commands plus one INCRBY of the change counter, in one round trip.
Status RedisSuppressionStore::writeChunk(std::vector<std::vector<std::string>>* commands, size_t entries) {
  commands->push_back({"INCRBY", redis_keys::suppressionSeq(prefix_), std::to_string(entries)});
  auto r = link_->pipeline(*commands);
  commands->clear();
  if (!r) return r.error();
  return okStatus();
}

Result<size_t> RedisSuppressionStore::addBatch(const std::vector<SuppressionEntry>& entries) {
  int64_t now = clock_->nowMs();
  std::vector<std::vector<std::string>> commands;
  commands.reserve(std::min(entries.size(), kChunkCommands));
  size_t written = 0;
  for (const auto& e : entries) {
    commands.push_back(hashSet(e, now));
    if (commands.size() + 1 >= kChunkCommands) {
      size_t n = commands.size();
      if (auto s = writeChunk(&commands, n); !s) return s.error();
      written += n;
    }
  }
  if (!commands.empty()) {
    size_t n = commands.size();
    if (auto s = writeChunk(&commands, n); !s) return s.error();
    written += n;
  }
  return written;
}

Result<bool> RedisSuppressionStore::remove(std::string_view address, std::string_view scope) {
  auto r = link_->command({"HDEL", redis_keys::suppression(prefix_, toLower(address)), scopeField(scope)});
  if (!r) return r.error();
  auto n = integerOf(r->get(), "HDEL");
  if (!n) return n.error();
  if (*n == 0) return false;
  if (auto seq = link_->command({"INCR", redis_keys::suppressionSeq(prefix_)}); !seq) return seq.error();
  return true;
}

Result<std::optional<SuppressionEntry>> RedisSuppressionStore::get(std::string_view address, std::string_view scope) {
  SuppressionEntry e;
  e.address = toLower(address);
  e.scope = toLower(scope);
  auto r = link_->command({"HGET", redis_keys::suppression(prefix_, e.address), scopeField(scope)});
  if (!r) return r.error();
  if ((*r)->type == REDIS_REPLY_NIL) return std::optional<SuppressionEntry>();
  if (!redis_keys::decodeSuppression(replyText(r->get()), &e.reason, &e.source, &e.createdMs, &e.expiresMs)) {
    return makeError("malformed suppression entry in Redis for " + e.address + " (scope " + scopeField(scope) + ")");
  }
  return std::optional<SuppressionEntry>(std::move(e));
}

Status RedisSuppressionStore::readKeys(const std::vector<std::string>& keys, const SuppressionFilter& filter,
                                       const std::function<bool(const SuppressionEntry&)>& fn) {
  size_t skip = prefix_.size() + 2;  // "s:"
  std::vector<SuppressionEntry> entries;
  for (size_t first = 0; first < keys.size(); first += kKeysPerRead) {
    size_t last = std::min(keys.size(), first + kKeysPerRead);
    std::vector<std::vector<std::string>> commands;
    for (size_t i = first; i < last; ++i) commands.push_back({"HGETALL", keys[i]});
    auto replies = link_->pipeline(commands);
    if (!replies) return replies.error();
    for (size_t i = first; i < last; ++i) {
      const redisReply* h = (*replies)[i - first].get();
      entries.clear();
      for (size_t f = 0; h->type == REDIS_REPLY_ARRAY && f + 1 < h->elements; f += 2) {
        SuppressionEntry e;
        e.address = keys[i].substr(skip);
        e.scope = scopeOfField(replyText(h->element[f]));
        if (!scopeMatches(filter, e.scope)) continue;
        if (!redis_keys::decodeSuppression(replyText(h->element[f + 1]), &e.reason, &e.source, &e.createdMs,
                                           &e.expiresMs)) {
          continue;
        }
        if (filter.reason.empty() || e.reason == filter.reason) entries.push_back(std::move(e));
      }
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.scope < b.scope; });
      for (const auto& e : entries) {
        if (!fn(e)) return okStatus();
      }
    }
  }
  return okStatus();
}

Status RedisSuppressionStore::scan(const SuppressionFilter& filter,
                                   const std::function<void(const SuppressionEntry&)>& fn) {
  std::vector<std::string> keys;
  if (!filter.address.empty()) {
    keys.push_back(redis_keys::suppression(prefix_, toLower(filter.address)));
  } else {
    auto all = link_->scanKeys(redis_keys::suppression(prefix_, ""));
    if (!all) return all.error();
    keys = std::move(all).value();
  }
  size_t seen = 0, given = 0;
  return readKeys(keys, filter, [&](const SuppressionEntry& e) {
    if (seen++ < filter.offset) return true;
    fn(e);
    return filter.limit == 0 || ++given < filter.limit;
  });
}

Result<std::vector<SuppressionEntry>> RedisSuppressionStore::list(const SuppressionFilter& filter) {
  std::vector<SuppressionEntry> out;
  if (auto s = scan(filter, [&](const SuppressionEntry& e) { out.push_back(e); }); !s) return s.error();
  return out;
}

Result<size_t> RedisSuppressionStore::count() {
  auto keys = link_->scanKeys(redis_keys::suppression(prefix_, ""));
  if (!keys) return keys.error();
  size_t total = 0;
  for (size_t first = 0; first < keys->size(); first += kKeysPerRead) {
    std::vector<std::vector<std::string>> commands;
    for (size_t i = first; i < std::min(keys->size(), first + kKeysPerRead); ++i) commands.push_back({"HLEN", (*keys)[i]});
    auto replies = link_->pipeline(commands);
    if (!replies) return replies.error();
    for (const auto& r : *replies) {
      auto n = integerOf(r.get(), "HLEN");
      if (!n) return n.error();
      total += static_cast<size_t>(*n);
    }
  }
  return total;
}

Result<std::vector<SuppressionChange>> RedisSuppressionStore::changesSince(int64_t, size_t) {
  return std::vector<SuppressionChange>();
}

Result<int64_t> RedisSuppressionStore::currentSeq() {
  auto r = link_->command({"GET", redis_keys::suppressionSeq(prefix_)});
  if (!r) return r.error();
  return integerOf(r->get(), "GET " + redis_keys::suppressionSeq(prefix_));
}

Result<int64_t> RedisSuppressionStore::oldestRetainedSeq() { return int64_t{0}; }

}  // namespace sluice::store
