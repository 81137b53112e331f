"""Durability: SIGKILL while writers are busy, restart on the same data dir (and database),
and every acknowledged record must read back exactly once, with its data, in order."""

from __future__ import annotations

import collections
import os
import random
import threading
import time

import botocore.exceptions
from conftest import create_stream
from harness import error_code, read_shard, unique_name

THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException"}


class Endpoint:
    """The writers' view of the server: its clients change whenever it is restarted."""

    def __init__(self, server):
        self.server = server
        self.generation = 0
        self.lock = threading.Lock()

    def bump(self) -> None:
        with self.lock:
            self.generation += 1

    def client_for(self, cache: dict):
        with self.lock:
            gen = self.generation
            endpoint = self.server.endpoint
        if cache.get("gen") != gen or cache.get("endpoint") != endpoint:
            cache["client"] = self.server.client(read_timeout=15, endpoint=endpoint)
            cache["gen"], cache["endpoint"] = gen, endpoint
        return cache["client"]


class Writer(threading.Thread):
    """Puts unique payloads until stopped.

    acked: (shard, seq, data) in the order the server acknowledged them
    uncertain: payloads whose call failed without an answer (may or may not be stored)
    rejected: payloads the server answered with a per-record or whole-call throttle (must not be stored)
    """

    def __init__(self, wid: int, endpoint: Endpoint, stream: str, stop: threading.Event):
        super().__init__(name=f"writer-{wid}", daemon=True)
        self.wid = wid
        self.endpoint = endpoint
        self.stream = stream
        self.stop_event = stop
        self.acked: list[tuple[str, str, bytes]] = []
        self.uncertain: set[bytes] = set()
        self.rejected: set[bytes] = set()
        self.failures: collections.Counter = collections.Counter()
        self.fatal: BaseException | None = None
        self.rng = random.Random(wid * 7919 + os.getpid())
        self.counter = 0

    def payload(self) -> bytes:
        self.counter += 1
        pad = self.rng.randbytes(self.rng.randint(0, 300))
        return f"w{self.wid}:{self.counter}:".encode() + pad

    def run(self) -> None:
        cache: dict = {}
        try:
            while not self.stop_event.is_set():
                client = self.endpoint.client_for(cache)
                if self.rng.random() < 0.3:
                    self.put_one(client)
                else:
                    self.put_batch(client)
                time.sleep(0.002)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.fatal = e

    def put_one(self, client) -> None:
        data = self.payload()
        try:
            r = client.put_record(StreamName=self.stream, Data=data, PartitionKey=f"pk-{self.rng.randint(0, 999)}")
        except botocore.exceptions.ClientError as e:
            self.on_client_error(e, [data])
            return
        except Exception as e:  # noqa: BLE001 - connection errors while the server is down
            self.on_transport_error(e, [data])
            return
        self.acked.append((r["ShardId"], r["SequenceNumber"], data))

    def put_batch(self, client) -> None:
        datas = [self.payload() for _ in range(self.rng.randint(1, 25))]
        records = [{"Data": d, "PartitionKey": f"pk-{self.rng.randint(0, 999)}"} for d in datas]
        try:
            r = client.put_records(StreamName=self.stream, Records=records)
        except botocore.exceptions.ClientError as e:
            self.on_client_error(e, datas)
            return
        except Exception as e:  # noqa: BLE001
            self.on_transport_error(e, datas)
            return
        assert len(r["Records"]) == len(datas)
        failed = 0
        for d, res in zip(datas, r["Records"]):
            if res.get("ErrorCode"):
                failed += 1
                self.failures[res["ErrorCode"]] += 1
                if res["ErrorCode"] in THROTTLED:
                    self.rejected.add(d)
                else:  # InternalFailure: AWS does not say whether it was stored
                    self.uncertain.add(d)
            else:
                self.acked.append((res["ShardId"], res["SequenceNumber"], d))
        assert r.get("FailedRecordCount", 0) == failed

    def on_client_error(self, e, datas) -> None:
        code = error_code(e)
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        self.failures[code] += 1
        if code in THROTTLED:
            self.rejected.update(datas)
        elif status >= 500:
            self.uncertain.update(datas)
        else:
            raise AssertionError(f"unexpected client error {code} ({status}): {e}")
        time.sleep(0.02)

    def on_transport_error(self, e, datas) -> None:
        self.failures[type(e).__name__] += 1
        self.uncertain.update(datas)
        time.sleep(0.05)


