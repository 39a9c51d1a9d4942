// committer.h - the group commit of sluice-relayd's intake: SMTP sessions hand over finished
// messages, and two threads make them durable as a pipeline: the writer (sluice-write) writes
// each message's spool file as it comes (Queue::writeSpool), the committer (sluice-commit) takes
// every written one and makes them durable together (Queue::commitWritten: one syncfs, one index
// transaction). Each session gets its queue id - or the error - only after the commit that covers
// it; many sessions share one flush, none is answered before it. While one batch is being flushed
// the writer copies the next messages into the page cache, so the copy (most of the CPU at 100 KB
// a message) and the disk's flush overlap instead of taking turns.
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
  void stop();  // writes and commits what is pending, then joins
  // `id`: the queue id the session chose (Queue::newId) and already wrote into Received:.
  void submit(std::shared_ptr<const queue::NewMessage> msg, std::string id, asio::any_io_executor ex, Done done);

  // Runs on the committer's thread after each durable message (events, waking the delivery);
  // `suppressed` as the lookup below answered for it (empty without one).
  using OnCommitted = std::function<void(const queue::NewMessage&, const std::string& id,
                                         const std::vector<std::string>& suppressed)>;
  void setOnCommitted(OnCommitted f) { onCommitted_ = std::move(f); }
  // Suppression at queue time: runs on the writer's thread for each message before its spool
  // file is written; per recipient the reply of one on the suppression list, "" for the others
  // (or an empty vector: none). Those recipients are queued final (Queue::commitWritten).
  using SuppressionLookup = std::function<std::vector<std::string>(const queue::NewMessage&)>;
  void setSuppressionLookup(SuppressionLookup f) { lookup_ = std::move(f); }

  std::atomic<uint64_t> batches{0}, committed{0}, failed{0};

 private:
  struct Item {
    std::shared_ptr<const queue::NewMessage> msg;
    std::string id;
    asio::any_io_executor ex;
    Done done;
    std::vector<std::string> suppressed;  // per recipient (SuppressionLookup)
  };
  void writeLoop();
  void commitLoop();
  static void answer(Item& it, Result<std::string> r);

  queue::QueueOptions options_;
  size_t maxBatch_;
  std::unique_ptr<queue::Queue> queue_;
  std::mutex mu_;
  std::condition_variable cv_;        // pending_ has work, or stop
  std::condition_variable written_;   // ready_ has work, or the writer is done
  std::deque<Item> pending_;          // submitted, not yet written
  std::deque<Item> ready_;            // spool file written, not yet committed
  bool stop_ = false;
  bool writerDone_ = false;
  OnCommitted onCommitted_;
  SuppressionLookup lookup_;
  std::thread writer_, thread_;
};

}  // namespace sluice::relayd
