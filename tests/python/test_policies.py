"""Tenant-authored Cedar policies: the authoring workflow (validate, test, simulate,
apply, diff, history, rollback, delete) through the admin API and the CLI, resource
policies through Kinesis's PutResourcePolicy, and the audit trail of every decision."""

from __future__ import annotations

import json

import pytest

from harness import REGION, expect_error, permit, unique_name
from test_cli import sluice


@pytest.fixture
def tenant(server):
    """A fresh tenant with its admin's keys, a user `alice` with a key, and a stream."""
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("pol")})
    assert r.status == 201, r
    t = r.json()
    account = t["account_id"]
    admin = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
    path = f"/admin/v1/tenants/{account}/principals"
    assert server.admin("POST", path, {"kind": "user", "name": "alice"}, credentials=admin).status == 201
    r = server.admin("POST", f"{path}/user/alice/access-keys", credentials=admin)
    alice = (r.json()["access_key_id"], r.json()["secret_access_key"])
    server.client(credentials=admin).create_stream(StreamName="orders", ShardCount=1)
    return {
        "account": account,
        "admin": admin,
        "alice": alice,
        "alice_arn": f"arn:aws:iam::{account}:user/alice",
        "orders_arn": f"arn:aws:kinesis:{REGION}:{account}:stream/orders",
    }


def policies(server, tenant, verb, payload=None, method="POST", query=""):
    return server.admin(method, f"/admin/v1/tenants/{tenant['account']}/policies{verb}{query}", payload,
                        credentials=tenant["admin"])


def test_validate_refuses_typos_and_apply_refuses_what_does_not_validate(server, tenant):
    good = permit(tenant["alice_arn"], ["kinesis:PutRecord"])
    r = policies(server, tenant, "/validate", {"name": "writers", "policy": good})
    assert r.status == 200 and r.json()["valid"] is True, r
    typos = [
        good.replace("kinesis:PutRecord", "kinesis:PutRecordz"),          # an action
        good.replace("Sluice::User", "Sluice::Usr"),                       # an entity type
        good.replace(";", " when { principal.admn };"),                    # an attribute
        good.replace(";", " when { context.sourceIP == ip(\"10.0.0.1\") };"),  # a context key
        "permit (principal, action, resource",                             # syntax
    ]
    for text in typos:
        r = policies(server, tenant, "/validate", {"name": "writers", "policy": text})
        assert r.status == 200 and r.json()["valid"] is False and r.json()["errors"], (text, r)
        r = policies(server, tenant, "/apply", {"name": "writers", "policy": text})
        assert r.status == 400 and r.error_type() == "ValidationException", r
    # Nothing invalid was stored.
    r = policies(server, tenant, "", method="GET")
    assert r.status == 200 and r.json()["policies"] == [], r


def test_apply_takes_effect_and_history_diff_rollback_and_delete_work(server, tenant):
    alice = server.client(credentials=tenant["alice"])
    record = {"StreamName": "orders", "Data": b"x", "PartitionKey": "k"}
    with expect_error("AccessDeniedException") as denied:
        alice.put_record(**record)
    assert "kinesis:PutRecord" in str(denied.exc) and tenant["orders_arn"] in str(denied.exc)

    v1 = server.apply_policy(tenant["account"], "writers", permit(tenant["alice_arn"], ["kinesis:PutRecord"]),
                             credentials=tenant["admin"])
    assert v1["version"] == 1
    alice.put_record(**record)
    # Version 2 forbids from outside 10.0.0.0/8: loopback is outside, so alice is refused.
    v2_text = (permit(tenant["alice_arn"], ["kinesis:PutRecord"]) +
               'forbid (principal, action, resource) unless { context.sourceIp.isInRange(ip("10.0.0.0/8")) };\n')
    assert server.apply_policy(tenant["account"], "writers", v2_text, credentials=tenant["admin"])["version"] == 2
    with expect_error("AccessDeniedException"):
        alice.put_record(**record)

    # The forbid binds the tenant's admin too: it has locked itself out...
    r = policies(server, tenant, "/history", method="GET", query="?name=writers")
    assert r.status == 403 and r.error_type() == "AccessDeniedException", r
    # ...and the operator (the administering tenant's admin, whose decisions no tenant
    # policy touches) repairs it.
    operator = {**tenant, "admin": None}
    r = policies(server, operator, "/history", method="GET", query="?name=writers")
    assert r.status == 200, r
    assert [v["version"] for v in r.json()["versions"]] == [2, 1], r
    r = policies(server, operator, "/diff", method="GET", query="?name=writers")
    diff = r.json()["diff"]
    assert "+forbid (principal, action, resource)" in diff and "writers v1" in diff, diff
    r = policies(server, operator, "/get", method="GET", query="?name=writers&version=1")
    assert "forbid" not in r.json()["policy"], r

    r = policies(server, operator, "/rollback", {"name": "writers", "version": 1})
    assert r.status == 200 and r.json()["version"]["version"] == 3, r
    alice.put_record(**record)

    r = policies(server, tenant, "/delete", {"name": "writers"})
    assert r.status == 200 and r.json()["deleted"] is True, r
    with expect_error("AccessDeniedException"):
        alice.put_record(**record)
    r = policies(server, tenant, "/history", method="GET", query="?name=writers")
    assert [v["deleted"] for v in r.json()["versions"]] == [True, False, False, False]
    r = policies(server, tenant, "/rollback", {"name": "writers", "version": 9})
    assert r.status == 404 and r.error_type() == "ResourceNotFoundException", r


