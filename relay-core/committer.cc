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
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sluice-commit");  // as top -H and perf show it
    loop();
  });
  return okStatus();
}

void GroupCommitter::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GroupCommitter::submit(std::shared_ptr<const queue::NewMessage> msg, std::string id, asio::any_io_executor ex,
                            Done done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back({std::move(msg), std::move(id), std::move(ex), std::move(done)});
  }
  cv_.notify_one();
}

void GroupCommitter::loop() {
  while (true) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !pending_.empty(); });
      if (pending_.empty() && stop_) return;
      while (!pending_.empty() && batch.size() < maxBatch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    std::vector<const queue::NewMessage*> msgs;
    std::vector<std::string> ids;
    for (auto& it : batch) {
      msgs.push_back(it.msg.get());
      ids.push_back(it.id);
    }
    auto results = queue_->commit(msgs, ids);
    ++batches;
    for (size_t i = 0; i < batch.size(); ++i) {
      Result<std::string> r = results[i] ? Result<std::string>(ids[i]) : Result<std::string>(results[i].error());
      if (results[i]) {
        ++committed;
        if (onCommitted_) onCommitted_(*batch[i].msg, ids[i]);
      } else {
        ++failed;
      }
      asio::post(batch[i].ex, [done = std::move(batch[i].done), r = std::move(r)]() mutable { done(std::move(r)); });
    }
  }
}

}  // namespace sluice::relayd
