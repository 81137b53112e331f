"""The wire: JSON and CBOR bodies, the error shape, authentication, TLS, and the AWS CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import pytest
from harness import (ACCOUNT_ID, CBOR_CT, JSON_CT, REGION, Tag, arn, cbor_loads_raw,
                     cbor_timestamp_to_datetime, unique_name)

SHARD0 = "shardId-000000000000"


# -- JSON, errors, authentication ------------------------------------------------


def test_json_response_shape(server, new_stream):
    name = new_stream()
    r = server.json_call("DescribeStreamSummary", {"StreamName": name})
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith(JSON_CT)
    assert r.headers.get("x-amzn-requestid")
    assert r.json()["StreamDescriptionSummary"]["StreamARN"] == arn(name)


def test_error_shape(server):
    r = server.json_call("DescribeStream", {"StreamName": unique_name("nope")})
    assert r.status == 400, r
    assert r.headers.get("x-amzn-requestid"), "no x-amzn-RequestId header"
    assert r.headers.get("content-type", "").startswith(JSON_CT)
    body = r.json()
    assert body["__type"].split("#")[-1] == "ResourceNotFoundException"
    assert isinstance(body.get("message"), str) and body["message"]


def test_missing_authentication(server):
    r = server.json_call("ListStreams", {}, sign=False)
    assert r.status == 400, r
    assert r.error_type() == "MissingAuthenticationTokenException", r
    assert r.headers.get("x-amzn-requestid")
    assert isinstance(r.json().get("message"), str)


def test_missing_authentication_on_data_call(server, new_stream):
    name = new_stream()
    payload = {"StreamName": name, "Data": base64.b64encode(b"x").decode(), "PartitionKey": "k"}
    r = server.json_call("PutRecord", payload, sign=False)
    assert r.status == 400 and r.error_type() == "MissingAuthenticationTokenException", r
    assert server.client().describe_stream_summary(StreamName=name)  # still there, and nothing written
    it = server.client().get_shard_iterator(StreamName=name, ShardId=SHARD0,
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert server.client().get_records(ShardIterator=it)["Records"] == []


def test_missing_authentication_cbor(server):
    r = server.raw("ListStreams", cbor2.dumps({}), CBOR_CT, sign=False)
    assert r.status == 400, r
    assert r.error_type() == "MissingAuthenticationTokenException", r


def test_malformed_authorization(server):
    now = dt.datetime.now(dt.timezone.utc)
    r = server.raw("ListStreams", b"{}", JSON_CT, sign=False,
                   headers={"Authorization": "AWS4-HMAC-SHA256 garbage", "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ")})
    assert r.status == 400, r
    assert r.error_type() in ("IncompleteSignatureException", "MissingAuthenticationTokenException"), r


def test_unknown_operation(server):
    r = server.json_call("FrobnicateStream", {})
    assert r.status == 400, r
    assert r.error_type() == "UnknownOperationException", r


@pytest.mark.parametrize("target,service", [
    ("Nonexistent_20200101.Foo", "kinesis"),
    ("Firehose_20150804.FrobnicateDeliveryStream", "firehose"),
    ("AmazonSQS.FrobnicateQueue", "sqs"),
])
def test_a_target_no_service_speaks_is_authenticated_then_unknown(server, target, service):
    """Signed for whatever service its signer named, a foreign target is authenticated
    and then answered UnknownOperationException; unsigned, it gets the authentication
    error; signed with a wrong secret, the signature error."""
    headers = {"X-Amz-Target": target}
    r = server.raw(None, b"{}", JSON_CT, headers=headers, service=service)
    assert r.status == 400 and r.error_type() == "UnknownOperationException", r
    r = server.raw(None, b"{}", JSON_CT, headers=headers, sign=False)
    assert r.status == 400 and r.error_type() == "MissingAuthenticationTokenException", r
    key, _ = server.credentials()
    r = server.raw(None, b"{}", JSON_CT, headers=headers, service=service,
                   credentials=(key, "not-the-secret"))
    assert r.status in (400, 403) and r.error_type() == "InvalidSignatureException", r


def test_a_query_protocol_action_is_authenticated_then_invalid(server):
    """The query protocol (form-encoded Action=, XML errors), as SNS and SQS's legacy
    clients send it: an action no service here has gets InvalidAction in the XML error
    the client expects, once its signature checked out; a form signed for a service
    that does not speak it is InvalidAction too; a wrong secret gets the signature
    error. (SNS's own actions are tested in test_sns.py.)"""
    import boto3
    import botocore.exceptions
    from xml.etree import ElementTree

    form_ct = "application/x-www-form-urlencoded; charset=utf-8"
    for service in ("sns", "kinesis"):
        r = server.raw(None, b"Action=NoSuchAction&Version=2010-03-31", content_type=form_ct, service=service)
        assert r.status == 400, r
        doc = ElementTree.fromstring(r.body)
        assert doc.findtext("Error/Code") == "InvalidAction", r.body
        assert "NoSuchAction" in doc.findtext("Error/Message")
    key, secret = server.credentials()
    sns = boto3.client("sns", endpoint_url=server.endpoint, region_name=REGION,
                       aws_access_key_id=key, aws_secret_access_key="not-the-secret",
                       verify=str(server.ca))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sns.list_topics()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException", caught.value.response


def test_malformed_json(server):
    r = server.raw("ListStreams", b"{not json", JSON_CT)
    assert r.status == 400, r
    assert r.error_type() == "SerializationException", r
    assert r.headers.get("x-amzn-requestid")


def test_validation_message_shape(server):
    r = server.json_call("CreateStream", {"StreamName": "bad name", "ShardCount": 1})
    assert r.status == 400 and r.error_type() == "ValidationException", r
    assert "streamName" in r.json()["message"] or "StreamName" in r.json()["message"]


# -- CBOR -------------------------------------------------------------------------


def cbor_call(server, op, payload):
    r = server.raw(op, cbor2.dumps(payload), CBOR_CT)
    assert r.status == 200, f"{op}: {r}"
    assert r.headers.get("content-type", "").startswith(CBOR_CT), r.headers
    return cbor_loads_raw(r.body)


def test_cbor_put_and_get(server, new_stream):
    name = new_stream()
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    r = cbor_call(server, "PutRecord", {"StreamName": name, "Data": b"\x00cbor\xff", "PartitionKey": "pk"})
    assert r["ShardId"] == SHARD0
    seq1 = r["SequenceNumber"]
    assert isinstance(seq1, str) and seq1.isdigit()
    r = cbor_call(server, "PutRecords", {"StreamName": name, "Records": [
        {"Data": b"two", "PartitionKey": "pk"}, {"Data": b"three", "PartitionKey": "pk", "ExplicitHashKey": "7"}]})
    assert r["FailedRecordCount"] == 0
    seqs = [seq1] + [x["SequenceNumber"] for x in r["Records"]]
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs) and len(set(seqs)) == 3
    r = cbor_call(server, "GetShardIterator", {"StreamName": name, "ShardId": SHARD0,
                                               "ShardIteratorType": "TRIM_HORIZON"})
    it = r["ShardIterator"]
    assert isinstance(it, str)
    r = cbor_call(server, "GetRecords", {"ShardIterator": it, "Limit": 10})
    recs = r["Records"]
    assert [x["Data"] for x in recs] == [b"\x00cbor\xff", b"two", b"three"]
    assert all(isinstance(x["Data"], bytes) for x in recs), "CBOR blobs must be byte strings"
    assert [x["SequenceNumber"] for x in recs] == seqs
    assert [x["PartitionKey"] for x in recs] == ["pk"] * 3
    for x in recs:
        ts = cbor_timestamp_to_datetime(x["ApproximateArrivalTimestamp"])
        assert before <= ts <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5), ts
    assert r["MillisBehindLatest"] == 0
    assert isinstance(r["NextShardIterator"], str)
    # JSON sees the same records
    k = server.client()
    it = k.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [x["Data"] for x in k.get_records(ShardIterator=it)["Records"]] == [b"\x00cbor\xff", b"two", b"three"]


