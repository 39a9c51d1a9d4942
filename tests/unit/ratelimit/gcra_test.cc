// gcra_test.cc - tests for lib/ratelimit/gcra.h: limits, bursts, reservations, recovery.
#include "ratelimit/gcra.h"

#include <gtest/gtest.h>

namespace sluice::ratelimit {
namespace {

constexpr double kHourUs = 3600e6;
constexpr double kT0 = 1.7e15;

TEST(Gcra, LimitThenRecoveryAtTheRate) {
  WindowSpec w = WindowSpec::make(3, 3'600'000, 3);
  WindowState s;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.fits(w, kT0, 1)) << "unit " << i + 1 << " of 3 should fit";
    s.commit(w, kT0, 1);
  }
  EXPECT_FALSE(s.fits(w, kT0, 1)) << "the 4th unit in the same instant must not fit";
  EXPECT_EQ(s.used(w, kT0), 3u);
  EXPECT_NEAR(s.retryAfterUs(w, kT0, 1), kHourUs / 3, 1.0);
  EXPECT_FALSE(s.fits(w, kT0 + kHourUs / 3 - 1e6, 1)) << "not yet: one emission interval has not passed";
  EXPECT_TRUE(s.fits(w, kT0 + kHourUs / 3, 1)) << "one unit back after T = per/limit";
  EXPECT_TRUE(s.idle(kT0 + kHourUs));
}

TEST(Gcra, BurstSmallerThanLimit) {
  WindowSpec w = WindowSpec::make(100, 60'000, 5);
  WindowState s;
  int admitted = 0;
  while (s.fits(w, kT0, 1) && admitted < 1000) {
    s.commit(w, kT0, 1);
    ++admitted;
  }
  EXPECT_EQ(admitted, 5);
}

TEST(Gcra, ReservationsCountAgainstTheLimit) {
  WindowSpec w = WindowSpec::make(10, 60'000, 10);
  WindowState s;
  s.reserved = 9;
  EXPECT_TRUE(s.fits(w, kT0, 1));
  EXPECT_FALSE(s.fits(w, kT0, 2));
  s.reserved = 0;
  EXPECT_TRUE(s.fits(w, kT0, 10));
  EXPECT_FALSE(s.fits(w, kT0, 11)) << "a single request larger than the burst never fits";
}

TEST(Gcra, ManyUnitsNoRoundingDrift) {
  // 1000 per hour: exactly 1000 fit, the 1001st does not, despite 1000 additions of 3.6 s.
  WindowSpec w = WindowSpec::make(1000, 3'600'000, 1000);
  WindowState s;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(s.fits(w, kT0, 1)) << "unit " << i + 1;
    s.commit(w, kT0, 1);
  }
  EXPECT_FALSE(s.fits(w, kT0, 1));
}

}  // namespace
}  // namespace sluice::ratelimit
