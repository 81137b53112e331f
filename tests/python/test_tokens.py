"""Bearer tokens: issued through the admin API, accepted on the Kinesis and admin APIs,
refused once revoked, expired or altered."""

from __future__ import annotations

import base64
import json
import time

from harness import permit, unique_name


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer_call(server, token: str, operation: str, payload: dict):
    return server.raw(operation, json.dumps(payload).encode(), sign=False,
                      headers={"Authorization": f"Bearer {token}"})


# Each tenant's own admin key: only a tenant's admin mints its principals' credentials
# (the operator cannot).
ADMINS: dict[str, tuple[str, str]] = {}


def make_user(server):
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("tok")})
    assert r.status == 201, r
    account = r.json()["account_id"]
    ADMINS[account] = (r.json()["admin"]["access_key_id"], r.json()["admin"]["secret_access_key"])
    r = server.admin("POST", f"/admin/v1/tenants/{account}/principals", {"kind": "user", "name": "svc"})
    assert r.status == 201, r
    server.apply_policy(account, "svc", permit(f"arn:aws:iam::{account}:user/svc",
                                               ["kinesis:CreateStream", "kinesis:ListStreams"]))
    return account


def issue(server, account: str, ttl: int | None = None):
    body = {} if ttl is None else {"ttl_seconds": ttl}
    r = server.admin("POST", f"/admin/v1/tenants/{account}/principals/user/svc/tokens", body,
                     credentials=ADMINS[account])
    assert r.status == 201, r
    return r.json()


def test_jwks_is_served(server):
    account = make_user(server)
    issue(server, account)
    r = server.admin("GET", "/admin/v1/jwks.json", sign=False)
    assert r.status == 200, r
    keys = r.json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" and k["kid"]
                        for k in keys)
    assert not any("d" in k for k in keys), "private key material in the JWKS"


def test_a_token_works_on_both_apis_until_revoked(server):
    account = make_user(server)
    token = issue(server, account)
    r = bearer_call(server, token["token"], "CreateStream", {"StreamName": "from-token", "ShardCount": 1})
    assert r.status == 200, r
    r = bearer_call(server, token["token"], "ListStreams", {})
    assert r.status == 200 and r.json()["StreamNames"] == ["from-token"], r
    # The stream is the token's tenant's, not the administering tenant's.
    assert "from-token" not in server.client().list_streams(Limit=10000)["StreamNames"]
    # svc is no admin: the admin API refuses it, after authenticating it.
    r = server.admin("GET", f"/admin/v1/tenants/{account}/principals", bearer=token["token"])
    assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    r = server.admin("POST", f"/admin/v1/tenants/{account}/tokens/{token['token_id']}/revoke")
    assert r.status == 200, r
    r = bearer_call(server, token["token"], "ListStreams", {})
    assert r.status == 400 and r.error_type() == "UnrecognizedClientException", r


def test_an_expired_token_is_refused(server):
    account = make_user(server)
    token = issue(server, account, ttl=1)
    assert bearer_call(server, token["token"], "ListStreams", {}).status == 200
    time.sleep(4.5)
    r = bearer_call(server, token["token"], "ListStreams", {})
    assert r.status == 400 and r.error_type() == "ExpiredTokenException", r


def test_forged_tokens_are_refused(server):
    account = make_user(server)
    token = issue(server, account)["token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 86400
    forged = [
        f"{header}.{b64url(json.dumps(claims).encode())}.{signature}",   # tampered payload
        f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.",  # alg none
        f"{header}.{payload}.{signature[:-4]}AAAA",                     # another signature
        "not.a.token",
    ]
    for f in forged:
        r = bearer_call(server, f, "ListStreams", {})
        assert r.status == 400 and r.error_type() == "UnrecognizedClientException", (f, r)


def test_token_lifetime_bounds(server):
    account = make_user(server)
    for ttl in (0, 13 * 3600):
        r = server.admin("POST", f"/admin/v1/tenants/{account}/principals/user/svc/tokens", {"ttl_seconds": ttl},
                         credentials=ADMINS[account])
        assert r.status == 400 and r.error_type() == "InvalidArgumentException", r
