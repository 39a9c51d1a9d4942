// destination_pacer_test.cc - relay-core/destination_pacer.h: the slots it books for
// delivery.destination_rate are exactly 1/rate apart at rates below 1/s, around 1/s and far above
// 1000/s (where integer milliseconds failed), without drift over many messages; an idle
// destination saves up no burst; destinations are independent (the caller keys them by MX host
// list, so domains rolled up into one share a schedule); no limit at rate 0; memory is bounded.
#include <gtest/gtest.h>

#include <string>

#include "destination_pacer.h"

namespace sluice::relayd {
namespace {

TEST(DestinationPacerTest, SlotsAreOneIntervalApartAtAnyRate) {
  struct Case {
    double rate;        // per second
    int64_t intervalUs;  // want
  };
  for (const auto& c : {Case{0.5, 2'000'000}, Case{1, 1'000'000}, Case{2, 500'000}, Case{1000, 1000},
                        Case{2500, 400}, Case{100000, 10}}) {
    DestinationPacer p;
    const int64_t t0 = 5'000'000;
    int64_t prev = p.reserve("mx.example,", c.rate, t0);
    EXPECT_EQ(prev, t0) << "rate " << c.rate << ": the first message goes at once";
    for (int i = 1; i < 10; ++i) {
      int64_t at = p.reserve("mx.example,", c.rate, t0);  // all asked for at the same moment
      EXPECT_EQ(at - prev, c.intervalUs) << "rate " << c.rate << ", message " << i;
      prev = at;
    }
  }
}

TEST(DestinationPacerTest, FractionalIntervalsDoNotDrift) {
  DestinationPacer p;
  // 3/s: 333,333.3 us apart. 3,000 messages take 999.67 s, not 999 s (rounding each interval
  // down) nor 1,000 s; 30,000/s (33.3 us): 30,000 messages in 1 s, not 0.99 s.
  int64_t last = 0;
  for (int i = 0; i < 3000; ++i) last = p.reserve("a", 3, 0);
  EXPECT_NEAR(static_cast<double>(last), 2999 * 1e6 / 3, 1.0);
  for (int i = 0; i < 30000; ++i) last = p.reserve("b", 30000, 0);
  EXPECT_NEAR(static_cast<double>(last), 29999 * 1e6 / 30000, 1.0);
}

TEST(DestinationPacerTest, IdleDestinationsSaveUpNoBurst) {
  DestinationPacer p;
  EXPECT_EQ(p.reserve("d", 2, 0), 0);
  EXPECT_EQ(p.reserve("d", 2, 0), 500'000);
  // Quiet for 10 s: the next message goes at once, the one after it a full interval later.
  EXPECT_EQ(p.reserve("d", 2, 10'000'000), 10'000'000);
  EXPECT_EQ(p.reserve("d", 2, 10'000'000), 10'500'000);
  // Asked late (after its slot): sent when asked, the next slot counted from then.
  EXPECT_EQ(p.reserve("d", 2, 10'700'000), 11'000'000);
  EXPECT_EQ(p.reserve("d", 2, 12'000'000), 12'000'000);
}

TEST(DestinationPacerTest, DestinationsAreIndependentAndRateZeroIsNoLimit) {
  DestinationPacer p;
  // Two domains with the same MX host list are one destination: the caller passes that list.
  const std::string shared = "mx1.provider.example,mx2.provider.example,";
  EXPECT_EQ(p.reserve(shared, 1, 0), 0);          // a message to domain-a.example
  EXPECT_EQ(p.reserve(shared, 1, 0), 1'000'000);  // then one to domain-b.example: the same schedule
  EXPECT_EQ(p.reserve("mx.other.example,", 1, 0), 0) << "another MX host list has its own";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.reserve(shared, 0, 7), 7) << "rate 0: no limit";
  EXPECT_EQ(p.reserve(shared, 1, 0), 2'000'000) << "unlimited sends booked nothing";
}

TEST(DestinationPacerTest, MemoryIsBoundedByIdleDestinationsDropped) {
  DestinationPacer p;
  for (size_t i = 0; i < DestinationPacer::kMaxEntries + 500; ++i) {
    (void)p.reserve("mx" + std::to_string(i), 1, static_cast<int64_t>(i) * 2'000'000);
  }
  EXPECT_LE(p.size(), DestinationPacer::kMaxEntries);
  // A busy destination keeps its schedule through a prune.
  DestinationPacer q;
  EXPECT_EQ(q.reserve("busy", 0.1, 0), 0);
  for (size_t i = 0; i < DestinationPacer::kMaxEntries; ++i) (void)q.reserve("idle" + std::to_string(i), 1000, 0);
  EXPECT_EQ(q.reserve("busy", 0.1, 5'000'000), 10'000'000);
}

}  // namespace
}  // namespace sluice::relayd
