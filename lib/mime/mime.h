// mime.h - a lenient, bounded RFC 5322 / MIME reader for bounces, complaints and auto-replies.
//
// Format read: a message is a header block (RFC 5322 2.2: "Name: value" fields, folded lines
// start with SP/HTAB) ended by an empty line, then a body. Line ends may be CRLF, LF or a bare CR
// (old Mac mail); parse() first rewrites every line end as LF, so every view below sees LF only.
// A multipart body (RFC 2046 5.1) is split at "--boundary" lines up to "--boundary--";
// message/rfc822 (and text/rfc822-headers) parts hold a nested message; base64 and
// quoted-printable bodies are decoded, and text/* parts in other charsets converted to UTF-8. message/delivery-status (RFC 3464) and
// message/feedback-report (RFC 5965) bodies are blocks of fields: parseFieldGroups().
//
// Leniency (real bounces break every rule): a header line without a colon ends the header block;
// a multipart with a missing or unknown boundary is kept as one text leaf; an unterminated last
// part runs to the end of its parent. Bounds: the input is cut at Limits::maxBytes (truncated()
// says so), nesting stops at maxDepth (deeper content stays an opaque leaf), at most maxParts
// parts and maxHeaders fields per block. Work is linear in the input times maxDepth.
//
// Invariants: every string_view in a Part points into memory owned by its Message (the
// normalised input or a decoded buffer), so a Message is handed out by unique_ptr and never moves.
#pragma once

#include <cstddef>
#include <forward_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::mime {

struct Limits {
  size_t maxBytes = 64u << 20;      // input beyond this is ignored (Message::truncated)
  size_t maxDepth = 16;             // multipart / message nesting
  size_t maxParts = 512;            // parts in the whole message
  size_t maxHeaders = 1000;         // fields in one header block
  size_t maxHeaderBytes = 1u << 20; // one header block
  // false: a nested message (message/rfc822) gets its headers parsed, its body kept raw (not
  // walked, not decoded) - all a bounce parser needs of a returned original.
  bool parseNestedBodies = true;
  // true: when the input has no CR, the Message points into the caller's buffer instead of
  // copying it; the caller must keep that buffer alive as long as the Message.
  bool borrowInput = false;
};

struct Field {
  std::string_view name;   // as written
  std::string_view value;  // unfolded (line ends removed), trimmed; not RFC 2047-decoded
  bool owned = false;      // name and value live in the Fields' own storage
};

// An ordered list of fields with case-insensitive lookup. Fields parsed from a message are views
// into the parsed text (no copy) unless unfolding needed a new string; so a Fields must not
// outlive the text it was parsed from (the Message). Copies stay valid as long as that text.
class Fields {
 public:
  Fields() = default;
  Fields(const Fields& o) { *this = o; }
  Fields& operator=(const Fields& o);
  Fields(Fields&&) noexcept = default;
  Fields& operator=(Fields&&) noexcept = default;

  // A field whose name and value the caller keeps alive (views).
  void addView(std::string_view name, std::string_view value) { items_.push_back({name, value, false}); }
  // A field copied into this object.
  void add(std::string_view name, std::string_view value);
  // A field whose name the caller keeps alive (a view) and whose value this object keeps.
  void addValue(std::string_view name, std::string_view value);
  const std::vector<Field>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  void reserve(size_t n) { items_.reserve(n); }
  // The first field of that name, or nullptr.
  const std::string_view* find(std::string_view name) const;
  // The first field's value or "".
  std::string_view get(std::string_view name) const;

 private:
  // A copy of v in storage_: appended to the front chunk (kChunk bytes), or a node of its own
  // when large.
  std::string_view store(std::string_view v);
  static constexpr size_t kChunk = 1024;
  std::vector<Field> items_;
  std::forward_list<std::unique_ptr<char[]>> storage_;  // blocks never move; allocates nothing when empty
  size_t used_ = 0;                                     // bytes used in storage_.front() (a chunk)
};

