// config.cc - the YAML loader. yaml-cpp gives the tree and line numbers; every key is looked up
// in the params table (params.h) for its type, default and bounds. Errors are collected, not
// thrown, so one run of `sluicectl config check` shows them all.
#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

#include "base/strings.h"
#include "config/params.h"

namespace sluice::config {
namespace {

class Loader;

// Reads the keys of one YAML map whose params live under `prefix`.
class MapReader {
 public:
  MapReader(Loader& loader, YAML::Node node, std::string prefix, int line);

  std::string str(const char* key);
  bool boolean(const char* key);
  int64_t integer(const char* key);
  int64_t duration(const char* key);
  uint64_t size(const char* key);
  double rate(const char* key);  // per second
  std::string choice(const char* key);
  Action action(const char* key);
  std::string listen(const char* key);
  std::vector<std::string> strList(const char* key);
  std::vector<Cidr> cidrList(const char* key);
  // The items of a list of maps, each with its own reader and line.
  std::vector<MapReader> list(const char* key);
  MapReader map(const char* key);
  // Reports keys present in the YAML that no getter asked for.
  void finish();
  int line() const { return line_; }

 private:
  const ParamSpec& spec(const char* key, std::string* path) const;
  // The scalar text for key (or its default) and the line it came from; false if absent+required.
  bool scalar(const char* key, std::string* text, int* line, std::string* path);
  std::vector<YAML::Node> sequence(const char* key, const std::string& path, int* line);

  Loader& loader_;
  YAML::Node node_;
  std::string prefix_;
  int line_;
  std::set<std::string> used_;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}
  void error(int line, const std::string& path, const std::string& message) {
    std::ostringstream s;
    s << file_ << ':' << line << ": " << (path.empty() ? "" : path + ": ") << message;
    errors_.push_back(s.str());
  }
  bool failed() const { return !errors_.empty(); }
  std::string joined() const {
    std::string out;
    for (const auto& e : errors_) out += (out.empty() ? "" : "\n") + e;
    return out;
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> errors_;
};

int lineOf(const YAML::Node& n, int fallback) {
  return (n && n.Mark().line >= 0) ? n.Mark().line + 1 : fallback;
}

std::string joinPath(const std::string& prefix, const char* key) {
  return prefix.empty() ? std::string(key) : prefix + "." + key;
}

MapReader::MapReader(Loader& loader, YAML::Node node, std::string prefix, int line)
    : loader_(loader), node_(std::move(node)), prefix_(std::move(prefix)), line_(line) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    loader_.error(lineOf(node_, line_), prefix_, "expected a map of keys");
    node_ = YAML::Node();
  }
}

const ParamSpec& MapReader::spec(const char* key, std::string* path) const {
  *path = joinPath(prefix_, key);
  const ParamSpec* s = findParam(*path);
  if (s == nullptr) throw std::logic_error("config key not in the params table: " + *path);
  return *s;
}

bool MapReader::scalar(const char* key, std::string* text, int* line, std::string* path) {
  const ParamSpec& s = spec(key, path);
  used_.insert(key);
  YAML::Node n = (node_ && node_.IsMap()) ? node_[key] : YAML::Node();
  if (n && !n.IsNull()) {
    *line = lineOf(n, line_);
    if (!n.IsScalar()) {
      loader_.error(*line, *path, "expected a single value");
      *text = s.defaultValue ? s.defaultValue : "";
      return false;
    }
    *text = n.Scalar();
    return true;
  }
  *line = line_;
  if (s.defaultValue == nullptr) {
    loader_.error(line_, *path, "required key is missing");
    *text = "";
    return false;
  }
  *text = s.defaultValue;
  return true;
}

std::string MapReader::str(const char* key) {
  std::string text, path;
  int line = 0;
  scalar(key, &text, &line, &path);
  return text;
}

