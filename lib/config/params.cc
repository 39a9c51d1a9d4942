// params.cc - the table itself. Keep it sorted by section, in the order of contrib/sluice.yaml.
#include "config/params.h"

#include <limits>
#include <string>
#include <unordered_map>

namespace sluice::config {
namespace {

constexpr int64_t kMs = 1;
constexpr int64_t kSec = 1000 * kMs;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;

using T = ParamType;

const std::vector<ParamSpec> kParams = {
    {"state_dir", T::kString, "/var/lib/sluice", 0, 0, nullptr,
     "Directory for SQLite files, admin sockets and the relay spool; it must belong to run_as_user "
     "and not be writable by others (mode 0700)."},
    {"run_as_user", T::kString, "sluice", 0, 0, nullptr,
     "User the daemons run as. Started as root, a daemon binds what needs root (ports below 1024, its "
     "socket directory in Postfix's spool), then drops to this user and its groups; started as any "
     "other user it changes nothing. Empty: keep the user it was started as."},
    {"log", T::kMap, "", 0, 0, nullptr, "Logging."},
    {"log.target", T::kEnum, "stderr", 0, 0, "stderr|syslog",
     "Where log lines go: stderr as NAME[PID]: line (under systemd, the journal, which records the "
     "name, the pid and each line's priority itself), or syslog(3) through /dev/log with "
     "log.syslog_facility."},
    {"log.level", T::kEnum, "info", 0, 0, "debug|info|warning|error", "Lowest level logged."},
    {"log.syslog_facility", T::kEnum, "mail", 0, 0,
     "mail|daemon|user|local0|local1|local2|local3|local4|local5|local6|local7",
     "Syslog facility when log.target is syslog."},

    {"store", T::kMap, "", 0, 0, nullptr, "Where shared state is kept."},
    {"store.backend", T::kEnum, "sqlite", 0, 0, "sqlite|redis",
     "Where counters and the suppression list live: sqlite (this host) or redis (shared)."},
    {"store.sqlite_path", T::kString, "", 0, 0, nullptr,
     "SQLite database file; empty means STATE_DIR/sluice.db."},
    {"store.busy_timeout", T::kDuration, "5s", 0, 10 * kMin, nullptr,
     "How long a writer waits for another process's write lock."},
    {"store.redis", T::kMap, "", 0, 0, nullptr, "The Redis server, when store.backend is redis."},
    {"store.redis.address", T::kListen, "127.0.0.1:6379", 0, 0, nullptr,
     "Redis server: HOST:PORT, [IPv6]:PORT or unix:/PATH."},
    {"store.redis.password", T::kString, "", 0, 0, nullptr, "AUTH password; empty for none."},
    {"store.redis.database", T::kInt, "0", 0, 255, nullptr, "Redis database number (SELECT)."},
    {"store.redis.key_prefix", T::kString, "sluice:", 0, 0, nullptr,
     "Prefix of every key Sluice writes, so that one Redis can serve several installations."},
    {"store.redis.timeout", T::kDuration, "50ms", 1 * kMs, 10 * kSec, nullptr,
     "A Redis call not answered within this is a failure; the rule's failure_mode applies."},
    {"store.redis.connections", T::kInt, "2", 1, 64, nullptr,
     "Connections per daemon; concurrent requests are pipelined on them."},
    {"store.redis.reconnect_interval", T::kDuration, "500ms", 10 * kMs, 1 * kMin, nullptr,
     "Wait between reconnection attempts while Redis is unreachable."},

    {"policyd", T::kMap, "", 0, 0, nullptr, "sluice-policyd, the Postfix policy server."},
    {"policyd.listen", T::kListen, "127.0.0.1:10045", 0, 0, nullptr,
     "Listening address: HOST:PORT, [IPv6]:PORT or unix:/PATH."},
    {"policyd.metrics_listen", T::kListen, "127.0.0.1:10049", 0, 0, nullptr,
     "Prometheus metrics (GET /metrics): HOST:PORT; empty to switch it off."},
    {"policyd.max_request_size", T::kSize, "64k", 1 * kKiB, 1 * kMiB, nullptr,
     "Largest policy request accepted; larger ones close the connection."},
    {"policyd.max_connections", T::kInt, "10000", 1, 1000000, nullptr,
     "Concurrent client connections; further ones are closed at once."},
    {"policyd.idle_timeout", T::kDuration, "1h", 1 * kSec, 7 * kDay, nullptr,
     "A connection idle this long is closed."},
    {"policyd.request_timeout", T::kDuration, "10s", 100 * kMs, 10 * kMin, nullptr,
     "A request must be complete this long after its first byte."},
    {"policyd.checkpoint_interval", T::kDuration, "1s", 100 * kMs, 1 * kMin, nullptr,
     "How often counters and reservations are written to the store."},
    {"policyd.suppression_poll_interval", T::kDuration, "250ms", 50 * kMs, 1 * kSec, nullptr,
     "How often the suppression list is checked for changes by other processes."},
    {"policyd.reservation_ttl", T::kDuration, "10m", 1 * kSec, 1 * kDay, nullptr,
     "A reservation whose transaction never reaches END-OF-MESSAGE is freed after this."},
    {"policyd.store_error_action", T::kAction,
     "DEFER_IF_PERMIT 4.3.0 Temporary policy service failure, try again later", 0, 0, nullptr,
     "Action answered when the store fails."},

    {"relayd", T::kMap, "", 0, 0, nullptr, "sluice-relayd, the smarthost: intake, queue and delivery."},
    {"relayd.listen", T::kListen, "127.0.0.1:10030", 0, 0, nullptr,
     "The relay listener for the local MTA (relayhost = [127.0.0.1]:10030): clients in "
     "relayd.trusted_networks relay without AUTH; others may relay to no one."},
    {"relayd.trusted_networks", T::kCidrList, "[]", 0, 0, nullptr,
     "Clients of relayd.listen that may relay without AUTH; empty means 127.0.0.0/8 and ::1."},
    {"relayd.submission_listen", T::kListen, "", 0, 0, nullptr,
     "Submission with STARTTLS for applications, e.g. 0.0.0.0:587; empty: off. AUTH only after STARTTLS."},
    {"relayd.smtps_listen", T::kListen, "", 0, 0, nullptr,
     "Submission over implicit TLS, e.g. 0.0.0.0:465; empty: off."},
    {"relayd.tls_cert_file", T::kString, "", 0, 0, nullptr,
     "PEM certificate chain for STARTTLS and port 465 (re-read on SIGHUP)."},
    {"relayd.tls_key_file", T::kString, "", 0, 0, nullptr, "PEM private key of tls_cert_file (mode 0600)."},
    {"relayd.hostname", T::kString, "", 0, 0, nullptr,
     "Name in the greeting, EHLO reply and Received: header; empty: the system's host name."},
    {"relayd.max_message_size", T::kSize, "50M", 1 * kKiB, 2048 * kMiB, nullptr,
     "Largest message accepted (advertised as SIZE); larger ones get 552 5.3.4."},
    {"relayd.max_recipients", T::kInt, "1000", 1, 100000, nullptr,
     "Recipients per message; more get 452 4.5.3 (the client sends them in another transaction)."},
    {"relayd.max_connections", T::kInt, "1000", 1, 100000, nullptr,
     "Concurrent SMTP sessions; more are answered 421 4.3.2 and closed."},
    {"relayd.max_connections_per_client", T::kInt, "100", 1, 100000, nullptr,
     "Concurrent sessions from one client address; more are answered 421 4.7.0."},
    {"relayd.command_timeout", T::kDuration, "5m", 1 * kSec, 1 * kHour, nullptr,
     "How long to wait for a command (RFC 5321 4.5.3.2 suggests 5 minutes)."},
    {"relayd.data_timeout", T::kDuration, "10m", 1 * kSec, 1 * kHour, nullptr,
     "How long to wait for more message data."},
    {"relayd.bare_line_ends", T::kEnum, "reject", 0, 0, "reject|normalize",
     "A bare LF or CR in message data: reject the message (550 5.5.2, the SMTP smuggling defence) "
     "or turn it into CRLF (as Postfix 3.9's smtpd_forbid_bare_newline = normalize)."},
    {"relayd.auth_failures", T::kInt, "5", 1, 1000, nullptr,
     "Failed AUTH attempts from one client address within auth_failure_window before it is refused."},
    {"relayd.auth_failure_window", T::kDuration, "10m", 1 * kSec, 1 * kDay, nullptr,
     "The window of relayd.auth_failures; the client may try again after it."},
    {"relayd.identity_header", T::kString, "X-Sluice-Auth", 0, 0, nullptr,
     "Header naming the customer's SASL login: trusted only from relayd.trusted_networks on "
     "relayd.listen and removed before delivery. Safe only when sluice-milter runs in the MTA in "
     "front (it deletes every copy a client sent and adds one with the SASL login); without the "
     "milter set it to \"\" (off: nothing believed, nothing removed)."},
    {"relayd.policy_service", T::kListen, "", 0, 0, nullptr,
     "sluice-policyd's address, asked about direct submissions (587/465); empty: not asked."},
    {"relayd.policy_default_action", T::kAction,
     "DEFER_IF_PERMIT 4.3.0 Policy service unavailable, try again later", 0, 0, nullptr,
     "Action when sluice-policyd cannot be asked."},
    {"relayd.metrics_listen", T::kListen, "127.0.0.1:10048", 0, 0, nullptr,
     "Prometheus metrics (GET /metrics): HOST:PORT; empty to switch it off."},
    {"relayd.commit_batch", T::kInt, "256", 1, 10000, nullptr,
     "Most messages made durable by one group commit (one syncfs + one index transaction)."},

    {"delivery", T::kMap, "", 0, 0, nullptr,
     "sluice-relayd's delivery: MX lookup, SMTP client, retries, DSNs and delivery events."},
    {"delivery.enabled", T::kBool, "true", 0, 0, nullptr,
     "Deliver queued mail; false keeps everything queued (intake only)."},
    {"delivery.smtp_port", T::kInt, "25", 1, 65535, nullptr,
     "TCP port of the receiving MX hosts (25; tests point it elsewhere)."},
    {"delivery.helo_name", T::kString, "", 0, 0, nullptr, "EHLO name; empty: relayd.hostname."},
    {"delivery.max_concurrency", T::kInt, "100", 1, 10000, nullptr,
     "Most outbound SMTP sessions at once, all destinations together."},
    {"delivery.destination_concurrency", T::kInt, "20", 1, 1000, nullptr,
     "Most outbound SMTP sessions at once to one destination (recipient domain)."},
    {"delivery.destination_rate", T::kRate, "0", 0, 100000, nullptr,
     "Most messages sent to one destination (the recipient domains that share an MX host list), "
     "as N per second or N/s, N/m, N/h (\"0.5\", \"30/m\"); 0: no limit."},
    {"delivery.messages_per_connection", T::kInt, "100", 1, 100000, nullptr,
     "Messages sent over one SMTP connection before it is closed (connection reuse)."},
    {"delivery.recipients_per_transaction", T::kInt, "50", 1, 1000, nullptr,
     "Most recipients of one message in one SMTP transaction (with a VERP return path each "
     "recipient has its own transaction)."},
    {"delivery.connect_timeout", T::kDuration, "30s", 100 * kMs, 10 * kMin, nullptr,
     "Time allowed to connect to an MX host before the next one is tried."},
    {"delivery.greeting_timeout", T::kDuration, "5m", 100 * kMs, 1 * kHour, nullptr,
     "Time allowed for the server's 220 greeting."},
    {"delivery.command_timeout", T::kDuration, "5m", 100 * kMs, 1 * kHour, nullptr,
     "Time allowed for the reply to EHLO, MAIL, RCPT, DATA and other commands."},
    {"delivery.data_timeout", T::kDuration, "10m", 100 * kMs, 1 * kHour, nullptr,
     "Time allowed to send the message and get the reply to its final dot."},
    {"delivery.retry_initial", T::kDuration, "5m", 1 * kSec, 1 * kDay, nullptr,
     "First retry delay after a temporary failure; it doubles with each attempt."},
    {"delivery.retry_max", T::kDuration, "4h", 1 * kSec, 7 * kDay, nullptr,
     "Longest retry delay (the doubling stops here; +-10% jitter is added)."},
    {"delivery.greylist_retry", T::kDuration, "2m", 1 * kSec, 1 * kDay, nullptr,
     "Retry delay after a greylisting reply (450/451 4.7.x, \"greylisted\", \"try again later\") "
     "for the first two attempts."},
    {"delivery.queue_lifetime", T::kDuration, "5d", 1 * kSec, 60 * kDay, nullptr,
     "A recipient still failing temporarily after this long expires and is bounced with a DSN."},
    {"delivery.retention", T::kDuration, "30d", 1 * kMin, 366 * kDay, nullptr,
     "How long finished messages' index rows are kept (late bounces and complaints match them)."},
    {"delivery.tls_policy", T::kEnum, "may", 0, 0, "none|may|encrypt|verify",
     "Outbound TLS: none, may (STARTTLS when offered, plaintext fallback), encrypt (STARTTLS "
     "required) or verify (STARTTLS with a certificate valid for the MX host name)."},
    {"delivery.tls_ca_file", T::kString, "", 0, 0, nullptr,
     "PEM CA bundle for tls_policy verify; empty: the system's CA store."},
    {"delivery.tls_policy_map", T::kList, "[]", 0, 0, nullptr,
     "Per recipient domain TLS policies, overriding delivery.tls_policy."},
    {"delivery.tls_policy_map[].domain", T::kString, nullptr, 0, 0, nullptr,
     "Recipient domain (exact, or .example.com for its subdomains)."},
    {"delivery.tls_policy_map[].policy", T::kEnum, nullptr, 0, 0, "none|may|encrypt|verify",
     "The TLS policy for that domain."},
    {"delivery.bounce_domain", T::kString, "", 0, 0, nullptr,
     "Domain of the VERP return path <local>+<id>.<index>.<mac>@DOMAIN; empty: the original "
     "sender is kept (asynchronous bounces then match by Message-ID only)."},
    {"delivery.bounce_domains", T::kList, "[]", 0, 0, nullptr,
     "Per sending domain bounce domains (for SPF/DMARC alignment), overriding delivery.bounce_domain."},
    {"delivery.bounce_domains[].sender_domain", T::kString, nullptr, 0, 0, nullptr,
     "The envelope sender's domain."},
    {"delivery.bounce_domains[].bounce_domain", T::kString, nullptr, 0, 0, nullptr,
     "The VERP return path domain for mail from it."},
    {"delivery.suppress_hard_bounces", T::kBool, "true", 0, 0, nullptr,
     "Add recipients that fail permanently (5xx) to the suppression list (scope: "
     "bounces.suppression_scope)."},
    {"delivery.delay_warning", T::kDuration, "0s", 0, 30 * kDay, nullptr,
     "Send one \"delayed\" DSN when a recipient is still queued after this long (if its NOTIFY "
     "allows); 0s: never."},

    {"events", T::kMap, "", 0, 0, nullptr,
     "Delivery events: every state change, and every bounce or complaint that sluicectl bounce "
     "receive takes in, is a line of STATE_DIR/events.jsonl and, for each webhook that wants it, "
     "a signed HTTP POST from a durable outbox (at least once; sluice-relayd posts them)."},
    {"events.webhooks", T::kList, "[]", 0, 0, nullptr, "HTTP endpoints the events are posted to."},
    {"events.webhooks[].url", T::kString, nullptr, 0, 0, nullptr, "http:// or https:// URL receiving a POST per event."},
    {"events.webhooks[].secret", T::kString, nullptr, 0, 0, nullptr,
     "HMAC-SHA256 key of the X-Sluice-Signature header (t=<unix>,v1=<hex of HMAC(secret, t.body)>); "
     "at least 16 characters."},
    {"events.webhooks[].types", T::kStringList, "[]", 0, 0, nullptr,
     "Event types posted (accepted, delivered, deferred, bounced, expired, suppressed, complained); "
     "empty: all."},
    {"events.webhook_timeout", T::kDuration, "10s", 100 * kMs, 5 * kMin, nullptr, "Time allowed for one POST."},
    {"events.webhook_initial_backoff", T::kDuration, "5s", 100 * kMs, 1 * kHour, nullptr,
     "Retry delay after a failed POST; it doubles with each attempt (+-10% jitter)."},
    {"events.webhook_max_backoff", T::kDuration, "1h", 1 * kSec, 1 * kDay, nullptr, "Longest retry delay."},
    {"events.webhook_max_age", T::kDuration, "3d", 1 * kMin, 30 * kDay, nullptr,
     "An event not accepted (2xx) by then is given up (logged)."},

    {"bounces", T::kMap, "", 0, 0, nullptr, "Bounce and complaint intake (sluicectl bounce receive)."},
    {"bounces.suppression_scope", T::kEnum, "sending_domain", 0, 0, "sending_domain|global",
     "Where a hard bounce or complaint suppresses the recipient: for the original sender's domain "
     "only, or for every sender."},
    {"bounces.max_size", T::kSize, "50M", 1 * kKiB, 1024 * kMiB, nullptr,
     "Largest report read; the rest is ignored (the report is still classified)."},

    {"milter", T::kMap, "", 0, 0, nullptr, "sluice-milter, the DKIM signer and From: checker."},
    {"milter.engine", T::kEnum, "builtin", 0, 0, "builtin|libmilter",
     "Milter protocol engine: builtin (sluice's own, one thread per MTA connection, TCP_QUICKACK "
     "re-armed on inet sockets; about half libmilter's CPU per message) or libmilter (Debian's "
     "libmilter, the reference implementation). Takes effect at restart."},
    {"milter.listen", T::kString, "unix:/var/spool/postfix/sluice/milter.sock", 0, 0, nullptr,
     "Milter socket: unix:/PATH (directory created if missing, stale socket removed; the default is "
     "reachable from Postfix's chrooted smtpd as unix:/sluice/milter.sock) or inet:PORT@127.0.0.1."},
    {"milter.policy_service", T::kListen, "", 0, 0, nullptr,
     "Ask sluice-policyd the envelope questions at RCPT and end of message (HOST:PORT or "
     "unix:/PATH): for Sendmail, which has no policy protocol. Empty (the default) for Postfix, which "
     "asks sluice-policyd itself through check_policy_service; never set both, or mail is counted twice."},
    {"milter.policy_timeout", T::kDuration, "10s", 100 * kMs, 5 * kMin, nullptr,
     "How long a question to sluice-policyd may take before milter.policy_default_action applies."},
    {"milter.policy_default_action", T::kAction,
     "DEFER_IF_PERMIT 4.3.0 Policy service unavailable, try again later", 0, 0, nullptr,
     "Action when sluice-policyd cannot be asked (the default tempfails, so nothing passes unchecked)."},
    {"milter.metrics_listen", T::kListen, "127.0.0.1:10050", 0, 0, nullptr,
     "Prometheus metrics (GET /metrics): HOST:PORT; empty to switch it off."},

    {"dkim", T::kMap, "", 0, 0, nullptr, "DKIM signing by sluice-milter."},
    {"dkim.key_error_action", T::kEnum, "tempfail", 0, 0, "tempfail|accept",
     "A message whose signing key is missing or broken: tempfail (451 4.7.0) or accept it unsigned."},
    {"dkim.sign_unauthenticated", T::kBool, "false", 0, 0, nullptr,
     "Sign mail from clients that did not authenticate (SASL) too."},
    {"dkim.trusted_networks", T::kCidrList, "[]", 0, 0, nullptr,
     "Clients whose mail is signed without SASL authentication (like opendkim's InternalHosts), "
     "e.g. [127.0.0.1/32, 192.0.2.0/24]. Mail merely passing through is never signed."},
    {"dkim.signed_headers", T::kStringList, "[]", 0, 0, nullptr,
     "Header fields signed (every present instance), in h= order; empty: from, reply-to, subject, "
     "date, to, cc, resent-date, resent-from, resent-to, resent-cc, in-reply-to, references, "
     "message-id, mime-version, content-type, content-transfer-encoding, list-id, list-unsubscribe, "
     "list-unsubscribe-post."},
    {"dkim.oversigned_headers", T::kStringList, "[]", 0, 0, nullptr,
     "Header fields listed once more than present, so that none can be added later; empty: from, "
     "to, cc, subject, date, reply-to, message-id, mime-version, content-type, "
     "content-transfer-encoding. [none] switches oversigning off."},
    {"dkim.signing_table", T::kList, "[]", 0, 0, nullptr,
     "Rules choosing the signatures by From: domain and SASL user; the first match wins."},
    {"dkim.signing_table[].domain", T::kString, nullptr, 0, 0, nullptr,
     "From: domain pattern: example.com (exactly), *.example.com (subdomains) or * (any)."},
    {"dkim.signing_table[].sasl_username", T::kString, "", 0, 0, nullptr,
     "Only for this SASL login name; empty matches anyone."},
    {"dkim.signing_table[].signatures", T::kList, nullptr, 0, 0, nullptr,
     "The DKIM-Signature fields added, in order (RSA and Ed25519 may be mixed)."},
    {"dkim.signing_table[].signatures[].domain", T::kString, "%", 0, 0, nullptr,
     "The d= tag: % means the From: domain, anything else is used as is."},
    {"dkim.signing_table[].signatures[].selector", T::kString, nullptr, 0, 0, nullptr,
     "The s= tag: the key is published at SELECTOR._domainkey.DOMAIN."},
    {"dkim.signing_table[].signatures[].key_file", T::kString, nullptr, 0, 0, nullptr,
     "Private key (PEM RSA >= 2048 bits or Ed25519) owned by run_as_user, mode 0600 or 0400; read "
     "once at start, as run_as_user."},
    {"dkim.signing_table[].signatures[].header_canonicalization", T::kEnum, "relaxed", 0, 0,
     "relaxed|simple", "Header canonicalization (c= first half)."},
    {"dkim.signing_table[].signatures[].body_canonicalization", T::kEnum, "relaxed", 0, 0,
     "relaxed|simple", "Body canonicalization (c= second half)."},
    {"dkim.signing_table[].signatures[].expiration", T::kDuration, "0s", 0, 366 * kDay, nullptr,
     "Signature lifetime written as x= (t= + this); 0s writes no x=."},

    {"sender_login", T::kMap, "", 0, 0, nullptr, "Sender ownership checks."},
    {"sender_login.enabled", T::kBool, "true", 0, 0, nullptr,
     "Check that the envelope sender belongs to the authenticated user or client network."},
    {"sender_login.reject_action", T::kAction,
     "553 5.7.1 Sender address <{sender}> is not owned by user {user}", 0, 0, nullptr,
     "Action for a sender the authenticated identity does not own."},
    {"sender_login.unauthenticated_action", T::kAction,
     "553 5.7.1 Sender domain {domain} requires authentication", 0, 0, nullptr,
     "Action for an unauthenticated client using a protected domain."},
    {"sender_login.allow_unknown_users", T::kBool, "false", 0, 0, nullptr,
     "Whether an authenticated user without an identity may use unprotected senders."},

    {"suppression", T::kMap, "", 0, 0, nullptr, "Suppression list checks."},
    {"suppression.enabled", T::kBool, "true", 0, 0, nullptr, "Reject suppressed recipients at RCPT."},
    {"suppression.failure_mode", T::kEnum, "open", 0, 0, "open|closed",
     "With Redis unreachable: open (skip the check) or closed (answer store_error_action)."},
    {"suppression.reject_action", T::kAction,
     "550 5.1.1 Recipient address <{recipient}> is suppressed ({reason})", 0, 0, nullptr,
     "Action for a suppressed recipient."},

    {"dns", T::kMap, "", 0, 0, nullptr, "How Sluice resolves names (libunbound)."},
    {"dns.servers", T::kStringList, "[]", 0, 0, nullptr,
     "Upstream resolvers, IP or IP@PORT (e.g. [127.0.0.1, '::1@5353']); empty: those of "
     "/etc/resolv.conf."},
    {"dns.timeout", T::kDuration, "5s", 100 * kMs, 1 * kMin, nullptr, "How long one lookup may take."},

    {"identities", T::kList, "[]", 0, 0, nullptr, "Who may send as what."},
    {"identities[].name", T::kString, nullptr, 0, 0, nullptr, "Name of the identity, for logs."},
    {"identities[].sasl_usernames", T::kStringList, "[]", 0, 0, nullptr,
     "SASL login names that have this identity."},
    {"identities[].client_networks", T::kCidrList, "[]", 0, 0, nullptr,
     "Client networks (CIDR) that have this identity without authenticating."},
    {"identities[].senders", T::kStringList, nullptr, 0, 0, nullptr,
     "Sender patterns: domain, @domain, *.domain, or an address with * in the local part."},

    {"rate_limits", T::kList, "[]", 0, 0, nullptr, "Rate-limit rules."},
    {"rate_limits[].name", T::kString, nullptr, 0, 0, nullptr, "Rule name, in logs and replies."},
    {"rate_limits[].key", T::kEnum, nullptr, 0, 0,
     "sasl_username|sender|sender_domain|client_address|client_network|recipient_domain",
     "What is counted separately."},
    {"rate_limits[].count", T::kEnum, "messages", 0, 0, "messages|recipients|bytes", "What is counted."},
    {"rate_limits[].windows", T::kList, nullptr, 0, 0, nullptr, "Limits that must all hold."},
    {"rate_limits[].windows[].limit", T::kInt, nullptr, 1, 1'000'000'000'000, nullptr,
     "Units allowed per period."},
    {"rate_limits[].windows[].per", T::kDuration, nullptr, 1 * kSec, 366 * kDay, nullptr,
     "The period."},
    {"rate_limits[].windows[].burst", T::kInt, "0", 0, 1'000'000'000'000, nullptr,
     "Units allowed at once; 0 means the limit."},
    {"rate_limits[].action", T::kAction,
     "DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}, try again later", 0, 0, nullptr,
     "Action when a window is full."},
    {"rate_limits[].mode", T::kEnum, "enforce", 0, 0, "enforce|monitor",
     "monitor only logs what would happen."},
    {"rate_limits[].failure_mode", T::kEnum, "local", 0, 0, "open|closed|local",
     "With Redis unreachable: open (admit), closed (answer store_error_action), local (count on this host)."},
    {"rate_limits[].local_percent", T::kInt, "100", 1, 100, nullptr,
     "With failure_mode local: the share of each window this host may use alone, in percent."},
    {"rate_limits[].networks", T::kCidrList, "[]", 0, 0, nullptr,
     "CIDR groups for key client_network; each is counted as one key."},
};

}  // namespace

const std::vector<ParamSpec>& allParams() { return kParams; }

const ParamSpec* findParam(std::string_view path) {
  static const std::unordered_map<std::string, const ParamSpec*> index = [] {
    std::unordered_map<std::string, const ParamSpec*> m;
    for (const auto& p : kParams) m.emplace(p.path, &p);
    return m;
  }();
  auto it = index.find(std::string(path));
  return it == index.end() ? nullptr : it->second;
}

const char* paramTypeName(ParamType type) {
  switch (type) {
    case T::kString: return "string";
    case T::kBool: return "boolean";
    case T::kInt: return "integer";
    case T::kDuration: return "duration";
    case T::kSize: return "size";
    case T::kRate: return "rate";
    case T::kEnum: return "choice";
    case T::kAction: return "action";
    case T::kListen: return "address";
    case T::kStringList: return "list of strings";
    case T::kCidrList: return "list of networks";
    case T::kList: return "list";
    case T::kMap: return "map";
  }
  return "?";
}

}  // namespace sluice::config