def test_simulate_and_test_decide_without_storing(server, tenant):
    proposed = permit(tenant["alice_arn"], ["kinesis:GetRecords"])
    question = {"principal": tenant["alice_arn"], "action": "kinesis:GetRecords",
                "resource": {"stream": tenant["orders_arn"]}, "source_ip": "10.1.2.3"}
    r = policies(server, tenant, "/simulate", question)
    assert r.json() == {"decision": "Deny", "policies": []}, r
    r = policies(server, tenant, "/simulate", {**question, "name": "readers", "policy": proposed})
    assert r.json()["decision"] == "Allow" and r.json()["policies"] == ["readers/0"], r
    # Another tenant's stream stays out of reach, whatever is proposed.
    other = f"arn:aws:kinesis:{REGION}:999999999999:stream/orders"
    r = policies(server, tenant, "/simulate", {**question, "resource": {"stream": other},
                                                "name": "readers", "policy": "permit (principal, action, resource);"})
    assert r.json() == {"decision": "Deny", "policies": ["platform-forbid-cross-tenant"]}, r
    # A consumer group is in its stream: a permit on the stream covers it.
    group = {"principal": tenant["alice_arn"], "action": "kinesis:CheckpointConsumerGroup",
             "resource": {"group": tenant["orders_arn"] + "/group/billing"}}
    on_stream = ('permit (principal, action == Sluice::Action::"kinesis:CheckpointConsumerGroup", '
                 f'resource in Sluice::Stream::"{tenant["orders_arn"]}");')
    r = policies(server, tenant, "/simulate", {**group, "name": "groups", "policy": on_stream})
    assert r.json() == {"decision": "Allow", "policies": ["groups/0"]}, r
    r = policies(server, tenant, "/simulate", {**group, "resource": {"group": tenant["orders_arn"]}})
    assert r.status == 400 and r.error_type() == "InvalidArgumentException", r

    cases = [
        {"name": "alice reads", **question, "decision": "Allow", "policies": ["readers/0"]},
        {"name": "alice cannot write", **{**question, "action": "kinesis:PutRecord"}, "decision": "Deny"},
        {"name": "wrong on purpose", **question, "decision": "Deny"},
    ]
    r = policies(server, tenant, "/test", {"name": "readers", "policy": proposed, "cases": cases})
    out = r.json()
    assert (out["passed"], out["failed"]) == (2, 1), out
    assert [c["passed"] for c in out["results"]] == [True, True, False]
    # Simulation stored nothing.
    assert policies(server, tenant, "", method="GET").json()["policies"] == []


