// metrics_server.cc - see metrics_server.h.
#include "net/metrics_server.h"

#include <netinet/in.h>

#include <chrono>
#include <cstdio>

namespace sluice::net {
namespace {

constexpr size_t kMaxHead = 8192;

class MetricsConn : public std::enable_shared_from_this<MetricsConn> {
 public:
  MetricsConn(asio::io_context& io, Socket s, MetricsServer::Render& render)
      : sock_(std::move(s)), render_(render), timer_(io) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::seconds(5));
    timer_.async_wait([self](const asio::error_code& ec) {
      if (!ec) {
        asio::error_code ignored;
        self->sock_.close(ignored);
      }
    });
    read();
  }

 private:
  void read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(chunk_), [self](const asio::error_code& ec, size_t n) {
      if (ec) return;
      self->head_.append(self->chunk_.data(), n);
      if (self->head_.find("\r\n\r\n") != std::string::npos || self->head_.find("\n\n") != std::string::npos) {
        self->answer();
      } else if (self->head_.size() > kMaxHead) {
        self->reply("400 Bad Request", "request head too large\n");
      } else {
        self->read();
      }
    });
  }

  void answer() {
    std::string line = head_.substr(0, head_.find('\n'));
    if (line.rfind("GET ", 0) != 0) return reply("400 Bad Request", "only GET\n");
    std::string path = line.substr(4, line.find(' ', 4) - 4);
    if (path != "/metrics" && path != "/") return reply("404 Not Found", "try /metrics\n");
    reply("200 OK", render_());
  }

  void reply(const char* status, const std::string& body) {
    out_ = std::string("HTTP/1.0 ") + status + "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(out_), [self](const asio::error_code&, size_t) {
      asio::error_code ignored;
      self->timer_.cancel();
      self->sock_.shutdown(asio::socket_base::shutdown_both, ignored);
      self->sock_.close(ignored);
    });
  }

  Socket sock_;
  MetricsServer::Render& render_;
  asio::steady_timer timer_;
  std::array<char, 2048> chunk_{};
  std::string head_;
  std::string out_;
};

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, Render render) : io_(io), render_(std::move(render)) {}

MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::listen(const std::string& address) {
  auto acc = openListener(io_, address, 0600, 64);
  if (!acc) return acc.error();
  acceptor_ = std::make_unique<Acceptor>(std::move(acc.value()));
  accept();
  return okStatus();
}

void MetricsServer::stop() {
  if (!acceptor_) return;
  asio::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
}

uint16_t MetricsServer::localPort() const {
  if (!acceptor_) return 0;
  asio::error_code ec;
  auto ep = acceptor_->local_endpoint(ec);
  if (ec || ep.protocol().family() == AF_UNIX) return 0;
  return ntohs(reinterpret_cast<const sockaddr_in*>(ep.data())->sin_port);
}

void MetricsServer::accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, Socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_) return;
    if (!ec) std::make_shared<MetricsConn>(io_, std::move(s), render_)->start();
    accept();
  });
}

void appendMetric(std::string* out, const char* name, const char* type, const char* help, double value) {
  char num[64];
  std::snprintf(num, sizeof num, "%.17g", value);
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num + "\n";
}

}  // namespace sluice::net
