"""Consumer groups: real `sluice consume` workers against the real server. One worker
reads every record and keeps each key's order across a split; two share a stream's
shards without reading a record twice; a worker killed with SIGKILL is replaced by
the survivor; a group stopped with SIGTERM resumes where it stopped; KPL aggregates
made by the public `aws_kinesis_agg` package come out as their user records."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from harness import ACCOUNT_ID, unique_name

TARGET = "SluiceConsumerGroups_20261205."


def groups(server, operation: str, payload: dict, **kw):
    return server.raw(None, json.dumps(payload).encode(),
                      headers={"X-Amz-Target": TARGET + operation}, **kw)


class Worker:
    """A `sluice consume` process whose stdout lines are collected as they come."""

    def __init__(self, binary, server, stream: str, group: str, *extra: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
        env.update({
            "SLUICE_ENDPOINT": f"127.0.0.1:{server.port}",
            "SLUICE_CA": server.ca,
            "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
            "RUST_BACKTRACE": "1",
        })
        self.process = subprocess.Popen(
            [str(binary), "consume", "--stream", stream, "--group", group, *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.records: list[dict] = []
        self.stderr: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        for line in self.process.stdout:
            record = json.loads(line)
            record["text"] = base64.b64decode(record["data"]).decode()
            with self.lock:
                self.records.append(record)

    def _pump_err(self) -> None:
        for line in self.process.stderr:
            with self.lock:
                self.stderr.append(line)

    def texts(self) -> list[str]:
        with self.lock:
            return [r["text"] for r in self.records]

    def wait_joined(self, timeout: float = 30) -> None:
        wait_for(lambda: any("joined consumer group" in l for l in self.stderr), timeout,
                 lambda: f"worker did not join: {''.join(self.stderr)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *_) -> None:
        self.stop(signal.SIGKILL)


def wait_for(condition, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)


def put(kinesis, stream: str, texts: list[str], key_of) -> None:
    for i in range(0, len(texts), 100):
        chunk = texts[i:i + 100]
        out = kinesis.put_records(StreamName=stream, Records=[
            {"Data": t.encode(), "PartitionKey": key_of(t)} for t in chunk])
        assert out["FailedRecordCount"] == 0


def by_key(text: str) -> str:
    return text.split(":")[0]


def test_one_worker_reads_everything_and_keeps_each_keys_order_across_a_split(
        binary, server, kinesis, new_stream):
    stream = new_stream(shards=4)
    keys = [f"key{k}" for k in range(8)]
    first = [f"{k}:{i}" for i in range(25) for k in keys]
    put(kinesis, stream, first, by_key)
    with Worker(binary, server, stream, "readers", "--lease-timeout-seconds", "4") as worker:
        wait_for(lambda: len(worker.texts()) >= len(first), 60,
                 lambda: f"read {len(worker.texts())} of {len(first)}")
        # Split the shard that holds key0 while the worker reads; key0's records go on
        # to a child, which the group hands out only after the parent's end.
        shards = kinesis.list_shards(StreamName=stream)["Shards"]
        import hashlib
        h = int.from_bytes(hashlib.md5(b"key0").digest(), "big")
        parent = next(s for s in shards if int(s["HashKeyRange"]["StartingHashKey"]) <= h
                      <= int(s["HashKeyRange"]["EndingHashKey"]))
        lo = int(parent["HashKeyRange"]["StartingHashKey"])
        hi = int(parent["HashKeyRange"]["EndingHashKey"])
        kinesis.split_shard(StreamName=stream, ShardToSplit=parent["ShardId"],
                            NewStartingHashKey=str((lo + hi) // 2))
        wait_for(lambda: kinesis.describe_stream_summary(StreamName=stream)
                 ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", 60, "split did not finish")
        second = [f"{k}:{i}" for i in range(25, 50) for k in keys]
        put(kinesis, stream, second, by_key)
        everything = first + second
        wait_for(lambda: len(worker.texts()) >= len(everything), 60,
                 lambda: f"read {len(worker.texts())} of {len(everything)}")
        assert worker.stop() == 0, "".join(worker.stderr)
    texts = worker.texts()
    assert sorted(texts) == sorted(everything), "every record exactly once"
    for key in keys:
        seen = [int(t.split(":")[1]) for t in texts if by_key(t) == key]
        assert seen == list(range(50)), f"{key} out of order: {seen}"
    described = groups(server, "DescribeConsumerGroup", {"StreamName": stream, "GroupName": "readers"})
    assert described.status == 200, described
    shards = described.json()["ConsumerGroup"]["Shards"]
    assert any(s["Finished"] for s in shards), "the split parent was read to its end"
    assert all(s["RecordsBehind"] == 0 for s in shards), [(s["ShardId"], s["RecordsBehind"], s.get("Checkpoint")) for s in shards]
    assert described.json()["ConsumerGroup"]["Members"] == [], "the worker left"


def test_two_workers_share_the_shards_and_the_survivor_takes_over_a_killed_one(
        binary, server, kinesis, new_stream):
    stream = new_stream(shards=4)
    args = ("--lease-timeout-seconds", "3")
    with Worker(binary, server, stream, "pair", "--member-name", "one", *args) as one:
        one.wait_joined()
        with Worker(binary, server, stream, "pair", "--member-name", "two", *args) as two:
            two.wait_joined()
            # Both hold shards once the first gave half of its up.
            def both_hold() -> bool:
                d = groups(server, "DescribeConsumerGroup", {"StreamName": stream, "GroupName": "pair"}).json()
                owners = {s.get("Owner") for s in d["ConsumerGroup"]["Shards"] if not s["Finished"]}
                return len(owners) == 2 and None not in owners
            wait_for(both_hold, 30, "the shards were not shared")
            shared = [f"k{i % 16}:{i}" for i in range(400)]
            put(kinesis, stream, shared, by_key)
            wait_for(lambda: len(one.texts()) + len(two.texts()) >= len(shared), 60,
                     lambda: f"read {len(one.texts())} + {len(two.texts())} of {len(shared)}")
            a, b = set(one.texts()), set(two.texts())
            assert a and b, "each worker read some shards"
            assert not (a & b), f"read by both: {sorted(a & b)[:5]}"
            assert a | b == set(shared)
            # One dies without a word; the survivor takes its shards after the lease
            # timeout and reads everything written after.
            one.stop(signal.SIGKILL)
            after = [f"k{i % 16}:{i}" for i in range(400, 600)]
            put(kinesis, stream, after, by_key)
            wait_for(lambda: set(after) <= set(two.texts()), 60,
                     lambda: f"the survivor read {len(set(after) & set(two.texts()))} of {len(after)}")
            assert two.stop() == 0, "".join(two.stderr)


def test_a_group_stopped_with_sigterm_resumes_without_rereading(binary, server, kinesis, new_stream):
    stream = new_stream(shards=2)
    before = [f"k{i % 5}:{i}" for i in range(60)]
    put(kinesis, stream, before, by_key)
    with Worker(binary, server, stream, "resume") as worker:
        wait_for(lambda: len(worker.texts()) >= len(before), 60, "did not read the first records")
        assert worker.stop(signal.SIGTERM) == 0, "".join(worker.stderr)
    assert sorted(worker.texts()) == sorted(before)
    later = [f"k{i % 5}:{i}" for i in range(60, 75)]
    put(kinesis, stream, later, by_key)
    with Worker(binary, server, stream, "resume") as again:
        wait_for(lambda: len(again.texts()) >= len(later), 60, "did not read the new records")
        time.sleep(1.0)
        assert again.stop() == 0
    assert sorted(again.texts()) == sorted(later), "nothing read twice"


def test_kpl_aggregates_come_out_as_their_user_records(binary, server, kinesis, new_stream):
    from aws_kinesis_agg.aggregator import RecordAggregator

    stream = new_stream(shards=1)
    aggregator = RecordAggregator()
    users = [(f"user-{i % 3}", f"payload {i}") for i in range(7)]
    for key, data in users:
        assert aggregator.add_user_record(key, data.encode()) is None
    record = aggregator.clear_and_get()
    key, _hash_key, data = record.get_contents()
    kinesis.put_record(StreamName=stream, PartitionKey=key, Data=data)
    kinesis.put_record(StreamName=stream, PartitionKey="plain", Data=b"not aggregated")
    with Worker(binary, server, stream, "kpl", "--max-records", str(len(users) + 1)) as worker:
        assert worker.process.wait(timeout=60) == 0, "".join(worker.stderr)
        time.sleep(0.2)
    records = worker.records
    assert [(r["partition_key"], r["text"]) for r in records[:len(users)]] == users
    assert [r["sub_sequence_number"] for r in records[:len(users)]] == list(range(len(users)))
    assert len({r["sequence_number"] for r in records[:len(users)]}) == 1
    assert records[-1]["text"] == "not aggregated" and "sub_sequence_number" not in records[-1]


def test_checkpoints_inside_an_aggregate_resume_after_the_last_user_record(server, kinesis, new_stream):
    from aws_kinesis_agg.aggregator import RecordAggregator

    stream = new_stream(shards=1)
    aggregator = RecordAggregator()
    for i in range(5):
        aggregator.add_user_record("k", f"u{i}".encode())
    key, _, data = aggregator.clear_and_get().get_contents()
    seq = kinesis.put_record(StreamName=stream, PartitionKey=key, Data=data)["SequenceNumber"]
    named = {"StreamName": stream, "GroupName": "inside"}
    assert groups(server, "CreateConsumerGroup", named).status == 200
    joined = groups(server, "JoinConsumerGroup", named).json()
    lease = joined["Leases"][0]
    assert lease["StartingPosition"] == {"Type": "TRIM_HORIZON"}
    member = {**named, "MemberId": joined["MemberId"], "ShardId": lease["ShardId"],
              "LeaseCounter": lease["LeaseCounter"]}
    r = groups(server, "CheckpointConsumerGroup", {**member, "SequenceNumber": seq, "SubSequenceNumber": 2})
    assert r.status == 200, r
    start = r.json()["Leases"][0]["StartingPosition"]
    assert start == {"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": seq, "SubSequenceNumber": 2}
    # Backwards is refused; the whole record after it is fine.
    back = groups(server, "CheckpointConsumerGroup", {**member, "SequenceNumber": seq, "SubSequenceNumber": 1})
    assert back.status == 400 and back.error_type() == "InvalidArgumentException", back
    whole = groups(server, "CheckpointConsumerGroup", {**member, "SequenceNumber": seq})
    assert whole.json()["Leases"][0]["StartingPosition"]["Type"] == "AFTER_SEQUENCE_NUMBER"
    assert groups(server, "LeaveConsumerGroup", {**named, "MemberId": joined["MemberId"]}).status == 200
    # A member that left is fenced.
    late = groups(server, "CheckpointConsumerGroup", {**member, "SequenceNumber": seq})
    assert late.status == 400 and late.error_type() == "LeaseLostException", late
    # Billed: the join, two stored checkpoints and the leave (refusals are not).
    now_ms = int(time.time() * 1000)
    usage = server.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/usage?from={now_ms - 7_200_000}"
                                f"&to={now_ms + 3_600_000}&format=json").json()["lines"]
    billed = [l for l in usage if l["metric"] == "consumer_group_requests" and l["stream"] == stream]
    assert sum(int(l["quantity"]) for l in billed) == 4, billed


def test_errors_are_the_ones_a_client_expects(server, new_stream):
    stream = new_stream(shards=1)
    missing = groups(server, "CreateConsumerGroup", {"StreamName": unique_name("nope"), "GroupName": "g"})
    assert missing.error_type() == "ResourceNotFoundException", missing
    named = {"StreamName": stream, "GroupName": "g"}
    assert groups(server, "CreateConsumerGroup", {**named, "LeaseTimeoutSeconds": 5}).status == 200
    again = groups(server, "CreateConsumerGroup", named)
    assert again.error_type() == "ResourceInUseException", again
    bad = groups(server, "CreateConsumerGroup", {"StreamName": stream, "GroupName": "a b"})
    assert bad.error_type() == "ValidationException", bad
    timeout = groups(server, "CreateConsumerGroup", {"StreamName": stream, "GroupName": "t", "LeaseTimeoutSeconds": 0})
    assert timeout.error_type() == "ValidationException", timeout
    position = groups(server, "CreateConsumerGroup", {"StreamName": stream, "GroupName": "p",
                                                       "StartingPosition": {"Type": "AT_TIMESTAMP"}})
    assert position.error_type() == "InvalidArgumentException", position
    stranger = groups(server, "HeartbeatConsumerGroup", {**named, "MemberId": "nobody"})
    assert stranger.error_type() == "LeaseLostException", stranger
    nothing = groups(server, "DescribeConsumerGroup", {"StreamName": stream, "GroupName": "other"})
    assert nothing.error_type() == "ResourceNotFoundException", nothing
    unknown = groups(server, "NoSuchOperation", named)
    assert unknown.error_type() == "UnknownOperationException", unknown
    listed = groups(server, "ListConsumerGroups", {"StreamName": stream}).json()
    assert [g["GroupName"] for g in listed["ConsumerGroups"]] == ["g"]
    assert listed["ConsumerGroups"][0]["GroupARN"].endswith(f":stream/{stream}/group/g")
    assert groups(server, "DeleteConsumerGroup", named).status == 200
    assert groups(server, "ListConsumerGroups", {"StreamName": stream}).json()["ConsumerGroups"] == []


def test_lag_is_described_and_exported_and_access_is_cedars(server, kinesis, new_stream):
    stream = new_stream(shards=1)
    named = {"StreamName": stream, "GroupName": "lagging"}
    assert groups(server, "CreateConsumerGroup", named).status == 200
    put(kinesis, stream, [f"k:{i}" for i in range(30)], by_key)

    def exported(series: str) -> str | None:
        metrics = server.admin("GET", "/metrics").body.decode()
        return next((l for l in metrics.splitlines()
                     if l.startswith(series) and f'stream="{stream}"' in l), None)
    # A group nobody reads still shows its lag: the control plane's pass publishes it.
    wait_for(lambda: exported("sluice_consumer_group_lag_records") is not None, 30,
             "the lag pass did not publish the idle group")
    assert exported("sluice_consumer_group_lag_records").endswith(" 30")
    d = groups(server, "DescribeConsumerGroup", named).json()["ConsumerGroup"]
    assert d["Shards"][0]["RecordsBehind"] == 30
    assert d["Shards"][0]["MillisBehind"] > 0
    assert float(exported("sluice_consumer_group_lag_milliseconds").split()[-1]) > 0
    # Another tenant's admin cannot touch the group (the platform forbids it).
    tenant = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("other")}).json()
    creds = (tenant["admin"]["access_key_id"], tenant["admin"]["secret_access_key"])
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT_ID}:stream/{stream}"
    denied = groups(server, "JoinConsumerGroup", {"StreamARN": arn, "GroupName": "lagging"}, credentials=creds)
    assert denied.error_type() == "AccessDeniedException", denied
    assert "kinesis:JoinConsumerGroup" in denied.json()["message"]


def test_workers_ride_out_server_crashes_without_losing_a_record(binary):
    """SIGKILL the server three times while a worker reads and a writer writes: every
    acknowledged record is read (a crash may deliver some again), each key's records
    come first-seen in order, and the group's checkpoints never move backwards."""
    from harness import SluiceServer, free_port

    port = free_port()
    srv = SluiceServer(binary, name="groups-crash")
    srv.command = lambda: [str(binary), "serve", "--data-dir", str(srv.data_dir),
                           "--listen", f"127.0.0.1:{port}"]
    try:
        srv.start()
        client = srv.client()
        stream = "crashing"
        client.create_stream(StreamName=stream, ShardCount=2)
        client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
        acked: list[str] = []
        with Worker(binary, srv, stream, "survivors", "--lease-timeout-seconds", "4") as worker:
            worker.wait_joined()
            checkpoints: dict[str, int] = {}

            def note_checkpoints() -> None:
                d = groups(srv, "DescribeConsumerGroup", {"StreamName": stream, "GroupName": "survivors"})
                for shard in d.json()["ConsumerGroup"]["Shards"]:
                    if "Checkpoint" in shard:
                        at = int(shard["Checkpoint"]["SequenceNumber"])
                        assert at >= checkpoints.get(shard["ShardId"], 0), "a checkpoint moved backwards"
                        checkpoints[shard["ShardId"]] = at

            n = 0
            for crash in range(3):
                client = srv.client()
                for _ in range(5):
                    batch = [f"k{i % 6}:{i}" for i in range(n, n + 40)]
                    put(client, stream, batch, by_key)
                    acked += batch
                    n += 40
                    time.sleep(0.1)
                note_checkpoints()
                srv.kill()
                time.sleep(0.5)
                srv.start()
                note_checkpoints()
            client = srv.client()
            tail = [f"k{i % 6}:{i}" for i in range(n, n + 40)]
            put(client, stream, tail, by_key)
            acked += tail
            wait_for(lambda: set(acked) <= set(worker.texts()), 90,
                     lambda: f"read {len(set(acked) & set(worker.texts()))} of {len(acked)}; "
                             f"{''.join(worker.stderr)[-2000:]}")
            note_checkpoints()
            assert worker.process.poll() is None, "the worker outlived the crashes"
            assert worker.stop() == 0, "".join(worker.stderr)
        texts = worker.texts()
        for key in {by_key(t) for t in acked}:
            firsts: list[int] = []
            for t in texts:
                if by_key(t) == key and int(t.split(":")[1]) not in firsts:
                    firsts.append(int(t.split(":")[1]))
            assert firsts == sorted(firsts), f"{key} first seen out of order"
    finally:
        srv.close()