def test_the_cli_runs_the_whole_workflow(binary, server, tenant, tmp_path):
    account = tenant["account"]
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n".format(*tenant["admin"]))
    run = lambda *args, **kw: sluice(binary, server, *args, credentials_file=creds, **kw)  # noqa: E731
    good = tmp_path / "writers.cedar"
    good.write_text(permit(tenant["alice_arn"], ["kinesis:PutRecord", "kinesis:PutRecords"]))
    bad = tmp_path / "bad.cedar"
    bad.write_text(permit(tenant["alice_arn"], ["kinesis:PutRecordz"]))
    assert run("policy", "validate", "--tenant", account, "--name", "writers", str(good))["valid"] is True
    p = run("policy", "validate", "--tenant", account, "--name", "writers", str(bad), check=False)
    assert p.returncode != 0 and "PutRecordz" in p.stdout
    p = run("policy", "apply", "--tenant", account, "--name", "writers", str(bad), check=False)
    assert p.returncode != 0 and "ValidationException" in p.stderr

    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([
        {"name": "alice writes", "principal": tenant["alice_arn"], "action": "kinesis:PutRecord",
         "resource": {"stream": tenant["orders_arn"]}, "decision": "Allow", "policies": ["writers/0"]},
    ]))
    # The cases fail against what is stored, and pass with the proposed document.
    assert run("policy", "test", "--tenant", account, str(cases), check=False).returncode != 0
    assert run("policy", "test", "--tenant", account, "--name", "writers", "--file", str(good),
               str(cases))["failed"] == 0
    out = run("policy", "simulate", "--tenant", account, "--principal", tenant["alice_arn"],
              "--action", "kinesis:PutRecord", "--stream", tenant["orders_arn"], "--name", "writers",
              "--file", str(good))
    assert out["decision"] == "Allow"

    run("policy", "apply", "--tenant", account, "--name", "writers", str(good))
    server.client(credentials=tenant["alice"]).put_record(StreamName="orders", Data=b"x", PartitionKey="k")
    good.write_text(permit(tenant["alice_arn"], ["kinesis:PutRecords"]))
    run("policy", "apply", "--tenant", account, "--name", "writers", str(good))
    diff = run("policy", "diff", "--tenant", account, "--name", "writers", check=False).stdout
    assert '-permit' in diff and '+permit' in diff and "kinesis:PutRecord\"," in diff, diff
    history = run("policy", "history", "--tenant", account, "--name", "writers")
    assert [v["version"] for v in history["versions"]] == [2, 1]
    run("policy", "rollback", "--tenant", account, "--name", "writers", "--version", "1")
    assert [p["version"] for p in run("policy", "list", "--tenant", account)["policies"]] == [3]
    run("policy", "delete", "--tenant", account, "--name", "writers")
    assert run("policy", "list", "--tenant", account)["policies"] == []


def test_resource_policies_through_the_kinesis_api(server, tenant):
    admin = server.client(credentials=tenant["admin"])
    alice = server.client(credentials=tenant["alice"])
    arn = tenant["orders_arn"]
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == ""
    with expect_error("AccessDeniedException"):
        alice.describe_stream_summary(StreamARN=arn)
    policy = (f'permit (principal == Sluice::User::"{tenant["alice_arn"]}", '
              f'action in [Sluice::Action::"kinesis:DescribeStreamSummary"], '
              f'resource == Sluice::Stream::"{arn}");')
    admin.put_resource_policy(ResourceARN=arn, Policy=policy)
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == policy
    assert alice.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["StreamName"] == "orders"
    # A stream's policy speaks only of that stream.
    admin.create_stream(StreamName="payments", ShardCount=1)
    with expect_error("InvalidArgumentException"):
        admin.put_resource_policy(ResourceARN=arn.replace("orders", "payments"), Policy=policy)
    with expect_error("InvalidArgumentException"):
        admin.put_resource_policy(ResourceARN=arn, Policy="permit (principal, action, resource);")
    # alice may not attach policies herself.
    with expect_error("AccessDeniedException"):
        alice.put_resource_policy(ResourceARN=arn, Policy=policy)
    admin.delete_resource_policy(ResourceARN=arn)
    with expect_error("AccessDeniedException"):
        alice.describe_stream_summary(StreamARN=arn)
    with expect_error("ResourceNotFoundException"):
        admin.delete_resource_policy(ResourceARN=arn)


def test_principal_attached_policies_cover_only_that_principal(server, tenant):
    text = permit(tenant["alice_arn"], ["kinesis:ListStreams"])
    r = policies(server, tenant, "/apply", {"name": "principal/user/bob", "policy": text})
    assert r.status == 400 and r.error_type() == "ValidationException", r
    server.apply_policy(tenant["account"], "principal/user/alice", text, credentials=tenant["admin"])
    assert "orders" in server.client(credentials=tenant["alice"]).list_streams()["StreamNames"]


def audit_lines(server, account, credentials=None, after=0):
    r = server.admin("GET", f"/admin/v1/tenants/{account}/audit?after={after}&limit=10000", credentials=credentials)
    assert r.status == 200 and r.headers["content-type"] == "application/x-ndjson", r
    return [json.loads(line) for line in r.body.decode().splitlines()]


