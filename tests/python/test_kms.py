"""The KMS API (TrentService, JSON 1.1) through boto3's `kms` client against the real
server: every operation, AWS's error types, alias resolution, rotation, encryption
context, tenant isolation and crypto-shredding by the key-deletion sweep."""

from __future__ import annotations

import base64
import datetime as dt
import struct
import time
import uuid

import pytest

from harness import REGION, expect_error, unique_name


@pytest.fixture(scope="module")
def tenants(server):
    """Two tenants, each with its admin's key pair, made by the administering tenant."""
    out = {}
    for label in ("a", "b"):
        r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name(f"kms-{label}")})
        assert r.status == 201, r
        t = r.json()
        out[label] = (t["account_id"], (t["admin"]["access_key_id"], t["admin"]["secret_access_key"]))
    return out


def blob_version(blob: bytes) -> int:
    """The key version a ciphertext blob names (format in envelope/src/ciphertext.rs)."""
    assert blob[0] == 1
    return struct.unpack(">I", blob[29:33])[0]


def test_create_describe_and_list_keys(kms):
    made = kms.create_key(Description="orders key")["KeyMetadata"]
    key_id = made["KeyId"]
    assert uuid.UUID(key_id)
    account = made["AWSAccountId"]
    assert made["Arn"] == f"arn:aws:kms:{REGION}:{account}:key/{key_id}"
    assert made["KeyState"] == "Enabled" and made["Enabled"] is True
    assert made["KeyUsage"] == "ENCRYPT_DECRYPT" and made["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert made["KeyManager"] == "CUSTOMER" and made["Description"] == "orders key"
    assert isinstance(made["CreationDate"], dt.datetime)
    for name in (key_id, made["Arn"]):
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key_id
    second = kms.create_key()["KeyMetadata"]["KeyId"]
    # Paging one key at a time reaches both.
    seen, marker = [], None
    while True:
        page = kms.list_keys(Limit=1, **({"Marker": marker} if marker else {}))
        assert len(page["Keys"]) <= 1
        seen += [k["KeyId"] for k in page["Keys"]]
        for k in page["Keys"]:
            assert k["KeyArn"].endswith(f":key/{k['KeyId']}")
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert {key_id, second} <= set(seen)
    assert len(seen) == len(set(seen))
    with expect_error("NotFoundException"):
        kms.describe_key(KeyId=str(uuid.uuid4()))
    with expect_error("NotFoundException"):
        kms.describe_key(KeyId=f"arn:aws:kms:eu-west-1:{account}:key/{key_id}")
    with expect_error("InvalidMarkerException"):
        kms.list_keys(Marker="not-a-marker")
    # Keys of other specs are test_kms_asymmetric.py's; SM2 is China's alone.
    with expect_error("UnsupportedOperationException"):
        kms.create_key(KeySpec="SM2", KeyUsage="ENCRYPT_DECRYPT")
    # Key policies are Cedar or IAM JSON (test_kms_grants.py); a JSON one without
    # statements means nothing and is refused.
    with expect_error("MalformedPolicyDocumentException"):
        kms.create_key(Policy='{"Version": "2012-10-17"}')


def test_aliases_resolve_like_key_ids(kms):
    key = kms.create_key()["KeyMetadata"]
    other = kms.create_key()["KeyMetadata"]
    alias = f"alias/{unique_name('orders')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{key['AWSAccountId']}:{alias}"
    for name in (alias, alias_arn):
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]
    blob = kms.encrypt(KeyId=alias, Plaintext=b"via alias")["CiphertextBlob"]
    out = kms.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"via alias" and out["KeyId"] == key["Arn"]
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [(a["AliasName"], a["AliasArn"], a["TargetKeyId"]) for a in listed] == [
        (alias, alias_arn, key["KeyId"])
    ]
    assert alias in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert kms.list_aliases(KeyId=other["KeyId"])["Aliases"] == []
    with expect_error("AlreadyExistsException"):
        kms.create_alias(AliasName=alias, TargetKeyId=other["KeyId"])
    # KMS's answers, as the public emulator suites recorded them from AWS.
    with expect_error("NotAuthorizedException"):
        kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=key["KeyId"])
    with expect_error("ValidationException", message="Invalid identifier"):
        kms.create_alias(AliasName="orders", TargetKeyId=key["KeyId"])
    with expect_error("ValidationException", message="alias/my:alias contains invalid characters"):
        kms.create_alias(AliasName="alias/my:alias", TargetKeyId=key["KeyId"])
    with expect_error("ValidationException", message="^[a-zA-Z0-9:/_-]+$"):
        kms.create_alias(AliasName="alias/my-alias!", TargetKeyId=key["KeyId"])
    with expect_error("ValidationException"):
        kms.create_alias(AliasName="alias/has space", TargetKeyId=key["KeyId"])
    with expect_error("ValidationException"):
        kms.create_alias(AliasName=f"alias/{unique_name('x')}", TargetKeyId=alias)
    with expect_error("NotFoundException"):
        kms.create_alias(AliasName=f"alias/{unique_name('x')}", TargetKeyId=str(uuid.uuid4()))
    kms.delete_alias(AliasName=alias)
    with expect_error("NotFoundException"):
        kms.describe_key(KeyId=alias)
    with expect_error("NotFoundException"):
        kms.delete_alias(AliasName=alias)
    # The name is free again, for another key.
    kms.create_alias(AliasName=alias, TargetKeyId=other["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == other["KeyId"]


def test_encrypt_decrypt_and_encryption_context(kms, raw_kms):
    key = kms.create_key()["KeyMetadata"]
    other = kms.create_key()["KeyMetadata"]
    ctx = {"stream": "orders", "tenant": "a"}
    out = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello", EncryptionContext=ctx)
    assert out["KeyId"] == key["Arn"] and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = out["CiphertextBlob"]
    assert b"hello" not in blob
    # Decrypt needs no KeyId: the blob names its key.
    back = kms.decrypt(CiphertextBlob=blob, EncryptionContext=dict(reversed(list(ctx.items()))))
    assert back["Plaintext"] == b"hello" and back["KeyId"] == key["Arn"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=key["Arn"])["Plaintext"] == b"hello"
    with expect_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other["KeyId"])
    for wrong in ({}, {"stream": "orders"}, {**ctx, "tenant": "b"}, {**ctx, "extra": "1"}):
        with expect_error("InvalidCiphertextException"):
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=wrong)
    for i in (0, 20, 40, len(blob) - 1):
        bad = bytearray(blob)
        bad[i] ^= 1
        with expect_error("InvalidCiphertextException", "NotFoundException"):
            kms.decrypt(CiphertextBlob=bytes(bad), EncryptionContext=ctx)
    with expect_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=b"\x01" * 100)
    with expect_error("ValidationException"):
        raw_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    with expect_error("ValidationException"):
        raw_kms.decrypt(CiphertextBlob=b"x" * 6145)
    with expect_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4096)["CiphertextBlob"]