bool MapReader::boolean(const char* key) {
  std::string text, path;
  int line = 0;
  if (!scalar(key, &text, &line, &path)) return false;
  std::string t = toLower(text);
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  loader_.error(line, path, "expected true or false, got \"" + text + "\"");
  return false;
}

int64_t MapReader::integer(const char* key) {
  std::string text, path;
  int line = 0;
  const ParamSpec& s = spec(key, &path);
  if (!scalar(key, &text, &line, &path)) return 0;
  auto v = parseUint(trim(text));
  if (!v || *v > static_cast<uint64_t>(s.max) || static_cast<int64_t>(*v) < s.min) {
    loader_.error(line, path, "expected a whole number from " + std::to_string(s.min) + " to " +
                                  std::to_string(s.max) + ", got \"" + text + "\"");
    return s.min;
  }
  return static_cast<int64_t>(*v);
}

int64_t MapReader::duration(const char* key) {
  std::string text, path;
  int line = 0;
  const ParamSpec& s = spec(key, &path);
  if (!scalar(key, &text, &line, &path)) return s.min;
  auto v = parseDurationMs(text);
  if (!v) {
    loader_.error(line, path, "expected a duration such as 10s, 5m or 1h, got \"" + text + "\"");
    return s.min;
  }
  if (*v < s.min || *v > s.max) {
    loader_.error(line, path, "must be from " + formatDurationMs(s.min) + " to " + formatDurationMs(s.max) +
                                  ", got " + text);
    return s.min;
  }
  return *v;
}

uint64_t MapReader::size(const char* key) {
  std::string text, path;
  int line = 0;
  const ParamSpec& s = spec(key, &path);
  if (!scalar(key, &text, &line, &path)) return static_cast<uint64_t>(s.min);
  auto v = parseSize(text);
  if (!v || *v < static_cast<uint64_t>(s.min) || *v > static_cast<uint64_t>(s.max)) {
    loader_.error(line, path, "expected a size from " + std::to_string(s.min) + " to " + std::to_string(s.max) +
                                  " bytes (k, M suffixes allowed), got \"" + text + "\"");
    return static_cast<uint64_t>(s.min);
  }
  return *v;
}

double MapReader::rate(const char* key) {
  std::string text, path;
  int line = 0;
  const ParamSpec& s = spec(key, &path);
  if (!scalar(key, &text, &line, &path)) return static_cast<double>(s.min);
  auto v = parseRatePerSecond(text);
  if (!v || *v < static_cast<double>(s.min) || *v > static_cast<double>(s.max)) {
    loader_.error(line, path, "expected a rate from " + std::to_string(s.min) + " to " + std::to_string(s.max) +
                                  " per second, as N, N/s, N/m or N/h (\"0.5\", \"30/m\"), got \"" + text + "\"");
    return static_cast<double>(s.min);
  }
  return *v;
}

std::string MapReader::choice(const char* key) {
  std::string text, path;
  int line = 0;
  const ParamSpec& s = spec(key, &path);
  if (!scalar(key, &text, &line, &path)) return "";
  for (auto c : split(s.choices, '|')) {
    if (c == text) return text;
  }
  std::string want(s.choices);
  for (char& c : want) if (c == '|') c = ',';
  loader_.error(line, path, "expected one of " + want + ", got \"" + text + "\"");
  return "";
}

Action MapReader::action(const char* key) {
  std::string text, path;
  int line = 0;
  if (!scalar(key, &text, &line, &path)) return Action{};
  auto a = parseAction(text);
  if (!a) {
    loader_.error(line, path, a.message());
    return Action{};
  }
  return a.value();
}

