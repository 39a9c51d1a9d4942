// redis_client.h - an asynchronous Redis client on policyd's Asio event loop (hiredis 0.14's
// async API with our own Asio adapter; hiredis 0.14 has neither an Asio adapter nor timeouts).
//
// A few connections (store.redis.connections); each command goes to the connected link with the
// fewest outstanding commands, so concurrent requests are pipelined on few sockets. Every command
// has a deadline (store.redis.timeout): when the oldest outstanding command of a link is late,
// every command on that link fails with "timed out" and the link is dropped and reconnected -
// a Redis that is slow is treated like one that is gone, and no late reply is ever delivered.
// While no link is connected, command() fails at once (the caller's failure mode applies) and the
// links keep reconnecting every store.redis.reconnect_interval. Never blocks.
// Callbacks run on the event loop, possibly before command() returns. Single-threaded.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/config.h"

namespace sluice::store {

struct RedisReply {
  enum class Type { kNil, kInteger, kString, kArray, kStatus, kError };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;
  std::vector<RedisReply> elements;
};

struct RedisClientStats {
  uint64_t commands = 0;
  uint64_t failures = 0;     // commands answered with an Error (timeouts, disconnects, not connected)
  uint64_t timeouts = 0;
  uint64_t connects = 0;
  uint64_t disconnects = 0;
};

// A Lua script sent by EVALSHA, falling back to EVAL when the server does not know it yet.
struct RedisScript {
  explicit RedisScript(std::string text);
  std::string text;
  std::string sha1;  // hex
};

class RedisClient {
 public:
  using Callback = std::function<void(Result<RedisReply>)>;

  RedisClient(asio::io_context& io, config::RedisConfig cfg);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();
  void stop();  // fails everything outstanding; no reconnects after this
  void command(std::vector<std::string> argv, Callback done);
  void eval(const RedisScript& script, std::vector<std::string> keys, std::vector<std::string> args, Callback done);
  bool connected() const;
  const RedisClientStats& stats() const { return stats_; }

  class Link;  // one connection (redis_client.cc)

 private:
  friend class Link;
  asio::io_context& io_;
  config::RedisConfig cfg_;
  std::vector<std::shared_ptr<Link>> links_;
  RedisClientStats stats_;
  std::string outage_;  // why Redis is unreachable; empty while it is fine
  bool stopped_ = false;
};

}  // namespace sluice::store
