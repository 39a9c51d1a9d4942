// gcra.h - the Generic Cell Rate Algorithm for one window, with reservations.
//
// A window allows `limit` units per `per`, and up to `burst` units at once. State is one number,
// the theoretical arrival time (TAT): the time at which the window would be empty again if no
// more units came. A request for n units fits when
//     max(TAT, now) + (reserved + n) * T - now <= burst * T      where T = per / limit,
// i.e. everything already counted plus everything reserved plus n fits in the burst. Reserved
// units are held by transactions that have not finished yet (RCPT seen, END-OF-MESSAGE not yet):
// commit() turns them into counted units, release() gives them back.
// Times are microseconds since the epoch, as doubles (exact to well below 1 us for 2^53 us).
#pragma once

#include <cstdint>

namespace sluice::ratelimit {

struct WindowSpec {
  double emissionUs = 0;   // T
  double toleranceUs = 0;  // burst * T
  static WindowSpec make(uint64_t limit, int64_t perMs, uint64_t burst);
};

struct WindowState {
  double tatUs = 0;
  uint64_t reserved = 0;

  bool fits(const WindowSpec& w, double nowUs, uint64_t units) const;
  void commit(const WindowSpec& w, double nowUs, uint64_t units);
  // Units counted (not reserved) at nowUs, rounded up: what `limits show` reports as used.
  uint64_t used(const WindowSpec& w, double nowUs) const;
  // Microseconds until `units` more would fit (0 if they fit now).
  double retryAfterUs(const WindowSpec& w, double nowUs, uint64_t units) const;
  // True when the window holds nothing: the state can be forgotten.
  bool idle(double nowUs) const { return reserved == 0 && tatUs <= nowUs; }
};

}  // namespace sluice::ratelimit
