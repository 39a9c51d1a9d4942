// policyd.h - sluice-policyd's process: wires the config, the store, the counters, the
// suppression copy, the decision engine, the policy listener and the admin socket onto one
// event loop, and runs the periodic jobs:
//   checkpoint (policyd.checkpoint_interval): changed counters to the store, stale reservations freed;
//   suppression poll (policyd.suppression_poll_interval): changes by other processes picked up;
//   SIGHUP: reload (a broken file is refused with FILE:LINE errors and the old config stays);
//   SIGTERM/SIGINT: stop accepting, close connections, final checkpoint, exit 0.
#pragma once

#include <asio.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "base/clock.h"
#include "net/metrics_server.h"
#include "config/config.h"
#include "decision/decision_engine.h"
#include "policy_server.h"
#include "ratelimit/memory_backend.h"
#include "ratelimit/rate_limiter.h"
#include "ratelimit/redis_backend.h"
#include "store/redis_client.h"
#include "store/store_sqlite.h"
#include "suppression/suppression_list.h"

namespace sluice::policyd {

class Policyd {
 public:
  Policyd(std::string configPath, std::shared_ptr<const config::Config> cfg);
  ~Policyd();  // tears down in dependency order: listeners, Redis, engine
  // Opens the store and the sockets; an Error says what failed (for a one-line exit message).
  Status start();
  // Runs the event loop until SIGTERM/SIGINT or stop(); returns the exit code.
  int run();
  void stop();

  // For tests that drive the loop themselves.
  asio::io_context& io() { return io_; }
  nlohmann::json handleAdmin(const nlohmann::json& req);

 private:
  void onRequest(const decision::PolicyRequest& req, uint64_t connId, PolicyServer::Responder respond);
  void scheduleCheckpoint();
  void checkpoint();
  void schedulePoll();
  void pollSuppression();
  void waitSignals();
  void reload();
  Status startSqlite();
  void startRedis();
  ServerLimits serverLimits() const;
  std::string renderMetrics() const;

  std::string configPath_;
  std::shared_ptr<const config::Config> cfg_;
  asio::io_context io_;
  SystemClock clock_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<ratelimit::RateLimiter> limiter_;
  SuppressionList suppression_;
  std::unique_ptr<store::RedisClient> redis_;
  ratelimit::RedisLimitBackend* redisBackend_ = nullptr;
  std::unique_ptr<ratelimit::LimitBackend> backend_;
  std::string hostId_ = "local";
  std::unique_ptr<decision::DecisionEngine> engine_;
  std::unique_ptr<PolicyServer> server_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<net::MetricsServer> metrics_;
  asio::steady_timer checkpointTimer_;
  asio::steady_timer pollTimer_;
  asio::signal_set signals_;
  std::vector<store::BucketState> pendingChanged_;
  std::vector<store::BucketState> pendingRemoved_;
  int64_t lastSweepMs_ = 0;
  bool storeHealthy_ = true;
  bool stopping_ = false;
};

}  // namespace sluice::policyd
