// session.h - one SMTP server session of sluice-relayd, as one explicit state machine run by a
// C++20 coroutine on the daemon's io_context.
//
// States: kConnected (greeting sent; EHLO/HELO required) -> kGreeted -> kMail (MAIL accepted) ->
// kRcpt (at least one RCPT accepted) -> [DATA or BDAT...LAST] -> kGreeted. STARTTLS and RSET go
// back to kConnected / kGreeted. Every reply code comes from RFC 5321 / 3207 / 4954 / 3030 / 6531.
// Command lines: 512 octets (RFC 5321 4.5.3.1.4), MAIL and RCPT 2048 (smtp::kMaxMailRcptLine:
// DSN's ENVID, NOTIFY and ORCPT, RFC 3461 section 5); a longer line is answered 500 5.5.2.
//
// Smuggling defences: only <CR><LF>.<CR><LF> ends DATA; a bare LF or CR inside the data either
// rejects the message (550 5.5.2, default) or is turned into CRLF (relayd.bare_line_ends:
// normalize) - never does it end the data or start a command; whatever the client pipelined after
// STARTTLS in the clear is discarded before the handshake (CVE-2011-0411).
// GCC 12 miscompiles a class-type ?: inside a co_await expression (use-after-free, double free):
// replies are built in a local first, never as "co_await send(cond ? a : b)".
// Deadlines: each read arms a watchdog (command_timeout or data_timeout); when it fires the
// session answers 421 4.4.2 and closes.
// Lifetimes: a session keeps the configuration, TLS context and policyd client it started with
// (shared_ptr copies), so a reload (SIGHUP), which replaces the daemon's, never frees what a
// suspended session still reads; new sessions get the new ones. The daemon may be gone before a
// session is destroyed (forced stop: the io_context destroys what is still suspended in it), so
// the destructor gives the connection slot back only while the daemon's alive token lives.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/net_addr.h"
#include "queue/queue.h"
#include "relayd.h"

namespace sluice::relayd {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Relayd& d, asio::ip::tcp::socket sock, ListenerKind kind);
  ~Session();
  void start();

 private:
  enum class State { kConnected, kGreeted, kMail, kRcpt };
  enum class ReadStatus { kOk, kTooLong, kClosed, kTimeout };

  asio::awaitable<void> run();
  asio::awaitable<void> watchdog();
  asio::awaitable<bool> fill();  // reads more into in_; false on EOF/error/timeout
  asio::awaitable<ReadStatus> readLine(std::string* line, size_t maxLen);
  asio::awaitable<void> send(std::string text);  // by value: it lives in the coroutine frame
  asio::awaitable<bool> handshake();

  asio::awaitable<bool> onEhlo(const std::string& arg, bool ehlo);
  asio::awaitable<bool> onStartTls(const std::string& arg);
  asio::awaitable<bool> onAuth(const std::string& arg);
  asio::awaitable<bool> onMail(const std::string& arg);
  asio::awaitable<bool> onRcpt(const std::string& arg);
  asio::awaitable<bool> onData();
  asio::awaitable<bool> onBdat(const std::string& arg);
  asio::awaitable<bool> finishMessage();
  void resetTransaction();
  void arm(int64_t ms);
  // Asks sluice-policyd on relayd's policy thread pool: a slow or dead policyd holds up this
  // session only, never the event loop the other sessions share.
  asio::awaitable<std::string> policyAction(const std::string& state, const std::string& rcpt);
  std::string signSubmission();

  Relayd& d_;
  std::weak_ptr<const void> alive_;                 // expired once ~Relayd ran
  std::shared_ptr<const config::Config> cfg_;       // the configuration at session start
  std::shared_ptr<asio::ssl::context> tlsCtx_;      // the certificate at session start (null: none)
  std::shared_ptr<PolicyClient> policyClient_;      // outlives policy_ (its connection goes back to it)
  asio::ip::tcp::socket sock_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  ListenerKind kind_;
  asio::steady_timer deadline_;
  std::string in_;
  std::string client_;             // IP as text
  std::optional<IpAddr> clientIp_;
  bool admitted_ = false;
  bool closed_ = false;
  bool timedOut_ = false;
  State state_ = State::kConnected;
  std::string helo_;
  bool esmtp_ = false;
  std::string user_;               // authenticated SASL user
  int errors_ = 0;

  // The transaction.
  queue::NewMessage msg_;
  bool bdat_ = false;              // a BDAT sequence is in progress
  void appendData(std::string_view bytes, size_t maxSize);
  bool tooBig_ = false;
  bool bareLineEnd_ = false;
  bool sizeDeclaredTooBig_ = false;
  bool lineTooLong_ = false;       // a text line over 1000 octets with its CRLF
  size_t lineLen_ = 0;
  std::string data_;
  // Shared with the policy thread pool while a question is in flight (the session may end first).
  std::shared_ptr<PolicyClient::Session> policy_;
  std::string instance_;
  int acceptedRcpts_ = 0;
};

// The header block helpers used when a message is finished (public for tests).
// Removes every field named `name` (case-insensitive, with its continuation lines) from the
// header block of `message` (CRLF line ends); returns the first removed value, trimmed.
std::string stripHeader(std::string* message, const std::string& name);
// The value of the first `name` field in the header block, unfolded and trimmed ("" if none).
std::string headerValue(const std::string& message, const std::string& name);

}  // namespace sluice::relayd
