// An outside program built against an installed weir (tests/install_test.sh):
// through find_package(weir) and through pkg-config. It uses the public API of
// each layer and checks real behaviour; exit 0 and one line on stdout when all
// of it held, a message on stderr and exit 1 otherwise.
//   runtime:   a checkpoint log keeps appended records across a reopen
//   transport: an error frame encodes and decodes (Cap'n Proto, generated headers)
//   actors:    a durable queue actor confirms, delivers and counts an ack

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <caf/all.hpp>

#include "weir/node/actor_types.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/queue/queue.hpp"
#include "weir/queue/system_config.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/transport/frame.hpp"

namespace {

using namespace std::chrono_literals;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "install consumer: FAILED: " << what << "\n";
  std::exit(1);
}

void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

void check_log(weir::file_system& fs, const std::string& dir) {
  const std::vector<std::string> payloads{"alpha", "beta", "gamma"};
  {
    auto log = weir::checkpoint_log::open(fs, dir);
    check(static_cast<bool>(log), "open log: " + (log ? std::string() : log.error().to_string()));
    std::vector<weir::outgoing_message> batch(payloads.size());
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      batch[i].producer_id = 1;
      batch[i].producer_epoch = 1;
      batch[i].producer_seq = i + 1;
      batch[i].key = "k";
      batch[i].payload = payloads[i];
    }
    auto first = (*log)->publish(batch, {});
    check(static_cast<bool>(first) && *first == 1u, "publish returned no first id 1");
    auto synced = (*log)->sync();
    check(synced.is_ok(), "sync: " + synced.to_string());
  }
  auto log = weir::checkpoint_log::open(fs, dir);
  check(static_cast<bool>(log), "reopen log: " + (log ? std::string() : log.error().to_string()));
  check((*log)->stats().published == payloads.size(), "reopened log lost records");
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    auto message = (*log)->read(i + 1);
    check(static_cast<bool>(message), "read id " + std::to_string(i + 1));
    check(message->payload == payloads[i] && message->key == "k",
          "record " + std::to_string(i + 1) + " came back as " + message->payload.str());
  }
  auto producer = (*log)->producer(1);
  check(producer && producer->last_seq == payloads.size(), "producer sequence not recovered");
}

void check_frame() {
  auto bytes = weir::transport::encode_error(weir::schema::ErrorCode::UNKNOWN_QUEUE, "no such queue");
  auto decoded = weir::transport::decode_frame(std::move(bytes), {});
  auto* frame = std::get_if<weir::transport::inbound_frame_ptr>(&decoded);
  check(frame != nullptr, "decode of an encoded error frame failed");
  auto messages = (*frame)->root().getMessages();
  check(messages.size() == 1 && messages[0].isError(), "decoded frame holds no error message");
  auto error = messages[0].getError();
  check(error.getCode() == weir::schema::ErrorCode::UNKNOWN_QUEUE &&
            std::string(error.getMessage().cStr()) == "no such queue",
        "decoded error frame differs");
}

struct config : weir::system_config {
  config() { weir::add_actor_types(*this); }
};

void check_queue(weir::file_system& fs, const std::string& dir) {
  config cfg;
  caf::actor_system system{cfg};
  caf::scoped_actor self{system};

  weir::queue_options options;
  options.name = "orders";
  options.data_dir = dir;
  auto spawned = weir::spawn_queue(system, fs, options);
  check(static_cast<bool>(spawned),
        "spawn_queue: " + (spawned ? std::string() : spawned.error().to_string()));
  caf::actor queue = *spawned;

  weir::publish_batch batch{5, 1, 1, {}};
  batch.messages.push_back({"key-1", "hello from outside", {}, 0});
  self->send(queue, weir::publish_atom::value, std::move(batch));
  bool confirmed = false;
  self->receive(
      [&](weir::confirm_atom, weir::confirmation& c) {
        confirmed = c.queue == "orders" && c.up_to_seq == 1u;
      },
      caf::after(10s) >> [] {});
  check(confirmed, "no confirmation of the publish");

  self->send(queue, weir::subscribe_atom::value, std::int64_t{10});
  std::vector<weir::delivery> got;
  self->receive(
      [&](weir::deliver_atom, weir::delivery_batch& b) { got = std::move(b.deliveries); },
      caf::after(10s) >> [] {});
  check(got.size() == 1 && got[0].data.payload == "hello from outside" &&
            got[0].data.key == "key-1" && got[0].attempt == 1u,
        "delivery missing or wrong");
  self->send(queue, weir::ack_atom::value,
             std::vector<weir::id_range>{{got[0].id, got[0].id + 1}});

  std::uint64_t acked = 0;
  for (int i = 0; i < 100 && acked == 0; ++i) {  // the ack is durable a little later
    self->request(queue, 10s, weir::stats_atom::value)
        .receive([&](weir::queue_stats& s) { acked = s.acked; },
                 [&](caf::error& e) { fail("stats: " + caf::to_string(e)); });
    if (acked == 0) std::this_thread::sleep_for(20ms);
  }
  check(acked == 1u, "the ack was not counted");

  self->send_exit(queue, caf::exit_reason::user_shutdown);
  self->wait_for(queue);
}

}  // namespace

int main() {
  std::string pattern = (std::filesystem::temp_directory_path() / "weir-consumer-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) fail("mkdtemp");
  const std::filesystem::path root = pattern;
  {
    weir::posix_file_system fs;
    check_log(fs, (root / "log").string());
    check_frame();
    check_queue(fs, (root / "queue").string());
  }
  std::filesystem::remove_all(root);
  std::cout << "install consumer: ok: checkpoint_log recovered 3 records after reopen, "
               "error frame round-tripped, queue actor confirmed, delivered and counted an ack\n";
  return 0;
}
