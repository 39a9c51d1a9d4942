// relayd.cc - see relayd.h.
#include "relayd.h"

#include <sys/stat.h>

#include <chrono>

#include "base/log.h"
#include "base/privileges.h"
#include "session.h"

namespace sluice::relayd {
namespace {

int64_t monoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* toString(ListenerKind k) {
  switch (k) {
    case ListenerKind::kRelay: return "relay";
    case ListenerKind::kSubmission: return "submission";
    case ListenerKind::kSmtps: return "smtps";
  }
  return "?";
}

Relayd::Relayd(asio::io_context& io, std::shared_ptr<const config::Config> cfg, std::string configPath)
    : io_(io), cfg_(std::move(cfg)), configPath_(std::move(configPath)) {}

Relayd::~Relayd() {
  if (committer_) committer_->stop();
  if (delivery_) delivery_->stop();
}

Result<std::shared_ptr<asio::ssl::context>> Relayd::makeTls(const config::RelaydConfig& c) {
  if (c.tlsCertFile.empty() || c.tlsKeyFile.empty()) return std::shared_ptr<asio::ssl::context>();
  struct stat st {};
  if (::stat(c.tlsKeyFile.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return makeError("relayd.tls_key_file " + c.tlsKeyFile + " is readable by group or others (mode " + modeString(st.st_mode) +
                     "); chmod 600 it");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  asio::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                       asio::ssl::context::single_dh_use,
                   ec);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->use_certificate_chain_file(c.tlsCertFile, ec);
  if (ec) return makeError("relayd.tls_cert_file " + c.tlsCertFile + ": " + ec.message());
  ctx->use_private_key_file(c.tlsKeyFile, asio::ssl::context::pem, ec);
  if (ec) return makeError("relayd.tls_key_file " + c.tlsKeyFile + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return makeError("relayd.tls_key_file " + c.tlsKeyFile + " does not match the certificate");
  }
  return ctx;
}

Status Relayd::bind() {
  const auto& c = cfg_->relayd;
  struct L {
    std::string address;
    ListenerKind kind;
    const char* key;
  };
  for (const L& l : {L{c.listen, ListenerKind::kRelay, "relayd.listen"},
                     L{c.submissionListen, ListenerKind::kSubmission, "relayd.submission_listen"},
                     L{c.smtpsListen, ListenerKind::kSmtps, "relayd.smtps_listen"}}) {
    if (l.address.empty()) continue;
    asio::ip::tcp::endpoint ep;
    if (!net::parseTcpAddress(l.address, &ep)) return makeError(std::string(l.key) + ": not HOST:PORT: " + l.address);
    auto acc = net::openListener(io_, l.address);
    if (!acc) return makeError(std::string(l.key) + ": " + acc.message());
    acceptors_.push_back(std::make_shared<net::Acceptor>(std::move(acc.value())));
    kinds_.push_back(l.kind);
    addresses_.push_back(l.address);
  }
  return okStatus();
}

Status Relayd::start() {
  const auto& c = cfg_->relayd;
  if (acceptors_.empty()) {
    if (auto st = bind(); !st) return st;
  }
  auto tls = makeTls(c);
  if (!tls) return tls.error();
  tls_ = tls.value();
  identities_ = std::make_unique<IdentityMap>(cfg_->identities);
  auto signing = dkim::Signing::build(cfg_->dkim);
  if (!signing) return signing.error();
  signing_ = std::move(signing.value());
  queue::QueueOptions qo;
  qo.stateDir = cfg_->stateDir;
  committer_ = std::make_unique<GroupCommitter>(qo, static_cast<size_t>(c.commitBatch));
  auto log = events::EventLog::open(cfg_->stateDir + "/events.jsonl");
  if (!log) return log.error();
  events_ = std::move(log.value());
  auto users = auth::UserStore::open(cfg_->stateDir, true);  // creates STATE_DIR/server.secret
  if (!users) return users.error();
  users_ = std::move(users.value());
  // Delivery starts before the committer, which wakes it after every commit.
  delivery_ = std::make_unique<Delivery>(cfg_, signing_);
  if (auto st = delivery_->start(); !st) return makeError("delivery: " + st.message());
  {  // opened even without webhooks: a reload may add some
    auto ob = events::EventOutbox::open(cfg_->stateDir + "/queue.db");
    if (!ob) return makeError("webhook outbox: " + ob.message());
    outbox_ = std::move(ob.value());
  }
  committer_->setOnCommitted([this](const queue::NewMessage& m, const std::string& id,
                                    const std::vector<std::string>& suppressed) { onCommitted(m, id, suppressed); });
  // Suppression at queue time (DESIGN.md: the relay listener trusts what the MTA decided at RCPT,
  // but the list may have changed since; the submission listeners' policyd refused the listed
  // recipients at RCPT already). Its own store connection, used on the writer's thread only.
  intakeSuppression_ = std::make_shared<SuppressionCheck>(*cfg_);
  if (auto st = intakeSuppression_->open(); !st) {
    if (!cfg_->store.useRedis()) return st;
    logWarning("intake: " + st.message() + "; queueing without the suppression check until it can be reopened");
  }
  committer_->setSuppressionLookup([check = intakeSuppression_](const queue::NewMessage& m) {
    std::vector<std::string> out;
    size_t at = m.sender.rfind('@');
    std::string senderDomain = at == std::string::npos ? "" : m.sender.substr(at + 1);
    for (size_t k = 0; k < m.recipients.size(); ++k) {
      auto e = check->find(m.recipients[k].address, senderDomain);
      if (!e) continue;
      out.resize(m.recipients.size());
      out[k] = SuppressionCheck::replyFor(*e);
    }
    return out;
  });
  if (auto st = committer_->start(); !st) return st;
  if (!c.policyService.empty()) {
    PolicyClient::Options o;
    o.address = c.policyService;
    o.defaultAction = c.policyDefaultAction.text;
    o.maxIdle = 256;
    policy_ = std::make_shared<PolicyClient>(o);
  }
  for (size_t i = 0; i < acceptors_.size(); ++i) asio::co_spawn(io_, acceptLoop(acceptors_[i], kinds_[i]), asio::detached);
  if (!c.metricsListen.empty()) {
    metrics_ = std::make_unique<net::MetricsServer>(io_, [this] { return renderMetrics(); });
    if (auto st = metrics_->listen(c.metricsListen); !st) {
      logWarning("metrics listener " + st.message() + "; running without metrics (relayd.metrics_listen)");
      metrics_.reset();
    }
  }
  for (size_t i = 0; i < acceptors_.size(); ++i) logInfo("listening on " + addresses_[i] + " (" + toString(kinds_[i]) + ")");
  return okStatus();
}

asio::awaitable<void> Relayd::acceptLoop(std::shared_ptr<net::Acceptor> acc, ListenerKind kind) {
  while (!stopping_) {
    auto [ec, sock] = co_await acc->async_accept(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      logWarning(std::string("accept on ") + toString(kind) + ": " + ec.message());
      asio::steady_timer t(io_, std::chrono::milliseconds(100));  // EMFILE and friends: do not spin
      co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      continue;
    }
    // The generic socket becomes a TCP socket (every relayd listener is TCP).
    asio::ip::tcp::socket tcp(io_);
    auto protocol = sock.local_endpoint().protocol().family() == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
    asio::error_code aec;
    tcp.assign(protocol, sock.release(), aec);
    if (aec) continue;
    std::make_shared<Session>(*this, std::move(tcp), kind)->start();
  }
}

bool Relayd::trusted(const std::optional<IpAddr>& a) const {
  if (!a) return false;
  for (const auto& n : cfg_->relayd.trustedNetworks) {
    if (n.contains(*a)) return true;
  }
  return false;
}

bool Relayd::admit(const std::string& client, std::string* reply) {
  const auto& c = cfg_->relayd;
  if (stopping_) {
    *reply = "421 4.3.2 " + c.hostname + " Service shutting down, try again later\r\n";
    return false;
  }
  if (active_ >= c.maxConnections) {
    *reply = "421 4.3.2 " + c.hostname + " Too many connections, try again later\r\n";
    logWarning("refused connection from " + client + ": " + std::to_string(active_) + " sessions (relayd.max_connections)");
    return false;
  }
  int& n = perClient_[client];
  if (n >= c.maxConnectionsPerClient) {
    *reply = "421 4.7.0 " + c.hostname + " Too many connections from your address, try again later\r\n";
    logWarning("refused connection from " + client + ": " + std::to_string(n) +
               " sessions from it (relayd.max_connections_per_client)");
    return false;
  }
  ++n;
  ++active_;
  return true;
}

void Relayd::release(const std::string& client) {
  --active_;
  auto it = perClient_.find(client);
  if (it != perClient_.end() && --it->second <= 0) perClient_.erase(it);
}

bool Relayd::authAllowed(const std::string& client) {
  auto it = authFailures_.find(client);
  if (it == authFailures_.end()) return true;
  int64_t cutoff = monoMs() - cfg_->relayd.authFailureWindowMs;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [cutoff](int64_t t) { return t < cutoff; }), v.end());
  if (v.empty()) {
    authFailures_.erase(it);
    return true;
  }
  return static_cast<int64_t>(v.size()) < cfg_->relayd.authFailures;
}

bool Relayd::authenticate(const std::string& client, const std::string& user, const std::string& secret) {
  auto ok = users_->verify(user, secret);
  if (!ok) logError("users: " + ok.message());
  if (ok && ok.value()) {
    authFailures_.erase(client);
    return true;
  }
  authFailures_[client].push_back(monoMs());
  if (authFailures_.size() > 100000) authFailures_.erase(authFailures_.begin());  // bounded memory
  return false;
}

void Relayd::reload() {
  auto cfg = config::loadConfigFile(configPath_);
  if (!cfg) {
    logError("reload refused, keeping the running configuration: " + cfg.message());
    return;
  }
  auto tls = makeTls(cfg.value()->relayd);
  if (!tls) {
    logError("reload refused, keeping the running configuration: " + tls.message());
    return;
  }
  const auto& o = cfg_->relayd;
  const auto& n = cfg.value()->relayd;
  if (o.listen != n.listen || o.submissionListen != n.submissionListen || o.smtpsListen != n.smtpsListen ||
      cfg_->stateDir != cfg.value()->stateDir) {
    logWarning("listeners and state_dir changes take effect at restart");
  }
  auto signing = dkim::Signing::build(cfg.value()->dkim);
  if (!signing) {
    logError("reload refused, keeping the running configuration: " + signing.message());
    return;
  }
  auto deliveryTls = Delivery::makeClientTls(cfg.value()->delivery);
  if (!deliveryTls) {
    logError("reload refused, keeping the running configuration: " + deliveryTls.message());
    return;
  }
  signing_ = std::move(signing.value());
  tls_ = tls.value();
  identities_ = std::make_unique<IdentityMap>(cfg.value()->identities);
  cfg_ = cfg.value();
  if (delivery_) delivery_->reload(cfg_, signing_, std::move(deliveryTls.value()));
  logInfo("reloaded " + configPath_ + (tls_ ? " (TLS certificate re-read)" : "") + "; delivery TLS (" +
          (cfg_->delivery.tlsCaFile.empty() ? std::string("system CA store") : cfg_->delivery.tlsCaFile) + ") and " +
          std::to_string(cfg_->events.webhooks.size()) + " webhook(s) re-read");
}

void Relayd::stop() {
  if (stopping_) return;
  stopping_ = true;
  asio::error_code ec;
  for (auto& a : acceptors_) a->close(ec);
  if (metrics_) metrics_->stop();
}

// On the committer's thread: one "accepted" event per recipient, then the delivery is woken.
// Recipients dropped at queue time get their "suppressed" event right after it.
void Relayd::onCommitted(const queue::NewMessage& m, const std::string& id, const std::vector<std::string>& suppressed) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto hooks = delivery_->webhooks();
  auto record = [&](const events::Event& ev) {
    if (auto st = events_->append(ev); !st) logWarning("event log: " + st.message());
    if (outbox_ && !hooks->empty()) {
      if (auto st = outbox_->enqueue(ev, *hooks); !st) logWarning("webhook outbox: " + st.message());
    }
  };
  bool wakeDelivery = suppressed.empty();
  for (size_t k = 0; k < m.recipients.size(); ++k) {
    const auto& r = m.recipients[k];
    events::Event ev;
    ev.timeMs = now;
    ev.id = events::newEventId(now);
    ev.type = events::EventType::kAccepted;
    ev.queueId = id;
    ev.recipient = r.address;
    ev.sender = m.sender;
    ev.messageId = m.messageId;
    ev.identity = m.identity;
    ev.details = {{"client", m.clientAddress}, {"size", m.content.size()}};
    record(ev);
    if (k >= suppressed.size() || suppressed[k].empty()) {
      wakeDelivery = true;
      continue;
    }
    ev.id = events::newEventId(now);
    ev.type = events::EventType::kSuppressed;
    ev.details = {{"reply", suppressed[k]}, {"attempt", 0}, {"delay_ms", 0}, {"status", "5.1.1"}, {"at", "queue"}};
    record(ev);
    ++delivery_->stats().suppressed;
    logInfo(id + ": to=<" + r.address + ">, relay=none, delay=0, tries=0, dsn=5.1.1, status=suppressed (" + suppressed[k] + ")");
  }
  if (outbox_ && !hooks->empty()) delivery_->wakeWebhooks();
  if (delivery_ && wakeDelivery) delivery_->wake();
}

