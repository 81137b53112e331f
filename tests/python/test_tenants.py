"""Tenants, principals and access keys through the admin API, and isolation between
tenants on the Kinesis API: each sees only its own streams and records."""

from __future__ import annotations

import base64

import pytest

from harness import REGION, expect_error, permit, unique_name

SHARD0 = "shardId-000000000000"


@pytest.fixture(scope="module")
def tenants(server):
    """Two tenants made by the administering tenant, each with its admin's key pair."""
    out = {}
    for label in ("a", "b"):
        r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name(f"tenant-{label}")})
        assert r.status == 201, r
        t = r.json()
        out[label] = (t["account_id"], (t["admin"]["access_key_id"], t["admin"]["secret_access_key"]))
    return out


def test_openapi_document_is_served(server):
    r = server.admin("GET", "/admin/v1/openapi.json", sign=False)
    assert r.status == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "/admin/v1/tenants" in doc["paths"]


def test_admin_api_requires_a_signature(server):
    r = server.admin("GET", "/admin/v1/tenants", sign=False)
    assert r.status == 401 and r.error_type() == "MissingAuthenticationTokenException", r
    key, _ = server.credentials()
    r = server.admin("GET", "/admin/v1/tenants", credentials=(key, "x" * 40))
    assert r.status == 401 and r.error_type() == "InvalidSignatureException", r


def test_tenant_creation_and_listing(server, tenants):
    account_a, _ = tenants["a"]
    assert len(account_a) == 12 and account_a.isdigit()
    listed = server.admin("GET", "/admin/v1/tenants").json()["tenants"]
    ids = {t["account_id"] for t in listed}
    assert {account_a, tenants["b"][0]} <= ids
    # The same name twice is a conflict.
    name = [t["name"] for t in listed if t["account_id"] == account_a][0]
    r = server.admin("POST", "/admin/v1/tenants", {"name": name})
    assert r.status == 409 and r.error_type() == "ResourceInUseException", r
    r = server.admin("POST", "/admin/v1/tenants", {"name": "bad name!"})
    assert r.status == 400 and r.error_type() == "ValidationException", r
    r = server.admin("POST", "/admin/v1/tenants", {"name": "x", "extra": 1})
    assert r.status == 400, r


def test_a_tenant_admin_manages_only_its_own_tenant(server, tenants):
    account_a, admin_a = tenants["a"]
    account_b, _ = tenants["b"]
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("sneaky")}, credentials=admin_a)
    assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    assert "sluice:CreateTenant" in r.json()["message"]
    mine = server.admin("GET", "/admin/v1/tenants", credentials=admin_a).json()["tenants"]
    assert [t["account_id"] for t in mine] == [account_a]
    r = server.admin("POST", f"/admin/v1/tenants/{account_b}/principals", {"kind": "user", "name": "intruder"},
                     credentials=admin_a)
    assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    r = server.admin("POST", f"/admin/v1/tenants/{account_a}/principals", {"kind": "user", "name": "alice"},
                     credentials=admin_a)
    assert r.status == 201, r
    assert r.json()["arn"] == f"arn:aws:iam::{account_a}:user/alice"


def test_keys_for_a_user_and_their_lifecycle(server, tenants):
    account_a, admin_a = tenants["a"]
    path = f"/admin/v1/tenants/{account_a}/principals"
    server.admin("POST", path, {"kind": "user", "name": "bob"}, credentials=admin_a)
    r = server.admin("POST", f"{path}/user/bob/access-keys", credentials=admin_a)
    assert r.status == 201, r
    key = r.json()
    bob = (key["access_key_id"], key["secret_access_key"])
    client = server.client(credentials=bob)
    # Nothing is allowed until a policy says so (default deny)...
    with expect_error("AccessDeniedException"):
        client.list_streams()
    # ...and the tenant's admin may say so.
    server.apply_policy(account_a, "bob", permit(f"arn:aws:iam::{account_a}:user/bob", ["kinesis:ListStreams"]),
                        credentials=admin_a)
    assert client.list_streams()["StreamNames"] == []
    # bob is not an admin.
    r = server.admin("GET", f"/admin/v1/tenants/{account_a}/principals", credentials=bob)
    assert r.status == 403, r
    # Listing never shows a secret.
    listed = server.admin("GET", f"{path}/user/bob/access-keys", credentials=admin_a)
    assert listed.status == 200 and bob[1] not in listed.body.decode()
    # Deactivated: refused at once; activated again: accepted.
    r = server.admin("POST", f"{path}/user/bob/access-keys/{bob[0]}/deactivate", credentials=admin_a)
    assert r.status == 200 and r.json()["status"] == "Inactive", r
    with expect_error("UnrecognizedClientException"):
        server.client(credentials=bob).list_streams()
    server.admin("POST", f"{path}/user/bob/access-keys/{bob[0]}/activate", credentials=admin_a)
    assert server.client(credentials=bob).list_streams()["StreamNames"] == []
    # Two keys at most.
    assert server.admin("POST", f"{path}/user/bob/access-keys", credentials=admin_a).status == 201
    r = server.admin("POST", f"{path}/user/bob/access-keys", credentials=admin_a)
    assert r.status == 429 and r.error_type() == "LimitExceededException", r
    r = server.admin("DELETE", f"{path}/user/bob/access-keys/{bob[0]}", credentials=admin_a)
    assert r.status == 204, r
    with expect_error("UnrecognizedClientException"):
        server.client(credentials=bob).list_streams()
    r = server.admin("DELETE", f"{path}/user/bob/access-keys/{bob[0]}", credentials=admin_a)
    assert r.status == 404, r


