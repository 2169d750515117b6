"""examples/python: the work-queue worker of RabbitMQ's tutorial 2. A worker
killed mid-task (SIGKILL) never acked, so its task goes to another worker."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import Node

EXAMPLES = os.environ.get("WEIR_EXAMPLES",
                          os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))


@pytest.fixture
def tasks_node(tmp_path):
    n = Node(tmp_path, ["task_queue"])
    yield n
    n.stop()


def start(script, address, *args, log):
    return subprocess.Popen([sys.executable, os.path.join(EXAMPLES, script), "--connect", address,
                             *args], stdout=log, stderr=subprocess.STDOUT)


def wait_for_text(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_workers_task_goes_to_another_worker(tasks_node, tmp_path):
    log_a, log_b = tmp_path / "a.out", tmp_path / "b.out"
    with open(log_a, "w") as out_a:
        worker_a = start("worker.py", tasks_node.address, log=out_a)
    try:
        sent = subprocess.run([sys.executable, os.path.join(EXAMPLES, "producer.py"), "--connect",
                               tasks_node.address, "long task........"],
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        assert "Sent 'long task........'" in sent.stdout
        assert wait_for_text(log_a, "Received 'long task........' (attempt 1)", 30), log_a.read_text()
        worker_a.send_signal(signal.SIGKILL)  # mid-task: eight seconds of work, none done
        worker_a.wait(timeout=10)
    finally:
        worker_a.kill()
    assert "Done" not in log_a.read_text()
    with open(log_b, "w") as out_b:
        worker_b = start("worker.py", tasks_node.address, "--count", "1", log=out_b)
        try:
            assert worker_b.wait(timeout=60) == 0, log_b.read_text()
        finally:
            worker_b.kill()
    text = log_b.read_text()
    assert "Received 'long task........' (attempt 2)" in text
    assert "Done 'long task........'" in text
