#include "weir/client/client.hpp"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <set>
#include <thread>

#include <unistd.h>

#include <caf/all.hpp>

#include "publisher.hpp"
#include "subscriber.hpp"
#include "weir/node/actor_types.hpp"
#include "weir/node/remote_queue.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/queue/system_config.hpp"
#include "weir/transport/link.hpp"
#include "weir/transport/link_options.hpp"

namespace weir {

using namespace client_detail;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t message_bytes_max = transport::message_body_bytes_max;
constexpr std::uint32_t credit_max = std::uint32_t{1} << 24;  // what a queue proxy accepts

struct client_actor_config : system_config {
  explicit client_actor_config(int scheduler_threads)
      : system_config(std::max(1, scheduler_threads)) {
    add_actor_types(*this);
  }
};

std::int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Async publishes not yet called back; close() waits for them.
struct outstanding_publishes {
  std::mutex mutex;
  std::condition_variable idle;
  std::size_t count = 0;

  void add() {
    std::lock_guard lock(mutex);
    ++count;
  }
  void done() {
    std::lock_guard lock(mutex);
    if (--count == 0) idle.notify_all();
  }
  void wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    idle.wait_for(lock, timeout, [this] { return count == 0; });
  }
};

/// Waits until a node at `address` completes a handshake, or `timeout` passes.
status reach_node(const std::string& address, std::chrono::milliseconds timeout) {
  std::mutex mutex;
  std::condition_variable changed;
  bool up = false;
  transport::link_options settings;
  settings.node_id = "client-probe:" + std::to_string(::getpid());
  auto connection =
      transport::connection::connect(address, settings, [&](transport::link_event event) {
        if (event.type != transport::link_event::kind::peer_up) return;
        std::lock_guard lock(mutex);
        up = true;
        changed.notify_all();
      });
  if (!connection) {
    return status{errc::invalid_argument,
                  "cannot connect to " + address + ": " + connection.error().message()};
  }
  bool reached = false;
  {
    std::unique_lock lock(mutex);
    reached = changed.wait_for(lock, timeout, [&] { return up; });
  }
  connection->reset();  // joins the link thread: no event runs after this
  if (reached) return {};
  return status{errc::timed_out, "no weir node answered at " + address + " within " +
                                     std::to_string(timeout.count()) + " ms"};
}

}  // namespace

// ---------------------------------------------------------------- client::impl

struct client::impl {
  struct queue_entry {
    caf::actor proxy;
    caf::actor publisher;  // spawned on the first publish
    std::shared_ptr<publish_inbox> inbox;
    bool subscribed = false;  // acks may be in flight: close() waits for a round trip
  };

  client_options options;
  std::string address;
  client_actor_config config;
  caf::actor_system system{config};
  std::shared_ptr<outstanding_publishes> outstanding = std::make_shared<outstanding_publishes>();
  std::mutex mutex;  // guards what follows
  bool closed = false;
  std::map<std::string, queue_entry> queues;
  std::vector<std::weak_ptr<subscription::impl>> subscriptions;

  impl(std::string where, client_options settings)
      : options(settings), address(std::move(where)), config(settings.scheduler_threads) {}
  ~impl() { close(); }

  status closed_status() const { return {errc::closed, "the client of " + address + " is closed"}; }

  /// The proxy of `queue`, made on first use. Call with the mutex held.
  result<queue_entry*> entry_of(const std::string& queue) {
    if (closed) return closed_status();
    if (auto it = queues.find(queue); it != queues.end()) return &it->second;
    if (queue.empty()) return status{errc::invalid_argument, "a queue name must not be empty"};
    remote_queue_options settings;
    settings.address = address;
    settings.queue = queue;
    settings.link.node_id = "client:" + std::to_string(::getpid()) + ":" + queue;
    settings.request_timeout = std::clamp(options.connect_timeout, std::chrono::milliseconds(100),
                                          std::chrono::milliseconds(5000));
    auto proxy = spawn_remote_queue(system, settings);
    if (!proxy) return proxy.error();
    auto& entry = queues[queue];
    entry.proxy = *proxy;
    return &entry;
  }

  void close();
};

struct subscription::impl {
  std::shared_ptr<client::impl> owner;  // the actor system outlives every subscription
  std::string queue;
  caf::actor actor;
  std::shared_ptr<subscriber_inbox> inbox;
  std::set<std::uint64_t> held;  // taken by next(), not yet acked or nacked; under inbox->mutex
  bool closing = false;          // under inbox->mutex

  ~impl() { close(); }

  void close() {
    {
      std::lock_guard lock(inbox->mutex);
      if (closing) return;
      closing = true;
    }
    caf::anon_send(actor, unsubscribe_atom::value);
    caf::scoped_actor self{owner->system};
    self->wait_for(actor);
  }

