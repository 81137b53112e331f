"""Kinesis as AWS behaves, seen from boto3: the key-space layout of CreateStream and
UpdateShardCount, enhanced monitoring (and the per-shard Prometheus series it turns on),
tags by resource ARN on streams and consumers, account settings, the record distribution
strategy, encryption reporting, and the operation sweep over botocore's model."""

from __future__ import annotations

import json
import time

import botocore.session
import pytest

from harness import expect_error, read_shard, unique_name
from test_metrics import sample

SHARD0 = "shardId-000000000000"


def ranges(client, name: str, open_only: bool = False) -> list[tuple[int, int]]:
    shards = client.list_shards(StreamName=name)["Shards"]
    if open_only:
        shards = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    return [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
            for s in shards]


def aws_layout(n: int) -> list[tuple[int, int]]:
    """AWS's layout: shard i starts at i * floor(2^128 / n); the last ends at 2^128 - 1."""
    width = 2**128 // n
    starts = [i * width for i in range(n)]
    return [(s, (starts[i + 1] - 1) if i + 1 < n else 2**128 - 1) for i, s in enumerate(starts)]


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_create_stream_splits_the_key_space_as_aws_does(kinesis, new_stream, n):
    assert ranges(kinesis, new_stream(shards=n)) == aws_layout(n)


@pytest.mark.parametrize("start,target,total", [(2, 4, 6), (4, 8, 12), (4, 2, 6)])
def test_update_shard_count_leaves_as_many_shards_as_aws(kinesis, new_stream, start, target, total):
    name = new_stream(shards=start)
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=target,
                                     ScalingType="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (start, target)
    assert len(kinesis.list_shards(StreamName=name)["Shards"]) == total
    assert ranges(kinesis, name, open_only=True) == aws_layout(target)


def test_enhanced_monitoring_reports_and_turns_on_shard_metrics(server, kinesis, raw_kinesis, new_stream):
    name = new_stream()
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    out = kinesis.enable_enhanced_monitoring(StreamName=name,
                                             ShardLevelMetrics=["IncomingBytes", "IncomingRecords"])
    assert out["CurrentShardLevelMetrics"] == []
    assert out["DesiredShardLevelMetrics"] == ["IncomingBytes", "IncomingRecords"]
    assert out["StreamARN"] == summary["StreamARN"]
    described = kinesis.describe_stream(StreamName=name)["StreamDescription"]["EnhancedMonitoring"]
    assert described == [{"ShardLevelMetrics": ["IncomingBytes", "IncomingRecords"]}]
    for i in range(3):
        kinesis.put_record(StreamName=name, Data=b"12345", PartitionKey=f"k{i}")
    kinesis.put_records(StreamName=name, Records=[{"Data": b"ab", "PartitionKey": "k"}])
    read_shard(kinesis, name, SHARD0)
    text = server.admin("GET", "/metrics").body.decode()
    labels = {"account": "000000000000", "stream": name, "shard": SHARD0}
    assert sample(text, "sluice_shard_incoming_records_total", **labels) == 4
    assert sample(text, "sluice_shard_incoming_bytes_total", **labels) == 3 * (5 + 2) + (2 + 1)
    # Outgoing metrics are off: no series for this stream.
    with pytest.raises(AssertionError):
        sample(text, "sluice_shard_outgoing_records_total", **labels)
    # ALL turns every one on; disabling some leaves the rest.
    out = kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert len(out["DesiredShardLevelMetrics"]) == 7 and "ALL" not in out["DesiredShardLevelMetrics"]
    read_shard(kinesis, name, SHARD0)
    text = server.admin("GET", "/metrics").body.decode()
    assert sample(text, "sluice_shard_outgoing_records_total", **labels) == 4
    assert sample(text, "sluice_shard_iterator_age_milliseconds", **labels) >= 0
    out = kinesis.disable_enhanced_monitoring(StreamName=name,
                                              ShardLevelMetrics=["IncomingBytes", "OutgoingBytes"])
    assert "IncomingBytes" not in out["DesiredShardLevelMetrics"]
    assert len(out["DesiredShardLevelMetrics"]) == 5
    out = kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert out["DesiredShardLevelMetrics"] == []
    with expect_error("ValidationException", message="shardLevelMetrics"):
        raw_kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["Nonsense"])
    with expect_error("ValidationException", message="shardLevelMetrics"):
        raw_kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=[])
    with expect_error("ResourceNotFoundException"):
        kinesis.enable_enhanced_monitoring(StreamName=unique_name("gone"), ShardLevelMetrics=["ALL"])