def test_cbor_at_timestamp(server, new_stream):
    name = new_stream()
    cbor_call(server, "PutRecord", {"StreamName": name, "Data": b"early", "PartitionKey": "pk"})
    time.sleep(1.2)
    t_ms = int(time.time() * 1000)
    time.sleep(1.2)
    cbor_call(server, "PutRecord", {"StreamName": name, "Data": b"late", "PartitionKey": "pk"})
    r = cbor_call(server, "GetShardIterator", {"StreamName": name, "ShardId": SHARD0,
                                               "ShardIteratorType": "AT_TIMESTAMP",
                                               "Timestamp": cbor2.CBORTag(1, t_ms)})
    r = cbor_call(server, "GetRecords", {"ShardIterator": r["ShardIterator"]})
    assert [x["Data"] for x in r["Records"]] == [b"late"]


def test_cbor_describe_and_list(server, new_stream):
    name = new_stream(shards=2)
    r = cbor_call(server, "DescribeStreamSummary", {"StreamName": name})
    s = r["StreamDescriptionSummary"]
    assert s["StreamName"] == name and s["OpenShardCount"] == 2
    assert isinstance(s["StreamCreationTimestamp"], Tag) and s["StreamCreationTimestamp"].number == 1
    r = cbor_call(server, "ListShards", {"StreamName": name})
    assert [x["ShardId"] for x in r["Shards"]] == [SHARD0, "shardId-000000000001"]


def test_cbor_error(server):
    r = server.raw("DescribeStreamSummary", cbor2.dumps({"StreamName": unique_name("nope")}), CBOR_CT)
    assert r.status == 400, r
    assert r.headers.get("x-amzn-requestid")
    assert r.error_type() == "ResourceNotFoundException", r