  status settle(std::uint64_t id) {
    if (closing) return {errc::closed, "the subscription to " + queue + " is closed"};
    if (held.erase(id) == 0) {
      return {errc::invalid_argument, "message " + std::to_string(id) + " of queue " + queue +
                                          " is not held here: acked or nacked already, or never "
                                          "received by this subscription"};
    }
    return {};
  }
};

void client::impl::close() {
  // Async publishes get their time first: closing is no reason to lose them.
  outstanding->wait(options.publish_timeout);
  std::vector<std::shared_ptr<subscription::impl>> open;
  std::map<std::string, queue_entry> closing;
  {
    std::lock_guard lock(mutex);
    if (closed) return;
    closed = true;
    for (auto& weak : subscriptions) {
      if (auto strong = weak.lock()) open.push_back(std::move(strong));
    }
    subscriptions.clear();
    closing.swap(queues);
  }
  for (auto& s : open) s->close();
  caf::scoped_actor self{system};
  for (auto& [name, entry] : closing) {
    // A round trip: the node has read every ack and nack sent before it is disconnected.
    if (entry.subscribed) {
      self->request(entry.proxy, std::chrono::seconds(2), list_atom::value, std::uint64_t{0},
                    std::uint32_t{0})
          .receive([](const std::vector<delivery>&) {}, [](const caf::error&) {});
    }
    if (entry.publisher) self->send_exit(entry.publisher, caf::exit_reason::user_shutdown);
  }
  // Proxies last: a producer that saw its queue go down first would say so in the log.
  for (auto& [name, entry] : closing) {
    if (entry.publisher) self->wait_for(entry.publisher);
    self->send_exit(entry.proxy, caf::exit_reason::user_shutdown);
  }
  for (auto& [name, entry] : closing) self->wait_for(entry.proxy);
}

// ---------------------------------------------------------------- client

result<client> client::connect(std::string address, client_options options) {
  if (address.empty()) return status{errc::invalid_argument, "no node address given"};
  if (options.window == 0) return status{errc::invalid_argument, "window must be positive"};
  if (auto reached = reach_node(address, options.connect_timeout); !reached) return reached;
  return client(std::make_shared<impl>(std::move(address), options));
}

client::client(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() {
  close();
}

void client::close() {
  if (impl_) impl_->close();
}

const std::string& client::address() const {
  return impl_->address;
}

status client::publish(const std::string& queue, client_message message) {
  std::vector<client_message> messages;
  messages.push_back(std::move(message));
  return publish(queue, std::move(messages));
}

status client::publish(const std::string& queue, std::vector<client_message> messages) {
  auto outcome = std::make_shared<std::promise<status>>();
  auto answer = outcome->get_future();
  publish_async(queue, std::move(messages),
                [outcome](const status& result) { outcome->set_value(result); });
  // The publisher answers every request, by its deadline at the latest.
  return answer.get();
}

void client::publish_async(const std::string& queue, std::vector<client_message> messages,
                           publish_callback done) {
  if (!impl_) {
    done(status{errc::closed, "the client was moved from"});
    return;
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    auto bytes = messages[i].body.size() + messages[i].key.size();
    for (const auto& [name, value] : messages[i].headers) bytes += name.size() + value.size();
    if (bytes > message_bytes_max) {
      done(status{errc::invalid_argument,
                  "message " + std::to_string(i) + " for queue " + queue + " has " +
                      std::to_string(bytes) +
                      " bytes of body, key and headers, over the limit of " +
                      std::to_string(message_bytes_max) + "; nothing was sent"});
      return;
    }
  }
  if (messages.empty()) {
    done(status{});
    return;
  }
  publish_request request;
  const auto now_ns = wall_clock_ns();
  request.messages.reserve(messages.size());
  for (auto& m : messages) {
    std::vector<message_header> headers;
    headers.reserve(m.headers.size());
    for (auto& [name, value] : m.headers) headers.push_back({std::move(name), std::move(value)});
    request.messages.push_back(
        {std::move(m.key), shared_bytes(std::move(m.body)), std::move(headers), now_ns});
  }
  request.deadline = clock_type::now() + impl_->options.publish_timeout;
  caf::actor publisher;
  std::shared_ptr<publish_inbox> inbox;
  status refused;  // reported once the mutex is released: the callback may publish again
  {
    std::lock_guard lock(impl_->mutex);
    if (auto entry = impl_->entry_of(queue); !entry) {
      refused = entry.error();
    } else {
      auto& e = **entry;
      if (!e.publisher) {
        e.inbox = std::make_shared<publish_inbox>();
        e.publisher = spawn_publisher(
            impl_->system, e.proxy, e.inbox,
            {queue, impl_->address, impl_->options.connect_timeout, impl_->options.window});
      }
      publisher = e.publisher;
      inbox = e.inbox;
      impl_->outstanding->add();
    }
  }
  if (!refused) {
    done(refused);
    return;
  }
  request.done = [done = std::move(done), outstanding = impl_->outstanding](const status& result) {
    done(result);
    outstanding->done();
  };
  {
    std::lock_guard lock(inbox->mutex);
    inbox->requests.push_back(std::move(request));
  }
  caf::anon_send(publisher, take_atom::value);
}

result<subscription> client::subscribe(const std::string& queue, std::uint32_t credit) {
  if (!impl_) return status{errc::closed, "the client was moved from"};
  if (credit == 0 || credit > credit_max) {
    return status{errc::invalid_argument, "credit " + std::to_string(credit) + " for queue " +
                                              queue + " is not within 1.." +
                                              std::to_string(credit_max)};
  }
  caf::actor proxy;
  {
    std::lock_guard lock(impl_->mutex);
    auto entry = impl_->entry_of(queue);
    if (!entry) return entry.error();
    proxy = (*entry)->proxy;
    (*entry)->subscribed = true;
  }
  // Asked once up front, so that an unknown queue is an error now, not a silent wait.
  caf::scoped_actor self{impl_->system};
  if (auto failed = probe_queue(self, proxy, clock_type::now() + impl_->options.connect_timeout)) {
    return probe_failure(impl_->system, failed, queue, impl_->address);
  }
  auto state = std::make_shared<subscription::impl>();
  state->owner = impl_;
  state->queue = queue;
  state->inbox = std::make_shared<subscriber_inbox>();
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed) return impl_->closed_status();
    state->actor = spawn_subscriber(impl_->system, proxy, credit, state->inbox);
    // Forget subscriptions that are gone, so that a client subscribing often stays small.
    std::erase_if(impl_->subscriptions, [](const auto& weak) { return weak.expired(); });
    impl_->subscriptions.push_back(state);
  }
  return subscription(std::move(state));
}

