// policy_load.cc - closed-loop load client for Postfix policy delegation servers.
//
// K TCP connections to one server, each with exactly one request in flight, like K Postfix smtpd
// processes each holding a cached check_policy_service connection. One thread, epoll, level
// triggered; every buffer is allocated before the first request, so the request path never calls
// malloc (see policy_request_writer.h for the request format).
//
// Each connection runs SMTP transactions: --rcpts RCPT requests, then, when at least one
// recipient was accepted, one END-OF-MESSAGE request for the same instance (as Postfix does: a
// transaction whose recipients were all refused never reaches DATA).
//
// The deferral share is arranged, not left to chance (see bench/README.md): --heavy-users H users
// (user<heavy-base+1>..) are "heavy", the other --users minus H (user<user-base+H+1>..) "light".
// Phases:
//   prime    heavy-user transactions only, until the server has refused each heavy user once
//            (the rule's limit, --limit, is reached); instant when an earlier run already did it;
//   warm-up  normal load for --warmup seconds and until every connection has had a reply to a
//            transaction started after the prime phase (at most 10 s more: a server that leaves
//            connections unserved, e.g. with fewer processes than K, shows as starved=N);
//   measure  at least --duration seconds and --min-requests replies (at most --max-duration);
//            only replies arriving now count: req/s, latency, reply classes;
//   drain    no new requests; wait (up to 2 s) for the in-flight replies, then close cleanly.
// Heavy users get the share of transactions that makes --defer-share of all requests refused;
// light users, served round robin, stay far below --limit for the whole run (checked: a warning
// says when one came near).
//
// Output: one line on stdout,
//   K=32 req/s=N p50=Xms p99=Xms deferred=X% rejected=X% <more key=value diagnostics>
// Diagnostics and warnings go to stderr. Exit status: 0, or 1 with a one-line reason.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "latency_histogram.h"
#include "policy_request_writer.h"

namespace bench {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::uint32_t conns = 1;
  double duration = 5;
  double warmup = 1;
  std::uint32_t users = 1000;
  std::uint32_t userBase = 0;     // users are user<base+1> .. user<base+users>
  std::uint32_t rcpts = 1;
  std::uint32_t heavyUsers = 1;
  std::int64_t heavyBase = -1;    // heavy users are user<heavyBase+1>..; -1: the same as userBase
  std::uint32_t limit = 0;        // the rule's limit per user; 0: no rule, no prime phase
  double deferShare = 0.10;
  std::uint32_t messageSize = 4413;
  double primeTimeout = 120;
  std::uint64_t minRequests = 0;
  double maxDuration = 0;         // 0: 6 x duration
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "policy_load: %s: %s\n", what, errno ? std::strerror(errno) : "error");
  std::exit(1);
}

std::uint64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

enum class ReplyClass { kAccept, kDefer, kReject };

// "action=WORD ..." -> class. 4xx and DEFER* are deferrals, 5xx and REJECT refusals; everything
// else (DUNNO, OK, PREPEND, WARN, HOLD, ...) lets the recipient through.
ReplyClass classify(const char* line, std::size_t len) {
  static constexpr char kPrefix[] = "action=";
  constexpr std::size_t kPrefixLen = sizeof(kPrefix) - 1;
  if (len <= kPrefixLen || std::strncmp(line, kPrefix, kPrefixLen) != 0) return ReplyClass::kAccept;
  const char* a = line + kPrefixLen;
  std::size_t n = len - kPrefixLen;
  if (a[0] == '4') return ReplyClass::kDefer;
  if (a[0] == '5') return ReplyClass::kReject;
  if (n >= 5 && strncasecmp(a, "DEFER", 5) == 0) return ReplyClass::kDefer;
  if (n >= 6 && strncasecmp(a, "REJECT", 6) == 0) return ReplyClass::kReject;
  return ReplyClass::kAccept;
}

