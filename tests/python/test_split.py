"""The split deployment: `sluice migrate`, one `sluice control-plane` and several
`sluice data-plane` processes sharing a Postgres catalog and an S3-compatible bucket
(moto_server, a real HTTP server). Runs only when SLUICE_TEST_POSTGRES_URL is set.

Failover: writers spread across three data planes, one is killed with SIGKILL mid-load;
the others keep accepting writes, no acknowledged record is lost, and the server stores
none twice (a payload appears twice only when the client retried a request that failed
without an answer, and then at two different sequence numbers).
"""

from __future__ import annotations

import collections
import random
import threading
import time

import botocore.exceptions
import pytest
from conftest import create_stream
from harness import error_code, expect_error, read_shard, unique_name


def test_round_trip_through_the_split_deployment(make_split, moto):
    dep = make_split(data_planes=2)
    a, b = dep.data
    ka, kb = a.client(), b.client()
    # Streams are made through a data plane (the endpoint clients are given).
    stream = create_stream(ka, name=unique_name("split"), shards=2)
    assert kb.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["OpenShardCount"] == 2
    sent = [f"record-{i}".encode() for i in range(20)]
    acked = {}
    for i, data in enumerate(sent):
        client = ka if i % 2 else kb
        r = client.put_record(StreamName=stream, Data=data, PartitionKey=f"pk-{i}")
        acked[data] = (r["ShardId"], r["SequenceNumber"])
    r = ka.put_records(StreamName=stream, Records=[{"Data": b"batch-%d" % i, "PartitionKey": str(i)}
                                                  for i in range(10)])
    assert r["FailedRecordCount"] == 0
    for i, rec in enumerate(r["Records"]):
        acked[b"batch-%d" % i] = (rec["ShardId"], rec["SequenceNumber"])
    # The records' bytes are objects in the bucket.
    assert moto.keys(), "no object was written to the bucket"
    # An iterator from one data plane reads on the other: they share the catalog's secret.
    shards = [s["ShardId"] for s in ka.list_shards(StreamName=stream)["Shards"]]
    got = {}
    for sid in shards:
        it = ka.get_shard_iterator(StreamName=stream, ShardId=sid,
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kb.get_records(ShardIterator=it, Limit=1000)["Records"]
        for rec in records:
            got[rec["Data"]] = (sid, rec["SequenceNumber"])
        assert records == read_shard(ka, stream, sid), "the two data planes read differently"
    assert got == acked

    # The control plane serves the admin API and refuses the data API; a data plane the
    # reverse.
    with expect_error("UnknownOperationException"):
        dep.control.client().list_streams()
    tenants = dep.control.admin("GET", "/admin/v1/tenants")
    assert tenants.status == 200, tenants.body
    assert a.admin("GET", "/admin/v1/tenants").status == 400
    assert dep.control.admin("GET", "/metrics").status == 200
    assert a.admin("GET", "/metrics").status == 200
    # Migrating again is a no-op.
    again = dep.migrate()
    assert again.returncode == 0, again.stderr

    # A chunk whose object is gone is an error, never data.
    s3 = moto.s3()
    for key in moto.keys():
        s3.delete_object(Bucket=moto.bucket, Key=key)
    it = kb.get_shard_iterator(StreamName=stream, ShardId=shards[0],
                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    with expect_error("InternalFailure", status=500):
        kb.get_records(ShardIterator=it)


class Writer(threading.Thread):
    """Puts unique payloads, starting on its own data plane and moving to the next live
    one when a call fails without an answer; the payloads of such a call are retried.

    acked: (shard, seq, data) from successful responses only
    retried: payloads whose call failed without an answer (may be stored once more)
    """

    def __init__(self, wid: int, planes: list, stream: str, stop: threading.Event):
        super().__init__(name=f"split-writer-{wid}", daemon=True)
        self.wid = wid
        self.planes = planes
        self.home = wid % len(planes)
        self.current = self.home
        self.stream = stream
        self.stop_event = stop
        self.clients: dict[int, object] = {}
        self.acked: list[tuple[str, str, bytes]] = []
        self.acked_by_plane: collections.Counter = collections.Counter()
        self.retried: set[bytes] = set()
        self.failures: collections.Counter = collections.Counter()
        self.fatal: BaseException | None = None
        self.rng = random.Random(wid)
        self.counter = 0
        self.pending: list[bytes] = []

    def client(self):
        if self.current not in self.clients:
            self.clients[self.current] = self.planes[self.current].client(read_timeout=15)
        return self.clients[self.current]

    def payload(self) -> bytes:
        self.counter += 1
        return f"w{self.wid}:{self.counter}:".encode() + self.rng.randbytes(self.rng.randint(0, 200))

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                # Retry what failed first, then new payloads.
                datas = self.pending or [self.payload() for _ in range(self.rng.randint(1, 20))]
                self.pending = []
                if len(datas) == 1 and self.rng.random() < 0.5:
                    self.put_one(datas[0])
                else:
                    self.put_batch(datas)
                time.sleep(0.002)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.fatal = e

    def put_one(self, data: bytes) -> None:
        try:
            r = self.client().put_record(StreamName=self.stream, Data=data,
                                         PartitionKey=f"pk-{self.rng.randint(0, 999)}")
        except Exception as e:  # noqa: BLE001
            self.on_error(e, [data])
            return
        self.acked.append((r["ShardId"], r["SequenceNumber"], data))
        self.acked_by_plane[self.current] += 1

    def put_batch(self, datas: list[bytes]) -> None:
        records = [{"Data": d, "PartitionKey": f"pk-{self.rng.randint(0, 999)}"} for d in datas]
        try:
            r = self.client().put_records(StreamName=self.stream, Records=records)
        except Exception as e:  # noqa: BLE001
            self.on_error(e, datas)
            return
        for d, res in zip(datas, r["Records"]):
            if res.get("ErrorCode"):
                self.failures[res["ErrorCode"]] += 1
                self.retried.add(d)
                self.pending.append(d)
            else:
                self.acked.append((res["ShardId"], res["SequenceNumber"], d))
                self.acked_by_plane[self.current] += 1

    def on_error(self, e: Exception, datas: list[bytes]) -> None:
        if isinstance(e, botocore.exceptions.ClientError):
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status < 500:
                raise AssertionError(f"unexpected client error {error_code(e)} ({status}): {e}")
            self.failures[error_code(e)] += 1
        else:
            self.failures[type(e).__name__] += 1
        # No answer: the records may or may not be stored. Retry them elsewhere.
        self.retried.update(datas)
        self.pending = list(datas)
        alive = [i for i, p in enumerate(self.planes) if p.running()]
        if self.current not in alive or isinstance(e, botocore.exceptions.EndpointConnectionError):
            others = [i for i in alive if i != self.current] or alive
            self.current = others[self.wid % len(others)]
        time.sleep(0.05)


def test_failover_sigkill_one_data_plane_mid_load(make_split):
    dep = make_split(data_planes=3)
    planes = dep.data
    stream = create_stream(planes[0].client(), name=unique_name("failover"), shards=4)
    shards = [s["ShardId"] for s in planes[0].client().list_shards(StreamName=stream)["Shards"]]
    stop = threading.Event()
    writers = [Writer(i, planes, stream, stop) for i in range(6)]
    for w in writers:
        w.start()
    victim = 1
    try:
        time.sleep(3.0)
        acked_at_kill = sum(len(w.acked) for w in writers)
        on_victim = sum(w.acked_by_plane[victim] for w in writers)
        assert on_victim > 0, "no writer reached the data plane about to be killed"
        planes[victim].kill()
        time.sleep(4.0)
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=60)
            assert not w.is_alive(), f"{w.name} did not stop"
    for w in writers:
        if w.fatal is not None:
            raise w.fatal
    total = sum(len(w.acked) for w in writers)
    assert total >= 200, f"only {total} records acknowledged: the test proves little"
    assert total > acked_at_kill + 50, "writes were not accepted after the kill"
    # The writers that lived on the killed plane moved and were acknowledged elsewhere.
    moved = [w for w in writers if w.home == victim]
    assert all(w.current != victim for w in moved)
    assert sum(w.acked_by_plane[i] for w in moved for i in (0, 2)) > 0

    acked: dict[bytes, tuple[str, str]] = {}
    for w in writers:
        for sid, seq, data in w.acked:
            assert data not in acked, f"a payload was acknowledged twice: {data[:20]!r}"
            acked[data] = (sid, seq)
    retried = set().union(*(w.retried for w in writers))
    reads = []
    for plane in (planes[0], planes[2]):
        client = plane.client()
        stored = {sid: read_shard(client, stream, sid, limit=10000) for sid in shards}
        reads.append({sid: [(r["SequenceNumber"], r["Data"]) for r in recs] for sid, recs in stored.items()})
    assert reads[0] == reads[1], "the surviving data planes read different records"
    at: dict[tuple[str, str], bytes] = {}
    seen: collections.Counter = collections.Counter()
    for sid, recs in reads[0].items():
        seqs = [int(seq) for seq, _ in recs]
        assert all(x < y for x, y in zip(seqs, seqs[1:])), f"{sid}: sequence numbers not increasing"
        for seq, data in recs:
            assert (sid, seq) not in at
            at[(sid, seq)] = data
            seen[data] += 1
    lost = [(d[:20], place) for d, place in acked.items() if at.get(place) != d]
    assert not lost, f"{len(lost)} acknowledged records lost or moved, e.g. {lost[:3]}"
    # The server stores a payload once; only a client retry of an unanswered call may
    # store it again (at another sequence number).
    twice = [d[:20] for d, n in seen.items() if n > 1 and d not in retried]
    assert not twice, f"{len(twice)} payloads stored twice without a retry, e.g. {twice[:3]}"
    phantoms = [d[:20] for d in seen if d not in acked and d not in retried]
    assert not phantoms, f"{len(phantoms)} stored payloads were never acknowledged or retried"
    # Writes keep being accepted by the survivors after all of this.
    for plane in (planes[0], planes[2]):
        plane.client().put_record(StreamName=stream, Data=b"after", PartitionKey="after")
    failures = sum((w.failures for w in writers), collections.Counter())
    print("failover:", {"acked": total, "at_kill": acked_at_kill, "retried": len(retried),
                        "stored": sum(seen.values())}, "failures:", dict(failures))


@pytest.mark.parametrize("missing", ["SLUICE_S3_BUCKET", "SLUICE_ROOT_KEY"])
def test_a_data_plane_refuses_to_start_without_shared_settings(make_split, binary, missing, moto):
    import os
    import subprocess

    dep = make_split(data_planes=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(dep.env())
    env["SLUICE_DATABASE_URL"] = dep.database.url
    env.pop(missing)
    r = subprocess.run([str(binary), "data-plane", "--listen", "127.0.0.1:0",
                        "--data-dir", str(dep.control.tmp_root / "dp")],
                       capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert {"SLUICE_S3_BUCKET": "--s3-bucket", "SLUICE_ROOT_KEY": "SLUICE_ROOT_KEY"}[missing] in r.stderr, r.stderr


def test_the_control_plane_bootstraps_the_admin_with_a_given_key(make_split, tmp_path):
    given = tmp_path / "credentials"
    given.write_text("[default]\naws_access_key_id = AKIAGIVENBYOPERATOR1\n"
                     "aws_secret_access_key = a-secret-the-operator-chose-0123456789\n")
    dep = make_split(data_planes=1, bootstrap_credentials=given)
    # No random key was made and written beside the control plane.
    assert not (dep.control.data_dir / "credentials").exists()
    assert dep.control.credentials()[0] == "AKIAGIVENBYOPERATOR1"
    assert dep.control.admin("GET", "/admin/v1/tenants").status == 200
    stream = create_stream(dep.data[0].client(), name=unique_name("given"))
    assert dep.data[0].client().describe_stream_summary(StreamName=stream)


def test_object_store_settings_and_secrets_can_come_from_files(make_split, moto, tmp_path):
    # As the chart mounts them: every SLUICE_S3_* value in a file named by ..._FILE
    # (the variables themselves left empty).
    files: dict[str, str] = {}
    for var, value in moto.env().items():
        if var.startswith("SLUICE_S3_") and var != "SLUICE_S3_PATH_STYLE":
            path = tmp_path / var.lower()
            path.write_text(value + "\n")
            files[var] = ""
            files[f"{var}_FILE"] = str(path)
    dep = make_split(data_planes=1, **files)
    client = dep.data[0].client()
    stream = create_stream(client, name=unique_name("files"), shards=1)
    before = len(moto.keys())
    client.put_record(StreamName=stream, Data=b"from files", PartitionKey="k")
    assert len(moto.keys()) > before, "nothing was written to the bucket named in a file"


def test_one_consumer_group_across_two_data_planes(make_split, binary):
    """A worker on each data plane: the shared catalog leases each shard to one of them,
    every record is read once, and the group's lag is the control plane's to publish."""
    from test_consumer_groups import Worker, by_key, groups, put, wait_for

    dep = make_split(data_planes=2)
    a, b = dep.data
    stream = create_stream(a.client(), name=unique_name("split-group"), shards=4)
    args = ("--lease-timeout-seconds", "3")
    with Worker(binary, a, stream, "across", "--member-name", "a", *args) as one:
        one.wait_joined()
        with Worker(binary, b, stream, "across", "--member-name", "b", *args) as two:
            two.wait_joined()

            def shared() -> bool:
                d = groups(b, "DescribeConsumerGroup", {"StreamName": stream, "GroupName": "across"}).json()
                owners = {s.get("Owner") for s in d["ConsumerGroup"]["Shards"]}
                return len(owners) == 2 and None not in owners
            wait_for(shared, 30, "the two members did not share the shards")
            records = [f"k{i % 12}:{i}" for i in range(300)]
            put(a.client(), stream, records, by_key)
            wait_for(lambda: len(one.texts()) + len(two.texts()) >= len(records), 60,
                     lambda: f"read {len(one.texts())} + {len(two.texts())} of {len(records)}")
            assert one.texts() and two.texts()
            assert not set(one.texts()) & set(two.texts())
            assert set(one.texts()) | set(two.texts()) == set(records)
            assert two.stop() == 0
        assert one.stop() == 0