// ---------------------------------------------------------------- subscription

subscription::subscription(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
subscription::subscription(subscription&&) noexcept = default;
subscription& subscription::operator=(subscription&&) noexcept = default;
subscription::~subscription() {
  close();
}

const std::string& subscription::queue() const {
  return impl_->queue;
}

void subscription::close() {
  if (impl_) impl_->close();
}

result<received_message> subscription::next(std::chrono::milliseconds timeout) {
  if (!impl_) return status{errc::closed, "the subscription was moved from"};
  auto& inbox = *impl_->inbox;
  std::unique_lock lock(inbox.mutex);
  inbox.changed.wait_for(lock, timeout, [&] {
    return !inbox.messages.empty() || inbox.closed || impl_->closing || !inbox.failure;
  });
  if (!inbox.failure) return inbox.failure;
  if (impl_->closing || (inbox.closed && inbox.messages.empty())) {
    return status{errc::closed, "the subscription to " + impl_->queue + " is closed"};
  }
  if (inbox.messages.empty()) {
    return status{errc::timed_out, "no message from queue " + impl_->queue + " within " +
                                       std::to_string(timeout.count()) + " ms"};
  }
  auto message = std::move(inbox.messages.front());
  inbox.messages.pop_front();
  impl_->held.insert(message.id);
  return message;
}

status subscription::ack(std::uint64_t id) {
  if (!impl_) return {errc::closed, "the subscription was moved from"};
  std::lock_guard lock(impl_->inbox->mutex);
  if (auto settled = impl_->settle(id); !settled) return settled;
  caf::anon_send(impl_->actor, ack_atom::value, std::vector<id_range>{{id, id + 1}});
  return {};
}

status subscription::nack(std::uint64_t id, nack_action action, std::string reason) {
  if (!impl_) return {errc::closed, "the subscription was moved from"};
  std::lock_guard lock(impl_->inbox->mutex);
  if (auto settled = impl_->settle(id); !settled) return settled;
  caf::anon_send(impl_->actor, nack_atom::value,
                 nack_request{{id}, action == nack_action::dead_letter, 0, std::move(reason)});
  return {};
}

status subscription::extend(std::uint64_t id, std::chrono::milliseconds by) {
  if (!impl_) return {errc::closed, "the subscription was moved from"};
  if (by.count() <= 0 || by.count() > std::int64_t{UINT32_MAX}) {
    return {errc::invalid_argument,
            "an extension of " + std::to_string(by.count()) + " ms is not within 1..2^32-1"};
  }
  std::lock_guard lock(impl_->inbox->mutex);
  if (impl_->closing) return {errc::closed, "the subscription to " + impl_->queue + " is closed"};
  if (impl_->held.count(id) == 0) {
    return {errc::invalid_argument,
            "message " + std::to_string(id) + " of queue " + impl_->queue + " is not held here"};
  }
  caf::anon_send(impl_->actor, extend_atom::value, std::vector<std::uint64_t>{id},
                 static_cast<std::uint32_t>(by.count()));
  return {};
}

}  // namespace weir
