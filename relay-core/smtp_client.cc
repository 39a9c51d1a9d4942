// smtp_client.cc - see smtp_client.h.
// GCC 12 miscompiles a class-type ?: inside a co_await expression: arguments of co_await calls
// are always built in locals first.
#include "smtp_client.h"

#include <array>
#include <cstring>

#include <openssl/ssl.h>

#include <asio/experimental/as_tuple.hpp>
#include <cctype>

#include "base/log.h"
#include "base/strings.h"

namespace sluice::relayd {
namespace {

using asio::awaitable;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace

const char* toString(TlsLevel l) {
  switch (l) {
    case TlsLevel::kNone: return "none";
    case TlsLevel::kMay: return "may";
    case TlsLevel::kEncrypt: return "encrypt";
    case TlsLevel::kVerify: return "verify";
  }
  return "?";
}

std::optional<TlsLevel> parseTlsLevel(std::string_view s) {
  if (s == "none") return TlsLevel::kNone;
  if (s == "may") return TlsLevel::kMay;
  if (s == "encrypt") return TlsLevel::kEncrypt;
  if (s == "verify") return TlsLevel::kVerify;
  return std::nullopt;
}

const char* SmtpClient::toString(State s) {
  switch (s) {
    case State::kIdle: return "idle";
    case State::kConnecting: return "connecting";
    case State::kGreeting: return "greeting";
    case State::kEhlo: return "ehlo";
    case State::kHelo: return "helo";
    case State::kStartTls: return "starttls";
    case State::kReady: return "ready";
    case State::kMail: return "mail";
    case State::kRcpt: return "rcpt";
    case State::kData: return "data";
    case State::kBody: return "body";
    case State::kQuit: return "quit";
    case State::kClosed: return "closed";
  }
  return "?";
}

std::string_view dataTerminator(std::string_view content) {
  bool open = !content.empty() && (content.size() < 2 || content.substr(content.size() - 2) != "\r\n");
  return open ? "\r\n.\r\n" : ".\r\n";
}

bool needsDotStuffing(std::string_view content) {
  if (content.empty()) return false;
  if (content[0] == '.') return true;
  // Dots are rarer than line ends in mail: look at each dot and the byte before it.
  const char* p = content.data();
  const char* end = p + content.size();
  while (const void* d = std::memchr(p, '.', static_cast<size_t>(end - p))) {
    const char* dot = static_cast<const char*>(d);
    if (dot[-1] == '\n') return true;
    p = dot + 1;
  }
  return false;
}

std::string dotStuff(const std::string& content) {
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 8);
  // Line by line (memchr for each LF), a dot doubled where a line starts with one.
  size_t pos = 0;
  while (pos < content.size()) {
    if (content[pos] == '.') out += '.';
    const void* nl = std::memchr(content.data() + pos, '\n', content.size() - pos);
    size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - content.data()) + 1 : content.size();
    out.append(content, pos, end - pos);
    pos = end;
  }
  out += dataTerminator(content);
  return out;
}

SmtpClient::SmtpClient(asio::io_context& io, ClientOptions options)
    : io_(io), options_(std::move(options)), sock_(io), deadline_(io) {}

SmtpClient::~SmtpClient() { close(); }

void SmtpClient::enterState(State s) {
  if (s == state_) return;
  if (logEnabled(LogLevel::kDebug)) logDebug("smtp client " + peer_ + ": " + toString(state_) + " -> " + toString(s));
  state_ = s;
}

void SmtpClient::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  sock_.close(ec);
  deadline_.cancel();
  state_ = State::kClosed;
}

void SmtpClient::arm(int64_t ms) {
  uint64_t gen = ++armed_;
  deadline_.expires_after(std::chrono::milliseconds(ms));
  std::weak_ptr<SmtpClient> weak = weak_from_this();
  deadline_.async_wait([weak, gen](const asio::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->armed_ != gen) return;
    self->timedOut_ = true;
    asio::error_code ignore;
    self->sock_.cancel(ignore);
    self->sock_.close(ignore);
  });
}

void SmtpClient::disarm() {
  ++armed_;
  deadline_.cancel();
}

SmtpReply SmtpClient::fail(std::string why, int code) {
  SmtpReply r;
  r.code = code;
  r.text = std::move(why);
  close();
  return r;
}

