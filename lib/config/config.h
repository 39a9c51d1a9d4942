// config.h - sluice.yaml parsed into typed structs.
//
// loadConfigFile() reads and validates the whole file and reports every problem at once as
// "FILE:LINE: key: message" lines in the Error. Unknown keys, wrong types, out-of-range values,
// bad actions, bad networks and duplicate names are errors. Defaults come from the params table
// (params.h), so a key missing from the file has exactly the documented default.
// A Config is immutable once loaded; reload builds a new one and swaps it in only if it is valid.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/net_addr.h"
#include "base/result.h"
#include "config/action.h"

namespace sluice::config {

struct LogConfig {
  std::string target;
  std::string level;
  std::string syslogFacility;
};

struct RedisConfig {
  std::string address;
  std::string password;
  int64_t database = 0;
  std::string keyPrefix;
  int64_t timeoutMs = 0;
  int64_t connections = 0;
  int64_t reconnectMs = 0;
};

struct StoreConfig {
  std::string backend;     // "sqlite" or "redis"
  std::string sqlitePath;  // resolved: never empty after loading
  int64_t busyTimeoutMs = 0;
  RedisConfig redis;
  bool useRedis() const { return backend == "redis"; }
};

struct PolicydConfig {
  std::string listen;
  std::string metricsListen;  // "" = off
  uint64_t maxRequestSize = 0;
  int64_t maxConnections = 0;
  int64_t idleTimeoutMs = 0;
  int64_t requestTimeoutMs = 0;
  int64_t checkpointIntervalMs = 0;
  int64_t suppressionPollMs = 0;
  int64_t reservationTtlMs = 0;
  Action storeErrorAction;
  std::string adminSocket;  // derived: STATE_DIR/policyd.sock
};

struct RelaydConfig {
  std::string listen;
  std::vector<Cidr> trustedNetworks;  // resolved: never empty after loading
  std::string submissionListen, smtpsListen;
  std::string tlsCertFile, tlsKeyFile;
  std::string hostname;               // resolved: the system's name when empty in the file
  uint64_t maxMessageSize = 0;
  int64_t maxRecipients = 1000, maxConnections = 1000, maxConnectionsPerClient = 100;
  int64_t commandTimeoutMs = 0, dataTimeoutMs = 0;
  bool normalizeBareLineEnds = false;
  int64_t authFailures = 5, authFailureWindowMs = 0;
  std::string identityHeader;
  std::string policyService;
  Action policyDefaultAction;
  std::string metricsListen;
  int64_t commitBatch = 256;
  std::string adminSocket;  // derived: STATE_DIR/relayd.sock
};

struct DeliveryConfig {
  bool enabled = true;
  int64_t smtpPort = 25;
  std::string heloName;  // resolved: relayd.hostname when empty in the file
  int64_t maxConcurrency = 100, destinationConcurrency = 20;
  double destinationRate = 0;  // messages per second to one destination (MX host list); 0: no limit
  int64_t messagesPerConnection = 100, recipientsPerTransaction = 50;
  int64_t connectTimeoutMs = 30000, greetingTimeoutMs = 300000, commandTimeoutMs = 300000, dataTimeoutMs = 600000;
  int64_t retryInitialMs = 300000, retryMaxMs = 4 * 3600000LL, greylistRetryMs = 120000;
  int64_t queueLifetimeMs = 5 * 86400000LL, retentionMs = 30 * 86400000LL, delayWarningMs = 0;
  std::string tlsPolicy = "may";
  std::string tlsCaFile;
  std::vector<std::pair<std::string, std::string>> tlsPolicyMap;   // domain -> policy
  std::string bounceDomain;
  std::vector<std::pair<std::string, std::string>> bounceDomains;  // sender domain -> bounce domain
  bool suppressHardBounces = true;
};

struct WebhookConfig {
  std::string url, secret;
  std::vector<std::string> types;  // empty: every type
  int line = 0;
};

struct EventsConfig {
  std::vector<WebhookConfig> webhooks;
  int64_t webhookTimeoutMs = 10000, webhookInitialBackoffMs = 5000, webhookMaxBackoffMs = 3600000;
  int64_t webhookMaxAgeMs = 3 * 86400000LL;
};

struct BouncesConfig {
  bool globalScope = false;  // suppression_scope: global (true) or sending_domain
  uint64_t maxSize = 50 * 1024 * 1024;
};

struct DnsConfig {
  std::vector<std::string> servers;  // "IP" or "IP@PORT"; empty: /etc/resolv.conf
  int64_t timeoutMs = 5000;
};

struct MilterConfig {
  std::string listen;  // "unix:/PATH" or "inet:PORT@HOST" (libmilter's syntax)
  std::string engine;  // "builtin" | "libmilter"
  std::string policyService;  // "" = off; else HOST:PORT or unix:/PATH of sluice-policyd
  int64_t policyTimeoutMs = 10000;
  Action policyDefaultAction;
  std::string metricsListen;  // "" = off
};

struct DkimSignatureConfig {
  std::string domain;  // "%" = the From: domain
  std::string selector;
  std::string keyFile;
  std::string headerCanonicalization;  // "relaxed" | "simple"
  std::string bodyCanonicalization;
  int64_t expirationMs = 0;  // 0 = no x=
  int line = 0;
};

struct DkimRuleConfig {
  std::string domain;
  std::string saslUsername;
  std::vector<DkimSignatureConfig> signatures;
  int line = 0;
};

struct DkimConfig {
  bool keyErrorTempfail = true;  // key_error_action: tempfail (true) or accept
  bool signUnauthenticated = false;
  std::vector<Cidr> trustedNetworks;
  std::vector<std::string> signedHeaders;     // empty: the DKIM module's default list
  std::vector<std::string> oversignedHeaders; // empty: the default list; ["none"]: no oversigning
  std::vector<DkimRuleConfig> signingTable;
};

struct SenderLoginConfig {
  bool enabled = true;
  Action rejectAction;
  Action unauthenticatedAction;
  bool allowUnknownUsers = false;
};

enum class FailureMode { kOpen, kClosed, kLocal };

struct SuppressionConfig {
  bool enabled = true;
  FailureMode failureMode = FailureMode::kOpen;
  Action rejectAction;
};

struct IdentityConfig {
  std::string name;
  std::vector<std::string> saslUsernames;
  std::vector<Cidr> clientNetworks;
  std::vector<std::string> senders;
  int line = 0;
};

enum class LimitKey { kSaslUsername, kSender, kSenderDomain, kClientAddress, kClientNetwork, kRecipientDomain };
enum class LimitCount { kMessages, kRecipients, kBytes };

struct RateWindow {
  uint64_t limit = 0;
  int64_t perMs = 0;
  uint64_t burst = 0;  // resolved: never 0 after loading
};

struct RateRuleConfig {
  std::string name;
  LimitKey key = LimitKey::kSaslUsername;
  LimitCount count = LimitCount::kMessages;
  std::vector<RateWindow> windows;
  Action action;
  bool monitor = false;
  FailureMode failureMode = FailureMode::kLocal;
  int64_t localPercent = 100;
  std::vector<Cidr> networks;
  int line = 0;
};

struct Config {
  std::string file;
  std::string stateDir;
  std::string runAsUser;  // "" = keep the user the daemon was started as
  LogConfig log;
  StoreConfig store;
  PolicydConfig policyd;
  MilterConfig milter;
  RelaydConfig relayd;
  DeliveryConfig delivery;
  EventsConfig events;
  BouncesConfig bounces;
  DnsConfig dns;
  DkimConfig dkim;
  SenderLoginConfig senderLogin;
  SuppressionConfig suppression;
  std::vector<IdentityConfig> identities;
  std::vector<RateRuleConfig> rateLimits;
};

inline constexpr const char* kDefaultConfigFile = "/etc/sluice/sluice.yaml";

Result<std::shared_ptr<const Config>> loadConfigFile(const std::string& path);
// `name` is used in error messages in place of a file name.
Result<std::shared_ptr<const Config>> loadConfigString(const std::string& yaml, const std::string& name);

const char* limitKeyName(LimitKey key);
const char* limitCountName(LimitCount count);

}  // namespace sluice::config
