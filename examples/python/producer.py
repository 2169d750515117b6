#!/usr/bin/env python3
"""Publishes one task: RabbitMQ's tutorial 2 ("work queues", new_task.py) done
with weir. Each dot in the task makes a worker busy for a second.

    python3 producer.py --connect tcp://127.0.0.1:5555 "A hard task....."
"""

import argparse
import sys

import weir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", default="tcp://127.0.0.1:5555", help="the node's address")
    parser.add_argument("--queue", default="task_queue")
    parser.add_argument("task", nargs="*", help="the task's text (default: Hello World!)")
    args = parser.parse_args()
    body = " ".join(args.task) or "Hello World!"
    with weir.connect(args.connect) as client:
        # Returns once the node has the task on disk: a crash of the node after
        # this line does not lose it (the queue's sync policy is "always").
        client.publish(args.queue, body)
    print(f" [x] Sent {body!r}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except weir.Error as error:
        sys.exit(f"producer: {error}")