awaitable<bool> SmtpClient::writeAll(std::string_view a, std::string_view b) {
  if (closed_) co_return false;
  asio::error_code ec;
  size_t n = 0;
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, bufs, kTuple);
  else std::tie(ec, n) = co_await asio::async_write(sock_, bufs, kTuple);
  co_return !ec && n == a.size() + b.size();
}

awaitable<bool> SmtpClient::writeAll(std::string_view data) {
  if (closed_) co_return false;
  asio::error_code ec;
  size_t n = 0;
  if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(data.data(), data.size()), kTuple);
  else std::tie(ec, n) = co_await asio::async_write(sock_, asio::buffer(data.data(), data.size()), kTuple);
  co_return !ec && n == data.size();
}

awaitable<bool> SmtpClient::readLine(std::string* line) {
  for (;;) {
    size_t nl = in_.find('\n');
    if (nl != std::string::npos) {
      size_t end = (nl > 0 && in_[nl - 1] == '\r') ? nl - 1 : nl;
      if (end > kMaxReplyLine) co_return false;
      line->assign(in_, 0, end);
      in_.erase(0, nl + 1);
      co_return true;
    }
    if (in_.size() > kMaxReplyLine || closed_) co_return false;
    char buf[8192];
    asio::error_code ec;
    size_t n = 0;
    if (tls_) std::tie(ec, n) = co_await tls_->async_read_some(asio::buffer(buf), kTuple);
    else std::tie(ec, n) = co_await sock_.async_read_some(asio::buffer(buf), kTuple);
    if (ec || n == 0) co_return false;
    in_.append(buf, n);
  }
}

awaitable<SmtpReply> SmtpClient::readReply(int64_t timeoutMs) {
  arm(timeoutMs);
  lastLines_.clear();
  SmtpReply r;
  for (;;) {
    std::string line;
    if (!co_await readLine(&line)) {
      disarm();
      std::string why = timedOut_ ? "timeout waiting for a reply from " + peer_
                                  : "lost connection with " + peer_ + (lastLines_.empty() ? "" : " in a reply");
      co_return fail(why);
    }
    bool shaped = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                  std::isdigit(static_cast<unsigned char>(line[1])) && std::isdigit(static_cast<unsigned char>(line[2])) &&
                  (line.size() == 3 || line[3] == ' ' || line[3] == '-');
    if (!shaped || lastLines_.size() >= kMaxReplyLines) {
      disarm();
      co_return fail("protocol error: malformed reply from " + peer_ + ": " + line.substr(0, 80));
    }
    int code = std::stoi(line.substr(0, 3));
    if (!lastLines_.empty() && code != r.code) {
      disarm();
      co_return fail("protocol error: reply codes differ in a multi-line reply from " + peer_);
    }
    r.code = code;
    std::string text = line.size() > 4 ? line.substr(4) : "";
    r.text += (lastLines_.empty() ? line.substr(0, 3) + " " : std::string(" ")) + text;
    lastLines_.push_back(text);
    if (line.size() == 3 || line[3] == ' ') break;
  }
  disarm();
  if (r.code < 200 || r.code > 599) co_return fail("protocol error: reply code " + std::to_string(r.code) + " from " + peer_);
  co_return r;
}

awaitable<SmtpReply> SmtpClient::command(std::string line, int64_t timeoutMs) {
  line += "\r\n";
  arm(options_.commandTimeoutMs);
  bool ok = co_await writeAll(line);
  disarm();
  if (!ok) {
    std::string why = timedOut_ ? "timeout sending to " + peer_ : "lost connection with " + peer_;
    co_return fail(why);
  }
  co_return co_await readReply(timeoutMs);
}

void SmtpClient::parseExtensions(const std::vector<std::string>& lines) {
  extensions_.clear();
  sizeLimit_ = 0;
  for (size_t i = 1; i < lines.size(); ++i) {  // the first line is the greeting text
    std::string kw = lines[i].substr(0, lines[i].find(' '));
    for (char& c : kw) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    extensions_.insert(kw);
    if (kw == "SIZE" && lines[i].size() > 5) sizeLimit_ = parseUint(lines[i].substr(5)).value_or(0);
  }
}

bool SmtpClient::has(std::string_view extension) const { return extensions_.count(std::string(extension)) != 0; }

