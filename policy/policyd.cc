// policyd.cc - see policyd.h.
#include "policyd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/log.h"
#include "base/strings.h"

namespace sluice::policyd {

Policyd::Policyd(std::string configPath, std::shared_ptr<const config::Config> cfg)
    : configPath_(std::move(configPath)),
      cfg_(std::move(cfg)),
      checkpointTimer_(io_),
      pollTimer_(io_),
      signals_(io_, SIGHUP, SIGTERM, SIGINT) {}

Policyd::~Policyd() {
  // Outstanding Redis calls complete (with errors) into the engine and the connections: stop
  // them while both still exist.
  if (server_) server_->stop();
  if (redis_) redis_->stop();
  admin_.reset();
  server_.reset();
}

ServerLimits Policyd::serverLimits() const {
  ServerLimits l;
  l.maxRequestSize = cfg_->policyd.maxRequestSize;
  l.maxConnections = static_cast<size_t>(cfg_->policyd.maxConnections);
  l.idleTimeoutMs = cfg_->policyd.idleTimeoutMs;
  l.requestTimeoutMs = cfg_->policyd.requestTimeoutMs;
  return l;
}

Status Policyd::start() {
  if (::mkdir(cfg_->stateDir.c_str(), 0750) != 0 && errno != EEXIST) {
    return makeError("state_dir " + cfg_->stateDir + ": " + std::strerror(errno));
  }
  if (cfg_->store.useRedis()) {
    startRedis();
  } else if (auto s = startSqlite(); !s) {
    return s;
  }

  server_ = std::make_unique<PolicyServer>(
      io_,
      [this](const decision::PolicyRequest& r, uint64_t id, PolicyServer::Responder respond) {
        onRequest(r, id, std::move(respond));
      },
      [this](uint64_t id) { engine_->connectionClosed(id); });
  server_->setLimits(serverLimits());
  if (auto s = server_->listen(cfg_->policyd.listen); !s) return makeError("listen on " + s.message());
  admin_ = std::make_unique<admin::AdminServer>(io_, cfg_->policyd.adminSocket,
                                                [this](const nlohmann::json& r) { return handleAdmin(r); });
  if (auto s = admin_->start(); !s) return makeError("admin socket: " + s.message());
  if (!cfg_->policyd.metricsListen.empty()) {
    metrics_ = std::make_unique<net::MetricsServer>(io_, [this] { return renderMetrics(); });
    if (auto s = metrics_->listen(cfg_->policyd.metricsListen); !s) {
      // Metrics are not worth refusing mail over: run without them, and say so.
      logWarning("metrics listener " + s.message() + "; running without metrics (policyd.metrics_listen)");
      metrics_.reset();
    }
  }

  if (redis_) {
    logInfo("starting: listening on " + cfg_->policyd.listen + ", " + std::to_string(cfg_->rateLimits.size()) +
            " rate rules, " + std::to_string(cfg_->identities.size()) + " identities, counters and suppression list in Redis at " +
            cfg_->store.redis.address + " (host id " + hostId_ + ")");
  } else {
    logInfo("starting: listening on " + cfg_->policyd.listen + ", " + std::to_string(cfg_->rateLimits.size()) +
            " rate rules, " + std::to_string(cfg_->identities.size()) + " identities, " +
            std::to_string(suppression_.size()) + " suppressed addresses, " + std::to_string(limiter_->bucketCount()) +
            " counters restored");
    schedulePoll();
  }
  scheduleCheckpoint();
  waitSignals();
  return okStatus();
}

Status Policyd::startSqlite() {
  store::SqliteOptions so;
  so.path = cfg_->store.sqlitePath;
  so.busyTimeoutMs = cfg_->store.busyTimeoutMs;
  auto st = store::SqliteStore::open(so);
  if (!st) return st.error();
  store_ = std::move(st.value());
  limiter_ = std::make_unique<ratelimit::RateLimiter>(cfg_->rateLimits);
  auto buckets = store_->loadBuckets();
  if (!buckets) return makeError("loading counters from " + so.path + ": " + buckets.message());
  limiter_->load(buckets.value());
  if (auto s = suppression_.load(*store_); !s) return makeError("loading the suppression list: " + s.message());
  backend_ = std::make_unique<ratelimit::MemoryLimitBackend>(limiter_.get(), &suppression_);
  engine_ = std::make_unique<decision::DecisionEngine>(cfg_, backend_.get(), &clock_);
  return okStatus();
}

void Policyd::startRedis() {
  // Transaction ids must differ between the hosts (and instances) sharing the Redis.
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  hostId_ = std::string(host) + ":" + std::to_string(::getpid());
  redis_ = std::make_unique<store::RedisClient>(io_, cfg_->store.redis);
  redis_->start();
  auto backend = std::make_unique<ratelimit::RedisLimitBackend>(redis_.get(), cfg_->store.redis.keyPrefix, cfg_->rateLimits);
  redisBackend_ = backend.get();
  backend_ = std::move(backend);
  engine_ = std::make_unique<decision::DecisionEngine>(cfg_, backend_.get(), &clock_, hostId_);
}

int Policyd::run() {
  io_.run();
  return 0;
}

void Policyd::onRequest(const decision::PolicyRequest& req, uint64_t connId, PolicyServer::Responder respond) {
  // The one catch-all of the request path: nothing may escape into the event loop. A failure
  // before the engine answered is answered with store_error_action (the responder ignores a
  // second answer).
  auto answer = std::make_shared<PolicyServer::Responder>(std::move(respond));
  try {
    engine_->decide(req, connId, [answer](decision::Decision d) { (*answer)(std::move(d.action)); });
  } catch (const std::exception& e) {
    logError(std::string("decision failed: ") + e.what());
    (*answer)(cfg_->policyd.storeErrorAction.text);
  }
}

void Policyd::scheduleCheckpoint() {
  checkpointTimer_.expires_after(std::chrono::milliseconds(cfg_->policyd.checkpointIntervalMs));
  checkpointTimer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    checkpoint();
    scheduleCheckpoint();
  });
}