def test_tags_by_resource_arn_on_streams_and_consumers(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.tag_resource(ResourceARN=arn, Tags={"team": "data", "cost center": "42"})
    kinesis.add_tags_to_stream(StreamName=name, Tags={"env": "test"})
    listed = kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert listed == [{"Key": "cost center", "Value": "42"}, {"Key": "env", "Value": "test"},
                      {"Key": "team", "Value": "data"}]
    # The same tags, by either API.
    assert len(kinesis.list_tags_for_stream(StreamName=name)["Tags"]) == 3
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["env"])
    assert [t["Key"] for t in kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]] == ["cost center", "team"]

    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="tagged")["Consumer"]
    carn = consumer["ConsumerARN"]
    kinesis.tag_resource(ResourceARN=carn, Tags={"owner": "analytics"})
    assert kinesis.list_tags_for_resource(ResourceARN=carn)["Tags"] == [{"Key": "owner", "Value": "analytics"}]
    # A consumer's tags are its own, not its stream's.
    assert "owner" not in [t["Key"] for t in kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]]
    kinesis.untag_resource(ResourceARN=carn, TagKeys=["owner"])
    assert kinesis.list_tags_for_resource(ResourceARN=carn)["Tags"] == []

    # AWS's character set and reserved prefix, on both tag APIs.
    for tags in ({"bad*key": "v"}, {"k": "semi;colon"}, {"aws:reserved": "v"}):
        with expect_error("InvalidArgumentException"):
            kinesis.tag_resource(ResourceARN=arn, Tags=tags)
        with expect_error("InvalidArgumentException"):
            kinesis.add_tags_to_stream(StreamName=name, Tags=tags)
    with expect_error("InvalidArgumentException", message="Some tags contain invalid characters."):
        kinesis.add_tags_to_stream(StreamName=name, Tags={"tab\tkey": "v"})
    with expect_error("InvalidArgumentException",
                      message=f"Failed to add tags to stream {name} under account 000000000000 because"):
        kinesis.add_tags_to_stream(StreamName=name, Tags={"per%cent": "v"})
    with expect_error("InvalidArgumentException", message="Some tags contain invalid characters."):
        kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["semi;colon"])
    with expect_error("InvalidArgumentException", message=f"Failed to remove tags from stream {name}"):
        kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["per%cent"])
    kinesis.tag_resource(ResourceARN=arn, Tags={"ünïcödé key_.:/=+-@": "välue 1"})
    with expect_error("ResourceNotFoundException"):
        kinesis.list_tags_for_resource(ResourceARN=arn + "-gone")
    with expect_error("ResourceNotFoundException"):
        kinesis.list_tags_for_resource(ResourceARN=carn.rsplit(":", 1)[0] + ":1")
    with expect_error("ValidationException"):
        raw_kinesis.list_tags_for_resource(ResourceARN="not-an-arn")
    # At most 50 tags a resource.
    with expect_error("LimitExceededException"):
        kinesis.tag_resource(ResourceARN=carn, Tags={f"k{i}": "v" for i in range(51)})


