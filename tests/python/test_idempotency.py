"""Idempotent puts: PutRecord(s) with X-Sluice-Idempotency-Key is stored once within the
window, and a retry gets the first answer (the same sequence numbers)."""

from __future__ import annotations

import threading

import pytest

from harness import error_code, read_shard, shard_ids


def keyed(server, key: str | None):
    """A Kinesis client that adds the idempotency header to its puts (signed with them)."""
    client = server.client()

    def add(request, **_):
        if key is not None:
            request.headers["X-Sluice-Idempotency-Key"] = key

    client.meta.events.register("before-sign.kinesis.PutRecords", add)
    client.meta.events.register("before-sign.kinesis.PutRecord", add)
    return client


def stored(client, name: str) -> list[bytes]:
    return [r["Data"] for shard in shard_ids(client, name) for r in read_shard(client, name, shard)]


def test_a_retried_put_records_is_stored_once(server, new_stream):
    name = new_stream(shards=2)
    records = [{"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(10)]
    client = keyed(server, "batch-0001")
    first = client.put_records(StreamName=name, Records=records)
    again = client.put_records(StreamName=name, Records=records)
    seqs = [r["SequenceNumber"] for r in first["Records"]]
    assert [r["SequenceNumber"] for r in again["Records"]] == seqs
    assert sorted(stored(client, name)) == sorted(r["Data"] for r in records)
    # The same key for another request is refused, and writes nothing.
    with pytest.raises(Exception) as refused:
        client.put_records(StreamName=name, Records=records[:3])
    assert error_code(refused.value) == "InvalidArgumentException"
    assert len(stored(client, name)) == 10
    # Without a key, a retry is a new request (as on AWS).
    plain = keyed(server, None)
    plain.put_record(StreamName=name, Data=b"twice", PartitionKey="p")
    plain.put_record(StreamName=name, Data=b"twice", PartitionKey="p")
    assert stored(client, name).count(b"twice") == 2


def test_concurrent_retries_of_one_put_record_store_it_once(server, new_stream):
    name = new_stream()
    answers, errors = [], []

    def put():
        try:
            answers.append(keyed(server, "single-7").put_record(
                StreamName=name, Data=b"once", PartitionKey="p")["SequenceNumber"])
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(answers)) == 1 and len(answers) == 6
    assert stored(server.client(), name) == [b"once"]


def test_a_malformed_key_is_refused(server, new_stream):
    name = new_stream()
    with pytest.raises(Exception) as refused:
        keyed(server, "has space").put_record(StreamName=name, Data=b"x", PartitionKey="p")
    assert error_code(refused.value) == "InvalidArgumentException"