void Policyd::checkpoint() {
  int64_t nowMs = clock_.nowMs();
  double nowUs = static_cast<double>(nowMs) * 1000.0;
  engine_->expireReservations();
  // Once a minute, forget buckets that hold nothing: policyd's own counters (SQLite mode) or the
  // per-host fallback counters (Redis mode).
  if (nowMs - lastSweepMs_ >= 60'000) {
    lastSweepMs_ = nowMs;
    if (limiter_) limiter_->sweepIdle(nowUs);
    if (auto* local = engine_->localLimiter()) local->sweepIdle(nowUs);
  }
  if (!limiter_) return;  // Redis keeps the counters
  limiter_->takeCheckpoint(nowUs, &pendingChanged_, &pendingRemoved_);
  if (pendingChanged_.empty() && pendingRemoved_.empty()) return;
  if (auto s = store_->saveBuckets(pendingChanged_, pendingRemoved_); !s) {
    // Kept and retried with the next checkpoint; decisions go on from memory.
    logWarning("checkpoint of " + std::to_string(pendingChanged_.size()) + " counters failed: " + s.message());
    return;
  }
  pendingChanged_.clear();
  pendingRemoved_.clear();
}

void Policyd::schedulePoll() {
  pollTimer_.expires_after(std::chrono::milliseconds(cfg_->policyd.suppressionPollMs));
  pollTimer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    pollSuppression();
    schedulePoll();
  });
}

void Policyd::pollSuppression() {
  auto r = suppression_.refresh(*store_);
  if (!r) {
    if (storeHealthy_) {
      logError("store unreadable, answering \"" + cfg_->policyd.storeErrorAction.text +
               "\" until it recovers: " + r.message());
    }
    storeHealthy_ = false;
  } else {
    if (!storeHealthy_) logInfo("store readable again: normal decisions resumed");
    storeHealthy_ = true;
    if (r.value() > 0) logDebug("suppression list: " + std::to_string(r.value()) + " changes applied");
  }
  engine_->setStoreHealthy(storeHealthy_);
}

void Policyd::waitSignals() {
  signals_.async_wait([this](const asio::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload();
      waitSignals();
      return;
    }
    logInfo(std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    stop();
  });
}

void Policyd::stop() {
  if (stopping_) return;
  stopping_ = true;
  server_->stop();
  admin_->stop();
  if (metrics_) metrics_->stop();
  if (redis_) redis_->stop();
  checkpointTimer_.cancel();
  pollTimer_.cancel();
  signals_.cancel();
  checkpoint();
  logInfo("stopped: " + std::to_string(server_->stats().requests) + " requests served");
}

void Policyd::reload() {
  auto next = config::loadConfigFile(configPath_);
  if (!next) {
    logError("reload refused, keeping the running configuration:");
    for (auto line : split(next.message(), '\n')) logError(std::string(line));
    return;
  }
  auto cfg = next.value();
  if (cfg->policyd.listen != cfg_->policyd.listen || cfg->store.sqlitePath != cfg_->store.sqlitePath ||
      cfg->stateDir != cfg_->stateDir || cfg->store.backend != cfg_->store.backend ||
      cfg->store.redis.address != cfg_->store.redis.address) {
    logWarning("reload: policyd.listen, state_dir and the store settings take effect only after a restart");
  }
  LogLevel level;
  if (parseLogLevel(cfg->log.level, &level)) setLogLevel(level);
  if (limiter_) limiter_->reconfigure(cfg->rateLimits);
  if (redisBackend_) redisBackend_->setRules(cfg->rateLimits);
  engine_->reconfigure(cfg);
  cfg_ = cfg;
  server_->setLimits(serverLimits());
  logInfo("reloaded " + configPath_ + ": " + std::to_string(cfg_->rateLimits.size()) + " rate rules, " +
          std::to_string(cfg_->identities.size()) + " identities");
}

