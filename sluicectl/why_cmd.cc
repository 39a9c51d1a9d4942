// why_cmd.cc - see why_cmd.h.
#include "why_cmd.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <deque>
#include <limits>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_util.h"
#include "events/event.h"
#include "queue/queue.h"

namespace sluice::ctl {
namespace {

const char* kWhyUsage =
    "Usage: sluicectl why ID [--json]\n"
    "\n"
    "What happened to each recipient of queued message ID: its state, every delivery attempt\n"
    "(time, MX host and address, TLS policy and outcome, the reply; hosts that failed before a\n"
    "session show \"(tried)\" and the TLS policy that applied), the next attempt of a deferred\n"
    "recipient, why a suppressed one was dropped (the list entry's reason, scope, source), and the\n"
    "bounces and complaints that arrived later (sluicectl bounce receive).\n";

const char* kEventsUsage =
    "Usage: sluicectl events tail [-n N] [--json] [-f|--follow]\n"
    "\n"
    "The last N (default 20) delivery events of sluice-relayd (STATE_DIR/events.jsonl): accepted,\n"
    "delivered, deferred, bounced, expired, suppressed, complained. --json prints the records as\n"
    "stored; -f or --follow keeps printing new ones (like tail -f).\n";

std::string when(int64_t ms) { return localTime(ms, true); }

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The queue's row of recipient `index` (state, next attempt, last reply), or nullptr.
const queue::MessageInfo::Rcpt* rcptInfo(const Result<std::optional<queue::MessageInfo>>& info, int index) {
  if (!info || !info.value()) return nullptr;
  for (const auto& ir : info.value()->recipients) {
    if (ir.index == index) return &ir;
  }
  return nullptr;
}

std::string human(const std::string& line) {
  auto e = events::eventFromJson(line);
  if (!e) return line;
  const auto& ev = e.value();
  std::string s = events::formatRfc3339Ms(ev.timeMs) + " " + ev.queueId + " " + events::toString(ev.type) + " <" +
                  ev.recipient + ">";
  if (ev.details.contains("mx")) s += " via " + ev.details["mx"].get<std::string>();
  if (ev.details.contains("reply")) s += ": " + ev.details["reply"].get<std::string>();
  if (ev.details.contains("next_attempt")) s += " (next " + ev.details["next_attempt"].get<std::string>() + ")";
  return s;
}

}  // namespace

int runWhyCommand(const std::vector<std::string>& a, const config::Config& cfg, std::ostream& out, std::ostream& err) {
  if (wantsHelp(a)) {
    out << kWhyUsage;
    return 0;
  }
  ParsedArgs p;
  std::string bad = parseArgs(a, 0, {{"--json"}}, &p);
  if (bad.empty() && p.positional.empty()) bad = "needs a queue ID";
  if (bad.empty() && p.positional.size() > 1) bad = "unexpected argument \"" + printableArg(p.positional[1]) + "\"";
  if (!bad.empty()) {
    err << "sluicectl why: " << bad << "\n" << kWhyUsage;
    return 2;
  }
  const std::string& id = p.positional[0];
  queue::QueueOptions o;
  o.stateDir = cfg.stateDir;
  o.readOnly = true;
  auto q = queue::Queue::open(o);
  if (!q) {
    err << "sluicectl why: " << q.message() << "\n";
    return 1;
  }
  auto env = q.value()->envelope(id);
  if (!env || !env.value()) {
    err << "sluicectl why: " << (env ? "no message " + id + " (finished messages are kept for delivery.retention)" : env.message()) << "\n";
    return 1;
  }
  auto attempts = q.value()->attempts(id);
  if (!attempts) {
    err << "sluicectl why: " << attempts.message() << "\n";
    return 1;
  }
  auto info = q.value()->show(id);
  const auto& e = *env.value();
  if (p.has("--json")) {
    nlohmann::json j = {{"id", e.id}, {"sender", e.sender}, {"received", events::formatRfc3339Ms(e.receivedMs)},
                        {"identity", e.identity}, {"recipients", nlohmann::json::array()}};
    for (const auto& r : e.recipients) {
      nlohmann::json jr = {{"index", r.index}, {"address", r.address}, {"state", r.state}, {"attempts", nlohmann::json::array()}};
      for (const auto& t : attempts.value()) {
        if (t.index != r.index) continue;
        if (t.tls == queue::Queue::kReportTls) {
          jr["reports"].push_back({{"time", events::formatRfc3339Ms(t.timeMs)}, {"mta", t.mx}, {"report", t.reply}});
          continue;
        }
        jr["attempts"].push_back({{"time", events::formatRfc3339Ms(t.timeMs)}, {"mx", t.mx}, {"ip", t.ip}, {"tls", t.tls}, {"reply", t.reply}});
      }
      if (const auto* ir = rcptInfo(info, r.index)) {
        if (r.state == "deferred" || r.state == "queued") jr["next_attempt"] = events::formatRfc3339Ms(ir->nextAttemptMs);
        if (r.state == "parked") jr["next_attempt"] = "due; waiting for its domain's deliveries in flight";
        if (r.state == "suppressed") jr["suppressed"] = ir->lastReply;
      }
      j["recipients"].push_back(jr);
    }
    out << j.dump(2) << "\n";
    return 0;
  }
  out << e.id << " from <" << e.sender << ">, received " << when(e.receivedMs)
      << (e.identity.empty() ? "" : ", user " + e.identity) << "\n";
  for (const auto& r : e.recipients) {
    out << "  <" << r.address << ">: " << r.state << ", " << r.attempts << " attempt(s)\n";
    for (const auto& t : attempts.value()) {
      if (t.index != r.index) continue;
      if (t.tls == queue::Queue::kReportTls) {  // an asynchronous bounce or complaint (bounce receive)
        out << "    " << when(t.timeMs) << "  " << (t.mx.empty() ? "" : "from " + t.mx + "  ") << t.reply << "\n";
        continue;
      }
      out << "    " << when(t.timeMs) << "  " << (t.mx.empty() ? "-" : t.mx + "[" + t.ip + "]") << "  "
          << (t.tls.empty() ? "" : t.tls + "  ") << t.reply << "\n";
    }
    if (const auto* ir = rcptInfo(info, r.index)) {
      if (r.state == "deferred" || r.state == "queued") {
        int64_t in = (ir->nextAttemptMs - nowMs() + 999) / 1000;
        out << "    next attempt " << when(ir->nextAttemptMs)
            << (in > 0 ? " (in " + std::to_string(in) + " s)" : " (due now)") << "\n";
      }
      if (r.state == "parked") out << "    next attempt: due now, waiting for its domain's deliveries in flight\n";
      if (r.state == "suppressed") out << "    suppressed: " << ir->lastReply << "\n";
    }
  }
  return 0;
}

int runEventsCommand(const std::vector<std::string>& a, const config::Config& cfg, std::ostream& out, std::ostream& err) {
  if (wantsHelp(a)) {
    out << kEventsUsage;
    return 0;
  }
  if (a.empty() || a[0] != "tail") {
    if (!a.empty()) err << "sluicectl events: unknown command \"" << printableArg(a[0]) << "\"\n";
    err << kEventsUsage;
    return 2;
  }
  ParsedArgs p;
  std::string bad = parseArgs(a, 1, {{"-n", true}, {"--json"}, {"--follow", false, "-f"}}, &p);
  if (bad.empty() && !p.positional.empty()) bad = "unexpected argument \"" + printableArg(p.positional[0]) + "\"";
  size_t n = 20;
  if (bad.empty() && p.has("-n")) {
    auto v = parseNumberArg("-n", *p.get("-n"), 0, std::numeric_limits<size_t>::max());
    if (v) n = static_cast<size_t>(*v);
    else bad = v.message();
  }
  if (!bad.empty()) {
    err << "sluicectl events tail: " << bad << "\n" << kEventsUsage;
    return 2;
  }
  bool json = p.has("--json"), follow = p.has("--follow");
  std::string path = cfg.stateDir + "/events.jsonl";
  std::ifstream in(path);
  if (!in) {
    err << "sluicectl events: cannot read " << path << " (has sluice-relayd run with this state_dir?)\n";
    return 1;
  }
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > n) last.pop_front();
  }
  for (const auto& l : last) out << (json ? l : human(l)) << "\n";
  out.flush();
  while (follow) {
    in.clear();
    if (std::getline(in, line)) {
      out << (json ? line : human(line)) << std::endl;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return 0;
}

}  // namespace sluice::ctl
