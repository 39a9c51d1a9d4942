// redis_client.cc - see redis_client.h.
#include "store/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstdio>

#include "base/log.h"
#include "base/strings.h"
#include "store/redis_keys.h"

namespace sluice::store {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kConnectTimeout = std::chrono::seconds(1);

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = r->integer; break;
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default: out.type = RedisReply::Type::kNil; break;
  }
  return out;
}

}  // namespace

RedisScript::RedisScript(std::string t) : text(std::move(t)) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  char hex[2 * SHA_DIGEST_LENGTH + 1];
  for (int i = 0; i < SHA_DIGEST_LENGTH; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
  sha1 = hex;
}

class RedisClient::Link : public std::enable_shared_from_this<Link> {
 public:
  Link(RedisClient& owner) : owner_(owner), timer_(owner.io_), reconnect_(owner.io_) {}
  ~Link() { drop("client destroyed", false); }

  bool up() const { return state_ == State::kUp; }
  size_t outstanding() const { return pending_.size(); }

  void connect();
  void send(const std::vector<std::string>& argv, Callback cb);
  // Fails every outstanding command with `why`, frees the connection, reconnects if asked.
  void drop(const std::string& why, bool reconnect);

 private:
  enum class State { kDown, kConnecting, kUp };
  struct Pending {
    Callback cb;
    SteadyClock::time_point deadline;
    bool done = false;
    std::string failWhy;  // set when we drop the link: the error its callback gets
  };

  static Link* of(const redisAsyncContext* c) { return static_cast<Link*>(c->data); }
  static void addRead(void* p) { static_cast<Link*>(p)->want(true, true); }
  static void delRead(void* p) { static_cast<Link*>(p)->want(true, false); }
  static void addWrite(void* p) { static_cast<Link*>(p)->want(false, true); }
  static void delWrite(void* p) { static_cast<Link*>(p)->want(false, false); }
  static void cleanup(void* p) { static_cast<Link*>(p)->releaseDescriptor(); }
  static void onConnect(const redisAsyncContext* c, int status);
  static void onDisconnect(const redisAsyncContext* c, int status);
  static void onReply(redisAsyncContext* c, void* reply, void* privdata);
  static void onSetupReply(redisAsyncContext* c, void* reply, void* privdata);

  void want(bool read, bool on);
  void arm(bool read);
  void armTimer();
  void releaseDescriptor();
  void lost(const std::string& why);
  void scheduleReconnect();

  RedisClient& owner_;
  redisAsyncContext* ctx_ = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> sd_;
  bool wantRead_ = false, wantWrite_ = false, readArmed_ = false, writeArmed_ = false, timerArmed_ = false;
  State state_ = State::kDown;
  std::deque<Pending*> pending_;
  asio::steady_timer timer_;
  asio::steady_timer reconnect_;
};

void RedisClient::Link::connect() {
  if (owner_.stopped_ || state_ != State::kDown) return;
  const std::string& addr = owner_.cfg_.address;
  if (startsWith(addr, "unix:")) {
    ctx_ = redisAsyncConnectUnix(addr.substr(5).c_str());
  } else {
    size_t colon = addr.rfind(':');
    std::string host = addr.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    ctx_ = redisAsyncConnect(host.c_str(), static_cast<int>(parseUint(addr.substr(colon + 1)).value_or(6379)));
  }
  if (ctx_ == nullptr || ctx_->err) {
    std::string why = ctx_ ? ctx_->errstr : "out of memory";
    if (ctx_) redisAsyncFree(ctx_);
    ctx_ = nullptr;
    lost("connect to Redis at " + addr + ": " + why);
    return;
  }
  ctx_->data = this;
  ctx_->ev.data = this;
  ctx_->ev.addRead = addRead;
  ctx_->ev.delRead = delRead;
  ctx_->ev.addWrite = addWrite;
  ctx_->ev.delWrite = delWrite;
  ctx_->ev.cleanup = cleanup;
  sd_ = std::make_unique<asio::posix::stream_descriptor>(owner_.io_, ctx_->c.fd);
  redisAsyncSetConnectCallback(ctx_, onConnect);
  redisAsyncSetDisconnectCallback(ctx_, onDisconnect);
  state_ = State::kConnecting;
  if (!owner_.cfg_.password.empty()) {
    redisAsyncCommand(ctx_, onSetupReply, nullptr, "AUTH %b", owner_.cfg_.password.data(), owner_.cfg_.password.size());
  }
  if (owner_.cfg_.database != 0) redisAsyncCommand(ctx_, onSetupReply, nullptr, "SELECT %lld", static_cast<long long>(owner_.cfg_.database));
  // A connect that neither succeeds nor fails (a black-holed address) is abandoned after 1 s.
  auto self = shared_from_this();
  reconnect_.expires_after(kConnectTimeout);
  reconnect_.async_wait([self](const asio::error_code& ec) {
    if (!ec && self->state_ == State::kConnecting) self->drop("connect to Redis timed out", true);
  });
}

