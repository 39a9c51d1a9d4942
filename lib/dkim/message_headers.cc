// message_headers.cc - the bounded header-block parser (format and limits in message_headers.h).
#include "dkim/message_headers.h"

#include <algorithm>
#include <cstring>

#include "base/strings.h"

namespace sluice::dkim {
namespace {

bool isWsp(char c) { return c == ' ' || c == '\t'; }

bool validName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126 || c == ':') return false;
  }
  return true;
}

std::string_view rtrimWsp(std::string_view s) {
  while (!s.empty() && isWsp(s.back())) s.remove_suffix(1);
  return s;
}

// The start of a line for an error message: printable ASCII only, at most 40 characters.
std::string snippet(std::string_view line) {
  std::string out;
  for (char c : line.substr(0, 40)) {
    auto u = static_cast<unsigned char>(c);
    out += (u >= 32 && u < 127) ? c : '?';
  }
  if (line.size() > 40) out += "...";
  return out;
}

std::string lineError(size_t lineNo, const std::string& what) {
  return "header line " + std::to_string(lineNo) + ": " + what;
}

}  // namespace

std::string_view HeaderField::value() const {
  size_t colon = raw.find(':');
  return colon == std::string::npos ? std::string_view() : std::string_view(raw).substr(colon + 1);
}

Result<MessageHeaders> MessageHeaders::parse(std::string_view msg, const HeaderLimits& limits) {
  MessageHeaders h(limits);
  size_t pos = 0;
  size_t lineNo = 0;
  while (pos < msg.size()) {
    ++lineNo;
    // Look for the line end only as far as a legal line can reach: bounded work per line.
    size_t window = std::min(msg.size() - pos, limits.maxLineLength + 2);
    const void* nl = std::memchr(msg.data() + pos, '\n', window);
    size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - msg.data()) : msg.size();
    if (!nl && msg.size() - pos > window) end = pos + window;  // longer than any legal line
    size_t next = nl ? end + 1 : end;
    std::string_view line = msg.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > limits.maxLineLength) {
      return makeError(lineError(lineNo, "longer than " + std::to_string(limits.maxLineLength) +
                                              " bytes"));
    }
    if (next > limits.maxTotal) {
      return makeError("header block longer than " + std::to_string(limits.maxTotal) + " bytes");
    }
    h.total_ = next;
    if (line.empty()) {
      h.bodyOffset_ = next;
      return h;
    }
    if (Status st = h.parseLine(line, lineNo); !st) return st.error();
    pos = next;
  }
  h.bodyOffset_ = msg.size();
  return h;
}

Status MessageHeaders::parseLine(std::string_view line, size_t lineNo) {
  if (std::memchr(line.data(), '\0', line.size()) != nullptr) {
    return makeError(lineError(lineNo, "contains a NUL byte"));
  }
  if (isWsp(line.front())) {
    if (fields_.empty()) return makeError(lineError(lineNo, "continuation line before any field"));
    fields_.back().raw.append("\r\n").append(line);
    return okStatus();
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return makeError(lineError(lineNo, "header field without a colon (\"" + snippet(line) + "\")"));
  }
  std::string_view name = rtrimWsp(line.substr(0, colon));
  if (!validName(name)) {
    return makeError(lineError(lineNo, "malformed field name (\"" + snippet(line) + "\")"));
  }
  if (fields_.size() >= limits_.maxHeaders) {
    return makeError("more than " + std::to_string(limits_.maxHeaders) + " header fields");
  }
  fields_.push_back(HeaderField{std::string(name), std::string(line)});
  return okStatus();
}

Status MessageHeaders::add(std::string_view name, std::string_view value) {
  if (!validName(name)) return makeError("malformed header field name (\"" + snippet(name) + "\")");
  if (fields_.size() >= limits_.maxHeaders) {
    return makeError("more than " + std::to_string(limits_.maxHeaders) + " header fields");
  }
  if (std::memchr(value.data(), '\0', value.size()) != nullptr) {
    return makeError("header " + std::string(name) + ": value contains a NUL byte");
  }
  std::string raw;
  raw.reserve(name.size() + 1 + value.size() + 8);
  raw.append(name).append(":");
  size_t lineStart = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    bool crlf = c == '\r' && i + 1 < value.size() && value[i + 1] == '\n';
    if (c != '\n' && !crlf) {
      raw += c;
    } else {
      if (crlf) ++i;
      if (i + 1 >= value.size() || !isWsp(value[i + 1])) {
        return makeError("header " + std::string(name) + ": line break not followed by white space");
      }
      raw.append("\r\n");
      lineStart = raw.size();
    }
    if (raw.size() - lineStart > limits_.maxLineLength) {
      return makeError("header " + std::string(name) + ": line longer than " +
                       std::to_string(limits_.maxLineLength) + " bytes");
    }
  }
  if (total_ + raw.size() + 2 > limits_.maxTotal) {
    return makeError("header block longer than " + std::to_string(limits_.maxTotal) + " bytes");
  }
  total_ += raw.size() + 2;
  fields_.push_back(HeaderField{std::string(name), std::move(raw)});
  return okStatus();
}

std::vector<const HeaderField*> MessageHeaders::findAll(std::string_view name) const {
  std::vector<const HeaderField*> out;
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) out.push_back(&f);
  }
  return out;
}

size_t MessageHeaders::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(),
                                           [&](const HeaderField& f) { return iequals(f.name, name); }));
}

}  // namespace sluice::dkim
