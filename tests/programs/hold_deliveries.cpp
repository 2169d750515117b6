// A consumer that takes deliveries and never acks them: it prints "held N" once
// it holds N, then waits to be killed. Multi-process tests kill it to check that
// a lost consumer's deliveries go to another one at once.
//
//   hold_deliveries ADDRESS QUEUE N

#include <iostream>
#include <string>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/node/remote_queue.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: hold_deliveries ADDRESS QUEUE N\n";
    return 2;
  }
  const auto want = std::stoll(argv[3]);
  weir::testing::actor_test_config cfg;
  caf::actor_system system{cfg};
  weir::remote_queue_options options;
  options.address = argv[1];
  options.queue = argv[2];
  options.link.node_id = "hold_deliveries";
  auto queue = weir::spawn_remote_queue(system, options);
  if (!queue) {
    std::cerr << queue.error().to_string() << "\n";
    return 2;
  }
  system.spawn(
      [want](caf::event_based_actor* self, caf::actor q) -> caf::behavior {
        self->send(q, weir::subscribe_atom::value, std::int64_t{want});
        auto held = std::make_shared<std::int64_t>(0);
        return {[held, want](weir::deliver_atom, const weir::delivery_batch& batch) {
          *held += static_cast<std::int64_t>(batch.deliveries.size());
          if (*held == want) std::cout << "held " << want << std::endl;
        }};
      },
      *queue);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}
