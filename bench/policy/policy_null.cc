// policy_null.cc - a do-nothing Postfix policy server: the ceiling of the policy benchmark.
//
// Answers "action=DUNNO\n\n" to every request (name=value lines ended by an empty line) without
// looking at it. One thread, epoll, level triggered, non-blocking sockets. It only counts request
// ends, so it keeps no request bytes; a request longer than kMaxRequest closes the connection.
// Pipelined requests get their replies in order. Per connection state is allocated at accept,
// nothing per request. Runs until killed (SIGTERM).
//
// usage: policy_null --port P [--host 127.0.0.1]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr char kReply[] = "action=DUNNO\n\n";
constexpr std::size_t kReplyLen = sizeof(kReply) - 1;
constexpr std::size_t kRepeat = 64;      // replies in the static output block
constexpr std::size_t kMaxRequest = 65536;

char gReplies[kReplyLen * kRepeat];      // kReply repeated, written from a rotating offset

struct Conn {
  int fd = -1;
  bool lastWasNewline = false;
  bool wantWrite = false;
  std::size_t requestBytes = 0;  // bytes of the request being read
  std::uint64_t owed = 0;        // reply bytes not yet written
  std::uint64_t written = 0;     // reply bytes written so far (position in the reply stream)
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "policy_null: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void closeConn(int ep, Conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  delete c;
}

// Writes what is owed; returns false when the peer is gone.
bool flushReplies(int ep, Conn* c) {
  while (c->owed > 0) {
    std::size_t off = c->written % kReplyLen;
    std::size_t n = sizeof gReplies - off;
    if (n > c->owed) n = static_cast<std::size_t>(c->owed);
    ssize_t w = write(c->fd, gReplies + off, n);
    if (w > 0) {
      c->owed -= static_cast<std::uint64_t>(w);
      c->written += static_cast<std::uint64_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return false;
    }
  }
  bool want = c->owed > 0;
  if (want != c->wantWrite) {
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->wantWrite = want;
  }
  return true;
}

// Reads what is there, counts request ends ("\n\n"); returns false to close the connection.
bool readRequests(Conn* c) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    for (ssize_t i = 0; i < n; ++i) {
      bool nl = buf[i] == '\n';
      if (nl && c->lastWasNewline) {
        c->owed += kReplyLen;
        c->requestBytes = 0;
        c->lastWasNewline = false;
        continue;
      }
      c->lastWasNewline = nl;
      if (++c->requestBytes > kMaxRequest) return false;
    }
    if (static_cast<std::size_t>(n) < sizeof buf) return true;
  }
}

int listenOn(const char* host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("bad --host");
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (listen(fd, 1024) != 0) die("listen");
  return fd;
}

void acceptAll(int ep, int lfd) {
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new Conn;
    c->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      delete c;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--port") port = std::atoi(argv[i + 1]);
    else if (k == "--host") host = argv[i + 1];
  }
  if (port <= 0 || port > 65535 || host.rfind("127.", 0) != 0) {
    std::fprintf(stderr, "usage: policy_null --port P [--host 127.x.x.x]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  for (std::size_t i = 0; i < kRepeat; ++i) std::memcpy(gReplies + i * kReplyLen, kReply, kReplyLen);
  int lfd = listenOn(host.c_str(), port);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // the listener
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");
  epoll_event events[512];
  for (;;) {
    int n = epoll_wait(ep, events, 512, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c == nullptr) {
        acceptAll(ep, lfd);
        continue;
      }
      bool ok = true;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ok = readRequests(c);
      if (ok) ok = flushReplies(ep, c);
      if (!ok) closeConn(ep, c);
    }
  }
}
