#pragma once
// Private to weir_node: what a node's actors (sessions, consumer stand-ins) and
// its link thread share.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>
#include <caf/actor.hpp>

#include "weir/node/metrics.hpp"
#include "weir/node/node.hpp"
#include "weir/node/wire_codec.hpp"

namespace weir::detail {

/// What the node's actors and its link thread share.
struct node_shared {
  mutable std::mutex mutex;
  std::map<std::string, caf::actor> queues;           // name -> the queue actor serving it now
  std::map<std::string, std::string> dead_letter_of;  // queue -> its dead-letter queue
  std::unique_ptr<transport::endpoint> endpoint;
  caf::actor supervisor;  // of the queues; guarded by mutex
  std::string node_id;
  std::atomic<std::uint64_t> unknown_queue{0};
  std::atomic<std::uint64_t> bad_requests{0};
  std::atomic<std::uint64_t> sessions{0};  // open now; kept by the node with its session map

  node_stats stats() const {
    node_stats out;
    out.unknown_queue = unknown_queue.load();
    out.bad_requests = bad_requests.load();
    out.peers = sessions.load();
    std::lock_guard lock(mutex);
    if (endpoint) out.link = endpoint->stats();
    return out;
  }

  metrics_source metrics() const {
    metrics_source out;
    {
      std::lock_guard lock(mutex);
      out.queues.assign(queues.begin(), queues.end());
      out.supervisor = supervisor;
    }
    out.node = stats();
    return out;
  }

  caf::actor lookup(const std::string& name) const {
    std::lock_guard lock(mutex);
    auto it = queues.find(name);
    return it == queues.end() ? caf::actor{} : it->second;
  }

  std::string dead_letter_queue_of(const std::string& name) const {
    std::lock_guard lock(mutex);
    auto it = dead_letter_of.find(name);
    return it == dead_letter_of.end() ? std::string{} : it->second;
  }

  void send(transport::peer_id peer, zmq::message_t frame) {
    std::lock_guard lock(mutex);
    if (endpoint) endpoint->send(peer, std::move(frame));
  }

  void refuse(transport::peer_id peer, schema::ErrorCode code, const std::string& message,
              const std::string& queue, std::uint64_t request_id = 0) {
    (code == schema::ErrorCode::UNKNOWN_QUEUE ? unknown_queue : bad_requests)++;
    spdlog::warn("node {}: peer {}: {}", node_id, peer, message);
    send(peer, wire::error_frame(code, message, queue, request_id));
  }
};

using node_shared_ptr = std::shared_ptr<node_shared>;

}  // namespace weir::detail
