// suppression_list.h - policyd's in-memory copy of the suppression list (DESIGN.md: policyd
// sees any change within a second). load() reads the whole store; refresh(), called every
// suppression_poll_interval, applies what any process changed since, by following the store's
// sequence numbers (changesSince), and costs one indexed query when nothing changed.
//
// Invariants:
//  - The list reflects the store as of lastSeq(): every change with seq <= lastSeq() is applied.
//  - When tombstones the list still needed were purged (lastSeq() + 1 < oldestRetainedSeq()), or
//    the store's seq went backwards (a restored backup), refresh() falls back to a full load.
//  - A failed load or refresh leaves the list as it was (a full load builds a new copy and swaps
//    it in), so a broken store never empties the list policyd enforces.
//  - Addresses and scopes are kept lower-cased; lookups are case-insensitive.
//  - Storage: entries live in fixed chunks (never moved); an open-addressing table of (entry
//    index, 32-bit hash) pairs maps each address to a chain of its entries (one per scope).
//    About 200 bytes per entry for typical addresses.
//  - A pointer returned by find() stays valid until the next load() or refresh().
// Single-threaded: owned by policyd's event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace sluice {

class SuppressionList {
 public:
  SuppressionList() = default;
  SuppressionList(SuppressionList&&) noexcept = default;
  SuppressionList& operator=(SuppressionList&&) noexcept = default;

  // Full load from the store; remembers the highest seq seen.
  Status load(store::SuppressionStore& store);
  // Applies the changes made since the last load/refresh (any process may have written them);
  // falls back to a full load when tombstones it needs were purged. Returns how many changes
  // applied (after a full load: how many entries were loaded).
  Result<size_t> refresh(store::SuppressionStore& store);
  // The entry that suppresses `recipient` for mail from `senderDomain` at time nowMs: a global
  // entry (preferred) or one scoped to senderDomain, not expired (expiresMs == 0 or > nowMs).
  // Case-insensitive. nullptr when the recipient is not suppressed. O(1) average.
  const store::SuppressionEntry* find(std::string_view recipient, std::string_view senderDomain,
                                      int64_t nowMs) const;
  size_t size() const { return size_; }
  int64_t lastSeq() const { return lastSeq_; }
  // How many full loads happened (load() calls and refresh() fallbacks), for stats and tests.
  uint64_t fullLoads() const { return fullLoads_; }

 private:
  static constexpr uint32_t kNone = 0xffffffffu;
  static constexpr unsigned kChunkBits = 12;
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;

  store::SuppressionEntry& at(uint32_t i) { return chunks_[i >> kChunkBits][i & (kChunkSize - 1)]; }
  const store::SuppressionEntry& at(uint32_t i) const {
    return chunks_[i >> kChunkBits][i & (kChunkSize - 1)];
  }
  Status loadOnce(store::SuppressionStore& store, bool* raced);
  Status applyPages(store::SuppressionStore& store, size_t* applied, bool checkPurge, bool* purged);
  void apply(store::SuppressionChange&& change);
  void upsert(store::SuppressionEntry&& entry);
  void erase(std::string_view address, std::string_view scope);
  void reserve(size_t entries);
  struct Slot {
    uint32_t head = kNone;  // first entry of the address's chain; kNone = empty slot
    uint32_t hash = 0;      // low 32 bits of the address's hash: home slot and fingerprint
  };
  // The slot holding the address's chain, or npos. hash is hashOf(address).
  size_t findSlot(std::string_view address, uint32_t hash) const;
  void insertSlot(uint32_t head, uint32_t hash);
  void eraseSlot(size_t slot);
  void rehash(size_t slotCount);
  uint32_t allocEntry();
  void freeEntry(uint32_t i);

  std::vector<std::unique_ptr<store::SuppressionEntry[]>> chunks_;
  std::vector<uint32_t> next_;   // next entry with the same address, kNone at the chain's end
  std::vector<uint32_t> free_;   // freed entry indices, reused first
  uint32_t used_ = 0;            // entry indices handed out so far (high-water mark)
  std::vector<Slot> slots_;      // power-of-two open-addressing table, linear probing
  size_t heads_ = 0;             // occupied slots (distinct addresses)
  size_t size_ = 0;              // entries
  int64_t lastSeq_ = 0;
  uint64_t fullLoads_ = 0;
};

}  // namespace sluice