def test_account_settings_commitment(make_server):
    # A server of its own: the commitment is account-wide.
    client = make_server().client()
    settings = client.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert settings == {"Status": "DISABLED"}
    on = client.update_account_settings(
        MinimumThroughputBillingCommitment={"Status": "ENABLED"})["MinimumThroughputBillingCommitment"]
    assert on["Status"] == "ENABLED"
    assert (on["EarliestAllowedEndAt"] - on["StartedAt"]).total_seconds() == 24 * 3600
    # Disabled within the first day: on until the earliest allowed end.
    ending = client.update_account_settings(
        MinimumThroughputBillingCommitment={"Status": "DISABLED"})["MinimumThroughputBillingCommitment"]
    assert ending["Status"] == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    assert ending["EarliestAllowedEndAt"] == on["EarliestAllowedEndAt"]
    assert client.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"] == \
        "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    # Enabling again cancels the pending end and keeps the start.
    again = client.update_account_settings(
        MinimumThroughputBillingCommitment={"Status": "ENABLED"})["MinimumThroughputBillingCommitment"]
    assert again["Status"] == "ENABLED" and again["StartedAt"] == on["StartedAt"]
    raw = make_server().client(validate=False)
    with expect_error("ValidationException", message="status"):
        raw.update_account_settings(MinimumThroughputBillingCommitment={"Status": "MAYBE"})


def test_record_distribution_strategy(kinesis, new_stream):
    name = new_stream(shards=4)
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["RecordDistributionStrategy"] == "USER_PARTITION_KEY"
    arn = summary["StreamARN"]
    with expect_error("InvalidArgumentException", message="PROVISIONED"):
        kinesis.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="AUTO")
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="AUTO")
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["RecordDistributionStrategy"] == "AUTO"
    # One partition key, and still the records spread over the shards.
    shards = {kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="same")["ShardId"]
              for _ in range(40)}
    assert len(shards) >= 2, shards
    kinesis.update_stream_record_distribution_strategy(StreamARN=arn,
                                                       RecordDistributionStrategy="USER_PARTITION_KEY")
    shards = {kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="same")["ShardId"]
              for _ in range(10)}
    assert len(shards) == 1


def test_warm_throughput_scales_an_on_demand_stream_up_front(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=2)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    with expect_error("InvalidArgumentException", message="PROVISIONED"):
        kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=4)
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    open_before = summary["OpenShardCount"]
    out = kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=open_before + 2)
    # A shard takes 1 MiB/s of writes: the stream has the shards for its target now.
    assert out["WarmThroughput"]["TargetMiBps"] == open_before + 2
    assert out["WarmThroughput"]["CurrentMiBps"] >= open_before + 2
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] >= open_before + 2
    assert summary["WarmThroughput"] == out["WarmThroughput"]
    assert ranges(kinesis, name, open_only=True) == aws_layout(summary["OpenShardCount"])
    with expect_error("ValidationException"):
        raw_kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=-1)
    with expect_error("InvalidArgumentException"):
        kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=10**6)


# The operations of botocore's current models that are not served yet: each must still
# be answered UnknownOperationException (so that this list shrinks as they are built),
# and every other operation must be answered by its service (no UnknownOperation, no
# 404, no 5xx).
NOT_YET = {
    "kinesis": set(),
    "kms": set(),
}


@pytest.mark.parametrize("service", ["kinesis", "kms"])
def test_every_operation_of_the_model_is_answered(server, service):
    model = botocore.session.get_session().get_service_model(service)
    prefix = model.metadata["targetPrefix"]
    answered, unknown, broken = [], [], []
    for op in sorted(model.operation_names):
        if op == "SubscribeToShard":
            continue  # an event stream; tested end to end in test_fan_out.py
        r = server.raw(None, b"{}", headers={"X-Amz-Target": f"{prefix}.{op}"},
                       content_type=f"application/x-amz-json-{model.metadata['jsonVersion']}",
                       service=service)
        if r.status == 404 or r.status >= 500:
            broken.append((op, r.status, r.body[:200]))
        elif r.error_type() == "UnknownOperationException":
            unknown.append(op)
        else:
            answered.append(op)
    assert broken == [], broken
    assert set(unknown) == NOT_YET[service], (
        f"served but listed as not yet: {sorted(NOT_YET[service] - set(unknown))}; "
        f"not served: {sorted(set(unknown) - NOT_YET[service])}")
    print(json.dumps({"service": service, "answered": len(answered), "not_yet": len(unknown),
                      "of": len(model.operation_names)}))


