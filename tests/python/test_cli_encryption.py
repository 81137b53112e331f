"""Client-side encryption with the CLI: `sluice put --encrypt KEY` seals each record
before it leaves the client, so the server (and anyone reading a stream with plain
GetRecords) sees only ciphertext; `sluice get --decrypt` opens them again."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess

from harness import unique_name


def sluice(binary, server, *args, stdin=None, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update({
        "SLUICE_ENDPOINT": f"127.0.0.1:{server.port}",
        "SLUICE_CA": server.ca,
        "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        "RUST_BACKTRACE": "0",
    })
    p = subprocess.run([str(binary), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"sluice {' '.join(args)}: {p.stderr}"
    return p


def lines(p):
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_put_encrypt_and_get_decrypt(binary, server, kinesis, new_stream):
    name = new_stream(shards=2)
    kms = server.client(service="kms")
    key = kms.create_key(Description="client-side")["KeyMetadata"]
    alias = f"alias/{unique_name('cli')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    secrets = [f"card-4111-1111-{i:04d}" for i in range(5)]
    put = lines(sluice(binary, server, "put", "--stream", name, "--partition-key", "pk-1",
                       "--encrypt", alias, *secrets[:3]))
    assert len(put) == 3 and all(r["SequenceNumber"] for r in put)
    # Records from stdin, one per line.
    sluice(binary, server, "put", "--stream", name, "--partition-key", "pk-2", "--encrypt", key["Arn"],
           stdin="\n".join(secrets[3:]) + "\n")

    # What the server stores and serves is the envelope, never the plaintext.
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=name)["Shards"]]
    stored = []
    for shard in shards:
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        stored += kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]
    assert len(stored) == 5
    for r in stored:
        data = r["Data"]
        assert data[:5] == b"SLCE\x01"
        assert not any(s.encode() in data for s in secrets)
        n = struct.unpack(">H", data[5:7])[0]
        wrapped = data[7:7 + n]
        # The wrapped data key is a KMS blob of this key: KMS opens it with the context.
        out = kms.decrypt(CiphertextBlob=wrapped, EncryptionContext={"sluice:stream": name})
        assert out["KeyId"] == key["Arn"] and len(out["Plaintext"]) == 32

    # Plain `get` shows ciphertext; `get --decrypt` the records.
    raw = lines(sluice(binary, server, "get", "--stream", name))
    assert sorted(base64.b64decode(r["Data"]) for r in raw) == sorted(r["Data"] for r in stored)
    opened = lines(sluice(binary, server, "get", "--stream", name, "--decrypt"))
    assert sorted(base64.b64decode(r["Data"]).decode() for r in opened) == sorted(secrets)
    assert {r["PartitionKey"] for r in opened} == {"pk-1", "pk-2"}

    # A record put in the clear is printed as stored, marked and reported, and the
    # encrypted ones around it still decrypt.
    sluice(binary, server, "put", "--stream", name, "plain")
    p = sluice(binary, server, "get", "--stream", name, "--decrypt", check=False)
    assert p.returncode == 0, p.stderr
    out = lines(p)
    clear = [r for r in out if not r["Decrypted"]]
    assert [base64.b64decode(r["Data"]) for r in clear] == [b"plain"]
    assert sorted(base64.b64decode(r["Data"]).decode() for r in out if r["Decrypted"]) == sorted(secrets)
    assert "not client-side encrypted; printed as stored" in p.stderr
    # A record that claims to be an envelope and does not open is an error, not passed through.
    sluice(binary, server, "put", "--stream", name, "SLCE\x01forged")
    p = sluice(binary, server, "get", "--stream", name, "--decrypt", check=False)
    assert p.returncode != 0

    # With the key disabled, the data keys no longer unwrap: nothing decrypts.
    other = new_stream()
    sluice(binary, server, "put", "--stream", other, "--encrypt", alias, "x")
    kms.disable_key(KeyId=key["KeyId"])
    p = sluice(binary, server, "get", "--stream", other, "--decrypt", check=False)
    assert p.returncode != 0 and "DisabledException" in p.stderr
    p = sluice(binary, server, "put", "--stream", other, "--encrypt", alias, "y", check=False)
    assert p.returncode != 0 and "DisabledException" in p.stderr
    kms.enable_key(KeyId=key["KeyId"])
    assert [base64.b64decode(r["Data"]) for r in lines(sluice(binary, server, "get", "--stream", other, "--decrypt"))] == [b"x"]
