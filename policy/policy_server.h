// policy_server.h - the listener and connections of sluice-policyd.
//
// Speaks the Postfix policy delegation protocol on TCP or a unix socket: many persistent
// connections (one per smtpd process), each a sequence of requests answered in order. One
// thread, event-driven (Asio): an idle connection costs a socket and a small buffer.
// Bounds: a request larger than max_request_size, a malformed request, a request not completed
// within request_timeout, or more than max_connections connections: the connection is closed
// with one log line saying why, and every other client is served as before. A connection idle
// for idle_timeout is closed (Postfix reconnects on demand).
// Each decoded request is handed to the RequestHandler; its answer (possibly asynchronous) is
// written back as "action=...\n\n", in order. Connection ids let the handler track
// per-connection transaction state.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/result.h"
#include "decision/policy_request.h"
#include "net/listener.h"

namespace sluice::policyd {

struct ServerLimits {
  size_t maxRequestSize = 64 * 1024;
  size_t maxConnections = 10000;
  int64_t idleTimeoutMs = 3600 * 1000;
  int64_t requestTimeoutMs = 10 * 1000;
};

struct ServerStats {
  uint64_t accepted = 0;
  uint64_t refusedConnections = 0;
  uint64_t requests = 0;
  uint64_t protocolErrors = 0;
  uint64_t timeouts = 0;
  size_t open = 0;
};

class Connection;

class PolicyServer {
 public:
  // The handler answers each request exactly once through the Responder, with the action text
  // ("DUNNO", "450 4.7.1 ..."), either before it returns or later. Until then the connection
  // reads nothing more, so the request (views into the connection's buffer) stays valid.
  using Responder = std::function<void(std::string action)>;
  using RequestHandler = std::function<void(const decision::PolicyRequest&, uint64_t connId, Responder)>;
  using CloseHandler = std::function<void(uint64_t connId)>;

  PolicyServer(asio::io_context& io, RequestHandler onRequest, CloseHandler onClose);
  ~PolicyServer();

  Status listen(const std::string& address);
  void setLimits(const ServerLimits& limits) { limits_ = limits; }
  // Stops accepting and closes every connection.
  void stop();
  const ServerStats& stats() const { return stats_; }
  // The bound TCP port (0 for a unix socket): tests listen on port 0.
  uint16_t localPort() const;

 private:
  friend class Connection;
  void accept();
  void sweep();
  void forget(uint64_t id);

  asio::io_context& io_;
  RequestHandler onRequest_;
  CloseHandler onClose_;
  ServerLimits limits_;
  std::unique_ptr<net::Acceptor> acceptor_;
  asio::steady_timer sweepTimer_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns_;
  uint64_t nextId_ = 1;
  ServerStats stats_;
  int64_t lastRefusalLogMs_ = 0;
  bool stopped_ = false;
};

}  // namespace sluice::policyd
