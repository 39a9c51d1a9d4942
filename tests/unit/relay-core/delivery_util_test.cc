// delivery_util_test.cc - the retry schedule of relay-core/delivery_util.h: greylisted() tells a
// greylisting reply (450/451 with its own enhanced status 4.7.x, or wording such as "greylisted",
// "try again later") from any other temporary failure, and backoffMs() gives greylisted replies
// delivery.greylist_retry at the first two attempts and everything else exponential back-off from
// retry_initial, with +-10% jitter, never past retry_max.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "delivery_util.h"

namespace sluice::relayd::delivery_util {
namespace {

TEST(DeliveryUtilTest, GreylistedRepliesAreToldFromOtherTemporaryFailures) {
  struct Case {
    int code;
    std::string text;
    bool want;
  };
  const std::vector<Case> cases = {
      {450, "450 4.7.1 <a@b.example>: Recipient address rejected: Greylisted, try again later", true},  // postgrey
      {451, "451 4.7.1 Please try again later", true},
      {450, "450 4.7.0 temporarily rejected", true},              // the enhanced status alone
      {451, "451 Greylisting in action, please come back later", true},
      {450, "450 4.2.0 graylisted, see https://example.org/grey", true},
      {451, "451 Try again later", true},                          // wording, no enhanced status
      {451, "451 4.3.0 Temporary local problem", false},
      {450, "450 4.2.1 Mailbox busy", false},
      {451, "451 4.4.1 454 4.7.5 TLS handshake with mx[127.0.0.4]:25 failed", false},  // 4.7.x quoted, not ours
      {451, "451 4.4.3 Host or domain name lookup failed", false},
      {421, "421 4.7.0 try again later, closing connection", false},  // only 450/451
      {452, "452 4.7.1 greylisted", false},
      {550, "550 5.7.1 greylisted forever", false},
      {0, "lost connection with mx.example", false},
  };
  for (const auto& c : cases) {
    SmtpReply r{c.code, c.text};
    EXPECT_EQ(greylisted(r), c.want) << "reply: " << c.text << "; got " << greylisted(r) << ", want " << c.want;
  }
}

struct Range {
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  std::set<int64_t> seen;
};

Range sample(const config::DeliveryConfig& dc, int attempts, bool grey, int n = 2000) {
  std::mt19937 rng(12345 + attempts);
  Range r;
  for (int i = 0; i < n; ++i) {
    int64_t v = backoffMs(dc, attempts, grey, rng);
    r.lo = std::min(r.lo, v);
    r.hi = std::max(r.hi, v);
    r.seen.insert(v);
  }
  return r;
}

// Only a refusal that says the address is bad suppresses the recipient: not one of the sender,
// the content, our reputation or what the MX lacks.
TEST(DeliveryUtilTest, RecipientRefusedOnlyWhenTheAddressIsBad) {
  struct Case {
    int code;
    const char* text;
    bool atRcpt;
    bool want;
  } cases[] = {
      {550, "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown", true, true},
      {550, "550 5.1.1 user unknown", false, true},  // some MXs refuse recipients after DATA
      {556, "556 5.1.10 domain example.com accepts no mail (null MX)", false, true},
      {550, "550 5.1.2 host not found", false, true},
      {550, "550 5.2.1 mailbox disabled", true, true},
      {550, "550 no such user here", true, true},
      {553, "553 sorry, that domain isn't in my list of allowed rcpthosts", true, true},
      {550, "550 no such user here", false, false},              // at MAIL FROM or DATA: unclear
      {550, "550 5.7.1 sender mail550@sender.example refused", false, false},
      {550, "550 5.7.1 Service unavailable; client host blocked", true, false},  // our reputation
      {554, "554 5.7.1 message rejected as spam", false, false},
      {552, "552 5.3.4 message size 5000 exceeds size limit 2000 of server mx", false, false},
      {554, "554 5.6.3 host mx does not support 8BITMIME and the message is 8-bit", false, false},
      {552, "552 5.2.2 mailbox full", true, false},
      {550, "550 5.2.10 something else", true, false},
      {450, "450 4.1.1 try later", true, false},  // temporary: never
  };
  for (const auto& c : cases) {
    SmtpReply r{c.code, c.text};
    EXPECT_EQ(recipientRefused(r, c.atRcpt), c.want) << c.text << " atRcpt=" << c.atRcpt;
  }
}

TEST(DeliveryUtilTest, GreylistedRepliesGetTheShortRetryAtTheFirstAttemptsOnly) {
  config::DeliveryConfig dc;
  dc.retryInitialMs = 300000;      // 5 min
  dc.retryMaxMs = 4 * 3600000LL;   // 4 h
  dc.greylistRetryMs = 60000;      // 1 min
  for (int attempts : {0, 1}) {
    Range g = sample(dc, attempts, true);
    EXPECT_GE(g.lo, 54000) << "attempts " << attempts << ": greylist_retry - 10%";
    EXPECT_LE(g.hi, 66000) << "attempts " << attempts << ": greylist_retry + 10%";
    EXPECT_GT(g.seen.size(), 100u) << "jittered";
  }
  // From the third attempt on a greylisting peer gets the ordinary schedule (retry_initial * 2^2).
  Range g2 = sample(dc, 2, true);
  EXPECT_GE(g2.lo, 1080000);
  EXPECT_LE(g2.hi, 1320000);
  // An ordinary reply at the first attempt: retry_initial, not greylist_retry.
  Range o0 = sample(dc, 0, false);
  EXPECT_GE(o0.lo, 270000);
  EXPECT_LE(o0.hi, 330000);
}

TEST(DeliveryUtilTest, OrdinaryRepliesBackOffExponentiallyWithJitterCappedAtRetryMax) {
  config::DeliveryConfig dc;
  dc.retryInitialMs = 300000;
  dc.retryMaxMs = 4 * 3600000LL;
  dc.greylistRetryMs = 120000;
  int64_t base = dc.retryInitialMs;
  for (int attempts = 0; attempts < 12; ++attempts) {
    Range r = sample(dc, attempts, false);
    int64_t want = std::min(base, dc.retryMaxMs);
    EXPECT_GE(r.lo, want - want / 10) << "attempts " << attempts;
    EXPECT_LE(r.hi, std::min(want + want / 10, dc.retryMaxMs)) << "attempts " << attempts;
    EXPECT_GT(r.seen.size(), 100u) << "attempts " << attempts << ": jittered";
    if (want < dc.retryMaxMs) {
      EXPECT_GT(r.hi, want) << "attempts " << attempts << ": jitter goes both ways below the cap";
    }
    base *= 2;
  }
  // Far past the cap: within 10% below retry_max, never above it, and no overflow.
  for (int attempts : {20, 63, 1000, 1 << 30}) {
    Range r = sample(dc, attempts, false, 500);
    EXPECT_GE(r.lo, dc.retryMaxMs - dc.retryMaxMs / 10) << "attempts " << attempts;
    EXPECT_LE(r.hi, dc.retryMaxMs) << "attempts " << attempts;
  }
  // At least 1 s even when configured shorter.
  config::DeliveryConfig tiny;
  tiny.retryInitialMs = 100;
  tiny.retryMaxMs = 100000;
  tiny.greylistRetryMs = 100;
  EXPECT_GE(sample(tiny, 0, false).lo, 1000);
  EXPECT_GE(sample(tiny, 0, true).lo, 1000);
}

}  // namespace
}  // namespace sluice::relayd::delivery_util
