#!/usr/bin/env python3
"""A worker of RabbitMQ's tutorial 2 ("work queues", worker.py) done with weir:
it takes one task at a time (credit 1, RabbitMQ's prefetch_count=1), sleeps a
second per dot in it, and acks only when done. A worker killed mid-task never
acked, so the node gives its task to another worker.

    python3 worker.py --connect tcp://127.0.0.1:5555
"""

import argparse
import sys
import time

import weir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", default="tcp://127.0.0.1:5555", help="the node's address")
    parser.add_argument("--queue", default="task_queue")
    parser.add_argument("--count", type=int, default=0, help="stop after this many tasks (0: never)")
    args = parser.parse_args()
    with weir.connect(args.connect) as client:
        print(" [*] Waiting for tasks. To exit press CTRL+C", flush=True)
        done = 0
        for message in client.consume(args.queue, credit=1):
            task = message.body.decode("utf-8", "replace")
            print(f" [x] Received {task!r} (attempt {message.attempt})", flush=True)
            time.sleep(task.count("."))
            print(f" [x] Done {task!r}", flush=True)
            message.ack()
            done += 1
            if args.count and done >= args.count:
                break


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except weir.Error as error:
        sys.exit(f"worker: {error}")
