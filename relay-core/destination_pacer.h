// destination_pacer.h - delivery.destination_rate: spaces the messages sent to each destination.
//
// A destination is what the scheduler's concurrency limit counts too: the MX host list of the
// recipient domains (delivery.h), so one provider hosting many domains gets the rate once, shared
// by every agent and every domain rolled up into it. reserve() books the destination's next free
// slot - now when it has been idle (no burst is saved up), else one interval after the slot booked
// last - and says when that is. Times are steady-clock microseconds and the schedule is kept in
// doubles: any rate from a few an hour to 100,000 a second is exact and does not drift (the old
// integer 1000/rate milliseconds was 0 - no limit - above 1000/s and undefined below 1/s).
//
// Memory: one entry per destination; past kMaxEntries, the idle ones (whose next slot has come)
// are dropped, which loses nothing.
// Threading: the delivery thread only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>

namespace sluice::relayd {

class DestinationPacer {
 public:
  static constexpr size_t kMaxEntries = 10000;

  // The steady-clock microsecond at which the next message to `destination` may be sent (>= nowUs),
  // booked; `ratePerSecond` <= 0: no limit (nowUs, nothing booked).
  int64_t reserve(const std::string& destination, double ratePerSecond, int64_t nowUs) {
    if (ratePerSecond <= 0) return nowUs;
    if (next_.size() >= kMaxEntries) prune(nowUs);
    double& next = next_[destination];
    double at = std::max(static_cast<double>(nowUs), next);
    next = at + 1e6 / ratePerSecond;
    return static_cast<int64_t>(std::ceil(at));
  }
  size_t size() const { return next_.size(); }

 private:
  void prune(int64_t nowUs) {
    for (auto it = next_.begin(); it != next_.end();) {
      it = it->second <= static_cast<double>(nowUs) ? next_.erase(it) : std::next(it);
    }
  }

  std::map<std::string, double> next_;  // destination -> when its next slot begins
};

}  // namespace sluice::relayd
