"""The `sluice` CLI's administration verbs against a running server."""

from __future__ import annotations

import json
import os
import subprocess

from harness import permit, unique_name


def sluice(binary, server, *args, credentials_file=None, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update({
        "SLUICE_ENDPOINT": f"127.0.0.1:{server.port}",
        "SLUICE_CA": server.ca,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file or server.credentials_file),
        "RUST_BACKTRACE": "0",
    })
    p = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"sluice {' '.join(args)}: {p.stderr}"
        return json.loads(p.stdout) if p.stdout.strip() else None
    return p


def test_tenant_principal_and_key_verbs(binary, server, tmp_path):
    tenant = sluice(binary, server, "tenant", "create", unique_name("cli-tenant"))
    account = tenant["account_id"]
    assert any(t["account_id"] == account for t in sluice(binary, server, "tenant", "list")["tenants"])
    assert sluice(binary, server, "tenant", "get", account)["name"] == tenant["name"]
    alice = sluice(binary, server, "principal", "create", "--tenant", account, "alice")
    assert alice["arn"] == f"arn:aws:iam::{account}:user/alice"
    names = [p["name"] for p in sluice(binary, server, "principal", "list", "--tenant", account)["principals"]]
    assert names == ["admin", "alice"]
    # The tenant's own admin, from its own credentials file, makes its principals' keys
    # and manages its tenant only; the operator cannot mint a credential for a tenant's
    # principal (it could act as it).
    admin_file = tmp_path / "credentials"
    admin_file.write_text("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n".format(
        tenant["admin"]["access_key_id"], tenant["admin"]["secret_access_key"]))
    p = sluice(binary, server, "key", "create", "--tenant", account, "--user", "alice", check=False)
    assert p.returncode != 0 and "AccessDeniedException" in p.stderr
    key = sluice(binary, server, "key", "create", "--tenant", account, "--user", "alice", credentials_file=admin_file)
    creds = (key["access_key_id"], key["secret_access_key"])
    policy = tmp_path / "alice.cedar"
    policy.write_text(permit(alice["arn"], ["kinesis:ListStreams"]))
    sluice(binary, server, "policy", "apply", "--tenant", account, "--name", "alice", str(policy))
    assert server.client(credentials=creds).list_streams()["StreamNames"] == []
    listed = sluice(binary, server, "key", "list", "--tenant", account, "--user", "alice", credentials_file=admin_file)
    assert [k["access_key_id"] for k in listed["access_keys"]] == [creds[0]]
    p = sluice(binary, server, "tenant", "create", unique_name("nope"), credentials_file=admin_file, check=False)
    assert p.returncode != 0 and "AccessDeniedException" in p.stderr

    sluice(binary, server, "key", "deactivate", "--tenant", account, "--user", "alice", creds[0])
    p = sluice(binary, server, "key", "delete", "--tenant", account, "--user", "alice", creds[0], check=False)
    assert p.returncode == 0, p.stderr
    listed = sluice(binary, server, "key", "list", "--tenant", account, "--user", "alice")
    assert listed["access_keys"] == []


def test_cli_errors_name_the_problem(binary, server):
    p = sluice(binary, server, "tenant", "create", "bad name", check=False)
    assert p.returncode != 0 and "ValidationException" in p.stderr
    p = sluice(binary, server, "principal", "list", "--tenant", "../etc", check=False)
    assert p.returncode != 0 and "tenant" in p.stderr