std::string MapReader::listen(const char* key) {
  std::string text, path;
  int line = 0;
  if (!scalar(key, &text, &line, &path)) return "";
  if (text.empty() && (path.find("metrics") != std::string::npos || path.find("policy_service") != std::string::npos ||
                       path == "relayd.submission_listen" || path == "relayd.smtps_listen")) {
    return text;  // switched off
  }
  if (startsWith(text, "unix:")) {
    if (text.size() < 7 || text[5] != '/') loader_.error(line, path, "unix: needs an absolute path");
    return text;
  }
  size_t colon = text.rfind(':');
  bool good = colon != std::string::npos;
  if (good) {
    std::string host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    uint64_t port = parseUint(text.substr(colon + 1)).value_or(0);
    good = port > 0 && port <= 65535 && parseIp(host).has_value();
  }
  if (!good) {
    loader_.error(line, path, "expected IP:PORT, [IPv6]:PORT or unix:/PATH, got \"" + text + "\"");
  }
  return text;
}

std::vector<YAML::Node> MapReader::sequence(const char* key, const std::string& path, int* line) {
  used_.insert(key);
  std::vector<YAML::Node> out;
  YAML::Node n = (node_ && node_.IsMap()) ? node_[key] : YAML::Node();
  *line = lineOf(n, line_);
  if (!n || n.IsNull()) {
    const ParamSpec* s = findParam(path);
    if (s != nullptr && s->defaultValue == nullptr) loader_.error(line_, path, "required key is missing");
    return out;
  }
  if (!n.IsSequence()) {
    loader_.error(*line, path, "expected a list");
    return out;
  }
  for (const auto& item : n) out.push_back(item);
  return out;
}

