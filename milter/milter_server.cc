// milter_server.cc - MilterServer: the listening socket, the pool of connection threads and the
// read/feed/write loop of one MTA connection.
#include "milter_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "base/log.h"
#include "base/net_addr.h"
#include "base/strings.h"

namespace sluice::milter {
namespace {

bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

Status openUnix(const std::string& path, int* fd) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return makeError("milter.listen: socket path too long: " + path);
  std::memcpy(sa.sun_path, path.data(), path.size());
  *fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0) return makeError(std::string("milter.listen: socket: ") + std::strerror(errno));
  mode_t old = ::umask(0);  // writable by the MTA's user; the directory guards it
  int rc = ::bind(*fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int err = errno;
  ::umask(old);
  if (rc != 0) return makeError("milter.listen: cannot bind " + path + ": " + std::strerror(err));
  return okStatus();
}

Status openInet(const std::string& spec, bool v6, int* fd) {
  std::string rest = spec.substr(v6 ? 6 : 5);
  size_t at = rest.find('@');
  auto port = parseUint(rest.substr(0, at));
  if (!port || *port == 0 || *port > 65535) return makeError("milter.listen: bad port in \"" + spec + "\"");
  std::string host = at == std::string::npos ? std::string(v6 ? "::" : "0.0.0.0") : rest.substr(at + 1);
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(*port));
    len = sizeof *sin;
  } else if (::inet_pton(AF_INET6, host.c_str(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(*port));
    len = sizeof *sin6;
    family = AF_INET6;
  } else {
    return makeError("milter.listen: \"" + host + "\" is not an IP address");
  }
  *fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0) return makeError(std::string("milter.listen: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(*fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return makeError("milter.listen: cannot bind " + spec + ": " + std::strerror(errno));
  }
  return okStatus();
}

}  // namespace

MilterServer::~MilterServer() {
  if (listenFd_ >= 0) ::close(listenFd_);
}

Status MilterServer::listen(const std::string& spec) {
  Status st = okStatus();
  if (startsWith(spec, "unix:")) st = openUnix(unixPath_ = spec.substr(5), &listenFd_);
  else if (startsWith(spec, "local:")) st = openUnix(unixPath_ = spec.substr(6), &listenFd_);
  else if (startsWith(spec, "inet6:")) st = openInet(spec, true, &listenFd_), tcp_ = true;
  else if (startsWith(spec, "inet:")) st = openInet(spec, false, &listenFd_), tcp_ = true;
  else return makeError("milter.listen: expected unix:/PATH or inet:PORT@IP, got \"" + spec + "\"");
  if (!st) return st;
  if (::listen(listenFd_, SOMAXCONN) != 0) {
    return makeError("milter.listen: listen on " + spec + ": " + std::strerror(errno));
  }
  return okStatus();
}

void MilterServer::stop() {
  stopping_ = true;
  if (listenFd_ >= 0) ::shutdown(listenFd_, SHUT_RDWR);  // wakes accept()
  cv_.notify_all();
}

void MilterServer::serve() {
  while (!stopping_) {
    int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        logError(std::string("milter: accept: ") + std::strerror(errno) + "; pausing 100 ms");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      logError(std::string("milter: accept: ") + std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (active_.load() >= kMaxConnections) {
      logWarning("milter: " + std::to_string(kMaxConnections) +
                 " connections in use; closing a new one (the MTA applies milter_default_action)");
      ::close(fd);
      continue;
    }
    dispatch(fd);
  }
  if (!unixPath_.empty()) ::unlink(unixPath_.c_str());  // nobody connects to a stopped milter
  // Drain: sessions in flight finish (the MTA closes them after its SMTP session), bounded.
  std::unique_lock<std::mutex> lock(mu_);
  for (int fd : pending_) ::close(fd);
  active_ -= static_cast<int>(pending_.size());
  pending_.clear();
  cv_.notify_all();
  if (!drained_.wait_for(lock, std::chrono::seconds(kDrainSec), [&] { return active_.load() == 0; })) {
    logWarning("milter: stopping with " + std::to_string(active_.load()) + " MTA connection(s) still open");
  }
}

void MilterServer::dispatch(int fd) {
  ++active_;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back(fd);
  if (idle_ > static_cast<int>(pending_.size()) - 1) {
    cv_.notify_one();
    return;
  }
  ++threads_;
  try {
    std::thread([this] { worker(); }).detach();
  } catch (const std::exception& e) {  // no thread to be had: an idle one or a later one takes it
    --threads_;
    logError(std::string("milter: cannot start a thread: ") + e.what());
  }
}

void MilterServer::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ++idle_;
    bool got = cv_.wait_for(lock, std::chrono::seconds(kIdleThreadSec),
                            [&] { return !pending_.empty() || stopping_; });
    --idle_;
    if (!got || pending_.empty()) {
      --threads_;
      return;
    }
    int fd = pending_.front();
    pending_.pop_front();
    lock.unlock();
    serveConnection(fd);
    lock.lock();
    if (--active_ == 0) drained_.notify_all();
  }
}

void MilterServer::serveConnection(int fd) {
  timeval tv{kReadTimeoutSec, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  if (tcp_) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  MilterSession session(callbacks_);
  constexpr size_t kMinRead = 16 * 1024;
  while (true) {
    // Within a packet of known length (a body chunk of up to 64 KB arrives in several pieces)
    // wait for all of it in one read: one wake-up instead of one per piece.
    size_t missing = session.missing();
    auto [buf, room] = session.space(missing > kMinRead ? missing : kMinRead);
    size_t want = missing > 0 ? missing : room;
    ssize_t n = ::recv(fd, buf, want, missing > 0 ? MSG_WAITALL : 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) {
        logWarning(std::string("milter: MTA connection: ") +
                   (errno == EAGAIN || errno == EWOULDBLOCK ? "read timeout" : std::strerror(errno)));
      }
      break;
    }
    // Delayed ACKs: the kernel falls back to them after each read; the MTA's next small packet
    // would wait 40 ms for our ACK (Nagle on its side).
    if (tcp_) ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    bool more = session.received(static_cast<size_t>(n));
    if (!session.output().empty()) {
      if (!writeAll(fd, session.output())) {
        logWarning(std::string("milter: MTA connection: write: ") + std::strerror(errno));
        break;
      }
      session.output().clear();
    }
    if (!more) {
      if (!session.error().empty()) logWarning("milter: closing the MTA connection: " + session.error());
      break;
    }
  }
  session.finish();
  ::close(fd);
}

}  // namespace sluice::milter