struct Part {
  Fields headers;
  std::string type = "text/plain";  // lower-case type/subtype from Content-Type
  std::string boundary;             // multipart only
  std::string charset;              // lower-case, may be empty
  std::string_view body;            // content, LF line ends; transfer encoding removed for
                                    // text/*, message/* and multipart parts (others stay raw)
  std::vector<Part> children;       // multipart parts, or one child for message/rfc822
  // (string_view comparisons: the lengths first, no strlen or library call for most types)
  bool isMultipart() const { return std::string_view(type).starts_with("multipart/"); }
  bool isMessage() const {
    std::string_view t = type;
    return t == "message/rfc822" || t == "text/rfc822-headers" || t == "message/rfc822-headers";
  }
};

class Message;
std::unique_ptr<Message> parse(std::string_view raw, const Limits& limits);

class Message {
 public:
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  const Part& root() const { return root_; }
  bool truncated() const { return truncated_; }
  size_t partCount() const { return parts_; }
  bool depthLimited() const { return depthLimited_; }
  std::string_view normalized() const { return view_; }

 private:
  friend class Parser;
  friend std::unique_ptr<Message> parse(std::string_view raw, const Limits& limits);
  Message() = default;
  // A buffer of room bytes (not zero-filled) that write(char*) fills, returning the length it
  // wrote (<= room); a NUL follows the text, as in a std::string.
  template <class Write>
  std::string_view keep(size_t room, Write&& write) {
    char* at = raw_.emplace_front(new char[room + 1]).get();
    size_t len = write(at);
    at[len] = '\0';
    return std::string_view(at, len);
  }
  std::string_view view_;  // what was parsed: the normalised copy in raw_, or the caller's buffer
  // Decoded bodies and the normalised input; list nodes never move (views point into them) and
  // an empty list allocates nothing.
  std::forward_list<std::string> buffers_;
  std::forward_list<std::unique_ptr<char[]>> raw_;
  Part root_;
  size_t parts_ = 0;
  bool truncated_ = false;
  bool depthLimited_ = false;
};

// Parses one message. Never fails: garbage yields a root part with no headers and a text body.
inline std::unique_ptr<Message> parse(std::string_view raw) { return parse(raw, Limits{}); }

// Splits an mbox into messages, without their separator lines: a separator is a line
// "From SENDER DATE" whose date has a time and a year (asctime), so a body line that merely
// starts with "From " does not split. Text before the first separator is a message too; input
// without separators is one message. ">From " quoting is left as is.
std::vector<std::string_view> splitMbox(std::string_view raw);

// The first position at or after pos where "From " starts a line (the text's start, or after a
// '\n' or '\r'); npos if none. What splitMbox looks for separators with.
size_t findFromLine(std::string_view text, size_t pos);

// CRLF and bare CR become LF.
std::string normalizeNewlines(std::string_view s);

// Parses a header block (up to the first empty line) into fields; returns the offset of the body.
size_t parseFields(std::string_view text, Fields& out, const Limits& limits = {});

// Blocks of fields separated by empty lines (message/delivery-status, message/feedback-report).
std::vector<Fields> parseFieldGroups(std::string_view body, const Limits& limits = {});

// RFC 2047 encoded words (=?charset?B|Q?...?=) decoded to UTF-8 (iconv); a charset iconv does
// not know keeps its bytes. Text outside encoded words is left unchanged.
std::string decodeWords(std::string_view s);
std::string decodeBase64(std::string_view s);
std::string decodeQuotedPrintable(std::string_view s);

// A Content-Type (or similar) parameter value, unquoted; "" if absent. Name is case-insensitive.
std::string param(std::string_view headerValue, std::string_view name);

// Depth-first walk over every part (the root first).
template <class F>
void walk(const Part& p, F&& f, size_t depth = 0) {
  f(p, depth);
  for (const Part& c : p.children) walk(c, f, depth + 1);
}

}  // namespace sluice::mime
