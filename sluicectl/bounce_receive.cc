// bounce_receive.cc - `sluicectl bounce receive --recipient ADDR`: the bounce and complaint intake
// the host MTA pipes to (Postfix: a pipe(8) transport for the bounce domain; Sendmail: a prog
// mailer). Reads one report on stdin and:
//   1. parses and classifies it (lib/bounce, the rules file);
//   2. matches it to our message (lib/bounce/bounce_match.h): a VERP address whose HMAC verifies -
//      the envelope recipient (the return path relayd sent from) or the original Return-Path in the
//      report - or, for complaints (ARF, sent to feedback-loop addresses) only, the original
//      Message-ID (a complaint that names no recipient - ISPs redact it - stands for the
//      original's recipient when it had exactly one, else for nobody, logged). A bounce without
//      a verified VERP address, or any report with a VERP address that does not verify, is
//      logged and ignored, so nobody can suppress addresses with forged DSNs (quoting a real
//      Message-ID does not help);
//   3. for each recipient: hard bounces and complaints are added to the suppression list (scope:
//      the original sender's domain, or global), soft bounces only reported; auto-replies ignored;
//   4. records one `bounced` / `complained` event per recipient the way relayd records its own:
//      in one transaction on relayd's queue index (STATE_DIR/queue.db, WAL, so this process may
//      write while relayd runs), an attempts row marked "(report)" (`sluicectl why ID` shows it)
//      and the event's rows in the webhook outbox (lib/events/outbox.h), which relayd's webhook
//      sender posts (it polls the outbox every second, so rows of other processes go out too);
//      then the event is appended to STATE_DIR/events.jsonl.
// Durability: the suppression list lives in another database (sluice.db, or Redis), so it cannot
// share the outbox's transaction; it is written first (adding is idempotent), the queue
// transaction second. A failure of either exits 75 (EX_TEMPFAIL) and the MTA pipes the report
// again, so every event reaches the outbox at least once (a crash after the commit but before the
// exit repeats the event under a new id). events.jsonl is a convenience copy: failing to append to
// it after the commit is only logged.
// Exit status as a pipe transport wants it: 0 when the report was handled or deliberately ignored
// (not a bounce or complaint, not verified, no message of ours: nothing would change on a retry),
// 75 (EX_TEMPFAIL: the MTA keeps the report and retries) for every failure that is not the
// report's own: the configuration (main.cc), a bad command line (master.cf), the rules, the server
// secret, the queue index or the suppression list unreadable or unwritable, reading standard
// input, out of memory or any other exception. Postfix bounces the report on any other status (a
// double bounce: the report is lost), so nothing else is ever returned for `receive`.
#include <sqlite3.h>

#include <chrono>
#include <iostream>
#include <fstream>
#include <iterator>
#include <limits>
#include <new>
#include <optional>

#include "auth/user_store.h"
#include "base/log.h"
#include "base/strings.h"
#include "bounce/bounce.h"
#include "bounce/bounce_match.h"
#include "bounce_cmd.h"
#include "cli_util.h"
#include "events/event.h"
#include "events/outbox.h"
#include "events/webhook_config.h"
#include "identity/identity_map.h"
#include "queue/queue.h"
#include "suppress_store.h"