std::string Relayd::renderMetrics() {
  std::string out;
  auto m = [&](const char* name, const char* type, const char* help, double v) { net::appendMetric(&out, name, type, help, v); };
  m("sluice_relayd_sessions", "gauge", "SMTP sessions open now.", active_);
  m("sluice_relayd_connections_total", "counter", "SMTP sessions accepted.", static_cast<double>(stats_.connections));
  m("sluice_relayd_connections_refused_total", "counter", "Sessions refused by a connection limit.",
    static_cast<double>(stats_.rejectedConnections));
  m("sluice_relayd_messages_accepted_total", "counter", "Messages queued (250).", static_cast<double>(stats_.messages));
  m("sluice_relayd_bytes_accepted_total", "counter", "Bytes queued.", static_cast<double>(stats_.bytes));
  m("sluice_relayd_recipients_accepted_total", "counter", "Recipients queued.", static_cast<double>(stats_.recipients));
  m("sluice_relayd_recipients_rejected_total", "counter", "RCPT refused.", static_cast<double>(stats_.rejectedRcpt));
  m("sluice_relayd_messages_rejected_total", "counter", "Messages refused after the data.",
    static_cast<double>(stats_.rejectedData));
  m("sluice_relayd_messages_tempfailed_total", "counter", "Messages answered 4xx by the queue (e.g. disk full).",
    static_cast<double>(stats_.tempfailed));
  m("sluice_relayd_smuggling_rejected_total", "counter", "Messages refused for a bare CR or LF.",
    static_cast<double>(stats_.smugglingRejected));
  m("sluice_relayd_auth_success_total", "counter", "Successful AUTH.", static_cast<double>(stats_.authOk));
  m("sluice_relayd_auth_failure_total", "counter", "Failed AUTH.", static_cast<double>(stats_.authFailed));
  m("sluice_relayd_tls_handshakes_total", "counter", "TLS handshakes completed.", static_cast<double>(stats_.tlsHandshakes));
  m("sluice_relayd_tls_failures_total", "counter", "TLS handshakes failed.", static_cast<double>(stats_.tlsFailures));
  m("sluice_relayd_timeouts_total", "counter", "Sessions closed by a timeout.", static_cast<double>(stats_.timeouts));
  if (delivery_) out += delivery_->renderMetrics();
  if (committer_) {
    m("sluice_relayd_commit_batches_total", "counter", "Group commits.", static_cast<double>(committer_->batches));
    m("sluice_relayd_commit_messages_total", "counter", "Messages made durable.", static_cast<double>(committer_->committed));
  }
  return out;
}

}  // namespace sluice::relayd
