// admin_client.cc - see admin_client.h.
#include "admin/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "admin/admin_server.h"

namespace sluice::admin {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return makeError("timed out");
  pollfd p{fd, events, 0};
  int r = ::poll(&p, 1, static_cast<int>(left.count()));
  if (r == 0) return makeError("timed out");
  if (r < 0 && errno != EINTR) return makeError(std::strerror(errno));
  return okStatus();
}

}  // namespace

Result<nlohmann::json> adminCall(const std::string& path, const nlohmann::json& request, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return makeError(path + ": socket path too long");
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return makeError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return makeError("cannot reach " + path + ": " + std::strerror(errno) + " (is the daemon running?)");
  }
  std::string line = request.dump() + "\n";
  for (size_t off = 0; off < line.size();) {
    if (auto st = waitFor(fd.get(), POLLOUT, deadline); !st) return makeError(path + ": " + st.message());
    ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR && errno != EAGAIN) return makeError(path + ": " + std::strerror(errno));
    if (n > 0) off += static_cast<size_t>(n);
  }
  std::string in;
  char buf[8192];
  while (in.find('\n') == std::string::npos) {
    if (in.size() > kMaxAdminLine) return makeError(path + ": reply too long");
    if (auto st = waitFor(fd.get(), POLLIN, deadline); !st) return makeError(path + ": " + st.message());
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) return makeError(path + ": connection closed before a reply");
    if (n < 0 && errno != EINTR && errno != EAGAIN) return makeError(path + ": " + std::strerror(errno));
    if (n > 0) in.append(buf, static_cast<size_t>(n));
  }
  auto reply = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) return makeError(path + ": malformed reply");
  return reply;
}

}  // namespace sluice::admin
