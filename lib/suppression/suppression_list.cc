// suppression_list.cc - see suppression_list.h. The address table uses linear probing with
// backward-shift deletion (no tombstone slots), kept at most half full.
#include "suppression/suppression_list.h"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "base/strings.h"

namespace sluice {

namespace {

constexpr size_t kPageSize = 10'000;        // changes read per query
constexpr size_t kStackAddress = 512;       // longer recipients are lower-cased on the heap
constexpr size_t kNpos = static_cast<size_t>(-1);
constexpr int kLoadAttempts = 3;

uint32_t hashOf(std::string_view s) { return static_cast<uint32_t>(std::hash<std::string_view>{}(s)); }

size_t slotsFor(size_t entries) {
  size_t n = 16;
  while (n < entries * 2) n <<= 1;
  return n;
}

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

}  // namespace

Status SuppressionList::load(store::SuppressionStore& store) {
  for (int attempt = 1;; ++attempt) {
    SuppressionList fresh;
    bool raced = false;
    if (auto s = fresh.loadOnce(store, &raced); !s) return s;
    // Tombstones were purged while we paged through: a deletion may have been missed.
    if (raced && attempt < kLoadAttempts) continue;
    fresh.fullLoads_ = fullLoads_ + 1;
    *this = std::move(fresh);
    return okStatus();
  }
}

Status SuppressionList::loadOnce(store::SuppressionStore& store, bool* raced) {
  auto seq = store.currentSeq();
  if (!seq) return seq.error();
  auto oldest = store.oldestRetainedSeq();
  if (!oldest) return oldest.error();
  auto count = store.count();
  if (!count) return count.error();
  reserve(*count);
  size_t applied = 0;
  bool purged = false;
  if (auto s = applyPages(store, &applied, false, &purged); !s) return s;
  auto oldestAfter = store.oldestRetainedSeq();
  if (!oldestAfter) return oldestAfter.error();
  *raced = *oldestAfter != *oldest;
  // Every change up to `seq` was committed before we started, so we have seen it (or its row's
  // later version); seqs beyond the last row read may belong to purged tombstones.
  lastSeq_ = std::max(lastSeq_, *seq);
  return okStatus();
}

Result<size_t> SuppressionList::refresh(store::SuppressionStore& store) {
  auto seq = store.currentSeq();
  if (!seq) return seq.error();
  if (*seq == lastSeq_) return size_t{0};
  if (*seq > lastSeq_) {
    size_t applied = 0;
    bool purged = false;
    if (auto s = applyPages(store, &applied, true, &purged); !s) return s.error();
    if (!purged) {
      lastSeq_ = std::max(lastSeq_, *seq);
      return applied;
    }
  }
  // Needed tombstones were purged, or the store went backwards (a restored backup).
  if (auto s = load(store); !s) return s.error();
  return size_;
}

// Applies changes after lastSeq_, a page at a time, advancing lastSeq_ as it goes. With
// checkPurge, each page is validated after it is read: if tombstones after lastSeq_ were purged
// before the read, the page may lack deletions, so *purged is set and nothing more is applied.
Status SuppressionList::applyPages(store::SuppressionStore& store, size_t* applied, bool checkPurge,
                                   bool* purged) {
  while (true) {
    auto page = store.changesSince(lastSeq_, kPageSize);
    if (!page) return page.error();
    if (checkPurge) {
      auto oldest = store.oldestRetainedSeq();
      if (!oldest) return oldest.error();
      if (lastSeq_ + 1 < *oldest) {
        *purged = true;
        return okStatus();
      }
    }
    for (auto& c : *page) {
      int64_t seq = c.seq;
      apply(std::move(c));
      lastSeq_ = seq;
      ++*applied;
    }
    if (page->size() < kPageSize) return okStatus();
  }
}

void SuppressionList::apply(store::SuppressionChange&& change) {
  toLowerInPlace(change.entry.address);
  toLowerInPlace(change.entry.scope);
  if (change.deleted) {
    erase(change.entry.address, change.entry.scope);
  } else {
    upsert(std::move(change.entry));
  }
}

const store::SuppressionEntry* SuppressionList::find(std::string_view recipient,
                                                     std::string_view senderDomain,
                                                     int64_t nowMs) const {
  if (size_ == 0 || recipient.empty()) return nullptr;
  char buf[kStackAddress];
  std::string heap;
  std::string_view key;
  if (recipient.size() <= sizeof buf) {
    for (size_t i = 0; i < recipient.size(); ++i) buf[i] = lowerAscii(recipient[i]);
    key = std::string_view(buf, recipient.size());
  } else {
    heap = toLower(recipient);
    key = heap;
  }
  size_t slot = findSlot(key, hashOf(key));
  if (slot == kNpos) return nullptr;
  const store::SuppressionEntry* scoped = nullptr;
  for (uint32_t i = slots_[slot].head; i != kNone; i = next_[i]) {
    const auto& e = at(i);
    if (e.expiresMs != 0 && e.expiresMs <= nowMs) continue;
    if (e.scope.empty()) return &e;
    if (scoped == nullptr && !senderDomain.empty() && iequals(e.scope, senderDomain)) scoped = &e;
  }
  return scoped;
}

void SuppressionList::upsert(store::SuppressionEntry&& entry) {
  uint32_t hash = hashOf(entry.address);
  size_t slot = findSlot(entry.address, hash);
  if (slot == kNpos) {
    uint32_t i = allocEntry();
    at(i) = std::move(entry);
    next_[i] = kNone;
    insertSlot(i, hash);
    ++size_;
    return;
  }
  uint32_t head = slots_[slot].head;
  for (uint32_t i = head; i != kNone; i = next_[i]) {
    if (at(i).scope == entry.scope) {
      at(i) = std::move(entry);
      return;
    }
  }
  uint32_t i = allocEntry();
  at(i) = std::move(entry);
  next_[i] = next_[head];
  next_[head] = i;
  ++size_;
}

void SuppressionList::erase(std::string_view address, std::string_view scope) {
  size_t slot = findSlot(address, hashOf(address));
  if (slot == kNpos) return;
  uint32_t prev = kNone;
  for (uint32_t i = slots_[slot].head; i != kNone; prev = i, i = next_[i]) {
    if (at(i).scope != scope) continue;
    uint32_t after = next_[i];
    if (prev != kNone) {
      next_[prev] = after;
    } else if (after != kNone) {
      slots_[slot].head = after;  // same address, so the same slot
    } else {
      eraseSlot(slot);
    }
    freeEntry(i);
    --size_;
    return;
  }
}

void SuppressionList::reserve(size_t entries) {
  chunks_.reserve(entries / kChunkSize + 1);
  next_.reserve(entries);
  if (slotsFor(entries) > slots_.size()) rehash(slotsFor(entries));
}

size_t SuppressionList::findSlot(std::string_view address, uint32_t hash) const {
  if (slots_.empty()) return kNpos;
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.head == kNone) return kNpos;
    if (s.hash == hash && at(s.head).address == address) return i;
  }
}