namespace sluice::ctl {
namespace {

constexpr int kTempFail = 75;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Original {
  std::string queueId, sender, messageId, identity;
  std::vector<std::string> recipients;  // by index
};

std::string column(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
}

// The original message in relayd's queue index, by queue id or by Message-ID: nullopt when the
// index has no such message (a report about nothing of ours, or about a message finished longer
// ago than delivery.retention), an error when the index cannot be read (then the report must be
// retried, never ignored).
Result<std::optional<Original>> lookup(const config::Config& cfg, const std::string& queueId, const std::string& messageId) {
  sqlite3* db = nullptr;
  std::string path = cfg.stateDir + "/queue.db";
  auto dbError = [&](const std::string& what) {
    std::string m = "queue index " + path + ": " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return makeError(m);
  };
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return dbError("cannot open");
  sqlite3_busy_timeout(db, 5000);
  std::optional<Original> out;
  sqlite3_stmt* s = nullptr;
  const char* sql = queueId.empty() ? "SELECT id, sender, message_id, identity FROM messages WHERE message_id IN (?, ?) LIMIT 1"
                                    : "SELECT id, sender, message_id, identity FROM messages WHERE id = upper(?) LIMIT 1";
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return dbError("cannot read");
  if (queueId.empty()) {
    std::string bracketed = "<" + messageId + ">";
    sqlite3_bind_text(s, 1, messageId.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, bracketed.c_str(), -1, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_text(s, 1, queueId.c_str(), -1, SQLITE_TRANSIENT);
  }
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    Original o;
    o.queueId = column(s, 0);
    o.sender = column(s, 1);
    o.messageId = column(s, 2);
    o.identity = column(s, 3);
    out = o;
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return dbError("cannot read");
  if (out) {
    sqlite3_stmt* r = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT address FROM recipients WHERE message_id = ? ORDER BY idx", -1, &r, nullptr) != SQLITE_OK) {
      return dbError("cannot read");
    }
    sqlite3_bind_text(r, 1, out->queueId.c_str(), -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(r)) == SQLITE_ROW) out->recipients.push_back(column(r, 0));
    sqlite3_finalize(r);
    if (rc != SQLITE_DONE) return dbError("cannot read");
  }
  sqlite3_close(db);
  return out;
}

// One recipient of ours the report is about.
struct Target {
  const bounce::Recipient* r = nullptr;
  std::string address;  // as we sent to it
  int index = 0;        // in the original message
  bounce::Disposition disposition = bounce::Disposition::kIgnore;
  bool inferred = false;  // the report named nobody: the original's only recipient
};

// A complaint matched by Message-ID that names no recipient (ISPs redact it): the original's
// recipient when it had exactly one, else nobody (logged: which of them complained is unknown).
int namelessComplaint(const bounce::Report& report, const bounce::BounceMatch& m, const Original& orig) {
  if (orig.recipients.size() == 1) {
    logInfo("bounce receive: " + orig.queueId + ": the complaint (Message-ID <" + m.messageId +
            ">) names no recipient; the message had one, <" + orig.recipients[0] + ">");
    return 0;
  }
  logWarning("bounce receive: " + orig.queueId + ": the " + bounce::toString(report.kind) + " (Message-ID <" +
             m.messageId + ">) names no recipient and the message had " + std::to_string(orig.recipients.size()) +
             " recipients; nobody suppressed, no event");
  return -1;
}

std::vector<Target> resolveTargets(const bounce::Report& report, const bounce::BounceMatch& m, const Original& orig) {
  std::vector<Target> out;
  for (const auto& r : report.recipients) {
    auto d = bounce::dispositionOf(report, r);
    if (d == bounce::Disposition::kIgnore) continue;
    // The address we sent to: the VERP index names it; else the report's, if it was ours.
    Target t{&r, "", -1, d};
    if (m.by == bounce::BounceMatch::By::kVerp && m.verp->rcptIndex < orig.recipients.size()) {
      t.index = static_cast<int>(m.verp->rcptIndex);
    } else if (m.by == bounce::BounceMatch::By::kMessageId && r.recipient.empty() && r.originalRecipient.empty()) {
      t.index = namelessComplaint(report, m, orig);
      t.inferred = t.index >= 0;
      if (t.index < 0) continue;
    } else {
      for (size_t i = 0; i < orig.recipients.size(); ++i) {
        const std::string& x = orig.recipients[i];
        if (iequals(x, r.recipient) || iequals(x, r.originalRecipient)) t.index = static_cast<int>(i);
      }
    }
    if (t.index < 0) {
      logWarning("bounce receive: " + orig.queueId + ": <" + r.recipient + "> was not a recipient of it; ignored");
      continue;
    }
    t.address = orig.recipients[static_cast<size_t>(t.index)];
    out.push_back(std::move(t));
  }
  return out;
}

// Hard bounces and complaints into the suppression list (replacing an entry is harmless, so a
// report the MTA pipes again after a temporary failure adds nothing twice).
Status suppressTargets(const config::Config& cfg, const bounce::Report& report, const Original& orig,
                       const std::string& scope, const std::vector<Target>& targets, size_t* suppressed) {
  bool any = false;
  for (const Target& t : targets) any = any || t.disposition == bounce::Disposition::kSuppress;
  if (!any) return okStatus();
  auto store = openSuppressStore(cfg.store, false, nullptr);
  if (!store) return store.error();
  for (const Target& t : targets) {
    if (t.disposition != bounce::Disposition::kSuppress) continue;
    store::SuppressionEntry e;
    e.address = t.address;
    e.scope = scope;
    e.reason = report.kind == bounce::Kind::kComplaint ? "complaint" : "hard-bounce:" + t.r->reason;
    e.source = "bounce:" + orig.queueId;
    if (auto st = store.value()->add(e); !st) return st;
    ++*suppressed;
  }
  return okStatus();
}

events::Event eventFor(const bounce::Report& report, const bounce::BounceMatch& m, const Original& orig, const Target& t) {
  const bounce::Recipient& r = *t.r;
  events::Event ev;
  ev.timeMs = nowMs();
  ev.id = events::newEventId(ev.timeMs);
  ev.type = report.kind == bounce::Kind::kComplaint ? events::EventType::kComplained : events::EventType::kBounced;
  ev.queueId = orig.queueId;
  ev.recipient = t.address;
  ev.sender = orig.sender;
  ev.messageId = orig.messageId;
  ev.identity = orig.identity;
  ev.details = {{"reason", r.reason},     {"status", r.status},         {"reply_code", r.replyCode},
                {"diagnostic", r.diagnostic}, {"remote_mta", r.remoteMta}, {"hard", r.hard == 1},
                {"rule", r.rule},         {"matched_by", m.by == bounce::BounceMatch::By::kVerp ? "verp" : "message-id"},
                {"suppressed", t.disposition == bounce::Disposition::kSuppress}, {"feedback_type", r.feedbackType},
                {"asynchronous", true}};
  if (t.inferred) ev.details["recipient_inferred"] = "the report names nobody; the message's only recipient";
  return ev;
}

// What `sluicectl why` shows for the report, on the recipient's line.
std::string whyText(const bounce::Report& report, const Target& t) {
  const bounce::Recipient& r = *t.r;
  std::string s = report.kind == bounce::Kind::kComplaint ? "complaint (" + r.feedbackType + ")"
                                                          : "bounce report (" + r.reason + ", " + r.status + ")";
  s += t.disposition == bounce::Disposition::kSuppress ? ", suppressed" : ", event only";
  if (!r.diagnostic.empty()) s += ": " + r.diagnostic.substr(0, 300);
  return s;
}

// The attempts rows and the webhook outbox rows, in one transaction on relayd's queue index.
Status recordTargets(const config::Config& cfg, const bounce::Report& report, const Original& orig,
                     const std::vector<Target>& targets, const std::vector<events::Event>& evs) {
  queue::QueueOptions qo;
  qo.stateDir = cfg.stateDir;
  qo.recover = false;  // relayd's job: its spool files in flight are not orphans
  auto q = queue::Queue::open(qo);
  if (!q) return q.error();
  auto webhooks = events::webhookEndpoints(cfg.events);
  if (!webhooks.empty()) {
    if (auto st = events::EventOutbox::createSchema(q.value()->db()); !st) return st;
  }
  std::vector<queue::Queue::Report> rows;
  for (const Target& t : targets) {
    std::string mta = t.r->remoteMta.empty() ? t.r->reportingMta : t.r->remoteMta;
    rows.push_back(queue::Queue::Report{orig.queueId, t.index, mta, whyText(report, t)});
  }
  return q.value()->recordReports(rows, [&](sqlite3* db) -> Status {
    for (const auto& ev : evs) {
      if (auto st = events::EventOutbox::enqueueIn(db, ev, webhooks); !st) return st;
    }
    return okStatus();
  });
}

const char* kReceiveUsage =
    "Usage: sluicectl bounce receive --recipient ENVELOPE_RCPT [--rules FILE] < MESSAGE\n"
    "\n"
    "The bounce and complaint intake the MTA pipes one report to (Postfix: a pipe(8) service for\n"
    "the bounce domain). Matches the report to sluice-relayd's message by its verified VERP\n"
    "address (complaints also by Message-ID), suppresses hard bounces and complaints and records\n"
    "bounced/complained events.\n"
    "Exit status: 0 handled or deliberately ignored (forged, auto-reply, not ours); 75\n"
    "(EX_TEMPFAIL: the MTA keeps the report and retries) for every other failure, also a bad\n"
    "command line or configuration.\n";

const char* kVerpUsage =
    "Usage: sluicectl bounce verp QUEUE_ID INDEX LOCAL@DOMAIN\n"
    "\n"
    "The VERP return path sluice-relayd uses for recipient INDEX (from 0, as queue show numbers\n"
    "them) of queued message QUEUE_ID, with the MAC of STATE_DIR/server.secret. For testing the\n"
    "intake; it does not check that the message exists.\n";

// sluicectl bounce verp QUEUE_ID INDEX LOCAL@BOUNCE_DOMAIN
int verpAddress(const std::vector<std::string>& a, const config::Config& cfg, std::ostream& out, std::ostream& err) {
  if (a.size() != 4) {
    err << "sluicectl bounce verp: needs QUEUE_ID INDEX LOCAL@DOMAIN\n" << kVerpUsage;
    return 2;
  }
  auto idx = parseNumberArg("INDEX", a[2], 0, std::numeric_limits<uint32_t>::max());
  if (!idx) {
    err << "sluicectl bounce verp: " << idx.message() << "\n" << kVerpUsage;
    return 2;
  }
  size_t at = a[3].rfind('@');
  if (at == std::string::npos) {
    err << "sluicectl bounce verp: \"" << printableArg(a[3]) << "\" is not LOCAL@DOMAIN\n" << kVerpUsage;
    return 2;
  }
  std::ifstream sf(cfg.stateDir + "/server.secret");
  std::string secret;
  std::getline(sf, secret);
  if (secret.size() < 16) {
    err << "sluicectl bounce verp: no server secret in " << cfg.stateDir << "/server.secret\n";
    return 2;
  }
  out << verp::VerpCodec(secret).encode(a[3].substr(0, at), a[1], static_cast<uint32_t>(*idx), a[3].substr(at + 1))
      << "\n";
  return 0;
}

// A failure that is not the report's: logged, said on stderr (Postfix shows it in its log and
// in the queue), exit 75 so that the MTA keeps the report and tries again.
int tempFail(std::ostream& err, const std::string& why) {
  logError("bounce receive: " + why + "; the MTA keeps the report and retries");
  err << "sluicectl bounce receive: " << why << " (exit 75: the MTA keeps the report and retries)\n";
  return kTempFail;
}

int receive(const std::vector<std::string>& a, const config::Config& cfg, std::istream& in, std::ostream& out,
            std::ostream& err) {
  ParsedArgs p;
  std::string bad = parseArgs(a, 1, {{"--recipient", true}, {"--rules", true}}, &p);
  if (bad.empty() && !p.positional.empty()) bad = "unexpected argument \"" + printableArg(p.positional[0]) + "\"";
  if (!bad.empty()) {  // an error in master.cf, not in the report: keep it queued until fixed
    err << "sluicectl bounce receive: " << bad << " (exit 75: the MTA keeps the report and retries)\n" << kReceiveUsage;
    return kTempFail;
  }
  std::string envelopeRcpt = p.has("--recipient") ? *p.get("--recipient") : "";
  std::string rulesPath = p.has("--rules") ? *p.get("--rules") : "";
  setupLogging("sluicectl", cfg.log.target == "syslog" ? LogTarget::kSyslog : LogTarget::kStderr, LogLevel::kInfo,
               cfg.log.syslogFacility);
  std::string raw;
  raw.reserve(64 * 1024);
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    if (raw.size() < cfg.bounces.maxSize) raw.append(buf, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return tempFail(err, "error reading the report from standard input");
  auto parser = bounce::BounceParser::load(rulesPath.empty() ? bounce::defaultRulesPath() : rulesPath);
  if (!parser) return tempFail(err, parser.message());
  bounce::Report report = parser.value()->parse(raw, /*nameMta=*/true);
  if (report.kind != bounce::Kind::kBounce && report.kind != bounce::Kind::kComplaint) {
    logInfo("bounce receive: to=<" + envelopeRcpt + ">: " + bounce::toString(report.kind) +
            (report.problem.empty() ? "" : " (" + report.problem + ")") + "; ignored");
    out << "ignored: " << bounce::toString(report.kind) << "\n";
    return 0;
  }
  auto users = auth::UserStore::open(cfg.stateDir, true);  // owns STATE_DIR/server.secret
  std::string secret;
  {
    std::ifstream sf(cfg.stateDir + "/server.secret");
    std::getline(sf, secret);
  }
  if (!users || secret.size() < 16) {
    return tempFail(err, "no server secret in " + cfg.stateDir + (users ? "" : " (" + users.message() + ")"));
  }
  verp::VerpCodec codec(secret);
  bounce::BounceMatch m = bounce::matchReport(report, envelopeRcpt, codec);
  for (const auto& why : m.rejected) {
    logWarning("bounce receive: ignoring a VERP address that does not verify (forged?): " + why);
  }
  if (m.by == bounce::BounceMatch::By::kNone) {
    logWarning("bounce receive: to=<" + envelopeRcpt + ">: " + bounce::toString(report.kind) +
               (m.messageId.empty() ? "" : " quoting Message-ID <" + m.messageId + ">") + ": " + m.ignored + "; ignored");
    out << "ignored: not verified\n";
    return 0;
  }
  auto found = m.by == bounce::BounceMatch::By::kVerp ? lookup(cfg, m.verp->queueId, "") : lookup(cfg, "", m.messageId);
  if (!found) return tempFail(err, found.message());
  const std::optional<Original>& orig = found.value();
  if (!orig) {
    logWarning("bounce receive: to=<" + envelopeRcpt + ">: " + bounce::toString(report.kind) +
               " matches no message of ours; ignored");
    out << "ignored: no matching message\n";
    return 0;
  }
  std::vector<Target> targets = resolveTargets(report, m, *orig);
  if (targets.empty()) {
    out << "handled: 0 recipient(s), 0 suppressed\n";
    return 0;
  }
  std::string scope = cfg.bounces.globalScope ? "" : std::string(domainOf(orig->sender));
  size_t suppressed = 0;
  if (auto st = suppressTargets(cfg, report, *orig, scope, targets, &suppressed); !st) {
    return tempFail(err, "suppression list: " + st.message());
  }
  std::vector<events::Event> evs;
  for (const Target& t : targets) evs.push_back(eventFor(report, m, *orig, t));
  if (auto st = recordTargets(cfg, report, *orig, targets, evs); !st) return tempFail(err, st.message());
  auto log = events::EventLog::open(cfg.stateDir + "/events.jsonl");
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    if (log) {
      if (auto st = log.value()->append(evs[i]); !st) logWarning("bounce receive: " + st.message());
    }
    bool complaint = report.kind == bounce::Kind::kComplaint;
    bool supp = t.disposition == bounce::Disposition::kSuppress;
    logInfo(orig->queueId + ": to=<" + t.address + ">, " + (complaint ? "complaint" : "bounce") + " reason=" + t.r->reason +
            ", status=" + t.r->status +
            (supp ? ", suppressed (scope " + (scope.empty() ? std::string("global") : scope) + ")" : ", event only"));
  }
  if (!log) logWarning("bounce receive: " + log.message());
  out << "handled: " << targets.size() << " recipient(s), " << suppressed << " suppressed\n";
  return 0;
}

}  // namespace

int runBounceReceive(const std::vector<std::string>& a, const config::Config& cfg, std::istream& in, std::ostream& out,
                     std::ostream& err) {
  bool verp = !a.empty() && a[0] == "verp";
  if (wantsHelp(a)) {
    out << (verp ? kVerpUsage : kReceiveUsage);
    return 0;
  }
  if (verp) return verpAddress(a, cfg, out, err);
  try {
    return receive(a, cfg, in, out, err);
  } catch (const std::bad_alloc&) {
    return tempFail(err, "out of memory");
  } catch (const std::exception& e) {
    return tempFail(err, std::string("unexpected error: ") + e.what());
  } catch (...) {
    return tempFail(err, "unexpected error");
  }
}

}  // namespace sluice::ctl
