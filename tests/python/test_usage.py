"""The meter and the bill: usage per tenant, stream, hour and metric through the admin
API and `sluice usage report`. (Exactness to the millisecond is checked with a driven
clock in control-plane's billing tests; here the real clock bounds the figures.)"""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

from harness import unique_name
from test_cli import sluice

HOUR_MS = 3_600_000


def make_tenant(server):
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("bill")})
    assert r.status == 201, r
    t = r.json()
    return t["account_id"], (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])


def report(server, account, start, end, creds=None, fmt="json"):
    return server.admin("GET", f"/admin/v1/tenants/{account}/usage?from={start}&to={end}&format={fmt}",
                        credentials=creds)


def total(lines, metric, stream=None):
    """Quantities are exact decimals, sent as strings."""
    return sum((Decimal(l["quantity"]) for l in lines
                if l["metric"] == metric and (stream is None or l["stream"] == stream)), Decimal(0))


def test_usage_is_metered_per_stream_and_priced(server, binary, tmp_path):
    account, admin = make_tenant(server)
    client = server.client(credentials=admin)
    name = unique_name("metered")
    before_create = int(time.time() * 1000)
    client.create_stream(StreamName=name, ShardCount=2)
    # 1 + 3 + 1 PUT payload units (25 KiB each, rounded up per record).
    client.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    client.put_records(StreamName=name, Records=[{"Data": b"y" * 60 * 1024, "PartitionKey": "k"},
                                                 {"Data": b"z", "PartitionKey": "k"}])
    client.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    time.sleep(1.0)
    client.delete_stream(StreamName=name)
    after_delete = int(time.time() * 1000)
    start, end = before_create - HOUR_MS, after_delete + HOUR_MS
    r = report(server, account, start, end, creds=admin)
    assert r.status == 200, r
    body = r.json()
    lines = body["lines"]
    assert body["currency"] == "USD" and all(l["account_id"] == account for l in lines)
    assert total(lines, "put_payload_units", name) == 5
    shard_hours = total(lines, "shard_hours", name)
    # Two shards, open from creation to deletion (within the client's view of both).
    assert Decimal(2) / 3600 <= shard_hours <= Decimal(2 * (after_delete - before_create)) / HOUR_MS, shard_hours
    extended = total(lines, "extended_retention_shard_hours", name)
    assert 0 < extended < shard_hours
    # Closed intervals stop counting: the same report later says the same.
    time.sleep(0.5)
    again = report(server, account, start, end, creds=admin).json()["lines"]
    assert total(again, "shard_hours", name) == shard_hours
    # Priced by the default (AWS us-east-1) list, named on the report, in exact decimals.
    assert body["price_list"] == "aws-us-east-1-2026-12"
    assert all(isinstance(l[k], str) for l in lines for k in ("quantity", "unit_price", "cost"))
    cost = sum((Decimal(l["cost"]) for l in lines), Decimal(0))
    expected = shard_hours * Decimal("0.015") + extended * Decimal("0.020") + 5 * Decimal("0.000000014")
    assert abs(cost - expected) < Decimal("1e-20"), (cost, expected)
    assert Decimal(body["total"]) == cost

    # CSV through the CLI, with the tenant admin's own credentials.
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n".format(*admin))
    p = sluice(binary, server, "usage", "report", "--tenant", account, "--from", str(start), "--to", str(end),
               "--format", "csv", credentials_file=creds, check=False)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert {r["metric"] for r in rows} == {"shard_hours", "extended_retention_shard_hours", "put_payload_units"}
    assert sum(Decimal(r["quantity"]) for r in rows if r["metric"] == "put_payload_units") == 5
    assert all(r["hour_start"].endswith(":00:00Z") and r["currency"] == "USD" for r in rows)
    assert all(r["price_list"] == "aws-us-east-1-2026-12" for r in rows)


