"""SQS through boto3's `sqs` client against the real binary: standard queues, their
attributes, messages with attributes and MD5s, visibility timeouts, long polling,
delays, batches, purges, dead-letter redrive, query-compatible error codes, messages
sealed at rest and kept across kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time

import pytest

from harness import ACCOUNT_ID, MotoServer, PostgresDatabase, SluiceServer, error_code, unique_name


@pytest.fixture(scope="module")
def sluice(binary, backend):
    db = PostgresDatabase(os.environ["SLUICE_TEST_POSTGRES_URL"]) if backend == "postgres" else None
    srv = SluiceServer(binary, backend=backend, database_url=db.url if db else None, name="sluice-sqs")
    try:
        srv.start()
        yield srv
    finally:
        srv.close()
        if db:
            db.close()


@pytest.fixture
def sqs(sluice):
    return sluice.client(service="sqs")


def new_queue(sqs, **attributes) -> str:
    return sqs.create_queue(QueueName=unique_name("q"),
                            Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]


def attributes_md5(attributes: dict) -> str:
    """MD5OfMessageAttributes as SQS documents it, computed here independently."""
    buf = b""
    for name in sorted(attributes):
        a = attributes[name]
        buf += struct.pack(">I", len(name)) + name.encode()
        buf += struct.pack(">I", len(a["DataType"])) + a["DataType"].encode()
        if "StringValue" in a:
            value = a["StringValue"].encode()
            buf += b"\x01" + struct.pack(">I", len(value)) + value
        else:
            buf += b"\x02" + struct.pack(">I", len(a["BinaryValue"])) + a["BinaryValue"]
    return hashlib.md5(buf).hexdigest()


def test_queues_are_made_found_listed_described_and_deleted(sluice, sqs):
    name = unique_name("q")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"},
                           tags={"team": "data"})["QueueUrl"]
    assert url == f"{sluice.endpoint}/{ACCOUNT_ID}/{name}"
    # The same name with the same attributes is the same queue; other values are refused.
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    with pytest.raises(Exception) as e:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    assert error_code(e.value) == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    other = sqs.create_queue(QueueName=name + "-2")["QueueUrl"]
    page = sqs.list_queues(QueueNamePrefix=name, MaxResults=1)
    assert page["QueueUrls"] == [url] and page["NextToken"]
    rest = sqs.list_queues(QueueNamePrefix=name, MaxResults=1, NextToken=page["NextToken"])
    assert rest["QueueUrls"] == [other] and "NextToken" not in rest
    sqs.delete_queue(QueueUrl=other)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["MessageRetentionPeriod"] == "345600" and attrs["MaximumMessageSize"] == "1048576"
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{name}"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "5"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])[
        "Attributes"] == {"DelaySeconds": "5"}
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "data"}
    sqs.tag_queue(QueueUrl=url, Tags={"tier": "1"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"tier": "1"}
    for bad in ({"VisibilityTimeout": "43201"}, {"MessageRetentionPeriod": "59"},
                {"MaximumMessageSize": "1023"}, {"DelaySeconds": "901"}):
        with pytest.raises(Exception) as e:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=bad)
        assert error_code(e.value) == "InvalidAttributeValue", bad
    with pytest.raises(Exception) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
    assert error_code(e.value) == "InvalidAttributeName"
    sqs.delete_queue(QueueUrl=url)
    # A missing queue gets the query protocol's code, which code written for SQS catches.
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as e:
        sqs.get_queue_url(QueueName=name)
    assert error_code(e.value) == "AWS.SimpleQueueService.NonExistentQueue"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_messages_round_trip_with_attributes_and_digests(sqs):
    url = new_queue(sqs)
    attributes = {"kind": {"DataType": "String", "StringValue": "order"},
                  "n": {"DataType": "Number", "StringValue": "42"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello \u00e9", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5("hello \u00e9".encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == attributes_md5(attributes)
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                              MessageSystemAttributeNames=["All"])["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["MessageId"] == sent["MessageId"] and m["Body"] == "hello \u00e9"
    assert m["MessageAttributes"] == attributes
    assert m["MD5OfMessageAttributes"] == attributes_md5(attributes)
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(m["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000
    only = {"kind": attributes["kind"]}
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["kind"])["Messages"][0]
    assert again["MessageAttributes"] == only
    assert again["MD5OfMessageAttributes"] == attributes_md5(only)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    for bad in ({"MessageBody": "\u0000"}, {"MessageBody": "x" * (1024 * 1024 + 1)}):
        with pytest.raises(Exception) as e:
            sqs.send_message(QueueUrl=url, **bad)
        assert error_code(e.value) in ("InvalidMessageContents", "InvalidParameterValue"), e.value


def test_a_received_message_is_hidden_for_its_visibility_timeout(sqs):
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="job")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    time.sleep(2.5)
    second = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"],
                                 VisibilityTimeout=30)["Messages"][0]
    assert second["MessageId"] == first["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    # The first handle is stale: deleting with it succeeds and deletes nothing.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    with pytest.raises(Exception) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"],
                                      VisibilityTimeout=5)
    assert error_code(e.value) == "AWS.SimpleQueueService.MessageNotInflight"
    with pytest.raises(Exception) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert error_code(e.value) == "ReceiptHandleIsInvalid"


def test_a_long_poll_answers_as_soon_as_a_message_arrives(sluice, sqs):
    url = new_queue(sqs)
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert time.monotonic() - started >= 0.9, "an empty long poll waits its time"
    result = {}

    def poll():
        client = sluice.client(service="sqs")
        t0 = time.monotonic()
        result["messages"] = client.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
        result["at"] = time.monotonic()
        result["waited"] = result["at"] - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.5)
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    t.join(timeout=30)
    assert [m["Body"] for m in result["messages"]] == ["wake up"]
    assert result["waited"] >= 1.0, "it waited for the message"
    assert result["at"] - sent_at < 1.0, "it answered within a second of the send"


def test_delays_batches_and_purges(sqs):
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    time.sleep(2.5)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "later"

    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": f"e{i}", "MessageBody": f"m{i}"} for i in range(10)])
    assert len(out["Successful"]) == 10 and not out.get("Failed")
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "fine"}, {"Id": "bad", "MessageBody": "x", "DelaySeconds": 901}])
    assert [s["Id"] for s in out["Successful"]] == ["ok"]
    assert out["Failed"][0]["Id"] == "bad" and out["Failed"][0]["SenderFault"] is True
    for entries, code in (
        ([{"Id": str(i), "MessageBody": "x"} for i in range(11)],
         "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}],
         "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "no spaces", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
    ):
        with pytest.raises(Exception) as e:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert error_code(e.value) == code
    got = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        got += batch
        out = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        assert len(out["Successful"]) == len(batch)
    assert sorted(m["Body"] for m in got) == sorted([f"m{i}" for i in range(10)] + ["fine"])

    sqs.send_message(QueueUrl=url, MessageBody="doomed")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(Exception) as e:
        sqs.purge_queue(QueueUrl=url)
    assert error_code(e.value) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_a_message_received_too_often_moves_to_the_dead_letter_queue(sqs):
    dlq = new_queue(sqs)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = new_queue(sqs, RedrivePolicy=f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 2}}')
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    moved = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]
    # A move task takes it back to the queue it came from.
    sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=moved[0]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    back = []
    for _ in range(50):
        back = sqs.receive_message(QueueUrl=url).get("Messages", [])
        if back:
            break
        time.sleep(0.2)
    assert [m["Body"] for m in back] == ["poison"]
    tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert tasks[0]["Status"] in ("RUNNING", "COMPLETED")
    assert tasks[0]["ApproximateNumberOfMessagesToMove"] == 1
    with pytest.raises(Exception) as e:
        sqs.cancel_message_move_task(TaskHandle="no-such-task")
    assert error_code(e.value) == "ResourceNotFoundException"
    src_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with pytest.raises(Exception) as e:
        sqs.start_message_move_task(SourceArn=src_arn)
    assert error_code(e.value) == "InvalidParameterValue", "only a dead-letter queue is a source"
    assert handle


def test_a_redrive_allow_policy_says_which_queues_may_use_a_dead_letter_queue(sqs):
    def arn_of(url):
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def redrive(dlq_arn):
        return {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})}

    allowed_name = unique_name("allowed")
    allowed_arn = arn_of(new_queue(sqs)).rsplit(":", 1)[0] + ":" + allowed_name
    dlq = new_queue(sqs, RedriveAllowPolicy=json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [allowed_arn]}))
    dlq_arn = arn_of(dlq)
    sqs.create_queue(QueueName=allowed_name, Attributes=redrive(dlq_arn))
    with pytest.raises(Exception) as e:
        sqs.create_queue(QueueName=unique_name("stranger"), Attributes=redrive(dlq_arn))
    assert error_code(e.value) == "InvalidParameterValue"
    other = new_queue(sqs)
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": '{"redrivePermission": "denyAll"}'})
    with pytest.raises(Exception) as e:
        sqs.set_queue_attributes(QueueUrl=other, Attributes=redrive(dlq_arn))
    assert error_code(e.value) == "InvalidParameterValue"
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": '{"redrivePermission": "allowAll"}'})
    sqs.set_queue_attributes(QueueUrl=other, Attributes=redrive(dlq_arn))
    for bad in ('{"redrivePermission": "byQueue"}', '{"redrivePermission": "everyone"}',
                json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [allowed_arn] * 11})):
        with pytest.raises(Exception) as e:
            sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": bad})
        assert error_code(e.value) == "InvalidAttributeValue", bad


def test_bodies_are_sealed_at_rest_and_survive_kill_9(sluice):
    """Under SQS-managed encryption, the account's AWS managed key and a customer key
    alike, no body is in the clear on disk and every message outlives kill -9."""
    sqs = sluice.client(service="sqs")
    kms = sluice.client(service="kms")
    key_id = kms.create_key(Description="queue key")["KeyMetadata"]["KeyId"]
    urls = [new_queue(sqs), new_queue(sqs, KmsMasterKeyId="alias/aws/sqs"),
            new_queue(sqs, KmsMasterKeyId=key_id, KmsDataKeyReusePeriodSeconds="60")]
    marker = "sqs-marker-" + unique_name("m")
    ids = {sqs.send_message(QueueUrl=url, MessageBody=f"{marker} {i}")["MessageId"]
           for i in range(20) for url in urls}
    if sluice.backend == "sqlite":
        for root, _, files in os.walk(sluice.data_dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    assert marker.encode() not in fh.read(), f"{f} holds a message body in the clear"
    sluice.kill()
    sluice.start()
    sqs = sluice.client(service="sqs")
    got = set()
    for url in urls:
        while True:
            batch = sqs.receive_message(QueueUrl=url.replace(url.split("/")[2], f"127.0.0.1:{sluice.port}"),
                                        MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            assert all(m["Body"].startswith(marker) for m in batch)
            got |= {m["MessageId"] for m in batch}
    assert got == ids


@pytest.fixture
def tenant(sluice):
    """A fresh tenant: its admin's SQS client and keys, and users alice (no policy of
    her own) and bob (a Cedar permit for every SQS action)."""
    r = sluice.admin("POST", "/admin/v1/tenants", {"name": unique_name("sqspol")})
    assert r.status == 201, r
    t = r.json()
    account = t["account_id"]
    admin = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
    path = f"/admin/v1/tenants/{account}/principals"
    out = {"account": account, "admin": sluice.client(service="sqs", credentials=admin), "admin_keys": admin}
    for name in ("alice", "bob"):
        assert sluice.admin("POST", path, {"kind": "user", "name": name}, credentials=admin).status == 201
        r = sluice.admin("POST", f"{path}/user/{name}/access-keys", credentials=admin)
        out[name + "_keys"] = (r.json()["access_key_id"], r.json()["secret_access_key"])
        out[name] = sluice.client(service="sqs", credentials=out[name + "_keys"])
        out[name + "_arn"] = f"arn:aws:iam::{account}:user/{name}"
    bob_may = ('permit (principal == Sluice::User::"%s", action, resource is Sluice::MessageQueue);\n'
               % out["bob_arn"])
    sluice.apply_policy(account, "bob-sqs", bob_may, credentials=admin)
    return out


def test_a_queue_policy_allows_and_denies_for_its_queue(sluice, tenant):
    """The Policy attribute decides with the tenant's Cedar policies: an Allow lets a
    user the tenant's policies do not, a Deny refuses what they allow, for this queue
    alone; it is given back as written, and a policy that cannot be read is refused."""
    admin, alice, bob, account = tenant["admin"], tenant["alice"], tenant["bob"], tenant["account"]
    name = unique_name("guarded")
    arn = f"arn:aws:sqs:us-east-1:{account}:{name}"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "alice-sends", "Effect": "Allow", "Principal": {"AWS": tenant["alice_arn"]},
         "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": arn},
        {"Sid": "no-purge", "Effect": "Deny", "Principal": "*", "Action": "sqs:PurgeQueue",
         "Resource": "*"},
        {"Sid": "tls-only", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]})
    url = admin.create_queue(QueueName=name, Attributes={"Policy": policy})["QueueUrl"]
    other = admin.create_queue(QueueName=unique_name("open"))["QueueUrl"]
    got = admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
    assert got == {"Policy": policy}
    assert "Policy" not in admin.get_queue_attributes(QueueUrl=other, AttributeNames=["All"])["Attributes"]

    assert alice.get_queue_url(QueueName=name)["QueueUrl"] == url
    alice.send_message(QueueUrl=url, MessageBody="from alice")
    with pytest.raises(Exception) as e:
        alice.receive_message(QueueUrl=url)
    assert error_code(e.value) == "AccessDeniedException"
    with pytest.raises(Exception) as e:
        alice.send_message(QueueUrl=other, MessageBody="x")
    assert error_code(e.value) == "AccessDeniedException"
    # bob's own permit reaches everything but what the queue's Deny refuses.
    assert bob.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "from alice"
    with pytest.raises(Exception) as e:
        bob.purge_queue(QueueUrl=url)
    assert error_code(e.value) == "AccessDeniedException"
    bob.purge_queue(QueueUrl=other)

    # A policy that names what Sluice cannot decide is refused and changes nothing.
    unreadable = json.dumps({"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": tenant["alice_arn"]},
                                            "Action": "sqs:*", "Resource": "*"}]})
    for bad in (unreadable, "{not json"):
        with pytest.raises(Exception) as e:
            admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": bad})
        assert error_code(e.value) == "InvalidAttributeValue"
    assert admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"] == {"Policy": policy}
    refused = unique_name("refused")
    with pytest.raises(Exception) as e:
        admin.create_queue(QueueName=refused, Attributes={"Policy": unreadable})
    assert error_code(e.value) == "InvalidAttributeValue"
    with pytest.raises(Exception) as e:
        admin.get_queue_url(QueueName=refused)
    assert error_code(e.value) == "AWS.SimpleQueueService.NonExistentQueue"

    # An empty Policy removes it; a queue made again under the name starts without one.
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Attributes" not in admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    with pytest.raises(Exception) as e:
        alice.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e.value) == "AccessDeniedException"
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    admin.delete_queue(QueueUrl=url)
    url = admin.create_queue(QueueName=name)["QueueUrl"]
    with pytest.raises(Exception) as e:
        alice.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e.value) == "AccessDeniedException"


def test_a_queue_key_is_kmss_to_allow_and_its_state_decides(sluice, tenant):
    """A queue with a KmsMasterKeyId seals under that key: a sender needs
    kms:GenerateDataKey on it and a receiver kms:Decrypt (Cedar decides both); a key
    that does not exist, or is disabled, fails sends and receives with SQS's KMS
    errors. Setting SqsManagedSseEnabled takes the key off, and both at once is refused."""
    admin, bob, account = tenant["admin"], tenant["bob"], tenant["account"]
    kms = sluice.client(service="kms", credentials=tenant["admin_keys"])
    key = kms.create_key(Description="orders")["KeyMetadata"]
    kms.create_alias(AliasName="alias/orders", TargetKeyId=key["KeyId"])
    url = admin.create_queue(QueueName=unique_name("keyed"),
                             Attributes={"KmsMasterKeyId": "alias/orders"})["QueueUrl"]
    got = admin.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (got["KmsMasterKeyId"], got["KmsDataKeyReusePeriodSeconds"], got["SqsManagedSseEnabled"]) == \
        ("alias/orders", "300", "false")
    admin.send_message(QueueUrl=url, MessageBody="sealed under orders")

    # bob may use every queue but no key: KMS says no, in SQS's words.
    with pytest.raises(Exception) as e:
        bob.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e.value) == "KmsAccessDenied"
    with pytest.raises(Exception) as e:
        bob.receive_message(QueueUrl=url)
    assert error_code(e.value) == "KmsAccessDenied"
    # Allowed to decrypt under this key alone, he reads (and still may not send).
    sluice.apply_policy(account, "bob-decrypts", (
        'permit (principal == Sluice::User::"%s", action == Sluice::Action::"kms:Decrypt", '
        'resource == Sluice::Key::"%s");' % (tenant["bob_arn"], key["Arn"])),
        credentials=tenant["admin_keys"])
    # The refused receive handed nothing out, and left the message visible.
    msgs = bob.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in msgs] == ["sealed under orders"]
    with pytest.raises(Exception) as e:
        bob.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e.value) == "KmsAccessDenied"

    # A key that does not exist is found out when a message is sealed.
    nowhere = admin.create_queue(QueueName=unique_name("nokey"),
                                 Attributes={"KmsMasterKeyId": "alias/nowhere"})["QueueUrl"]
    with pytest.raises(Exception) as e:
        admin.send_message(QueueUrl=nowhere, MessageBody="x")
    assert error_code(e.value) == "KmsNotFound"

    # A disabled key makes no new data keys: a new queue under it cannot send.
    kms.disable_key(KeyId=key["KeyId"])
    fresh = admin.create_queue(QueueName=unique_name("disabled"),
                               Attributes={"KmsMasterKeyId": key["Arn"]})["QueueUrl"]
    with pytest.raises(Exception) as e:
        admin.send_message(QueueUrl=fresh, MessageBody="x")
    assert error_code(e.value) == "KmsDisabled"
    kms.enable_key(KeyId=key["KeyId"])
    admin.send_message(QueueUrl=fresh, MessageBody="x")

    # A key that cannot seal: a signing key, a key pending deletion; a name no key has.
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    leaving = kms.create_key(Description="leaving")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=leaving, PendingWindowInDays=7)
    for key_ref, code in ((signing, "KmsInvalidKeyUsage"), (leaving, "KmsInvalidState")):
        q = admin.create_queue(QueueName=unique_name("unusable"),
                               Attributes={"KmsMasterKeyId": key_ref})["QueueUrl"]
        with pytest.raises(Exception) as e:
            admin.send_message(QueueUrl=q, MessageBody="x")
        assert error_code(e.value) == code, key_ref
    for bad in ("alias/has space", "k" * 2049):
        with pytest.raises(Exception) as e:
            admin.create_queue(QueueName=unique_name("badkey"), Attributes={"KmsMasterKeyId": bad})
        assert error_code(e.value) == "InvalidAttributeValue", bad[:20]

    # One kind of encryption at a time.
    with pytest.raises(Exception) as e:
        admin.set_queue_attributes(QueueUrl=fresh, Attributes={"KmsMasterKeyId": key["KeyId"],
                                                              "SqsManagedSseEnabled": "true"})
    assert error_code(e.value) == "InvalidAttributeValue"
    admin.set_queue_attributes(QueueUrl=fresh, Attributes={"SqsManagedSseEnabled": "true"})
    got = admin.get_queue_attributes(QueueUrl=fresh, AttributeNames=["All"])["Attributes"]
    assert got["SqsManagedSseEnabled"] == "true" and "KmsMasterKeyId" not in got
    assert "KmsDataKeyReusePeriodSeconds" not in got
    # Messages sealed under the key still open after the queue left it.
    assert admin.receive_message(QueueUrl=fresh)["Messages"][0]["Body"] == "x"
    with pytest.raises(Exception) as e:
        admin.set_queue_attributes(QueueUrl=fresh, Attributes={"KmsDataKeyReusePeriodSeconds": "59"})
    assert error_code(e.value) == "InvalidAttributeValue"


def test_add_and_remove_permission_edit_the_policy(sluice, tenant):
    admin, alice, account = tenant["admin"], tenant["alice"], tenant["account"]
    url = admin.create_queue(QueueName=unique_name("shared"))["QueueUrl"]
    arn = admin.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    admin.add_permission(QueueUrl=url, Label="senders", AWSAccountIds=[account], Actions=["SendMessage"])
    policy = json.loads(admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Id"] == f"{arn}/SQSDefaultPolicy"
    [statement] = policy["Statement"]
    assert statement["Sid"] == "senders" and statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{account}:root"]}
    assert statement["Action"] == ["SQS:SendMessage"] and statement["Resource"] == arn
    # The account's root delegates to the account's own policies: alice gains nothing.
    with pytest.raises(Exception) as e:
        alice.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e.value) == "AccessDeniedException"

    for bad in (dict(Label="senders", AWSAccountIds=[account], Actions=["SendMessage"]),   # taken
                dict(Label="owner", AWSAccountIds=[account], Actions=["DeleteQueue"]),    # owner's only
                dict(Label="bad label", AWSAccountIds=[account], Actions=["SendMessage"]),
                dict(Label="many", AWSAccountIds=[account] * 8, Actions=["SendMessage"]),
                dict(Label="acct", AWSAccountIds=["12345"], Actions=["SendMessage"])):
        with pytest.raises(Exception) as e:
            admin.add_permission(QueueUrl=url, **bad)
        assert error_code(e.value) == "InvalidParameterValue", bad
    with pytest.raises(Exception) as e:
        alice.add_permission(QueueUrl=url, Label="mine", AWSAccountIds=[account], Actions=["*"])
    assert error_code(e.value) == "AccessDeniedException"

    # Over the query protocol too.
    status, doc = query(sluice, {"Action": "AddPermission", "QueueUrl": url, "Label": "readers",
                                 "AWSAccountId.1": account, "ActionName.1": "ReceiveMessage",
                                 "ActionName.2": "DeleteMessage"}, credentials=tenant["admin_keys"])
    assert status == 200, ET_text(doc)
    policy = json.loads(admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"senders", "readers"}
    readers = next(s for s in policy["Statement"] if s["Sid"] == "readers")
    assert sorted(readers["Action"]) == ["SQS:DeleteMessage", "SQS:ReceiveMessage"]

    admin.remove_permission(QueueUrl=url, Label="senders")
    with pytest.raises(Exception) as e:
        admin.remove_permission(QueueUrl=url, Label="senders")
    assert error_code(e.value) == "InvalidParameterValue"
    status, doc = query(sluice, {"Action": "RemovePermission", "QueueUrl": url, "Label": "readers"},
                        credentials=tenant["admin_keys"])
    assert status == 200, ET_text(doc)
    assert "Attributes" not in admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])


def ET_text(doc) -> str:
    import xml.etree.ElementTree as ET

    return ET.tostring(doc, encoding="unicode")


def test_receivers_on_two_processes_never_share_a_message(make_split):
    """Two data planes on one Postgres: many receivers on one queue, each message handed
    to exactly one of them within its visibility timeout, none lost."""
    dep = make_split(data_planes=2)
    clients = [srv.client(service="sqs") for srv in dep.data]
    url = clients[0].create_queue(QueueName=unique_name("shared"))["QueueUrl"]
    sent = set()
    for start in range(0, 300, 10):
        out = clients[start % 2].send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)])
        sent |= {s["MessageId"] for s in out["Successful"]}
    assert len(sent) == 300
    received: list[str] = []
    lock = threading.Lock()

    def receiver(client):
        empty = 0
        while empty < 3:
            batch = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=300).get("Messages", [])
            if not batch:
                empty += 1
                continue
            empty = 0
            with lock:
                received.extend(m["MessageId"] for m in batch)
            client.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])

    threads = [threading.Thread(target=receiver, args=(dep.data[i % 2].client(service="sqs"),))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(received) == len(set(received)), "a message went to two receivers"
    assert set(received) == sent, "every message was received"


def test_requests_are_billed_in_64_kib_chunks(sluice, sqs):
    name = unique_name("billed")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]                         # 1
    sqs.send_message(QueueUrl=url, MessageBody="x" * (100 * 1024))             # 2 chunks
    sqs.send_message_batch(QueueUrl=url, Entries=[                             # 1
        {"Id": str(i), "MessageBody": "small"} for i in range(10)])
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)                    # 1 or 2
    now = int(time.time() * 1000)
    report = sluice.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/usage?from={now - 3_600_000}&to={now + 60_000}")
    assert report.status == 200, report.body
    quantity = sum(float(l["quantity"]) for l in report.json()["lines"]
                   if l["metric"] == "sqs_requests" and l["stream"] == name)
    # CreateQueue 1, the 100 KiB message 2, the batch 1, the receive 1 (a small
    # message) or 2 (the large one).
    assert quantity in (5, 6), report.json()["lines"][-5:]

    # A receive is billed by what it hands out; one that finds nothing, once.
    big = unique_name("billedbig")
    url = sqs.create_queue(QueueName=big)["QueueUrl"]                          # 1
    sqs.send_message(QueueUrl=url, MessageBody="y" * (100 * 1024))             # 2
    assert len(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"]) == 100 * 1024  # 2
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)       # 1
    now = int(time.time() * 1000)
    report = sluice.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/usage?from={now - 3_600_000}&to={now + 60_000}")
    quantity = sum(float(l["quantity"]) for l in report.json()["lines"]
                   if l["metric"] == "sqs_requests" and l["stream"] == big)
    assert quantity == 6, report.json()["lines"][-5:]


def test_fifo_queues_keep_order_per_group_lock_groups_and_deduplicate(sqs):
    name = unique_name("f") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    for bad in ({"QueueName": unique_name("f") + ".fifo"},
                {"QueueName": unique_name("f"), "Attributes": {"FifoQueue": "true"}}):
        with pytest.raises(Exception) as e:
            sqs.create_queue(**bad)
        assert error_code(e.value) == "InvalidParameterValue", bad
    sent = {}
    for i in range(5):
        for group in ("a", "b", "c"):
            out = sqs.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group,
                                   MessageDeduplicationId=f"{group}-{i}")
            sent[f"{group}{i}"] = out
    seqs = [int(sent[f"{g}{i}"]["SequenceNumber"]) for i in range(5) for g in ("a", "b", "c")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 15
    # A duplicate within five minutes is accepted and answers the first message.
    dup = sqs.send_message(QueueUrl=url, MessageBody="a0 again", MessageGroupId="a",
                           MessageDeduplicationId="a-0")
    assert dup["MessageId"] == sent["a0"]["MessageId"]
    with pytest.raises(Exception) as e:
        sqs.send_message(QueueUrl=url, MessageBody="no group", MessageDeduplicationId="x")
    assert error_code(e.value) == "MissingParameter"
    with pytest.raises(Exception) as e:
        sqs.send_message(QueueUrl=url, MessageBody="no dedup", MessageGroupId="a")
    assert error_code(e.value) == "InvalidParameterValue"

    # One message of group a in flight locks the group.
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                MessageSystemAttributeNames=["All"])["Messages"][0]
    assert first["Body"] == "a0" and first["Attributes"]["MessageGroupId"] == "a"
    assert first["Attributes"]["SequenceNumber"] == sent["a0"]["SequenceNumber"]
    others = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert others and all(not m["Body"].startswith("a") for m in others), [m["Body"] for m in others]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    # Draining in receives of ten: each group's messages come in the order sent, once.
    by_group: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        for m in batch:
            by_group[m["Body"][0]].append(m["Body"])
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    assert by_group == {"a": [f"a{i}" for i in range(1, 5)], "b": [f"b{i}" for i in range(5)],
                        "c": [f"c{i}" for i in range(5)]}

    cbd = sqs.create_queue(QueueName=unique_name("cbd") + ".fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    one = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    two = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    assert one["MessageId"] == two["MessageId"]
    attrs = sqs.get_queue_attributes(QueueUrl=cbd, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and attrs["ContentBasedDeduplication"] == "true"
    assert attrs["ApproximateNumberOfMessages"] == "1"


def test_a_fifo_receive_retried_with_its_attempt_id_gets_the_same_messages(sqs):
    """ReceiveRequestAttemptId: a retry within five minutes hands out the same messages
    under the same receipt handles (its visibility timeout starting again); once one of
    them is deleted the id is a receive of its own; a bad id is refused."""
    url = sqs.create_queue(QueueName=unique_name("attempt") + ".fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for body in ("a0", "a1", "b0", "c0"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=body[0])

    def receive(**kw):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, **kw).get("Messages", [])
        return [(m["Body"], m["ReceiptHandle"]) for m in got]

    first = receive(ReceiveRequestAttemptId="try-1")
    assert [b for b, _ in first] == ["a0", "a1"]
    assert receive(ReceiveRequestAttemptId="try-1") == first
    # Another receive (another id, or none) gets what is left: a is in flight.
    assert [b for b, _ in receive(ReceiveRequestAttemptId="try-2", VisibilityTimeout=0)] == ["b0", "c0"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0][1])
    again = receive(ReceiveRequestAttemptId="try-1")
    assert [b for b, _ in again] != ["a0", "a1"] and "a0" not in [b for b, _ in again]
    for bad in ("x" * 129, "has space"):
        with pytest.raises(Exception) as e:
            receive(ReceiveRequestAttemptId=bad)
        assert error_code(e.value) == "InvalidParameterValue", bad


def query(sluice, params: dict, path: str = "/", credentials: tuple[str, str] | None = None):
    """A signed query-protocol request (form-encoded Action=...), as older SDKs send it:
    the status and the XML answer with its namespace stripped."""
    import http.client
    import re as _re
    import urllib.parse
    import xml.etree.ElementTree as ET

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = urllib.parse.urlencode({"Version": "2012-11-05", **params}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    req = AWSRequest(method="POST", url=sluice.endpoint + path, data=body, headers=headers)
    SigV4Auth(Credentials(*(credentials or sluice.credentials())), "sqs", "us-east-1").add_auth(req)
    conn = http.client.HTTPSConnection("127.0.0.1", sluice.port, context=sluice.ssl_context(), timeout=60)
    try:
        conn.request("POST", path, body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    return resp.status, ET.fromstring(_re.sub(r' xmlns="[^"]+"', "", text, count=1))


def test_the_query_protocol_sends_and_receives(sluice, sqs):
    name = unique_name("legacy")
    status, doc = query(sluice, {"Action": "CreateQueue", "QueueName": name,
                                 "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "40"})
    assert status == 200, doc
    url = doc.findtext("CreateQueueResult/QueueUrl")
    assert url.endswith(f"/{ACCOUNT_ID}/{name}")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "40"
    # Posted to the queue URL's path, without a QueueUrl parameter.
    status, doc = query(sluice, {"Action": "SendMessage", "MessageBody": "from an old SDK",
                                 "MessageAttribute.1.Name": "k",
                                 "MessageAttribute.1.Value.DataType": "String",
                                 "MessageAttribute.1.Value.StringValue": "v"},
                        path=f"/{ACCOUNT_ID}/{name}")
    assert status == 200, doc
    assert doc.findtext("SendMessageResult/MD5OfMessageBody") == hashlib.md5(b"from an old SDK").hexdigest()
    message_id = doc.findtext("SendMessageResult/MessageId")
    assert doc.findtext("ResponseMetadata/RequestId")
    status, doc = query(sluice, {"Action": "ReceiveMessage", "QueueUrl": url,
                                 "AttributeName.1": "All", "MessageAttributeName.1": "All"})
    assert status == 200, doc
    m = doc.find("ReceiveMessageResult/Message")
    assert m.findtext("MessageId") == message_id and m.findtext("Body") == "from an old SDK"
    assert m.findtext("MessageAttribute/Name") == "k"
    assert m.findtext("MessageAttribute/Value/StringValue") == "v"
    names = {a.findtext("Name") for a in m.findall("Attribute")}
    assert {"SenderId", "SentTimestamp", "ApproximateReceiveCount"} <= names
    status, doc = query(sluice, {"Action": "DeleteMessage", "QueueUrl": url,
                                 "ReceiptHandle": m.findtext("ReceiptHandle")})
    assert status == 200, doc
    status, doc = query(sluice, {"Action": "SendMessageBatch", "QueueUrl": url,
                                 "SendMessageBatchRequestEntry.1.Id": "a",
                                 "SendMessageBatchRequestEntry.1.MessageBody": "one",
                                 "SendMessageBatchRequestEntry.2.Id": "b",
                                 "SendMessageBatchRequestEntry.2.MessageBody": "two"})
    assert status == 200, doc
    assert [e.findtext("Id") for e in doc.findall("SendMessageBatchResult/SendMessageBatchResultEntry")] == ["a", "b"]
    # What the query protocol sent, a JSON client receives.
    bodies = {m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]}
    assert bodies == {"one", "two"}
    status, doc = query(sluice, {"Action": "GetQueueUrl", "QueueName": unique_name("missing")})
    assert status == 400
    assert doc.findtext("Error/Code") == "AWS.SimpleQueueService.NonExistentQueue"
    assert doc.findtext("Error/Type") == "Sender"
    status, doc = query(sluice, {"Action": "NoSuchAction"})
    assert status == 400 and doc.findtext("Error/Code") == "InvalidAction"


def test_the_sqs_bench_phase_sends_receives_and_deletes(binary, sluice):
    import re
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    p = subprocess.run([str(binary), "bench", "--endpoint", f"127.0.0.1:{sluice.port}", "--ca", sluice.ca,
                        "--credentials", str(sluice.credentials_file), "--seconds", "1",
                        "--connections", "2", "--shards", "1", "--phases", "sqs"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(l for l in p.stdout.splitlines() if l.startswith("SQS"))
    assert float(re.search(r"([0-9.]+) records/s", line).group(1)) > 0, line
    urls = sluice.client(service="sqs").list_queues(QueueNamePrefix="bench-sqs-").get("QueueUrls", [])
    assert not urls, "the bench leaves no queue"


def test_the_bench_compares_sqs_with_moto_in_one_run(binary, sluice):
    """`--compare` runs the same SQS load against moto's server (plain HTTP) after
    Sluice and prints both rates and their ratio, the p999 latencies, and, given the
    servers' process ids, the CPU time each spent per request."""
    import re
    import subprocess

    moto = MotoServer(bucket=unique_name("cmp").lower()).start()
    try:
        port = moto.endpoint.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        p = subprocess.run([str(binary), "bench", "--endpoint", f"127.0.0.1:{sluice.port}", "--ca", sluice.ca,
                            "--credentials", str(sluice.credentials_file), "--seconds", "1",
                            "--connections", "2", "--phases", "sqs", "--compare", f"127.0.0.1:{port}",
                            "--server-pid", str(sluice.proc.pid), "--compare-pid", str(moto.proc.pid)],
                           env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        lines = [l for l in p.stdout.splitlines() if l.startswith("SQS")]
        assert len(lines) == 2 and all(float(re.search(r"([0-9.]+) records/s", l).group(1)) > 0 for l in lines), p.stdout + p.stderr
        ratio = next(l for l in p.stdout.splitlines() if l.startswith("sqs") and "ratio" in l)
        assert re.search(r"ratio +[0-9.]+x", ratio), ratio
        assert all(re.search(r"p999 +[0-9.]+ ms", l) for l in lines), p.stdout
        # Each server's CPU time per request, read from /proc: both did work.
        cpu = [re.search(r"CPU per request: server ([0-9]+) us, bench ([0-9]+) us", l)
               for l in p.stdout.splitlines() if "CPU per request" in l]
        assert len(cpu) == 2 and all(m and int(m.group(1)) > 0 for m in cpu), p.stdout
    finally:
        moto.close()


def test_queue_gauges_reach_prometheus(sluice, sqs):
    name = unique_name("gauged")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)])
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    label = f'queue="{ACCOUNT_ID}/{name}"'

    def gauges():
        text = sluice.admin("GET", "/metrics").body.decode()
        found = {line.split("{")[0]: float(line.rsplit(" ", 1)[1])
                 for line in text.splitlines() if label in line and line.startswith("sluice_sqs_")}
        return found if "sluice_sqs_messages_visible" in found else None

    deadline = time.monotonic() + 40
    found = None
    while found is None and time.monotonic() < deadline:
        found = gauges()
        time.sleep(1)
    assert found, "the queue's gauges were published (every 15 s)"
    assert found["sluice_sqs_messages_visible"] == 2
    assert found["sluice_sqs_messages_in_flight"] == 1
    assert found["sluice_sqs_oldest_message_age_seconds"] >= 0


