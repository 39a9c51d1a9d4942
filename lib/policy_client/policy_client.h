// policy_client.h - the client of sluice-policyd's protocol (the Postfix policy delegation
// protocol) for sluice-milter and sluice-relayd, which ask policyd the envelope questions that
// Postfix asks it directly.
//
// Blocking, thread-safe: a small pool of persistent connections (one request in flight on each),
// a timeout per request, and the configured default action when policyd cannot be reached or
// answers garbage - by default DEFER_IF_PERMIT, so a policyd outage tempfails mail instead of
// letting it through (DESIGN.md durability rules). A connection that failed is discarded.
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace sluice {

class PolicyClient {
 public:
  struct Options {
    std::string address = "127.0.0.1:10045";  // HOST:PORT, [V6]:PORT or unix:/PATH
    int timeoutMs = 10000;
    std::string defaultAction = "DEFER_IF_PERMIT 4.3.0 Policy service unavailable, try again later";
    size_t maxIdle = 8;
  };
  using Attributes = std::vector<std::pair<std::string, std::string>>;

  explicit PolicyClient(Options options);
  ~PolicyClient();
  PolicyClient(const PolicyClient&) = delete;
  PolicyClient& operator=(const PolicyClient&) = delete;

  // The action policyd answered; an Error when it could not be asked (the caller decides).
  Result<std::string> query(const Attributes& attrs);
  // query(), or the default action when that fails (the failure is logged).
  std::string ask(const Attributes& attrs);
  const std::string& defaultAction() const { return options_.defaultAction; }

  // One policyd connection held for a whole SMTP session, as Postfix's smtpd holds its own:
  // policyd ties a transaction's reservations to the connection it was asked on, so the RCPT and
  // END-OF-MESSAGE questions of one message must travel on one connection. The connection goes
  // back to the pool when the Session ends. Not thread-safe (one SMTP session, one thread).
  class Session {
   public:
    explicit Session(PolicyClient& client) : client_(client) {}
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Result<std::string> query(const Attributes& attrs);
    std::string ask(const Attributes& attrs);
    const PolicyClient& client() const { return client_; }

   private:
    PolicyClient& client_;
    int fd_ = -1;
  };

 private:
  static Result<std::string> encode(const Attributes& attrs);
  // Sends on *fd (taking a pooled or new connection when it is -1); retries once on a fresh one
  // when a reused connection fails. On error *fd is closed and -1.
  Result<std::string> queryOn(int* fd, const std::string& request);
  Result<int> connectFd() const;
  Result<std::string> exchange(int fd, const std::string& request) const;
  int takeIdle();
  void giveBack(int fd);

  Options options_;
  std::mutex mu_;
  std::vector<int> idle_;
};

}  // namespace sluice