struct Connection {
  explicit Connection(std::uint32_t prefix) : writer(prefix) {}
  int fd = -1;
  std::uint32_t index = 0;
  Transaction txn;
  bool heavy = false;
  bool atEndOfMessage = false;
  std::uint32_t rcptIndex = 0;
  std::uint32_t accepted = 0;
  std::uint32_t onlyRcpt = 0;
  PolicyRequestWriter writer;
  std::size_t sent = 0;        // bytes of the current request written so far
  std::uint64_t sentAt = 0;
  bool wantWrite = false;
  bool warm = false;           // had a reply to a transaction started after the prime phase
  bool idle = false;           // drain phase: its last reply came, nothing more is sent
  std::uint64_t measuredReplies = 0;
  std::uint64_t generation = 0;
  char in[4096];
  std::size_t inLen = 0;
};

enum class Phase { kPrime, kWarmup, kMeasure, kDrain, kDone };

class LoadClient {
 public:
  explicit LoadClient(const Options& o);
  void run();
  void report() const;

 private:
  void connectOne(Connection& c);
  void startTransaction(Connection& c, std::uint64_t now);
  std::uint32_t pickUser(bool& heavy);
  void send(Connection& c, std::uint64_t now);
  void flush(Connection& c);
  void onReadable(Connection& c, std::uint64_t now);
  void onReply(Connection& c, ReplyClass cls, std::uint64_t now);
  void reconnect(Connection& c);
  void advancePhase(std::uint64_t now);
  void endPrime(std::uint64_t now);
  std::uint32_t heavyBase() const {
    return o_.heavyBase < 0 ? o_.userBase : static_cast<std::uint32_t>(o_.heavyBase);
  }

  Options o_;
  int epoll_ = -1;
  sockaddr_in addr_{};
  std::vector<std::unique_ptr<Connection>> conns_;
  Phase phase_ = Phase::kPrime;
  std::uint64_t phaseStart_ = 0, warmEnd_ = 0, measureStart_ = 0, measureEnd_ = 0, hardEnd_ = 0;
  std::uint64_t generation_ = 0;
  std::uint32_t warmConns_ = 0, idleConns_ = 0;
  std::uint64_t nextTxnId_ = 1;
  double heavyShare_ = 0, heavyAcc_ = 0;
  std::uint32_t nextHeavy_ = 0, nextLight_ = 0;
  std::vector<bool> primed_;
  std::uint32_t primedCount_ = 0;
  std::uint64_t primeTxns_ = 0;
  std::vector<std::uint32_t> lightTxns_;
  LatencyHistogram hist_;
  std::uint64_t byClass_[3] = {0, 0, 0};
  std::uint64_t measuredTxns_ = 0, reconnects_ = 0, allReplies_ = 0;
};

LoadClient::LoadClient(const Options& o) : o_(o) {
  // Heavy share X of transactions so that refused requests are deferShare d of all requests:
  // a heavy transaction is r refused RCPTs, a light one r RCPTs + 1 END-OF-MESSAGE, so
  // X r / (X r + (1 - X)(r + 1)) = d  =>  X = d (r + 1) / (r + d).
  double r = o_.rcpts, d = o_.deferShare;
  heavyShare_ = o_.limit == 0 || o_.heavyUsers == 0 ? 0 : d * (r + 1) / (r + d);
  primed_.assign(o_.heavyUsers, false);
  lightTxns_.assign(o_.users, 0);
  addr_.sin_family = AF_INET;
  addr_.sin_port = htons(static_cast<std::uint16_t>(o_.port));
  if (inet_pton(AF_INET, o_.host.c_str(), &addr_.sin_addr) != 1) die("bad --host");
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) die("epoll_create1");
  auto prefix = static_cast<std::uint32_t>(getpid()) ^ static_cast<std::uint32_t>(std::time(nullptr) << 12);
  for (std::uint32_t i = 0; i < o_.conns; ++i) {
    conns_.push_back(std::make_unique<Connection>(prefix));
    conns_.back()->index = i;
    connectOne(*conns_.back());
  }
}

void LoadClient::connectOne(Connection& c) {
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) die("socket");
  if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0) die("connect");
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &c;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
  c.wantWrite = false;
  c.inLen = 0;
}

