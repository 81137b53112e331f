"""SNS through boto3's `sns` client against the real binary: topics (attributes, tags,
paging), subscriptions of SQS queues (envelope, raw, filter policies on attributes and
on the body), Publish and PublishBatch fanning out into Sluice's queues, FIFO topics
into FIFO queues in order, SNS's error codes, and Cedar deciding who may subscribe and
publish (a subscription delivers with its subscriber's rights)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError

from harness import ACCOUNT_ID, REGION, unique_name


@pytest.fixture
def sns(server):
    return server.client(service="sns")


@pytest.fixture
def sqs(server):
    return server.client(service="sqs")


def sns_error(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def queue(sqs, name: str | None = None, **attributes) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name or unique_name("snsq"),
                           Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url: str, want: int, timeout: float = 10) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # Nothing more arrives than was sent.
    assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages")
    return got


def verify_signature(server, envelope: dict) -> None:
    """Checks an envelope's signature as a receiver does: the certificate fetched from
    SigningCertURL (over Sluice's TLS), SNS's canonical string, SHA256withRSA."""
    import urllib.request

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    assert envelope["SignatureVersion"] == "2"
    url = envelope["SigningCertURL"]
    assert url.startswith("https://127.0.0.1:") and url.endswith(".pem"), url
    with urllib.request.urlopen(url, context=server.ssl_context(), timeout=10) as r:
        cert = x509.load_pem_x509_certificate(r.read())
    fields = ["Message", "MessageId"] + (["Subject"] if "Subject" in envelope else []) + [
        "Timestamp", "TopicArn", "Type"]
    text = "".join(f"{k}\n{envelope[k]}\n" for k in fields).encode()
    signature = base64.b64decode(envelope["Signature"])
    cert.public_key().verify(signature, text, padding.PKCS1v15(), hashes.SHA256())  # raises if not
    tampered = dict(envelope, Message=envelope["Message"] + "!")
    bad = "".join(f"{k}\n{tampered[k]}\n" for k in fields).encode()
    with pytest.raises(Exception):
        cert.public_key().verify(signature, bad, padding.PKCS1v15(), hashes.SHA256())


def test_topics_are_made_described_tagged_listed_and_deleted(sns):
    name = unique_name("topic")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Orders"},
                           Tags=[{"Key": "team", "Value": "data"}])["TopicArn"]
    assert arn == f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
    # CreateTopic is idempotent; different attributes are refused.
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Orders"})["TopicArn"] == arn
    code, status, message = sns_error(lambda: sns.create_topic(Name=name, Attributes={"DisplayName": "Other"}))
    assert (code, status) == ("InvalidParameter", 400) and "different attributes" in message
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == ACCOUNT_ID and attrs["DisplayName"] == "Orders"
    assert attrs["SubscriptionsConfirmed"] == "0" and "EffectiveDeliveryPolicy" in attrs
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Renamed")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Renamed"
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}])
    tags = sns.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "data")]
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]
    listed = [t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]]
    assert arn in listed
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting what is gone succeeds, as on AWS
    code, status, _ = sns_error(lambda: sns.get_topic_attributes(TopicArn=arn))
    assert (code, status) == ("NotFound", 404)


def test_topic_listing_pages_by_100(sns):
    prefix = unique_name("page")
    arns = {sns.create_topic(Name=f"{prefix}-{i:03}")["TopicArn"] for i in range(105)}
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and "NextToken" in first
    seen = {t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]}
    assert arns <= seen
    for arn in arns:
        sns.delete_topic(TopicArn=arn)


def test_bad_requests_get_sns_error_codes(sns):
    for bad in ("", "a b", "x" * 257, "plain.fifo"):
        code, status, _ = sns_error(lambda: sns.create_topic(Name=bad))
        assert (code, status) == ("InvalidParameter", 400), bad
    code, _, message = sns_error(lambda: sns.create_topic(Name=unique_name("t"), Attributes={"Policy": "{}"}))
    assert code == "InvalidParameter" and "Cedar" in message
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{unique_name('none')}"
    for call in (lambda: sns.publish(TopicArn=missing, Message="m"),
                 lambda: sns.subscribe(TopicArn=missing, Protocol="sqs", Endpoint="arn:aws:sqs:x:000000000000:q"),
                 lambda: sns.list_subscriptions_by_topic(TopicArn=missing)):
        assert sns_error(call)[:2] == ("NotFound", 404)
    arn = sns.create_topic(Name=unique_name("t"))["TopicArn"]
    assert sns_error(lambda: sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x"))[0] == "InvalidParameter"
    assert sns_error(lambda: sns.publish(TopicArn=arn, Message="m", Subject="two\nlines"))[0] == "InvalidParameter"
    assert sns_error(lambda: sns.publish(TopicArn=arn, Message="x" * 262_145))[0] == "InvalidParameter"
    assert sns_error(lambda: sns.publish(TopicArn=arn, Message="m", MessageAttributes={
        "n": {"DataType": "Number", "StringValue": "not a number"}}))[0] == "InvalidParameter"
    assert sns_error(lambda: sns.publish(TopicArn=arn, Message="m", MessageStructure="json"))[0] == "InvalidParameter"
    code, _, _ = sns_error(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "1"}, {"Id": "a", "Message": "2"}]))
    assert code == "BatchEntryIdsNotDistinct"
    sns.delete_topic(TopicArn=arn)


def test_a_topic_fans_out_to_queues_as_envelope_raw_and_filtered(server, sns, sqs):
    topic = sns.create_topic(Name=unique_name("fan"))["TopicArn"]
    env_url, env_arn = queue(sqs)
    raw_url, raw_arn = queue(sqs)
    red_url, red_arn = queue(sqs)
    body_url, body_arn = queue(sqs)
    env_sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn,
                            ReturnSubscriptionArn=True)["SubscriptionArn"]
    assert env_sub.startswith(topic + ":")
    # Subscribing the same endpoint again answers the same subscription.
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"] == env_sub
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=red_arn,
                  Attributes={"FilterPolicy": json.dumps({"color": ["red"], "size": [{"numeric": [">=", 10]}]})})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=body_arn,
                  Attributes={"FilterPolicy": json.dumps({"order": {"status": ["paid"]}}),
                              "FilterPolicyScope": "MessageBody"})
    attrs = sns.get_subscription_attributes(SubscriptionArn=env_sub)["Attributes"]
    assert attrs["TopicArn"] == topic and attrs["Endpoint"] == env_arn and attrs["Protocol"] == "sqs"
    assert attrs["PendingConfirmation"] == "false" and attrs["RawMessageDelivery"] == "false"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert len(subs) == 4 and {s["Endpoint"] for s in subs} == {env_arn, raw_arn, red_arn, body_arn}
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "4"

    red = {"color": {"DataType": "String", "StringValue": "red"}, "size": {"DataType": "Number", "StringValue": "12"}}
    first = sns.publish(TopicArn=topic, Message="a red one", Subject="hello", MessageAttributes=red)["MessageId"]
    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"status": "paid"}}),
                MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}})

    envelopes = [json.loads(m["Body"]) for m in drain(sqs, env_url, 2)]
    assert [e["Type"] for e in envelopes] == ["Notification", "Notification"]
    by_id = {e["MessageId"]: e for e in envelopes}
    e = by_id[first]
    assert e["TopicArn"] == topic and e["Message"] == "a red one" and e["Subject"] == "hello"
    assert e["MessageAttributes"]["color"] == {"Type": "String", "Value": "red"}
    assert e["Timestamp"].endswith("Z")
    for envelope in envelopes:
        verify_signature(server, envelope)

    raws = drain(sqs, raw_url, 2)
    assert sorted(m["Body"] for m in raws) == sorted(["a red one", json.dumps({"order": {"status": "paid"}})])
    red_raw = next(m for m in raws if m["Body"] == "a red one")
    assert red_raw["MessageAttributes"]["color"]["StringValue"] == "red"

    assert [json.loads(m["Body"])["Message"] for m in drain(sqs, red_url, 1)] == ["a red one"]
    assert [json.loads(json.loads(m["Body"])["Message"]) for m in drain(sqs, body_url, 1)] == [
        {"order": {"status": "paid"}}]

    # PublishBatch fans out each entry; MessageStructure=json picks the sqs text.
    out = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "one", "Message": "first"},
        {"Id": "two", "Message": json.dumps({"default": "plain", "sqs": "for queues"}), "MessageStructure": "json"},
        {"Id": "bad", "Message": "m", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "x"}}},
    ])
    assert sorted(s["Id"] for s in out["Successful"]) == ["one", "two"]
    assert [(f["Id"], f["SenderFault"]) for f in out["Failed"]] == [("bad", True)]
    assert sorted(m["Body"] for m in drain(sqs, raw_url, 2)) == ["first", "for queues"]
    assert len(drain(sqs, env_url, 2)) == 2

    # Unsubscribed, a queue gets nothing more.
    sns.unsubscribe(SubscriptionArn=env_sub)
    sns.publish(TopicArn=topic, Message="after")
    assert drain(sqs, env_url, 0, timeout=1) == []
    assert sns_error(lambda: sns.get_subscription_attributes(SubscriptionArn=env_sub))[0] == "NotFound"
    sns.delete_topic(TopicArn=topic)
    assert not [s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == topic]


def test_a_fifo_topic_delivers_to_a_fifo_queue_in_order(sns, sqs):
    topic = sns.create_topic(Name=unique_name("ordered") + ".fifo",
                             Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    url, arn = queue(sqs, unique_name("ordered") + ".fifo", FifoQueue="true")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    assert sns_error(lambda: sns.publish(TopicArn=topic, Message="no group"))[0] == "InvalidParameter"
    for i in range(12):
        sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId="g")
    # The same content again within the window is deduplicated by the queue.
    sns.publish(TopicArn=topic, Message="m0", MessageGroupId="g")
    got = drain(sqs, url, 12)
    assert [m["Body"] for m in got] == [f"m{i}" for i in range(12)]


def test_cedar_decides_who_subscribes_and_publishes(server):
    """A principal allowed to publish but not to send to a queue cannot subscribe that
    queue; deliveries are made with the subscriber's rights."""
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("snsauth")})
    assert r.status == 201, r
    t = r.json()
    account = t["account_id"]
    admin_key = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
    path = f"/admin/v1/tenants/{account}/principals"
    assert server.admin("POST", path, {"kind": "user", "name": "publisher"}, credentials=admin_key).status == 201
    r = server.admin("POST", f"{path}/user/publisher/access-keys", credentials=admin_key)
    publisher_key = (r.json()["access_key_id"], r.json()["secret_access_key"])
    server.apply_policy(account, "publisher", 'permit (principal, action in [Sluice::Action::"sns:Publish", '
                        'Sluice::Action::"sns:Subscribe"], resource);', credentials=admin_key)
    admin_sns = server.client(service="sns", credentials=admin_key)
    admin_sqs = server.client(service="sqs", credentials=admin_key)
    topic = admin_sns.create_topic(Name="guarded")["TopicArn"]
    url, arn = queue(admin_sqs, "inbox")
    publisher = server.client(service="sns", credentials=publisher_key)
    code, status, _ = sns_error(lambda: publisher.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn))
    assert (code, status) == ("AuthorizationError", 403)
    code, status, _ = sns_error(lambda: publisher.create_topic(Name="mine"))
    assert (code, status) == ("AuthorizationError", 403)
    admin_sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    publisher.publish(TopicArn=topic, Message="from the publisher")
    got = drain(admin_sqs, url, 1)
    assert json.loads(got[0]["Body"])["Message"] == "from the publisher"
    # Another tenant's topic is not found, whatever its name.
    assert sns_error(lambda: server.client(service="sns").publish(TopicArn=topic, Message="x"))[0] in (
        "NotFound", "AuthorizationError")


