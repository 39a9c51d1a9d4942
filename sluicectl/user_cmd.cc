// user_cmd.cc - see user_cmd.h. The queue commands read and change STATE_DIR/queue.db directly:
// it is an SQLite database in WAL mode made for several processes (relayd's scheduler re-reads
// due work from it), so no daemon has to be running to inspect or repair a queue.
#include "user_cmd.h"

#include "cli_util.h"
#include "file_owner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>

#include "auth/user_store.h"
#include "queue/queue.h"

namespace sluice::ctl {
namespace {

const char* kUserUsage =
    "Usage: sluicectl user add NAME [--domains D1,D2]   create; prints the API key ONCE\n"
    "       sluicectl user rotate NAME                   new key (the old one stops working)\n"
    "       sluicectl user disable|enable NAME\n"
    "       sluicectl user remove NAME\n"
    "       sluicectl user list [--json]\n"
    "\n"
    "Users authenticate to sluice-relayd's submission ports (AUTH PLAIN/LOGIN over TLS) with NAME\n"
    "and the key. Only an HMAC-SHA256 of the key (with STATE_DIR/server.secret) is stored, so a\n"
    "lost key cannot be shown again: rotate it. Which senders a user may use is set in\n"
    "sluice.yaml's identities (sasl_usernames: [NAME]).\n"
    "Only add creates STATE_DIR/users.db and STATE_DIR/server.secret when they are missing (run as\n"
    "root: owned by run_as_user, mode 0600, as sluice-relayd makes them); the others never create\n"
    "files (list without users.db: no users).\n";

const char* kQueueUsage =
    "Usage: sluicectl queue list [--json] [--limit N]\n"
    "       sluicectl queue show ID [--json]\n"
    "       sluicectl queue hold|release|delete ID\n"
    "       sluicectl queue retry ID|--all\n"
    "       sluicectl queue totals [--json]\n"
    "\n"
    "The queue of sluice-relayd (STATE_DIR/queue.db and STATE_DIR/spool). hold keeps a message's\n"
    "unfinished recipients from delivery until release; retry makes deferred recipients due now (as\n"
    "postqueue -f does); delete removes the message and its file.\n";

std::string when(int64_t ms) { return localTime(ms); }

std::string listHeader() {
  std::ostringstream h;
  h << std::left << std::setw(24) << "USER" << std::setw(10) << "STATE" << std::setw(21) << "CREATED"
    << std::setw(21) << "KEY ROTATED" << "DOMAINS\n";
  return h.str();
}

// Whether `path` exists; an error for anything but "no such file" (EACCES: not root, not
// run_as_user), so that an unreadable state_dir is never taken for an empty one.
Result<bool> fileExists(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return makeError(path + ": " + std::strerror(errno) + " (run sluicectl as root or as run_as_user)");
}

nlohmann::json toJson(const queue::MessageInfo& m) {
  nlohmann::json j = {{"id", m.id}, {"sender", m.sender}, {"size", m.size}, {"received_ms", m.receivedMs},
                      {"identity", m.identity}, {"client", m.clientAddress}, {"message_id", m.messageId}};
  j["recipients"] = nlohmann::json::array();
  for (const auto& r : m.recipients) {
    j["recipients"].push_back({{"index", r.index}, {"address", r.address}, {"state", r.state},
                               {"attempts", r.attempts}, {"next_attempt_ms", r.nextAttemptMs}, {"last_reply", r.lastReply}});
  }
  return j;
}

// The options and the number of NAME/ID arguments of each subcommand.
struct SubSpec {
  std::string_view name;
  std::vector<OptSpec> options;
  size_t minArgs, maxArgs;
  const char* argName;
};

const SubSpec* findSub(const std::vector<SubSpec>& subs, const std::string& name) {
  for (const auto& s : subs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// "" or the usage error of a[1...] for `sub`.
std::string checkArgs(const std::vector<std::string>& a, const SubSpec& sub, ParsedArgs* p) {
  std::string bad = parseArgs(a, 1, sub.options, p);
  if (!bad.empty()) return bad;
  if (p->positional.size() < sub.minArgs) return std::string("needs ") + sub.argName;
  if (p->positional.size() > sub.maxArgs) return "unexpected argument \"" + printableArg(p->positional[sub.maxArgs]) + "\"";
  return "";
}

const std::vector<SubSpec>& userSubs() {
  static const std::vector<SubSpec> kSubs = {
      {"add", {{"--domains", true}}, 1, 1, "NAME"}, {"rotate", {}, 1, 1, "NAME"},  {"disable", {}, 1, 1, "NAME"},
      {"enable", {}, 1, 1, "NAME"},                 {"remove", {}, 1, 1, "NAME"},  {"list", {{"--json"}}, 0, 0, ""},
  };
  return kSubs;
}

const std::vector<SubSpec>& queueSubs() {
  static const std::vector<SubSpec> kSubs = {
      {"list", {{"--json"}, {"--limit", true}}, 0, 0, ""},
      {"show", {{"--json"}}, 1, 1, "a queue ID"},
      {"hold", {}, 1, 1, "a queue ID"},
      {"release", {}, 1, 1, "a queue ID"},
      {"delete", {}, 1, 1, "a queue ID"},
      {"retry", {{"--all"}}, 0, 1, "a queue ID or --all"},
      {"totals", {{"--json"}}, 0, 0, ""},
  };
  return kSubs;
}

}  // namespace

int runUserCommand(const std::vector<std::string>& a, const config::Config& cfg, std::ostream& out, std::ostream& err) {
  if (auto done = helpOrNoSubcommand(a, kUserUsage, out, err)) return *done;
  const std::string& cmd = a[0];
  const SubSpec* sub = findSub(userSubs(), cmd);
  if (sub == nullptr) {
    err << "sluicectl user: unknown command \"" << printableArg(cmd) << "\"\n" << kUserUsage;
    return 2;
  }
  ParsedArgs p;
  if (std::string bad = checkArgs(a, *sub, &p); !bad.empty()) {
    err << "sluicectl user " << cmd << ": " << bad << "\n" << kUserUsage;
    return 2;
  }
  const std::string name = p.positional.empty() ? "" : p.positional[0];
  const std::string dbPath = cfg.stateDir + "/users.db", secretPath = cfg.stateDir + "/server.secret";
  auto haveDb = fileExists(dbPath);
  if (!haveDb) {
    err << "sluicectl user " << cmd << ": " << haveDb.message() << "\n";
    return 1;
  }
  // Only `add` creates files. The others read or change existing users: without users.db
  // there are none, and a file made here (by root, say) could keep sluice-relayd from its own.
  if (!*haveDb && cmd == "list") {
    if (!p.has("--json")) out << listHeader();
    err << "sluicectl user list: no users yet (" << dbPath << " does not exist; `sluicectl user add NAME` creates it)\n";
    return 0;
  }
  if (!*haveDb && cmd != "add") {
    err << "sluicectl user " << cmd << ": no user " << name << " (no users yet: " << dbPath << " does not exist)\n";
    return 1;
  }
  // Run as root, the files `add` creates go to run_as_user, as if sluice-relayd had made them.
  std::optional<RunAs> owner;
  std::vector<std::string> created;  // the files this run creates
  if (cmd == "add") {
    auto haveSecret = fileExists(secretPath);
    if (!haveSecret) {
      err << "sluicectl user add: " << haveSecret.message() << "\n";
      return 1;
    }
    if (!*haveSecret || !*haveDb) {
      auto who = ownerOfNewFiles(cfg.runAsUser);
      if (!who) {
        err << "sluicectl user add: " << who.message() << "\n";
        return 1;
      }
      owner = who.value();
      auto haveDir = fileExists(cfg.stateDir);
      if (haveDir && !*haveDir) {
        err << "sluicectl user add: state_dir " << cfg.stateDir << " does not exist; start sluice-relayd once "
            << "(it creates it), or create it owned by run_as_user, mode 0700\n";
        return 1;
      }
      if (!*haveSecret) created.push_back(secretPath);
      if (!*haveDb) created.insert(created.end(), {dbPath, dbPath + "-wal", dbPath + "-shm"});
    }
  }
  auto store = auth::UserStore::open(cfg.stateDir, cmd == "add");
  if (owner) {  // also when the open failed: what it did create must not stay root's
    for (const auto& f : created) {
      auto there = fileExists(f);
      if (!there || !*there) continue;
      if (auto st = giveTo(f, *owner); !st) {
        err << "sluicectl user " << cmd << ": " << st.message() << "\n";
        return 1;
      }
    }
  }
  if (!store) {
    err << "sluicectl user " << cmd << ": " << store.message() << "\n";
    return 1;
  }
  // Files made earlier by someone else (an older sluicectl run as root, say): tell, change nothing.
  if (::geteuid() == 0) {
    if (auto who = runAsFor(cfg.runAsUser); who && who.value()) {
      for (const auto& f : {secretPath, dbPath}) {
        if (std::find(created.begin(), created.end(), f) != created.end()) continue;
        if (std::string note = foreignOwnerNote(f, *who.value(), "sluice-relayd"); !note.empty()) {
          err << "sluicectl user " << cmd << ": warning: " << note << "\n";
        }
      }
    }
  }
  auto& s = *store.value();
  if (cmd == "add") {
    std::string domains = p.has("--domains") ? *p.get("--domains") : "";
    auto key = s.add(name, domains);
    if (!key) {
      err << "sluicectl user add: " << key.message() << "\n";
      return 1;
    }
    out << "user " << name << " created. Its key, shown only now:\n\n  " << key.value() << "\n\n"
        << "SMTP AUTH (PLAIN or LOGIN, over TLS on relayd.submission_listen or relayd.smtps_listen):\n"
        << "  username " << name << ", password the key above.\n"
        << "Allow its senders in sluice.yaml: identities: - { name: " << name << ", sasl_usernames: [" << name
        << "], senders: [" << (domains.empty() ? "example.com" : domains) << "] }\n";
    return 0;
  }
  if (cmd == "rotate") {
    auto key = s.rotate(name);
    if (!key) {
      err << "sluicectl user rotate: " << key.message() << "\n";
      return 1;
    }
    out << "user " << name << ": new key, shown only now (the old one no longer works):\n\n  " << key.value() << "\n";
    return 0;
  }
  if (cmd == "disable" || cmd == "enable") {
    auto r = s.setDisabled(name, cmd == "disable");
    if (!r || !r.value()) {
      err << "sluicectl user " << cmd << ": " << (r ? "no user " + name : r.message()) << "\n";
      return 1;
    }
    out << "user " << name << " " << cmd << "d\n";
    return 0;
  }
  if (cmd == "remove") {
    auto r = s.remove(name);
    if (!r || !r.value()) {
      err << "sluicectl user remove: " << (r ? "no user " + name : r.message()) << "\n";
      return 1;
    }
    out << "user " << name << " removed\n";
    return 0;
  }
  if (cmd == "list") {
    auto users = s.list();
    if (!users) {
      err << "sluicectl user list: " << users.message() << "\n";
      return 1;
    }
    if (p.has("--json")) {
      for (const auto& u : users.value()) {
        out << nlohmann::json({{"name", u.name}, {"disabled", u.disabled}, {"created_ms", u.createdMs},
                               {"rotated_ms", u.rotatedMs}, {"domains", u.domains}})
                   .dump()
            << "\n";
      }
      return 0;
    }
    out << std::left << listHeader();
    for (const auto& u : users.value()) {
      out << std::setw(24) << u.name << std::setw(10) << (u.disabled ? "disabled" : "enabled") << std::setw(21)
          << when(u.createdMs) << std::setw(21) << when(u.rotatedMs) << u.domains << "\n";
    }
    return 0;
  }
  err << "sluicectl user: unknown command \"" << printableArg(cmd) << "\"\n" << kUserUsage;
  return 2;
}

int runQueueCommand(const std::vector<std::string>& a, const config::Config& cfg, std::ostream& out, std::ostream& err) {
  if (auto done = helpOrNoSubcommand(a, kQueueUsage, out, err)) return *done;
  const std::string& cmd = a[0];
  const SubSpec* sub = findSub(queueSubs(), cmd);
  if (sub == nullptr) {
    err << "sluicectl queue: unknown command \"" << printableArg(cmd) << "\"\n" << kQueueUsage;
    return 2;
  }
  ParsedArgs p;
  std::string bad = checkArgs(a, *sub, &p);
  if (bad.empty() && cmd == "retry" && p.positional.empty() && !p.has("--all")) bad = "needs a queue ID or --all";
  if (bad.empty() && cmd == "retry" && !p.positional.empty() && p.has("--all")) bad = "a queue ID or --all, not both";
  size_t limit = 0;  // queue list: 0 = every message
  if (bad.empty() && p.has("--limit")) {
    auto n = parseNumberArg("--limit", *p.get("--limit"), 0, std::numeric_limits<size_t>::max());
    if (n) limit = static_cast<size_t>(*n);
    else bad = n.message();
  }
  if (!bad.empty()) {
    err << "sluicectl queue " << cmd << ": " << bad << "\n" << kQueueUsage;
    return 2;
  }
  const std::string id = p.positional.empty() ? "" : p.positional[0];
  bool json = p.has("--json");
  queue::QueueOptions o;
  o.stateDir = cfg.stateDir;
  o.readOnly = cmd == "list" || cmd == "show" || cmd == "totals";
  // Never the crash recovery: relayd runs it at its start, and run here beside a live relayd it
  // would delete spool files written but not yet indexed (messages about to be acknowledged).
  o.recover = false;
  auto q = queue::Queue::open(o);
  if (!q) {
    err << "sluicectl queue: " << q.message() << " (has sluice-relayd ever run with state_dir " << cfg.stateDir << "?)\n";
    return 1;
  }
  auto& queue = *q.value();
  if (cmd == "list") {
    auto msgs = queue.list(limit);
    if (!msgs) {
      err << "sluicectl queue list: " << msgs.message() << "\n";
      return 1;
    }
    if (json) {
      for (const auto& m : msgs.value()) out << toJson(m).dump() << "\n";
      return 0;
    }
    for (const auto& m : msgs.value()) {  // postqueue -p style
      out << std::left << std::setw(18) << m.id << std::right << std::setw(9) << m.size << " " << when(m.receivedMs)
          << "  " << (m.sender.empty() ? "<>" : m.sender) << (m.identity.empty() ? "" : "  (user " + m.identity + ")")
          << "\n";
      for (const auto& r : m.recipients) {
        out << "    " << std::left << std::setw(10) << r.state << r.address
            << (r.lastReply.empty() ? "" : "\n              (" + r.lastReply + ")") << "\n";
      }
    }
    out << "-- " << msgs.value().size() << " message(s)\n";
    return 0;
  }
  if (cmd == "retry") {
    auto n = queue.retryNow(id);  // "": every message (--all)
    if (!n) {
      err << "sluicectl queue retry: " << n.message() << "\n";
      return 1;
    }
    out << n.value() << " deferred recipient(s) due now\n";
    return 0;
  }
  if (cmd == "show") {
    auto m = queue.show(id);
    if (!m || !m.value()) {
      err << "sluicectl queue show: " << (m ? "no message " + id : m.message()) << "\n";
      return 1;
    }
    const auto& mi = *m.value();
    if (json) {
      out << toJson(mi).dump(2) << "\n";
      return 0;
    }
    out << "id:         " << mi.id << "\nfrom:       <" << mi.sender << ">\nsize:       " << mi.size
        << "\nreceived:   " << when(mi.receivedMs) << "\nclient:     " << mi.clientAddress << "\nuser:       "
        << (mi.identity.empty() ? "-" : mi.identity) << "\nmessage-id: " << mi.messageId << "\nspool file: "
        << queue.spoolPath(mi.id) << "\n";
    for (const auto& r : mi.recipients) {
      out << "rcpt " << r.index << ": <" << r.address << "> " << r.state << ", attempts " << r.attempts
          << ", next " << when(r.nextAttemptMs) << (r.lastReply.empty() ? "" : ", last reply: " + r.lastReply) << "\n";
    }
    return 0;
  }
  if (cmd == "hold" || cmd == "release") {
    auto n = cmd == "hold" ? queue.hold(id) : queue.release(id);
    if (!n) {
      err << "sluicectl queue " << cmd << ": " << n.message() << "\n";
      return 1;
    }
    if (n.value() == 0) {
      err << "sluicectl queue " << cmd << ": no " << (cmd == "hold" ? "waiting" : "held") << " recipient of " << id << "\n";
      return 1;
    }
    out << id << ": " << n.value() << " recipient(s) " << (cmd == "hold" ? "held" : "released") << "\n";
    return 0;
  }
  if (cmd == "delete") {
    auto r = queue.remove(id);
    if (!r || !r.value()) {
      err << "sluicectl queue delete: " << (r ? "no message " + id : r.message()) << "\n";
      return 1;
    }
    out << id << ": deleted\n";
    return 0;
  }
  if (cmd == "totals") {
    auto t = queue.totals();
    if (!t) {
      err << "sluicectl queue totals: " << t.message() << "\n";
      return 1;
    }
    if (json) {
      nlohmann::json j = {{"messages", t->messages}, {"by_state", nlohmann::json::object()},
                          {"by_destination", nlohmann::json::object()}};
      for (const auto& [k, v] : t->byState) j["by_state"][k] = v;
      for (const auto& [k, v] : t->byDestination) j["by_destination"][k] = v;
      out << j.dump() << "\n";
      return 0;
    }
    out << "messages: " << t->messages << "\nrecipients by state:\n";
    for (const auto& [k, v] : t->byState) out << "  " << std::left << std::setw(12) << k << v << "\n";
    out << "waiting recipients by destination:\n";
    for (const auto& [k, v] : t->byDestination) out << "  " << std::left << std::setw(32) << k << v << "\n";
    return 0;
  }
  err << "sluicectl queue: unknown command \"" << printableArg(cmd) << "\"\n" << kQueueUsage;
  return 2;
}

}  // namespace sluice::ctl