def test_limits_and_bad_input_get_sqs_errors(sluice):
    sqs = sluice.client(service="sqs", validate=False)
    url = new_queue(sqs)
    for kw in ({"MaxNumberOfMessages": 11}, {"MaxNumberOfMessages": 0}, {"WaitTimeSeconds": 21},
               {"VisibilityTimeout": 43201}):
        with pytest.raises(Exception) as e:
            sqs.receive_message(QueueUrl=url, **kw)
        assert error_code(e.value) == "InvalidParameterValue", kw
    string = {"DataType": "String", "StringValue": "v"}
    for attrs in ({f"a{i}": string for i in range(11)},               # more than ten
                  {"AWS.reserved": string},                            # a reserved prefix
                  {"n": {"DataType": "Number", "StringValue": "ten"}},  # not a number
                  {"e": {"DataType": "String", "StringValue": ""}},     # empty
                  {"t": {"DataType": "Date", "StringValue": "x"}}):     # no such type
        with pytest.raises(Exception) as e:
            sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
        assert error_code(e.value) == "InvalidParameterValue", attrs
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={f"a{i}": string for i in range(10)})
    with pytest.raises(Exception) as e:
        sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(51)})
    assert error_code(e.value) == "InvalidParameterValue"
    for bad in (0, 1001):
        with pytest.raises(Exception) as e:
            sqs.list_queues(MaxResults=bad)
        assert error_code(e.value) == "InvalidParameterValue", bad
    with pytest.raises(Exception) as e:
        sqs.list_queues(MaxResults=5, NextToken="!!not a token!!")
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(Exception) as e:
        sqs.create_queue(QueueName="has space")
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(Exception) as e:
        sqs.send_message(QueueUrl=f"{sluice.endpoint}/not-an-account/q", MessageBody="x")
    assert error_code(e.value) == "InvalidAddress"
