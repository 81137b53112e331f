"""Per-shard write limits in figures: paced writers at twice a shard's record rate see
about half their records refused and the accepted rate within 10% of the limit, a
neighbour shard's writer is unaffected, and the limit holds for the sum of two
`sluice serve` processes sharing one Postgres catalog."""

from __future__ import annotations

import os
import secrets
import threading
import time

import pytest

from conftest import PG_ENV
from harness import PostgresDatabase, SluiceServer, unique_name
from test_throughput import _shard_of

RATE = 200  # records per second per shard: small, so that the tests are quick
TICK = 0.1  # seconds between a writer's PutRecords calls
WARMUP = 1.5  # seconds of writing before counting: a full bucket's burst is spent by then
MEASURED = 5.0  # seconds counted


class PacedWriter(threading.Thread):
    """Sends `per_second` records a second to one partition key, as a PutRecords of
    `per_second * TICK` records every TICK on a fixed schedule from `start`, and counts
    what was sent and refused in the measured seconds."""

    def __init__(self, client, stream: str, key: str, per_second: int, start: float):
        super().__init__(daemon=True)
        self.client, self.stream, self.key = client, stream, key
        self.per_batch = round(per_second * TICK)
        self.start_at = start
        self.sent = self.refused = 0
        self.error: BaseException | None = None
        self.errors_seen: set[str] = set()
        self.last_sent_at = 0.0

    def run(self) -> None:
        try:
            batch = [{"Data": b"r", "PartitionKey": self.key}] * self.per_batch
            ticks = round((WARMUP + MEASURED) / TICK)
            counted_from = round(WARMUP / TICK)
            for k in range(ticks):
                delay = self.start_at + k * TICK - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                out = self.client.put_records(StreamName=self.stream, Records=batch)
                if k >= counted_from:
                    self.last_sent_at = time.monotonic()
                    self.sent += len(batch)
                    self.refused += out["FailedRecordCount"]
                    self.errors_seen |= {r["ErrorCode"] for r in out["Records"] if "ErrorCode" in r}
        except BaseException as e:  # reported by the test
            self.error = e

    def accepted(self) -> int:
        return self.sent - self.refused


def run_writers(writers: list[PacedWriter]) -> float:
    """Runs the writers to the end; returns the measured span in seconds (MEASURED when
    they kept to their schedule)."""
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=WARMUP + MEASURED + 60)
        assert not w.is_alive(), "a writer hung"
        if w.error is not None:
            raise w.error
    start = writers[0].start_at + WARMUP
    # A writer that fell behind its schedule sent over a longer span: rate by that.
    return max(MEASURED, max(w.last_sent_at for w in writers) + TICK - start)


def keys_by_shard(client, stream: str) -> list[str]:
    shards = client.list_shards(StreamName=stream)["Shards"]
    return [next(f"k{i}" for i in range(10_000) if _shard_of(shards, f"k{i}") == s["ShardId"])
            for s in shards]


def assert_limited(accepted: int, sent: int, span: float) -> None:
    rate = accepted / span
    print(f"accepted {accepted} of {sent} in {span:.2f}s: {rate:.1f}/s against a limit of {RATE}/s")
    assert 0.9 * RATE <= rate <= 1.1 * RATE, f"accepted {accepted} in {span:.2f}s: {rate:.1f}/s"
    # Twice the rate offered, so about half refused.
    assert 0.4 <= (sent - accepted) / sent <= 0.6, f"{sent - accepted} of {sent} refused"


def test_a_writer_at_twice_the_limit_gets_the_limit_and_its_neighbour_all(make_server):
    srv = make_server("--shard-write-records-per-second", str(RATE))
    client = srv.client()
    stream = unique_name("rates")
    client.create_stream(StreamName=stream, ShardCount=2)
    hot_key, cool_key = keys_by_shard(client, stream)
    start = time.monotonic() + 0.2
    hot = PacedWriter(srv.client(), stream, hot_key, 2 * RATE, start)
    cool = PacedWriter(srv.client(), stream, cool_key, RATE // 2, start)
    span = run_writers([hot, cool])
    assert_limited(hot.accepted(), hot.sent, span)
    assert hot.errors_seen == {"ProvisionedThroughputExceededException"}, hot.errors_seen
    # The neighbour shard's writer, at half its limit, lost nothing.
    assert (cool.sent, cool.refused) == (round(MEASURED / TICK) * cool.per_batch, 0)
    if srv.backend == "postgres":
        # Shared budgets (the default on Postgres) cost a catalog statement per slice, not
        # per record: at most 17 per shard, budget (records, bytes) and second.
        metrics = srv.admin("GET", "/metrics").body.decode()
        leases = next(int(float(line.split()[-1])) for line in metrics.splitlines()
                      if line.startswith("sluice_shared_budget_leases_total"))
        seconds = WARMUP + MEASURED + 2
        records = (hot.per_batch + cool.per_batch) * round((WARMUP + MEASURED) / TICK)
        print(f"{leases} leases for {records} records")
        assert 0 < leases <= 17 * 2 * 2 * seconds, leases


def test_two_processes_sharing_a_postgres_catalog_hold_one_shards_limit(binary):
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} not set: two processes share a catalog only on Postgres")
    db = PostgresDatabase(url)
    # One root key for both, so that each can open the access keys the other made.
    env = {"SLUICE_ROOT_KEY": secrets.token_hex(32)}
    servers = [SluiceServer(binary, backend="postgres", database_url=db.url, name=f"sluice-shared-{i}",
                            extra_args=["--shard-write-records-per-second", str(RATE)], extra_env=env)
               for i in range(2)]
    try:
        for srv in servers:
            srv.start()
        credentials = servers[0].credentials()
        clients = [srv.client(credentials=credentials) for srv in servers]
        stream = unique_name("shared")
        clients[0].create_stream(StreamName=stream, ShardCount=2)
        hot_key, cool_key = keys_by_shard(clients[0], stream)
        # The second process learns of the stream from the catalog.
        clients[1].describe_stream_summary(StreamName=stream)
        start = time.monotonic() + 0.2
        # Each process is offered the whole rate for one shard: twice the limit in all.
        hot = [PacedWriter(srv.client(credentials=credentials), stream, hot_key, RATE, start)
               for srv in servers]
        cool = PacedWriter(servers[1].client(credentials=credentials), stream, cool_key, RATE // 2, start)
        span = run_writers([*hot, cool])
        accepted = sum(w.accepted() for w in hot)
        sent = sum(w.sent for w in hot)
        assert_limited(accepted, sent, span)
        # Both processes got records in: the budget is shared, not taken by one.
        assert all(w.accepted() > 0.2 * RATE * MEASURED for w in hot), [w.accepted() for w in hot]
        assert (cool.sent, cool.refused) == (round(MEASURED / TICK) * cool.per_batch, 0)
    finally:
        for srv in servers:
            srv.close()
        db.close()