awaitable<SmtpReply> SmtpClient::hello() {
  enterState(State::kEhlo);
  std::string ehlo = "EHLO " + options_.heloName;
  SmtpReply r = co_await command(ehlo, options_.commandTimeoutMs);
  if (r.code == 250) {
    parseExtensions(lastLines_);
    co_return r;
  }
  if (r.code == 0 || r.code == 421) co_return r;
  enterState(State::kHelo);  // RFC 5321 3.2: a server that does not know EHLO
  extensions_.clear();
  std::string helo = "HELO " + options_.heloName;
  co_return co_await command(helo, options_.commandTimeoutMs);
}

awaitable<SmtpReply> SmtpClient::startTls() {
  enterState(State::kStartTls);
  SmtpReply r = co_await command("STARTTLS", options_.commandTimeoutMs);
  if (r.code != 220) {
    tlsFailed_ = true;
    if (options_.tls == TlsLevel::kMay && r.code != 0) co_return r;  // caller goes on in the clear
    std::string why = "454 4.7.5 TLS is required, but host " + peer_ + " refused to start TLS: " + r.text;
    co_return fail(why, 454);
  }
  // Anything the server sent after its 220 in the clear would be injected into the TLS session.
  in_.clear();
  bool verify = options_.tls == TlsLevel::kVerify;
  asio::ssl::context* ctx = verify ? options_.tlsVerify : options_.tlsNoVerify;
  if (ctx == nullptr) co_return fail("454 4.7.5 no TLS context for " + peer_, 454);
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(sock_, *ctx);
  SSL* ssl = tls_->native_handle();
  if (!options_.peerName.empty()) SSL_set_tlsext_host_name(ssl, options_.peerName.c_str());
  if (verify) {
    tls_->set_verify_mode(asio::ssl::verify_peer);
    SSL_set1_host(ssl, options_.peerName.c_str());
  } else {
    tls_->set_verify_mode(asio::ssl::verify_none);
  }
  arm(options_.commandTimeoutMs);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kTuple);
  disarm();
  if (ec) {
    tlsFailed_ = true;
    std::string detail = ec.message();
    if (verify) {
      long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) detail = std::string("certificate verification failed: ") + X509_verify_cert_error_string(v);
    }
    tls_.reset();
    std::string why = "454 4.7.5 TLS handshake with " + peer_ + " failed: " + detail;
    co_return fail(why, options_.tls == TlsLevel::kMay ? 0 : 454);
  }
  tlsSummary_ = std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl) + (verify ? " (verified)" : " (unverified)");
  co_return co_await hello();
}

awaitable<SmtpReply> SmtpClient::open(asio::ip::tcp::endpoint peer) {
  peer_ = (options_.peerName.empty() ? std::string() : options_.peerName) + "[" + peer.address().to_string() + "]:" +
          std::to_string(peer.port());
  enterState(State::kConnecting);
  arm(options_.connectTimeoutMs);
  auto [ec] = co_await sock_.async_connect(peer, kTuple);
  disarm();
  if (ec) {
    std::string why = timedOut_ ? "connect to " + peer_ + ": timed out" : "connect to " + peer_ + ": " + ec.message();
    co_return fail(why);
  }
  asio::error_code nd;
  sock_.set_option(asio::ip::tcp::no_delay(true), nd);
  enterState(State::kGreeting);
  SmtpReply greet = co_await readReply(options_.greetingTimeoutMs);
  if (greet.code != 220) {
    if (greet.code != 0) {
      std::string q = "QUIT";
      (void)co_await command(q, 10000);
      close();
    }
    co_return greet;
  }
  SmtpReply r = co_await hello();
  if (r.code != 250) co_return r;
  bool wantTls = options_.tls != TlsLevel::kNone;
  bool needTls = options_.tls == TlsLevel::kEncrypt || options_.tls == TlsLevel::kVerify;
  if (wantTls && has("STARTTLS")) {
    r = co_await startTls();
    if (r.code != 250) {
      if (options_.tls == TlsLevel::kMay && r.code != 0 && !closed_) {
        // STARTTLS refused with a reply: the session goes on in the clear.
        r = co_await hello();
        if (r.code == 250) enterState(State::kReady);
        co_return r;
      }
      co_return r;
    }
  } else if (needTls) {
    std::string why = "454 4.7.5 TLS is required, but was not offered by host " + peer_;
    co_return fail(why, 454);
  }
  enterState(State::kReady);
  co_return r;
}