// Light users round robin; heavy users (after the prime phase) for heavyShare_ of transactions,
// spread evenly by an accumulator so that the share holds over any stretch of the run.
std::uint32_t LoadClient::pickUser(bool& heavy) {
  std::uint32_t lightUsers = o_.users - o_.heavyUsers;
  heavy = phase_ == Phase::kPrime || lightUsers == 0;
  if (!heavy) {
    heavyAcc_ += heavyShare_;
    if (heavyAcc_ >= 1.0) {
      heavyAcc_ -= 1.0;
      heavy = true;
    }
  }
  if (heavy) {
    std::uint32_t h = nextHeavy_++ % o_.heavyUsers;
    if (phase_ == Phase::kPrime) {
      for (std::uint32_t i = 0; i < o_.heavyUsers && primed_[h]; ++i) h = nextHeavy_++ % o_.heavyUsers;
    }
    return heavyBase() + 1 + h;
  }
  std::uint32_t l = o_.heavyUsers + nextLight_++ % lightUsers;
  ++lightTxns_[l];
  return o_.userBase + 1 + l;
}

void LoadClient::startTransaction(Connection& c, std::uint64_t now) {
  c.txn.user = pickUser(c.heavy);
  c.txn.id = nextTxnId_++;
  c.txn.connection = c.index;
  c.txn.clientPort = 32768 + static_cast<std::uint32_t>((c.txn.id / 10) % 28000);  // new session every 10
  c.txn.messageSize = o_.messageSize;
  c.rcptIndex = 0;
  c.accepted = 0;
  c.atEndOfMessage = false;
  c.generation = generation_;
  if (phase_ == Phase::kPrime) ++primeTxns_;
  if (phase_ == Phase::kMeasure) ++measuredTxns_;
  c.writer.writeRcpt(c.txn, 0);
  send(c, now);
}

void LoadClient::send(Connection& c, std::uint64_t now) {
  c.sent = 0;
  c.sentAt = now;
  flush(c);
}

void LoadClient::flush(Connection& c) {
  while (c.sent < c.writer.size()) {
    ssize_t n = write(c.fd, c.writer.data() + c.sent, c.writer.size() - c.sent);
    if (n > 0) {
      c.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return;  // the peer is gone: the read side sees it and reconnects
  }
  bool want = c.sent < c.writer.size();
  if (want == c.wantWrite) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) != 0) die("epoll_ctl");
  c.wantWrite = want;
}

// The server closed the connection with our request in flight (postfwd2's children exit after
// a number of requests, for example). Postfix then retries once on a new connection; so do we.
void LoadClient::reconnect(Connection& c) {
  epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  ++reconnects_;
  connectOne(c);
  c.sent = 0;
  flush(c);  // same request, same start time: the reconnect counts in its latency
}

void LoadClient::onReadable(Connection& c, std::uint64_t now) {
  ssize_t n = read(c.fd, c.in + c.inLen, sizeof c.in - c.inLen);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    if (c.inLen != 0) {
      std::fprintf(stderr, "policy_load: connection closed inside a reply\n");
      std::exit(1);
    }
    reconnect(c);
    return;
  }
  c.inLen += static_cast<std::size_t>(n);
  const char* end = static_cast<const char*>(memmem(c.in, c.inLen, "\n\n", 2));
  if (end == nullptr) {
    if (c.inLen == sizeof c.in) {
      std::fprintf(stderr, "policy_load: reply longer than %zu bytes\n", sizeof c.in);
      std::exit(1);
    }
    return;
  }
  std::size_t replyLen = static_cast<std::size_t>(end - c.in) + 2;
  if (replyLen != c.inLen) {
    std::fprintf(stderr, "policy_load: a reply nobody asked for (server answered twice?)\n");
    std::exit(1);
  }
  const char* nl = static_cast<const char*>(std::memchr(c.in, '\n', replyLen));
  ReplyClass cls = classify(c.in, static_cast<std::size_t>(nl - c.in));
  c.inLen = 0;
  onReply(c, cls, now);
}