void RedisClient::Link::onConnect(const redisAsyncContext* c, int status) {
  Link* l = of(c);
  if (l == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback: forget it without freeing it again.
    std::string why = c->errstr;
    l->ctx_->data = nullptr;
    l->ctx_ = nullptr;
    l->lost("connect to Redis at " + l->owner_.cfg_.address + ": " + why);
    return;
  }
  l->state_ = State::kUp;
  l->reconnect_.cancel();
  ++l->owner_.stats_.connects;
  if (!l->owner_.outage_.empty()) logInfo("Redis at " + l->owner_.cfg_.address + " reachable again");
  l->owner_.outage_.clear();
}

void RedisClient::Link::onDisconnect(const redisAsyncContext* c, int) {
  Link* l = of(c);
  if (l == nullptr) return;
  std::string why = c->err ? c->errstr : "connection closed";
  l->ctx_ = nullptr;  // being freed by hiredis
  l->lost("Redis connection lost: " + why);
}

void RedisClient::Link::onSetupReply(redisAsyncContext* c, void* reply, void*) {
  auto* r = static_cast<redisReply*>(reply);
  Link* l = of(c);
  if (l == nullptr || r == nullptr || r->type != REDIS_REPLY_ERROR) return;
  std::string why = "Redis refused the connection set-up: " + std::string(r->str, r->len);
  // Not from inside a hiredis callback: drop on the next turn of the loop.
  auto self = l->shared_from_this();
  asio::post(l->owner_.io_, [self, why] { self->drop(why, true); });
}

void RedisClient::Link::onReply(redisAsyncContext* c, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  Link* l = of(c);
  if (!p->done && l != nullptr) {
    p->done = true;
    if (!l->pending_.empty() && l->pending_.front() == p) l->pending_.pop_front();
    if (reply == nullptr) {
      ++l->owner_.stats_.failures;
      p->cb(makeError("Redis connection lost"));
    } else {
      p->cb(convert(static_cast<redisReply*>(reply)));
    }
  } else if (!p->done) {
    p->done = true;
    p->cb(makeError(p->failWhy.empty() ? std::string("Redis connection lost") : p->failWhy));
  }
  delete p;
}

void RedisClient::Link::want(bool read, bool on) {
  (read ? wantRead_ : wantWrite_) = on;
  if (on) arm(read);
}

void RedisClient::Link::arm(bool read) {
  bool& armed = read ? readArmed_ : writeArmed_;
  if (armed || !sd_) return;
  armed = true;
  auto self = shared_from_this();
  sd_->async_wait(read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
                  [self, read](const asio::error_code& ec) {
                    (read ? self->readArmed_ : self->writeArmed_) = false;
                    if (ec || self->ctx_ == nullptr) return;
                    if (read && self->wantRead_) redisAsyncHandleRead(self->ctx_);
                    if (!read && self->wantWrite_) redisAsyncHandleWrite(self->ctx_);
                    if (self->ctx_ != nullptr && (read ? self->wantRead_ : self->wantWrite_)) self->arm(read);
                  });
}

void RedisClient::Link::releaseDescriptor() {
  if (!sd_) return;
  asio::error_code ec;
  sd_->cancel(ec);
  sd_->release();  // hiredis owns and closes the fd
  sd_.reset();
  wantRead_ = wantWrite_ = false;
}

void RedisClient::Link::send(const std::vector<std::string>& argv, Callback cb) {
  redis_keys::ArgvArrays a(argv);
  auto* p = new Pending{std::move(cb), SteadyClock::now() + std::chrono::milliseconds(owner_.cfg_.timeoutMs), false, {}};
  if (redisAsyncCommandArgv(ctx_, onReply, p, a.count(), a.ptrs.data(), a.lens.data()) != REDIS_OK) {
    Callback failed = std::move(p->cb);
    delete p;
    ++owner_.stats_.failures;
    failed(makeError("Redis command could not be queued"));
    return;
  }
  pending_.push_back(p);
  armTimer();
}

