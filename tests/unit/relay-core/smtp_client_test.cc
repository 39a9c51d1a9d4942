// smtp_client_test.cc - tests of sluice-relayd's outbound SMTP client (relay-core/smtp_client.h):
// dotStuff() (leading dots, a lone dot, a last line without CRLF, empty content), and SmtpClient
// against a scripted fake peer in this file (a thread with a blocking loopback socket): multi-line
// replies, malformed replies, PIPELINING (MAIL, RCPT and DATA in one write) and without it (one
// command per reply), a 421 greeting, EHLO refused (HELO), STARTTLS refused under "may" (the
// session goes on in the clear) and under "encrypt" (454), greeting and command timeouts, a peer
// that closes, a refused connection.
#include "smtp_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::relayd {
namespace {

// ---- dotStuff ----

TEST(DotStuff, Table) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"", ".\r\n"},
      {"a\r\n", "a\r\n.\r\n"},
      {".leading\r\n", "..leading\r\n.\r\n"},
      {"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n"},
      {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},          // a lone dot is not the end
      {"a\r\nlast line", "a\r\nlast line\r\n.\r\n"},        // no CRLF at the end
      {"a\r\n.last", "a\r\n..last\r\n.\r\n"},
      {"x", "x\r\n.\r\n"},
      {".", "..\r\n.\r\n"},
      {"\r\n", "\r\n.\r\n"},
      {"mid.dot . x\r\n", "mid.dot . x\r\n.\r\n"},          // dots inside a line stay
  };
  for (const Case& c : cases) EXPECT_EQ(dotStuff(c.in), c.want) << "content \"" << c.in << "\"";
}

// sendBody writes content unchanged (plus the terminator) when needsDotStuffing is false, so the
// predicate must be true exactly when dotStuff would double a dot.
TEST(DotStuff, NeedsDotStuffingMatchesDotStuff) {
  const std::string cases[] = {"",          "a\r\n",       ".leading\r\n", "a\r\n.b\r\n", "a\r\nb.\r\n", "x.y.z\r\n.",
                               "\r\n.\r\n",    "mid.dot\r\n", ".",              "...",        "a\n.b",       "end.\r\n"};
  for (const std::string& in : cases) {
    std::string plain = in;
    if (!plain.empty() && (plain.size() < 2 || plain.compare(plain.size() - 2, 2, "\r\n") != 0)) plain += "\r\n";
    plain += ".\r\n";
    EXPECT_EQ(needsDotStuffing(in), dotStuff(in) != plain) << "content \"" << in << "\"";
  }
  EXPECT_FALSE(needsDotStuffing(std::string(100000, 'a')));
  std::string big(100000, 'b');
  big[70000] = '\n';
  big[70001] = '.';
  EXPECT_TRUE(needsDotStuffing(big));
}

// ---- a scripted fake peer ----

class FakePeer {
 public:
  using Script = std::function<void(FakePeer&)>;
  explicit FakePeer(Script script) {
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(lfd_, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      pollfd p{lfd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return;
      fd_ = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd_ < 0) return;
      script(*this);
    });
  }
  ~FakePeer() {
    join();
    if (fd_ >= 0) ::close(fd_);
    ::close(lfd_);
  }
  asio::ip::tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // For scripts (the peer's thread).
  void send(const std::string& s) { (void)!::write(fd_, s.data(), s.size()); }
  // The next line without its CRLF; "" with eof() on EOF or after timeoutMs.
  std::string readLine(int timeoutMs = 5000) {
    for (;;) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        std::lock_guard<std::mutex> g(mu_);
        lines_.push_back(l);
        return l;
      }
      if (!fill(timeoutMs)) {
        eof_ = true;
        return "";
      }
    }
  }
  // True when no byte arrives within ms (nothing buffered, nothing on the socket).
  bool quietFor(int ms) {
    if (!buf_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) == 0;
  }
  // Lines up to the final "." (not included), as sent (still dot-stuffed).
  std::string readData() {
    std::string out;
    for (;;) {
      std::string l = readLine();
      if (eof_ || l == ".") return out;
      out += l + "\r\n";
    }
  }
  // Waits (up to ms) for the client to close.
  void waitClose(int ms = 10000) {
    while (!eof_) readLine(ms);
  }
  void closeNow() {
    ::shutdown(fd_, SHUT_RDWR);
  }
  bool eof() const { return eof_; }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> g(mu_);
    return lines_;
  }
  std::string data;  // what a script kept of DATA

 private:
  bool fill(int timeoutMs) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeoutMs) != 1) return false;
    char b[4096];
    ssize_t n = ::read(fd_, b, sizeof b);
    if (n <= 0) return false;
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }

  int lfd_ = -1, fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::string buf_;
  bool eof_ = false;
  std::mutex mu_;
  std::vector<std::string> lines_;
};