void SuppressionList::insertSlot(uint32_t head, uint32_t hash) {
  if ((heads_ + 1) * 2 > slots_.size()) rehash(std::max<size_t>(16, slots_.size() * 2));
  size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].head != kNone) i = (i + 1) & mask;
  slots_[i] = Slot{head, hash};
  ++heads_;
}

// Backward-shift deletion: later members of the probe run move up into the hole when their home
// slot does not lie cyclically in (hole, their position].
void SuppressionList::eraseSlot(size_t slot) {
  size_t mask = slots_.size() - 1;
  size_t hole = slot;
  for (size_t j = (hole + 1) & mask; slots_[j].head != kNone; j = (j + 1) & mask) {
    size_t home = slots_[j].hash & mask;
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = Slot{};
  --heads_;
}

void SuppressionList::rehash(size_t slotCount) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(slotCount, Slot{});
  size_t mask = slotCount - 1;
  for (const Slot& s : old) {
    if (s.head == kNone) continue;
    size_t i = s.hash & mask;
    while (slots_[i].head != kNone) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

uint32_t SuppressionList::allocEntry() {
  if (!free_.empty()) {
    uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  if ((used_ >> kChunkBits) == chunks_.size()) {
    chunks_.push_back(std::make_unique<store::SuppressionEntry[]>(kChunkSize));
  }
  next_.push_back(kNone);
  return used_++;
}

void SuppressionList::freeEntry(uint32_t i) {
  store::SuppressionEntry gone(std::move(at(i)));  // releases the strings' heap memory
  at(i) = store::SuppressionEntry{};
  next_[i] = kNone;
  free_.push_back(i);
}

}  // namespace sluice