def test_every_operation_of_the_model_is_answered(server):
    """Each of botocore's SNS operations, posted as a bare signed form, gets an SNS
    answer: never InvalidAction, a 404 page or a 5xx."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sns")
    answered, refused = [], []
    for op in sorted(model.operation_names):
        r = server.raw(None, f"Action={op}&Version=2010-03-31".encode(),
                       content_type="application/x-www-form-urlencoded; charset=utf-8", service="sns")
        text = r.body.decode(errors="replace")
        if r.status >= 500 or "<Code>InvalidAction</Code>" in text or "<Error>" not in text and r.status != 200:
            refused.append((op, r.status, text[:200]))
        else:
            answered.append(op)
    assert refused == [], refused
    print(json.dumps({"service": "sns", "answered": len(answered), "of": len(model.operation_names)}))


def test_data_protection_confirmations_permissions_push_and_sms(sns):
    policy = json.dumps({"Name": "p", "Version": "2021-06-01", "Statement": [
        {"Sid": "s", "DataDirection": "Inbound", "Principal": ["*"],
         "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress"],
         "Operation": {"Audit": {"SampleRate": "99", "FindingsDestination": {}}}}]})
    arn = sns.create_topic(Name=unique_name("dp"), DataProtectionPolicy=policy)["TopicArn"]
    assert sns.get_data_protection_policy(ResourceArn=arn)["DataProtectionPolicy"] == policy
    assert "DataProtectionPolicy" not in sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    sns.put_data_protection_policy(ResourceArn=arn, DataProtectionPolicy=policy.replace("99", "50"))
    assert "50" in sns.get_data_protection_policy(ResourceArn=arn)["DataProtectionPolicy"]
    assert sns_error(lambda: sns.put_data_protection_policy(ResourceArn=arn, DataProtectionPolicy="{}"))[0] == "InvalidParameter"
    assert sns_error(lambda: sns.confirm_subscription(TopicArn=arn, Token="t"))[0] == "InvalidParameter"
    code, _, message = sns_error(lambda: sns.add_permission(TopicArn=arn, Label="l", AWSAccountId=[ACCOUNT_ID],
                                                            ActionName=["Publish"]))
    assert code == "InvalidParameter" and "Cedar" in message
    assert sns.list_platform_applications()["PlatformApplications"] == []
    assert sns.list_phone_numbers_opted_out()["phoneNumbers"] == []
    assert sns_error(lambda: sns.create_platform_application(Name="a", Platform="GCM", Attributes={}))[0] == "InvalidParameter"
    assert "SMS" in sns_error(lambda: sns.publish(PhoneNumber="+15555550100", Message="m"))[2]
    assert sns_error(lambda: sns.get_endpoint_attributes(
        EndpointArn=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:endpoint/GCM/a/b"))[:2] == ("NotFound", 404)
    sns.delete_topic(TopicArn=arn)


def test_publishes_are_billed_in_64_kib_chunks_and_deliveries_counted(server, sns, sqs):
    name = unique_name("billed")
    topic = sns.create_topic(Name=name)["TopicArn"]
    urls = []
    for _ in range(2):
        url, arn = queue(sqs)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)
    sns.publish(TopicArn=topic, Message="x" * (100 * 1024))                    # 2 requests, 2 deliveries
    sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[              # 3 requests, 6 deliveries
        {"Id": str(i), "Message": "small"} for i in range(3)])
    now = int(time.time() * 1000)
    report = server.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/usage?from={now - 3_600_000}&to={now + 60_000}")
    assert report.status == 200, report.body

    def quantity(metric: str) -> float:
        return sum(float(l["quantity"]) for l in report.json()["lines"]
                   if l["metric"] == metric and l["stream"] == name)

    assert quantity("sns_requests") == 5
    assert quantity("sns_sqs_deliveries") == 8
    assert all(len(drain(sqs, url, 4)) == 4 for url in urls)


def test_every_acknowledged_publish_survives_kill_9_in_every_queue(make_server):
    """Publishers run until the server is killed (-9) under them; after a restart, each
    message whose Publish was answered is in every subscribed queue."""
    import threading

    srv = make_server()
    sns, sqs = srv.client(service="sns"), srv.client(service="sqs")
    topic = sns.create_topic(Name="crash")["TopicArn"]
    names = ["crash-envelope", "crash-raw"]
    for name in names:
        url, arn = queue(sqs, name)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": str(name.endswith("raw")).lower()})
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def publisher(n: int) -> None:
        client = srv.client(service="sns")
        i = 0
        while not stop.is_set():
            body = f"p{n}-{i}"
            try:
                client.publish(TopicArn=topic, Message=body)
            except Exception:
                return  # the server is gone: this one was not acknowledged
            with lock:
                acked.append(body)
            i += 1

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 50, f"only {len(acked)} publishes were answered before the kill"
    srv.start()
    sqs = srv.client(service="sqs")
    for name in names:
        url = f"https://127.0.0.1:{srv.port}/{ACCOUNT_ID}/{name}"
        got = set()
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not batch:
                break
            for m in batch:
                got.add(m["Body"] if name.endswith("raw") else json.loads(m["Body"])["Message"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        missing = set(acked) - got
        assert not missing, f"{name}: {len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"


def test_the_sns_bench_phase_publishes_and_delivers(binary, server):
    import os
    import re
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    p = subprocess.run([str(binary), "bench", "--endpoint", f"127.0.0.1:{server.port}", "--ca", server.ca,
                        "--credentials", str(server.credentials_file), "--seconds", "1",
                        "--connections", "2", "--shards", "1", "--phases", "sns", "--sns-queues", "3"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(l for l in p.stdout.splitlines() if l.startswith("SNS"))
    published = float(re.search(r"([0-9.]+) req/s", line).group(1))
    delivered = float(re.search(r"([0-9.]+) records/s", line).group(1))
    assert published > 0 and abs(delivered - 3 * published) <= 3, line  # rates printed rounded
    assert " 0 errors" in line, line
    sns = server.client(service="sns")
    assert not [t for t in sns.list_topics()["Topics"] if ":bench-sns-" in t["TopicArn"]], "the bench leaves no topic"
    assert not server.client(service="sqs").list_queues(QueueNamePrefix="bench-sns-").get("QueueUrls")


def test_a_refused_delivery_goes_to_the_subscriptions_dead_letter_queue(server, sns, sqs):
    topic = sns.create_topic(Name=unique_name("dlq"))["TopicArn"]
    gone_url, gone_arn = queue(sqs)
    dlq_url, dlq_arn = queue(sqs)
    code, _, _ = sns_error(lambda: sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=gone_arn,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{unique_name('none')}"})}))
    assert code == "InvalidParameter"  # a dead-letter queue that does not exist
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=gone_arn,
                        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})["SubscriptionArn"]
    assert json.loads(sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn}
    sqs.delete_queue(QueueUrl=gone_url)
    sns.publish(TopicArn=topic, Message="nowhere to go")
    got = drain(sqs, dlq_url, 1)
    assert json.loads(got[0]["Body"])["Message"] == "nowhere to go"
    # The refusal and the dead letter are counted per topic in /metrics.
    from test_metrics import sample

    text = server.admin("GET", "/metrics").body.decode()
    labels = {"topic": f"{ACCOUNT_ID}/{topic.rsplit(':', 1)[1]}"}
    assert sample(text, "sluice_sns_messages_published_total", **labels) == 1
    assert sample(text, "sluice_sns_deliveries_failed_total", **labels) == 1
    assert sample(text, "sluice_sns_dead_lettered_total", **labels) == 1


def test_only_the_signing_certificate_is_served_and_version_1_is_refused(server, sns):
    import urllib.error
    import urllib.request

    for path in ("/sns/SimpleNotificationService-0000000000000000.pem", "/sns/anything"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"https://127.0.0.1:{server.port}{path}", context=server.ssl_context(), timeout=10)
        assert e.value.code == 404
    arn = sns.create_topic(Name=unique_name("sigv"))["TopicArn"]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SignatureVersion"] == "2"
    code, _, message = sns_error(lambda: sns.set_topic_attributes(
        TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="1"))
    assert code == "InvalidParameter" and "version 2" in message
    sns.delete_topic(TopicArn=arn)


def test_sns_limits_are_refused_in_sns_words(sns, sqs):
    """The batch, tag, attribute and filter-policy bounds, each tried past its edge."""
    arn = sns.create_topic(Name=unique_name("limits"))["TopicArn"]
    code, _, _ = sns_error(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": str(i), "Message": "m"} for i in range(11)]))
    assert code == "TooManyEntriesInBatchRequest"
    code, _, _ = sns_error(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": str(i), "Message": "x" * 100_000} for i in range(3)]))
    assert code == "BatchRequestTooLong"
    assert sns_error(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "bad id!", "Message": "m"}]))[0] == "InvalidBatchEntryId"
    # 50 tags fit, the 51st does not.
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert sns_error(lambda: sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}]))[0] == "TagLimitExceeded"
    assert sns_error(lambda: sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "aws:x", "Value": "v"}]))[0] == "TagPolicy"
    # Ten message attributes fit, the eleventh does not.
    ten = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(10)}
    sns.publish(TopicArn=arn, Message="m", MessageAttributes=ten)
    eleven = dict(ten, a10={"DataType": "String", "StringValue": "v"})
    assert sns_error(lambda: sns.publish(TopicArn=arn, Message="m", MessageAttributes=eleven))[0] == "InvalidParameter"
    # A filter policy of more than 150 values is refused when set.
    _, queue_arn = queue(sqs)
    policy = json.dumps({"k": [str(i) for i in range(151)]})
    code, _, message = sns_error(lambda: sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn,
                                                       Attributes={"FilterPolicy": policy}))
    assert code == "InvalidParameter" and "too complex" in message
    sns.delete_topic(TopicArn=arn)
