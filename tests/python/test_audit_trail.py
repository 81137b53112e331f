"""The audit trail: data events only when the tenant turns them on (denials always),
and a hash chain that `sluice audit verify` checks, so an edited, deleted or added row
is found even by someone who could get past the database's triggers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time

from harness import ACCOUNT_ID, SluiceServer, unique_name


def sluice(binary, server, *args, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update({"SLUICE_ENDPOINT": f"127.0.0.1:{server.port}", "SLUICE_CA": server.ca,
                "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file)})
    p = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def actions(server, after: int = 0) -> list[dict]:
    r = server.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/audit?after={after}&limit=10000")
    assert r.status == 200, r
    return [json.loads(line) for line in r.body.decode().splitlines() if line.strip()]


def settle(server) -> int:
    """Waits for the audit writer to catch up; returns the newest row id."""
    name = unique_name("marker")
    server.client().list_streams(ExclusiveStartStreamName=name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = actions(server)
        if any(r["action"] == "kinesis:ListStreams" and r["at_ms"] for r in rows[-20:]):
            return rows[-1]["id"]
        time.sleep(0.2)
    raise AssertionError("the audit writer did not catch up")


def write_and_read(server, name: str) -> None:
    client = server.client()
    client.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    client.put_records(StreamName=name, Records=[{"Data": b"y", "PartitionKey": "k"}])
    shard = client.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    it = client.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    client.get_records(ShardIterator=it["ShardIterator"])


DATA = {"kinesis:PutRecord", "kinesis:PutRecords", "kinesis:GetShardIterator", "kinesis:GetRecords"}


def test_data_events_are_audited_only_when_turned_on(binary, server, new_stream):
    name = new_stream()
    start = settle(server)
    write_and_read(server, name)
    after = settle(server)
    seen = {r["action"] for r in actions(server, start) if r["id"] <= after}
    assert not seen & DATA, seen
    assert json.loads(sluice(binary, server, "audit", "data-events", "--tenant", ACCOUNT_ID).stdout) == \
        {"data_events": False}
    sluice(binary, server, "audit", "data-events", "--tenant", ACCOUNT_ID, "on")
    try:
        write_and_read(server, name)
        settle(server)
        seen = {r["action"] for r in actions(server, after) if r["decision"] == "Allow"}
        assert DATA <= seen, seen
    finally:
        sluice(binary, server, "audit", "data-events", "--tenant", ACCOUNT_ID, "off")


def test_audit_verify_finds_an_edited_or_deleted_row(binary):
    srv = SluiceServer(binary, name="sluice-audit-chain").start()
    try:
        client = srv.client()
        for i in range(5):
            client.create_stream(StreamName=f"chain-{i}", ShardCount=1)
        settle(srv)
        p = sluice(binary, srv, "audit", "verify")
        report = json.loads(p.stdout)
        assert report["intact"] and report["batches"] >= 1 and report["rows"] >= 5, report
        if srv.database_url:
            return
        db = sqlite3.connect(str(srv.data_dir / "catalog.db"), timeout=30)
        try:
            # Past the triggers, as someone with the database file could.
            db.execute("DROP TRIGGER audit_log_no_update")
            db.execute("UPDATE audit_log SET decision = 'Deny' WHERE action = 'kinesis:CreateStream' "
                       "AND id = (SELECT MIN(id) FROM audit_log WHERE action = 'kinesis:CreateStream')")
            db.commit()
        finally:
            db.close()
        p = sluice(binary, srv, "audit", "verify", check=False)
        assert p.returncode != 0
        assert "do not match its hash" in p.stdout, p.stdout
    finally:
        srv.close()
