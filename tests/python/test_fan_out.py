"""Enhanced fan-out: RegisterStreamConsumer, DescribeStreamConsumer,
ListStreamConsumers, DeregisterStreamConsumer and SubscribeToShard through boto3 (its
event-stream parser reads the `application/vnd.amazon.eventstream` frames), and the
consumer-shard-hours and delivered bytes on the bill."""

from __future__ import annotations

from decimal import Decimal

import time

from harness import expect_error, unique_name
from test_usage import make_tenant, report, total


def stream_arn(client, name: str) -> str:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def test_consumers_register_describe_list_and_deregister(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=1)
    arn = stream_arn(kinesis, name)
    made = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    assert made["ConsumerName"] == "app"
    assert made["ConsumerARN"].startswith(f"{arn}/consumer/app:")
    assert made["ConsumerStatus"] in ("CREATING", "ACTIVE")
    with expect_error("ResourceInUseException"):
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")
    by_arn = kinesis.describe_stream_consumer(ConsumerARN=made["ConsumerARN"])["ConsumerDescription"]
    by_name = kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="app")["ConsumerDescription"]
    assert by_arn == by_name and by_arn["StreamARN"] == arn
    for i in range(3):
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=f"more-{i}")
    page = kinesis.list_stream_consumers(StreamARN=arn, MaxResults=2)
    assert [c["ConsumerName"] for c in page["Consumers"]] == ["app", "more-0"]
    rest = kinesis.list_stream_consumers(StreamARN=arn, NextToken=page["NextToken"])
    assert [c["ConsumerName"] for c in rest["Consumers"]] == ["more-1", "more-2"]
    assert "NextToken" not in rest
    summary = lambda: kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]  # noqa: E731
    assert summary()["ConsumerCount"] == 4
    kinesis.deregister_stream_consumer(ConsumerARN=made["ConsumerARN"])
    assert summary()["ConsumerCount"] == 3
    with expect_error("ResourceNotFoundException"):
        kinesis.describe_stream_consumer(ConsumerARN=made["ConsumerARN"])
    # Registered again under the same name, the old ARN names nothing.
    time.sleep(1.05)
    again = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    assert again["ConsumerARN"] != made["ConsumerARN"]
    with expect_error("ResourceNotFoundException"):
        kinesis.describe_stream_consumer(ConsumerARN=made["ConsumerARN"])
    with expect_error("ValidationException", "consumerName"):
        raw_kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="bad name")
    # 20 consumers a stream.
    for i in range(16):
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=f"fill-{i}")
    with expect_error("LimitExceededException", "20"):
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="one-too-many")


def subscribe_all(client, consumer_arn: str, shard: str, want: int, **position) -> tuple[list, list]:
    """Reads events until `want` records came (or the subscription ended)."""
    # A consumer holds one subscription per shard; the previous one ends once the
    # server sees its client gone (Kinesis itself refuses a new one for 5 s).
    deadline = time.monotonic() + 10
    while True:
        try:
            out = client.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=shard,
                                            StartingPosition=position or {"Type": "TRIM_HORIZON"})
            break
        except client.exceptions.ResourceInUseException:
            assert time.monotonic() < deadline, "the previous subscription never ended"
            time.sleep(0.2)
    records, events = [], []
    for event in out["EventStream"]:
        e = event["SubscribeToShardEvent"]
        events.append(e)
        records += e["Records"]
        if len(records) >= want or "ContinuationSequenceNumber" not in e:
            break
    out["EventStream"].close()
    return records, events


def test_subscribe_to_shard_delivers_records_and_the_end_of_a_closed_shard(kinesis, new_stream):
    name = new_stream(shards=1)
    arn = stream_arn(kinesis, name)
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="reader")["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 10
    while kinesis.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sent = [f"r{i}".encode() for i in range(30)]
    seqs = [kinesis.put_record(StreamName=name, Data=d, PartitionKey=f"k{i}")["SequenceNumber"]
            for i, d in enumerate(sent)]
    records, events = subscribe_all(kinesis, consumer, "shardId-000000000000", 30)
    assert [r["Data"] for r in records] == sent
    assert [r["SequenceNumber"] for r in records] == seqs
    assert events[-1]["ContinuationSequenceNumber"] == seqs[-1]
    # AFTER_SEQUENCE_NUMBER continues where a subscription stopped.
    later, _ = subscribe_all(kinesis, consumer, "shardId-000000000000", 10,
                             Type="AFTER_SEQUENCE_NUMBER", SequenceNumber=seqs[19])
    assert [r["Data"] for r in later] == sent[20:]
    # A closed shard ends its subscription with its children.
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    records, events = subscribe_all(kinesis, consumer, "shardId-000000000000", 10_000)
    assert [r["Data"] for r in records] == sent
    assert "ContinuationSequenceNumber" not in events[-1]
    assert [c["ShardId"] for c in events[-1]["ChildShards"]] == ["shardId-000000000001", "shardId-000000000002"]
    with expect_error("ResourceNotFoundException"):
        kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000099",
                                   StartingPosition={"Type": "LATEST"})
    with expect_error("InvalidArgumentException"):
        kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000001",
                                   StartingPosition={"Type": "LATEST", "SequenceNumber": seqs[0]})


def test_fan_out_is_on_the_bill(server):
    account, admin = make_tenant(server)
    client = server.client(credentials=admin)
    name = unique_name("efo")
    start = int(time.time() * 1000)
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    arn = stream_arn(client, name)
    consumer = client.register_stream_consumer(StreamARN=arn, ConsumerName="billed")["Consumer"]["ConsumerARN"]
    while client.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        time.sleep(0.1)
    data = b"z" * 1000
    shard = client.put_record(StreamName=name, Data=data, PartitionKey="k")["ShardId"]
    records, _ = subscribe_all(client, consumer, shard, 1)
    assert [r["Data"] for r in records] == [data]
    time.sleep(1.2)
    client.deregister_stream_consumer(ConsumerARN=consumer)
    end = int(time.time() * 1000) + 1
    lines = report(server, account, start - 1000, end + 1000, creds=admin).json()["lines"]
    # Billed per GiB (2^30 bytes), in exact decimals.
    assert total(lines, "enhanced_fan_out_gib", name) == Decimal(1000) / (1 << 30)
    hours = total(lines, "consumer_shard_hours", name)
    # One consumer on 2 shards for between 1.2 s and the whole test.
    assert Decimal("2.4") / 3600 <= hours <= Decimal(2 * (end - start)) / 3_600_000, hours


def test_a_consumer_holds_one_subscription_per_shard_and_must_be_active(make_server):
    srv = make_server("--stream-transition-ms", "1500")
    client = srv.client()
    client.create_stream(StreamName="fan", ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName="fan", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    arn = stream_arn(client, "fan")
    consumer = client.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]
    assert consumer["ConsumerStatus"] == "CREATING"
    with expect_error("ResourceInUseException", "not ACTIVE"):
        client.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId="shardId-000000000000",
                                  StartingPosition={"Type": "LATEST"})
    time.sleep(1.6)
    first = client.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId="shardId-000000000000",
                                      StartingPosition={"Type": "LATEST"})
    next(iter(first["EventStream"]))  # the subscription is open
    with expect_error("ResourceInUseException", "Another active subscription"):
        client.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId="shardId-000000000000",
                                  StartingPosition={"Type": "LATEST"})
    first["EventStream"].close()
    with expect_error("ValidationException", "maxResults"):
        srv.client(validate=False).list_stream_consumers(StreamARN=arn, MaxResults=0)
