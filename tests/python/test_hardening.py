"""Findings of the security review, each from outside: failed authentication is audited
(and bounded per address), the operation header must be signed, the bearer scheme is
case-insensitive and never echoed, a revocation belongs to its tenant, CBOR errors are
sentences, secrets in the catalog are sealed, admin audit rows name what was acted on."""

from __future__ import annotations

import http.client
import json
import sqlite3
import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import ACCOUNT_ID, CBOR_CT, JSON_CT, REGION, TARGET_PREFIX, permit, unique_name

from test_tokens import bearer_call, issue, make_user


def post(server, headers: dict, body: bytes = b"{}", source: str = "127.0.0.1"):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(),
                                       timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def signed(server, operation: str, body: bytes = b"{}", secret: str | None = None,
           key: str | None = None, content_type: str = JSON_CT) -> dict:
    real_key, real_secret = server.credentials()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": content_type, "X-Amz-Target": TARGET_PREFIX + operation})
    SigV4Auth(Credentials(key or real_key, secret or real_secret), "kinesis", REGION).add_auth(req)
    return dict(req.headers.items())


def trail(server, account: str = ACCOUNT_ID, wait_for=None, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        r = server.admin("GET", f"/admin/v1/tenants/{account}/audit?limit=10000")
        assert r.status == 200, r
        rows = [json.loads(line) for line in r.body.decode().splitlines() if line.strip()]
        if wait_for is None or wait_for(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_failed_authentication_is_audited_counted_and_bounded(server):
    key, _ = server.credentials()
    # A wrong secret for a real key: the key's tenant sees it, naming the principal.
    status, body = post(server, signed(server, "ListStreams", secret="wrong" * 8), source="127.0.0.21")
    assert status == 403 or status == 400, body
    # An unknown key and a forged token, from other addresses.
    post(server, signed(server, "ListStreams", key="AKIAUNKNOWN000000000"), source="127.0.0.22")
    post(server, {"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + "ListStreams",
                  "Authorization": "Bearer eyJhbGciOiJFZERTQSJ9.e30.AAAA"}, source="127.0.0.23")

    def seen(rows):
        return {r["source_ip"] for r in rows if r["action"] == "sluice:Authenticate"} >= {
            "127.0.0.21", "127.0.0.22", "127.0.0.23"}

    rows = [r for r in trail(server, wait_for=seen) if r["action"] == "sluice:Authenticate"]
    by_ip = {r["source_ip"]: r for r in rows}
    assert by_ip["127.0.0.21"]["principal"] == f"arn:aws:iam::{ACCOUNT_ID}:user/admin" or \
        by_ip["127.0.0.21"]["principal"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:")
    assert by_ip["127.0.0.21"]["decision"] == "Deny"
    assert by_ip["127.0.0.22"]["principal"] == "accessKeyId/AKIAUNKNOWN000000000"
    assert by_ip["127.0.0.23"]["principal"] == "bearer-token"
    assert all("AAAA" not in json.dumps(r) for r in rows), "the token was written to the trail"
    # A flood from one address writes its first 20 rows a minute one by one, not all
    # of them (the flood may straddle a minute: two windows and their aggregates).
    for _ in range(80):
        post(server, signed(server, "ListStreams", secret="flood" * 8), source="127.0.0.24")
    time.sleep(1)
    flood = [r for r in trail(server) if r["source_ip"] == "127.0.0.24"]
    assert 1 <= len(flood) <= 2 * 20 + 2, len(flood)
    metrics = server.admin("GET", "/metrics").body.decode()
    assert "sluice_authentication_failures_total" in metrics


def test_the_operation_header_must_be_signed(server):
    # Signed without X-Amz-Target, which is then added: the operation could have been
    # swapped on the way, so the request is refused.
    key, secret = server.credentials()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=b"{}", headers={"Content-Type": JSON_CT})
    SigV4Auth(Credentials(key, secret), "kinesis", REGION).add_auth(req)
    headers = dict(req.headers.items())
    headers["X-Amz-Target"] = TARGET_PREFIX + "ListStreams"
    status, body = post(server, headers)
    assert status == 400 and body["__type"] == "IncompleteSignatureException", body
    assert "X-Amz-Target" in body["message"]


def test_the_bearer_scheme_is_case_insensitive_and_never_echoed(server):
    account = make_user(server)
    token = issue(server, account)["token"]
    for scheme in ("bearer", "BEARER"):
        r = server.raw("ListStreams", b"{}", sign=False, headers={"Authorization": f"{scheme} {token}"})
        assert r.status == 200, r
    r = server.raw("ListStreams", b"{}", sign=False, headers={"Authorization": "Basic c2VjcmV0LXRva2Vu"})
    assert r.status in (400, 403), r
    assert b"c2VjcmV0LXRva2Vu" not in r.body


def test_a_revocation_belongs_to_the_tenant_that_made_it(server):
    victim = make_user(server)
    issued = issue(server, victim)
    other = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("other")}).json()["account_id"]
    # Another tenant names the victim's token id: the victim's token still works.
    r = server.admin("POST", f"/admin/v1/tenants/{other}/tokens/{issued['token_id']}/revoke")
    assert r.status == 200, r
    assert bearer_call(server, issued["token"], "ListStreams", {}).status == 200
    # The victim's own revocation still takes effect.
    r = server.admin("POST", f"/admin/v1/tenants/{victim}/tokens/{issued['token_id']}/revoke")
    assert r.status == 200, r
    assert bearer_call(server, issued["token"], "ListStreams", {}).status in (400, 403)


