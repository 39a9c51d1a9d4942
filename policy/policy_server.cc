// policy_server.cc - see policy_server.h.
#include "policy_server.h"

#include <netinet/in.h>

#include <array>
#include <chrono>

#include "base/log.h"

namespace sluice::policyd {
namespace {

int64_t monoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr size_t kReadChunk = 4096;

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(PolicyServer& server, net::Socket sock, uint64_t id)
      : server_(server), sock_(std::move(sock)), id_(id), peer_(net::peerName(sock_)) {
    lastActivityMs_ = monoMs();
  }

  void start() { read(); }

  // Closes the socket; pending operations complete with an error and the object goes away.
  void close(const std::string& why, bool warn) {
    if (closed_) return;
    closed_ = true;
    if (warn) {
      logWarning("policy client " + peer_ + ": " + why + "; closing the connection");
    } else if (!why.empty()) {
      logInfo("disconnect from " + peer_ + ": " + why);
    }
    asio::error_code ec;
    sock_.shutdown(asio::socket_base::shutdown_both, ec);
    sock_.close(ec);
    server_.forget(id_);
  }

  // Called by the server's sweep once a second.
  void checkTimers(int64_t nowMs, const ServerLimits& lim) {
    if (closed_) return;
    if (requestStartMs_ != 0 && nowMs - requestStartMs_ > lim.requestTimeoutMs) {
      ++server_.stats_.timeouts;
      close("request not completed within " + std::to_string(lim.requestTimeoutMs) + " ms", true);
    } else if (nowMs - lastActivityMs_ > lim.idleTimeoutMs) {
      close("idle for " + std::to_string(lim.idleTimeoutMs / 1000) + " s", false);
    }
  }

 private:
  void read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(chunk_), [self](const asio::error_code& ec, size_t n) {
      self->buf_.append(self->chunk_.data(), n);  // one small copy; no zero-filling of a grown string
      if (ec) {
        self->onReadError(ec);
        return;
      }
      self->lastActivityMs_ = monoMs();
      if (self->requestStartMs_ == 0) self->requestStartMs_ = self->lastActivityMs_;
      self->process();
    });
  }

  void onReadError(const asio::error_code& ec) {
    if (closed_) return;
    if (!buf_.empty()) {
      close("disconnected in the middle of a request (" + std::to_string(buf_.size()) + " bytes unanswered)", true);
    } else if (ec == asio::error::eof) {
      close(requests_ == 0 ? "no request sent" : "requests=" + std::to_string(requests_), false);
    } else {
      close("read error: " + ec.message(), true);
    }
  }

  void process();
  void answered(std::string action);
  void write();

  PolicyServer& server_;
  net::Socket sock_;
  uint64_t id_;
  std::string peer_;
  std::array<char, kReadChunk> chunk_;
  std::string buf_;
  size_t consumed_ = 0;
  size_t scan_ = 0;
  std::string out_;
  decision::PolicyRequest req_;
  uint64_t requests_ = 0;
  int64_t lastActivityMs_ = 0;
  int64_t requestStartMs_ = 0;
  size_t pendingEnd_ = 0;
  bool pending_ = false;    // a request is with the handler
  bool inHandler_ = false;  // the handler is running (a synchronous answer must not re-enter)
  bool closed_ = false;
};

void Connection::process() {
  const ServerLimits& lim = server_.limits_;
  while (!closed_ && !pending_) {
    std::string_view view(buf_.data() + consumed_, buf_.size() - consumed_);
    size_t blockEnd = 0;
    size_t end = decision::findRequestEnd(view, &scan_, &blockEnd);
    if (end == std::string_view::npos) {
      if (view.size() > lim.maxRequestSize) {
        ++server_.stats_.protocolErrors;
        close("request exceeds " + std::to_string(lim.maxRequestSize) + " bytes (policyd.max_request_size)", true);
      }
      break;
    }
    if (blockEnd > lim.maxRequestSize) {
      ++server_.stats_.protocolErrors;
      close("request exceeds " + std::to_string(lim.maxRequestSize) + " bytes (policyd.max_request_size)", true);
      break;
    }
    Status st = decision::parsePolicyRequest(view.substr(0, blockEnd), &req_);
    if (!st) {
      ++server_.stats_.protocolErrors;
      close("bad request: " + st.message(), true);
      break;
    }
    ++requests_;
    ++server_.stats_.requests;
    pending_ = true;
    pendingEnd_ = end;
    inHandler_ = true;
    auto self = shared_from_this();
    server_.onRequest_(req_, id_, [self](std::string action) { self->answered(std::move(action)); });
    inHandler_ = false;
    if (pending_) return;  // answered later: answered() resumes
  }
  if (closed_) return;
  // Keep only the unconsumed tail (usually nothing).
  if (consumed_ == buf_.size()) {
    buf_.clear();
    requestStartMs_ = 0;
    if (buf_.capacity() > 4 * kReadChunk) buf_.shrink_to_fit();
  } else if (consumed_ > 0) {
    buf_.erase(0, consumed_);
  }
  consumed_ = 0;
  if (!out_.empty()) {
    write();
  } else {
    read();
  }
}