def test_every_decision_is_audited_and_each_tenant_reads_its_own(server, tenant, binary, tmp_path):
    import time
    alice = server.client(credentials=tenant["alice"])
    with expect_error("AccessDeniedException"):
        alice.put_record(StreamName="orders", Data=b"x", PartitionKey="k")
    server.client(credentials=tenant["admin"]).describe_stream_summary(StreamName="orders")
    deadline = time.time() + 10
    while True:
        entries = audit_lines(server, tenant["account"], credentials=tenant["admin"])
        denied = [e for e in entries if e["principal"] == tenant["alice_arn"] and e["action"] == "kinesis:PutRecord"]
        allowed = [e for e in entries if e["action"] == "kinesis:DescribeStreamSummary"]
        if (denied and allowed) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert denied and allowed, entries
    e = denied[0]
    assert e["decision"] == "Deny" and e["policies"] == [] and e["resource"] == tenant["orders_arn"]
    assert e["source_ip"] == "127.0.0.1" and e["tls_version"] in ("TLSv1.2", "TLSv1.3") and e["request_id"]
    assert allowed[0]["decision"] == "Allow" and allowed[0]["policies"] == ["platform-tenant-admin"]
    assert all(tenant["account"] in (x["principal_account"], x["resource_account"]) for x in entries)
    # The bootstrap tenant's own requests are not in this tenant's trail.
    assert not any(x["principal_account"] == "000000000000" and x["resource_account"] != tenant["account"]
                   for x in entries)
    # alice cannot read the trail; the CLI exports it as JSON lines.
    r = server.admin("GET", f"/admin/v1/tenants/{tenant['account']}/audit", credentials=tenant["alice"])
    assert r.status == 403, r
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n".format(*tenant["admin"]))
    p = sluice(binary, server, "audit", "export", "--tenant", tenant["account"], credentials_file=creds, check=False)
    assert p.returncode == 0, p.stderr
    exported = [json.loads(line) for line in p.stdout.splitlines()]
    assert [x["id"] for x in exported][: len(entries)] == [x["id"] for x in entries]
    # No API edits the trail: there is no route for it.
    for method in ("PUT", "DELETE", "PATCH", "POST"):
        r = server.admin(method, f"/admin/v1/tenants/{tenant['account']}/audit", credentials=tenant["admin"])
        assert r.status in (404, 405), (method, r)


def test_a_key_policy_lets_a_principal_use_one_key(server, tenant):
    admin_kms = server.client(service="kms", credentials=tenant["admin"])
    alice_kms = server.client(service="kms", credentials=tenant["alice"])
    mine = admin_kms.create_key()["KeyMetadata"]
    other = admin_kms.create_key()["KeyMetadata"]
    with expect_error("AccessDeniedException"):
        alice_kms.encrypt(KeyId=mine["KeyId"], Plaintext=b"secret")
    policy = (f'permit (principal == Sluice::User::"{tenant["alice_arn"]}", '
              f'action in [Sluice::Action::"kms:Encrypt", Sluice::Action::"kms:Decrypt"], '
              f'resource == Sluice::Key::"{mine["Arn"]}");')
    # A key's document may speak only of that key.
    r = policies(server, tenant, "/apply", {"name": f"key/{other['KeyId']}", "policy": policy})
    assert r.status == 400 and r.error_type() == "ValidationException", r
    server.apply_policy(tenant["account"], f"key/{mine['KeyId']}", policy, credentials=tenant["admin"])
    blob = alice_kms.encrypt(KeyId=mine["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert alice_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    with expect_error("AccessDeniedException"):
        alice_kms.encrypt(KeyId=other["KeyId"], Plaintext=b"secret")
    with expect_error("AccessDeniedException"):
        alice_kms.disable_key(KeyId=mine["KeyId"])


def test_oversize_documents_and_test_runs_are_refused(server, tenant):
    big = permit(tenant["alice_arn"], ["kinesis:PutRecord"]) + "// " + "x" * (20 * 1024) + "\n"
    r = policies(server, tenant, "/apply", {"name": "big", "policy": big})
    assert r.status == 429 and r.error_type() == "LimitExceededException", r
    assert policies(server, tenant, "", method="GET").json()["policies"] == []
    # Validation and simulation refuse it before parsing it too.
    r = policies(server, tenant, "/validate", {"name": "big", "policy": big})
    assert r.json()["valid"] is False and "at most 20480 bytes" in r.json()["errors"][0], r
    case = {"name": "c", "principal": tenant["alice_arn"], "action": "kinesis:PutRecord",
            "resource": {"stream": tenant["orders_arn"]}, "decision": "Deny"}
    r = policies(server, tenant, "/test", {"cases": [case] * 1001})
    assert r.status == 429 and r.error_type() == "LimitExceededException", r
    r = policies(server, tenant, "/test", {"cases": [{**case, "decision": "Maybe"}]})
    assert r.status == 400 and r.error_type() == "ValidationException", r
