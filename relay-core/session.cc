// session.cc - see session.h.
#include "session.h"

#include <cstring>

#include <openssl/evp.h>

#include <chrono>
#include <ctime>

#include "base/log.h"
#include "base/strings.h"
#include "dkim/dkim_key.h"
#include "dkim/message_headers.h"
#include "dkim/signer.h"
#include "identity/identity_map.h"
#include "smtp/smtp_parse.h"

namespace sluice::relayd {
namespace {

using asio::awaitable;
using asio::use_awaitable;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr int kMaxErrors = 20;
constexpr size_t kReadChunk = 64 * 1024;

std::string rfc5322Date() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm);
  return buf;
}

// End of the header block: offset of the empty line's CRLF (or the whole size).
size_t headerEnd(const std::string& m) {
  if (m.rfind("\r\n", 0) == 0) return 0;
  size_t p = m.find("\r\n\r\n");
  return p == std::string::npos ? m.size() : p + 2;
}

}  // namespace

std::string stripHeader(std::string* message, const std::string& name) {
  std::string& m = *message;
  size_t end = headerEnd(m);
  std::string first;
  bool found = false;
  size_t pos = 0;
  while (pos < end) {
    size_t eol = m.find("\r\n", pos);
    if (eol == std::string::npos || eol >= end) eol = end;
    size_t next = eol + 2;
    while (next < end && (m[next] == ' ' || m[next] == '\t')) {  // continuation lines
      size_t e2 = m.find("\r\n", next);
      next = (e2 == std::string::npos || e2 >= end) ? end : e2 + 2;
    }
    size_t colon = m.find(':', pos);
    bool match = colon != std::string::npos && colon < eol && iequals(trim(std::string_view(m).substr(pos, colon - pos)), name);
    if (match) {
      if (!found) {
        std::string v = m.substr(colon + 1, std::min(next, end) - colon - 1);
        std::string unfolded;
        for (char c : v) {
          if (c != '\r' && c != '\n') unfolded += c;
        }
        first = std::string(trim(unfolded));
        found = true;
      }
      size_t len = std::min(next, m.size()) - pos;
      m.erase(pos, len);
      end -= len;
      continue;
    }
    pos = next;
  }
  return first;
}

std::string headerValue(const std::string& message, const std::string& name) {
  std::string copy = message.substr(0, headerEnd(message));
  return stripHeader(&copy, name);
}

Session::Session(Relayd& d, asio::ip::tcp::socket sock, ListenerKind kind)
    : d_(d),
      alive_(d.aliveToken()),
      cfg_(d.cfgPtr()),
      tlsCtx_(d.tls()),
      policyClient_(d.policy()),
      sock_(std::move(sock)),
      kind_(kind),
      deadline_(sock_.get_executor()) {
  asio::error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  if (!ec) {
    auto a = ep.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    client_ = a.to_string();
    clientIp_ = parseIp(client_);
  }
  sock_.set_option(asio::ip::tcp::no_delay(true), ec);
  deadline_.expires_at(asio::steady_timer::time_point::max());
}

Session::~Session() {
  // After a forced stop the io_context outlives the daemon and destroys the sessions still
  // suspended in it: then there is nobody left to give the connection slot back to.
  if (admitted_ && !alive_.expired()) d_.release(client_);
}

void Session::start() {
  auto self = shared_from_this();
  asio::co_spawn(sock_.get_executor(), [self]() -> awaitable<void> { co_await self->run(); }, asio::detached);
  asio::co_spawn(sock_.get_executor(), [self]() -> awaitable<void> { co_await self->watchdog(); }, asio::detached);
}

void Session::arm(int64_t ms) { deadline_.expires_after(std::chrono::milliseconds(ms)); }

awaitable<void> Session::watchdog() {
  auto self = shared_from_this();
  while (!closed_) {
    auto [ec] = co_await deadline_.async_wait(kTuple);
    (void)ec;
    if (closed_) break;
    if (deadline_.expiry() <= asio::steady_timer::clock_type::now()) {
      timedOut_ = true;
      asio::error_code ignored;
      sock_.cancel(ignored);
      deadline_.expires_at(asio::steady_timer::time_point::max());
    }
  }
}

awaitable<bool> Session::fill() {
  char buf[kReadChunk];
  asio::error_code ec;
  size_t n = 0;
  if (tls_) std::tie(ec, n) = co_await tls_->async_read_some(asio::buffer(buf), kTuple);
  else std::tie(ec, n) = co_await sock_.async_read_some(asio::buffer(buf), kTuple);
  if (n > 0) in_.append(buf, n);
  co_return !ec || n > 0;
}

awaitable<Session::ReadStatus> Session::readLine(std::string* line, size_t maxLen) {
  size_t scanned = 0;
  while (true) {
    size_t nl = in_.find('\n', scanned);
    if (nl != std::string::npos) {
      if (nl + 1 > maxLen) {  // too long: drop it whole
        in_.erase(0, nl + 1);
        co_return ReadStatus::kTooLong;
      }
      size_t end = nl > 0 && in_[nl - 1] == '\r' ? nl - 1 : nl;
      line->assign(in_, 0, end);
      in_.erase(0, nl + 1);
      co_return ReadStatus::kOk;
    }
    scanned = in_.size();
    if (in_.size() > maxLen) {  // keep discarding until the end of this line
      in_.clear();
      scanned = 0;
      while (true) {
        if (!co_await fill()) co_return timedOut_ ? ReadStatus::kTimeout : ReadStatus::kClosed;
        size_t p = in_.find('\n');
        if (p != std::string::npos) {
          in_.erase(0, p + 1);
          co_return ReadStatus::kTooLong;
        }
        in_.clear();
      }
    }
    if (!co_await fill()) co_return timedOut_ ? ReadStatus::kTimeout : ReadStatus::kClosed;
  }
}

