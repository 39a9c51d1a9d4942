// milter_protocol.h - the filter side of the Sendmail/Postfix milter protocol (version 6), without
// libmilter: one MilterSession per MTA connection turns the bytes the MTA sends into calls of a
// MilterCallbacks table and the callbacks' answers into reply packets. It does no I/O: feed() takes
// what was read, output() holds what must be written (milter/milter_server.cc does the sockets).
//
// Wire format (both directions): a packet is a 4-byte length in network order (counting the
// command byte and the data), one command byte, then the data. From the MTA:
//   'O' optneg   version, actions, protocol (3 x uint32)
//   'D' macros   the command they belong to (one byte), then name\0value\0 pairs
//   'C' connect  hostname\0, family ('4' '6' 'L' 'U'), port (uint16, not for 'U'), address\0
//   'H' helo\0   'M'/'R' MAIL/RCPT arguments, each \0-terminated (the address first, with <>)
//   'L' header   name\0value\0     'N' end of headers   'B' body chunk (raw bytes)
//   'E' end of message (may carry a last body chunk)   'A' abort the message   'T' DATA
//   'U' unknown SMTP command\0     'Q' quit     'K' quit, a new SMTP session follows on this one
// To the MTA: 'c' continue, 'r' reject, 't' tempfail, 'a' accept, 'd' discard, 's' skip,
// 'y' "CODE X.Y.Z text"\0 (a reject or tempfail with its text), and at end of message the changes
// 'h' add header (name\0value\0), 'i' insert header (uint32 index, name\0value\0), 'm' change
// header (uint32 index, name\0value\0; an empty value deletes), 'q' quarantine (reason\0); the
// optneg reply is 'O' version, actions, protocol, then per stage a uint32 stage and a macro list\0.
//
// Invariants and limits:
// - One explicit state machine (SessionState, enterState()): optneg first; RCPT, headers, end of
//   headers, body and end of message only inside a message (after MAIL). A packet out of order, an
//   unknown command, a packet over kMaxPacket bytes, or data that is not the \0-terminated strings
//   the command needs ends the session (feed() returns false): the MTA then applies its
//   milter_default_action (tempfail in our contrib configs), and nothing is accepted half-checked.
// - Steps negotiated "no reply" (SMFIP_NR_*) are never answered; a no-reply step the MTA did not
//   offer is answered 'c' by the session itself, as libmilter does ("faked" flags), so callbacks
//   see the same offer whatever the MTA.
// - Header changes are possible only during the end-of-message callback and only when the action
//   was negotiated; symbol lists only during negotiation.
// Status values and flag bits are the protocol's (the same numbers as libmilter's mfapi.h/mfdef.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::milter {

namespace proto {
constexpr uint32_t kVersion = 6;
// Actions (SMFIF_*).
constexpr uint32_t kAddHeaders = 0x1, kChangeBody = 0x2, kAddRcpt = 0x4, kDeleteRcpt = 0x8,
                   kChangeHeaders = 0x10, kQuarantine = 0x20, kChangeFrom = 0x40, kAddRcptPar = 0x80,
                   kSetSymList = 0x100;
// Protocol flags (SMFIP_*).
constexpr uint32_t kNoConnect = 0x1, kNoHelo = 0x2, kNoMail = 0x4, kNoRcpt = 0x8, kNoBody = 0x10,
                   kNoHeaders = 0x20, kNoEoh = 0x40, kNrHeader = 0x80, kNoUnknown = 0x100, kNoData = 0x200,
                   kSkip = 0x400, kRcptRej = 0x800, kNrConnect = 0x1000, kNrHelo = 0x2000, kNrMail = 0x4000,
                   kNrRcpt = 0x8000, kNrData = 0x10000, kNrUnknown = 0x20000, kNrEoh = 0x40000,
                   kNrBody = 0x80000, kHeaderLeadingSpace = 0x100000, kMds256K = 0x10000000,
                   kMds1M = 0x20000000;
constexpr uint32_t kNoReplyFlags =
    kNrConnect | kNrHelo | kNrMail | kNrRcpt | kNrData | kNrUnknown | kNrHeader | kNrEoh | kNrBody;
// Macro stages (SMFIM_*), as smfi_setsymlist numbers them.
enum Stage : int { kStageConnect = 0, kStageHelo, kStageMail, kStageRcpt, kStageData, kStageEom, kStageEoh };
constexpr int kStages = 7;
}  // namespace proto

// A callback's answer (SMFIS_* numbers).
enum class MilterStatus : int {
  kContinue = 0, kReject = 1, kDiscard = 2, kAccept = 3, kTempfail = 4, kNoReply = 7, kSkip = 8
};

// What a callback may ask of the session it runs in (libmilter's smfi_* calls). Each returns false
// when the request is not allowed now (action not negotiated, wrong step, bad argument).
class MilterCtx {
 public:
  virtual const char* symbol(std::string_view name) const = 0;  // "i" or "{i}"; nullptr if unset
  virtual void* priv() const = 0;
  virtual void setPriv(void* p) = 0;
  virtual bool setReply(const char* rcode, const char* xcode, const char* text) = 0;
  virtual bool insertHeader(int index, const char* name, const char* value) = 0;
  virtual bool changeHeader(const char* name, int index, const char* value) = 0;  // value nullptr: delete
  virtual bool addHeader(const char* name, const char* value) = 0;
  virtual bool quarantine(const char* reason) = 0;
  virtual bool setSymbolList(int stage, const char* macros) = 0;