std::vector<std::string> MapReader::strList(const char* key) {
  std::string path;
  spec(key, &path);
  int line = 0;
  std::vector<std::string> out;
  for (const auto& item : sequence(key, path, &line)) {
    if (!item.IsScalar()) {
      loader_.error(lineOf(item, line), path, "expected a list of strings");
      continue;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

std::vector<Cidr> MapReader::cidrList(const char* key) {
  std::string path;
  spec(key, &path);
  int line = 0;
  std::vector<Cidr> out;
  for (const auto& item : sequence(key, path, &line)) {
    auto c = item.IsScalar() ? parseCidr(item.Scalar()) : std::nullopt;
    if (!c) {
      loader_.error(lineOf(item, line), path,
                    "expected a network such as 192.0.2.0/24 or 2001:db8::/32, got \"" +
                        (item.IsScalar() ? item.Scalar() : std::string("(not a string)")) + "\"");
      continue;
    }
    out.push_back(*c);
  }
  return out;
}

std::vector<MapReader> MapReader::list(const char* key) {
  std::string path;
  spec(key, &path);
  int line = 0;
  std::vector<MapReader> out;
  for (const auto& item : sequence(key, path, &line)) {
    if (!item.IsMap()) {
      loader_.error(lineOf(item, line), path, "expected each item to be a map of keys");
      continue;
    }
    out.emplace_back(loader_, item, path + "[]", lineOf(item, line));
  }
  return out;
}

MapReader MapReader::map(const char* key) {
  std::string path;
  spec(key, &path);
  used_.insert(key);
  YAML::Node n = (node_ && node_.IsMap()) ? node_[key] : YAML::Node();
  return MapReader(loader_, n, path, lineOf(n, line_));
}

void MapReader::finish() {
  if (!node_ || !node_.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    int line = lineOf(kv.first, line_);
    if (!seen.insert(k).second) {
      loader_.error(line, joinPath(prefix_, k.c_str()), "duplicate key");
    } else if (used_.count(k) == 0) {
      loader_.error(line, joinPath(prefix_, k.c_str()),
                    "unknown key" + (prefix_.empty() ? std::string() : " in " + prefix_));
    }
  }
}

}  // namespace

namespace {

LimitKey limitKeyFrom(const std::string& s) {
  if (s == "sender") return LimitKey::kSender;
  if (s == "sender_domain") return LimitKey::kSenderDomain;
  if (s == "client_address") return LimitKey::kClientAddress;
  if (s == "client_network") return LimitKey::kClientNetwork;
  if (s == "recipient_domain") return LimitKey::kRecipientDomain;
  return LimitKey::kSaslUsername;
}

LimitCount limitCountFrom(const std::string& s) {
  if (s == "recipients") return LimitCount::kRecipients;
  if (s == "bytes") return LimitCount::kBytes;
  return LimitCount::kMessages;
}

// A sender pattern: "domain", "@domain", "*.domain", or "local@domain" with '*' in local.
bool validSenderPattern(const std::string& p) {
  if (p.empty() || p.size() > 320) return false;
  for (char c : p) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '<' || c == '>' || c == ',') return false;
  }
  size_t at = p.rfind('@');
  std::string domain = at == std::string::npos ? p : p.substr(at + 1);
  if (startsWith(domain, "*.")) domain = domain.substr(2);
  return !domain.empty() && domain.find('*') == std::string::npos && domain.find('@') == std::string::npos &&
         domain.front() != '.' && domain.back() != '.';
}

void readIdentities(Loader& loader, MapReader& root, Config& cfg) {
  std::set<std::string> names;
  for (auto& item : root.list("identities")) {
    IdentityConfig id;
    id.line = item.line();
    id.name = item.str("name");
    id.saslUsernames = item.strList("sasl_usernames");
    id.clientNetworks = item.cidrList("client_networks");
    id.senders = item.strList("senders");
    item.finish();
    if (!id.name.empty() && !names.insert(id.name).second) {
      loader.error(id.line, "identities[].name", "duplicate identity name \"" + id.name + "\"");
    }
    if (id.saslUsernames.empty() && id.clientNetworks.empty()) {
      loader.error(id.line, "identities[]", "identity \"" + id.name + "\" needs sasl_usernames or client_networks");
    }
    for (auto& s : id.senders) {
      if (!validSenderPattern(s)) {
        loader.error(id.line, "identities[].senders", "bad sender pattern \"" + s + "\"");
      }
      toLowerInPlace(s);
    }
    cfg.identities.push_back(std::move(id));
  }
}

void readRateLimits(Loader& loader, MapReader& root, Config& cfg) {
  std::set<std::string> names;
  for (auto& item : root.list("rate_limits")) {
    RateRuleConfig r;
    r.line = item.line();
    r.name = item.str("name");
    r.key = limitKeyFrom(item.choice("key"));
    r.count = limitCountFrom(item.choice("count"));
    for (auto& w : item.list("windows")) {
      RateWindow win;
      win.limit = static_cast<uint64_t>(w.integer("limit"));
      win.perMs = w.duration("per");
      win.burst = static_cast<uint64_t>(w.integer("burst"));
      if (win.burst == 0) win.burst = win.limit;
      w.finish();
      r.windows.push_back(win);
    }
    r.action = item.action("action");
    r.monitor = item.choice("mode") == "monitor";
    std::string fm = item.choice("failure_mode");
    r.failureMode = fm == "open" ? FailureMode::kOpen : fm == "closed" ? FailureMode::kClosed : FailureMode::kLocal;
    r.localPercent = item.integer("local_percent");
    r.networks = item.cidrList("networks");
    item.finish();
    if (!r.name.empty() && !names.insert(r.name).second) {
      loader.error(r.line, "rate_limits[].name", "duplicate rule name \"" + r.name + "\"");
    }
    if (r.key == LimitKey::kClientNetwork && r.networks.empty()) {
      loader.error(r.line, "rate_limits[].networks", "key client_network needs a list of networks");
    }
    cfg.rateLimits.push_back(std::move(r));
  }
}

// libmilter's socket syntax: unix:/PATH (or local:/PATH), inet:PORT@HOST, inet6:PORT@HOST.
bool validMilterListen(const std::string& s) {
  if (startsWith(s, "unix:/") || startsWith(s, "local:/")) return s.find('/', 5) != std::string::npos;
  bool v6 = startsWith(s, "inet6:");
  if (!v6 && !startsWith(s, "inet:")) return false;
  std::string rest = s.substr(v6 ? 6 : 5);
  size_t at = rest.find('@');
  uint64_t port = parseUint(rest.substr(0, at)).value_or(0);
  if (port == 0 || port > 65535) return false;
  return at == std::string::npos || parseIp(rest.substr(at + 1)).has_value();
}

void readRelayd(Loader& loader, MapReader& root, Config& cfg) {
  MapReader r = root.map("relayd");
  auto& c = cfg.relayd;
  c.listen = r.listen("listen");
  c.trustedNetworks = r.cidrList("trusted_networks");
  if (c.trustedNetworks.empty()) c.trustedNetworks = {*parseCidr("127.0.0.0/8"), *parseCidr("::1/128")};
  c.submissionListen = r.listen("submission_listen");
  c.smtpsListen = r.listen("smtps_listen");
  c.tlsCertFile = r.str("tls_cert_file");
  c.tlsKeyFile = r.str("tls_key_file");
  c.hostname = r.str("hostname");
  if (c.hostname.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) c.hostname = host;
    if (c.hostname.empty()) c.hostname = "localhost";
  }
  c.maxMessageSize = r.size("max_message_size");
  c.maxRecipients = r.integer("max_recipients");
  c.maxConnections = r.integer("max_connections");
  c.maxConnectionsPerClient = r.integer("max_connections_per_client");
  c.commandTimeoutMs = r.duration("command_timeout");
  c.dataTimeoutMs = r.duration("data_timeout");
  c.normalizeBareLineEnds = r.choice("bare_line_ends") == "normalize";
  c.authFailures = r.integer("auth_failures");
  c.authFailureWindowMs = r.duration("auth_failure_window");
  c.identityHeader = r.str("identity_header");  // "" = off: no header believed, none removed
  for (char ch : c.identityHeader) {
    if (ch <= 32 || ch >= 127 || ch == ':') {  // RFC 5322 2.2 field name
      loader.error(r.line(), "relayd.identity_header",
                   "not a header field name (printable ASCII, no space or colon), got \"" + c.identityHeader + "\"");
      break;
    }
  }
  c.policyService = r.listen("policy_service");
  c.policyDefaultAction = r.action("policy_default_action");
  c.metricsListen = r.listen("metrics_listen");
  c.commitBatch = r.integer("commit_batch");
  c.adminSocket = cfg.stateDir + "/relayd.sock";
  if ((!c.submissionListen.empty() || !c.smtpsListen.empty()) && (c.tlsCertFile.empty() || c.tlsKeyFile.empty())) {
    loader.error(r.line(), "relayd.tls_cert_file", "submission_listen/smtps_listen need tls_cert_file and tls_key_file");
  }
  r.finish();
}

