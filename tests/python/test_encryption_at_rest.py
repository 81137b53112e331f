"""Encryption at rest: records put through the Kinesis API never sit on disk in the clear.

After putting records that carry a unique marker (in their data and their partition
keys), every file under the server's data dir (catalog.db and its -wal/-shm files,
segments, everything) is scanned for the marker, raw and base64-encoded; the root key
appears nowhere but in its own file. The records still read back intact through
boto3, before and after a restart (which must unwrap the data keys from the catalog).
"""

from __future__ import annotations

import base64
import sqlite3
import uuid
from pathlib import Path

from conftest import create_stream
from harness import psql, read_shard


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_nowhere(data_dir: Path, needles: dict[str, bytes], skip: set[Path] = frozenset()) -> int:
    """Fails naming the file and needle if any needle appears in any file; returns bytes scanned."""
    scanned = 0
    for path in files_under(data_dir):
        if path in skip:
            continue
        content = path.read_bytes()
        scanned += len(content)
        for label, needle in needles.items():
            assert needle not in content, f"{label} found in the clear in {path.relative_to(data_dir)}"
    return scanned


def test_marker_never_at_rest_and_records_read_back(make_server):
    srv = make_server()
    client = srv.client()
    name = create_stream(client, shards=2, prefix="at-rest")
    marker = f"SLUICE-MARKER-{uuid.uuid4().hex}".encode()
    key_marker = f"PKEY-{uuid.uuid4().hex}"

    sent: dict[str, bytes] = {}
    for i in range(20):
        data = marker + f" single {i}".encode()
        r = client.put_record(StreamName=name, Data=data, PartitionKey=f"{key_marker}-{i}")
        sent[r["SequenceNumber"]] = data
    batch = [{"Data": marker + f" batch {i}".encode() * 3, "PartitionKey": f"{key_marker}-b{i}"}
             for i in range(100)]
    r = client.put_records(StreamName=name, Records=batch)
    assert r["FailedRecordCount"] == 0
    for entry, rec in zip(r["Records"], batch):
        sent[entry["SequenceNumber"]] = rec["Data"]
    big = marker * (200_000 // len(marker))
    r = client.put_record(StreamName=name, Data=big, PartitionKey=key_marker)
    sent[r["SequenceNumber"]] = big

    def read_back(c) -> None:
        got: dict[str, bytes] = {}
        for shard in c.list_shards(StreamName=name)["Shards"]:
            for rec in read_shard(c, name, shard["ShardId"]):
                assert rec["PartitionKey"].startswith(key_marker)
                got[rec["SequenceNumber"]] = rec["Data"]
        assert got == sent

    read_back(client)

    data_dir = srv.data_dir
    root_key_path = data_dir / "root.key"
    root_hex = root_key_path.read_text().strip()
    needles = {
        "the record marker": marker,
        "the record marker (base64)": base64.b64encode(marker)[:40],
        "a partition key": key_marker.encode(),
        "the root key (hex)": root_hex.encode(),
        "the root key (bytes)": bytes.fromhex(root_hex),
    }
    # While the server runs: the SQLite WAL holds the newest catalog pages.
    scanned = assert_nowhere(data_dir, needles, skip={root_key_path})
    assert scanned > len(sent) * len(marker), "the scan saw less than the records' size"
    names = {p.name for p in files_under(data_dir)}
    if srv.backend == "sqlite":
        assert "catalog.db" in names

    # After a restart the data keys come back from the catalog, unwrapped under the root key.
    srv.restart()
    read_back(srv.client())
    srv.stop()
    assert_nowhere(data_dir, needles, skip={root_key_path})

    # Every chunk row names a data key, and keys are stored only wrapped.
    if srv.backend == "sqlite":
        db = sqlite3.connect(f"file:{data_dir / 'catalog.db'}?mode=ro", uri=True)
        try:
            unsealed = db.execute("SELECT COUNT(*) FROM chunks WHERE data_key_id IS NULL").fetchone()[0]
            keys = db.execute("SELECT COUNT(*) FROM data_keys").fetchone()[0]
        finally:
            db.close()
    else:
        out = psql(srv.database_url,
                   "SELECT (SELECT COUNT(*) FROM chunks WHERE data_key_id IS NULL), (SELECT COUNT(*) FROM data_keys)")
        assert out.returncode == 0, out.stderr
        unsealed, keys = (int(x) for x in out.stdout.strip().split("|"))
    assert unsealed == 0
    assert keys >= 1


def test_kms_plaintexts_and_data_keys_never_at_rest(make_server):
    """What passes through the KMS API (Encrypt plaintexts, GenerateDataKey's plaintext
    keys) and records of a stream under a tenant key are nowhere in the data dir."""
    srv = make_server()
    kms = srv.client(service="kms")
    kinesis = srv.client()
    key = kms.create_key(Description="at rest")["KeyMetadata"]["KeyId"]
    marker = f"KMS-MARKER-{uuid.uuid4().hex}".encode()
    blob = kms.encrypt(KeyId=key, Plaintext=marker)["CiphertextBlob"]
    data_keys = [kms.generate_data_key(KeyId=key, KeySpec="AES_256")["Plaintext"] for _ in range(5)]
    name = create_stream(kinesis, prefix="at-rest-kms")
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key)
    for i in range(10):
        kinesis.put_record(StreamName=name, Data=marker + b" record %d" % i, PartitionKey="p")
    assert len(read_shard(kinesis, name, "shardId-000000000000")) == 10
    root_key_path = srv.data_dir / "root.key"
    needles = {"the KMS plaintext": marker, "the KMS plaintext (base64)": base64.b64encode(marker)[:40]}
    for i, k in enumerate(data_keys):
        needles[f"data key {i}"] = k
        needles[f"data key {i} (base64)"] = base64.b64encode(k)
    srv.stop()
    assert_nowhere(srv.data_dir, needles, skip={root_key_path})
    srv.restart()
    assert srv.client(service="kms").decrypt(CiphertextBlob=blob)["Plaintext"] == marker