awaitable<void> Session::send(std::string text) {
  asio::error_code ec;
  size_t n = 0;
  if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(text), kTuple);
  else std::tie(ec, n) = co_await asio::async_write(sock_, asio::buffer(text), kTuple);
  (void)n;
  if (ec) closed_ = true;
}

awaitable<bool> Session::handshake() {
  if (!tlsCtx_) co_return false;
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(sock_, *tlsCtx_);
  arm(cfg_->relayd.commandTimeoutMs);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, kTuple);
  if (ec) {
    ++d_.stats().tlsFailures;
    logInfo("TLS handshake with " + client_ + " failed: " + ec.message());
    co_return false;
  }
  ++d_.stats().tlsHandshakes;
  co_return true;
}

void Session::resetTransaction() {
  if (state_ == State::kMail || state_ == State::kRcpt) state_ = State::kGreeted;
  msg_ = queue::NewMessage();
  bdat_ = tooBig_ = bareLineEnd_ = sizeDeclaredTooBig_ = lineTooLong_ = false;
  lineLen_ = 0;
  data_.clear();
  acceptedRcpts_ = 0;
  instance_.clear();
}

awaitable<void> Session::run() {
  auto self = shared_from_this();
  const auto& rc = cfg_->relayd;
  std::string why;
  if (!d_.admit(client_, &why)) {
    ++d_.stats().rejectedConnections;
    if (kind_ == ListenerKind::kSmtps && !co_await handshake()) why.clear();
    if (!why.empty()) co_await send(why);
    closed_ = true;
    deadline_.cancel();
    co_return;
  }
  admitted_ = true;
  ++d_.stats().connections;
  if (kind_ == ListenerKind::kSmtps && !co_await handshake()) {
    closed_ = true;
    deadline_.cancel();
    co_return;
  }
  logInfo("connect from " + client_ + " on " + toString(kind_));
  co_await send(smtp::reply(220, "", rc.hostname + " ESMTP sluice-relayd"));
  while (!closed_) {
    // SIGTERM: a transaction in flight (MAIL given) is served to its end; between transactions
    // the session is told to come back later.
    if (d_.stopping() && state_ != State::kMail && state_ != State::kRcpt) {
      co_await send(smtp::reply(421, "4.3.2", rc.hostname + " Service shutting down, try again later"));
      break;
    }
    std::string line;
    arm(rc.commandTimeoutMs);
    // Read up to the MAIL/RCPT limit; every other command is held to 512 octets below.
    ReadStatus st = co_await readLine(&line, smtp::kMaxMailRcptLine);
    if (st == ReadStatus::kClosed) break;
    if (st == ReadStatus::kTimeout) {
      ++d_.stats().timeouts;
      co_await send(smtp::reply(421, "4.4.2", rc.hostname + " Error: timeout exceeded"));
      break;
    }
    if (st == ReadStatus::kTooLong) {
      co_await send(smtp::reply(500, "5.5.2", "Error: line too long"));
      if (++errors_ > kMaxErrors) break;
      continue;
    }
    auto cmd = smtp::parseCommand(line);
    bool mailOrRcpt = cmd.verb == smtp::Verb::kMail || cmd.verb == smtp::Verb::kRcpt;
    if (!mailOrRcpt && line.size() + 2 > smtp::kMaxCommandLine) {
      co_await send(smtp::reply(500, "5.5.2", "Error: line too long"));
      if (++errors_ > kMaxErrors) break;
      continue;
    }
    bool keep = true;
    switch (cmd.verb) {
      case smtp::Verb::kEhlo: keep = co_await onEhlo(cmd.arg, true); break;
      case smtp::Verb::kHelo: keep = co_await onEhlo(cmd.arg, false); break;
      case smtp::Verb::kStartTls: keep = co_await onStartTls(cmd.arg); break;
      case smtp::Verb::kAuth: keep = co_await onAuth(cmd.arg); break;
      case smtp::Verb::kMail: keep = co_await onMail(cmd.arg); break;
      case smtp::Verb::kRcpt: keep = co_await onRcpt(cmd.arg); break;
      case smtp::Verb::kData: keep = co_await onData(); break;
      case smtp::Verb::kBdat: keep = co_await onBdat(cmd.arg); break;
      case smtp::Verb::kRset:
        resetTransaction();
        co_await send(smtp::reply(250, "2.0.0", "Ok"));
        break;
      case smtp::Verb::kNoop: co_await send(smtp::reply(250, "2.0.0", "Ok")); break;
      case smtp::Verb::kVrfy: co_await send(smtp::reply(252, "2.5.0", "Cannot VRFY user; try RCPT to attempt delivery")); break;
      case smtp::Verb::kExpn: co_await send(smtp::reply(502, "5.5.1", "EXPN not available")); break;
      case smtp::Verb::kHelp: co_await send(smtp::reply(214, "2.0.0", "See RFC 5321")); break;
      case smtp::Verb::kQuit:
        co_await send(smtp::reply(221, "2.0.0", "Bye"));
        keep = false;
        break;
      case smtp::Verb::kUnknown:
        co_await send(smtp::reply(500, "5.5.2", "Error: command not recognized"));
        ++errors_;
        break;
    }
    if (!keep) break;
    if (errors_ > kMaxErrors) {
      co_await send(smtp::reply(421, "4.7.0", rc.hostname + " Error: too many errors"));
      break;
    }
  }
  closed_ = true;
  deadline_.cancel();
  asio::error_code ec;
  if (tls_) {
    tls_->next_layer().shutdown(asio::socket_base::shutdown_both, ec);
  }
  sock_.shutdown(asio::socket_base::shutdown_both, ec);
  sock_.close(ec);
  logInfo("disconnect from " + client_ + (user_.empty() ? "" : " user=" + user_));
}

