// gcra.cc - see gcra.h.
#include "ratelimit/gcra.h"

#include <algorithm>
#include <cmath>

namespace sluice::ratelimit {

// Floating-point slack: sums of T over many units may exceed burst*T by rounding alone.
static constexpr double kSlackUs = 1e-3;

WindowSpec WindowSpec::make(uint64_t limit, int64_t perMs, uint64_t burst) {
  WindowSpec w;
  w.emissionUs = static_cast<double>(perMs) * 1000.0 / static_cast<double>(limit == 0 ? 1 : limit);
  w.toleranceUs = w.emissionUs * static_cast<double>(burst == 0 ? limit : burst);
  return w;
}

bool WindowState::fits(const WindowSpec& w, double nowUs, uint64_t units) const {
  double base = std::max(tatUs, nowUs);
  double after = base + static_cast<double>(reserved + units) * w.emissionUs;
  return after - nowUs <= w.toleranceUs + kSlackUs;
}

void WindowState::commit(const WindowSpec& w, double nowUs, uint64_t units) {
  tatUs = std::max(tatUs, nowUs) + static_cast<double>(units) * w.emissionUs;
}

uint64_t WindowState::used(const WindowSpec& w, double nowUs) const {
  if (tatUs <= nowUs || w.emissionUs <= 0) return 0;
  return static_cast<uint64_t>(std::ceil((tatUs - nowUs) / w.emissionUs - 1e-9));
}

double WindowState::retryAfterUs(const WindowSpec& w, double nowUs, uint64_t units) const {
  double base = std::max(tatUs, nowUs);
  double after = base + static_cast<double>(reserved + units) * w.emissionUs;
  return std::max(0.0, after - nowUs - w.toleranceUs);
}

}  // namespace sluice::ratelimit