void readDelivery(Loader& loader, MapReader& root, Config& cfg) {
  MapReader d = root.map("delivery");
  auto& c = cfg.delivery;
  c.enabled = d.boolean("enabled");
  c.smtpPort = d.integer("smtp_port");
  c.heloName = d.str("helo_name");
  if (c.heloName.empty()) c.heloName = cfg.relayd.hostname;
  c.maxConcurrency = d.integer("max_concurrency");
  c.destinationConcurrency = d.integer("destination_concurrency");
  c.destinationRate = d.rate("destination_rate");
  c.messagesPerConnection = d.integer("messages_per_connection");
  c.recipientsPerTransaction = d.integer("recipients_per_transaction");
  c.connectTimeoutMs = d.duration("connect_timeout");
  c.greetingTimeoutMs = d.duration("greeting_timeout");
  c.commandTimeoutMs = d.duration("command_timeout");
  c.dataTimeoutMs = d.duration("data_timeout");
  c.retryInitialMs = d.duration("retry_initial");
  c.retryMaxMs = d.duration("retry_max");
  c.greylistRetryMs = d.duration("greylist_retry");
  c.queueLifetimeMs = d.duration("queue_lifetime");
  c.retentionMs = d.duration("retention");
  c.delayWarningMs = d.duration("delay_warning");
  c.tlsPolicy = d.choice("tls_policy");
  c.tlsCaFile = d.str("tls_ca_file");
  for (auto& item : d.list("tls_policy_map")) {
    c.tlsPolicyMap.emplace_back(toLower(item.str("domain")), item.choice("policy"));
    item.finish();
  }
  c.bounceDomain = toLower(d.str("bounce_domain"));
  for (auto& item : d.list("bounce_domains")) {
    c.bounceDomains.emplace_back(toLower(item.str("sender_domain")), toLower(item.str("bounce_domain")));
    item.finish();
  }
  c.suppressHardBounces = d.boolean("suppress_hard_bounces");
  if (c.retryMaxMs < c.retryInitialMs) {
    loader.error(d.line(), "delivery.retry_max", "must not be shorter than delivery.retry_initial");
  }
  d.finish();
}

