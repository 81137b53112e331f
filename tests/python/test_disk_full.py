"""A full disk under the SQLite catalog: writes are refused while it lasts, nothing
acknowledged is lost, and writing resumes by itself when space returns.

The data directory is a small tmpfs of its own (the test needs to be able to mount
one: root, as CI runs; it skips otherwise). A ballast file fills it while signed
requests arrive (each one's audit entry fails to be written), then is removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import botocore.exceptions
import pytest

import json

from harness import ACCOUNT_ID, SluiceServer

SHARD0 = "shardId-000000000000"
ROUNDS = 2


@pytest.fixture
def small_disk():
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount = Path(tempfile.mkdtemp(prefix="sluice-disk-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        os.rmdir(mount)
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        os.rmdir(mount)


def fill(mount: Path) -> Path:
    ballast = mount / "ballast"
    subprocess.run(["dd", "if=/dev/zero", f"of={ballast}", "bs=1M"], capture_output=True)
    return ballast


def read_all(client, stream: str) -> set[str]:
    it = client.get_shard_iterator(StreamName=stream, ShardId=SHARD0,
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen: set[str] = set()
    for _ in range(50):
        out = client.get_records(ShardIterator=it, Limit=10000)
        seen |= {r["SequenceNumber"] for r in out["Records"]}
        it = out.get("NextShardIterator")
        if not out["Records"] and out.get("MillisBehindLatest", 0) == 0:
            break
    return seen


def put(client, stream: str, n: int, tag: str, refusals: list[str] | None = None) -> list[str]:
    """Sequence numbers of the records acknowledged (a refused call acknowledges none);
    the error types of refusals are added to `refusals`."""
    try:
        out = client.put_records(StreamName=stream, Records=[
            {"Data": f"{tag}-{i}".encode(), "PartitionKey": f"k{i}"} for i in range(n)])
    except botocore.exceptions.ClientError as e:
        if refusals is not None:
            refusals.append(e.response["Error"]["Code"])
        return []
    if refusals is not None:
        refusals += [r["ErrorCode"] for r in out["Records"] if "ErrorCode" in r]
    return [r["SequenceNumber"] for r in out["Records"] if "SequenceNumber" in r]


def test_a_full_disk_loses_nothing_acknowledged_and_writing_resumes(binary, small_disk):
    server = SluiceServer(binary, name="sluice-full")
    server.data_dir = small_disk / "data"
    try:
        server.start()
        client = server.client()
        client.create_stream(StreamName="full", ShardCount=1)
        acked: list[str] = []
        served_ids: list[str] = []
        for round_ in range(ROUNDS):
            ballast = fill(small_disk)
            # Requests arrive while the disk is full: their audit entries cannot be
            # written, and writes cannot be made durable.
            answers = [server.json_call("ListStreams", {}) for _ in range(30)]
            # Once the audit writer has failed (it retries a batch within a second),
            # requests are refused (fail closed).
            for _ in range(50):
                if answers[-1].status == 503:
                    break
                time.sleep(0.1)
                answers.append(server.json_call("ListStreams", {}))
            # Served or refused retryably; every one served is in the trail (below).
            assert {a.status for a in answers} <= {200, 503}, [a.status for a in answers]
            served_ids += [a.headers["x-amzn-requestid"] for a in answers if a.status == 200]
            assert answers[-1].status == 503, "requests kept being served with no audit trail"
            refusals: list[str] = []
            acked += put(client, "full", 20, f"full{round_}", refusals)
            # Refused, if refused, with a retryable error that is not a failure of ours.
            assert "InternalFailure" not in refusals, refusals
            ballast.unlink()
            # Space is back: writing resumes by itself (a retry or two at most).
            resumed: list[str] = []
            for _ in range(20):
                resumed = put(client, "full", 100, f"after{round_}")
                if resumed:
                    break
                time.sleep(0.5)
            assert len(resumed) == 100, f"round {round_}: writes did not resume\n{server.diagnostics()}"
            acked += resumed
            # Every acknowledged record survives a kill -9.
            server.kill()
            server.start()
            client = server.client()
            seen = read_all(client, "full")
            lost = [s for s in acked if s not in seen]
            assert not lost, f"round {round_}: {len(lost)} of {len(acked)} acknowledged records lost"
            r = server.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/audit?limit=10000")
            assert r.status == 200, r
            audited = {json.loads(line)["request_id"] for line in r.body.decode().splitlines()}
            missing = [i for i in served_ids if i not in audited]
            assert not missing, f"round {round_}: {len(missing)} served requests not in the audit trail"
    finally:
        server.close()


def send_batches(sqs, url: str, tag: str, batches: int) -> tuple[list[str], list[str]]:
    """Sends `batches` batches of ten from four threads at once (so that their writes
    share commits); the message ids acknowledged and the error codes of refusals."""
    from concurrent.futures import ThreadPoolExecutor

    def one(b: int):
        try:
            out = sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": f"{tag}-{b}-{i}"} for i in range(10)])
        except botocore.exceptions.ClientError as e:
            return [], [e.response["Error"]["Code"]]
        except botocore.exceptions.BotoCoreError as e:
            return [], [type(e).__name__]
        return ([m["MessageId"] for m in out.get("Successful", [])],
                [f["Code"] for f in out.get("Failed", [])])

    acked: list[str] = []
    refused: list[str] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for ids, codes in pool.map(one, range(batches)):
            acked += ids
            refused += codes
    return acked, refused


def test_a_full_disk_loses_no_acknowledged_sqs_message(binary, small_disk):
    """SQS sends share commits on SQLite (catalog::groupcommit). Sent from several
    threads while the disk fills, they are refused (never answered as sent without a
    commit), they resume when space returns, and every one acknowledged survives
    kill -9."""
    server = SluiceServer(binary, name="sluice-full-sqs")
    server.data_dir = small_disk / "data"
    try:
        server.start()
        sqs = server.client(service="sqs")
        url = sqs.create_queue(QueueName="full")["QueueUrl"]
        acked, _ = send_batches(sqs, url, "before", 8)
        assert len(acked) == 80
        ballast = fill(small_disk)
        # Sends while the disk is full: refused (the commit fails, or the gateway
        # fails closed once the audit trail cannot be written), never half-answered.
        refused: list[str] = []
        for round_ in range(50):
            during, refused = send_batches(sqs, url, f"full{round_}", 8)
            acked += during
            if refused:
                break
            time.sleep(0.1)
        assert refused, "sends kept succeeding on a full disk"
        ballast.unlink()
        resumed: list[str] = []
        for _ in range(20):
            resumed, _ = send_batches(sqs, url, "after", 4)
            if len(resumed) == 40:
                break
            time.sleep(0.5)
        assert len(resumed) == 40, f"sends did not resume\n{server.diagnostics()}"
        acked += resumed
        server.kill()
        server.start()
        sqs = server.client(service="sqs")
        received: set[str] = set()
        for _ in range(200):
            out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)
            got = out.get("Messages", [])
            if not got:
                break
            received |= {m["MessageId"] for m in got}
        lost = [m for m in acked if m not in received]
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost"
    finally:
        server.close()