ClientOptions options() {
  ClientOptions o;
  o.heloName = "relay.sluice.example";
  o.tls = TlsLevel::kNone;
  o.peerName = "mx.test.example";
  o.connectTimeoutMs = 2000;
  o.greetingTimeoutMs = 3000;
  o.commandTimeoutMs = 3000;
  o.dataTimeoutMs = 3000;
  return o;
}

struct ClientRun {
  SmtpReply open;
  bool usable = false;
  std::vector<TransactionResult> tx;
  bool done = false;
};

asio::awaitable<void> session(std::shared_ptr<SmtpClient> c, asio::ip::tcp::endpoint ep, std::vector<Transaction> txs,
                              ClientRun* out) {
  out->open = co_await c->open(ep);
  out->usable = c->usable();
  for (const auto& t : txs) {
    if (!c->usable()) break;
    TransactionResult r = co_await c->send(t);
    out->tx.push_back(std::move(r));
  }
  if (c->usable()) co_await c->quit();
  out->done = true;
}

// One client session on its own io_context; the client lives as long as the Harness (declare the
// FakePeer first, so the client goes before the peer's thread is joined).
struct Harness {
  asio::io_context io;
  std::shared_ptr<SmtpClient> c;
  ClientRun run(const asio::ip::tcp::endpoint& ep, ClientOptions o, std::vector<Transaction> txs = {}) {
    c = std::make_shared<SmtpClient>(io, std::move(o));
    ClientRun r;
    asio::co_spawn(io, session(c, ep, std::move(txs), &r), asio::detached);
    io.run_for(std::chrono::seconds(20));
    EXPECT_TRUE(r.done) << "the client session did not finish in 20 s";
    return r;
  }
};

const std::string kContent = "Subject: t\r\n\r\n.dot first\r\nbody\r\n";

Transaction tx(std::vector<std::string> rcpts) {
  Transaction t;
  t.mailFrom = "alice@sender.example";
  for (auto& r : rcpts) t.rcpts.push_back(Transaction::Rcpt{r, {}});
  t.content = &kContent;
  return t;
}

// Greeting and EHLO with these extensions.
void greetAndEhlo(FakePeer& p, const std::vector<std::string>& ext) {
  p.send("220 mx.test.example ESMTP\r\n");
  std::string ehlo = p.readLine();
  if (ehlo.rfind("EHLO ", 0) != 0) return;
  std::string r;
  std::vector<std::string> lines = {"mx.test.example"};
  lines.insert(lines.end(), ext.begin(), ext.end());
  for (size_t i = 0; i < lines.size(); ++i) r += "250" + std::string(i + 1 < lines.size() ? "-" : " ") + lines[i] + "\r\n";
  p.send(r);
}

void answerQuit(FakePeer& p) {
  std::string q = p.readLine();
  if (q == "QUIT") p.send("221 2.0.0 Bye\r\n");
  p.waitClose();
}