def test_tenants_see_only_their_own_streams_and_records(server, tenants):
    account_a, admin_a = tenants["a"]
    account_b, admin_b = tenants["b"]
    a = server.client(credentials=admin_a)
    b = server.client(credentials=admin_b)
    name = unique_name("shared-name")
    # The same stream name in two accounts is two streams.
    a.create_stream(StreamName=name, ShardCount=1)
    b.create_stream(StreamName=name, ShardCount=1)
    arn_a = a.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    assert arn_a == f"arn:aws:kinesis:{REGION}:{account_a}:stream/{name}"
    a.put_record(StreamName=name, PartitionKey="k", Data=b"for a only")
    # b cannot reach a's stream by ARN, for reads or writes: the platform policy
    # forbids it before anything is looked up, and the message names action and resource.
    with expect_error("AccessDeniedException") as denied:
        b.describe_stream_summary(StreamARN=arn_a)
    message = denied.exc.response["Error"]["Message"]
    assert "kinesis:DescribeStreamSummary" in message and arn_a in message, message
    assert f"arn:aws:iam::{account_b}:user/admin" in message, message
    with expect_error("AccessDeniedException"):
        b.put_record(StreamARN=arn_a, PartitionKey="k", Data=b"intrusion")
    with expect_error("AccessDeniedException"):
        b.get_shard_iterator(StreamARN=arn_a, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")
    with expect_error("AccessDeniedException"):
        b.delete_stream(StreamARN=arn_a)
    # a's shard iterator is worthless in b's hands.
    it_a = a.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    with expect_error("InvalidArgumentException"):
        b.get_records(ShardIterator=it_a)
    # b's own stream of the same name is empty; a's has exactly a's record.
    it_b = b.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert b.get_records(ShardIterator=it_b)["Records"] == []
    assert [r["Data"] for r in a.get_records(ShardIterator=it_a)["Records"]] == [b"for a only"]
    assert name in a.list_streams(Limit=1000)["StreamNames"]
    # Deleting b's stream leaves a's alone.
    b.delete_stream(StreamName=name)
    assert a.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    # The administering tenant does not see tenants' streams on the Kinesis API either.
    assert name not in server.client().list_streams(Limit=10000)["StreamNames"]


def test_a_disabled_tenant_cannot_authenticate(server):
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("short-lived")})
    t = r.json()
    creds = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
    assert server.client(credentials=creds).list_streams()["StreamNames"] == []
    r = server.admin("POST", f"/admin/v1/tenants/{t['account_id']}/disable")
    assert r.status == 200 and r.json()["disabled"] is True, r
    with expect_error("UnrecognizedClientException"):
        server.client(credentials=creds).list_streams()
    server.admin("POST", f"/admin/v1/tenants/{t['account_id']}/enable")
    assert server.client(credentials=creds).list_streams()["StreamNames"] == []
    # The administering tenant cannot disable itself.
    own = server.admin("GET", "/admin/v1/tenants").json()["tenants"]
    admin_account = [x["account_id"] for x in own if x["name"] == "admin"][0]
    r = server.admin("POST", f"/admin/v1/tenants/{admin_account}/disable")
    assert r.status == 400, r


def test_principals_are_disabled_enabled_and_deleted(server, tenants):
    account_a, admin_a = tenants["a"]
    path = f"/admin/v1/tenants/{account_a}/principals"
    name = unique_name("carol")
    assert server.admin("POST", path, {"kind": "role", "name": name}, credentials=admin_a).status == 201
    r = server.admin("POST", f"{path}/role/{name}/access-keys", credentials=admin_a)
    carol = (r.json()["access_key_id"], r.json()["secret_access_key"])
    arn = f"arn:aws:iam::{account_a}:role/{name}"
    server.apply_policy(account_a, f"principal/role/{name}", permit(arn, ["kinesis:ListStreams"]), credentials=admin_a)
    server.client(credentials=carol).list_streams()
    r = server.admin("POST", f"{path}/role/{name}/disable", credentials=admin_a)
    assert r.status == 200 and r.json()["disabled"] is True, r
    with expect_error("UnrecognizedClientException"):
        server.client(credentials=carol).list_streams()
    assert server.admin("POST", f"{path}/role/{name}/enable", credentials=admin_a).status == 200
    server.client(credentials=carol).list_streams()
    # Another tenant's admin can do none of this; the tenant's admin cannot be deleted.
    _, admin_b = tenants["b"]
    r = server.admin("POST", f"{path}/role/{name}/disable", credentials=admin_b)
    assert r.status == 403, r
    r = server.admin("DELETE", f"{path}/user/admin", credentials=admin_a)
    assert r.status == 400, r
    assert server.admin("DELETE", f"{path}/role/{name}", credentials=admin_a).status == 204
    with expect_error("UnrecognizedClientException"):
        server.client(credentials=carol).list_streams()
    assert server.admin("DELETE", f"{path}/role/{name}", credentials=admin_a).status == 404