void LoadClient::onReply(Connection& c, ReplyClass cls, std::uint64_t now) {
  ++allReplies_;
  if (phase_ == Phase::kMeasure) {
    hist_.record(now - c.sentAt);
    ++byClass_[static_cast<int>(cls)];
    ++c.measuredReplies;
  } else if (phase_ == Phase::kWarmup && !c.warm && c.generation == generation_) {
    c.warm = true;
    ++warmConns_;
  } else if (phase_ == Phase::kDrain) {
    c.idle = true;
    ++idleConns_;
    return;
  }
  if (c.atEndOfMessage) {
    startTransaction(c, now);
    return;
  }
  if (cls == ReplyClass::kAccept) {
    ++c.accepted;
    c.onlyRcpt = c.rcptIndex;
  } else if (c.heavy && phase_ == Phase::kPrime) {
    std::uint32_t h = c.txn.user - heavyBase() - 1;
    if (!primed_[h]) {
      primed_[h] = true;
      if (++primedCount_ == o_.heavyUsers) endPrime(now);
    }
  }
  if (++c.rcptIndex < o_.rcpts) {
    c.writer.writeRcpt(c.txn, c.rcptIndex);
    send(c, now);
  } else if (c.accepted > 0) {
    c.atEndOfMessage = true;
    c.writer.writeEndOfMessage(c.txn, c.accepted, c.onlyRcpt);
    send(c, now);
  } else {
    startTransaction(c, now);
  }
}

void LoadClient::endPrime(std::uint64_t now) {
  if (o_.limit != 0 && primedCount_ < o_.heavyUsers) {
    std::fprintf(stderr, "policy_load: WARNING: the rule did not fire for %u of %u heavy users after %llu "
                 "transactions: deferred%% will be off\n", o_.heavyUsers - primedCount_, o_.heavyUsers,
                 static_cast<unsigned long long>(primeTxns_));
  }
  phase_ = Phase::kWarmup;
  phaseStart_ = now;
  ++generation_;
  warmEnd_ = now + static_cast<std::uint64_t>(o_.warmup * 1e9);
}

void LoadClient::advancePhase(std::uint64_t now) {
  if (phase_ == Phase::kPrime) {
    std::uint64_t cap = 4ull * (o_.limit + o_.conns) * o_.heavyUsers + 1000;
    if (primeTxns_ > cap || now - phaseStart_ > static_cast<std::uint64_t>(o_.primeTimeout * 1e9)) endPrime(now);
  }
  if (phase_ == Phase::kWarmup && now >= warmEnd_ && (warmConns_ == o_.conns || now >= warmEnd_ + 10000000000ull)) {
    phase_ = Phase::kMeasure;
    measureStart_ = now;
    measureEnd_ = now + static_cast<std::uint64_t>(o_.duration * 1e9);
    double cap = o_.maxDuration > 0 ? o_.maxDuration : 6 * o_.duration;
    hardEnd_ = now + static_cast<std::uint64_t>(cap * 1e9);
  }
  if (phase_ == Phase::kMeasure && ((now >= measureEnd_ && hist_.total() >= o_.minRequests) || now >= hardEnd_)) {
    phase_ = Phase::kDrain;
    measureEnd_ = now;
    phaseStart_ = now;
  }
  if (phase_ == Phase::kDrain && (idleConns_ == o_.conns || now - phaseStart_ > 2000000000ull)) phase_ = Phase::kDone;
}

void LoadClient::run() {
  std::uint64_t now = nowNs();
  phaseStart_ = now;
  if (o_.limit == 0 || o_.heavyUsers == 0) endPrime(now);
  for (auto& c : conns_) startTransaction(*c, now);
  epoll_event events[512];
  while (phase_ != Phase::kDone) {
    int n = epoll_wait(epoll_, events, 512, 5);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(events[i].data.ptr);
      now = nowNs();
      if (events[i].events & EPOLLOUT) flush(*c);
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) onReadable(*c, now);
    }
    advancePhase(nowNs());
  }
  for (auto& c : conns_) close(c->fd);
}

