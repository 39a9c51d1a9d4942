// latency_histogram.h - fixed-size log-linear histogram of latencies in nanoseconds.
//
// Values below 128 ns have their own bucket; above, each power of two is split into 64 buckets,
// so a reported percentile is at most 1/64 (1.6 %) below the true value. The array is part of
// the object: recording never allocates, which keeps the load client's hot path free of malloc.
// Values past 2^40 ns (18 minutes) land in the last bucket.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace bench {

class LatencyHistogram {
 public:
  void record(std::uint64_t ns) {
    ++counts_[indexOf(ns)];
    ++total_;
    if (ns > max_) max_ = ns;
  }

  std::uint64_t total() const { return total_; }
  std::uint64_t maxNs() const { return max_; }

  // The lower bound of the bucket holding the q-quantile (0 < q <= 1), in nanoseconds.
  std::uint64_t quantileNs(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (rank >= total_) rank = total_ - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) return lowerBound(i);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 6;  // 64 buckets per power of two
  static constexpr unsigned kMaxShift = 34;
  static constexpr std::size_t kBuckets = (kMaxShift + 2) << kSubBits;

  static std::size_t indexOf(std::uint64_t ns) {
    if (ns < (2u << kSubBits)) return static_cast<std::size_t>(ns);
    unsigned shift = static_cast<unsigned>(std::bit_width(ns)) - 1 - kSubBits;
    if (shift > kMaxShift) return kBuckets - 1;
    return (static_cast<std::size_t>(shift) << kSubBits) + static_cast<std::size_t>(ns >> shift);
  }

  static std::uint64_t lowerBound(std::size_t index) {
    if (index < (2u << kSubBits)) return index;
    std::size_t shift = (index >> kSubBits) - 1;
    std::uint64_t top = (index & ((1u << kSubBits) - 1)) | (1u << kSubBits);
    return top << shift;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace bench