@pytest.mark.parametrize("ending", ["deregister", "delete"])
def test_a_subscription_ends_when_its_consumer_or_stream_goes(kinesis, new_stream, ending):
    """AWS ends a subscription whose consumer was deregistered or whose stream was
    deleted, with ResourceNotFoundException; it does not go on sending events."""
    from botocore.exceptions import EventStreamError

    name = new_stream()
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="leaving")["Consumer"]
    kinesis.put_record(StreamName=name, Data=b"one", PartitionKey="k")
    out = kinesis.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId=SHARD0,
                                     StartingPosition={"Type": "TRIM_HORIZON"})
    stream = iter(out["EventStream"])
    first = next(stream)["SubscribeToShardEvent"]
    assert [r["Data"] for r in first["Records"]] == [b"one"]
    if ending == "deregister":
        kinesis.deregister_stream_consumer(ConsumerARN=consumer["ConsumerARN"])
    else:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    started = time.monotonic()
    with pytest.raises(EventStreamError) as raised:
        for _ in stream:
            assert time.monotonic() - started < 15, "the subscription outlived its consumer"
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_operations_without_output_answer_an_empty_body(server, kinesis):
    """As Kinesis does (the public emulator suites recorded it from AWS): CreateStream,
    AddTagsToStream, DeleteStream and the like answer 200 with no body at all."""
    name = unique_name("empty")
    r = server.raw("CreateStream", json.dumps({"StreamName": name, "ShardCount": 1}).encode())
    assert (r.status, r.body) == (200, b"")
    r = server.raw("AddTagsToStream", json.dumps({"StreamName": name, "Tags": {"a": "b"}}).encode())
    assert (r.status, r.body) == (200, b"")
    r = server.raw("ListTagsForStream", json.dumps({"StreamName": name}).encode())
    assert r.json()["Tags"] == [{"Key": "a", "Value": "b"}]
    kinesis.delete_stream(StreamName=name)


