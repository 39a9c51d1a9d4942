// delivery_util.h - small helpers shared by delivery.cc (scheduling, agents, one job) and
// delivery_report.cc (outcomes: events, log lines, DSNs, suppression, metrics). Internal to
// relay-core.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "config/config.h"
#include "dns/mx_resolver.h"
#include "queue/queue.h"
#include "smtp_client.h"

namespace sluice::relayd::delivery_util {

using asio::awaitable;
using queue::Queue;
inline constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);


inline int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string toUpper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

inline std::string localPart(const std::string& address) {
  size_t at = address.rfind('@');
  return at == std::string::npos ? address : address.substr(0, at);
}

// The reply's own enhanced status ("4.7.1" of "451 4.7.1 greylisted"), "" when it has none: only
// the one right after the code, never a status quoted later in the text.
inline std::string_view ownStatus(std::string_view text) {
  if (text.size() < 9 || (text[3] != ' ' && text[3] != '-') || !std::isdigit(static_cast<unsigned char>(text[4])) ||
      text[5] != '.') {
    return {};
  }
  size_t end = text.find_first_not_of("0123456789.", 4);
  return text.substr(4, end == std::string_view::npos ? std::string_view::npos : end - 4);
}

// 450/451 with the enhanced status 4.7.x, or wording that says so ("greylisted", "try again
// later"): a greylisting server wants a short wait, not a long one. Only the reply's own enhanced
// status counts (the text starts "451 4.7.1 "): a 4.7.x quoted later in our own diagnostics
// ("451 4.4.1 454 4.7.5 TLS handshake ... failed") is no greylisting.
inline bool greylisted(const SmtpReply& r) {
  if (r.code != 450 && r.code != 451) return false;
  if (ownStatus(r.text).substr(0, 4) == "4.7.") return true;
  std::string t = toLower(r.text);
  return t.find("greylist") != std::string::npos || t.find("graylist") != std::string::npos ||
         t.find("grey-list") != std::string::npos || t.find("gray-list") != std::string::npos ||
         t.find("try again later") != std::string::npos;
}

// Whether a permanent refusal says the recipient's address is bad, so that it goes on the
// suppression list (delivery.suppress_hard_bounces): its own enhanced status is 5.1.x (bad
// mailbox, bad or null-MX domain) or 5.2.1 (mailbox disabled), whatever the step; or it came at
// RCPT TO with no enhanced status, as 550/551/553 (a bare "550 no such user"). Not: a refusal of
// the sender (at MAIL FROM), of the content (5.6.x, 5.7.x policy and reputation, a 5.3.4 size)
// or our own for what the MX lacks - none of those says anything about the address.
inline bool recipientRefused(const SmtpReply& r, bool atRcpt) {
  if (!r.permanent()) return false;
  std::string_view status = ownStatus(r.text);
  if (!status.empty() && status[0] == '5') return status.substr(0, 4) == "5.1." || status == "5.2.1";
  return atRcpt && (r.code == 550 || r.code == 551 || r.code == 553);
}

// The wait before the next attempt of a recipient that has had `attempts` attempts before this
// one: a greylisted reply at the first two attempts waits delivery.greylist_retry; anything else
// delivery.retry_initial doubled per earlier attempt, capped at delivery.retry_max. +-10% jitter
// (so recipients deferred together do not come back together), at least 1 s, and never past
// retry_max for the exponential schedule.
inline int64_t backoffMs(const config::DeliveryConfig& dc, int attempts, bool grey, std::mt19937& rng) {
  if (grey && attempts < 2) {
    int64_t base = dc.greylistRetryMs;
    std::uniform_int_distribution<int64_t> jitter(-base / 10, base / 10);
    return std::max<int64_t>(1000, base + jitter(rng));
  }
  int64_t base = dc.retryInitialMs;
  for (int i = 0; i < attempts && base < dc.retryMaxMs; ++i) base *= 2;
  base = std::min(base, dc.retryMaxMs);
  std::uniform_int_distribution<int64_t> jitter(-base / 10, base / 10);
  int64_t v = std::min(base + jitter(rng), dc.retryMaxMs);
  return std::max<int64_t>(std::min<int64_t>(1000, dc.retryMaxMs), v);
}

// NOTIFY=NEVER, or a NOTIFY list without FAILURE (RFC 3461 4.1), asks for no failure DSN.
inline bool wantsFailureDsn(const std::string& notify) {
  if (notify.empty()) return true;
  std::string n = toUpper(notify);
  return n.find("FAILURE") != std::string::npos;
}

inline bool wantsDelayDsn(const std::string& notify) {
  if (notify.empty()) return true;  // RFC 3461 4.1: the MTA may send delay DSNs by default
  return toUpper(notify).find("DELAY") != std::string::npos;
}

// The lookup's callback wakes a timer the coroutine waits on (GCC 12 mishandles captures of
// an async_initiate lambda in a coroutine).
inline awaitable<dns::MxResult> resolveMx(dns::MxResolver& resolver, std::string domain) {
  auto result = std::make_shared<std::optional<dns::MxResult>>();
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                    asio::steady_timer::time_point::max());
  resolver.resolve(domain, [result, timer](dns::MxResult r) {
    *result = std::move(r);
    timer->cancel();
  });
  while (!result->has_value()) (void)co_await timer->async_wait(kTuple);
  dns::MxResult out = std::move(result->value());
  co_return out;
}

// An outcome decided here, without an attempt (no attempts row).
inline Queue::Outcome localOutcome(const std::string& id, int index, const char* state, const std::string& reply) {
  Queue::Outcome o;
  o.messageId = id;
  o.index = index;
  o.state = state;
  o.reply = reply;
  o.attempted = false;
  return o;
}

inline std::string ms(int64_t v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 100);
}


}  // namespace sluice::relayd::delivery_util
