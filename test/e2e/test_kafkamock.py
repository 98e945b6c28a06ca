# SPDX-License-Identifier: Apache-2.0
"""tools/kafkamock and test/e2e/kafkahelp.py: what is produced to the mock
cluster is read back whole and in order; down makes it unreachable (an
idempotent producer holds its messages), up gives it back with nothing
lost."""

import json

import pytest

from kafkahelp import KafkaMock, kafkamock, read_all, read_records  # noqa: F401

confluent_kafka = pytest.importorskip("confluent_kafka")


def producer(bootstrap):
    return confluent_kafka.Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True,
        "acks": "all", "message.timeout.ms": 0, "linger.ms": 5,
        "log_level": 0})


def produce(p, first, n, delivered):
    def on_delivery(err, msg):
        if err is None:
            delivered.append(json.loads(msg.value())["n"])
    for i in range(first, first + n):
        p.produce("t", key=f"k{i % 5}", on_delivery=on_delivery,
                  value=json.dumps({"n": i, "key": f"k{i % 5}"}))
        p.poll(0)


def test_produce_down_up_read_back(kafkamock):  # noqa: F811
    p, delivered = producer(kafkamock.bootstrap), []
    produce(p, 0, 100, delivered)
    assert p.flush(10) == 0
    assert len(delivered) == 100

    kafkamock.down()
    produce(p, 100, 100, delivered)
    assert p.flush(2) > 0, "kafkamock down, yet the messages were delivered"
    assert len(delivered) == 100

    kafkamock.up()
    assert p.flush(20) == 0
    assert sorted(delivered) == list(range(200))

    msgs = read_all(kafkamock.bootstrap, "t", count=200)
    assert sorted(m["n"] for m in msgs) == list(range(200))
    for k in range(5):
        ns = [m["n"] for m in msgs if m["key"] == f"k{k}"]
        assert ns == sorted(ns), f"key k{k} out of order: {ns}"


def test_topic_partitions_and_keys():
    k = KafkaMock(brokers=3, topic="reports", partitions=2)
    try:
        assert len(k.bootstrap.split(",")) == 3
        p = producer(k.bootstrap)
        for i in range(20):
            p.produce("reports", key="same", value=json.dumps({"i": i}))
        assert p.flush(10) == 0
        recs = read_records(k.bootstrap, "reports", count=20)
        assert {r[0] for r in recs} <= {0, 1}
        assert len({r[0] for r in recs}) == 1, "one key, one partition"
        assert [json.loads(r[3])["i"] for r in recs] == list(range(20))
        assert all(r[2] == "same" for r in recs)
    finally:
        assert k.stop() == 0


def test_unknown_command(kafkamock):  # noqa: F811
    with pytest.raises(RuntimeError, match="unknown command"):
        kafkamock.command("sideways")
    kafkamock.down()
    kafkamock.up()
