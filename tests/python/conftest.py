"""A fresh `weir node` per test ($WEIR_BIN), serving the queue `jobs` (5
deliveries, then jobs.dlq), on a free loopback port."""

import os
import socket
import subprocess

import pytest

import weir


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, tmp_path, queues):
        self.bin = os.environ["WEIR_BIN"]
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.log = open(tmp_path / "node.log", "wb")
        args = [self.bin, "node", "--listen", self.address, "--data", str(tmp_path / "data")]
        for q in queues:
            args += ["--queue", q]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def connect(self, **options):
        # connect waits for the node's handshake, so a node still starting is fine.
        return weir.connect(self.address, connect_timeout=15, **options)

    def dead_letters(self, queue):
        """What `weir dlq list` prints for `queue`'s dead letters."""
        out = subprocess.run([self.bin, "dlq", "list", "--connect", self.address, "--queue", queue],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path, ["jobs"])
    yield n
    n.stop()


@pytest.fixture
def client(node):
    with node.connect() as c:
        yield c