def test_a_tenant_reads_only_its_own_usage(server):
    account_a, admin_a = make_tenant(server)
    account_b, admin_b = make_tenant(server)
    now = int(time.time() * 1000)
    assert report(server, account_a, now - HOUR_MS, now, creds=admin_a).status == 200
    r = report(server, account_a, now - HOUR_MS, now, creds=admin_b)
    assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    assert report(server, account_a, now - HOUR_MS, now).status == 200  # the operator
    r = report(server, account_a, now, now - 1, creds=admin_a)
    assert r.status == 400, r
    r = report(server, account_a, now - 40 * 24 * HOUR_MS, now, creds=admin_a)
    assert r.status == 400, r
    r = report(server, account_a, now - HOUR_MS, now, creds=admin_a, fmt="xml")
    assert r.status == 400 and r.error_type() == "ValidationException", r


def test_an_operator_price_list_prices_the_bill(make_server, tmp_path, binary):
    import json
    import subprocess
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"currency": "EUR", "shard_hour": 1.0, "extended_retention_shard_hour": 0.0,
                                  "put_payload_unit": 0.5, "kms_request": 0.0}))
    srv = make_server("--price-list", str(prices))
    account, admin = make_tenant(srv)
    client = srv.client(credentials=admin)
    client.create_stream(StreamName="priced", ShardCount=1)
    client.put_record(StreamName="priced", Data=b"x", PartitionKey="k")
    now = int(time.time() * 1000)
    body = report(srv, account, now - HOUR_MS, now + HOUR_MS, creds=admin).json()
    assert body["currency"] == "EUR"
    units = [l for l in body["lines"] if l["metric"] == "put_payload_units"]
    assert [(Decimal(u["quantity"]), Decimal(u["unit_price"]), Decimal(u["cost"])) for u in units] == \
        [(1, Decimal("0.5"), Decimal("0.5"))]
    assert body["price_list"] == "custom"
    hours = [l for l in body["lines"] if l["metric"] == "shard_hours"]
    assert all(Decimal(l["cost"]) == Decimal(l["quantity"]) for l in hours)
    # A price list with a negative or unknown price is refused at start.
    prices.write_text(json.dumps({"currency": "EUR", "shard_hour": -1.0, "extended_retention_shard_hour": 0.0,
                                  "put_payload_unit": 0.5, "kms_request": 0.0}))
    r = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                        "--price-list", str(prices)], capture_output=True, timeout=30)
    assert r.returncode != 0 and b"shard_hour" in r.stderr, r.stderr


def test_kms_requests_are_metered(server):
    account, admin = make_tenant(server)
    kms = server.client(service="kms", credentials=admin)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(3):
        kms.encrypt(KeyId=key, Plaintext=b"x")
    now = int(time.time() * 1000)
    lines = report(server, account, now - HOUR_MS, now + HOUR_MS, creds=admin).json()["lines"]
    assert total(lines, "kms_requests", "") == 4, lines


def test_on_demand_streams_bill_stream_hours_and_gib(server):
    account, admin = make_tenant(server)
    client = server.client(credentials=admin)
    name = unique_name("od")
    client.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    # Two records of 1 KiB + 1 byte (with the key): 2 KiB each on demand.
    client.put_records(StreamName=name, Records=[{"Data": b"a" * 1024, "PartitionKey": "k"}] * 2)
    read = 0
    for shard in client.list_shards(StreamName=name)["Shards"]:
        it = client.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        read += sum(len(r["Data"]) for r in client.get_records(ShardIterator=it)["Records"])
    assert read == 2048
    now = int(time.time() * 1000)
    lines = report(server, account, now - HOUR_MS, now + HOUR_MS, creds=admin).json()["lines"]
    assert total(lines, "on_demand_stream_hours", name) > 0
    assert total(lines, "shard_hours", name) == 0
    assert total(lines, "put_payload_units", name) == 0
    assert total(lines, "on_demand_ingress_gib", name) == Decimal(4) / (1 << 20)
    assert total(lines, "on_demand_egress_gib", name) == Decimal(2048) / (1 << 30)


def test_a_customer_managed_key_bills_by_the_month(server):
    account, admin = make_tenant(server)
    kms = server.client(service="kms", credentials=admin)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    time.sleep(0.2)
    now = int(time.time() * 1000)
    lines = report(server, account, now - HOUR_MS, now + HOUR_MS, creds=admin).json()["lines"]
    months = total(lines, "kms_key_months", key)
    assert 0 < months < Decimal(1) / 730
