"""Kinesis queues through boto3 (botocore's current Kinesis model): a queue hands each
record of its ON_DEMAND stream to one receiver at a time, redelivers what is not
acknowledged within the visibility timeout, turns a record received MaxReceiveCount
times into a dead letter, and long-polls."""

from __future__ import annotations

import threading
import time

import pytest

from harness import ACCOUNT_ID, REGION, error_code, unique_name


def on_demand_stream(kinesis) -> tuple[str, str]:
    name = unique_name("qs")
    kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    return name, arn


def put(kinesis, stream: str, n: int, prefix: str = "r") -> list[bytes]:
    datas = [f"{prefix}{i}".encode() for i in range(n)]
    out = kinesis.put_records(StreamName=stream, Records=[
        {"Data": d, "PartitionKey": f"k{i}"} for i, d in enumerate(datas)])
    assert out["FailedRecordCount"] == 0
    return datas


def make_queue(kinesis, stream_arn: str, **attributes) -> str:
    out = kinesis.create_queue(
        QueueName=unique_name("q"),
        StreamConfigurationList=[{"StreamARN": stream_arn, "StartingPosition": {"Type": "TRIM_HORIZON"}}],
        **({"QueueAttributes": attributes} if attributes else {}))
    return out["QueueDescription"]["QueueARN"]


def test_records_are_delivered_once_acknowledged_and_redelivered_when_not(kinesis):
    stream, stream_arn = on_demand_stream(kinesis)
    datas = put(kinesis, stream, 15)
    queue = make_queue(kinesis, stream_arn, VisibilityTimeoutSeconds=60)
    described = kinesis.describe_queue(QueueARN=queue)["QueueDescription"]
    assert described["QueueStatus"] == "ACTIVE"
    assert described["QueueARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:queue/{described['QueueName']}"
    assert described["QueueAttributes"] == {
        "VisibilityTimeoutSeconds": 60,
        "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 6}}
    first = kinesis.receive_queue_records(QueueARN=queue, Limit=10)["QueueRecords"]
    second = kinesis.receive_queue_records(QueueARN=queue, Limit=10)["QueueRecords"]
    assert len(first) == 10 and len(second) == 5
    assert sorted(r["Data"] for r in first + second) == sorted(datas)
    assert all(r["ReceiveCount"] == 1 for r in first + second)
    assert len({r["RecordId"] for r in first + second}) == 15
    started = time.monotonic()
    assert kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=1)["QueueRecords"] == []
    assert time.monotonic() - started >= 0.9, "a long poll waits"

    acked = kinesis.acknowledge_queue_records(
        QueueARN=queue, Entries=[{"ReceiptHandle": r["ReceiptHandle"]} for r in first])
    assert len(acked["Successful"]) == 10 and acked["Failed"] == []
    again = kinesis.acknowledge_queue_records(
        QueueARN=queue, Entries=[{"ReceiptHandle": first[0]["ReceiptHandle"]}, {"ReceiptHandle": "forged"}])
    assert [f["ErrorCode"] for f in again["Failed"]] == ["ResourceNotFoundException", "InvalidArgumentException"]

    # Made visible at once, the other five come back with a new receipt handle each;
    # the old handles no longer acknowledge.
    visible = kinesis.update_queue_records_visibility(QueueARN=queue, Entries=[
        {"ReceiptHandle": r["ReceiptHandle"], "VisibilityTimeoutSeconds": 0} for r in second])
    assert len(visible["Successful"]) == 5
    back = kinesis.receive_queue_records(QueueARN=queue, Limit=10)["QueueRecords"]
    assert sorted(r["RecordId"] for r in back) == sorted(r["RecordId"] for r in second)
    assert all(r["ReceiveCount"] == 2 for r in back)
    stale = kinesis.acknowledge_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": second[0]["ReceiptHandle"]}])
    assert stale["Failed"][0]["ErrorCode"] == "ResourceNotFoundException"
    assert len(kinesis.acknowledge_queue_records(
        QueueARN=queue, Entries=[{"ReceiptHandle": r["ReceiptHandle"]} for r in back])["Successful"]) == 5
    # The stream itself still holds every record for its other readers.
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    total = 0
    for shard in shards:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        total += len(kinesis.get_records(ShardIterator=it)["Records"])
    assert total == 15


def test_dead_letters_are_received_restored_and_discarded(kinesis):
    stream, stream_arn = on_demand_stream(kinesis)
    put(kinesis, stream, 2)
    queue = make_queue(kinesis, stream_arn, VisibilityTimeoutSeconds=0,
                       DeadLetterConfiguration={"TargetType": "BUILT_IN", "MaxReceiveCount": 1})
    assert len(kinesis.receive_queue_records(QueueARN=queue)["QueueRecords"]) == 2
    # Received once and not acknowledged: dead letters now, not delivered again.
    assert kinesis.receive_queue_records(QueueARN=queue)["QueueRecords"] == []
    dead = kinesis.receive_dead_letter_queue_records(QueueARN=queue, VisibilityTimeoutSeconds=0)["QueueRecords"]
    assert len(dead) == 2
    restored = kinesis.restore_dead_letter_queue_records(
        QueueARN=queue, Entries=[{"ReceiptHandle": dead[0]["ReceiptHandle"]}])
    assert len(restored["Successful"]) == 1
    back = kinesis.receive_queue_records(QueueARN=queue)["QueueRecords"]
    assert [r["RecordId"] for r in back] == [dead[0]["RecordId"]] and back[0]["ReceiveCount"] == 1
    # A dead-letter handle is not a queue handle, and the other way round.
    wrong = kinesis.acknowledge_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": dead[1]["ReceiptHandle"]}])
    assert wrong["Failed"][0]["ErrorCode"] == "InvalidArgumentException"
    gone = kinesis.acknowledge_dead_letter_queue_records(
        QueueARN=queue, Entries=[{"ReceiptHandle": dead[1]["ReceiptHandle"]}])
    assert len(gone["Successful"]) == 1
    kinesis.update_queue(QueueARN=queue, QueueAttributes={"DeadLetterConfiguration": {"TargetType": "NONE"}})
    attrs = kinesis.describe_queue(QueueARN=queue)["QueueDescription"]["QueueAttributes"]
    assert attrs["DeadLetterConfiguration"] == {"TargetType": "NONE"}
    assert attrs["VisibilityTimeoutSeconds"] == 0


def test_a_long_poll_answers_as_soon_as_a_record_arrives(kinesis):
    stream, stream_arn = on_demand_stream(kinesis)
    queue = make_queue(kinesis, stream_arn)

    def later() -> None:
        time.sleep(1.0)
        put(kinesis, stream, 1, prefix="late")

    threading.Thread(target=later, daemon=True).start()
    started = time.monotonic()
    got = kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=10)["QueueRecords"]
    waited = time.monotonic() - started
    assert [r["Data"] for r in got] == [b"late0"]
    assert 0.8 <= waited < 5, waited


