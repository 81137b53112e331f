"""Streams under tenant keys: StartStreamEncryption / StopStreamEncryption, EncryptionType
and KeyId in DescribeStream(Summary), Kinesis's KMS errors on PutRecord(s)/GetRecords
while the stream's key is disabled or pending deletion, and crypto-shredding once the
key is deleted (the records' rows stay, their data is unreadable for good)."""

from __future__ import annotations

import time

import pytest

from harness import REGION, expect_error, unique_name

SHARD0 = "shardId-000000000000"


def first_record(kinesis, name):
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")
    return kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]


def eventually(call, *codes, timeout=10.0):
    """Retries `call` until it fails with one of `codes` (key states are remembered by
    the server for at most a second); returns the error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call()
        except Exception as e:  # noqa: BLE001 - checked below
            code = getattr(e, "response", {}).get("Error", {}).get("Code")
            if code in codes:
                return e
            raise
        assert time.monotonic() < deadline, f"no {codes} after {timeout}s"
        time.sleep(0.2)


def recovers(call, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_default_key_is_made_on_first_use(kinesis, kms, new_stream):
    name = new_stream()
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    # Sealed under the account's AWS managed key, as a stream with no key of its own is.
    assert summary["EncryptionType"] == "KMS" and summary["KeyId"] == "alias/aws/kinesis"
    kinesis.put_record(StreamName=name, Data=b"under the default key", PartitionKey="p")
    assert [r["Data"] for r in first_record(kinesis, name)] == [b"under the default key"]
    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    default = kms.describe_key(KeyId="alias/aws/kinesis")["KeyMetadata"]
    assert aliases["alias/aws/kinesis"]["TargetKeyId"] == default["KeyId"]
    assert default["KeyManager"] == "AWS"
    # As AWS managed keys do, it rotates every year.
    rotation = kms.get_key_rotation_status(KeyId=default["KeyId"])
    assert rotation["KeyRotationEnabled"] is True and rotation["RotationPeriodInDays"] == 365
    with expect_error("UnsupportedOperationException"):
        kms.disable_key_rotation(KeyId=default["KeyId"])
    # The service's key is the service's: a tenant neither disables nor deletes it, nor
    # its alias.
    with expect_error("UnsupportedOperationException"):
        kms.disable_key(KeyId=default["Arn"])
    with expect_error("UnsupportedOperationException"):
        kms.schedule_key_deletion(KeyId=default["KeyId"], PendingWindowInDays=7)
    with expect_error("NotAuthorizedException"):
        kms.delete_alias(AliasName="alias/aws/kinesis")
    assert kms.describe_key(KeyId="alias/aws/kinesis")["KeyMetadata"]["KeyId"] == default["KeyId"]
    # Key management names a key by its id or ARN, as AWS has it; an alias is not found.
    with expect_error("NotFoundException"):
        kms.get_key_rotation_status(KeyId="alias/aws/kinesis")


def test_start_and_stop_stream_encryption(kinesis, raw_kinesis, kms, new_stream):
    name = new_stream()
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/{unique_name('stream')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kinesis.put_record(StreamName=name, Data=b"before", PartitionKey="p")
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=alias)
    for describe in (
        lambda: kinesis.describe_stream(StreamName=name)["StreamDescription"],
        lambda: kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"],
    ):
        d = describe()
        assert d["EncryptionType"] == "KMS" and d["KeyId"] == alias
    out = kinesis.put_record(StreamName=name, Data=b"after", PartitionKey="p")
    assert out["EncryptionType"] == "KMS"
    assert [r["Data"] for r in first_record(kinesis, name)] == [b"before", b"after"]
    kinesis.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=alias)
    d = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    # Stopping puts new data keys back under the AWS managed key; still encrypted at rest.
    assert d["EncryptionType"] == "KMS" and d["KeyId"] == "alias/aws/kinesis"
    kinesis.put_record(StreamName=name, Data=b"stopped", PartitionKey="p")
    assert [r["Data"] for r in first_record(kinesis, name)] == [b"before", b"after", b"stopped"]
    with expect_error("KMSNotFoundException"):
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/none-such")
    with expect_error("ValidationException"):
        raw_kinesis.start_stream_encryption(StreamName=name, EncryptionType="AES", KeyId=alias)
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["KeyId"] == "alias/aws/kinesis"


def test_a_disabled_key_stops_writes_and_reads_until_enabled(kinesis, kms, new_stream):
    name = new_stream()
    key = kms.create_key()["KeyMetadata"]
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key["Arn"])
    kinesis.put_record(StreamName=name, Data=b"one", PartitionKey="p")
    kms.disable_key(KeyId=key["KeyId"])
    # Writes accepted in the second before every process sees the new state are kept.
    written = [b"one"]

    def put_x():
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p")
        written.append(b"x")

    eventually(put_x, "KMSDisabledException")
    with expect_error("KMSDisabledException"):
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "p"}])
    with expect_error("KMSDisabledException"):
        first_record(kinesis, name)
    with expect_error("KMSDisabledException"):
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    recovers(lambda: kinesis.put_record(StreamName=name, Data=b"two", PartitionKey="p"))
    written.append(b"two")
    assert [r["Data"] for r in first_record(kinesis, name)] == written

    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    eventually(lambda: first_record(kinesis, name), "KMSInvalidStateException")
    with expect_error("KMSInvalidStateException"):
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p")
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    assert [r["Data"] for r in recovers(lambda: first_record(kinesis, name))] == written


def test_deleting_the_key_shreds_the_streams_data(server, kinesis, kms, new_stream):
    """AWS's 7-day minimum waiting period stands; the test moves the deletion date into
    the past in the catalog and lets the server's key sweep (every 5 s) destroy it."""
    name = new_stream()
    key = kms.create_key()["KeyMetadata"]
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key["KeyId"])
    for i in range(3):
        kinesis.put_record(StreamName=name, Data=b"shred me %d" % i, PartitionKey="p")
    assert len(first_record(kinesis, name)) == 3
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    server.sql(f"UPDATE kms_keys SET deletion_date_ms = 0 WHERE key_id = '{key['KeyId']}'")
    eventually(lambda: kms.describe_key(KeyId=key["KeyId"]), "NotFoundException", timeout=30)
    with expect_error("KMSNotFoundException"):
        first_record(kinesis, name)
    with expect_error("KMSNotFoundException"):
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p")
    # Even a catalog edit that points the stream back at the default key cannot bring
    # the data back: its data keys were wrapped under material that no longer exists.
    server.sql(f"UPDATE streams SET master_key_id = NULL, encryption_type = 'NONE', key_id = NULL "
               f"WHERE stream_name = '{name}'")
    eventually(lambda: first_record(kinesis, name), "KMSNotFoundException")
    # The record history stays: the stream still describes, its rows are still there.
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamName"] == name
    recovers(lambda: kinesis.put_record(StreamName=name, Data=b"new data, default key", PartitionKey="q"))


def test_another_tenants_key_cannot_protect_my_stream(server, kinesis, new_stream):
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("kms-other")})
    assert r.status == 201, r
    other = r.json()
    kms_other = server.client(service="kms", credentials=(other["admin"]["access_key_id"],
                                                          other["admin"]["secret_access_key"]))
    foreign = kms_other.create_key()["KeyMetadata"]
    name = new_stream()
    with expect_error("AccessDeniedException"):
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=foreign["Arn"])
    with expect_error("KMSNotFoundException"):
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=foreign["KeyId"])
    assert foreign["Arn"].startswith(f"arn:aws:kms:{REGION}:{other['account_id']}:key/")