void Connection::answered(std::string action) {
  if (!pending_) return;  // a handler must answer once; a second answer is ignored
  pending_ = false;
  if (closed_) return;
  out_ += "action=";
  out_ += action;
  out_ += "\n\n";
  consumed_ += pendingEnd_;
  if (!inHandler_) process();  // an asynchronous answer: continue with what is buffered
}

void Connection::write() {
  // Replies are small: one non-blocking send nearly always takes all of it, which saves the
  // deferred completion of async_write. Whatever is left goes the asynchronous way.
  asio::error_code werr;
  size_t n = sock_.write_some(asio::buffer(out_), werr);
  if (!werr && n == out_.size()) {
    out_.clear();
    read();
    return;
  }
  if (werr && werr != asio::error::would_block && werr != asio::error::try_again) {
    close("write error: " + werr.message(), true);
    return;
  }
  if (!werr) out_.erase(0, n);
  auto self = shared_from_this();
  asio::async_write(sock_, asio::buffer(out_), [self](const asio::error_code& ec, size_t) {
    self->out_.clear();
    if (ec) {
      self->close(self->closed_ ? "" : "write error: " + ec.message(), !self->closed_);
      return;
    }
    self->read();
  });
}

PolicyServer::PolicyServer(asio::io_context& io, RequestHandler onRequest, CloseHandler onClose)
    : io_(io), onRequest_(std::move(onRequest)), onClose_(std::move(onClose)), sweepTimer_(io) {}

PolicyServer::~PolicyServer() { stop(); }

Status PolicyServer::listen(const std::string& address) {
  auto acc = net::openListener(io_, address, 0666);
  if (!acc) return acc.error();
  acceptor_ = std::make_unique<net::Acceptor>(std::move(acc.value()));
  stopped_ = false;
  accept();
  sweep();
  return okStatus();
}

void PolicyServer::accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, net::Socket s) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and friends: log and keep accepting; the sweep frees descriptors.
      logWarning(std::string("accept: ") + ec.message());
    } else if (conns_.size() >= limits_.maxConnections) {
      ++stats_.refusedConnections;
      int64_t now = monoMs();
      if (now - lastRefusalLogMs_ >= 1000) {
        lastRefusalLogMs_ = now;
        logWarning("connection from " + net::peerName(s) + " refused: " + std::to_string(conns_.size()) +
                   " connections open (policyd.max_connections)");
      }
      asio::error_code ignored;
      s.close(ignored);
    } else {
      ++stats_.accepted;
      net::setNoDelay(s);
      asio::error_code nb;
      s.non_blocking(true, nb);
      uint64_t id = nextId_++;
      auto c = std::make_shared<Connection>(*this, std::move(s), id);
      conns_.emplace(id, c);
      stats_.open = conns_.size();
      c->start();
    }
    accept();
  });
}

void PolicyServer::sweep() {
  sweepTimer_.expires_after(std::chrono::seconds(1));
  sweepTimer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    int64_t now = monoMs();
    std::vector<std::shared_ptr<Connection>> all;
    all.reserve(conns_.size());
    for (auto& [id, c] : conns_) all.push_back(c);
    for (auto& c : all) c->checkTimers(now, limits_);
    sweep();
  });
}

uint16_t PolicyServer::localPort() const {
  if (!acceptor_) return 0;
  asio::error_code ec;
  auto ep = acceptor_->local_endpoint(ec);
  if (ec || ep.protocol().family() == AF_UNIX) return 0;
  return ntohs(reinterpret_cast<const sockaddr_in*>(ep.data())->sin_port);
}

void PolicyServer::forget(uint64_t id) {
  if (conns_.erase(id) > 0) {
    stats_.open = conns_.size();
    if (onClose_) onClose_(id);
  }
}

void PolicyServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ec;
  if (acceptor_) acceptor_->close(ec);
  sweepTimer_.cancel();
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) c->close("", false);
}

}  // namespace sluice::policyd
