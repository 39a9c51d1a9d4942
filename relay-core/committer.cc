// committer.cc - see committer.h.
#include "committer.h"

#include <pthread.h>

#include "base/log.h"

namespace sluice::relayd {

GroupCommitter::GroupCommitter(queue::QueueOptions options, size_t maxBatch)
    : options_(std::move(options)), maxBatch_(maxBatch) {}

GroupCommitter::~GroupCommitter() { stop(); }

Status GroupCommitter::start() {
  auto q = queue::Queue::open(options_);
  if (!q) return q.error();
  queue_ = std::move(q.value());
  writer_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sluice-write");  // as top -H and perf show it
    writeLoop();
  });
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sluice-commit");
    commitLoop();
  });
  return okStatus();
}

void GroupCommitter::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (thread_.joinable()) thread_.join();
}

void GroupCommitter::submit(std::shared_ptr<const queue::NewMessage> msg, std::string id, asio::any_io_executor ex,
                            Done done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back({std::move(msg), std::move(id), std::move(ex), std::move(done), {}});
  }
  cv_.notify_one();
}

void GroupCommitter::answer(Item& it, Result<std::string> r) {
  asio::post(it.ex, [done = std::move(it.done), r = std::move(r)]() mutable { done(std::move(r)); });
}

// Writes each submitted message's spool file and hands it to the committer at once.
void GroupCommitter::writeLoop() {
  while (true) {
    Item it;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) {  // stopping, and everything submitted is written
        writerDone_ = true;
        written_.notify_all();
        return;
      }
      it = std::move(pending_.front());
      pending_.pop_front();
    }
    if (lookup_) it.suppressed = lookup_(*it.msg);
    if (Status st = queue_->writeSpool(*it.msg, it.id); !st) {
      ++failed;
      answer(it, st.error());
      continue;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      ready_.push_back(std::move(it));
    }
    written_.notify_one();
  }
}

// Makes every written message durable, as many per flush as have been written meanwhile.
void GroupCommitter::commitLoop() {
  while (true) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      written_.wait(l, [this] { return writerDone_ || !ready_.empty(); });
      if (ready_.empty()) return;  // the writer is done and nothing is left
      while (!ready_.empty() && batch.size() < maxBatch_) {
        batch.push_back(std::move(ready_.front()));
        ready_.pop_front();
      }
    }
    std::vector<const queue::NewMessage*> msgs;
    std::vector<std::string> ids;
    queue::Queue::Suppressed suppressed;
    bool anySuppressed = false;
    for (auto& it : batch) {
      msgs.push_back(it.msg.get());
      ids.push_back(it.id);
      suppressed.push_back(it.suppressed);
      for (const auto& s : it.suppressed) anySuppressed = anySuppressed || !s.empty();
    }
    auto results = queue_->commitWritten(msgs, ids, anySuppressed ? &suppressed : nullptr);
    ++batches;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results[i]) {
        ++committed;
        if (onCommitted_) onCommitted_(*batch[i].msg, ids[i], batch[i].suppressed);
        answer(batch[i], Result<std::string>(ids[i]));
      } else {
        ++failed;
        answer(batch[i], Result<std::string>(results[i].error()));
      }
    }
  }
}

}  // namespace sluice::relayd