void readEvents(Loader& loader, MapReader& root, Config& cfg) {
  MapReader e = root.map("events");
  auto& c = cfg.events;
  static const std::set<std::string> kTypes = {"accepted", "delivered", "deferred", "bounced",
                                               "expired", "suppressed", "complained"};
  for (auto& item : e.list("webhooks")) {
    WebhookConfig w;
    w.line = item.line();
    w.url = item.str("url");
    w.secret = item.str("secret");
    w.types = item.strList("types");
    item.finish();
    if (w.url.rfind("http://", 0) != 0 && w.url.rfind("https://", 0) != 0) {
      loader.error(w.line, "events.webhooks[].url", "expected an http:// or https:// URL, got \"" + w.url + "\"");
    }
    if (w.secret.size() < 16) loader.error(w.line, "events.webhooks[].secret", "must be at least 16 characters");
    for (const auto& t : w.types) {
      if (kTypes.count(t) == 0) loader.error(w.line, "events.webhooks[].types", "unknown event type \"" + t + "\"");
    }
    c.webhooks.push_back(std::move(w));
  }
  c.webhookTimeoutMs = e.duration("webhook_timeout");
  c.webhookInitialBackoffMs = e.duration("webhook_initial_backoff");
  c.webhookMaxBackoffMs = e.duration("webhook_max_backoff");
  c.webhookMaxAgeMs = e.duration("webhook_max_age");
  e.finish();
}

void readMilter(Loader& loader, MapReader& root, Config& cfg) {
  MapReader m = root.map("milter");
  cfg.milter.listen = m.str("listen");
  if (!validMilterListen(cfg.milter.listen)) {
    loader.error(m.line(), "milter.listen",
                 "expected unix:/PATH or inet:PORT@IP, got \"" + cfg.milter.listen + "\"");
  }
  cfg.milter.engine = m.choice("engine");
  cfg.milter.policyService = m.listen("policy_service");
  cfg.milter.policyTimeoutMs = m.duration("policy_timeout");
  cfg.milter.policyDefaultAction = m.action("policy_default_action");
  cfg.milter.metricsListen = m.listen("metrics_listen");
  m.finish();
}

DkimSignatureConfig readDkimSignature(Loader& loader, MapReader& item) {
  DkimSignatureConfig sig;
  sig.line = item.line();
  sig.domain = toLower(item.str("domain"));
  sig.selector = item.str("selector");
  sig.keyFile = item.str("key_file");
  sig.headerCanonicalization = item.choice("header_canonicalization");
  sig.bodyCanonicalization = item.choice("body_canonicalization");
  sig.expirationMs = item.duration("expiration");
  item.finish();
  if (!sig.keyFile.empty() && sig.keyFile[0] != '/') {
    loader.error(sig.line, "dkim.signing_table[].signatures[].key_file",
                 "must be an absolute path, got \"" + sig.keyFile + "\"");
  }
  return sig;
}

