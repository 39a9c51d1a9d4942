// milter_protocol.cc - MilterSession: packet framing, the session's state machine, macros and the
// reply packets (the wire format is in milter_protocol.h).
#include "milter/milter_protocol.h"

#include <arpa/inet.h>

#include <cstring>

#include "base/log.h"

namespace sluice::milter {
namespace {

// Macro sets in the order of time; the 'D' packet names the command its set belongs to.
constexpr int kMacConnect = 0, kMacHelo = 1, kMacMail = 2, kMacRcpt = 3, kMacData = 4, kMacEoh = 5, kMacEom = 6;

int macroIndex(char cmd) {
  switch (cmd) {
    case 'C': return kMacConnect;
    case 'H': return kMacHelo;
    case 'M': return kMacMail;
    case 'R': return kMacRcpt;
    case 'T': return kMacData;
    case 'N': return kMacEoh;
    case 'E': return kMacEom;
    default: return -1;
  }
}

uint32_t readU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

void appendU32(std::string* out, uint32_t v) {
  v = htonl(v);
  out->append(reinterpret_cast<const char*>(&v), 4);
}

// "{name}" and "name" are the same macro.
std::string_view bare(std::string_view name) {
  if (name.size() >= 2 && name.front() == '{' && name.back() == '}') return name.substr(1, name.size() - 2);
  return name;
}

bool hasLineBreak(const char* s) { return std::strpbrk(s, "\r\n") != nullptr; }

}  // namespace

MilterSession::MilterSession(const MilterCallbacks& callbacks) : cb_(callbacks) {}

MilterSession::~MilterSession() { finish(); }

const char* MilterSession::toString(SessionState s) {
  switch (s) {
    case SessionState::kNegotiate: return "negotiate";
    case SessionState::kIdle: return "idle";
    case SessionState::kEnvelope: return "envelope";
    case SessionState::kContent: return "content";
    case SessionState::kClosed: return "closed";
  }
  return "?";
}

void MilterSession::enterState(SessionState s) {
  if (s == state_) return;
  if (logEnabled(LogLevel::kDebug)) {
    logDebug(std::string("milter session: ") + toString(state_) + " -> " + toString(s));
  }
  state_ = s;
}

void MilterSession::finish() {
  closeCallbacks();
  enterState(SessionState::kClosed);
}

// Once per filter context: after a negotiation (even a refused one), not again until the next.
void MilterSession::closeCallbacks() {
  if (!open_) return;
  open_ = false;
  cb_.close(*this);
}

bool MilterSession::protocolError(std::string why) {
  error_ = std::move(why);
  finish();
  return false;
}

std::pair<char*, size_t> MilterSession::space(size_t min) {
  if (head_ == tail_) head_ = tail_ = 0;
  if (cap_ - tail_ >= min) return {buf_.get() + tail_, cap_ - tail_};
  size_t used = tail_ - head_;
  if (used + min <= cap_) {  // room once the consumed bytes are gone
    std::memmove(buf_.get(), buf_.get() + head_, used);
  } else {
    size_t cap = cap_ ? cap_ : kInitialBuffer;
    while (cap < used + min) cap *= 2;
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (used) std::memcpy(bigger.get(), buf_.get() + head_, used);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  head_ = 0;
  tail_ = used;
  return {buf_.get() + tail_, cap_ - tail_};
}

size_t MilterSession::missing() const {
  size_t have = tail_ - head_;
  if (have < 4) return 0;
  uint32_t n = readU32(buf_.get() + head_);
  if (n > kMaxPacket || have - 4 >= n) return 0;
  return n - (have - 4);
}

bool MilterSession::feed(const char* data, size_t len) {
  if (state_ == SessionState::kClosed) return false;
  if (len == 0) return true;
  auto [p, room] = space(len);
  (void)room;
  std::memcpy(p, data, len);
  return received(len);
}

bool MilterSession::received(size_t len) {
  if (state_ == SessionState::kClosed) return false;
  tail_ += len;
  while (tail_ - head_ >= 4) {
    uint32_t n = readU32(buf_.get() + head_);
    if (n == 0) return protocolError("empty milter packet");
    if (n > kMaxPacket) return protocolError("milter packet of " + std::to_string(n) + " bytes (limit " +
                                             std::to_string(kMaxPacket) + ")");
    if (tail_ - head_ - 4 < n) break;
    char* p = buf_.get() + head_ + 4;
    head_ += 4 + n;
    if (!handle(p[0], p + 1, n - 1)) return false;
  }
  if (head_ == tail_) {
    head_ = tail_ = 0;
    if (cap_ > kInitialBuffer * 4) {  // after a large packet: back to the usual size
      buf_.reset();
      cap_ = 0;
    }
  }
  return true;
}

void MilterSession::packet(char cmd, std::string_view data) {
  appendU32(&out_, static_cast<uint32_t>(data.size() + 1));
  out_.push_back(cmd);
  out_.append(data);
}

// Answers a step: nothing when the MTA was told it need not wait (its no-reply flag), 'c' for a
// kNoReply the MTA does wait for (a faked flag), else the status's packet.
void MilterSession::reply(MilterStatus status, uint32_t noReplyFlag) {
  std::string text = std::move(reply_);
  reply_.clear();
  if (noReplyFlag != 0 && (noReplyToMta_ & noReplyFlag) != 0) return;
  switch (status) {
    case MilterStatus::kContinue:
    case MilterStatus::kNoReply: packet('c', {}); return;
    case MilterStatus::kAccept: packet('a', {}); return;
    case MilterStatus::kDiscard: packet('d', {}); return;
    case MilterStatus::kSkip: packet((mtaProtocol_ & proto::kSkip) ? 's' : 'c', {}); return;
    case MilterStatus::kReject:
    case MilterStatus::kTempfail: {
      char want = status == MilterStatus::kReject ? '5' : '4';
      if (!text.empty() && text[0] == want) {
        text.push_back('\0');
        packet('y', text);
      } else {
        packet(status == MilterStatus::kReject ? 'r' : 't', {});
      }
      return;
    }
  }
  packet('t', {});  // a status the protocol does not know: fail safe
}

bool MilterSession::handle(char cmd, char* data, size_t len) {
  if (state_ == SessionState::kNegotiate && cmd != 'O') {
    return protocolError(std::string("milter command '") + cmd + "' before option negotiation");
  }
  switch (cmd) {
    case 'O': return negotiate(data, len);
    case 'D': return macros(data, len);
    case 'C': return connect(data, len);
    case 'H':
    case 'M':
    case 'R': return argvStep(cmd, data, len);
    case 'L': return header(data, len);
    case 'N':
      if (state_ != SessionState::kEnvelope && state_ != SessionState::kContent) {
        return protocolError("end of headers outside a message");
      }
      enterState(SessionState::kContent);
      reply(cb_.endOfHeaders(*this), proto::kNrEoh);
      return true;
    case 'B':
      if (state_ != SessionState::kEnvelope && state_ != SessionState::kContent) {
        return protocolError("body chunk outside a message");
      }
      enterState(SessionState::kContent);
      reply(cb_.body(*this, reinterpret_cast<const unsigned char*>(data), len), proto::kNrBody);
      return true;
    case 'E': return endOfMessage(data, len);
    case 'A':
      if (state_ == SessionState::kEnvelope || state_ == SessionState::kContent) cb_.abort(*this);
      clearMacros(kMacMail);
      enterState(SessionState::kIdle);
      return true;  // no reply
    case 'T':
      clearMacros(kMacData + 1);
      reply(MilterStatus::kContinue, proto::kNrData);
      return true;
    case 'U': reply(MilterStatus::kContinue, proto::kNrUnknown); return true;
    case 'Q':
      finish();
      return false;
    case 'K': {  // the same MTA connection serves a new SMTP session: a fresh filter context
      if (state_ == SessionState::kEnvelope || state_ == SessionState::kContent) cb_.abort(*this);
      closeCallbacks();
      priv_ = nullptr;
      clearMacros(0);
      uint32_t a = 0, p = 0;  // rebuild the callbacks' per-connection view of the negotiation
      open_ = true;
      negotiating_ = true;
      MilterStatus st = cb_.negotiate(*this, mtaActions_, mtaProtocol_ | proto::kNoReplyFlags, &a, &p);
      negotiating_ = false;
      if (st != MilterStatus::kContinue) return protocolError("filter refused the new session");
      enterState(SessionState::kIdle);
      return true;
    }
    default: return protocolError(std::string("unknown milter command 0x") + "0123456789abcdef"[(cmd >> 4) & 15] +
                                  "0123456789abcdef"[cmd & 15]);
  }
}

bool MilterSession::negotiate(const char* data, size_t len) {
  if (state_ != SessionState::kNegotiate) return protocolError("second option negotiation");
  if (len < 12) return protocolError("option negotiation too short");
  uint32_t version = readU32(data);
  if (version < 2) return protocolError("MTA milter protocol version " + std::to_string(version) + " too old");
  mtaActions_ = readU32(data + 4);
  if (mtaActions_ == 0) mtaActions_ = 0xF;    // version 1 defaults, as libmilter
  mtaProtocol_ = readU32(data + 8);
  if (mtaProtocol_ == 0) mtaProtocol_ = 0x3F;
  uint32_t wantActions = 0, wantProtocol = 0;
  open_ = true;
  negotiating_ = true;
  MilterStatus st = cb_.negotiate(*this, mtaActions_, mtaProtocol_ | proto::kNoReplyFlags, &wantActions, &wantProtocol);
  negotiating_ = false;
  if (st != MilterStatus::kContinue) return protocolError("filter refused the MTA's options");
  if ((wantActions & mtaActions_) != wantActions) return protocolError("MTA does not offer the actions needed");
  actions_ = wantActions;
  // Faked no-reply flags are not sent; NODATA/NOUNKNOWN only to an MTA that knows them.
  uint32_t toMta = wantProtocol & ~(proto::kNoReplyFlags & ~mtaProtocol_);
  toMta &= ~((proto::kNoData | proto::kNoUnknown) & ~mtaProtocol_);
  toMta &= ~(proto::kMds256K | proto::kMds1M);
  if ((toMta & mtaProtocol_) != toMta) return protocolError("MTA does not offer the protocol steps needed");
  noReplyToMta_ = toMta & proto::kNoReplyFlags;
  std::string body;
  appendU32(&body, version < proto::kVersion ? version : proto::kVersion);
  appendU32(&body, actions_);
  appendU32(&body, toMta);
  if (actions_ & proto::kSetSymList) {
    for (int i = 0; i < proto::kStages; ++i) {
      if (symLists_[i].empty()) continue;
      appendU32(&body, static_cast<uint32_t>(i));
      body.append(symLists_[i]).push_back('\0');
    }
  }
  packet('O', body);
  enterState(SessionState::kIdle);
  return true;
}

bool MilterSession::macros(char* data, size_t len) {
  if (len < 1) return protocolError("empty macro packet");
  int idx = macroIndex(data[0]);
  if (len > 1 && data[len - 1] != '\0') return protocolError("macro packet not \\0-terminated");
  if (idx < 0) return true;  // macros for a step we keep none of (libmilter ignores them too)
  auto& set = macros_[idx];
  set.clear();
  const char* p = data + 1;
  const char* end = data + len;
  while (p < end) {
    const char* name = p;
    p += std::strlen(p) + 1;
    if (p >= end) break;  // a name without a value: ignored
    const char* value = p;
    p += std::strlen(p) + 1;
    set.emplace_back(std::string(bare(name)), value);
  }
  return true;
}

void MilterSession::clearMacros(int fromIndex) {
  for (int i = fromIndex; i < proto::kStages; ++i) macros_[i].clear();
}

const char* MilterSession::symbol(std::string_view name) const {
  std::string_view want = bare(name);
  for (int i = proto::kStages - 1; i >= 0; --i) {  // the latest step's value first
    for (const auto& [n, v] : macros_[i]) {
      if (n == want) return v.c_str();
    }
  }
  return nullptr;
}

bool MilterSession::connect(char* data, size_t len) {
  if (state_ != SessionState::kIdle) return protocolError("connect inside a message");
  clearMacros(kMacConnect + 1);
  const char* host = data;
  size_t hostLen = strnlen(data, len);
  if (hostLen + 2 > len) return protocolError("connect packet too short");
  char family = data[hostLen + 1];
  std::string address;
  if (family == '4' || family == '6' || family == 'L') {
    size_t at = hostLen + 2 + 2;  // past the port
    if (at >= len || data[len - 1] != '\0') return protocolError("connect packet without an address");
    if (family != 'L') address = data + at;
  } else if (family != 'U') {
    return protocolError(std::string("connect packet with unknown family '") + family + "'");
  }
  reply(cb_.connect(*this, host, address.c_str()), proto::kNrConnect);
  return true;
}

// HELO, MAIL and RCPT: \0-terminated strings, handed on as an argv.
bool MilterSession::argvStep(char cmd, char* data, size_t len) {
  if (len == 0 || data[len - 1] != '\0') return protocolError(std::string("milter '") + cmd + "' not \\0-terminated");
  if (cmd == 'H') {
    if (state_ != SessionState::kIdle) return protocolError("HELO inside a message");
    clearMacros(kMacHelo + 1);
    reply(cb_.helo(*this, data), proto::kNrHelo);
    return true;
  }
  if (cmd == 'R' && state_ != SessionState::kEnvelope) return protocolError("RCPT outside a message");
  if (cmd == 'M') {
    if (state_ == SessionState::kEnvelope || state_ == SessionState::kContent) cb_.abort(*this);  // no abort seen
    enterState(SessionState::kEnvelope);
  }
  clearMacros((cmd == 'M' ? kMacMail : kMacRcpt) + 1);
  argv_.clear();
  for (char* p = data; p < data + len; p += std::strlen(p) + 1) argv_.push_back(p);
  argv_.push_back(nullptr);
  MilterStatus st = cmd == 'M' ? cb_.envFrom(*this, argv_.data()) : cb_.envRcpt(*this, argv_.data());
  if (cmd == 'M' && st != MilterStatus::kContinue && st != MilterStatus::kNoReply) {
    enterState(SessionState::kIdle);  // the message ends here for the MTA too
  }
  reply(st, cmd == 'M' ? proto::kNrMail : proto::kNrRcpt);
  return true;
}

bool MilterSession::header(char* data, size_t len) {
  if (state_ != SessionState::kEnvelope && state_ != SessionState::kContent) {
    return protocolError("header field outside a message");
  }
  if (len < 2 || data[len - 1] != '\0') return protocolError("header packet not \\0-terminated");
  size_t nameLen = strnlen(data, len);
  if (nameLen + 1 >= len) return protocolError("header packet without a value");
  enterState(SessionState::kContent);
  reply(cb_.header(*this, data, data + nameLen + 1), proto::kNrHeader);
  return true;
}

bool MilterSession::endOfMessage(char* data, size_t len) {
  if (state_ != SessionState::kEnvelope && state_ != SessionState::kContent) {
    return protocolError("end of message outside a message");
  }
  if (len > 0) {  // a last body chunk in the same packet
    MilterStatus st = cb_.body(*this, reinterpret_cast<const unsigned char*>(data), len);
    (void)st;  // its verdict, if any, was kept by the filter for end of message
  }
  inEom_ = true;
  MilterStatus st = cb_.endOfMessage(*this);
  inEom_ = false;
  reply(st, 0);
  clearMacros(kMacMail);
  enterState(SessionState::kIdle);
  return true;
}

bool MilterSession::setReply(const char* rcode, const char* xcode, const char* text) {
  if (rcode == nullptr || std::strlen(rcode) != 3 || (rcode[0] != '4' && rcode[0] != '5') ||
      !std::isdigit(static_cast<unsigned char>(rcode[1])) || !std::isdigit(static_cast<unsigned char>(rcode[2]))) {
    return false;
  }
  if ((xcode && hasLineBreak(xcode)) || (text && hasLineBreak(text))) return false;
  std::string r = rcode;
  if (xcode && *xcode) {
    if (xcode[0] != rcode[0]) return false;  // 4.x.x with 4yz, 5.x.x with 5yz
    r.append(" ").append(xcode);
  }
  if (text && *text) r.append(" ").append(text);
  reply_ = std::move(r);
  return true;
}

bool MilterSession::insertHeader(int index, const char* name, const char* value) {
  if (!inEom_ || !(actions_ & proto::kAddHeaders) || index < 0 || !name || !*name || !value) return false;
  std::string body;
  appendU32(&body, static_cast<uint32_t>(index));
  body.append(name).push_back('\0');
  body.append(value).push_back('\0');
  packet('i', body);
  return true;
}

bool MilterSession::changeHeader(const char* name, int index, const char* value) {
  if (!inEom_ || !(actions_ & proto::kChangeHeaders) || index < 0 || !name || !*name) return false;
  std::string body;
  appendU32(&body, static_cast<uint32_t>(index));
  body.append(name).push_back('\0');
  body.append(value ? value : "").push_back('\0');
  packet('m', body);
  return true;
}

bool MilterSession::addHeader(const char* name, const char* value) {
  if (!inEom_ || !(actions_ & proto::kAddHeaders) || !name || !*name || !value) return false;
  std::string body(name);
  body.push_back('\0');
  body.append(value).push_back('\0');
  packet('h', body);
  return true;
}

bool MilterSession::quarantine(const char* reason) {
  if (!inEom_ || !(actions_ & proto::kQuarantine) || !reason || !*reason) return false;
  std::string body(reason);
  body.push_back('\0');
  packet('q', body);
  return true;
}

bool MilterSession::setSymbolList(int stage, const char* macros) {
  if (!negotiating_ || stage < 0 || stage >= proto::kStages || !macros || !*macros) return false;
  if (!symLists_[stage].empty()) return symLists_[stage] == macros;  // once per stage (the same again: a new session after K)
  symLists_[stage] = macros;
  return true;
}

}  // namespace sluice::milter
