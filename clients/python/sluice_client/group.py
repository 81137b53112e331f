"""A member of a server-side consumer group, as an iterator of records."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError

from . import kpl
from .client import Sluice, SluiceError


@dataclass(frozen=True)
class Record:
    shard_id: str
    sequence_number: str
    #: its place inside a KPL aggregate; None for an ordinary record
    sub_sequence_number: int | None
    partition_key: str
    #: epoch seconds
    approximate_arrival: float
    data: bytes


class _Lease:
    def __init__(self, counter: int, start: dict):
        self.counter, self.start = counter, start
        self.iterator: str | None = None
        self.delivered: str | None = None
        self.release_requested = False


class ConsumerGroup:
    """``for record in ConsumerGroup(sluice, "orders", "billing"):`` reads the stream as
    a member of the group ``billing`` (made on first use, from ``create_from``). A batch
    is checkpointed when the loop asks for the record after its last; ``close()`` (or
    leaving a ``with`` block) leaves the group so its shards move at once. Delivery is
    at least once."""

    def __init__(self, sluice: Sluice, stream: str, group: str, create_from: str | None = "TRIM_HORIZON",
                 timestamp: float | None = None, lease_timeout_seconds: int | None = None,
                 member_name: str = "member", records_per_call: int = 10000, idle_wait: float = 0.25):
        self.sluice, self.stream, self.group = sluice, stream, group
        self.member_name, self.records_per_call, self.idle_wait = member_name, records_per_call, idle_wait
        self.leases: dict[str, _Lease] = {}
        self.heartbeat_every = 3.0
        self.next_heartbeat = 0.0
        self._cursor: str | None = None
        if create_from is not None:
            position = {"Type": create_from}
            if timestamp is not None:
                position["Timestamp"] = timestamp
            payload = {"StreamName": stream, "GroupName": group, "StartingPosition": position}
            if lease_timeout_seconds is not None:
                payload["LeaseTimeoutSeconds"] = lease_timeout_seconds
            try:
                sluice.groups("CreateConsumerGroup", payload)
            except SluiceError as e:
                if e.kind != "ResourceInUseException":
                    raise
        self._join()

    def _named(self, **extra) -> dict:
        return {"StreamName": self.stream, "GroupName": self.group, **extra}

    def _join(self) -> None:
        answer = self.sluice.groups("JoinConsumerGroup", self._named(MemberName=self.member_name))
        self.member_id = answer["MemberId"]
        self.leases = {}
        self._apply(answer)

    def _apply(self, answer: dict) -> None:
        leases = {}
        for lease in answer.get("Leases", []):
            held = self.leases.get(lease["ShardId"])
            if held is None or held.counter != lease["LeaseCounter"]:
                held = _Lease(lease["LeaseCounter"], lease["StartingPosition"])
            held.release_requested = lease.get("ReleaseRequested", False)
            leases[lease["ShardId"]] = held
        self.leases = leases
        self.heartbeat_every = answer.get("HeartbeatIntervalMillis", 3000) / 1000
        self.next_heartbeat = time.monotonic() + self.heartbeat_every

    def _heartbeat(self) -> None:
        try:
            self._apply(self.sluice.groups("HeartbeatConsumerGroup", self._named(MemberId=self.member_id)))
        except SluiceError as e:
            if e.kind != "LeaseLostException":
                raise
            self._join()

    def _checkpoint(self, shard_id: str, **fields) -> None:
        for attempt in range(120):
            try:
                self._apply(self.sluice.groups("CheckpointConsumerGroup", self._named(
                    MemberId=self.member_id, ShardId=shard_id, **fields)))
                return
            except SluiceError as e:
                if e.kind == "LeaseLostException":
                    self.leases.pop(shard_id, None)
                    return
                if not e.retryable or attempt == 119:
                    raise
                time.sleep(0.5)

    def _release_requested(self) -> None:
        for shard_id, lease in list(self.leases.items()):
            if lease.release_requested:
                self.leases.pop(shard_id, None)
                self._checkpoint(shard_id, LeaseCounter=lease.counter, Release=True)

    def _iterator(self, shard_id: str, lease: _Lease) -> str:
        kw = {"StreamName": self.stream, "ShardId": shard_id}
        if lease.delivered is not None:
            kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=lease.delivered)
        else:
            kw["ShardIteratorType"] = lease.start["Type"]
            if "SequenceNumber" in lease.start:
                kw["StartingSequenceNumber"] = lease.start["SequenceNumber"]
            if "Timestamp" in lease.start:
                kw["Timestamp"] = lease.start["Timestamp"]
        return self.sluice.kinesis.get_shard_iterator(**kw)["ShardIterator"]

    def _read(self, shard_id: str):
        """A batch (shard id, counter, records, reached the end) or None."""
        lease = self.leases.get(shard_id)
        if lease is None:
            return None
        try:
            if lease.iterator is None:
                lease.iterator = self._iterator(shard_id, lease)
            answer = self.sluice.kinesis.get_records(ShardIterator=lease.iterator, Limit=self.records_per_call)
        except ClientError as e:
            code = e.response["Error"]["Code"]
            if code == "ExpiredIteratorException":
                lease.iterator = None
                return None
            if code in ("ProvisionedThroughputExceededException", "LimitExceededException",
                        "InternalFailure", "ServiceUnavailable"):
                return None
            raise
        except (BotoConnectionError, HTTPClientError):
            # The server is away; the next round tries again.
            return None
        skip = None
        if lease.delivered is None and lease.start.get("Type") == "AT_SEQUENCE_NUMBER":
            skip = (lease.start["SequenceNumber"], lease.start.get("SubSequenceNumber"))
        records = []
        for r in answer["Records"]:
            seq = r["SequenceNumber"]
            arrival = r["ApproximateArrivalTimestamp"].timestamp()
            through = skip[1] if skip and skip[0] == seq else None
            users = kpl.deaggregate(r["Data"])
            if users is None:
                if through is None:
                    records.append(Record(shard_id, seq, None, r["PartitionKey"], arrival, r["Data"]))
            else:
                for i, user in enumerate(users):
                    if through is None or i > through:
                        records.append(Record(shard_id, seq, i, user.partition_key, arrival, user.data))
            lease.delivered = seq
        lease.iterator = answer.get("NextShardIterator")
        end = lease.iterator is None
        if not records and not end:
            return None
        return shard_id, lease.counter, records, end

    def next_batch(self):
        """The next (shard id, lease counter, records, reached the shard's end) of one of
        this member's shards; waits, heartbeating, until there is one."""
        while True:
            try:
                if time.monotonic() >= self.next_heartbeat:
                    self._heartbeat()
                self._release_requested()
            except SluiceError as e:
                if not e.retryable:
                    raise
                # The server is away: try again soon (a lapsed lease means a rejoin).
                self.next_heartbeat = time.monotonic() + 0.5
                time.sleep(0.5)
                continue
            shards = sorted(self.leases)
            start = next((i for i, s in enumerate(shards) if self._cursor is not None and s > self._cursor), 0)
            for i in range(len(shards)):
                shard_id = shards[(start + i) % len(shards)]
                self._cursor = shard_id
                batch = self._read(shard_id)
                if batch is not None:
                    return batch
            time.sleep(max(0.0, min(self.idle_wait, self.next_heartbeat - time.monotonic())))

    def commit(self, batch) -> None:
        """Checkpoints a batch from ``next_batch`` (its shard's end when it reached it)."""
        shard_id, counter, records, end = batch
        if end:
            self._checkpoint(shard_id, LeaseCounter=counter, ShardEnd=True)
        elif records:
            self._checkpoint(shard_id, LeaseCounter=counter, SequenceNumber=records[-1].sequence_number)

    def checkpoint(self, record: Record) -> None:
        """Every record of ``record``'s shard up to it (inside an aggregate too) is done."""
        lease = self.leases.get(record.shard_id)
        if lease is None:
            return
        fields = {"LeaseCounter": lease.counter, "SequenceNumber": record.sequence_number}
        if record.sub_sequence_number is not None:
            fields["SubSequenceNumber"] = record.sub_sequence_number
        self._checkpoint(record.shard_id, **fields)

    def __iter__(self):
        while True:
            batch = self.next_batch()
            yield from batch[2]
            self.commit(batch)

    def close(self) -> None:
        """Leaves the group: its shards go to the other members at once."""
        try:
            self.sluice.groups("LeaveConsumerGroup", self._named(MemberId=self.member_id))
        except SluiceError as e:
            if e.kind != "LeaseLostException":
                raise

    def __enter__(self) -> "ConsumerGroup":
        return self

    def __exit__(self, *_) -> None:
        self.close()