def test_every_failed_constraint_is_reported_at_once(server):
    """AWS lists every member constraint a request fails ("N validation errors
    detected: ...; ..."), with a null bare and values quoted."""
    r = server.raw("GetShardIterator", json.dumps(
        {"StreamName": "bad name", "ShardId": "", "ShardIteratorType": "NOPE"}).encode())
    assert r.status == 400 and r.error_type() == "ValidationException"
    message = r.json()["message"]
    assert message.startswith("4 validation errors detected: "), message
    for part in (
        "Value 'bad name' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        "Value '' at 'shardId' failed to satisfy constraint: Member must have length greater than or equal to 1",
        "Value 'NOPE' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: "
        "[AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
    ):
        assert part in message, message
    r = server.raw("GetRecords", json.dumps({"Limit": 0}).encode())
    assert r.json()["message"] == (
        "2 validation errors detected: Value null at 'shardIterator' failed to satisfy constraint: "
        "Member must not be null; Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


def test_get_shard_iterator_reads_shard_ids_and_words_errors_as_aws(kinesis, raw_kinesis, server, new_stream):
    """The forms and texts the public emulator suites recorded from AWS."""
    name = new_stream(shards=2)
    account = "000000000000"
    for form in ("shardId-000000000001", "shardId-1", "1", "anything-1"):
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=form, ShardIteratorType="LATEST")
        assert it["ShardIterator"]
    with expect_error("ResourceNotFoundException", message=f"Shard shardId-000000000005 in stream {name} under account {account} does not exist"):
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-5", ShardIteratorType="LATEST")
    gone = unique_name("gone")
    with expect_error("ResourceNotFoundException", message=f"Shard shardId-002147483647 in stream {gone} under account {account} does not exist"):
        kinesis.get_shard_iterator(StreamName=gone, ShardId="2147483647", ShardIteratorType="LATEST")
    for bad in ("2147483648", "ABKLFD8", "2.14E4"):
        with expect_error("ResourceNotFoundException", message=f"Could not find shard {bad} in stream {name} under account {account}."):
            kinesis.get_shard_iterator(StreamName=name, ShardId=bad, ShardIteratorType="LATEST")
    with expect_error("InvalidArgumentException", message="Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber."):
        kinesis.get_shard_iterator(StreamName=name, ShardId="0", ShardIteratorType="AT_SEQUENCE_NUMBER")
    with expect_error("InvalidArgumentException", message="Current request has no timestamp parameter."):
        kinesis.get_shard_iterator(StreamName=name, ShardId="0", ShardIteratorType="AT_TIMESTAMP")
    future = time.time() + 3600
    with expect_error("InvalidArgumentException", message="The timestampInMillis parameter cannot be greater than the currentTimestampInMillis"):
        kinesis.get_shard_iterator(StreamName=name, ShardId="0", ShardIteratorType="AT_TIMESTAMP",
                                   Timestamp=future)


def test_the_shard_limit_is_refused_in_aws_words(make_server):
    client = make_server("--account-shard-limit", "5").client()
    client.create_stream(StreamName="three", ShardCount=3)
    with expect_error("LimitExceededException", message=(
            "This request would exceed the shard limit for the account 000000000000 in us-east-1. "
            "Current shard count for the account: 3. Limit: 5. Number of additional shards that would "
            "have resulted from this request: 1000. Refer to the AWS Service Limits page")):
        client.create_stream(StreamName="big", ShardCount=1000)
    with expect_error("LimitExceededException", message="Current shard count for the account: 3. Limit: 5. "
                      "Number of additional shards that would have resulted from this request: 3."):
        client.update_shard_count(StreamName="three", TargetShardCount=6, ScalingType="UNIFORM_SCALING")


def test_split_and_merge_read_shard_ids_and_word_errors_as_aws(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=3)
    account = "000000000000"
    ranges_before = ranges(kinesis, name)
    low, high = ranges_before[0]
    with expect_error("InvalidArgumentException", message=(
            f"NewStartingHashKey 1 used in SplitShard() on shard shardId-000000000000 in stream {name} "
            f"under account {account} is not both greater than one plus the shard's StartingHashKey {low} "
            f"and less than the shard's EndingHashKey {high}.")):
        kinesis.split_shard(StreamName=name, ShardToSplit="shard-0", NewStartingHashKey="1")
    top_low, top_high = ranges_before[2]
    with expect_error("InvalidArgumentException", message=(
            f"NewStartingHashKey 999999999999999999999999999999999999999 used in SplitShard() on shard "
            f"shardId-000000000002 in stream {name} under account {account} is not both greater than one "
            f"plus the shard's StartingHashKey {top_low} and less than the shard's EndingHashKey {top_high}.")):
        kinesis.split_shard(StreamName=name, ShardToSplit="shard-2",
                            NewStartingHashKey="999999999999999999999999999999999999999")
    with expect_error("ResourceNotFoundException",
                      message=f"Could not find shard shardId-000000000005 in stream {name} under account {account}."):
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-5", NewStartingHashKey="2")
    with expect_error("ResourceNotFoundException",
                      message=f"Could not find shard ABKLFD8 in stream {name} under account {account}."):
        kinesis.merge_shards(StreamName=name, ShardToMerge="ABKLFD8", AdjacentShardToMerge="x-1")
    gone = unique_name("gone")
    with expect_error("ResourceNotFoundException", message=f"Stream {gone} under account {account} not found."):
        kinesis.merge_shards(StreamName=gone, ShardToMerge="2147483647", AdjacentShardToMerge="x-0")
    # The upper shard first is not an adjacent pair, in AWS's words.
    with expect_error("InvalidArgumentException", message=(
            f"Shards shardId-000000000001 and shardId-000000000000 in stream {name} under account "
            f"{account} are not an adjacent pair of shards eligible for merging")):
        kinesis.merge_shards(StreamName=name, ShardToMerge="1", AdjacentShardToMerge="0")
    # Any id whose digits after the first hyphen name a shard works.
    kinesis.merge_shards(StreamName=name, ShardToMerge="any-0", AdjacentShardToMerge="1")
    kinesis.split_shard(StreamName=name, ShardToSplit="2", NewStartingHashKey=str(top_low + 10))


