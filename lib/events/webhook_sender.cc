// webhook_sender.cc - see webhook_sender.h.
#include "events/webhook_sender.h"

#include <curl/curl.h>

#include <chrono>

#include "base/log.h"

namespace sluice::events {
namespace {

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

struct WebhookSender::Curl {
  CURL* h = nullptr;
  Curl() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    h = curl_easy_init();
  }
  ~Curl() {
    if (h) curl_easy_cleanup(h);
  }
};

WebhookSender::WebhookSender(std::string outboxPath, std::vector<WebhookEndpoint> endpoints, WebhookOptions options)
    : path_(std::move(outboxPath)), endpoints_(std::move(endpoints)), options_(options) {}

WebhookSender::~WebhookSender() { stop(); }

Status WebhookSender::start() {
  auto o = EventOutbox::open(path_);
  if (!o) return o.error();
  outbox_ = std::move(o.value());
  curl_ = std::make_unique<Curl>();
  if (!curl_->h) return makeError("webhooks: curl_easy_init failed");
  thread_ = std::thread([this] { loop(); });
  return okStatus();
}

void WebhookSender::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WebhookSender::wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void WebhookSender::reconfigure(std::vector<WebhookEndpoint> endpoints, WebhookOptions options) {
  {
    std::lock_guard<std::mutex> l(mu_);
    next_.emplace(std::move(endpoints), options);
    woken_ = true;
  }
  cv_.notify_all();
}

int64_t WebhookSender::backoff(int attempts) {
  int64_t d = options_.initialBackoffMs;
  for (int i = 0; i < attempts && d < options_.maxBackoffMs; ++i) d *= 2;
  d = std::min(d, options_.maxBackoffMs);
  std::uniform_int_distribution<int64_t> jitter(-d / 10, d / 10);
  return std::max<int64_t>(1, d + jitter(rng_));
}

bool WebhookSender::post(const EventOutbox::Item& item, int64_t nowMs, std::string* error) {
  const WebhookEndpoint* ep = nullptr;
  for (const auto& e : endpoints_) {
    if (e.url == item.url) ep = &e;
  }
  if (ep == nullptr) {
    *error = "endpoint no longer configured";
    return false;
  }
  CURL* h = curl_->h;
  curl_easy_reset(h);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, ("X-Sluice-Event-Id: " + item.eventId).c_str());
  headers = curl_slist_append(headers, ("X-Sluice-Signature: " + webhookSignature(ep->secret, nowMs / 1000, item.body)).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(h, CURLOPT_URL, item.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, item.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(item.body.size()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeoutMs));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(options_.timeoutMs, 5000)));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-relayd/" SLUICE_VERSION);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    *error = curl_easy_strerror(rc);
    return false;
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code > 299) {
    *error = "HTTP " + std::to_string(code);
    return false;
  }
  return true;
}

Result<size_t> WebhookSender::runOnce(int64_t nowMs) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (next_) {
      endpoints_ = std::move(next_->first);
      options_ = next_->second;
      next_.reset();
    }
  }
  if (endpoints_.empty()) return size_t{0};
  if (!outbox_) {
    auto o = EventOutbox::open(path_);
    if (!o) return o.error();
    outbox_ = std::move(o.value());
    curl_ = std::make_unique<Curl>();
  }
  auto items = outbox_->due(nowMs, 100);
  if (!items) return items.error();
  for (const auto& it : items.value()) {
    std::string error;
    if (post(it, nowMs, &error)) {
      ++delivered;
      if (auto st = outbox_->delivered(it.row, nowMs); !st) logError(st.message());
      continue;
    }
    ++failedAttempts;
    if (nowMs - it.createdMs >= options_.maxAgeMs) {
      ++dead;
      logError("webhook " + it.url + ": event " + it.eventId + " given up after " + std::to_string(it.attempts + 1) +
               " attempts: " + error);
      if (auto st = outbox_->giveUp(it.row, error); !st) logError(st.message());
    } else {
      int64_t next = nowMs + backoff(it.attempts);
      logWarning("webhook " + it.url + ": event " + it.eventId + ": " + error + "; retry in " +
                 std::to_string((next - nowMs) / 1000) + "s");
      if (auto st = outbox_->retry(it.row, next, error); !st) logError(st.message());
    }
  }
  return items.value().size();
}

void WebhookSender::loop() {
  int64_t lastPurge = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (stop_) return;
    }
    int64_t now = wallMs();
    auto n = runOnce(now);
    if (!n) logError("webhooks: " + n.message());
    if (now - lastPurge > 3600 * 1000) {
      lastPurge = now;
      (void)outbox_->purgeDelivered(now - options_.retentionMs);
    }
    if (n && n.value() >= 100) continue;  // more due right now
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::milliseconds(options_.pollMs), [this] { return stop_ || woken_; });
    woken_ = false;
    if (stop_) return;
  }
}

}  // namespace sluice::events