awaitable<bool> Session::onEhlo(const std::string& arg, bool ehlo) {
  if (arg.empty()) {
    std::string text1 = smtp::reply(501, "5.5.4", ehlo ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");  // no ?: inside co_await (GCC 12 coroutine bugs)
    co_await send(text1);
    ++errors_;
    co_return true;
  }
  resetTransaction();
  helo_ = arg.substr(0, 255);
  esmtp_ = ehlo;
  state_ = State::kGreeted;
  const auto& rc = cfg_->relayd;
  if (!ehlo) {
    co_await send(smtp::reply(250, "", rc.hostname));
    co_return true;
  }
  std::vector<std::string> lines = {rc.hostname, "PIPELINING", "SIZE " + std::to_string(rc.maxMessageSize), "8BITMIME",
                                    "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"};
  if (kind_ == ListenerKind::kSubmission && !tls_ && tlsCtx_) lines.push_back("STARTTLS");
  if (kind_ != ListenerKind::kRelay && tls_) lines.push_back("AUTH PLAIN LOGIN");
  co_await send(smtp::replyLines(250, lines));
  co_return true;
}

awaitable<bool> Session::onStartTls(const std::string& arg) {
  if (kind_ != ListenerKind::kSubmission || tls_ || !tlsCtx_) {
    std::string text2 = smtp::reply(502, "5.5.1", tls_ ? "Error: TLS already active" : "Error: command not implemented");  // no ?: inside co_await (GCC 12 coroutine bugs)
    co_await send(text2);
    co_return true;
  }
  if (!arg.empty()) {
    co_await send(smtp::reply(501, "5.5.4", "Syntax: STARTTLS"));
    co_return true;
  }
  if (!in_.empty()) {  // pipelined in the clear: never carried into the TLS session
    logWarning("discarding " + std::to_string(in_.size()) + " bytes pipelined after STARTTLS by " + client_);
    in_.clear();
  }
  co_await send(smtp::reply(220, "2.0.0", "Ready to start TLS"));
  if (!co_await handshake()) co_return false;
  in_.clear();
  resetTransaction();
  state_ = State::kConnected;  // RFC 3207 4.2: forget everything, EHLO again
  helo_.clear();
  user_.clear();
  co_return true;
}

awaitable<bool> Session::onAuth(const std::string& arg) {
  if (kind_ == ListenerKind::kRelay) {
    co_await send(smtp::reply(502, "5.5.1", "Error: authentication not enabled on this port"));
    co_return true;
  }
  if (!tls_) {
    co_await send(smtp::reply(538, "5.7.11", "Encryption required for requested authentication mechanism"));
    co_return true;
  }
  if (state_ == State::kConnected || !esmtp_) {
    co_await send(smtp::reply(503, "5.5.1", "Error: send EHLO first"));
    co_return true;
  }
  if (!user_.empty()) {
    co_await send(smtp::reply(503, "5.5.1", "Error: already authenticated"));
    co_return true;
  }
  if (state_ == State::kMail || state_ == State::kRcpt) {
    co_await send(smtp::reply(503, "5.5.1", "Error: MAIL transaction in progress"));
    co_return true;
  }
  if (!d_.authAllowed(client_)) {
    co_await send(smtp::reply(421, "4.7.0", cfg_->relayd.hostname + " Too many failed authentications, try again later"));
    co_return false;
  }
  size_t sp = arg.find(' ');
  std::string mech = toLower(arg.substr(0, sp));
  std::string initial = sp == std::string::npos ? "" : std::string(trim(arg.substr(sp + 1)));
  auto ask = [&](const std::string& prompt, std::string* answer) -> awaitable<bool> {
    co_await send("334 " + prompt + "\r\n");
    arm(cfg_->relayd.commandTimeoutMs);
    ReadStatus st = co_await readLine(answer, 12288);
    co_return st == ReadStatus::kOk;
  };
  std::string user, secret;
  if (mech == "plain") {
    std::string resp = initial;
    if (resp.empty() && !co_await ask("", &resp)) co_return false;
    if (resp == "*") {
      co_await send(smtp::reply(501, "5.7.0", "Authentication aborted"));
      co_return true;
    }
    auto raw = resp == "=" ? std::optional<std::string>("") : dkim::base64Decode(resp);
    size_t z1 = raw ? raw->find('\0') : std::string::npos;
    size_t z2 = z1 == std::string::npos ? z1 : raw->find('\0', z1 + 1);
    if (z2 == std::string::npos) {
      co_await send(smtp::reply(501, "5.5.2", "Cannot decode AUTH PLAIN response"));
      co_return true;
    }
    std::string authz = raw->substr(0, z1);
    user = raw->substr(z1 + 1, z2 - z1 - 1);
    secret = raw->substr(z2 + 1);
    if (!authz.empty() && authz != user) user.clear();  // no proxy authorization
  } else if (mech == "login") {
    std::string u = initial, p;
    if (u.empty() && !co_await ask("VXNlcm5hbWU6", &u)) co_return false;
    if (!co_await ask("UGFzc3dvcmQ6", &p)) co_return false;
    auto du = dkim::base64Decode(u), dp = dkim::base64Decode(p);
    if (u == "*" || p == "*" || !du || !dp) {
      co_await send(smtp::reply(501, "5.5.2", "Authentication aborted or undecodable"));
      co_return true;
    }
    user = *du;
    secret = *dp;
  } else {
    co_await send(smtp::reply(504, "5.5.4", "Unrecognized authentication type"));
    co_return true;
  }
  if (!user.empty() && d_.authenticate(client_, user, secret)) {
    user_ = user;
    ++d_.stats().authOk;
    logInfo("client=" + client_ + ", sasl_method=" + mech + ", sasl_username=" + user);
    co_await send(smtp::reply(235, "2.7.0", "Authentication successful"));
  } else {
    ++d_.stats().authFailed;
    logWarning("client=" + client_ + ": SASL " + mech + " authentication failed" + (user.empty() ? "" : " for " + user));
    co_await send(smtp::reply(535, "5.7.8", "Error: authentication failed"));
  }
  co_return true;
}

awaitable<std::string> Session::policyAction(const std::string& state, const std::string& rcpt) {
  if (!policyClient_) co_return std::string("DUNNO");
  if (!policy_) policy_ = std::make_shared<PolicyClient::Session>(*policyClient_);
  if (instance_.empty()) instance_ = "relayd." + queue::Queue::newId();
  PolicyClient::Attributes a = {
      {"protocol_state", state}, {"protocol_name", "ESMTPA"}, {"client_address", client_},
      {"client_name", "unknown"}, {"helo_name", helo_}, {"sender", msg_.sender}, {"recipient", rcpt},
      {"recipient_count", std::to_string(acceptedRcpts_)}, {"instance", instance_}, {"sasl_method", "PLAIN"},
      {"sasl_username", user_}, {"size", std::to_string(state == "END-OF-MESSAGE" ? data_.size() : 0)},
      {"policy_context", "sluice-relayd"}};
  // The blocking question runs on the pool; its answer wakes a timer this coroutine waits on.
  auto ex = sock_.get_executor();
  auto answer = std::make_shared<std::optional<std::string>>();
  auto wake = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  asio::post(d_.policyPool(), [ps = policy_, client = policyClient_, a = std::move(a), answer, wake, ex]() {
    std::string action = ps->ask(a);
    asio::post(ex, [answer, wake, action = std::move(action)]() {
      *answer = action;
      wake->cancel();
    });
  });
  while (!answer->has_value()) (void)co_await wake->async_wait(kTuple);
  std::string action = std::move(answer->value());
  co_return action;
}

namespace {
// A Postfix action as an SMTP reply, or "" when it lets the mail through.
std::string replyForAction(const std::string& action) {
  std::string_view rest = trim(action);
  size_t sp = rest.find(' ');
  std::string word = toLower(rest.substr(0, sp));
  std::string text = sp == std::string_view::npos ? "" : std::string(trim(rest.substr(sp + 1)));
  auto withCode = [&](int code, const char* defEnh, const char* defText) {
    std::string enh = defEnh;
    std::string t = text;
    size_t s2 = t.find(' ');
    std::string first = t.substr(0, s2);
    if (first.size() >= 5 && first[1] == '.' && first[0] == std::to_string(code)[0]) {
      enh = first;
      t = s2 == std::string::npos ? "" : t.substr(s2 + 1);
    }
    return smtp::reply(code, enh, t.empty() ? defText : t);
  };
  if (word == "ok" || word == "dunno" || word == "defer_if_reject" || word == "warn" || word == "prepend" ||
      word == "hold") {
    return "";
  }
  if (word == "reject") return withCode(550, "5.7.1", "Access denied");
  if (word == "defer" || word == "defer_if_permit") return withCode(450, "4.7.1", "Service unavailable");
  if (word.size() == 3 && (word[0] == '4' || word[0] == '5') && std::isdigit(static_cast<unsigned char>(word[1]))) {
    return withCode(std::stoi(word), word[0] == '4' ? "4.7.1" : "5.7.1", word[0] == '4' ? "Service unavailable" : "Access denied");
  }
  return smtp::reply(451, "4.3.5", "Server configuration error");
}
}  // namespace

awaitable<bool> Session::onMail(const std::string& arg) {
  const auto& rc = cfg_->relayd;
  if (state_ == State::kConnected) {
    co_await send(smtp::reply(503, "5.5.1", "Error: send HELO/EHLO first"));
    co_return true;
  }
  if (state_ == State::kMail || state_ == State::kRcpt) {
    co_await send(smtp::reply(503, "5.5.1", "Error: nested MAIL command"));
    co_return true;
  }
  if (kind_ != ListenerKind::kRelay && user_.empty()) {
    co_await send(smtp::reply(530, "5.7.0", "Authentication required"));
    co_return true;
  }
  bool utf8 = arg.find("SMTPUTF8") != std::string::npos || arg.find("smtputf8") != std::string::npos;
  auto p = smtp::parseMailArg(arg, esmtp_ && utf8);
  if (!p) {
    co_await send(smtp::reply(501, "5.1.7", "Bad sender address syntax: " + p.message()));
    ++errors_;
    co_return true;
  }
  resetTransaction();
  for (const auto& prm : p->params) {
    if (!esmtp_) {
      co_await send(smtp::reply(555, "5.5.4", "MAIL parameters need EHLO"));
      co_return true;
    }
    if (prm.key == "SIZE") {
      auto n = parseUint(prm.value);
      if (!n) {
        co_await send(smtp::reply(501, "5.5.4", "Bad SIZE parameter"));
        co_return true;
      }
      if (*n > rc.maxMessageSize) {
        co_await send(smtp::reply(552, "5.3.4", "Message size exceeds fixed limit"));
        co_return true;
      }
    } else if (prm.key == "BODY") {
      std::string v = prm.value;
      for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (v != "7BIT" && v != "8BITMIME") {
        co_await send(smtp::reply(555, "5.5.4", "Unsupported BODY parameter"));
        co_return true;
      }
      msg_.body = v;
    } else if (prm.key == "SMTPUTF8") {
      if (prm.hasValue) {
        co_await send(smtp::reply(555, "5.5.4", "SMTPUTF8 takes no value"));
        co_return true;
      }
      msg_.smtputf8 = true;
    } else if (prm.key == "RET") {
      std::string v = prm.value;
      for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (v != "FULL" && v != "HDRS") {
        co_await send(smtp::reply(501, "5.5.4", "Bad RET parameter"));
        co_return true;
      }
      msg_.ret = v;
    } else if (prm.key == "ENVID") {
      auto v = smtp::decodeXtext(prm.value);
      if (!v || v->size() > 100) {
        co_await send(smtp::reply(501, "5.5.4", "Bad ENVID parameter"));
        co_return true;
      }
      msg_.envid = *v;
    } else if (prm.key == "AUTH") {
      // RFC 4954 5: accepted and ignored (we do not trust another server's assertion).
    } else {
      co_await send(smtp::reply(555, "5.5.4", "Unsupported parameter " + prm.key));
      co_return true;
    }
  }
  msg_.sender = p->address.str();
  if (kind_ != ListenerKind::kRelay && !msg_.sender.empty()) {
    bool owned = false;
    for (const auto* id : d_.identities().forSaslUser(user_)) owned = owned || IdentityMap::owns(*id, msg_.sender);
    if (!owned) {
      co_await send(smtp::reply(553, "5.7.1", "Sender address <" + msg_.sender + "> is not owned by user " + user_));
      co_return true;
    }
  }
  msg_.clientAddress = client_;
  msg_.helo = helo_;
  msg_.identity = user_;
  state_ = State::kMail;
  co_await send(smtp::reply(250, "2.1.0", "Ok"));
  co_return true;
}

awaitable<bool> Session::onRcpt(const std::string& arg) {
  const auto& rc = cfg_->relayd;
  if (state_ != State::kMail && state_ != State::kRcpt) {
    co_await send(smtp::reply(503, "5.5.1", "Error: need MAIL command"));
    co_return true;
  }
  auto p = smtp::parseRcptArg(arg, msg_.smtputf8);
  if (!p) {
    bool utf = false;
    for (unsigned char c : arg) utf = utf || c >= 0x80;
    // (Never a class-type ?: inside a co_await expression: GCC 12 destroys such temporaries twice.)
    std::string reply = smtp::reply(501, "5.1.3", "Bad recipient address syntax: " + p.message());
    if (utf && !msg_.smtputf8) reply = smtp::reply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
    co_await send(reply);
    ++errors_;
    co_return true;
  }
  if (static_cast<int64_t>(msg_.recipients.size()) >= rc.maxRecipients) {
    co_await send(smtp::reply(452, "4.5.3", "Error: too many recipients"));
    co_return true;
  }
  bool mayRelay = kind_ == ListenerKind::kRelay ? d_.trusted(clientIp_) : !user_.empty();
  if (!mayRelay) {
    ++d_.stats().rejectedRcpt;
    logInfo("reject: RCPT from " + client_ + ": 550 5.7.1 <" + p->address.str() + ">: Relay access denied");
    co_await send(smtp::reply(550, "5.7.1", "<" + p->address.str() + ">: Relay access denied"));
    co_return true;
  }
  if (p->address.domain.front() == '[') {
    co_await send(smtp::reply(550, "5.7.1", "<" + p->address.str() + ">: address literals are not relayed"));
    co_return true;
  }
  queue::NewRecipient r;
  r.address = p->address.str();
  for (const auto& prm : p->params) {
    if (prm.key == "NOTIFY") {
      std::string v = prm.value;
      for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      bool ok = !v.empty();
      bool never = false, other = false;
      for (auto part : split(v, ',')) {
        if (part == "NEVER") never = true;
        else if (part == "SUCCESS" || part == "FAILURE" || part == "DELAY") other = true;
        else ok = false;
      }
      if (!ok || (never && other)) {
        co_await send(smtp::reply(501, "5.5.4", "Bad NOTIFY parameter"));
        co_return true;
      }
      r.notify = v;
    } else if (prm.key == "ORCPT") {
      size_t semi = prm.value.find(';');
      auto v = semi == std::string::npos ? std::nullopt : smtp::decodeXtext(prm.value.substr(semi + 1));
      if (!v) {
        co_await send(smtp::reply(501, "5.5.4", "Bad ORCPT parameter"));
        co_return true;
      }
      r.orcpt = prm.value.substr(0, semi) + ";" + *v;
    } else {
      co_await send(smtp::reply(555, "5.5.4", "Unsupported parameter " + prm.key));
      co_return true;
    }
  }
  if (kind_ != ListenerKind::kRelay) {
    std::string action = co_await policyAction("RCPT", r.address);
    std::string reply = replyForAction(action);
    if (!reply.empty()) {
      ++d_.stats().rejectedRcpt;
      logInfo("reject: RCPT from " + client_ + " user=" + user_ + ": " + reply.substr(0, reply.size() - 2));
      co_await send(reply);
      co_return true;
    }
  }
  msg_.recipients.push_back(std::move(r));
  ++acceptedRcpts_;
  state_ = State::kRcpt;
  co_await send(smtp::reply(250, "2.1.5", "Ok"));
  co_return true;
}

// Ordinary message bytes (no CR or LF) of the current line: counted against the line length
// limit (RFC 5321 4.5.3.1.6) and max_message_size; past that size nothing more is kept.
void Session::appendData(std::string_view bytes, size_t maxSize) {
  lineLen_ += bytes.size();
  if (lineLen_ > smtp::kMaxTextLine - 2) lineTooLong_ = true;
  if (tooBig_) return;
  if (data_.size() + bytes.size() > maxSize) {
    tooBig_ = true;
    data_.clear();  // keep reading to the end, keep nothing
    data_.shrink_to_fit();
    return;
  }
  data_.append(bytes);
}

awaitable<bool> Session::onData() {
  const auto& rc = cfg_->relayd;
  if (bdat_) {
    co_await send(smtp::reply(503, "5.5.1", "Error: DATA after BDAT"));
    co_return true;
  }
  if (state_ != State::kRcpt) {
    std::string text3 = smtp::reply(503, "5.5.1", state_ == State::kMail ? "Error: no valid recipients" : "Error: need RCPT command");  // no ?: inside co_await (GCC 12 coroutine bugs)
    co_await send(text3);
    co_return true;
  }
  co_await send(smtp::reply(354, "", "End data with <CR><LF>.<CR><LF>"));
  data_.clear();
  bool lineStart = true;
  bool prevCR = false;  // the previous byte was a CR (not yet known to be part of CRLF)
  while (true) {
    size_t i = 0;
    bool done = false;
    while (i < in_.size()) {
      // At the start of a line: "." CRLF ends the data; a leading dot is unstuffed.
      if (lineStart && !prevCR) {
        if (in_.size() - i < 3 && std::string_view(".\r\n").substr(0, in_.size() - i) == std::string_view(in_).substr(i)) {
          break;  // maybe the end: wait for more bytes
        }
        if (in_.compare(i, 3, ".\r\n") == 0) {
          i += 3;
          done = true;
          break;
        }
        if (in_[i] == '.') ++i;
        lineStart = false;
        if (i >= in_.size()) break;
      }
      if (!prevCR) {
        // Fast path: the run of ordinary bytes up to the next CR or LF is copied at once.
        const char* base = in_.data();
        const void* nl = std::memchr(base + i, '\n', in_.size() - i);
        size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - base) : in_.size();
        const void* cr = std::memchr(base + i, '\r', end - i);
        size_t stop = cr ? static_cast<size_t>(static_cast<const char*>(cr) - base) : end;
        if (stop > i) {
          appendData(std::string_view(base + i, stop - i), rc.maxMessageSize);
          i = stop;
          if (i >= in_.size()) break;
        }
      }
      char c = in_[i++];
      if (prevCR) {
        prevCR = false;
        if (c == '\n') {
          if (!tooBig_) data_ += "\r\n";
          lineStart = true;
          lineLen_ = 0;
          continue;
        }
        bareLineEnd_ = true;  // a CR not followed by LF
        if (rc.normalizeBareLineEnds) {
          // A new line for the message, but never a line start for the end-of-data test (only
          // CRLF.CRLF ends DATA, as Postfix 3.9's "normalize" requires).
          if (!tooBig_) data_ += "\r\n";
          lineLen_ = 0;
          --i;  // this byte starts the next line
          continue;
        }
        if (!tooBig_) data_ += '\r';
      }
      if (c == '\r') {
        prevCR = true;
        continue;
      }
      if (c == '\n') {
        bareLineEnd_ = true;  // an LF without CR: never a line end for the end-of-data test
        if (rc.normalizeBareLineEnds) {
          if (!tooBig_) data_ += "\r\n";  // not a line start for the end-of-data test (see above)
          lineLen_ = 0;
        } else {
          if (!tooBig_) data_ += '\n';
        }
        continue;
      }
      appendData(std::string_view(&c, 1), rc.maxMessageSize);
    }
    in_.erase(0, i);
    if (done) break;
    arm(rc.dataTimeoutMs);
    if (!co_await fill()) {
      if (timedOut_) {
        ++d_.stats().timeouts;
        co_await send(smtp::reply(421, "4.4.2", rc.hostname + " Error: timeout exceeded"));
      }
      logInfo("lost connection with " + client_ + " in DATA; nothing queued");
      co_return false;
    }
  }
  co_return co_await finishMessage();
}

