// policy_client.cc - see policy_client.h.
#include "policy_client/policy_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/ip/tcp.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/log.h"
#include "base/strings.h"
#include "decision/policy_request.h"
#include "net/listener.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxReply = 64 * 1024;

Status waitFd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return makeError("timed out");
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return okStatus();
    if (r == 0) return makeError("timed out");
    if (errno != EINTR) return makeError(std::strerror(errno));
  }
}

}  // namespace

PolicyClient::PolicyClient(Options options) : options_(std::move(options)) {}

PolicyClient::~PolicyClient() {
  for (int fd : idle_) ::close(fd);
}

Result<int> PolicyClient::connectFd() const {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const std::string& a = options_.address;
  if (startsWith(a, "unix:")) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    std::string path = a.substr(5);
    if (path.size() >= sizeof un->sun_path) return makeError(a + ": path too long");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    len = sizeof(sockaddr_un);
  } else {
    asio::ip::tcp::endpoint ep;
    if (!net::parseTcpAddress(a, &ep)) return makeError("bad policy service address \"" + a + "\"");
    std::memcpy(&ss, ep.data(), ep.size());
    len = static_cast<socklen_t>(ep.size());
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return makeError(std::string("socket: ") + std::strerror(errno));
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    std::string e = std::strerror(errno);
    ::close(fd);
    return makeError("connect to " + a + ": " + e);
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeoutMs);
  if (auto st = waitFd(fd, POLLOUT, deadline); !st) {
    ::close(fd);
    return makeError("connect to " + a + ": " + st.message());
  }
  int err = 0;
  socklen_t el = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) {
    ::close(fd);
    return makeError("connect to " + a + ": " + std::strerror(err));
  }
  return fd;
}

Result<std::string> PolicyClient::exchange(int fd, const std::string& request) const {
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeoutMs);
  for (size_t off = 0; off < request.size();) {
    if (auto st = waitFd(fd, POLLOUT, deadline); !st) return st.error();
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n > 0) off += static_cast<size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) return makeError(std::strerror(errno));
  }
  std::string in;
  char buf[4096];
  while (true) {
    size_t scan = 0, blockEnd = 0;
    if (decision::findRequestEnd(in, &scan, &blockEnd) != std::string::npos) {
      return decision::parsePolicyReply(std::string_view(in).substr(0, blockEnd));
    }
    if (in.size() > kMaxReply) return makeError("reply larger than 64 KiB");
    if (auto st = waitFd(fd, POLLIN, deadline); !st) return st.error();
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return makeError("connection closed by policy service");
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    else if (errno != EAGAIN && errno != EINTR) return makeError(std::strerror(errno));
  }
}

int PolicyClient::takeIdle() {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.empty()) return -1;
  int fd = idle_.back();
  idle_.pop_back();
  return fd;
}

void PolicyClient::giveBack(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.maxIdle) {
    idle_.push_back(fd);
  } else {
    ::close(fd);
  }
}

Result<std::string> PolicyClient::encode(const Attributes& attrs) {
  std::string req = "request=smtpd_access_policy\n";
  for (const auto& [k, v] : attrs) {
    if (auto st = decision::appendAttribute(&req, k, v); !st) return st.error();
  }
  req += "\n";
  return req;
}

Result<std::string> PolicyClient::queryOn(int* fd, const std::string& req) {
  // A kept connection may have been closed by policyd (idle timeout, restart): one retry on a
  // fresh connection covers that without hiding a real outage.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = *fd >= 0;
    if (!reused) *fd = takeIdle();
    reused = *fd >= 0;
    if (!reused) {
      auto c = connectFd();
      if (!c) return makeError("policy service " + options_.address + ": " + c.message());
      *fd = c.value();
    }
    auto r = exchange(*fd, req);
    if (r) return r;
    ::close(*fd);
    *fd = -1;
    if (!reused) return makeError("policy service " + options_.address + ": " + r.message());
  }
  return makeError("policy service " + options_.address + ": no answer");
}

Result<std::string> PolicyClient::query(const Attributes& attrs) {
  auto req = encode(attrs);
  if (!req) return req.error();
  int fd = -1;
  auto r = queryOn(&fd, req.value());
  if (fd >= 0) giveBack(fd);
  return r;
}

PolicyClient::Session::~Session() {
  if (fd_ >= 0) client_.giveBack(fd_);
}

Result<std::string> PolicyClient::Session::query(const Attributes& attrs) {
  auto req = encode(attrs);
  if (!req) return req.error();
  return client_.queryOn(&fd_, req.value());
}

std::string PolicyClient::Session::ask(const Attributes& attrs) {
  auto r = query(attrs);
  if (r) return r.value();
  logWarning(r.message() + "; answering \"" + client_.options_.defaultAction + "\"");
  return client_.options_.defaultAction;
}

std::string PolicyClient::ask(const Attributes& attrs) {
  auto r = query(attrs);
  if (r) return r.value();
  logWarning(r.message() + "; answering \"" + options_.defaultAction + "\"");
  return options_.defaultAction;
}

}  // namespace sluice