void readDkim(Loader& loader, MapReader& root, Config& cfg) {
  MapReader d = root.map("dkim");
  cfg.dkim.keyErrorTempfail = d.choice("key_error_action") != "accept";
  cfg.dkim.signUnauthenticated = d.boolean("sign_unauthenticated");
  cfg.dkim.trustedNetworks = d.cidrList("trusted_networks");
  cfg.dkim.signedHeaders = d.strList("signed_headers");
  cfg.dkim.oversignedHeaders = d.strList("oversigned_headers");
  for (auto* list : {&cfg.dkim.signedHeaders, &cfg.dkim.oversignedHeaders}) {
    for (auto& h : *list) {
      toLowerInPlace(h);
      bool ok = !h.empty();
      for (char c : h) ok = ok && c > 32 && c < 127 && c != ':';
      if (!ok) loader.error(d.line(), "dkim.signed_headers", "bad header field name \"" + h + "\"");
    }
  }
  if (!cfg.dkim.signedHeaders.empty() &&
      std::find(cfg.dkim.signedHeaders.begin(), cfg.dkim.signedHeaders.end(), "from") == cfg.dkim.signedHeaders.end()) {
    loader.error(d.line(), "dkim.signed_headers", "must include from (RFC 6376 5.4)");
  }
  for (auto& item : d.list("signing_table")) {
    DkimRuleConfig rule;
    rule.line = item.line();
    rule.domain = toLower(item.str("domain"));
    rule.saslUsername = item.str("sasl_username");
    for (auto& s : item.list("signatures")) rule.signatures.push_back(readDkimSignature(loader, s));
    item.finish();
    if (rule.signatures.empty()) {
      loader.error(rule.line, "dkim.signing_table[].signatures", "needs at least one signature");
    }
    cfg.dkim.signingTable.push_back(std::move(rule));
  }
  d.finish();
}

