// milter_server.h - the built-in milter engine's sockets and threads (milter.engine: builtin, the
// default): listens on milter.listen (unix:/PATH, local:/PATH, inet:PORT[@IP], inet6:PORT[@IP]),
// and serves each MTA connection on a pooled thread with one MilterSession
// (lib/milter/milter_protocol.h) running the filter's callbacks.
//
// Why not libmilter: Debian's libmilter (built with _FFR_WORKERS_POOL) reads each ~20-command
// message with three poll()s and two read()s per command, hands every command between a listener
// and a worker thread, and starts and ends worker threads under load: bench/milter measured that
// overhead at about as much CPU as the RSA signature itself. Here a connection's thread reads
// whatever the MTA has sent in one read() (often several packets), answers only the steps that
// need a reply, and writes each reply in one write(). On TCP it sets TCP_NODELAY and re-arms
// TCP_QUICKACK after every read, which cures the 40 ms delayed-ACK stall of the milter protocol on
// inet sockets (contrib/postfix/README.md) without any route change.
//
// Limits: kMaxConnections sessions at once (a connection above it is closed at once, and the MTA
// applies milter_default_action); a connection silent for kReadTimeoutSec (as
// libmilter's 7210 s) is closed. stop() closes the listener; serve() then waits up to
// kDrainSec for sessions in flight and returns.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "base/result.h"
#include "milter/milter_protocol.h"

namespace sluice::milter {

class MilterServer {
 public:
  static constexpr int kMaxConnections = 2048;
  static constexpr int kReadTimeoutSec = 7210;
  static constexpr int kDrainSec = 10;
  static constexpr int kIdleThreadSec = 60;  // a pooled thread with no connection for this long ends

  explicit MilterServer(const MilterCallbacks& callbacks) : callbacks_(callbacks) {}
  ~MilterServer();
  MilterServer(const MilterServer&) = delete;
  MilterServer& operator=(const MilterServer&) = delete;

  // Opens the listening socket. A unix socket is made writable by everyone (umask 0), as libmilter
  // does: its directory (sluice:postfix 0750) is what guards it; call prepareSocket() first.
  Status listen(const std::string& spec);
  // Accepts until stop(); then removes a unix socket and waits for the sessions in flight (at most
  // kDrainSec).
  void serve();
  // Safe from another thread.
  void stop();
  int activeConnections() const { return active_.load(); }

 private:
  void dispatch(int fd);
  void worker();
  void serveConnection(int fd);

  const MilterCallbacks& callbacks_;
  int listenFd_ = -1;
  bool tcp_ = false;
  std::string unixPath_;  // removed when serve() returns
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::condition_variable cv_;       // pending_ has a connection, or stopping
  std::condition_variable drained_;  // active_ reached 0
  std::deque<int> pending_;          // accepted, not yet taken by a thread
  int idle_ = 0;                     // threads waiting in worker()
  int threads_ = 0;
};

}  // namespace sluice::milter