def test_list_shards_paging_members_in_aws_words(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=2)
    with expect_error("InvalidArgumentException", message="Either NextToken or StreamName should be provided."):
        raw_kinesis.list_shards()
    token = kinesis.list_shards(StreamName=name, MaxResults=1)["NextToken"]
    with expect_error("InvalidArgumentException", message="NextToken and StreamName cannot be provided together."):
        raw_kinesis.list_shards(StreamName=name, NextToken=token)
    assert [s["ShardId"] for s in kinesis.list_shards(NextToken=token)["Shards"]] == ["shardId-000000000001"]


def test_max_record_size(kinesis, raw_kinesis, new_stream):
    """MaxRecordSizeInKiB: 1024 KiB unless CreateStream or UpdateMaxRecordSize says up to
    10240; a record over its stream's size is refused with AWS's validation text, one
    within it goes in and comes back whole."""
    name = new_stream()
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["MaxRecordSizeInKiB"] == 1024
    arn = summary["StreamARN"]
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB
    with expect_error("ValidationException", message="less than or equal to 1048576"):
        kinesis.put_record(StreamName=name, Data=big, PartitionKey="k")
    for bad in (1023, 10241):
        with expect_error("ValidationException"):
            raw_kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=bad)
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=10240)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
        "MaxRecordSizeInKiB"] == 10240
    put = kinesis.put_record(StreamName=name, Data=big, PartitionKey="k")
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=put["ShardId"],
                                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                                    StartingSequenceNumber=put["SequenceNumber"])["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=it, Limit=1)["Records"]
    assert record["Data"] == big
    # PutRecords carries at most 10 MiB in all.
    with expect_error("InvalidArgumentException", message="10 MB"):
        kinesis.put_records(StreamName=name, Records=[{"Data": big, "PartitionKey": "a"},
                                                      {"Data": big, "PartitionKey": "b"},
                                                      {"Data": big[:1024], "PartitionKey": "c"}])

    sized = unique_name("sized")
    kinesis.create_stream(StreamName=sized, ShardCount=1, MaxRecordSizeInKiB=2048)
    kinesis.get_waiter("stream_exists").wait(StreamName=sized, WaiterConfig={"Delay": 1})
    assert kinesis.describe_stream_summary(StreamName=sized)["StreamDescriptionSummary"][
        "MaxRecordSizeInKiB"] == 2048
    with expect_error("ValidationException", message="less than or equal to 2097152"):
        kinesis.put_record(StreamName=sized, Data=big[: 3 * 1024 * 1024], PartitionKey="k")
    kinesis.put_record(StreamName=sized, Data=big[: 2 * 1024 * 1024 - 1], PartitionKey="k")
    kinesis.delete_stream(StreamName=sized)


def test_enhanced_monitoring_counts_what_subscriptions_send(server, kinesis, new_stream):
    """SubscribeToShard's events count in the shard's outgoing series, as GetRecords do."""
    name = new_stream()
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["OutgoingRecords", "OutgoingBytes"])
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="watched")["Consumer"]
    for _ in range(30):
        if kinesis.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])[
                "ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
            break
        time.sleep(0.2)
    for i in range(3):
        kinesis.put_record(StreamName=name, Data=b"abcd", PartitionKey=f"k{i}")
    out = kinesis.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId=SHARD0,
                                     StartingPosition={"Type": "TRIM_HORIZON"})
    got = 0
    for event in out["EventStream"]:
        got += len(event["SubscribeToShardEvent"]["Records"])
        if got >= 3:
            break
    out["EventStream"].close()
    labels = {"account": "000000000000", "stream": name, "shard": SHARD0}
    text = server.admin("GET", "/metrics").body.decode()
    assert sample(text, "sluice_shard_outgoing_records_total", **labels) == 3
    assert sample(text, "sluice_shard_outgoing_bytes_total", **labels) >= 3 * 4