def test_queues_are_listed_checked_and_deleted(kinesis, server):
    stream, stream_arn = on_demand_stream(kinesis)
    queue = make_queue(kinesis, stream_arn)
    name = queue.rsplit("/", 1)[1]
    listed = kinesis.list_queues(StreamFilter=[{"StreamARN": stream_arn}])["QueueSummaries"]
    assert [q["QueueName"] for q in listed] == [name]
    assert listed[0]["Streams"][0]["StreamARN"] == stream_arn
    with pytest.raises(Exception) as taken:
        kinesis.create_queue(QueueName=name, StreamConfigurationList=[{"StreamARN": stream_arn}])
    assert error_code(taken.value) == "ResourceInUseException"
    provisioned = unique_name("prov")
    kinesis.create_stream(StreamName=provisioned, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=provisioned, WaiterConfig={"Delay": 0.2})
    with pytest.raises(Exception) as mode:
        kinesis.create_queue(QueueName=unique_name("q"), StreamConfigurationList=[
            {"StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{provisioned}"}])
    assert error_code(mode.value) == "InvalidArgumentException"
    with pytest.raises(Exception) as missing:
        kinesis.create_queue(QueueName=unique_name("q"), StreamConfigurationList=[
            {"StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{unique_name('none')}"}])
    assert error_code(missing.value) == "ResourceNotFoundException"
    # Another tenant cannot reach the queue.
    tenant = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("other")}).json()
    other = server.client(credentials=(tenant["admin"]["access_key_id"], tenant["admin"]["secret_access_key"]))
    with pytest.raises(Exception) as denied:
        other.describe_queue(QueueARN=queue)
    assert error_code(denied.value) == "AccessDeniedException"
    kinesis.delete_queue(QueueARN=queue)
    with pytest.raises(Exception) as deleted:
        kinesis.describe_queue(QueueARN=queue)
    assert error_code(deleted.value) == "ResourceNotFoundException"
