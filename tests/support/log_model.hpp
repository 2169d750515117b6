#pragma once
// A plain in-memory model of what a checkpoint log must hold, and helpers to
// drive a real log synchronously, for tests that compare the two.

#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/id_set.hpp"

namespace weir::testing {

/// The reference: every message published, and which ids are done.
struct log_model {
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::string> payloads;
  id_set done;
  std::map<std::uint64_t, std::uint32_t> attempts;
  std::uint64_t acked = 0;
  std::uint64_t dead_lettered = 0;

  void publish(const std::vector<std::string>& batch) {
    for (const auto& payload : batch) payloads[next_id++] = payload;
  }
  void ack(std::uint64_t begin, std::uint64_t end) {
    end = std::min(end, next_id);
    if (begin >= end) return;
    acked += (end - begin) - done.count_in(begin, end);
    done.insert(begin, end);
    for (auto id = begin; id < end; ++id) attempts.erase(id);
  }
  void dead_letter(std::uint64_t id) {
    if (id >= next_id || done.contains(id)) return;
    ++dead_lettered;
    done.insert(id);
    attempts.erase(id);
  }
  void record_attempt(std::uint64_t id, std::uint32_t count) {
    if (id == 0 || id >= next_id || done.contains(id)) return;
    attempts[id] = count;
  }
  std::uint64_t ready() const { return (next_id - 1) - done.size(); }
};

/// Appends and blocks until the callback reports; returns its status.
template <class Append>
status wait_durable(Append&& append) {
  auto promise = std::make_shared<std::promise<status>>();
  auto future = promise->get_future();
  status accepted = append([promise](const status& s) { promise->set_value(s); });
  if (!accepted) return accepted;
  return future.get();
}

/// Publishes `payloads` as one batch and waits until durable; returns the first id or the error.
inline result<std::uint64_t> publish_and_wait(checkpoint_log& log,
                                              const std::vector<std::string>& payloads) {
  std::vector<outgoing_message> batch(payloads.size());
  for (std::size_t i = 0; i < payloads.size(); ++i) batch[i].payload = payloads[i];
  auto promise = std::make_shared<std::promise<status>>();
  auto future = promise->get_future();
  auto first = log.publish(batch, [promise](const status& s) { promise->set_value(s); });
  if (!first) return first.error();
  if (auto durable = future.get(); !durable) return durable;
  return *first;
}

inline status ack_and_wait(checkpoint_log& log, std::uint64_t begin, std::uint64_t end) {
  id_range range{begin, end};
  return wait_durable([&](durable_callback done) { return log.ack({&range, 1}, std::move(done)); });
}

/// Differences between a log's observable state and the model; empty when they agree.
inline std::string compare_with_model(const checkpoint_log& log, const log_model& model) {
  std::ostringstream diff;
  const auto stats = log.stats();
  auto check = [&](const char* what, std::uint64_t actual, std::uint64_t expected) {
    if (actual != expected) diff << what << ": log " << actual << " model " << expected << "; ";
  };
  check("next_id", stats.next_id, model.next_id);
  check("published", stats.published, model.next_id - 1);
  check("acked", stats.acked, model.acked);
  check("dead_lettered", stats.dead_lettered, model.dead_lettered);
  check("ready", stats.ready, model.ready());
  check("unacked", stats.unacked, model.attempts.size());
  check("lost", stats.lost, 0);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ready;
  log.for_each_ready(1, SIZE_MAX, [&](std::uint64_t id, std::uint32_t attempts) {
    ready.emplace_back(id, attempts);
  });
  std::size_t index = 0;
  for (const auto& [id, payload] : model.payloads) {
    if (model.done.contains(id)) continue;
    const auto a = model.attempts.find(id);
    const std::uint32_t attempts = a == model.attempts.end() ? 0 : a->second;
    if (index >= ready.size() || ready[index].first != id || ready[index].second != attempts) {
      diff << "ready entry " << index << " should be id " << id << " attempts " << attempts << "; ";
      break;
    }
    auto message = log.read(id);
    if (!message) {
      diff << "read(" << id << ") failed: " << message.error().to_string() << "; ";
    } else if (message->payload != payload || message->attempts != attempts) {
      diff << "read(" << id << ") returned a different message; ";
    }
    ++index;
  }
  if (index != ready.size() && diff.str().empty()) diff << "log has extra ready ids; ";
  return diff.str();
}

}  // namespace weir::testing
