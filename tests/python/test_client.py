"""The Python client against a real `weir node`: round trips of bytes, keys and
headers, acks, nacks (requeue and dead letter), a raising handler, errors, the
GIL released while waiting, and publishes with callbacks and futures."""

import threading
import time

import pytest

import weir


def test_round_trip_keeps_binary_bodies_keys_and_headers(client):
    body = b"\x00bin\x00ary\xff\x00"
    client.publish("jobs", body, key="order-7", headers={"content-type": "x/bin", "n": "1"})
    client.publish_many("jobs", ["text", {"body": b"\x00", "key": "k2", "headers": {"a": "b"}}])
    got = list(client.consume("jobs", credit=8, timeout=1))
    assert [m.body for m in got] == [body, b"text", b"\x00"]
    assert [m.key for m in got] == ["order-7", "", "k2"]
    assert got[0].headers == {"content-type": "x/bin", "n": "1"}
    assert got[2].headers == {"a": "b"}
    assert all(m.attempt == 1 for m in got)
    assert abs(got[0].publish_time - time.time()) < 60
    for m in got:
        m.ack()


def test_acked_messages_are_gone_and_unacked_ones_come_back(client):
    client.publish_many("jobs", [b"keep", b"drop"])
    with client.consume("jobs", credit=2, timeout=1) as sub:
        first, second = sub.get(timeout=5), sub.get(timeout=5)
        assert (first.body, second.body) == (b"keep", b"drop")
        second.ack()
    # Closing the subscription gave back what it held unacked, at once.
    again = list(client.consume("jobs", credit=2, timeout=1))
    assert [m.body for m in again] == [b"keep"]
    assert again[0].attempt == 2
    again[0].ack()
    assert list(client.consume("jobs", credit=2, timeout=0.5)) == []


def test_no_more_than_the_credit_is_held(client):
    client.publish_many("jobs", [b"1", b"2", b"3"])
    with client.consume("jobs", credit=2) as sub:
        a, b = sub.get(timeout=5), sub.get(timeout=5)
        assert sub.get(timeout=0.3) is None
        a.ack()
        c = sub.get(timeout=5)
        assert c.body == b"3"
        b.ack()
        c.ack()


def test_nack_with_requeue_redelivers_with_attempt_2(client):
    client.publish("jobs", b"again")
    with client.consume("jobs", credit=1) as sub:
        m = sub.get(timeout=5)
        m.nack(requeue=True, reason="try later")
        again = sub.get(timeout=10)
        assert (again.id, again.body, again.attempt) == (m.id, b"again", 2)
        again.ack()


def test_nack_without_requeue_dead_letters_with_the_reason(node, client):
    client.publish("jobs", b"poison")
    with client.consume("jobs", credit=1) as sub:
        m = sub.get(timeout=5)
        m.extend(5000)
        m.nack(requeue=False, reason="price is not a number")
        with pytest.raises(weir.InvalidArgumentError, match="not held"):
            m.ack()  # settled already
    dead = list(client.consume("jobs.dlq", credit=1, timeout=1))
    assert [d.body for d in dead] == [b"poison"]
    assert dead[0].headers["x-last-error"] == "price is not a number"
    assert dead[0].headers["x-original-queue"] == "jobs"


def test_a_raising_handler_is_nacked_with_its_text_until_dead_lettered(node, client):
    client.publish("jobs", b"bad order")
    calls = []

    def handler(message):
        calls.append(message.attempt)
        raise ValueError("price is not a number")

    # The node allows 5 deliveries, then moves the message to jobs.dlq.
    assert client.process("jobs", handler, timeout=5, count=5) == 0
    assert calls == [1, 2, 3, 4, 5]
    listing = ""
    deadline = time.monotonic() + 10
    while "dead_letters=1" not in listing and time.monotonic() < deadline:
        listing = node.dead_letters("jobs")
    assert 'x-last-error="ValueError: price is not a number"' in listing
    assert 'x-attempts="5"' in listing


def test_a_handler_that_returns_acks(client):
    client.publish_many("jobs", [b"a", b"b"])
    seen = []
    assert client.process("jobs", lambda m: seen.append(m.body), credit=2, timeout=1) == 2
    assert seen == [b"a", b"b"]
    assert list(client.consume("jobs", timeout=0.5)) == []


def test_an_unknown_queue_raises_with_its_name(node, client):
    with pytest.raises(weir.NotFoundError, match="no-such-queue") as raised:
        client.publish("no-such-queue", b"x")
    assert raised.value.code == "not_found"
    assert node.address in raised.value.reason
    with pytest.raises(weir.NotFoundError, match="no-such-queue"):
        client.consume("no-such-queue")
    client.publish("jobs", b"still fine")


def test_an_unreachable_node_raises_connection_error():
    with pytest.raises(weir.ConnectionError, match="127.0.0.1:9"):
        weir.connect("tcp://127.0.0.1:9", connect_timeout=0.3)


def test_bad_arguments_are_named(client):
    with pytest.raises(TypeError, match="body must be bytes or str, not int"):
        client.publish("jobs", 42)
    with pytest.raises(weir.InvalidArgumentError, match="credit 0"):
        client.consume("jobs", credit=0)


def test_the_gil_is_released_while_consume_waits(client):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    started = time.monotonic()
    assert list(client.consume("jobs", timeout=1)) == []  # an empty queue: waits a second
    stop.set()
    t.join()
    assert time.monotonic() - started >= 0.9
    assert ticks > 100  # a held GIL would have let it run once or twice


def test_publish_async_with_a_callback_and_a_future(client):
    outcomes = []
    done = threading.Event()

    def callback(error):
        outcomes.append(error)
        done.set()

    assert client.publish_async("jobs", b"cb", callback=callback) is None
    assert done.wait(10)
    assert outcomes == [None]
    future = client.publish_async("jobs", b"future", key="f")
    assert future.result(timeout=10) is None
    failed = client.publish_async("no-such-queue", b"x")
    assert isinstance(failed.exception(timeout=10), weir.NotFoundError)
    assert [m.body for m in client.consume("jobs", timeout=1)] == [b"cb", b"future"]


def test_a_closed_client_raises_closed(node):
    c = node.connect()
    c.close()
    with pytest.raises(weir.ClosedError):
        c.publish("jobs", b"x")


def test_threads_may_share_a_client(client):
    def publish(t):
        for i in range(25):
            client.publish("jobs", f"{t}-{i}")

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = []
    for m in client.consume("jobs", credit=100, timeout=1):
        got.append(m.body.decode())
        m.ack()
    assert sorted(got) == sorted(f"{t}-{i}" for t in range(4) for i in range(25))
    # Each thread's own publishes stay in the order it made them.
    for t in range(4):
        mine = [int(b.split("-")[1]) for b in got if b.startswith(f"{t}-")]
        assert mine == list(range(25))


def test_a_message_of_a_closed_client_cannot_be_settled(node):
    c = node.connect()
    c.publish("jobs", b"held")
    m = c.consume("jobs", credit=1).get(timeout=5)
    c.close()
    with pytest.raises(weir.ClosedError):
        m.ack()


def test_a_callback_may_publish_again(client):
    done = threading.Event()
    errors = []

    def second(error):
        errors.append(error)
        done.set()

    def first(error):
        errors.append(error)
        client.publish_async("jobs", b"second", callback=second)

    client.publish_async("jobs", b"first", callback=first)
    assert done.wait(10)
    assert errors == [None, None]
    assert [m.body for m in client.consume("jobs", timeout=1)] == [b"first", b"second"]
