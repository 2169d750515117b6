#pragma once
// A blocking client of a weir node, for programs that are not actors and for
// the Python module: publish with confirms, consume with explicit acks. It runs
// a small actor system of its own, so no CAF, ZeroMQ or Cap'n Proto type shows
// here. Errors are values (status.hpp); nothing here throws on purpose.
//
// All member functions are thread-safe; a subscription is meant for one thread
// at a time, like an iterator.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "weir/runtime/status.hpp"

namespace weir {

/// One header of a message (name, value); order and repeats are kept.
using client_header = std::pair<std::string, std::string>;

/// A message to publish. Bodies and keys are bytes.
struct client_message {
  std::string body;
  std::string key;
  std::vector<client_header> headers;
};

/// A message taken from a subscription; settle it by id with ack, nack or extend.
struct received_message {
  std::uint64_t id = 0;       ///< dense per queue; what ack, nack and extend name
  std::uint32_t attempt = 0;  ///< 1 on the first delivery
  std::string key;
  std::vector<client_header> headers;
  std::string body;
  std::int64_t publish_time_ns = 0;  ///< the publisher's wall clock, ns since the Unix epoch
};

/// What a nack asks of the queue.
enum class nack_action : std::uint8_t {
  requeue,      ///< ready again after the retry backoff, until max_deliveries is used up
  dead_letter,  ///< straight to the queue's dead-letter queue, with the reason
};

struct client_options {
  /// To reach the node at connect(), and for a queue new to this client to be found.
  std::chrono::milliseconds connect_timeout{10'000};
  /// A publish not confirmed this long fails with timed_out (it may still be stored).
  std::chrono::milliseconds publish_timeout{30'000};
  std::uint32_t window = 4096;  ///< unconfirmed messages per queue at most
  int scheduler_threads = 1;    ///< the client's own actors; its sockets have threads of their own
};

/// Called once per async publish, on a client thread: ok once durable, else why not.
/// It must not block or close the client: the client's threads wait for it.
using publish_callback = std::function<void(const status&)>;

/// Deliveries of one queue under a credit: at most `credit` unsettled at once.
/// Closing (or destroying) it makes what it still holds ready for others at once.
class subscription {
 public:
  struct impl;  ///< opaque: the client makes subscriptions (client::subscribe)
  explicit subscription(std::shared_ptr<impl> state);
  subscription(subscription&&) noexcept;
  subscription& operator=(subscription&&) noexcept;
  ~subscription();

  /// The next message; timed_out when none came within `timeout`, closed once closed.
  [[nodiscard]] result<received_message> next(std::chrono::milliseconds timeout);
  /// Done with message `id`: the queue forgets it. invalid_argument if not held.
  [[nodiscard]] status ack(std::uint64_t id);
  /// Failed message `id`: requeue it or dead-letter it; `reason` is kept with it.
  [[nodiscard]] status nack(std::uint64_t id, nack_action action, std::string reason);
  /// Moves `id`'s ack deadline `by` later, for a task that takes long.
  [[nodiscard]] status extend(std::uint64_t id, std::chrono::milliseconds by);
  /// Unsubscribes after the acks and nacks sent so far; idempotent.
  void close();
  /// The queue's name, as given to subscribe().
  const std::string& queue() const;

 private:
  std::shared_ptr<impl> impl_;
};

/// A connection to one node; queues are found by name on first use.
class client {
 public:
  struct impl;  ///< opaque: the actor system, queue proxies, publishers
  /// Connects to the node at `address` (tcp://HOST:PORT); timed_out if none answers
  /// within connect_timeout, invalid_argument for a malformed address.
  [[nodiscard]] static result<client> connect(std::string address, client_options options = {});

  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();  ///< close()

  /// Blocks until `message` is durable in `queue`; not_found names an unknown queue.
  [[nodiscard]] status publish(const std::string& queue, client_message message);
  /// Blocks until all of `messages` are durable, in order; one status for them all.
  [[nodiscard]] status publish(const std::string& queue, std::vector<client_message> messages);
  /// Returns at once; `done` gets the outcome. Messages of one queue keep their order.
  void publish_async(const std::string& queue, std::vector<client_message> messages,
                     publish_callback done);
  /// Subscribes to `queue` with `credit` (1..16M) messages unsettled at most.
  [[nodiscard]] result<subscription> subscribe(const std::string& queue, std::uint32_t credit);

  // Queue management (create, list, delete) goes here, beside the verbs above:
  // it needs the node's admin requests, which the queue protocol does not have yet.

  /// Waits up to publish_timeout for async publishes, unsubscribes, disconnects;
  /// afterwards every call fails with closed. Idempotent.
  void close();
  /// The node's address, as given to connect().
  const std::string& address() const;

 private:
  explicit client(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;
};

}  // namespace weir
