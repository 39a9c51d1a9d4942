// redis_sync.cc - see redis_sync.h.
#include "store/redis_sync.h"

#include "store/redis_keys.h"

#include <sys/time.h>

#include <algorithm>
#include <optional>

#include "base/strings.h"

namespace sluice::store {
namespace {

timeval toTimeval(int64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

redisContext* connectTo(const std::string& address, const timeval& tv) {
  if (startsWith(address, "unix:")) return redisConnectUnixWithTimeout(address.substr(5).c_str(), tv);
  size_t colon = address.rfind(':');
  std::string host = address;
  int port = 6379;
  if (colon != std::string::npos && address.find(']', colon) == std::string::npos) {
    host = address.substr(0, colon);
    port = static_cast<int>(parseUint(std::string_view(address).substr(colon + 1)).value_or(6379));
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return redisConnectWithTimeout(host.c_str(), port, tv);
}

}  // namespace

std::string replyText(const redisReply* r) {
  if (r == nullptr) return "";
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    default: return "";
  }
}

Result<std::unique_ptr<RedisSync>> RedisSync::open(const config::RedisConfig& cfg) {
  timeval tv = toTimeval(std::max(cfg.timeoutMs, kMinTimeoutMs));
  redisContext* ctx = connectTo(cfg.address, tv);
  if (ctx == nullptr) return makeError("cannot reach Redis at " + cfg.address + ": out of memory");
  if (ctx->err != 0) {
    std::string why = ctx->errstr;
    redisFree(ctx);
    return makeError("cannot reach Redis at " + cfg.address + ": " + why);
  }
  std::unique_ptr<RedisSync> link(new RedisSync(ctx, cfg.address));
  if (redisSetTimeout(ctx, tv) != REDIS_OK) return makeError("cannot set the timeout of the Redis connection to " + cfg.address);
  if (auto s = link->setup(cfg); !s) return s.error();
  return link;
}

Status RedisSync::setup(const config::RedisConfig& cfg) {
  if (!cfg.password.empty()) {
    if (auto r = command({"AUTH", cfg.password}); !r) {
      std::string why = r.message();
      std::string ours = "Redis at " + address_ + ": ";
      if (startsWith(why, ours)) why = why.substr(ours.size());
      return makeError("Redis at " + address_ + " refused AUTH (store.redis.password): " + why);
    }
  }
  if (cfg.database != 0) {
    if (auto r = command({"SELECT", std::to_string(cfg.database)}); !r) {
      return makeError("cannot select database " + std::to_string(cfg.database) + " (store.redis.database): " + r.message());
    }
  }
  auto pong = command({"PING"});
  if (!pong) {
    if (pong.message().find("NOAUTH") != std::string::npos) {
      return makeError("Redis at " + address_ + " requires a password (set store.redis.password)");
    }
    return pong.error();
  }
  return okStatus();
}

RedisSync::~RedisSync() { redisFree(ctx_); }

void RedisSync::append(const std::vector<std::string>& argv) {
  redis_keys::ArgvArrays a(argv);
  redisAppendCommandArgv(ctx_, a.count(), a.ptrs.data(), a.lens.data());
}

Result<RedisReplyPtr> RedisSync::read() {
  if (!broken_.empty()) return makeError(broken_);
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    std::string why = ctx_->err != 0 ? ctx_->errstr : "no reply";
    if (why == "Resource temporarily unavailable") why = "timed out";
    broken_ = "lost the connection to Redis at " + address_ + ": " + why;
    return makeError(broken_);
  }
  RedisReplyPtr reply(static_cast<redisReply*>(raw));
  if (reply->type == REDIS_REPLY_ERROR) return makeError("Redis at " + address_ + ": " + replyText(reply.get()));
  return reply;
}

Result<RedisReplyPtr> RedisSync::command(const std::vector<std::string>& argv) {
  if (!broken_.empty()) return makeError(broken_);
  append(argv);
  return read();
}

Result<std::vector<RedisReplyPtr>> RedisSync::pipeline(const std::vector<std::vector<std::string>>& commands) {
  if (!broken_.empty()) return makeError(broken_);
  for (const auto& argv : commands) append(argv);
  std::vector<RedisReplyPtr> replies;
  replies.reserve(commands.size());
  std::optional<Error> first;
  for (size_t i = 0; i < commands.size(); ++i) {
    auto r = read();
    if (!r) {
      if (!first) first = r.error();
      if (!broken_.empty()) return *first;
      replies.emplace_back();
      continue;
    }
    replies.push_back(std::move(r).value());
  }
  if (first) return *first;
  return replies;
}

Result<std::vector<std::string>> RedisSync::scanKeys(std::string_view prefix) {
  std::string pattern;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '*';
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    auto r = command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!r) return r.error();
    const redisReply* reply = r->get();
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_ARRAY) {
      return makeError("Redis at " + address_ + ": unexpected reply to SCAN");
    }
    cursor = replyText(reply->element[0]);
    const redisReply* batch = reply->element[1];
    for (size_t i = 0; i < batch->elements; ++i) keys.push_back(replyText(batch->element[i]));
  } while (cursor != "0");
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace sluice::store
