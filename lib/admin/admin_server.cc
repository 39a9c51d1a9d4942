// admin_server.cc - see admin_server.h.
#include "admin/admin_server.h"

#include <unistd.h>

#include "base/line_reader.h"
#include "base/log.h"

namespace sluice::admin {
namespace {

class AdminConn : public std::enable_shared_from_this<AdminConn> {
 public:
  AdminConn(net::Socket s, AdminServer::Handler& h) : sock_(std::move(s)), handler_(h), reader_(kMaxAdminLine) {}
  void start() { read(); }

 private:
  void read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(chunk_), [self](const asio::error_code& ec, size_t n) {
      if (ec) return;
      self->reader_.append(std::string_view(self->chunk_.data(), n));
      self->process();
    });
  }

  void process() {
    std::string_view line;
    std::string out;
    bool close = false;
    while (true) {
      auto st = reader_.nextLine(&line);
      if (st == LineReader::Status::kNeedMore) break;
      if (st == LineReader::Status::kTooLong) {
        out += errorReply("request line too long").dump() + "\n";
        close = true;
        break;
      }
      if (line.empty()) continue;
      nlohmann::json req = nlohmann::json::parse(line, nullptr, false);
      if (req.is_discarded() || !req.is_object()) {
        out += errorReply("request is not a JSON object").dump() + "\n";
        close = true;
        break;
      }
      nlohmann::json reply;
      try {
        reply = handler_(req);
      } catch (const std::exception& e) {
        reply = errorReply(std::string("internal error: ") + e.what());
      }
      out += reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    if (out.empty()) {
      read();
      return;
    }
    out_ = std::move(out);
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(out_), [self, close](const asio::error_code& ec, size_t) {
      if (ec || close) {
        asio::error_code ignored;
        self->sock_.close(ignored);
        return;
      }
      self->read();
    });
  }

  net::Socket sock_;
  AdminServer::Handler& handler_;
  LineReader reader_;
  std::array<char, 8192> chunk_{};
  std::string out_;
};

}  // namespace

AdminServer::AdminServer(asio::io_context& io, std::string path, Handler handler)
    : io_(io), path_(std::move(path)), handler_(std::move(handler)) {}

AdminServer::~AdminServer() { stop(); }

Status AdminServer::start() {
  auto acc = net::openListener(io_, "unix:" + path_, 0600, 64);
  if (!acc) return acc.error();
  acceptor_ = std::make_unique<net::Acceptor>(std::move(acc.value()));
  accept();
  return okStatus();
}

void AdminServer::stop() {
  if (!acceptor_) return;
  asio::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
  ::unlink(path_.c_str());
}

void AdminServer::accept() {
  acceptor_->async_accept([this](const asio::error_code& ec, net::Socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_) return;
    if (!ec) std::make_shared<AdminConn>(std::move(s), handler_)->start();
    accept();
  });
}

nlohmann::json okReply(nlohmann::json fields) {
  fields["ok"] = true;
  return fields;
}

nlohmann::json errorReply(const std::string& message) {
  return nlohmann::json{{"ok", false}, {"error", message}};
}

}  // namespace sluice::admin
