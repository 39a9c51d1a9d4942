// queue_fill STATE_DIR COUNT [BATCH] [SIZE] [DOMAINS] - adds COUNT messages to the relayd queue in
// STATE_DIR (relayd must not be running), as if each had been accepted and had one failed
// delivery attempt: Queue::commit in batches of BATCH (default 1000; one syncfs and one index
// transaction each, as the intake does), then Queue::record of a 451 for every recipient, with
// its next attempt 1 to 4 hours from now (so none is due during the benchmark). One recipient
// per message, at one of DOMAINS (default 1000) domains dN.deferred.example; SIZE bytes of
// content (default 1024). Prints what it did and the rate.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "queue/queue.h"

using sluice::queue::NewMessage;
using sluice::queue::NewRecipient;
using sluice::queue::Queue;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: queue_fill STATE_DIR COUNT [BATCH] [SIZE] [DOMAINS]\n");
    return 2;
  }
  std::string dir = argv[1];
  long count = std::atol(argv[2]);
  long batchSize = argc > 3 ? std::atol(argv[3]) : 1000;
  long size = argc > 4 ? std::atol(argv[4]) : 1024;
  long domains = argc > 5 ? std::atol(argv[5]) : 1000;
  sluice::queue::QueueOptions o;
  o.stateDir = dir;
  auto q = Queue::open(o);
  if (!q) {
    std::fprintf(stderr, "queue_fill: %s\n", q.message().c_str());
    return 1;
  }
  std::mt19937_64 rng(12345);
  auto t0 = std::chrono::steady_clock::now();
  long done = 0;
  std::string body;
  while (body.size() + 2 < static_cast<size_t>(size)) body += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
  while (done < count) {
    long n = std::min(batchSize, count - done);
    std::vector<NewMessage> msgs(static_cast<size_t>(n));
    std::vector<const NewMessage*> ptrs;
    std::vector<std::string> ids;
    for (long i = 0; i < n; ++i) {
      long k = done + i;
      NewMessage& m = msgs[static_cast<size_t>(i)];
      m.sender = "bench@example.com";
      std::string rcpt = "u" + std::to_string(k) + "@d" + std::to_string(k % domains) + ".deferred.example";
      m.recipients.push_back(NewRecipient{rcpt, "", ""});
      m.messageId = "<fill" + std::to_string(k) + "@example.com>";
      m.content = "From: bench@example.com\r\nTo: " + rcpt + "\r\nSubject: backlog " + std::to_string(k) +
                  "\r\nMessage-ID: " + m.messageId + "\r\n\r\n";
      m.content += body.substr(0, static_cast<size_t>(std::max(0L, size - static_cast<long>(m.content.size()))));
      m.body = "7BIT";
      m.clientAddress = "127.0.0.1";
      m.helo = "fill";
      ptrs.push_back(&m);
      ids.push_back(Queue::newId());
    }
    auto st = q.value()->commit(ptrs, ids);
    for (const auto& s : st) {
      if (!s) {
        std::fprintf(stderr, "queue_fill: commit: %s\n", s.message().c_str());
        return 1;
      }
    }
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    std::uniform_int_distribution<int64_t> when(3600 * 1000LL, 4 * 3600 * 1000LL);
    std::vector<Queue::Outcome> out;
    for (long i = 0; i < n; ++i) {
      long k = done + i;
      Queue::Outcome oc;
      oc.messageId = ids[static_cast<size_t>(i)];
      oc.index = 0;
      oc.state = "deferred";
      oc.reply = "451 4.7.1 d" + std::to_string(k % domains) + ".deferred.example: try again later";
      oc.nextAttemptMs = now + when(rng);
      oc.attempted = true;
      oc.mx = "mx.d" + std::to_string(k % domains) + ".deferred.example";
      oc.ip = "127.0.0.9";
      oc.tls = "policy=may none";
      out.push_back(std::move(oc));
    }
    auto r = q.value()->record(out);
    if (!r) {
      std::fprintf(stderr, "queue_fill: record: %s\n", r.message().c_str());
      return 1;
    }
    done += n;
    if (done % 100000 == 0 || done == count) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "queue_fill: %ld/%ld deferred messages (%.0f/s)\n", done, count, done / s);
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%ld %.1f\n", done, s);
  return 0;
}
