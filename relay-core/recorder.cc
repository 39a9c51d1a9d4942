// recorder.cc - see recorder.h.
#include "recorder.h"

#include <pthread.h>

#include "base/log.h"

namespace sluice::relayd {

OutcomeRecorder::OutcomeRecorder(queue::QueueOptions options, std::vector<events::WebhookEndpoint> webhooks,
                                 size_t maxBatch)
    : options_(std::move(options)), webhooks_(std::move(webhooks)), maxBatch_(maxBatch) {}

OutcomeRecorder::~OutcomeRecorder() { stop(); }

Status OutcomeRecorder::start() {
  auto q = queue::Queue::open(options_);
  if (!q) return q.error();
  queue_ = std::move(q.value());
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sluice-record");  // as top -H and perf show it
    loop();
  });
  return okStatus();
}

void OutcomeRecorder::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutcomeRecorder::submit(std::vector<queue::Queue::Outcome> outcomes,
                             std::vector<std::optional<events::Event>> events,
                             std::shared_ptr<const Followups> followups, asio::any_io_executor ex, Done done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back({std::move(outcomes), std::move(events), std::move(followups), std::move(ex), std::move(done)});
  }
  cv_.notify_one();
}

void OutcomeRecorder::forget(std::vector<queue::Queue::PendingSuppression> done) {
  if (done.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    forgets_.insert(forgets_.end(), std::make_move_iterator(done.begin()), std::make_move_iterator(done.end()));
  }
  cv_.notify_one();
}

void OutcomeRecorder::claim(int64_t nowMs, size_t limit, size_t perDomainCap, asio::any_io_executor ex, Claimed done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    claims_.push_back({nowMs, limit, perDomainCap, std::move(ex), std::move(done)});
  }
  cv_.notify_one();
}

size_t OutcomeRecorder::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return pending_.size();
}

void OutcomeRecorder::setWebhooks(std::vector<events::WebhookEndpoint> webhooks) {
  std::lock_guard<std::mutex> l(mu_);
  webhooks_ = std::move(webhooks);
}

Status OutcomeRecorder::recordItems(const std::vector<Item*>& items,
                                    const std::vector<events::WebhookEndpoint>& webhooks) {
  std::vector<queue::Queue::Outcome> all;
  queue::Queue::Followups follow;
  bool anyEvent = false;
  for (const Item* it : items) {
    all.insert(all.end(), it->outcomes.begin(), it->outcomes.end());
    for (const auto& ev : it->events) anyEvent = anyEvent || ev.has_value();
    if (!it->followups) continue;
    for (size_t i = 0; i < it->followups->messages.size(); ++i) {
      follow.messages.push_back(&it->followups->messages[i]);
      follow.ids.push_back(it->followups->ids[i]);
    }
    follow.suppressions.insert(follow.suppressions.end(), it->followups->suppressions.begin(),
                               it->followups->suppressions.end());
  }
  std::function<Status(sqlite3*)> extra;
  if (!webhooks.empty() && anyEvent) {
    extra = [&](sqlite3* db) -> Status {
      for (const Item* it : items) {
        for (const auto& ev : it->events) {
          if (!ev) continue;
          if (auto st = events::EventOutbox::enqueueIn(db, *ev, webhooks); !st) return st;
        }
      }
      return okStatus();
    };
  }
  bool anyFollowup = !follow.messages.empty() || !follow.suppressions.empty();
  auto done = queue_->record(all, extra, anyFollowup ? &follow : nullptr);
  if (!done) return done.error();
  return okStatus();
}

void OutcomeRecorder::loop() {
  while (true) {
    std::vector<Item> batch;
    std::deque<Claim> claims;
    std::vector<queue::Queue::PendingSuppression> forgets;
    std::vector<events::WebhookEndpoint> webhooks;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !pending_.empty() || !claims_.empty() || !forgets_.empty(); });
      forgets.swap(forgets_);
      if (!forgets.empty()) {
        l.unlock();
        if (auto st = queue_->forgetSuppressions(forgets); !st) {
          logWarning("delivery: pending suppressions: " + st.message() + " (added again at the next start)");
        }
        l.lock();
      }
      if (pending_.empty() && stop_) {
        claims.swap(claims_);  // answered (empty): the scheduler is stopping
        l.unlock();
        for (auto& c : claims) {
          asio::post(c.ex, [done = std::move(c.done)]() mutable { done(std::vector<queue::Queue::Due>()); });
        }
        return;
      }
      while (!pending_.empty() && batch.size() < maxBatch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      claims.swap(claims_);
      if (!batch.empty()) webhooks = webhooks_;
    }
    // Outcomes first: what they free is what the claims may take next.
    if (batch.empty()) {
      for (auto& c : claims) {
        auto r = queue_->claimDue(c.nowMs, c.limit, c.perDomainCap);
        asio::post(c.ex, [done = std::move(c.done), r = std::move(r)]() mutable { done(std::move(r)); });
      }
      continue;
    }
    std::vector<Item*> all;
    for (auto& it : batch) all.push_back(&it);
    std::vector<Status> results(batch.size(), okStatus());
    Status st = recordItems(all, webhooks);
    ++batches;
    if (!st && batch.size() > 1) {
      // One bad job must not fail the others: each on its own.
      logWarning("delivery: recording " + std::to_string(batch.size()) + " outcomes at once failed (" + st.message() +
                 "); recording them one by one");
      for (size_t i = 0; i < batch.size(); ++i) results[i] = recordItems({&batch[i]}, webhooks);
    } else if (!st) {
      results[0] = st;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      ++jobs;
      if (!results[i]) ++failed;
      asio::post(batch[i].ex, [done = std::move(batch[i].done), r = std::move(results[i])]() mutable { done(std::move(r)); });
    }
    for (auto& c : claims) {
      auto r = queue_->claimDue(c.nowMs, c.limit, c.perDomainCap);
      asio::post(c.ex, [done = std::move(c.done), r = std::move(r)]() mutable { done(std::move(r)); });
    }
  }
}

}  // namespace sluice::relayd