std::string Policyd::renderMetrics() const {
  const auto& s = server_->stats();
  const auto& e = engine_->stats();
  std::string out;
  using net::appendMetric;
  appendMetric(&out, "sluice_policyd_requests_total", "counter", "Policy requests answered.", double(s.requests));
  appendMetric(&out, "sluice_policyd_refused_total", "counter", "Requests refused (defer or reject).", double(e.refused));
  appendMetric(&out, "sluice_policyd_monitor_hits_total", "counter", "Monitor-mode rules that would have acted.",
               double(e.monitorHits));
  appendMetric(&out, "sluice_policyd_protocol_errors_total", "counter", "Connections closed for bad input.",
               double(s.protocolErrors));
  appendMetric(&out, "sluice_policyd_connections", "gauge", "Open client connections.", double(s.open));
  appendMetric(&out, "sluice_policyd_open_transactions", "gauge", "Transactions holding reservations.",
               double(engine_->openTransactions()));
  appendMetric(&out, "sluice_policyd_store_failures_total", "counter",
               "Store calls that failed; each rule's failure_mode applied.", double(e.backendFailures));
  appendMetric(&out, "sluice_policyd_store_error_answers_total", "counter", "Requests answered store_error_action.",
               double(e.storeErrors));
  if (redis_) {
    const auto& r = redis_->stats();
    appendMetric(&out, "sluice_policyd_redis_up", "gauge", "1 while a Redis connection is up.", redis_->connected() ? 1 : 0);
    appendMetric(&out, "sluice_policyd_redis_timeouts_total", "counter", "Redis calls past store.redis.timeout.",
                 double(r.timeouts));
    appendMetric(&out, "sluice_policyd_redis_disconnects_total", "counter", "Redis connections lost or dropped.",
                 double(r.disconnects));
  } else {
    appendMetric(&out, "sluice_policyd_counters", "gauge", "Rate-limit buckets in memory.", double(limiter_->bucketCount()));
    appendMetric(&out, "sluice_policyd_suppressed_entries", "gauge", "Entries in the suppression list copy.",
                 double(suppression_.size()));
  }
  return out;
}

nlohmann::json Policyd::handleAdmin(const nlohmann::json& req) {
  std::string cmd = req.value("cmd", "");
  double nowUs = static_cast<double>(clock_.nowMs()) * 1000.0;
  if (cmd == "status") {
    const auto& s = server_->stats();
    const auto& e = engine_->stats();
    return admin::okReply({{"listen", cfg_->policyd.listen},
                           {"connections", s.open},
                           {"requests", s.requests},
                           {"refused", e.refused},
                           {"monitor_hits", e.monitorHits},
                           {"protocol_errors", s.protocolErrors},
                           {"open_transactions", engine_->openTransactions()},
                           {"counters", limiter_ ? limiter_->bucketCount() : 0},
                           {"suppressed", suppression_.size()},
                           {"store", cfg_->store.backend},
                           {"store_failures", e.backendFailures},
                           {"redis_connected", redis_ ? redis_->connected() : false},
                           {"redis_timeouts", redis_ ? redis_->stats().timeouts : 0},
                           {"store_healthy", storeHealthy_}});
  }
  if ((cmd == "limits.show" || cmd == "limits.reset") && !limiter_) {
    return admin::errorReply("the counters are in Redis (store.backend: redis): sluicectl reads them there");
  }
  if (cmd == "limits.show") {
    std::string key = req.value("key", "");
    size_t max = req.value("max", static_cast<size_t>(10000));
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& v : limiter_->show(key, nowUs, max)) {
      rows.push_back({{"rule", v.rule},       {"window", v.window},     {"key", v.key},
                      {"limit", v.limit},     {"per_ms", v.perMs},      {"burst", v.burst},
                      {"used", v.used},       {"reserved", v.reserved}, {"retry_after_ms", v.retryUs / 1000.0}});
    }
    return admin::okReply({{"buckets", rows}});
  }
  if (cmd == "limits.reset") {
    std::string key = req.value("key", "");
    if (key.empty()) return admin::errorReply("limits.reset needs a key");
    size_t n = limiter_->reset(key);
    checkpoint();
    logInfo("limits reset for key " + key + ": " + std::to_string(n) + " counters cleared (admin)");
    return admin::okReply({{"reset", n}});
  }
  if (cmd == "reload") {
    reload();
    return admin::okReply();
  }
  return admin::errorReply("unknown command \"" + cmd + "\" (status, limits.show, limits.reset, reload)");
}

}  // namespace sluice::policyd
