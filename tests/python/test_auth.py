"""Authentication: every request's Signature Version 4 is verified against issued keys."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import time
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import JSON_CT, REGION, TARGET_PREFIX, expect_error, unique_name

SHARD0 = "shardId-000000000000"


def signed_at(server, when: dt.datetime, body: bytes = b"{}", operation: str = "ListStreams"):
    """A request signed with the real key as if at `when`."""
    key, secret = server.credentials()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                     headers={"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + operation})
    # botocore stamps the current time; make its clock say `when` while it signs.
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(Credentials(key, secret), "kinesis", REGION).add_auth(req)
    return server.raw(operation, body, JSON_CT, sign=False, headers=dict(req.headers.items()))


def test_bootstrap_credentials_file(server):
    path = server.credentials_file
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    text = path.read_text()
    assert text.startswith("[default]\n")
    key, secret = server.credentials()
    assert key.startswith("AKIA") and len(key) == 20
    assert len(secret) == 40
    # The secret appears nowhere else under the data dir (it is stored sealed).
    for root, _dirs, files in os.walk(server.data_dir):
        for f in files:
            p = os.path.join(root, f)
            if p == str(path):
                continue
            with open(p, "rb") as fh:
                assert secret.encode() not in fh.read(), f"secret found in {p}"


def test_unknown_access_key_is_unrecognized(server):
    r = server.json_call("ListStreams", {}, credentials=("AKIAUNKNOWNKEY000000", "x" * 40))
    assert r.status == 400 and r.error_type() == "UnrecognizedClientException", r


def test_wrong_secret_is_an_invalid_signature(server):
    key, _ = server.credentials()
    r = server.json_call("ListStreams", {}, credentials=(key, "y" * 40))
    assert r.status == 400 and r.error_type() == "InvalidSignatureException", r


def test_tampered_body_is_an_invalid_signature(server, new_stream):
    name = new_stream()
    key, secret = server.credentials()
    body = json.dumps({"StreamName": name, "PartitionKey": "k", "Data": base64.b64encode(b"good").decode()}).encode()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                     headers={"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + "PutRecord"})
    SigV4Auth(Credentials(key, secret), "kinesis", REGION).add_auth(req)
    evil = body.replace(base64.b64encode(b"good"), base64.b64encode(b"evil"))
    r = server.raw("PutRecord", evil, JSON_CT, sign=False, headers=dict(req.headers.items()))
    assert r.status == 400 and r.error_type() == "InvalidSignatureException", r
    # Nothing was written for it.
    client = server.client()
    it = client.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert client.get_records(ShardIterator=it)["Records"] == []


def test_unverified_requests_never_reach_storage(server, new_stream):
    name = new_stream()
    key, _ = server.credentials()
    payload = {"StreamName": name, "PartitionKey": "k", "Data": base64.b64encode(b"x").decode()}
    for creds in [("AKIAUNKNOWNKEY000000", "x" * 40), (key, "z" * 40)]:
        r = server.json_call("PutRecord", payload, credentials=creds)
        assert r.status == 400, r
    r = server.json_call("DeleteStream", {"StreamName": name}, credentials=(key, "z" * 40))
    assert r.error_type() == "InvalidSignatureException", r
    client = server.client()
    assert client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamName"] == name
    it = client.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert client.get_records(ShardIterator=it)["Records"] == []


def test_old_and_future_signatures_are_refused(server):
    now = dt.datetime.now(dt.timezone.utc)
    assert signed_at(server, now).status == 200
    assert signed_at(server, now - dt.timedelta(minutes=5)).status == 200
    for when in [now - dt.timedelta(minutes=20), now + dt.timedelta(minutes=20)]:
        r = signed_at(server, when)
        assert r.status == 400 and r.error_type() == "InvalidSignatureException", r
        assert "Signature" in r.json()["message"]


def test_clock_skew_is_configurable(make_server):
    srv = make_server("--clock-skew-seconds", "60")
    now = dt.datetime.now(dt.timezone.utc)
    assert signed_at(srv, now).status == 200
    r = signed_at(srv, now - dt.timedelta(minutes=3))
    assert r.status == 400 and r.error_type() == "InvalidSignatureException", r
    assert "expired" in r.json()["message"]


def test_signed_for_another_region_or_service_is_refused(server):
    r = server.json_call("ListStreams", {}, region="eu-west-1")
    assert r.status == 400 and r.error_type() in ("InvalidSignatureException", "IncompleteSignatureException"), r
    r = server.json_call("ListStreams", {}, service="s3")
    assert r.status == 400 and r.error_type() in ("InvalidSignatureException", "IncompleteSignatureException"), r


def test_boto3_with_a_wrong_secret_gets_the_aws_error(server):
    key, _ = server.credentials()
    client = server.client(credentials=(key, "w" * 40))
    with expect_error("InvalidSignatureException"):
        client.list_streams()
    with expect_error("UnrecognizedClientException"):
        server.client(credentials=("AKIAUNKNOWNKEY000000", "w" * 40)).create_stream(
            StreamName=unique_name("nope"), ShardCount=1)


def test_credentials_survive_a_restart(make_server):
    srv = make_server()
    before = srv.credentials()
    srv.restart()
    assert srv.credentials() == before
    assert srv.client().list_streams()["StreamNames"] == []


def presigned(server, expires: int, body: bytes = b"{}", operation: str = "ListStreams"):
    """A request signed in its query string (botocore's SigV4QueryAuth), sent as signed.
    botocore's presigner moves a JSON body's members into the query and signs an empty
    body, so an empty body is what goes on the wire."""
    from urllib.parse import urlsplit
    from botocore.auth import SigV4QueryAuth

    key, secret = server.credentials()
    headers = {"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + operation}
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=headers)
    SigV4QueryAuth(Credentials(key, secret), "kinesis", REGION, expires=expires).add_auth(req)
    split = urlsplit(req.url)
    assert "X-Amz-Signature=" in split.query
    signed_body = req.data or b""
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=60)
    try:
        conn.request("POST", f"{split.path}?{split.query}", body=signed_body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}"), split.query
    finally:
        conn.close()


def test_presigned_requests_verify_until_they_expire(server):
    status, body, _ = presigned(server, expires=60)
    assert status == 200 and "StreamNames" in body, body
    # A request signed with a 1-second lifetime, replayed after it, is refused.
    status, body, query = presigned(server, expires=1)
    assert status == 200, body
    time.sleep(2.5)
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=60)
    try:
        conn.request("POST", f"/?{query}", body=b"",
                     headers={"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + "ListStreams"})
        resp = conn.getresponse()
        refused = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 400 and refused["__type"] == "InvalidSignatureException", refused
    assert "expired" in refused["message"]


def test_a_presigned_request_with_another_body_is_refused(server):
    from urllib.parse import urlsplit
    from botocore.auth import SigV4QueryAuth
    import http.client

    key, secret = server.credentials()
    headers = {"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + "ListStreams"}
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=b'{"Limit": 1}', headers=headers)
    SigV4QueryAuth(Credentials(key, secret), "kinesis", REGION, expires=60).add_auth(req)
    split = urlsplit(req.url)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=60)
    try:
        conn.request("POST", f"/?{split.query}", body=b'{"Limit": 2}', headers=headers)
        resp = conn.getresponse()
        refused = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 400 and refused["__type"] == "InvalidSignatureException", refused
