// smtp_client.h - one outbound SMTP client session of sluice-relayd's delivery, as one explicit
// state machine run by C++20 coroutines on the delivery thread's io_context.
//
// States: kIdle -> kConnecting -> kGreeting -> kEhlo (or kHelo when EHLO is refused) ->
// [kStartTls -> kEhlo] -> kReady -> (kMail -> kRcpt -> kData -> kBody -> kReady)* -> kQuit ->
// kClosed. enterState() logs every transition (debug level) with the peer's name.
//
// TLS (RFC 3207), per the destination's level: none (never), may (STARTTLS when offered, no
// certificate check; the caller retries in the clear when the handshake fails, as Postfix does),
// encrypt (STARTTLS required, no certificate check), verify (STARTTLS required, the chain checked
// against the CA store and the MX host name against the certificate). A required TLS that is
// missing or fails ends the session with a synthetic 454 4.7.5 reply, so the caller defers.
// Replies: at most kMaxReplyLines lines of at most kMaxReplyLine octets; more is a protocol error
// (the session ends, the recipients are deferred). Each read and write has its deadline: connect,
// greeting, command, data; a deadline that passes closes the socket and yields a reply with code 0.
// PIPELINING (RFC 2920) when offered: MAIL, every RCPT and DATA go in one write.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::relayd {

enum class TlsLevel { kNone, kMay, kEncrypt, kVerify };
const char* toString(TlsLevel l);
std::optional<TlsLevel> parseTlsLevel(std::string_view s);

struct SmtpReply {
  int code = 0;            // 0: no reply (connection failed, closed or timed out)
  std::string text;        // every line joined by spaces, starting with the code ("550 5.1.1 ...")
  bool ok() const { return code >= 200 && code < 400; }
  bool permanent() const { return code >= 500; }
  bool temporary() const { return !ok() && !permanent(); }
};

struct ClientOptions {
  std::string heloName;
  TlsLevel tls = TlsLevel::kMay;
  asio::ssl::context* tlsNoVerify = nullptr;  // for may/encrypt
  asio::ssl::context* tlsVerify = nullptr;    // for verify (CA store loaded)
  std::shared_ptr<const void> tlsOwner;       // keeps both alive while the client is (a reload replaces them)
  std::string peerName;                       // the MX host name: SNI and the name verified
  int64_t connectTimeoutMs = 30000;
  int64_t greetingTimeoutMs = 300000;
  int64_t commandTimeoutMs = 300000;
  int64_t dataTimeoutMs = 600000;
};

struct Transaction {
  std::string mailFrom;                 // "" = the null sender
  std::vector<std::string> mailParams;  // "SIZE=123", "BODY=8BITMIME", ...
  struct Rcpt {
    std::string address;
    std::vector<std::string> params;    // "NOTIFY=...", "ORCPT=..."
  };
  std::vector<Rcpt> rcpts;
  const std::string* content = nullptr;  // CRLF line ends, not dot-stuffed
};

struct TransactionResult {
  SmtpReply mail;
  std::vector<SmtpReply> rcpts;  // one per recipient; code 0 when it was never answered
  SmtpReply data;                // the reply after the final dot, or the failing DATA reply
};

class SmtpClient : public std::enable_shared_from_this<SmtpClient> {
 public:
  enum class State { kIdle, kConnecting, kGreeting, kEhlo, kHelo, kStartTls, kReady, kMail, kRcpt, kData, kBody,
                     kQuit, kClosed };
  static constexpr size_t kMaxReplyLine = 4096;
  static constexpr size_t kMaxReplyLines = 200;

  SmtpClient(asio::io_context& io, ClientOptions options);
  ~SmtpClient();

  // Connects and opens the session: greeting, EHLO (HELO if refused), STARTTLS as the TLS level
  // says, EHLO again. Returns the 2xx EHLO/HELO reply or the reply that failed (code 0: no
  // connection). tlsFailed() tells a failed handshake apart (for the "may" fallback).
  asio::awaitable<SmtpReply> open(asio::ip::tcp::endpoint peer);
  // One mail transaction. Only when usable().
  asio::awaitable<TransactionResult> send(const Transaction& t);
  // RSET (after a transaction that ended without DATA) - false when the session is gone.
  asio::awaitable<bool> reset();
  asio::awaitable<void> quit();

  bool usable() const { return state_ == State::kReady && !closed_; }
  bool has(std::string_view extension) const;  // upper case, e.g. "PIPELINING"
  uint64_t sizeLimit() const { return sizeLimit_; }  // 0: none announced
  bool tlsFailed() const { return tlsFailed_; }
  // "none" or "TLSv1.3 TLS_AES_256_GCM_SHA384 (verified|unverified)".
  std::string tlsSummary() const { return tlsSummary_; }
  State state() const { return state_; }
  static const char* toString(State s);

 private:
  void enterState(State s);
  void arm(int64_t ms);
  void disarm();
  asio::awaitable<bool> writeAll(std::string_view data);
  asio::awaitable<bool> writeAll(std::string_view a, std::string_view b);  // both, in one write
  asio::awaitable<SmtpReply> readReply(int64_t timeoutMs);
  asio::awaitable<bool> readLine(std::string* line);
  asio::awaitable<SmtpReply> command(std::string line, int64_t timeoutMs);
  asio::awaitable<SmtpReply> hello();
  asio::awaitable<SmtpReply> startTls();
  asio::awaitable<SmtpReply> sendBody(const std::string& content);
  void parseExtensions(const std::vector<std::string>& lines);
  SmtpReply fail(std::string why, int code = 0);
  void close();

  asio::io_context& io_;
  ClientOptions options_;
  asio::ip::tcp::socket sock_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer deadline_;
  uint64_t armed_ = 0;  // generation of the armed deadline
  bool timedOut_ = false;
  bool closed_ = false;
  bool tlsFailed_ = false;
  State state_ = State::kIdle;
  std::string in_;
  std::vector<std::string> lastLines_;
  std::set<std::string> extensions_;
  uint64_t sizeLimit_ = 0;
  std::string tlsSummary_ = "none";
  std::string peer_;  // for the log
};

// Dot-stuffs a CRLF message for DATA and appends the final "." line (RFC 5321 4.5.2).
std::string dotStuff(const std::string& content);
// What follows `content` in DATA: ".\r\n", after a CRLF when the last line lacks one.
std::string_view dataTerminator(std::string_view content);
// True when some line of `content` starts with a dot (dotStuff would change more than the end).
bool needsDotStuffing(std::string_view content);

}  // namespace sluice::relayd