awaitable<SmtpReply> SmtpClient::sendBody(const std::string& content) {
  enterState(State::kBody);
  arm(options_.dataTimeoutMs);
  bool ok;
  if (needsDotStuffing(content)) {
    ok = co_await writeAll(dotStuff(content));
  } else {
    // Nothing to double: the content goes out as it is, followed by the terminator (and the
    // CRLF the last line lacks, if any) in the same write.
    ok = co_await writeAll(content, dataTerminator(content));
  }
  disarm();
  if (!ok) {
    std::string why = timedOut_ ? "timeout sending message data to " + peer_ : "lost connection with " + peer_ + " while sending message data";
    co_return fail(why);
  }
  co_return co_await readReply(options_.dataTimeoutMs);
}

awaitable<TransactionResult> SmtpClient::send(const Transaction& t) {
  TransactionResult res;
  res.rcpts.resize(t.rcpts.size());
  std::string mail = "MAIL FROM:<" + t.mailFrom + ">";
  for (const auto& p : t.mailParams) mail += " " + p;
  std::vector<std::string> rcptLines;
  for (const auto& rc : t.rcpts) {
    std::string line = "RCPT TO:<" + rc.address + ">";
    for (const auto& p : rc.params) line += " " + p;
    rcptLines.push_back(std::move(line));
  }
  bool pipelining = has("PIPELINING");
  enterState(State::kMail);
  if (pipelining) {
    std::string batch = mail + "\r\n";
    for (const auto& l : rcptLines) batch += l + "\r\n";
    batch += "DATA\r\n";
    arm(options_.commandTimeoutMs);
    bool ok = co_await writeAll(batch);
    disarm();
    if (!ok) {
      std::string why = "lost connection with " + peer_ + " while sending MAIL FROM";
      res.mail = fail(why);
      co_return res;
    }
    res.mail = co_await readReply(options_.commandTimeoutMs);
    enterState(State::kRcpt);
    for (size_t i = 0; i < rcptLines.size() && !closed_; ++i) res.rcpts[i] = co_await readReply(options_.commandTimeoutMs);
    enterState(State::kData);
    if (!closed_) res.data = co_await readReply(options_.commandTimeoutMs);
  } else {
    res.mail = co_await command(mail, options_.commandTimeoutMs);
    if (res.mail.ok()) {
      enterState(State::kRcpt);
      for (size_t i = 0; i < rcptLines.size() && !closed_; ++i) {
        res.rcpts[i] = co_await command(rcptLines[i], options_.commandTimeoutMs);
      }
    }
    bool anyRcpt = false;
    for (const auto& r : res.rcpts) anyRcpt |= r.ok();
    if (!anyRcpt) {
      if (!closed_) {
        enterState(State::kReady);
        (void)co_await reset();
      }
      co_return res;
    }
    enterState(State::kData);
    std::string data = "DATA";
    res.data = co_await command(data, options_.commandTimeoutMs);
  }
  bool anyRcpt = false;
  for (const auto& r : res.rcpts) anyRcpt |= r.ok();
  if (res.data.code == 354) {
    if (!res.mail.ok() || !anyRcpt) {
      // A server that answers 354 although no recipient was accepted (RFC 2920 3.1): send an
      // empty message's end and forget whatever it says.
      (void)co_await sendBody(std::string());
      res.data = SmtpReply{};
      if (!closed_) enterState(State::kReady);
      co_return res;
    }
    res.data = co_await sendBody(*t.content);
  }
  if (!closed_) enterState(State::kReady);
  co_return res;
}

awaitable<bool> SmtpClient::reset() {
  if (closed_) co_return false;
  SmtpReply r = co_await command("RSET", options_.commandTimeoutMs);
  if (r.code != 250) {
    close();
    co_return false;
  }
  enterState(State::kReady);
  co_return true;
}

awaitable<void> SmtpClient::quit() {
  if (!closed_) {
    enterState(State::kQuit);
    (void)co_await command("QUIT", 10000);
  }
  close();
}

}  // namespace sluice::relayd