def test_generate_data_keys(kms, raw_kms):
    key = kms.create_key()["KeyMetadata"]
    ctx = {"purpose": "records"}
    for spec, size in (("AES_256", 32), ("AES_128", 16)):
        out = kms.generate_data_key(KeyId=key["KeyId"], KeySpec=spec, EncryptionContext=ctx)
        assert len(out["Plaintext"]) == size and out["KeyId"] == key["Arn"]
        assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == out["Plaintext"]
    out = kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)
    assert len(out["Plaintext"]) == 64
    two = kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)
    assert two["Plaintext"] != out["Plaintext"]
    bare = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")
    assert "Plaintext" not in bare
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 32
    with expect_error("ValidationException"):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", NumberOfBytes=32)
    with expect_error("ValidationException"):
        kms.generate_data_key(KeyId=key["KeyId"])
    with expect_error("ValidationException"):
        raw_kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=1025)


def test_disabled_keys_refuse_cryptography_until_enabled(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and meta["Enabled"] is False
    with expect_error("DisabledException", status=409):
        kms.encrypt(KeyId=key, Plaintext=b"x")
    with expect_error("DisabledException", status=409):
        kms.decrypt(CiphertextBlob=blob)
    with expect_error("DisabledException", status=409):
        kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    kms.disable_key(KeyId=key)  # already disabled: no error, as AWS
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_schedule_and_cancel_key_deletion(kms, raw_kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    for days in (6, 31):
        with expect_error("ValidationException"):
            raw_kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=days)
    before = dt.datetime.now(dt.timezone.utc)
    out = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    assert dt.timedelta(days=7) - dt.timedelta(minutes=1) < out["DeletionDate"] - before < dt.timedelta(days=7, minutes=1)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["DeletionDate"] == out["DeletionDate"]
    for call in (
        lambda: kms.encrypt(KeyId=key, Plaintext=b"x"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.enable_key(KeyId=key),
        lambda: kms.disable_key(KeyId=key),
        lambda: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
        lambda: kms.create_alias(AliasName=f"alias/{unique_name('d')}", TargetKeyId=key),
    ):
        with expect_error("KMSInvalidStateException", status=409):
            call()
    assert kms.cancel_key_deletion(KeyId=key)["KeyId"].endswith(key)
    with expect_error("KMSInvalidStateException", status=409):
        kms.cancel_key_deletion(KeyId=key)
    # AWS leaves a key whose deletion was cancelled disabled.
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_rotation_keeps_old_ciphertexts_readable(kms, raw_kms):
    key = kms.create_key()["KeyMetadata"]
    key_id = key["KeyId"]
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False
    with expect_error("ValidationException"):
        raw_kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=89)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    assert status["NextRotationDate"] > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=89)
    blobs = [kms.encrypt(KeyId=key_id, Plaintext=b"v1", EncryptionContext={"n": "1"})["CiphertextBlob"]]
    assert blob_version(blobs[0]) == 1
    for n in (2, 3):
        # AWS answers the key id here.
        assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == key["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"v%d" % n, EncryptionContext={"n": str(n)})["CiphertextBlob"]
        assert blob_version(blob) == n
        blobs.append(blob)
    for n, blob in enumerate(blobs, start=1):
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"n": str(n)})["Plaintext"] == b"v%d" % n
    # ReEncrypt moves an old ciphertext to the newest version.
    moved = kms.re_encrypt(CiphertextBlob=blobs[0], SourceEncryptionContext={"n": "1"},
                           DestinationKeyId=key_id)["CiphertextBlob"]
    assert blob_version(moved) == 3
    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.disable_key(KeyId=key_id)
    with expect_error("DisabledException", status=409):
        kms.rotate_key_on_demand(KeyId=key_id)
    with expect_error("DisabledException", status=409):
        kms.enable_key_rotation(KeyId=key_id)