def seq_fields(seq: str) -> dict:
    """A sequence number read in AWS's layout (47 hexadecimal digits)."""
    assert len(seq) == 56 and seq.isdigit(), seq
    h = format(int(seq), "x")
    assert len(h) == 47 and h[0] == "2" and h[-1] == "2", h
    assert h[27:29] == "00", h
    assert int(h[10], 16) == int(h[38:46], 16) % 16, h
    return {"created": int(h[1:10], 16), "counter": int(h[11:27], 16),
            "time": int(h[29:38], 16), "shard": int(h[38:46], 16)}


def test_sequence_numbers_have_aws_layout_and_read_back_alike(kinesis, new_stream):
    """56 digits in AWS's layout (shard creation second, counter, arrival second, shard
    index), the same text from PutRecords and GetRecords, and shards made together
    starting 2^144 + 16 apart per index, as the emulator suites record AWS's do."""
    made = int(time.time())
    name = new_stream(shards=3)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    starts = [int(s["SequenceNumberRange"]["StartingSequenceNumber"]) for s in shards]
    assert starts[1] - starts[0] == 2**144 + 16 and starts[2] - starts[1] == 2**144 + 16
    start0 = seq_fields(shards[0]["SequenceNumberRange"]["StartingSequenceNumber"])
    assert start0["counter"] == 0 and start0["time"] == start0["created"]
    assert made - 2 <= start0["created"] <= time.time() + 1
    put_at = time.time()
    acked = kinesis.put_records(StreamName=name, Records=[
        {"Data": f"r{i}".encode(), "PartitionKey": "p", "ExplicitHashKey": "0"} for i in range(5)])
    seqs = [r["SequenceNumber"] for r in acked["Records"]]
    fields = [seq_fields(s) for s in seqs]
    assert all(f["shard"] == 0 and f["created"] == start0["created"] for f in fields)
    assert all(int(put_at) - 1 <= f["time"] <= time.time() + 1 for f in fields)
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs) and len(set(seqs)) == 5
    read = read_shard(kinesis, name, SHARD0)
    assert [r["SequenceNumber"] for r in read] == seqs
    for r in read:
        assert seq_fields(r["SequenceNumber"])["time"] == int(r["ApproximateArrivalTimestamp"].timestamp())
    # AT and AFTER a number read from the shard.
    at = read_shard(kinesis, name, SHARD0, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2])
    assert [r["Data"] for r in at] == [b"r2", b"r3", b"r4"]
    after = read_shard(kinesis, name, SHARD0, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2])
    assert [r["Data"] for r in after] == [b"r3", b"r4"]
    # The layout Sluice wrote before (shard << 64 | counter, in decimal) is still read.
    old = str(fields[2]["counter"])
    assert [r["Data"] for r in read_shard(kinesis, name, SHARD0, "AT_SEQUENCE_NUMBER",
                                          StartingSequenceNumber=old)] == [b"r2", b"r3", b"r4"]
    # SequenceNumberForOrdering takes a number of the shard.
    put = kinesis.put_record(StreamName=name, Data=b"r5", PartitionKey="p", ExplicitHashKey="0",
                             SequenceNumberForOrdering=seqs[-1])
    assert int(put["SequenceNumber"]) > int(seqs[-1])


