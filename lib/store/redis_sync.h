// redis_sync.h - a blocking connection to Redis (hiredis's synchronous API) for the tools that
// are not on a request path: sluicectl's suppression store and limits view (store_redis.h,
// redis_limits_view.h) and tests. sluice-policyd never uses it (redis_client.h is its client).
//
// Invariants:
//  - open() connects (HOST:PORT, [IPv6]:PORT or unix:/PATH, as store.redis.address), sends AUTH
//    when store.redis.password is set, SELECT when store.redis.database is not 0, then PING, so
//    a wrong password or a server that wants one fails at open with a message that says so.
//  - Timeouts: store.redis.timeout is a per-request deadline for policyd (50 ms by default); an
//    admin command may pipeline 10,000 writes, so connect and I/O use at least kMinTimeoutMs.
//  - An error reply is an Error ("Redis at ADDR: ERR ..."). After an I/O error or a timeout the
//    connection is unusable and every later call fails at once with the same message.
//  - pipeline() sends every command before reading any reply and always reads all replies, so
//    the connection stays in step even when some commands fail.
// Not thread-safe.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/config.h"

namespace sluice::store {

struct RedisReplyFree {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

class RedisSync {
 public:
  static constexpr int64_t kMinTimeoutMs = 2000;

  static Result<std::unique_ptr<RedisSync>> open(const config::RedisConfig& cfg);
  ~RedisSync();
  RedisSync(const RedisSync&) = delete;
  RedisSync& operator=(const RedisSync&) = delete;

  Result<RedisReplyPtr> command(const std::vector<std::string>& argv);
  // The replies in the order of the commands; the first failure, if any, after reading them all.
  Result<std::vector<RedisReplyPtr>> pipeline(const std::vector<std::vector<std::string>>& commands);
  // Every key that starts with `prefix` (SCAN MATCH <prefix, glob characters escaped>* COUNT
  // 1000), sorted, without the duplicates SCAN may return. Keys created during the scan may be
  // missing.
  Result<std::vector<std::string>> scanKeys(std::string_view prefix);
  const std::string& address() const { return address_; }

 private:
  RedisSync(redisContext* ctx, std::string address) : ctx_(ctx), address_(std::move(address)) {}
  void append(const std::vector<std::string>& argv);
  // The next reply; an Error for an I/O failure (connection lost) or an error reply.
  Result<RedisReplyPtr> read();
  Status setup(const config::RedisConfig& cfg);

  redisContext* ctx_;
  std::string address_;
  std::string broken_;  // set after an I/O error: the message every later call returns
};

// A Redis reply as text: strings and status replies as they are, integers in decimal, nil as "".
std::string replyText(const redisReply* r);

}  // namespace sluice::store
