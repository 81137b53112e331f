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
