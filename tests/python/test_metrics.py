"""Prometheus metrics at GET /metrics: over TLS, authenticated, and authorized by Cedar
(the administering tenant's principals; a scraper can use a bearer token)."""

from __future__ import annotations

import re

from harness import permit, unique_name


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample, by its name and (a subset of) its labels."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_count_requests_and_stream_traffic(server, new_stream):
    name = new_stream()
    client = server.client()
    for i in range(3):
        client.put_record(StreamName=name, Data=b"abcd", PartitionKey=f"k{i}")
    client.put_records(StreamName=name, Records=[{"Data": b"xy", "PartitionKey": "k"}] * 2)
    it = client.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert len(client.get_records(ShardIterator=it)["Records"]) == 5
    r = server.admin("GET", "/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain"), r
    text = r.body.decode()
    account = "000000000000"
    assert sample(text, "sluice_stream_records_in_total", account=account, stream=name) == 5
    assert sample(text, "sluice_stream_bytes_in_total", account=account, stream=name) == 3 * 4 + 2 * 2
    assert sample(text, "sluice_stream_records_out_total", account=account, stream=name) == 5
    assert sample(text, "sluice_requests_total", api="kinesis", operation="PutRecord", outcome="ok") >= 3
    assert sample(text, "sluice_request_duration_seconds_count", api="kinesis", operation="PutRecords") >= 1
    assert sample(text, "sluice_commit_batch_records_count") >= 2
    assert sample(text, "sluice_object_store_duration_seconds_count", op="append") >= 2
    assert sample(text, "sluice_catalog_duration_seconds_count", op="commit") >= 2
    # Refusals are counted by their AWS error type.
    raw = server.client(validate=False)
    try:
        raw.describe_stream_summary(StreamName=unique_name("missing"))
    except Exception:
        pass
    text = server.admin("GET", "/metrics").body.decode()
    assert sample(text, "sluice_requests_total", operation="DescribeStreamSummary",
                  outcome="ResourceNotFoundException") >= 1


def test_only_the_administering_tenant_reads_metrics(server):
    assert server.admin("GET", "/metrics", sign=False).status == 401
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("m")})
    t = r.json()
    tenant_admin = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
    r = server.admin("GET", "/metrics", credentials=tenant_admin)
    assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    # A scraper: a principal of the administering tenant, allowed by that tenant's
    # policy, with a bearer token (Prometheus's `authorization` setting).
    scraper = unique_name("prom")
    operator = "000000000000"
    assert server.admin("POST", f"/admin/v1/tenants/{operator}/principals",
                        {"kind": "user", "name": scraper}).status == 201
    arn = f"arn:aws:iam::{operator}:user/{scraper}"
    token = server.admin("POST", f"/admin/v1/tenants/{operator}/principals/user/{scraper}/tokens").json()["token"]
    assert server.admin("GET", "/metrics", bearer=token).status == 403
    server.apply_policy(operator, f"principal/user/{scraper}", permit(arn, ["sluice:ReadMetrics"]))
    r = server.admin("GET", "/metrics", bearer=token)
    assert r.status == 200 and "sluice_requests_total" in r.body.decode(), r


def test_a_scraper_reads_metrics_with_a_long_lived_basic_credential(server):
    # Prometheus's basic_auth with a password file: an access key of a principal whose
    # policy allows sluice:ReadMetrics only. It never expires, and it works nowhere else.
    import base64
    import http.client
    operator = "000000000000"
    scraper = unique_name("basic")
    assert server.admin("POST", f"/admin/v1/tenants/{operator}/principals",
                        {"kind": "user", "name": scraper}).status == 201
    key = server.admin("POST", f"/admin/v1/tenants/{operator}/principals/user/{scraper}/access-keys").json()
    arn = f"arn:aws:iam::{operator}:user/{scraper}"

    def get(path: str, user: str, password: str, method: str = "GET"):
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=30)
        try:
            auth = base64.b64encode(f"{user}:{password}".encode()).decode()
            conn.request(method, path, body=b"{}" if method == "POST" else None,
                         headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-amz-json-1.1",
                                  "X-Amz-Target": "Kinesis_20131202.ListStreams"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    user, password = key["access_key_id"], key["secret_access_key"]
    assert get("/metrics", user, password)[0] == 403  # Cedar: not yet allowed
    server.apply_policy(operator, f"principal/user/{scraper}", permit(arn, ["sluice:ReadMetrics"]))
    status, body = get("/metrics", user, password)
    assert status == 200 and b"sluice_authorization_decisions_total" in body
    assert get("/metrics", user, "wrong")[0] in (400, 401, 403)
    # Anywhere else Basic is refused, whatever the key may do.
    status, body = get("/", user, password, method="POST")
    assert status == 400 and b"GET /metrics only" in body, body
    status, body = get("/admin/v1/tenants", user, password)
    assert status in (400, 401) and b"GET /metrics only" in body, body