void readSections(Loader& loader, MapReader& root, Config& cfg) {
  cfg.stateDir = root.str("state_dir");
  cfg.runAsUser = root.str("run_as_user");
  MapReader log = root.map("log");
  cfg.log.target = log.choice("target");
  cfg.log.level = log.choice("level");
  cfg.log.syslogFacility = log.choice("syslog_facility");
  log.finish();

  MapReader store = root.map("store");
  cfg.store.backend = store.choice("backend");
  cfg.store.sqlitePath = store.str("sqlite_path");
  cfg.store.busyTimeoutMs = store.duration("busy_timeout");
  MapReader redis = store.map("redis");
  cfg.store.redis.address = redis.listen("address");
  cfg.store.redis.password = redis.str("password");
  cfg.store.redis.database = redis.integer("database");
  cfg.store.redis.keyPrefix = redis.str("key_prefix");
  cfg.store.redis.timeoutMs = redis.duration("timeout");
  cfg.store.redis.connections = redis.integer("connections");
  cfg.store.redis.reconnectMs = redis.duration("reconnect_interval");
  redis.finish();
  store.finish();
  if (cfg.store.sqlitePath.empty()) cfg.store.sqlitePath = cfg.stateDir + "/sluice.db";

  MapReader p = root.map("policyd");
  cfg.policyd.listen = p.listen("listen");
  cfg.policyd.metricsListen = p.listen("metrics_listen");
  cfg.policyd.maxRequestSize = p.size("max_request_size");
  cfg.policyd.maxConnections = p.integer("max_connections");
  cfg.policyd.idleTimeoutMs = p.duration("idle_timeout");
  cfg.policyd.requestTimeoutMs = p.duration("request_timeout");
  cfg.policyd.checkpointIntervalMs = p.duration("checkpoint_interval");
  cfg.policyd.suppressionPollMs = p.duration("suppression_poll_interval");
  cfg.policyd.reservationTtlMs = p.duration("reservation_ttl");
  cfg.policyd.storeErrorAction = p.action("store_error_action");
  cfg.policyd.adminSocket = cfg.stateDir + "/policyd.sock";
  p.finish();

  readRelayd(loader, root, cfg);
  readDelivery(loader, root, cfg);
  readEvents(loader, root, cfg);
  MapReader bo = root.map("bounces");
  cfg.bounces.globalScope = bo.choice("suppression_scope") == "global";
  cfg.bounces.maxSize = bo.size("max_size");
  bo.finish();
  readMilter(loader, root, cfg);
  MapReader dns = root.map("dns");
  cfg.dns.servers = dns.strList("servers");
  cfg.dns.timeoutMs = dns.duration("timeout");
  for (const auto& server : cfg.dns.servers) {
    std::string ip = server.substr(0, server.find('@'));
    uint64_t port = server.find('@') == std::string::npos ? 53 : parseUint(server.substr(server.find('@') + 1)).value_or(0);
    if (!parseIp(ip) || port == 0 || port > 65535) {
      loader.error(dns.line(), "dns.servers", "expected IP or IP@PORT, got \"" + server + "\"");
    }
  }
  dns.finish();
  readDkim(loader, root, cfg);

  MapReader sl = root.map("sender_login");
  cfg.senderLogin.enabled = sl.boolean("enabled");
  cfg.senderLogin.rejectAction = sl.action("reject_action");
  cfg.senderLogin.unauthenticatedAction = sl.action("unauthenticated_action");
  cfg.senderLogin.allowUnknownUsers = sl.boolean("allow_unknown_users");
  sl.finish();

  MapReader sup = root.map("suppression");
  cfg.suppression.enabled = sup.boolean("enabled");
  cfg.suppression.failureMode = sup.choice("failure_mode") == "closed" ? FailureMode::kClosed : FailureMode::kOpen;
  cfg.suppression.rejectAction = sup.action("reject_action");
  sup.finish();

  readIdentities(loader, root, cfg);
  readRateLimits(loader, root, cfg);
  root.finish();
  if (cfg.stateDir.empty() || cfg.stateDir[0] != '/') {
    loader.error(1, "state_dir", "must be an absolute path, got \"" + cfg.stateDir + "\"");
  }
}

}  // namespace

Result<std::shared_ptr<const Config>> loadConfigString(const std::string& yaml, const std::string& name) {
  Loader loader(name);
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return makeError(name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  auto cfg = std::make_shared<Config>();
  cfg->file = name;
  try {
    if (doc && !doc.IsNull() && !doc.IsMap()) {
      return makeError(name + ":1: the file must be a map of keys (state_dir, policyd, ...)");
    }
    MapReader root(loader, doc, "", 1);
    readSections(loader, root, *cfg);
  } catch (const YAML::Exception& e) {
    loader.error(e.mark.line + 1, "", e.msg);
  }
  if (loader.failed()) return makeError(loader.joined());
  return std::shared_ptr<const Config>(std::move(cfg));
}

Result<std::shared_ptr<const Config>> loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > 16 * 1024 * 1024) return makeError(path + ": file is larger than 16 MiB");
  return loadConfigString(ss.str(), path);
}

const char* limitKeyName(LimitKey key) {
  switch (key) {
    case LimitKey::kSaslUsername: return "sasl_username";
    case LimitKey::kSender: return "sender";
    case LimitKey::kSenderDomain: return "sender_domain";
    case LimitKey::kClientAddress: return "client_address";
    case LimitKey::kClientNetwork: return "client_network";
    case LimitKey::kRecipientDomain: return "recipient_domain";
  }
  return "?";
}

const char* limitCountName(LimitCount count) {
  switch (count) {
    case LimitCount::kMessages: return "messages";
    case LimitCount::kRecipients: return "recipients";
    case LimitCount::kBytes: return "bytes";
  }
  return "?";
}

}  // namespace sluice::config