def test_a_new_group_starts_at_latest_or_at_a_timestamp(binary, server, kinesis, new_stream):
    stream = new_stream(shards=2)
    put(kinesis, stream, [f"k{i}:{i}" for i in range(5)], by_key)
    time.sleep(1.1)
    middle = time.time()
    time.sleep(0.1)
    put(kinesis, stream, [f"k{i}:{i}" for i in range(5, 10)], by_key)
    # LATEST is where the shards stood when the group was made: only what comes after.
    with Worker(binary, server, stream, "from-latest", "--from", "latest") as latest:
        latest.wait_joined()
        put(kinesis, stream, [f"k{i}:{i}" for i in range(10, 13)], by_key)
        wait_for(lambda: len(latest.texts()) >= 3, 30, "LATEST read nothing")
        time.sleep(0.5)
        assert latest.stop() == 0
    assert sorted(latest.texts()) == sorted(f"k{i}:{i}" for i in range(10, 13))
    with Worker(binary, server, stream, "from-time", "--from", "at-timestamp",
                "--timestamp", f"{middle:.3f}") as timed:
        wait_for(lambda: len(timed.texts()) >= 8, 30, lambda: f"read {timed.texts()}")
        time.sleep(0.5)
        assert timed.stop() == 0
    assert sorted(timed.texts()) == sorted(f"k{i}:{i}" for i in range(5, 13))