 protected:
  ~MilterCtx() = default;
};

// The filter: every entry must be set. negotiate() gets the MTA's actions and protocol flags (plus
// the no-reply flags the session can fake) and writes the ones wanted; any status but kContinue
// refuses the connection.
struct MilterCallbacks {
  MilterStatus (*negotiate)(MilterCtx&, uint32_t actions, uint32_t protocol, uint32_t* wantActions,
                            uint32_t* wantProtocol);
  MilterStatus (*connect)(MilterCtx&, const char* hostname, const char* address);  // address "" if unknown
  MilterStatus (*helo)(MilterCtx&, const char* name);
  MilterStatus (*envFrom)(MilterCtx&, char** argv);  // argv[0] the address; nullptr-terminated
  MilterStatus (*envRcpt)(MilterCtx&, char** argv);
  MilterStatus (*header)(MilterCtx&, const char* name, const char* value);
  MilterStatus (*endOfHeaders)(MilterCtx&);
  MilterStatus (*body)(MilterCtx&, const unsigned char* data, size_t len);
  MilterStatus (*endOfMessage)(MilterCtx&);
  MilterStatus (*abort)(MilterCtx&);
  MilterStatus (*close)(MilterCtx&);
};

class MilterSession final : public MilterCtx {
 public:
  // The largest packet accepted: 1 MiB of data (SMFIP_MDS_1M) plus its framing. Postfix sends body
  // chunks of at most 64 KB and header fields of at most header_size_limit (100 KB).
  static constexpr size_t kMaxPacket = 1024 * 1024 + 64;

  enum class SessionState { kNegotiate, kIdle, kEnvelope, kContent, kClosed };

  explicit MilterSession(const MilterCallbacks& callbacks);
  ~MilterSession();
  MilterSession(const MilterSession&) = delete;
  MilterSession& operator=(const MilterSession&) = delete;

  // Takes the next bytes from the MTA and handles every complete packet; replies are appended to
  // output(). false: the session is over (quit, protocol error); `error()` says why, "" for quit.
  bool feed(const char* data, size_t len);
  // The same without a copy: read up to `.second` bytes into `.first` (at least `min` bytes of
  // room), then received(n). Packets are handled where they were read.
  std::pair<char*, size_t> space(size_t min);
  bool received(size_t n);
  // Bytes still to come of a packet whose length is known (0: at a packet boundary, or its
  // length not yet read): a reader can wait for all of them at once (MSG_WAITALL).
  size_t missing() const;
  std::string& output() { return out_; }
  const std::string& error() const { return error_; }
  SessionState state() const { return state_; }
  static const char* toString(SessionState s);
  // Ends the session from outside (peer gone): the close callback runs once.
  void finish();

  // MilterCtx
  const char* symbol(std::string_view name) const override;
  void* priv() const override { return priv_; }
  void setPriv(void* p) override { priv_ = p; }
  bool setReply(const char* rcode, const char* xcode, const char* text) override;
  bool insertHeader(int index, const char* name, const char* value) override;
  bool changeHeader(const char* name, int index, const char* value) override;
  bool addHeader(const char* name, const char* value) override;
  bool quarantine(const char* reason) override;
  bool setSymbolList(int stage, const char* macros) override;

 private:
  bool handle(char cmd, char* data, size_t len);
  bool negotiate(const char* data, size_t len);
  bool connect(char* data, size_t len);
  bool macros(char* data, size_t len);
  bool argvStep(char cmd, char* data, size_t len);
  bool header(char* data, size_t len);
  bool endOfMessage(char* data, size_t len);
  bool protocolError(std::string why);
  void enterState(SessionState s);
  void reply(MilterStatus status, uint32_t noReplyFlag);
  void packet(char cmd, std::string_view data);
  void clearMacros(int fromIndex);
  void closeCallbacks();

  const MilterCallbacks& cb_;
  SessionState state_ = SessionState::kNegotiate;
  static constexpr size_t kInitialBuffer = 64 * 1024;
  std::unique_ptr<char[]> buf_;  // bytes read: [head_, tail_) not yet handled
  size_t cap_ = 0, head_ = 0, tail_ = 0;
  std::string out_;  // reply bytes to write
  std::string error_;
  void* priv_ = nullptr;
  bool open_ = false;       // a filter context exists: negotiated, its close callback not yet run
  bool negotiating_ = false;
  bool inEom_ = false;
  uint32_t mtaActions_ = 0, mtaProtocol_ = 0;  // as offered by the MTA
  uint32_t actions_ = 0;                       // negotiated actions
  uint32_t noReplyToMta_ = 0;                  // steps the MTA will not wait for
  std::string reply_;                          // setReply()'s text for the next reject/tempfail
  std::array<std::string, proto::kStages> symLists_;
  // Macros per stage, in the order of time (connect, helo, mail, rcpt, data, eoh, eom): name (no
  // braces) and value, flat.
  std::array<std::vector<std::pair<std::string, std::string>>, proto::kStages> macros_;
  std::vector<char*> argv_;
};

}  // namespace sluice::milter
