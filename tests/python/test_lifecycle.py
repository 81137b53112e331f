"""Asynchronous stream states: a new stream is CREATING for a configured while, then
ACTIVE; a deleted one is DELETING, then gone. Records can be neither written nor read
while a stream is CREATING or DELETING; boto3's waiters see the states pass."""

from __future__ import annotations

import time

from harness import expect_error

SHARD0 = "shardId-000000000000"


def status(client, name: str) -> str:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]


def test_creating_then_active_then_deleting_then_gone(make_server):
    srv = make_server("--stream-transition-ms", "1500")
    client = srv.client()
    client.create_stream(StreamName="slow", ShardCount=1)
    assert status(client, "slow") == "CREATING"
    assert client.list_streams()["StreamSummaries"][0]["StreamStatus"] == "CREATING"
    # Kinesis describes a stream being created with no shards yet.
    assert client.describe_stream(StreamName="slow")["StreamDescription"]["Shards"] == []
    with expect_error("ResourceNotFoundException"):
        client.put_record(StreamName="slow", Data=b"x", PartitionKey="k")
    with expect_error("ResourceNotFoundException"):
        client.get_shard_iterator(StreamName="slow", ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")
    # The same name again is in use.
    with expect_error("ResourceInUseException"):
        client.create_stream(StreamName="slow", ShardCount=1)
    started = time.monotonic()
    client.get_waiter("stream_exists").wait(StreamName="slow", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    assert time.monotonic() - started < 5
    assert status(client, "slow") == "ACTIVE"
    seq = client.put_record(StreamName="slow", Data=b"x", PartitionKey="k")["SequenceNumber"]
    assert seq

    client.delete_stream(StreamName="slow")
    assert status(client, "slow") == "DELETING"
    with expect_error("ResourceNotFoundException"):
        client.put_record(StreamName="slow", Data=b"x", PartitionKey="k")
    # Deleting it again succeeds, as Kinesis has it; it is still DELETING.
    client.delete_stream(StreamName="slow")
    assert status(client, "slow") == "DELETING"
    # The shards still count against the account until the stream is gone.
    assert client.describe_limits()["OpenShardCount"] == 1
    client.get_waiter("stream_not_exists").wait(StreamName="slow", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    with expect_error("ResourceNotFoundException"):
        client.describe_stream_summary(StreamName="slow")
    assert client.describe_limits()["OpenShardCount"] == 0
    # The name is free again.
    client.create_stream(StreamName="slow", ShardCount=1)
    assert status(client, "slow") == "CREATING"


def test_bad_transition_settings_are_refused(binary, tmp_path):
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    r = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                        "--stream-transition-ms", "600000"], env=env, capture_output=True, timeout=30)
    assert r.returncode != 0 and b"SLUICE_STREAM_TRANSITION_MS" in r.stderr


def test_changing_encryption_makes_the_stream_updating_while_records_flow(make_server):
    srv = make_server("--stream-transition-ms", "1500")
    client = srv.client()
    kms = srv.client(service="kms")
    client.create_stream(StreamName="enc", ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName="enc", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    client.start_stream_encryption(StreamName="enc", EncryptionType="KMS", KeyId=key)
    assert status(client, "enc") == "UPDATING"
    client.put_record(StreamName="enc", Data=b"during", PartitionKey="k")
    client.get_waiter("stream_exists").wait(StreamName="enc", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    summary = client.describe_stream_summary(StreamName="enc")["StreamDescriptionSummary"]
    assert (summary["StreamStatus"], summary["EncryptionType"], summary["KeyId"]) == ("ACTIVE", "KMS", key)
    it = client.get_shard_iterator(StreamName="enc", ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in client.get_records(ShardIterator=it)["Records"]] == [b"during"]
