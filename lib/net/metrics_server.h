// metrics_server.h - a minimal Prometheus scrape endpoint (text exposition format 0.0.4) for the
// daemons (DESIGN.md: policyd 127.0.0.1:10049, relayd :10048, milter :10050).
//
// HTTP/1.0 only, one request per connection: it reads the request head (at most 8 KiB, within
// 5 s), answers GET /metrics (or GET /) with the body the callback renders on the event loop, 404
// otherwise, and closes. Anything malformed gets 400 and a closed connection. It is meant for a
// loopback or management address; it has no authentication.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "net/listener.h"

namespace sluice::net {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  MetricsServer(asio::io_context& io, Render render);
  ~MetricsServer();
  Status listen(const std::string& address);
  void stop();
  uint16_t localPort() const;

 private:
  void accept();
  asio::io_context& io_;
  Render render_;
  std::unique_ptr<Acceptor> acceptor_;
};

// Appends "# HELP name help\n# TYPE name type\nname value\n" to out.
void appendMetric(std::string* out, const char* name, const char* type, const char* help, double value);

}  // namespace sluice::net
