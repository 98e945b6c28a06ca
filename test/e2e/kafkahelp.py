# SPDX-License-Identifier: Apache-2.0
"""Kafka for the end-to-end tests and the benchmarks: librdkafka's mock
cluster in its own process (tools/kafkamock, $KAFKAMOCK_BIN or
build/kafkamock), and a consumer that reads a topic back.

  KafkaMock(brokers=1, topic=None, partitions=4, cpu=None)
        (cpu: pinned to that core, as the benchmarks want)
        .bootstrap   "127.0.0.1:port,..." (its brokers listen on free
                     loopback ports)
        .down()      every broker disconnects and refuses connections
        .up()        they accept them again; nothing held is lost
        .stop()
  kafkamock   a pytest fixture: one KafkaMock per test, stopped after it
  read_records(bootstrap, topic, count=None, timeout=10.0)
        every message the topic holds (after waiting until it holds count,
        when given): [(partition, offset, key str, value bytes)], sorted by
        partition and offset
  read_all(bootstrap, topic, count=None, timeout=10.0)
        their values decoded from JSON, in that order

confluent_kafka is Debian's python3-confluent-kafka (tools/deps.sh test).
"""

import json
import os
import select
import subprocess
import time

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def kafkamock_bin():
    b = os.environ.get("KAFKAMOCK_BIN") or os.path.join(REPO_ROOT, "build", "kafkamock")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"{b} is not built (make)")
    return b


class KafkaMock:
    """One kafkamock process; its commands go on stdin, answers on stdout."""

    def __init__(self, brokers=1, topic=None, partitions=4, timeout=10.0, cpu=None):
        argv = [kafkamock_bin(), "--brokers", str(brokers)]
        if topic is not None:
            argv += ["--topic", topic, "--partitions", str(partitions)]
        if cpu is not None:     # pinned, threads and all (benchmarks)
            argv = ["taskset", "-c", str(cpu)] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     bufsize=1)
        self.bootstrap = self._line(timeout)
        if not self.bootstrap or "127.0.0.1:" not in self.bootstrap:
            self.stop()
            raise RuntimeError(f"kafkamock did not start: {self.bootstrap!r}")

    def _line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise RuntimeError("kafkamock did not answer in time")
        return self.proc.stdout.readline().strip()

    def command(self, cmd, timeout=5.0):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer = self._line(timeout)
        if answer != "ok " + cmd:
            raise RuntimeError(f"kafkamock {cmd}: {answer}")

    def down(self):
        self.command("down")

    def up(self):
        self.command("up")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        return self.proc.returncode


@pytest.fixture
def kafkamock():
    k = KafkaMock()
    yield k
    rc = k.stop()
    assert rc == 0, f"kafkamock exited with {rc}"


def _partitions(consumer, topic, deadline):
    from confluent_kafka import KafkaException
    while True:
        try:
            md = consumer.list_topics(topic, timeout=1.0)
            t = md.topics.get(topic)
            if t is not None and t.error is None and t.partitions:
                return sorted(t.partitions)
        except KafkaException:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topic {topic} not found")
        time.sleep(0.1)


def _highs(consumer, topic, parts, deadline):
    from confluent_kafka import TopicPartition
    highs = {}
    for p in parts:
        left = max(0.5, deadline - time.monotonic())
        _, hi = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                               timeout=left)
        highs[p] = hi
    return highs


def read_records(bootstrap, topic, count=None, timeout=10.0):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    deadline = time.monotonic() + timeout
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": f"kafkahelp-{os.getpid()}-{time.monotonic_ns()}",
                  "enable.auto.commit": False,
                  "fetch.wait.max.ms": 50,
                  "log_level": 3})
    try:
        parts = _partitions(c, topic, deadline)
        highs = _highs(c, topic, parts, deadline)
        while count is not None and sum(highs.values()) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{topic} holds {sum(highs.values())} "
                                   f"messages, not {count}")
            time.sleep(0.1)
            highs = _highs(c, topic, parts, deadline)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        got, pos = [], {p: 0 for p in parts}
        while any(pos[p] < highs[p] for p in parts):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"read {len(got)} of {sum(highs.values())}")
            for m in c.consume(1000, timeout=0.2):
                if m.error() is not None:
                    continue
                pos[m.partition()] = m.offset() + 1
                key = m.key().decode() if m.key() is not None else None
                got.append((m.partition(), m.offset(), key, m.value()))
        return sorted(got)
    finally:
        c.close()


def read_all(bootstrap, topic, count=None, timeout=10.0):
    return [json.loads(v) for _, _, _, v in
            read_records(bootstrap, topic, count, timeout)]