def test_cbor_validation(server, new_stream):
    name = new_stream()
    r = server.raw("PutRecord", cbor2.dumps({"StreamName": name, "Data": b"x", "PartitionKey": ""}), CBOR_CT)
    assert r.status == 400 and r.error_type() == "ValidationException", r
    r = server.raw("PutRecords", cbor2.dumps({"StreamName": name, "Records": []}), CBOR_CT)
    assert r.status == 400 and r.error_type() == "ValidationException", r


def test_cbor_oversized_record(server, new_stream):
    name = new_stream()
    r = server.raw("PutRecord", cbor2.dumps({"StreamName": name, "Data": b"x" * (1024 * 1024 + 1),
                                             "PartitionKey": "k"}), CBOR_CT)
    assert r.status == 400 and r.error_type() == "ValidationException", r


@pytest.mark.parametrize("size", [4096, 4097, 65536, 1024 * 1024 - 1])
def test_cbor_large_records(server, new_stream, size):
    """Blobs of any size up to the record limit travel as CBOR byte strings both ways."""
    name = new_stream()
    data = os.urandom(size)
    r = cbor_call(server, "PutRecord", {"StreamName": name, "Data": data, "PartitionKey": "k"})
    seq = r["SequenceNumber"]
    r = cbor_call(server, "PutRecords", {"StreamName": name, "Records": [{"Data": data[::-1], "PartitionKey": "k"}]})
    assert r["FailedRecordCount"] == 0
    it = cbor_call(server, "GetShardIterator", {"StreamName": name, "ShardId": SHARD0,
                                                "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
    recs = cbor_call(server, "GetRecords", {"ShardIterator": it})["Records"]
    assert [x["Data"] for x in recs] == [data, data[::-1]]
    assert recs[0]["SequenceNumber"] == seq


# -- TLS ---------------------------------------------------------------------------


def _tls_request(server, version, host="127.0.0.1") -> tuple[str, bytes]:
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            negotiated = tls.version()
            req = (f"POST / HTTP/1.1\r\nHost: {host}:{server.port}\r\n"
                   f"X-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Type: {JSON_CT}\r\n"
                   f"Content-Length: 2\r\nConnection: close\r\n\r\n{{}}").encode()
            tls.sendall(req)
            data = b""
            while not data.endswith(b"}") and len(data) < 65536:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            return negotiated, data


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_versions(server, version, name):
    negotiated, reply = _tls_request(server, version)
    assert negotiated == name
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"MissingAuthenticationTokenException" in reply


def test_certificate_covers_localhost(server):
    negotiated, reply = _tls_request(server, ssl.TLSVersion.TLSv1_3, host="localhost")
    assert reply.startswith(b"HTTP/1.1 ")
    k = server.client(endpoint=f"https://localhost:{server.port}")
    assert "StreamNames" in k.list_streams(Limit=1)


def test_certificate_is_verified(server):
    ctx = ssl.create_default_context()  # system roots only: the Sluice CA is not among them
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(sock, server_hostname="sluice.example.com")


def test_ca_file_is_a_certificate(server):
    text = Path(server.ca).read_text()
    assert "-----BEGIN CERTIFICATE-----" in text
    assert "PRIVATE KEY" not in text, "the CA file must not hold a private key"
    assert Path(server.ca) == server.data_dir / "tls" / "ca.pem"


def test_plaintext_http_is_told_to_use_https(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    # A short plaintext 400 that says why, then the connection is closed (as nginx does);
    # nothing else is served in the clear.
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert b"HTTPS only" in data and b"StreamNames" not in data
    # and the listener still serves TLS afterwards
    assert "StreamNames" in server.client().list_streams(Limit=1)


# -- AWS CLI -------------------------------------------------------------------------


def _aws_cli() -> str | None:
    local = Path(sys.executable).parent / "aws"
    if local.exists():
        return str(local)
    return None


def test_aws_cli_smoke(server, tmp_path):
    aws = _aws_cli()
    if aws is None:
        pytest.skip("aws (the awscli package) is not installed in this virtualenv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        # The server's bootstrap credentials file, used as it is (as the README says).
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
    })
    base = [aws, "--endpoint-url", server.endpoint, "--ca-bundle", server.ca, "--output", "json", "kinesis"]

    def run(*args):
        p = subprocess.run(base + list(args), env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"aws {' '.join(args)} failed: {p.stderr}"
        return json.loads(p.stdout) if p.stdout.strip() else None

    name = unique_name("cli")
    run("create-stream", "--stream-name", name, "--shard-count", "1")
    run("wait", "stream-exists", "--stream-name", name)
    assert isinstance(run("list-streams", "--max-items", "5")["StreamNames"], list)
    put = run("put-record", "--stream-name", name, "--partition-key", "k", "--data", "hello from the cli")
    assert put["ShardId"] == SHARD0
    it = run("get-shard-iterator", "--stream-name", name, "--shard-id", SHARD0,
             "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
    recs = run("get-records", "--shard-iterator", it)["Records"]
    assert [base64.b64decode(r["Data"]) for r in recs] == [b"hello from the cli"]
    assert recs[0]["SequenceNumber"] == put["SequenceNumber"]
    summary = run("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
    assert summary["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"
    run("delete-stream", "--stream-name", name)
