// recorder.h - the group commit of sluice-relayd's delivery outcomes: delivery agents hand over a
// job's outcomes (and the events for the webhook outbox), one thread records them in batches -
// one queue transaction, one synced COMMIT for everything pending, then the spool files of
// finished messages are unlinked - and each job's `done` runs on the delivery's io_context only
// after the commit that covers it.
//
// Why a thread: a synchronous commit per delivered message on the delivery thread blocked every
// agent's SMTP I/O for an fdatasync, an unlink and, while the intake committer held the write
// lock, SQLite's busy sleeps (bench/README.md, relay benchmark). Here those waits cost one batch,
// not one message each, and never the event loop.
//
// The scheduler's claims of due recipients (Queue::claimDue, a write transaction too) run here as
// well, so the delivery thread never waits for the index's write lock.
//
// A batch that fails is retried job by job, so one bad job fails alone. A job whose outcome could
// not be recorded keeps its recipients 'delivering': due again at the next start (a repeated
// delivery, never a lost one - DESIGN.md).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/result.h"
#include "events/event.h"
#include "events/outbox.h"
#include "queue/queue.h"

namespace sluice::relayd {

// What a job's outcomes bring with them and must be durable with them (Queue::record): the DSNs
// relayd generates (new messages, ids[i] for messages[i]) and the suppressions of hard bounces.
struct Followups {
  std::vector<queue::NewMessage> messages;
  std::vector<std::string> ids;
  std::vector<queue::Queue::PendingSuppression> suppressions;
  bool empty() const { return messages.empty() && suppressions.empty(); }
};

class OutcomeRecorder {
 public:
  // ok: the outcomes are committed.
  using Done = std::function<void(Status ok)>;
  OutcomeRecorder(queue::QueueOptions options, std::vector<events::WebhookEndpoint> webhooks, size_t maxBatch = 512);
  ~OutcomeRecorder();
  OutcomeRecorder(const OutcomeRecorder&) = delete;
  OutcomeRecorder& operator=(const OutcomeRecorder&) = delete;

  Status start();
  void stop();  // records what is pending (its `done`s are posted), then joins
  // `events` go into the webhook outbox in the same transaction (nullopt: none for that outcome),
  // and so do `followups` (may be null) into the queue.
  void submit(std::vector<queue::Queue::Outcome> outcomes, std::vector<std::optional<events::Event>> events,
              std::shared_ptr<const Followups> followups, asio::any_io_executor ex, Done done);
  // Suppressions now on the suppression list: removed from the queue index on the recorder's
  // thread (a crash before that adds them again at the next start, which changes nothing).
  void forget(std::vector<queue::Queue::PendingSuppression> done);
  // A reload's endpoints, for the outbox rows of the batches after this call.
  void setWebhooks(std::vector<events::WebhookEndpoint> webhooks);
  size_t pending() const;
  // Queue::claimDue(nowMs, limit, perDomainCap) on the recorder's thread; `done` runs on `ex`.
  using Claimed = std::function<void(Result<std::vector<queue::Queue::Due>>)>;
  void claim(int64_t nowMs, size_t limit, size_t perDomainCap, asio::any_io_executor ex, Claimed done);

  std::atomic<uint64_t> batches{0}, jobs{0}, failed{0};

 private:
  struct Item {
    std::vector<queue::Queue::Outcome> outcomes;
    std::vector<std::optional<events::Event>> events;
    std::shared_ptr<const Followups> followups;
    asio::any_io_executor ex;
    Done done;
  };
  struct Claim {
    int64_t nowMs;
    size_t limit, perDomainCap;
    asio::any_io_executor ex;
    Claimed done;
  };
  void loop();
  Status recordItems(const std::vector<Item*>& items, const std::vector<events::WebhookEndpoint>& webhooks);

  queue::QueueOptions options_;
  std::vector<events::WebhookEndpoint> webhooks_;  // under mu_
  size_t maxBatch_;
  std::unique_ptr<queue::Queue> queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> pending_;
  std::deque<Claim> claims_;
  std::vector<queue::Queue::PendingSuppression> forgets_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::relayd