def test_automatic_rotation_by_the_sweep(server, kms):
    """Automatic rotation is due after its period (90 days at least); the test moves the
    due date into the past in the catalog and waits for the server's sweep."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    old = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    assert blob_version(old) == 1
    server.sql(f"UPDATE kms_keys SET next_rotation_ms = 0 WHERE key_id = '{key_id}'")
    deadline = time.monotonic() + 30
    while blob_version(kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]) == 1:
        assert time.monotonic() < deadline, "the sweep did not rotate the key"
        time.sleep(0.5)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["NextRotationDate"] > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=89)
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"


def test_re_encrypt_between_keys_and_contexts(kms):
    source = kms.create_key()["KeyMetadata"]
    target = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=source["KeyId"], Plaintext=b"moving", EncryptionContext={"a": "1"})["CiphertextBlob"]
    out = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"},
                         DestinationKeyId=target["Arn"], DestinationEncryptionContext={"b": "2"})
    assert out["SourceKeyId"] == source["Arn"] and out["KeyId"] == target["Arn"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"b": "2"})
    assert back["Plaintext"] == b"moving" and back["KeyId"] == target["Arn"]
    with expect_error("InvalidCiphertextException"):
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "2"}, DestinationKeyId=target["KeyId"])
    with expect_error("IncorrectKeyException"):
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"}, SourceKeyId=target["KeyId"],
                       DestinationKeyId=target["KeyId"])


def test_another_tenants_keys_are_out_of_reach(server, tenants):
    account_a, creds_a = tenants["a"]
    account_b, creds_b = tenants["b"]
    kms_a = server.client(service="kms", credentials=creds_a)
    kms_b = server.client(service="kms", credentials=creds_b)
    key = kms_a.create_key()["KeyMetadata"]
    assert key["AWSAccountId"] == account_a
    alias = f"alias/{unique_name('shared')}"
    kms_a.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = kms_a.encrypt(KeyId=key["KeyId"], Plaintext=b"a's secret")["CiphertextBlob"]
    # By ARN (key or alias) the platform policy denies it, naming the action.
    for name in (key["Arn"], f"arn:aws:kms:{REGION}:{account_a}:{alias}"):
        with expect_error("AccessDeniedException") as e:
            kms_b.encrypt(KeyId=name, Plaintext=b"x")
        assert "kms:Encrypt" in str(e.exc)
    with expect_error("AccessDeniedException") as e:
        kms_b.decrypt(CiphertextBlob=blob)
    assert "kms:Decrypt" in str(e.exc)
    with expect_error("AccessDeniedException"):
        kms_b.disable_key(KeyId=key["Arn"])
    # By bare id or alias name, B's own account has no such key.
    with expect_error("NotFoundException"):
        kms_b.describe_key(KeyId=key["KeyId"])
    with expect_error("NotFoundException"):
        kms_b.describe_key(KeyId=alias)
    with expect_error("NotFoundException"):
        kms_b.create_alias(AliasName=f"alias/{unique_name('steal')}", TargetKeyId=key["KeyId"])
    assert key["KeyId"] not in {k["KeyId"] for k in kms_b.list_keys()["Keys"]}
    assert alias not in {a["AliasName"] for a in kms_b.list_aliases()["Aliases"]}
    # The same alias name is B's own in B's account.
    own = kms_b.create_key()["KeyMetadata"]
    kms_b.create_alias(AliasName=alias, TargetKeyId=own["KeyId"])
    assert kms_b.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == own["KeyId"]
    assert kms_a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"a's secret"


def test_deleted_keys_are_shredded_by_the_sweep(server, kms):
    """The waiting period is at least 7 days, as AWS's; the test moves the deletion date
    into the past in the catalog (no API may) and waits for the server's sweep."""
    key = kms.create_key()["KeyMetadata"]
    key_id = key["KeyId"]
    alias = f"alias/{unique_name('doomed')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"soon unreadable")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    time.sleep(6)  # longer than a sweep interval: not due, so still there
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    server.sql(f"UPDATE kms_keys SET deletion_date_ms = 0 WHERE key_id = '{key_id}'")
    deadline = time.monotonic() + 30
    while True:
        try:
            kms.describe_key(KeyId=key_id)
        except kms.exceptions.NotFoundException:
            break
        assert time.monotonic() < deadline, "the sweep did not destroy the key"
        time.sleep(0.5)
    with expect_error("NotFoundException"):
        kms.decrypt(CiphertextBlob=blob)
    with expect_error("NotFoundException"):
        kms.describe_key(KeyId=alias)
    with expect_error("NotFoundException"):
        kms.cancel_key_deletion(KeyId=key_id)
    assert key_id not in {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}