awaitable<bool> Session::onBdat(const std::string& arg) {
  const auto& rc = cfg_->relayd;
  auto parts = split(arg, ' ');
  std::optional<uint64_t> n = parts.empty() ? std::nullopt : parseUint(parts[0]);
  bool last = parts.size() == 2 && iequals(parts[1], "LAST");
  if (!n || parts.size() > 2 || (parts.size() == 2 && !last)) {
    co_await send(smtp::reply(501, "5.5.4", "Syntax: BDAT size [LAST]"));
    co_return false;  // the chunk cannot be skipped reliably: close (RFC 3030 allows it)
  }
  bool ok = state_ == State::kRcpt;
  // The chunk is read whatever happens, so the session stays in step.
  uint64_t left = *n;
  while (left > 0) {
    if (in_.empty()) {
      arm(rc.dataTimeoutMs);
      if (!co_await fill()) co_return false;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(left, in_.size()));
    if (ok && !tooBig_) {
      if (data_.size() + take > rc.maxMessageSize) {
        tooBig_ = true;
        data_.clear();
      } else {
        data_.append(in_, 0, take);
      }
    }
    in_.erase(0, take);
    left -= take;
  }
  if (!ok) {
    std::string text4 = smtp::reply(503, "5.5.1", state_ == State::kMail ? "Error: no valid recipients" : "Error: need RCPT command");  // no ?: inside co_await (GCC 12 coroutine bugs)
    co_await send(text4);
    co_return true;
  }
  bdat_ = true;
  if (!last) {
    co_await send(smtp::reply(250, "2.0.0", std::to_string(*n) + " octets received"));
    co_return true;
  }
  // Line ends inside BDAT data: the same rule as DATA (bare CR/LF rejected or normalised).
  std::string fixed;
  fixed.reserve(data_.size());
  for (size_t i = 0; i < data_.size(); ++i) {
    char c = data_[i];
    if (c == '\r' && i + 1 < data_.size() && data_[i + 1] == '\n') {
      fixed += "\r\n";
      lineLen_ = 0;
      ++i;
    } else if (c == '\r' || c == '\n') {
      bareLineEnd_ = true;
      fixed += rc.normalizeBareLineEnds ? std::string("\r\n") : std::string(1, c);
    } else {
      fixed += c;
      if (++lineLen_ > smtp::kMaxTextLine - 2) lineTooLong_ = true;
    }
  }
  data_ = std::move(fixed);
  co_return co_await finishMessage();
}

