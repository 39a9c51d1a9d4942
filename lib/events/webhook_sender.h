// webhook_sender.h - posts the event outbox to the webhook endpoints: one worker thread, its own
// SQLite connection to the outbox, libcurl with keep-alive, a timeout per POST.
//
// Each POST carries the event as JSON and the headers X-Sluice-Event-Id and X-Sluice-Signature
// ("t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>", see event.h). A 2xx answer marks the row
// delivered; anything else (an HTTP error, a refused connection, a timeout) schedules a retry with
// exponential back-off (initial_backoff * 2^attempts, capped, +-10% jitter) until the row is older
// than max_age, when it is marked dead and logged. At least once: receivers de-duplicate on the id.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "base/result.h"
#include "events/outbox.h"

namespace sluice::events {

struct WebhookOptions {
  int64_t timeoutMs = 10000;
  int64_t initialBackoffMs = 5000;
  int64_t maxBackoffMs = 3600 * 1000;
  int64_t maxAgeMs = 3LL * 24 * 3600 * 1000;
  int64_t retentionMs = 7LL * 24 * 3600 * 1000;  // delivered rows kept this long, then purged
  int64_t pollMs = 1000;                          // when nobody wake()s it
};

class WebhookSender {
 public:
  WebhookSender(std::string outboxPath, std::vector<WebhookEndpoint> endpoints, WebhookOptions options);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  Status start();  // opens the outbox, starts the thread
  void stop();     // finishes the POST in flight, then joins
  void wake();     // new rows were enqueued
  // A reload: the endpoints (URLs, secrets, types) and options for the passes after this call.
  // Rows of an endpoint no longer configured fail ("endpoint no longer configured") and are
  // retried until max_age; without any endpoint the sender posts nothing and rows wait.
  void reconfigure(std::vector<WebhookEndpoint> endpoints, WebhookOptions options);

  // One pass over the due rows, on the caller's thread (tests; start() must not have been called).
  Result<size_t> runOnce(int64_t nowMs);

  std::atomic<uint64_t> delivered{0}, failedAttempts{0}, dead{0};

 private:
  struct Curl;
  bool post(const EventOutbox::Item& item, int64_t nowMs, std::string* error);
  void loop();
  int64_t backoff(int attempts);

  std::string path_;
  std::vector<WebhookEndpoint> endpoints_;  // the worker's own copy (runOnce's thread)
  WebhookOptions options_;
  // Set by reconfigure() under mu_, taken over by the next runOnce().
  std::optional<std::pair<std::vector<WebhookEndpoint>, WebhookOptions>> next_;
  std::unique_ptr<EventOutbox> outbox_;
  std::unique_ptr<Curl> curl_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, woken_ = false;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace sluice::events