TEST(SmtpClient, MultiLineReplies) {
  FakePeer peer([](FakePeer& p) {
    p.send("220-mx.test.example first line\r\n220-second line\r\n220 last line\r\n");
    (void)p.readLine();  // EHLO
    p.send("250-mx.test.example hello\r\n250-PIPELINING\r\n250-size 1000000\r\n250-8BITMIME\r\n250 DSN\r\n");
    (void)p.readLine();  // MAIL
    (void)p.readLine();  // RCPT
    (void)p.readLine();  // DATA
    p.send("250 2.1.0 Ok\r\n550-5.1.1 the first line\r\n550-5.1.1 of a long\r\n550 5.1.1 rejection\r\n554 5.5.1 No valid recipients\r\n");
    answerQuit(p);
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options(), {tx({"nobody@dest.example"})});
  auto& c = h.c;
  EXPECT_EQ(r.open.code, 250);
  EXPECT_EQ(r.open.text, "250 mx.test.example hello PIPELINING size 1000000 8BITMIME DSN");
  EXPECT_TRUE(r.usable);
  EXPECT_TRUE(c->has("PIPELINING"));
  EXPECT_TRUE(c->has("SIZE")) << "extension keywords are case-insensitive";
  EXPECT_TRUE(c->has("8BITMIME"));
  EXPECT_TRUE(c->has("DSN"));
  EXPECT_FALSE(c->has("STARTTLS"));
  EXPECT_EQ(c->sizeLimit(), 1000000u);
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(r.tx[0].mail.code, 250);
  ASSERT_EQ(r.tx[0].rcpts.size(), 1u);
  EXPECT_EQ(r.tx[0].rcpts[0].code, 550);
  EXPECT_EQ(r.tx[0].rcpts[0].text, "550 5.1.1 the first line 5.1.1 of a long 5.1.1 rejection");
  EXPECT_EQ(r.tx[0].data.code, 554);
  peer.join();
  EXPECT_EQ(peer.lines().back(), "QUIT");
}

struct BadReply {
  const char* name;
  std::string greeting;
  const char* why;
};

TEST(SmtpClient, MalformedRepliesEndTheSession) {
  const BadReply cases[] = {
      {"not a reply", "hello there\r\n", "malformed reply"},
      {"two digits", "22 short\r\n", "malformed reply"},
      {"no separator", "220mx.test.example\r\n", "malformed reply"},
      {"codes differ in a multi-line reply", "220-one\r\n250 two\r\n", "reply codes differ"},
      {"code out of range", "600 what\r\n", "reply code 600"},
      {"too many lines", [] {
         std::string s;
         for (int i = 0; i < 300; ++i) s += "220-line\r\n";
         return s + "220 end\r\n";
       }(), "malformed reply"},
      {"an over-long line", "220 " + std::string(10000, 'x') + "\r\n", "lost connection"},
      {"closed in a multi-line reply", "220-one\r\n", "lost connection"},
  };
  for (const BadReply& c : cases) {
    FakePeer peer([&c](FakePeer& p) {
      p.send(c.greeting);
      if (std::string(c.name).rfind("closed", 0) == 0) p.closeNow();
      p.waitClose(5000);
    });
    Harness h;
    ClientRun r = h.run(peer.endpoint(), options());
    auto& cl = h.c;
    EXPECT_EQ(r.open.code, 0) << c.name << ": " << r.open.text;
    EXPECT_NE(r.open.text.find(c.why), std::string::npos) << c.name << ": got \"" << r.open.text << "\", want " << c.why;
    EXPECT_FALSE(r.usable) << c.name;
    EXPECT_EQ(cl->state(), SmtpClient::State::kClosed) << c.name;
    peer.join();
    EXPECT_TRUE(peer.lines().empty()) << c.name << ": the client must not go on after a bad reply";
  }
}

TEST(SmtpClient, PipeliningSendsMailRcptAndDataInOneWrite) {
  FakePeer peer([](FakePeer& p) {
    greetAndEhlo(p, {"PIPELINING", "8BITMIME"});
    std::string mail = p.readLine();
    // Everything up to DATA is already on the wire before any reply.
    std::string r1 = p.readLine(200), r2 = p.readLine(200), d = p.readLine(200);
    bool batched = !p.eof() && d == "DATA";
    p.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 <b@dest.example>: mailbox busy\r\n354 go ahead\r\n");
    p.data = p.readData();
    p.send(batched ? "250 2.0.0 queued, pipelined\r\n" : "250 2.0.0 queued, NOT pipelined\r\n");
    answerQuit(p);
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options(), {tx({"a@dest.example", "b@dest.example"})});
  ASSERT_EQ(r.tx.size(), 1u);
  const TransactionResult& t = r.tx[0];
  EXPECT_EQ(t.mail.code, 250);
  ASSERT_EQ(t.rcpts.size(), 2u);
  EXPECT_EQ(t.rcpts[0].code, 250);
  EXPECT_EQ(t.rcpts[1].code, 450);
  EXPECT_TRUE(t.rcpts[1].temporary());
  EXPECT_EQ(t.data.text, "250 2.0.0 queued, pipelined");
  peer.join();
  auto l = peer.lines();
  ASSERT_GE(l.size(), 5u);
  EXPECT_EQ(l[1], "MAIL FROM:<alice@sender.example>");
  EXPECT_EQ(l[2], "RCPT TO:<a@dest.example>");
  EXPECT_EQ(l[3], "RCPT TO:<b@dest.example>");
  EXPECT_EQ(peer.data, "Subject: t\r\n\r\n..dot first\r\nbody\r\n") << "dot-stuffed";
}

TEST(SmtpClient, WithoutPipeliningOneCommandPerReply) {
  FakePeer peer([](FakePeer& p) {
    greetAndEhlo(p, {"8BITMIME"});
    bool lockstep = true;
    (void)p.readLine();  // MAIL
    lockstep &= p.quietFor(300);
    p.send("250 2.1.0 Ok\r\n");
    (void)p.readLine();  // RCPT a
    lockstep &= p.quietFor(300);
    p.send("550 5.1.1 no such user\r\n");
    (void)p.readLine();  // RCPT b
    lockstep &= p.quietFor(300);
    p.send("250 2.1.5 Ok\r\n");
    (void)p.readLine();  // DATA
    p.send("354 go ahead\r\n");
    p.data = p.readData();
    p.send(lockstep ? "250 2.0.0 queued, lockstep\r\n" : "250 2.0.0 queued, NOT lockstep\r\n");
    // A second transaction whose every recipient is refused: RSET, no DATA.
    (void)p.readLine();  // MAIL
    p.send("250 2.1.0 Ok\r\n");
    (void)p.readLine();  // RCPT
    p.send("550 5.1.1 no\r\n");
    std::string next = p.readLine();
    p.send(next == "RSET" ? "250 2.0.0 Ok\r\n" : "500 5.5.1 unexpected\r\n");
    answerQuit(p);
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options(), {tx({"a@dest.example", "b@dest.example"}), tx({"c@dest.example"})});
  ASSERT_EQ(r.tx.size(), 2u);
  EXPECT_EQ(r.tx[0].mail.code, 250);
  EXPECT_EQ(r.tx[0].rcpts[0].code, 550);
  EXPECT_EQ(r.tx[0].rcpts[1].code, 250);
  EXPECT_EQ(r.tx[0].data.text, "250 2.0.0 queued, lockstep");
  EXPECT_EQ(r.tx[1].rcpts[0].code, 550);
  EXPECT_EQ(r.tx[1].data.code, 0) << "no DATA without an accepted recipient";
  peer.join();
  auto l = peer.lines();
  ASSERT_GE(l.size(), 2u);
  EXPECT_EQ(l[l.size() - 2], "RSET");
  EXPECT_EQ(l.back(), "QUIT");
}

TEST(SmtpClient, PipelinedServerThatAnswers354WithoutRecipients) {
  // RFC 2920 3.1: the client must not send content then; it ends the DATA at once.
  FakePeer peer([](FakePeer& p) {
    greetAndEhlo(p, {"PIPELINING"});
    for (int i = 0; i < 3; ++i) (void)p.readLine();
    p.send("250 2.1.0 Ok\r\n550 5.1.1 no\r\n354 go ahead anyway\r\n");
    p.data = p.readData();
    p.send("554 5.5.1 no valid recipients\r\n");
    answerQuit(p);
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options(), {tx({"a@dest.example"})});
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(r.tx[0].rcpts[0].code, 550);
  EXPECT_EQ(r.tx[0].data.code, 0);
  peer.join();
  EXPECT_EQ(peer.data, "") << "the message was sent although no recipient was accepted";
}

TEST(SmtpClient, Greeting421) {
  FakePeer peer([](FakePeer& p) {
    p.send("421 4.3.2 mx.test.example too busy, try later\r\n");
    answerQuit(p);
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options(), {tx({"a@dest.example"})});
  auto& c = h.c;
  EXPECT_EQ(r.open.code, 421);
  EXPECT_TRUE(r.open.temporary());
  EXPECT_EQ(r.open.text, "421 4.3.2 mx.test.example too busy, try later");
  EXPECT_FALSE(r.usable);
  EXPECT_TRUE(r.tx.empty());
  EXPECT_EQ(c->state(), SmtpClient::State::kClosed);
  peer.join();
  EXPECT_EQ(peer.lines(), std::vector<std::string>{"QUIT"}) << "no EHLO after a 421 greeting";
}

TEST(SmtpClient, EhloRefusedFallsBackToHelo) {
  FakePeer peer([](FakePeer& p) {
    p.send("220 old.test.example SMTP\r\n");
    (void)p.readLine();
    p.send("502 5.5.2 Command not recognized\r\n");
    std::string helo = p.readLine();
    p.send(helo == "HELO relay.sluice.example" ? "250 old.test.example\r\n" : "501 5.5.2 bad\r\n");
    answerQuit(p);
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options());
  auto& c = h.c;
  EXPECT_EQ(r.open.code, 250);
  EXPECT_TRUE(r.usable);
  EXPECT_FALSE(c->has("PIPELINING"));
}

TEST(SmtpClient, StartTlsRefusedUnderMayGoesOnInTheClear) {
  FakePeer peer([](FakePeer& p) {
    greetAndEhlo(p, {"STARTTLS", "PIPELINING"});
    std::string st = p.readLine();
    if (st != "STARTTLS") return;
    p.send("454 4.7.0 TLS not available due to local problem\r\n");
    std::string next = p.readLine();
    if (next.rfind("EHLO ", 0) == 0) {
      p.send("250-mx.test.example\r\n250 PIPELINING\r\n");
      next = p.readLine();
    }
    if (next.rfind("MAIL FROM:", 0) == 0) {
      (void)p.readLine();
      (void)p.readLine();
      p.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
      p.data = p.readData();
      p.send("250 2.0.0 queued in the clear\r\n");
      answerQuit(p);
    } else {
      p.waitClose();
    }
  });
  ClientOptions o = options();
  o.tls = TlsLevel::kMay;
  Harness h;
  ClientRun r = h.run(peer.endpoint(), o, {tx({"a@dest.example"})});
  auto& c = h.c;
  EXPECT_EQ(r.open.code, 250) << r.open.text;
  EXPECT_TRUE(r.usable) << "state " << SmtpClient::toString(c->state());
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(r.tx[0].data.text, "250 2.0.0 queued in the clear");
  EXPECT_EQ(c->tlsSummary(), "none");
}

TEST(SmtpClient, StartTlsRequiredButRefusedOrMissing) {
  for (bool offered : {true, false}) {
    FakePeer peer([offered](FakePeer& p) {
      greetAndEhlo(p, offered ? std::vector<std::string>{"STARTTLS"} : std::vector<std::string>{});
      if (offered && p.readLine() == "STARTTLS") p.send("454 4.7.0 TLS not available\r\n");
      p.waitClose();
    });
    ClientOptions o = options();
    o.tls = TlsLevel::kEncrypt;
    Harness h;
    ClientRun r = h.run(peer.endpoint(), o, {tx({"a@dest.example"})});
    EXPECT_EQ(r.open.code, 454) << r.open.text;
    EXPECT_NE(r.open.text.find("454 4.7.5 TLS is required"), std::string::npos) << r.open.text;
    EXPECT_FALSE(r.usable);
    EXPECT_TRUE(r.tx.empty()) << "nothing is sent in the clear under encrypt";
    peer.join();
    for (const auto& l : peer.lines()) EXPECT_NE(l.rfind("MAIL", 0), 0u);
  }
}

TEST(SmtpClient, GreetingTimeout) {
  FakePeer peer([](FakePeer& p) { p.waitClose(10000); });  // accepts, never speaks
  ClientOptions o = options();
  o.greetingTimeoutMs = 300;
  auto t0 = std::chrono::steady_clock::now();
  Harness h;
  ClientRun r = h.run(peer.endpoint(), o);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.open.code, 0);
  EXPECT_NE(r.open.text.find("timeout"), std::string::npos) << r.open.text;
  EXPECT_FALSE(r.usable);
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::seconds(3));
  peer.join();
  EXPECT_TRUE(peer.eof()) << "the client closed the connection";
}

TEST(SmtpClient, CommandTimeoutInATransaction) {
  FakePeer peer([](FakePeer& p) {
    greetAndEhlo(p, {});
    (void)p.readLine();  // MAIL, never answered
    p.waitClose(10000);
  });
  ClientOptions o = options();
  o.commandTimeoutMs = 300;
  auto t0 = std::chrono::steady_clock::now();
  Harness h;
  ClientRun r = h.run(peer.endpoint(), o, {tx({"a@dest.example"})});
  auto& c = h.c;
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(r.tx[0].mail.code, 0);
  EXPECT_NE(r.tx[0].mail.text.find("timeout"), std::string::npos) << r.tx[0].mail.text;
  EXPECT_EQ(r.tx[0].rcpts[0].code, 0);
  EXPECT_EQ(r.tx[0].data.code, 0);
  EXPECT_FALSE(c->usable());
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(SmtpClient, PeerClosesMidTransaction) {
  FakePeer peer([](FakePeer& p) {
    greetAndEhlo(p, {"PIPELINING"});
    for (int i = 0; i < 3; ++i) (void)p.readLine();
    p.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    (void)p.readLine();
    p.closeNow();
  });
  Harness h;
  ClientRun r = h.run(peer.endpoint(), options(), {tx({"a@dest.example"})});
  auto& c = h.c;
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(r.tx[0].rcpts[0].code, 250);
  EXPECT_EQ(r.tx[0].data.code, 0) << "no reply to the data: not delivered";
  EXPECT_FALSE(r.tx[0].data.ok());
  EXPECT_FALSE(c->usable());
}

TEST(SmtpClient, ConnectionRefused) {
  // A port bound for a moment and released: nothing listens on it.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  Harness h;
  ClientRun r = h.run({asio::ip::make_address("127.0.0.1"), ntohs(a.sin_port)}, options());
  EXPECT_EQ(r.open.code, 0);
  EXPECT_NE(r.open.text.find("connect to"), std::string::npos) << r.open.text;
  EXPECT_FALSE(r.usable);
}

}  // namespace
}  // namespace sluice::relayd