namespace {
// The address of one mailbox of a From:/Sender: value: the part in <...>, else the bare text.
std::vector<std::string> mailboxes(std::string_view v) {
  std::vector<std::string> out;
  for (auto part : split(v, ',')) {
    size_t lt = part.find('<'), gt = part.rfind('>');
    std::string_view a = (lt != std::string_view::npos && gt != std::string_view::npos && gt > lt)
                             ? part.substr(lt + 1, gt - lt - 1)
                             : part;
    size_t paren = a.find('(');
    if (paren != std::string_view::npos) a = a.substr(0, paren);
    std::string t(trim(a));
    if (!t.empty()) out.push_back(t);
  }
  return out;
}
}  // namespace

// Direct submissions get the milter's checks: exactly one From:, every From:/Sender: mailbox owned
// by the user, then the signatures of dkim.signing_table prepended. "" = go on; else the reply.
std::string Session::signSubmission() {
  auto hdrs = dkim::MessageHeaders::parse(data_);
  if (!hdrs) return smtp::reply(550, "5.6.0", "Malformed message header: " + hdrs.message());
  size_t from = hdrs->fromCount();
  if (from != 1) {
    return smtp::reply(550, "5.6.0", "Message has " + std::to_string(from) +
                                         " From: header fields (RFC 5322 requires exactly one)");
  }
  auto ids = d_.identities().forSaslUser(user_);
  std::string fromDomain;
  for (const char* name : {"from", "sender"}) {
    for (const auto* f : hdrs->findAll(name)) {
      for (const auto& addr : mailboxes(f->value())) {
        bool owned = false;
        for (const auto* id : ids) owned = owned || IdentityMap::owns(*id, addr);
        if (!owned) {
          return smtp::reply(550, "5.7.1", std::string(name) + ": <" + addr + "> is not owned by user " + user_);
        }
        if (fromDomain.empty() && std::string(name) == "from") fromDomain = domainOf(addr);
      }
    }
  }
  auto signing = d_.signing();
  if (!signing) return "";
  auto plan = signing->lookup(fromDomain, user_);
  if (!plan.brokenKeys.empty() && signing->keyErrorTempfail()) {
    logWarning("dkim: key " + plan.brokenKeys.front() + " is unavailable; message from " + user_ + " tempfailed");
    return smtp::reply(451, "4.7.0", "DKIM signing is temporarily unavailable, try again later");
  }
  if (plan.specs.empty()) return "";
  auto fields = dkim::signatureFields(std::move(plan.specs), hdrs.value(), data_);
  if (!fields) {
    logWarning("dkim: signing failed for " + user_ + ": " + fields.message());
    if (signing->keyErrorTempfail()) return smtp::reply(451, "4.7.0", "DKIM signing is temporarily unavailable, try again later");
    return "";
  }
  data_.insert(0, fields.value());
  return "";
}