void RedisClient::Link::armTimer() {
  if (timerArmed_ || pending_.empty()) return;
  timerArmed_ = true;
  timer_.expires_at(pending_.front()->deadline);
  auto self = shared_from_this();
  timer_.async_wait([self](const asio::error_code& ec) {
    self->timerArmed_ = false;
    if (ec || self->pending_.empty()) return;
    if (self->pending_.front()->deadline <= SteadyClock::now()) {
      ++self->owner_.stats_.timeouts;
      self->drop("Redis did not answer within " + std::to_string(self->owner_.cfg_.timeoutMs) + " ms (store.redis.timeout)",
                 true);
    } else {
      self->armTimer();
    }
  });
}

void RedisClient::Link::drop(const std::string& why, bool reconnect) {
  bool wasUp = state_ != State::kDown;
  state_ = State::kDown;
  timer_.cancel();
  for (Pending* p : pending_) {
    p->failWhy = why;
    ++owner_.stats_.failures;
  }
  pending_.clear();
  if (ctx_ != nullptr) {
    redisAsyncContext* c = ctx_;
    ctx_ = nullptr;
    c->data = nullptr;
    redisAsyncFree(c);  // every outstanding callback runs now, with failWhy
  }
  releaseDescriptor();
  if (wasUp) ++owner_.stats_.disconnects;
  if (reconnect) lost(why);
}

void RedisClient::Link::lost(const std::string& why) {
  state_ = State::kDown;
  pending_.clear();  // hiredis runs (or ran) their callbacks while freeing the context
  // One line per outage (all links), and one when it is over (onConnect).
  if (owner_.outage_.empty() && !owner_.stopped_) {
    logWarning(why + "; retrying every " + formatDurationMs(owner_.cfg_.reconnectMs));
  }
  owner_.outage_ = why;
  scheduleReconnect();
}

void RedisClient::Link::scheduleReconnect() {
  if (owner_.stopped_) return;
  auto self = shared_from_this();
  reconnect_.expires_after(std::chrono::milliseconds(owner_.cfg_.reconnectMs));
  reconnect_.async_wait([self](const asio::error_code& ec) {
    if (!ec && self->state_ == State::kDown) self->connect();
  });
}

RedisClient::RedisClient(asio::io_context& io, config::RedisConfig cfg) : io_(io), cfg_(std::move(cfg)) {}

RedisClient::~RedisClient() { stop(); }

void RedisClient::start() {
  stopped_ = false;
  for (int64_t i = 0; i < cfg_.connections; ++i) {
    links_.push_back(std::make_shared<Link>(*this));
    links_.back()->connect();
  }
}

void RedisClient::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& l : links_) l->drop("Redis client stopped", false);
  links_.clear();
}

bool RedisClient::connected() const {
  for (const auto& l : links_) {
    if (l->up()) return true;
  }
  return false;
}

void RedisClient::command(std::vector<std::string> argv, Callback done) {
  ++stats_.commands;
  Link* best = nullptr;
  for (auto& l : links_) {
    if (l->up() && (best == nullptr || l->outstanding() < best->outstanding())) best = l.get();
  }
  if (best == nullptr) {
    ++stats_.failures;
    done(makeError("Redis at " + cfg_.address + " is not connected"));
    return;
  }
  best->send(argv, std::move(done));
}

void RedisClient::eval(const RedisScript& script, std::vector<std::string> keys, std::vector<std::string> args,
                       Callback done) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1);
  argv.push_back(std::to_string(keys.size()));
  for (auto& k : keys) argv.push_back(std::move(k));
  for (auto& a : args) argv.push_back(std::move(a));
  const std::string* text = &script.text;
  command(argv, [this, argv, text, done = std::move(done)](Result<RedisReply> r) mutable {
    if (r && r->type == RedisReply::Type::kError && startsWith(r->str, "NOSCRIPT")) {
      argv[0] = "EVAL";
      argv[1] = *text;  // the server lost its script cache (restart, SCRIPT FLUSH): send it whole
      command(std::move(argv), std::move(done));
      return;
    }
    done(std::move(r));
  });
}

}  // namespace sluice::store
