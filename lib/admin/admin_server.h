// admin_server.h - each daemon's admin socket (STATE_DIR/<daemon>.sock, mode 0600).
//
// Protocol: JSON Lines. The client sends one object per line, e.g.
//   {"cmd":"limits.show","key":"app1"}
// and gets one object per line back: {"ok":true,...} or {"ok":false,"error":"..."}.
// Lines are bounded (kMaxAdminLine); a longer one, or one that is not a JSON object, gets an
// error reply and the connection is closed. The handler runs on the daemon's event loop, so it
// may touch the daemon's state without locks. The client is in admin_client.h.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "net/listener.h"

namespace sluice::admin {

inline constexpr size_t kMaxAdminLine = 1 << 20;

class AdminServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  AdminServer(asio::io_context& io, std::string path, Handler handler);
  ~AdminServer();
  Status start();
  void stop();

 private:
  void accept();

  asio::io_context& io_;
  std::string path_;
  Handler handler_;
  std::unique_ptr<net::Acceptor> acceptor_;
};

// Helpers for handlers.
nlohmann::json okReply(nlohmann::json fields = nlohmann::json::object());
nlohmann::json errorReply(const std::string& message);

}  // namespace sluice::admin