awaitable<bool> Session::finishMessage() {
  const auto& rc = cfg_->relayd;
  auto done = [&]() { resetTransaction(); };
  if (tooBig_) {
    ++d_.stats().rejectedData;
    co_await send(smtp::reply(552, "5.3.4", "Error: message file too big"));
    done();
    co_return true;
  }
  if (lineTooLong_) {
    ++d_.stats().rejectedData;
    co_await send(smtp::reply(550, "5.6.0", "Error: message line longer than 998 characters (RFC 5321 4.5.3.1.6)"));
    done();
    co_return true;
  }
  if (bareLineEnd_ && !rc.normalizeBareLineEnds) {
    ++d_.stats().smugglingRejected;
    logWarning("reject: message from " + client_ + " contains a bare CR or LF (possible SMTP smuggling)");
    co_await send(smtp::reply(550, "5.5.2", "Error: bare <CR> or <LF> in message data; lines must end with <CR><LF>"));
    done();
    co_return true;
  }
  if (!data_.empty() && (data_.size() < 2 || data_.compare(data_.size() - 2, 2, "\r\n") != 0)) data_ += "\r\n";
  // The identity header: believed from trusted clients on the relay listener, removed everywhere.
  std::string claimed = rc.identityHeader.empty() ? "" : stripHeader(&data_, rc.identityHeader);
  if (kind_ == ListenerKind::kRelay && d_.trusted(clientIp_) && !claimed.empty()) msg_.identity = claimed;
  msg_.messageId = headerValue(data_, "Message-ID");
  if (kind_ != ListenerKind::kRelay) {
    std::string action = co_await policyAction("END-OF-MESSAGE", "");
    std::string reply = replyForAction(action);
    if (reply.empty()) reply = signSubmission();  // From: ownership, then DKIM, as the milter does
    if (!reply.empty()) {
      ++d_.stats().rejectedData;
      co_await send(reply);
      done();
      co_return true;
    }
  }
  std::string proto = esmtp_ ? "ESMTP" : "SMTP";
  if (tls_) proto += "S";
  if (!user_.empty()) proto += "A";
  std::string tlsNote;
  if (tls_) {
    const SSL* ssl = tls_->native_handle();
    tlsNote = std::string("\r\n\t(using ") + SSL_get_version(ssl) + " with cipher " + SSL_get_cipher_name(ssl) + ")";
  }
  std::string received = "Received: from " + helo_ + " ([" + client_ + "])" + tlsNote +
                         (user_.empty() ? "" : "\r\n\t(Authenticated sender: " + user_ + ")") + "\r\n\tby " +
                         rc.hostname + " (sluice-relayd) with " + proto + " id ";
  std::string tail = ";\r\n\t" + rfc5322Date() + "\r\n";
  auto msg = std::make_shared<queue::NewMessage>(std::move(msg_));
  std::string qid = queue::Queue::newId();  // in Received:, the 250 reply, the log and the index
  // One allocation of the final size and one copy of the message.
  msg->content.reserve(received.size() + qid.size() + tail.size() + data_.size());
  msg->content.append(received).append(qid).append(tail).append(data_);
  data_.clear();
  size_t nrcpt = msg->recipients.size(), size = msg->content.size();
  std::string sender = msg->sender;

  // Wait for the group commit that covers this message.
  auto timer = std::make_shared<asio::steady_timer>(sock_.get_executor());
  timer->expires_at(asio::steady_timer::time_point::max());
  auto result = std::make_shared<std::optional<Result<std::string>>>();
  d_.committer().submit(msg, qid, sock_.get_executor(), [timer, result](Result<std::string> r) {
    *result = std::move(r);
    timer->cancel();
  });
  deadline_.expires_at(asio::steady_timer::time_point::max());
  co_await timer->async_wait(kTuple);
  done();
  if (!*result) {
    co_await send(smtp::reply(451, "4.3.0", "Error: queue file write error"));
    co_return true;
  }
  if (!**result) {
    ++d_.stats().tempfailed;
    const std::string& e = (*result)->message();
    logError("queue: " + e);
    if (e.rfind(queue::kNoSpace, 0) == 0) {
      co_await send(smtp::reply(452, "4.3.1", "Insufficient system storage"));
    } else {
      co_await send(smtp::reply(451, "4.3.0", "Error: queue file write error"));
    }
    co_return true;
  }
  const std::string& id = (*result)->value();
  ++d_.stats().messages;
  d_.stats().bytes += size;
  d_.stats().recipients += nrcpt;
  logInfo(id + ": client=" + client_ + (user_.empty() ? "" : ", sasl_username=" + user_) + ", from=<" + sender +
          ">, size=" + std::to_string(size) + ", nrcpt=" + std::to_string(nrcpt) + " (queue active)");
  co_await send(smtp::reply(250, "2.0.0", "Ok: queued as " + id));
  co_return true;
}

}  // namespace sluice::relayd
