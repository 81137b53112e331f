"""A producer: PutRecords within its limits, KPL aggregation, idempotency keys, and
retries of throttled records with exponential backoff and full jitter."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass

from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from . import kpl
from .client import Sluice

RECORDS_PER_CALL_MAX = 500
BYTES_PER_CALL_MAX = 5 * 1024 * 1024
BYTES_PER_RECORD_MAX = 1024 * 1024
AGGREGATE_BYTES_MAX = 50 * 1024
_RETRYABLE = {"ProvisionedThroughputExceededException", "LimitExceededException",
              "ServiceUnavailable", "InternalFailure", "ThrottlingException"}


@dataclass(frozen=True)
class Stored:
    shard_id: str
    sequence_number: str
    #: its place in the aggregate that carried it
    sub_sequence_number: int | None = None


class Producer:
    def __init__(self, sluice: Sluice, stream: str, aggregate: bool = False, idempotency_keys: bool = True,
                 max_attempts: int = 10, base_backoff: float = 0.1, max_backoff: float = 5.0):
        self.sluice, self.stream, self.aggregate = sluice, stream, aggregate
        self.max_attempts, self.base_backoff, self.max_backoff = max_attempts, base_backoff, max_backoff
        self._key: str | None = None
        if idempotency_keys:
            sluice.kinesis.meta.events.register("before-sign.kinesis.PutRecords", self._add_key)

    def _add_key(self, request, **_) -> None:
        if self._key is not None:
            request.headers["X-Sluice-Idempotency-Key"] = self._key

    def _outgoing(self, records: list[tuple[str, bytes]]) -> list[tuple[str, bytes, list]]:
        if not self.aggregate:
            return [(key, data, [(i, None)]) for i, (key, data) in enumerate(records)]
        out, batch, users, size = [], [], [], 0
        for i, (key, data) in enumerate(records):
            grow = len(key) + len(data) + 24
            if batch and size + grow > AGGREGATE_BYTES_MAX:
                out.append((batch[0][0], kpl.aggregate(batch), users))
                batch, users, size = [], [], 0
            if grow + 20 > AGGREGATE_BYTES_MAX:
                out.append((key, data, [(i, None)]))
                continue
            users.append((i, len(batch)))
            batch.append((key, data))
            size += grow
        if batch:
            out.append((batch[0][0], kpl.aggregate(batch), users))
        return out

    def put(self, records: list[tuple[str, bytes]]) -> list[Stored]:
        """Stores (partition key, data) records; where each went, in order."""
        for key, data in records:
            if not 1 <= len(key) <= 256 or len(key.encode()) + len(data) > BYTES_PER_RECORD_MAX:
                raise ValueError(f"record with key {key!r} is outside PutRecords' limits")
        outgoing = self._outgoing(records)
        stored: list[Stored | None] = [None] * len(records)
        pending = list(range(len(outgoing)))
        for attempt in range(1, self.max_attempts + 1):
            failed = []
            for call in self._calls(outgoing, pending):
                answers = self._send(outgoing, call)
                for index, answer in zip(call, answers):
                    if answer is None:
                        failed.append(index)
                        continue
                    for user, sub in outgoing[index][2]:
                        stored[user] = Stored(answer[0], answer[1], sub)
            if not failed:
                return stored  # type: ignore[return-value]
            pending = failed
            time.sleep(random.uniform(0, min(self.max_backoff, self.base_backoff * 2 ** attempt)))
        raise RuntimeError(f"{len(pending)} records were still refused after {self.max_attempts} attempts")

    @staticmethod
    def _calls(outgoing, pending):
        calls, call, size = [], [], 0
        for i in pending:
            n = len(outgoing[i][0].encode()) + len(outgoing[i][1])
            if call and (len(call) == RECORDS_PER_CALL_MAX or size + n > BYTES_PER_CALL_MAX):
                calls.append(call)
                call, size = [], 0
            call.append(i)
            size += n
        if call:
            calls.append(call)
        return calls

    def _send(self, outgoing, call):
        """One PutRecords (retried as is, under its idempotency key, after a lost
        answer); per record (shard id, sequence number) or None when refused."""
        self._key = uuid.uuid4().hex
        entries = [{"PartitionKey": outgoing[i][0], "Data": outgoing[i][1]} for i in call]
        try:
            for lost in range(3):
                try:
                    answer = self.sluice.kinesis.put_records(StreamName=self.stream, Records=entries)
                    break
                except (ConnectionError, ReadTimeoutError):
                    if lost == 2:
                        raise
                except ClientError as e:
                    if e.response["Error"]["Code"] in _RETRYABLE:
                        return [None] * len(call)
                    raise
        finally:
            self._key = None
        return [None if r.get("ErrorCode") else (r["ShardId"], r["SequenceNumber"]) for r in answer["Records"]]