def verify(client, stream: str, shards: list[str], writers: list[Writer]) -> dict:
    stored: dict[str, list[dict]] = {sid: read_shard(client, stream, sid, limit=10000) for sid in shards}
    seen = collections.Counter()
    by_seq: dict[tuple[str, str], bytes] = {}
    for sid, recs in stored.items():
        seqs = [int(r["SequenceNumber"]) for r in recs]
        assert all(a < b for a, b in zip(seqs, seqs[1:])), f"{sid}: sequence numbers out of order after restarts"
        for r in recs:
            seen[r["Data"]] += 1
            by_seq[(sid, r["SequenceNumber"])] = r["Data"]
    dupes = [d[:20] for d, n in seen.items() if n > 1]
    assert not dupes, f"{len(dupes)} payloads stored more than once, e.g. {dupes[:3]}"

    acked_data: set[bytes] = set()
    lost = []
    for w in writers:
        last: dict[str, int] = {}
        for sid, seq, data in w.acked:
            acked_data.add(data)
            if by_seq.get((sid, seq)) != data:
                lost.append((sid, seq, data[:20], by_seq.get((sid, seq), b"<missing>")[:20]))
            s = int(seq)
            assert s > last.get(sid, -1), f"writer {w.wid}: {sid} acknowledged {seq} after {last.get(sid)}"
            last[sid] = s
    assert not lost, f"{len(lost)} acknowledged records lost or changed, e.g. {lost[:3]}"

    uncertain = set().union(*(w.uncertain for w in writers))
    rejected = set().union(*(w.rejected for w in writers))
    phantoms = [d[:20] for d in seen if d not in acked_data and d not in uncertain]
    assert not phantoms, f"{len(phantoms)} stored payloads were never sent or were refused, e.g. {phantoms[:3]}"
    resurrected = [d[:20] for d in rejected if d in seen]
    assert not resurrected, f"{len(resurrected)} throttled records were stored anyway"
    return {"acked": len(acked_data), "uncertain": len(uncertain), "uncertain_stored": len(uncertain & set(seen)),
            "rejected": len(rejected), "stored": sum(seen.values())}


def run_writers(srv, stream, n=2):
    endpoint = Endpoint(srv)
    stop = threading.Event()
    writers = [Writer(i, endpoint, stream, stop) for i in range(n)]
    for w in writers:
        w.start()
    return endpoint, stop, writers


def stop_writers(stop, writers):
    stop.set()
    for w in writers:
        w.join(timeout=60)
        assert not w.is_alive(), f"{w.name} did not stop"
        if w.fatal is not None:
            raise w.fatal


def test_sigkill_restart_loses_no_acknowledged_record(make_server):
    srv = make_server()
    client = srv.client()
    stream = create_stream(client, name=unique_name("crash"), shards=4)
    shards = [s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"]]
    endpoint, stop, writers = run_writers(srv, stream)
    rng = random.Random()
    acked_before_kill = []
    deadline = time.monotonic() + 60
    try:
        for _ in range(4):
            time.sleep(rng.uniform(1.0, 3.0))
            acked_before_kill.append(sum(len(w.acked) for w in writers))
            srv.kill()
            time.sleep(rng.uniform(0, 0.3))
            srv.start()
            endpoint.bump()
            assert time.monotonic() < deadline, "restarts take too long"
        time.sleep(1.5)
    finally:
        stop_writers(stop, writers)
    total_acked = sum(len(w.acked) for w in writers)
    assert total_acked >= 100, f"only {total_acked} records acknowledged: the test proves little"
    assert acked_before_kill[-1] < total_acked, "no write succeeded after the last restart"
    stats = verify(srv.client(), stream, shards, writers)
    # and once more after a graceful restart
    assert srv.stop() == 0
    srv.start()
    stats2 = verify(srv.client(), stream, shards, writers)
    assert stats2["stored"] == stats["stored"]
    print("crash test:", stats, "failures:", sum((w.failures for w in writers), collections.Counter()))


def test_sigterm_during_writes_is_graceful(make_server):
    srv = make_server()
    client = srv.client()
    stream = create_stream(client, name=unique_name("term"), shards=2)
    shards = [s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"]]
    endpoint, stop, writers = run_writers(srv, stream)
    try:
        time.sleep(2.0)
        rc = srv.stop(timeout=30)
        assert rc == 0, f"sluice exited with {rc} on SIGTERM\n{srv.diagnostics()}"
        time.sleep(0.3)
        srv.start()
        endpoint.bump()
        time.sleep(1.0)
    finally:
        stop_writers(stop, writers)
    verify(srv.client(), stream, shards, writers)


def test_restart_keeps_streams_tags_and_settings(make_server):
    srv = make_server()
    k = srv.client()
    a = create_stream(k, name=unique_name("keep-a"), shards=3)
    b = create_stream(k, name=unique_name("keep-b"), shards=1)
    k.add_tags_to_stream(StreamName=a, Tags={"team": "data"})
    k.increase_stream_retention_period(StreamName=a, RetentionPeriodHours=48)
    gone = create_stream(k, name=unique_name("gone"))
    k.delete_stream(StreamName=gone)
    k.get_waiter("stream_not_exists").wait(StreamName=gone, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    put = k.put_records(StreamName=b, Records=[{"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(50)])
    last_seq = put["Records"][-1]["SequenceNumber"]
    srv.kill()
    srv.start()
    k = srv.client()
    names = k.list_streams()["StreamNames"]
    assert a in names and b in names and gone not in names
    sa = k.describe_stream_summary(StreamName=a)["StreamDescriptionSummary"]
    assert sa["OpenShardCount"] == 3 and sa["RetentionPeriodHours"] == 48
    assert k.list_tags_for_stream(StreamName=a)["Tags"] == [{"Key": "team", "Value": "data"}]
    recs = read_shard(k, b, "shardId-000000000000")
    assert [r["Data"] for r in recs] == [f"r{i}".encode() for i in range(50)]
    # numbering continues past what was there before the crash
    nxt = k.put_record(StreamName=b, Data=b"after", PartitionKey="k")["SequenceNumber"]
    assert int(nxt) > int(last_seq)
    # an iterator issued before a restart is still valid (iterators are self-contained)
    it = k.get_shard_iterator(StreamName=b, ShardId="shardId-000000000000",
                              ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=last_seq)
    it = it["ShardIterator"]
    assert srv.stop() == 0
    srv.start()
    k = srv.client()
    assert [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]] == [b"after"]