void LoadClient::report() const {
  double secs = static_cast<double>(measureEnd_ - measureStart_) / 1e9;
  std::uint64_t total = hist_.total();
  auto pct = [&](std::uint64_t v) { return total ? 100.0 * static_cast<double>(v) / static_cast<double>(total) : 0.0; };
  auto ms = [&](double q) { return static_cast<double>(hist_.quantileNs(q)) / 1e6; };
  std::uint32_t lightMax = 0, starved = 0;
  for (const auto& c : conns_) starved += c->measuredReplies == 0;
  for (std::uint32_t i = o_.heavyUsers; i < o_.users; ++i) lightMax = std::max(lightMax, lightTxns_[i]);
  std::printf("K=%u req/s=%.0f p50=%.3fms p99=%.3fms deferred=%.1f%% rejected=%.1f%% requests=%llu "
              "txn/s=%.0f p90=%.3fms p99.9=%.3fms max=%.3fms reconnects=%llu prime_txns=%llu "
              "light_max_txns=%u limit=%u starved=%u all_replies=%llu\n",
              o_.conns, static_cast<double>(total) / secs, ms(0.50), ms(0.99),
              pct(byClass_[static_cast<int>(ReplyClass::kDefer)]), pct(byClass_[static_cast<int>(ReplyClass::kReject)]),
              static_cast<unsigned long long>(total), static_cast<double>(measuredTxns_) / secs, ms(0.90), ms(0.999),
              static_cast<double>(hist_.maxNs()) / 1e6, static_cast<unsigned long long>(reconnects_),
              static_cast<unsigned long long>(primeTxns_), lightMax, o_.limit, starved,
              static_cast<unsigned long long>(allReplies_));
  if (starved != 0) {
    std::fprintf(stderr, "policy_load: WARNING: %u of %u connections got no reply while measuring "
                 "(the server serves fewer connections than K)\n", starved, o_.conns);
  }
  if (o_.limit != 0 && lightMax >= o_.limit * 9 / 10) {
    std::fprintf(stderr, "policy_load: WARNING: a light user sent %u transactions, near the limit %u: "
                 "raise the limit or shorten the run\n", lightMax, o_.limit);
  }
}

void usage() {
  std::fprintf(stderr,
      "usage: policy_load --port P [--host 127.0.0.1] [--conns K] [--duration S] [--warmup S]\n"
      "         [--min-requests N] [--max-duration S] [--users N] [--user-base B] [--rcpts R]\n"
      "         [--limit L] [--heavy-users H] [--heavy-base B] [--defer-share F] [--size BYTES]\n"
      "         [--prime-timeout S]\n");
  std::exit(2);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage();
    const char* v = argv[++i];
    auto u32 = [&] { return static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10)); };
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v);
    else if (k == "--conns") o.conns = u32();
    else if (k == "--duration") o.duration = std::atof(v);
    else if (k == "--warmup") o.warmup = std::atof(v);
    else if (k == "--users") o.users = u32();
    else if (k == "--user-base") o.userBase = u32();
    else if (k == "--rcpts") o.rcpts = u32();
    else if (k == "--limit") o.limit = u32();
    else if (k == "--heavy-users") o.heavyUsers = u32();
    else if (k == "--heavy-base") o.heavyBase = std::atoll(v);
    else if (k == "--min-requests") o.minRequests = std::strtoull(v, nullptr, 10);
    else if (k == "--max-duration") o.maxDuration = std::atof(v);
    else if (k == "--defer-share") o.deferShare = std::atof(v);
    else if (k == "--size") o.messageSize = u32();
    else if (k == "--prime-timeout") o.primeTimeout = std::atof(v);
    else usage();
  }
  if (o.port <= 0 || o.port > 65535 || o.conns == 0 || o.rcpts == 0 || o.duration <= 0 ||
      o.users == 0 || o.heavyUsers >= o.users || o.deferShare < 0 || o.deferShare >= 1) usage();
  if (o.host.rfind("127.", 0) != 0) {
    std::fprintf(stderr, "policy_load: loopback only (--host 127.x.x.x)\n");
    std::exit(2);
  }
  return o;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  bench::Options o = bench::parseOptions(argc, argv);
  bench::LoadClient client(o);
  client.run();
  client.report();
  return 0;
}
