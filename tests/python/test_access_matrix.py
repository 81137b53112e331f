"""The access matrix: 3 tenants x 5 principals with different policies x every Kinesis
action x their own tenant's stream and another tenant's. Every cross-tenant cell is
denied; every own-tenant cell is as the policies say. Each cell is a real call with a
real SigV4 key over TLS, and the same question put to the policy simulator must agree.
Denied writes and deletes change nothing: record counts and streams are checked after."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from harness import REGION, error_code, permit, unique_name

SHARD0 = "shardId-000000000000"

STREAM_ACTIONS = [
    "kinesis:DeleteStream", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
    "kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords", "kinesis:GetShardIterator",
    "kinesis:GetRecords", "kinesis:AddTagsToStream", "kinesis:RemoveTagsFromStream",
    "kinesis:ListTagsForStream", "kinesis:IncreaseStreamRetentionPeriod",
    "kinesis:DecreaseStreamRetentionPeriod", "kinesis:PutResourcePolicy",
    "kinesis:GetResourcePolicy", "kinesis:DeleteResourcePolicy",
]
# Actions on the tenant itself; the Kinesis API can only aim them at the caller's own.
TENANT_ACTIONS = ["kinesis:CreateStream", "kinesis:ListStreams", "kinesis:DescribeLimits"]
ALL_ACTIONS = STREAM_ACTIONS + TENANT_ACTIONS

WRITER = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary", "kinesis:ListShards"]
READER = ["kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:DescribeStream",
          "kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:ListStreams",
          "kinesis:ListTagsForStream"]
OPS_FORBIDDEN = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:GetRecords"]

# principal -> (kind, the actions its tenant's policies grant it in its own tenant)
PRINCIPALS = {
    "admin": ("user", set(ALL_ACTIONS)),          # the platform's tenant-admin policy
    "writer": ("user", set(WRITER)),
    "reader": ("user", set(READER)),              # only from 127.0.0.0/8, which we are
    "ops": ("role", set(ALL_ACTIONS) - set(OPS_FORBIDDEN)),
    "nobody": ("user", set()),                    # no policy at all: default deny
}


def policy_for(account: str, name: str, kind: str) -> str | None:
    arn = f"arn:aws:iam::{account}:{kind}/{name}"
    if name == "writer":
        return permit(arn, WRITER)
    if name == "reader":
        return permit(arn, READER, when='context.sourceIp.isInRange(ip("127.0.0.0/8"))')
    if name == "ops":
        return (permit(arn) +
                permit(arn, OPS_FORBIDDEN).replace("permit", "forbid", 1))
    return None


@pytest.fixture(scope="module")
def world(server):
    tenants = []
    for i in range(3):
        r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name(f"matrix-{i}")})
        assert r.status == 201, r
        t = r.json()
        account = t["account_id"]
        admin_key = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
        keys = {"admin": admin_key}
        for name, (kind, _) in PRINCIPALS.items():
            if name == "admin":
                continue
            path = f"/admin/v1/tenants/{account}/principals"
            assert server.admin("POST", path, {"kind": kind, "name": name}, credentials=admin_key).status == 201
            r = server.admin("POST", f"{path}/{kind}/{name}/access-keys", credentials=admin_key)
            assert r.status == 201, r
            keys[name] = (r.json()["access_key_id"], r.json()["secret_access_key"])
            text = policy_for(account, name, kind)
            if text:
                server.apply_policy(account, name, text, credentials=admin_key)
        admin = server.client(credentials=admin_key)
        admin.create_stream(StreamName="matrix", ShardCount=1)
        admin.increase_stream_retention_period(StreamName="matrix", RetentionPeriodHours=100)
        tenants.append({"account": account, "keys": keys, "admin": admin,
                        "arn": f"arn:aws:kinesis:{REGION}:{account}:stream/matrix", "writes": 0})
    # A tenant's resource policy naming another tenant's principal lets nobody in.
    victim, outsider = tenants[0], tenants[1]
    foreign = f"arn:aws:iam::{outsider['account']}:user/nobody"
    victim["admin"].put_resource_policy(
        ResourceARN=victim["arn"],
        Policy=f'permit (principal == Sluice::User::"{foreign}", action, resource == Sluice::Stream::"{victim["arn"]}");')
    return tenants


def call(server, world, caller_tenant, principal, action, target):
    """Performs `action` as `principal` of `caller_tenant` on `target`'s stream (or the
    caller's own tenant for tenant actions); returns None or the error code."""
    clients = caller_tenant.setdefault("clients", {})
    if principal not in clients:
        clients[principal] = server.client(credentials=caller_tenant["keys"][principal])
    client = clients[principal]
    arn = target["arn"]
    admin = target["admin"]
    try:
        if action == "kinesis:CreateStream":
            name = unique_name("made")
            client.create_stream(StreamName=name, ShardCount=1)
            caller_tenant["admin"].delete_stream(StreamName=name)
        elif action == "kinesis:DeleteStream":
            name = unique_name("doomed")
            admin.create_stream(StreamName=name, ShardCount=1)
            doomed = arn.replace(":stream/matrix", f":stream/{name}")
            try:
                client.delete_stream(StreamARN=doomed)
            finally:
                # A denied delete left the stream in place.
                names = admin.list_streams(Limit=10000)["StreamNames"]
                target.setdefault("survivors", []).append(name in names)
                if name in names:
                    admin.delete_stream(StreamName=name)
        elif action == "kinesis:DescribeStream":
            client.describe_stream(StreamARN=arn)
        elif action == "kinesis:DescribeStreamSummary":
            client.describe_stream_summary(StreamARN=arn)
        elif action == "kinesis:ListShards":
            client.list_shards(StreamARN=arn)
        elif action == "kinesis:PutRecord":
            client.put_record(StreamARN=arn, Data=b"cell", PartitionKey="k")
            target["writes"] += 1
        elif action == "kinesis:PutRecords":
            client.put_records(StreamARN=arn, Records=[{"Data": b"a", "PartitionKey": "k"},
                                                       {"Data": b"b", "PartitionKey": "k"}])
            target["writes"] += 2
        elif action == "kinesis:GetShardIterator":
            client.get_shard_iterator(StreamARN=arn, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")
        elif action == "kinesis:GetRecords":
            # The iterator is the target tenant's own; only reading with it is tested.
            it = admin.get_shard_iterator(StreamARN=arn, ShardId=SHARD0,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            out = client.get_records(ShardIterator=it, StreamARN=arn)
            assert target is caller_tenant, f"another tenant's records were returned: {out}"
        elif action == "kinesis:AddTagsToStream":
            client.add_tags_to_stream(StreamARN=arn, Tags={"cell": "x"})
        elif action == "kinesis:RemoveTagsFromStream":
            client.remove_tags_from_stream(StreamARN=arn, TagKeys=["cell"])
        elif action == "kinesis:ListTagsForStream":
            client.list_tags_for_stream(StreamARN=arn)
        elif action in ("kinesis:IncreaseStreamRetentionPeriod", "kinesis:DecreaseStreamRetentionPeriod"):
            hours = admin.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["RetentionPeriodHours"]
            if action.endswith("Increase" + "StreamRetentionPeriod"):
                client.increase_stream_retention_period(StreamARN=arn, RetentionPeriodHours=hours + 1)
            else:
                client.decrease_stream_retention_period(StreamARN=arn, RetentionPeriodHours=hours - 1)
        elif action == "kinesis:PutResourcePolicy":
            own_admin = f"arn:aws:iam::{target['account']}:user/admin"
            client.put_resource_policy(
                ResourceARN=arn,
                Policy=f'permit (principal == Sluice::User::"{own_admin}", action, resource == Sluice::Stream::"{arn}");')
        elif action == "kinesis:GetResourcePolicy":
            client.get_resource_policy(ResourceARN=arn)
        elif action == "kinesis:DeleteResourcePolicy":
            own_admin = f"arn:aws:iam::{target['account']}:user/admin"
            admin.put_resource_policy(
                ResourceARN=arn,
                Policy=f'permit (principal == Sluice::User::"{own_admin}", action, resource == Sluice::Stream::"{arn}");')
            client.delete_resource_policy(ResourceARN=arn)
        elif action == "kinesis:ListStreams":
            client.list_streams()
        elif action == "kinesis:DescribeLimits":
            client.describe_limits()
        else:
            raise AssertionError(f"no call for {action}")
    except ClientError as e:
        return error_code(e)
    return None


def simulated(server, world, caller_tenant, principal, action, target):
    kind = PRINCIPALS[principal][0]
    resource = ({"tenant": target["account"]} if action in TENANT_ACTIONS else {"stream": target["arn"]})
    r = server.admin("POST", f"/admin/v1/tenants/{caller_tenant['account']}/policies/simulate", {
        "principal": f"arn:aws:iam::{caller_tenant['account']}:{kind}/{principal}",
        "action": action, "resource": resource, "source_ip": "127.0.0.1"})
    assert r.status == 200, r
    return r.json()


def test_the_access_matrix(server, world):
    cells = 0
    wrong = []
    for i, tenant in enumerate(world):
        for other in (tenant, world[(i + 1) % 3]):
            own = other is tenant
            for principal, (_, granted) in PRINCIPALS.items():
                for action in ALL_ACTIONS:
                    expect_allow = own and action in granted
                    # Every cell, expressible in the API or not, is put to the simulator.
                    sim = simulated(server, world, tenant, principal, action, other)
                    if (sim["decision"] == "Allow") != expect_allow:
                        wrong.append(("simulated", tenant["account"], principal, action, own, sim))
                    if not own:
                        if "platform-forbid-cross-tenant" not in sim["policies"]:
                            wrong.append(("cross-tenant not by the platform", principal, action, sim))
                        if action in TENANT_ACTIONS:
                            cells += 1
                            continue  # the Kinesis API cannot aim these at another tenant
                    code = call(server, world, tenant, principal, action, other)
                    cells += 1
                    if expect_allow and code is not None:
                        wrong.append(("refused", tenant["account"], principal, action, own, code))
                    if not expect_allow:
                        # An iterator is bound to its tenant: another tenant's is invalid
                        # for the caller before any policy is asked.
                        allowed_codes = {"AccessDeniedException"}
                        if action == "kinesis:GetRecords" and not own:
                            allowed_codes.add("InvalidArgumentException")
                        if code not in allowed_codes:
                            wrong.append(("not denied", tenant["account"], principal, action, own, code))
    assert not wrong, "\n".join(map(str, wrong[:40]))
    assert cells == 3 * 2 * len(PRINCIPALS) * len(ALL_ACTIONS)

    # Denied writes wrote nothing, denied deletes deleted nothing.
    for tenant in world:
        admin = tenant["admin"]
        it = admin.get_shard_iterator(StreamARN=tenant["arn"], ShardId=SHARD0,
                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        count = 0
        while True:
            out = admin.get_records(ShardIterator=it, Limit=10000)
            count += len(out["Records"])
            if not out["Records"]:
                break
            it = out["NextShardIterator"]
        assert count == tenant["writes"], (tenant["account"], count, tenant["writes"])
    survived = [s for t in world for s in t.get("survivors", [])]
    allowed_deletes = sum(1 for p, (_, g) in PRINCIPALS.items() if "kinesis:DeleteStream" in g) * 3
    assert survived.count(False) == allowed_deletes, survived