def test_a_closed_shard_ends_with_aws_ending_number(kinesis, new_stream):
    name = new_stream(shards=1)
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p")
    before = int(time.time())
    kinesis.split_shard(StreamName=name, ShardToSplit=SHARD0, NewStartingHashKey=str(2**127))
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name)["Shards"]}
    parent = shards[SHARD0]["SequenceNumberRange"]
    end = seq_fields(parent["EndingSequenceNumber"])
    assert end["counter"] == 2**63 - 1 and end["shard"] == 0
    assert end["created"] == seq_fields(parent["StartingSequenceNumber"])["created"]
    assert before - 1 <= end["time"] <= time.time() + 1
    child = seq_fields(shards["shardId-000000000001"]["SequenceNumberRange"]["StartingSequenceNumber"])
    assert child["shard"] == 1 and child["time"] == child["created"]
    # The ending number follows every record: read from it, the shard is at its end.
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType=kind,
                                        StartingSequenceNumber=parent["EndingSequenceNumber"])
        got = kinesis.get_records(ShardIterator=it["ShardIterator"])
        assert got["Records"] == [] and "NextShardIterator" not in got, got


def test_sequence_numbers_that_are_not_words_errors_as_aws(kinesis, new_stream):
    """The texts the public emulator suites recorded from AWS."""
    name = new_stream(shards=2)
    account = "000000000000"
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p", ExplicitHashKey=str(2**127 + 1))
    one = kinesis.list_shards(StreamName=name)["Shards"][1]["SequenceNumberRange"]["StartingSequenceNumber"]
    with expect_error("InvalidArgumentException", message=(
            "Invalid StartingSequenceNumber. It encodes shardId-000000000001, while it was used in a "
            "call to a shard with shardId-000000000000")):
        kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                   StartingSequenceNumber=one)
    negative = str(int("20000000000000000000000000000000000000800000002", 16))
    with expect_error("InvalidArgumentException", message="It encodes shardId--02147483648, while"):
        kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                   StartingSequenceNumber=negative)
    for hexa in ("20000000000000000000000000000000000000000000004",   # the layout's version is 4
                 "30000000000000000000000000000000000000000000001",   # not a 2 first
                 "13bb2cc3d80000000000000000000000",                  # a creation time far on
                 "20000000000800000000000000000000000000000000002"):  # the counter's top bit
        bad = str(int(hexa, 16))
        with expect_error("InvalidArgumentException", message=(
                f"StartingSequenceNumber {bad} used in GetShardIterator on shard shardId-000000000000 "
                f"in stream {name} under account {account} is invalid.")):
            kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                       StartingSequenceNumber=bad)
        with expect_error("InvalidArgumentException", message=(
                f"ExclusiveMinimumSequenceNumber {bad} used in PutRecord on stream {name} "
                f"under account {account} is invalid.")):
            kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p", SequenceNumberForOrdering=bad)
    with expect_error("ValidationException", message="Member must satisfy regular expression pattern"):
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p", SequenceNumberForOrdering="012")
    # AWS's earlier layout (version 1) orders a PutRecord, as AWS takes it there.
    v1 = str(int("20000000000000000000000000000000000000000000001", 16))
    assert kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p", SequenceNumberForOrdering=v1)["SequenceNumber"]


def test_reading_a_deleted_stream_names_its_shard_as_aws_does(kinesis, new_stream):
    name = new_stream(shards=1)
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p")
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    with expect_error("ResourceNotFoundException", message=(
            f"Shard {SHARD0} in stream {name} under account 000000000000 does not exist")):
        kinesis.get_records(ShardIterator=it["ShardIterator"])
