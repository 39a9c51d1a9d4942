// committer.h - the group commit of sluice-relayd's intake: SMTP sessions hand over finished
// messages, one thread makes them durable in batches (Queue::commit: the spool files, one syncfs,
// one index transaction), and each session gets its queue id - or the error - only after the
// commit that covers it. Many sessions share one flush; none is answered before it.
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "queue/queue.h"

namespace sluice::relayd {

class GroupCommitter {
 public:
  // done(id or error) runs on `ex` (the session's io_context).
  using Done = std::function<void(Result<std::string>)>;
  GroupCommitter(queue::QueueOptions options, size_t maxBatch);
  ~GroupCommitter();
  Status start();
  void stop();  // commits what is pending, then joins
  // `id`: the queue id the session chose (Queue::newId) and already wrote into Received:.
  void submit(std::shared_ptr<const queue::NewMessage> msg, std::string id, asio::any_io_executor ex, Done done);

  // Runs on the committer's thread after each durable message (events, waking the delivery).
  using OnCommitted = std::function<void(const queue::NewMessage&, const std::string& id)>;
  void setOnCommitted(OnCommitted f) { onCommitted_ = std::move(f); }

  std::atomic<uint64_t> batches{0}, committed{0}, failed{0};

 private:
  struct Item {
    std::shared_ptr<const queue::NewMessage> msg;
    std::string id;
    asio::any_io_executor ex;
    Done done;
  };
  void loop();

  queue::QueueOptions options_;
  size_t maxBatch_;
  std::unique_ptr<queue::Queue> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> pending_;
  bool stop_ = false;
  OnCommitted onCommitted_;
  std::thread thread_;
};

}  // namespace sluice::relayd