def test_kms_requests_must_be_signed_for_kms(server):
    """A request signed for the kinesis service is refused on a TrentService target."""
    body = b'{"KeyId": "alias/none"}'
    target = {"X-Amz-Target": "TrentService.DescribeKey"}
    r = server.raw(None, body, headers=target)
    assert r.status in (400, 403) and r.error_type() in ("InvalidSignatureException", "IncompleteSignatureException"), r
    r = server.raw(None, body, headers=target, service="kms")
    assert r.status == 400 and r.error_type() == "NotFoundException", r


def test_concurrent_encrypt_decrypt_and_rotation_see_no_wrong_plaintext(server):
    """Many threads encrypt and decrypt while another rotates the key on demand: every
    ciphertext, old or new, decrypts to exactly its plaintext."""
    import os
    import threading

    kms = server.client(service="kms", max_pool_connections=16)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    deadline = time.monotonic() + 5
    failures: list[str] = []
    made: list[tuple[bytes, dict, bytes]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = server.client(service="kms")
        i = 0
        while time.monotonic() < deadline and not failures:
            plaintext = os.urandom(1 + (i * 37 + n) % 200)
            ctx = {"worker": str(n), "i": str(i)}
            blob = client.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=ctx)["CiphertextBlob"]
            with lock:
                made.append((plaintext, ctx, blob))
                old = made[(i * 7919) % len(made)]
            for p, c, b in ((plaintext, ctx, blob), old):
                got = client.decrypt(CiphertextBlob=b, EncryptionContext=c)["Plaintext"]
                if got != p:
                    failures.append(f"worker {n}: wrong plaintext for {c}")
            i += 1

    def rotator() -> None:
        client = server.client(service="kms")
        for _ in range(20):
            if time.monotonic() >= deadline:
                break
            client.rotate_key_on_demand(KeyId=key_id)
            time.sleep(0.2)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)] + [threading.Thread(target=rotator)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    versions = {blob_version(b) for _, _, b in made}
    assert len(made) > 50 and len(versions) > 3, (len(made), versions)
    for p, c, b in made[:: max(1, len(made) // 50)]:
        assert kms.decrypt(CiphertextBlob=b, EncryptionContext=c)["Plaintext"] == p


def test_aws_cli_kms_as_the_readme_shows(server, tmp_path):
    import json as _json
    import os
    import subprocess
    import sys
    from pathlib import Path

    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("aws (the awscli package) is not installed in this virtualenv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
    })
    base = [str(aws), "--endpoint-url", server.endpoint, "--ca-bundle", server.ca, "--output", "json", "kms"]

    def run(*args):
        p = subprocess.run(base + list(args), env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"aws kms {' '.join(args)} failed: {p.stderr}"
        return _json.loads(p.stdout) if p.stdout.strip() else None

    key = run("create-key", "--description", "orders")["KeyMetadata"]
    plaintext = tmp_path / "plain.txt"
    plaintext.write_bytes(b"from the AWS CLI")
    blob = run("encrypt", "--key-id", key["KeyId"], "--plaintext", f"fileb://{plaintext}",
               "--encryption-context", "purpose=cli")["CiphertextBlob"]
    ciphertext = tmp_path / "blob"
    ciphertext.write_bytes(base64.b64decode(blob))
    out = run("decrypt", "--ciphertext-blob", f"fileb://{ciphertext}", "--encryption-context", "purpose=cli")
    assert base64.b64decode(out["Plaintext"]) == b"from the AWS CLI" and out["KeyId"] == key["Arn"]