def test_cbor_errors_are_sentences(server):
    for body in (b"\xa1\x63abc", b"\xff\xff", b"\xa1\x6aStreamName\x01"):
        status, _ = None, None
        r = server.raw("DescribeStreamSummary", body, content_type=CBOR_CT)
        assert r.status == 400, r
        import cbor2
        message = cbor2.loads(r.body).get("message", "")
        for debug in ("Semantic(", "Syntax(", "Io(", "Some(", "Error {"):
            assert debug not in message, message


def test_the_iterator_key_is_sealed_in_the_catalog(server):
    if server.database_url:
        from harness import psql
        out = psql(server.database_url, "SELECT length(secret) FROM server_secrets").stdout.split()
        lengths = [int(x) for x in out]
    else:
        db = sqlite3.connect(str(server.data_dir / "catalog.db"), timeout=30)
        try:
            lengths = [row[0] for row in db.execute("SELECT length(secret) FROM server_secrets")]
        finally:
            db.close()
    # 32 bytes of key in the clear would be 32; sealed: version, nonce, key and tag.
    assert lengths and all(n == 1 + 12 + 32 + 16 for n in lengths), lengths


def test_admin_audit_rows_name_what_was_acted_on(server):
    made = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("named")}).json()
    account = made["account_id"]
    admin = (made["admin"]["access_key_id"], made["admin"]["secret_access_key"])
    r = server.admin("POST", f"/admin/v1/tenants/{account}/principals", {"kind": "user", "name": "worker"})
    assert r.status == 201, r
    r = server.admin("POST", f"/admin/v1/tenants/{account}/principals/user/worker/access-keys", credentials=admin)
    assert r.status == 201, r
    server.apply_policy(account, "workers", permit(f"arn:aws:iam::{account}:user/worker", ["kinesis:ListStreams"]))
    r = server.admin("POST", f"/admin/v1/tenants/{account}/tokens/tok-123/revoke")
    assert r.status == 200, r
    wanted = {
        ("sluice:CreateAccessKey", f"arn:aws:iam::{account}:user/worker"),
        ("sluice:PutPolicy", f"arn:aws:iam::{account}:policy/workers"),
        ("sluice:RevokeToken", f"arn:aws:iam::{account}:token/tok-123"),
    }
    rows = trail(server, account, wait_for=lambda rows: wanted <= {(r["action"], r["resource"]) for r in rows})
    assert wanted <= {(r["action"], r["resource"]) for r in rows}


def test_the_operator_cannot_mint_a_tenants_credentials(server):
    made = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("private")}).json()
    account = made["account_id"]
    # Neither a key nor a token for the tenant's admin or any of its principals.
    for path in ("access-keys", "tokens"):
        r = server.admin("POST", f"/admin/v1/tenants/{account}/principals/user/admin/{path}")
        assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    # Responding to a leak stays possible, and is in the tenant's own trail as the operator's.
    key = made["admin"]["access_key_id"]
    r = server.admin("POST", f"/admin/v1/tenants/{account}/principals/user/admin/access-keys/{key}/deactivate")
    assert r.status == 200, r
    admin = (key, made["admin"]["secret_access_key"])
    server.admin("POST", f"/admin/v1/tenants/{account}/principals/user/admin/access-keys/{key}/activate")
    rows = trail(server, account, wait_for=lambda rows: any(
        r["action"] == "sluice:UpdateAccessKey" for r in rows))
    assert any(r["action"] == "sluice:UpdateAccessKey" and r["principal"] == f"arn:aws:iam::{ACCOUNT_ID}:user/admin"
               for r in rows), rows
    # The tenant reads its own trail with its own key.
    r = server.admin("GET", f"/admin/v1/tenants/{account}/audit", credentials=admin)
    assert r.status == 200, r
