"""KMS grants and key policies really authorize, seen from boto3: a grant lets its
grantee use the key for its operations (under its encryption-context constraint) until
it is retired or revoked; a key policy is a Cedar document on the key, decided with
the tenant's policies; IAM JSON is refused, saying so."""

from __future__ import annotations

import json

import pytest

from harness import expect_error, unique_name


@pytest.fixture
def tenant(server):
    """A fresh tenant: its admin's KMS client, and users alice and bob with none."""
    r = server.admin("POST", "/admin/v1/tenants", {"name": unique_name("grants")})
    assert r.status == 201, r
    t = r.json()
    account = t["account_id"]
    admin = (t["admin"]["access_key_id"], t["admin"]["secret_access_key"])
    path = f"/admin/v1/tenants/{account}/principals"
    out = {"account": account, "admin": server.client(service="kms", credentials=admin),
           "admin_credentials": admin}
    for name in ("alice", "bob"):
        assert server.admin("POST", path, {"kind": "user", "name": name}, credentials=admin).status == 201
        r = server.admin("POST", f"{path}/user/{name}/access-keys", credentials=admin)
        keys = (r.json()["access_key_id"], r.json()["secret_access_key"])
        out[name] = server.client(service="kms", credentials=keys)
        out[f"{name}_arn"] = f"arn:aws:iam::{account}:user/{name}"
    return out


def test_a_grant_lets_its_grantee_decrypt_and_a_retired_one_does_not(tenant):
    admin, alice, bob = tenant["admin"], tenant["alice"], tenant["bob"]
    key = admin.create_key()["KeyMetadata"]
    blob = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=blob)

    grant = admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=tenant["alice_arn"],
                               RetiringPrincipal=tenant["bob_arn"], Operations=["Decrypt"],
                               Name="reader")
    assert len(grant["GrantId"]) == 64 and grant["GrantToken"]
    assert alice.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    # Only what was granted: not Encrypt, not another key, not bob.
    with expect_error("AccessDeniedException"):
        alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    other = admin.create_key()["KeyMetadata"]
    other_blob = admin.encrypt(KeyId=other["KeyId"], Plaintext=b"other")["CiphertextBlob"]
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=other_blob)
    with expect_error("AccessDeniedException"):
        bob.decrypt(CiphertextBlob=blob)

    listed = admin.list_grants(KeyId=key["KeyId"])
    assert listed["Truncated"] is False
    [entry] = listed["Grants"]
    assert entry["GrantId"] == grant["GrantId"] and entry["Name"] == "reader"
    assert entry["KeyId"] == key["Arn"] and entry["Operations"] == ["Decrypt"]
    assert entry["GranteePrincipal"] == tenant["alice_arn"]
    assert entry["RetiringPrincipal"] == tenant["bob_arn"]
    assert entry["IssuingAccount"] == f"arn:aws:iam::{tenant['account']}:root"
    # CreateGrant is idempotent by name: the same grant again is the same grant.
    again = admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=tenant["alice_arn"],
                               RetiringPrincipal=tenant["bob_arn"], Operations=["Decrypt"],
                               Name="reader")
    assert again["GrantId"] == grant["GrantId"]
    retirable = admin.list_retirable_grants(RetiringPrincipal=tenant["bob_arn"])["Grants"]
    assert [g["GrantId"] for g in retirable] == [grant["GrantId"]]

    # The grantee may not retire it (RetireGrant is not among its operations); the
    # retiring principal may, by its token.
    with expect_error("AccessDeniedException"):
        alice.retire_grant(GrantToken=grant["GrantToken"])
    bob.retire_grant(GrantToken=grant["GrantToken"])
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=blob)
    assert admin.list_grants(KeyId=key["KeyId"])["Grants"] == []
    with expect_error("NotFoundException"):
        admin.retire_grant(KeyId=key["Arn"], GrantId=grant["GrantId"])


def test_a_revoked_grant_stops_working_and_refusals_are_aws_errors(tenant, server):
    admin, alice = tenant["admin"], tenant["alice"]
    key = admin.create_key()["KeyMetadata"]
    grant = admin.create_grant(KeyId=key["Arn"], GranteePrincipal=tenant["alice_arn"],
                               Operations=["Encrypt", "GenerateDataKey", "DescribeKey"])
    assert alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    assert len(alice.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]) == 32
    assert alice.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    admin.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    with expect_error("AccessDeniedException"):
        alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with expect_error("NotFoundException"):
        admin.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])

    raw = server.client(service="kms", validate=False, credentials=tenant["admin_credentials"])
    with expect_error("InvalidGrantTokenException"):
        admin.retire_grant(GrantToken="not-a-grant-token")
    with expect_error("ValidationException"):
        raw.retire_grant()
    with expect_error("ValidationException"):
        raw.list_grants(KeyId=key["KeyId"], Limit=101)
    with expect_error("ValidationException"):
        admin.create_grant(KeyId=key["KeyId"], GranteePrincipal="arn:aws:iam::999999999999:user/x",
                           Operations=["Decrypt"])
    with expect_error("ValidationException"):
        admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=tenant["alice_arn"], Operations=["Sign"])
    with expect_error("ValidationException"):
        raw.create_grant(KeyId=key["KeyId"], GranteePrincipal=tenant["alice_arn"], Operations=["Dance"])
    with expect_error("ValidationException"):
        admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=tenant["alice_arn"],
                           Operations=["DescribeKey"],
                           Constraints={"EncryptionContextSubset": {"a": "b"}})
    with expect_error("NotFoundException"):
        admin.create_grant(KeyId="alias/aws/kinesis", GranteePrincipal=tenant["alice_arn"],
                           Operations=["Decrypt"])
    # Alice holds nothing, so she may grant nothing.
    with expect_error("AccessDeniedException"):
        alice.create_grant(KeyId=key["KeyId"], GranteePrincipal=tenant["bob_arn"], Operations=["Decrypt"])


def test_grant_constraints_compare_the_encryption_context(tenant):
    admin, alice = tenant["admin"], tenant["alice"]
    key = admin.create_key()["KeyMetadata"]["KeyId"]

    def sealed(context):
        return admin.encrypt(KeyId=key, Plaintext=b"p", EncryptionContext=context)["CiphertextBlob"]

    billing = {"purpose": "billing"}
    billing_and_team = {"purpose": "billing", "team": "data"}
    other = {"purpose": "other"}
    subset = admin.create_grant(KeyId=key, GranteePrincipal=tenant["alice_arn"], Operations=["Decrypt"],
                                Constraints={"EncryptionContextSubset": billing})
    assert alice.decrypt(CiphertextBlob=sealed(billing), EncryptionContext=billing)["Plaintext"] == b"p"
    assert alice.decrypt(CiphertextBlob=sealed(billing_and_team),
                         EncryptionContext=billing_and_team)["Plaintext"] == b"p"
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=sealed(other), EncryptionContext=other)
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=sealed({}))
    [listed] = admin.list_grants(KeyId=key)["Grants"]
    assert listed["Constraints"] == {"EncryptionContextSubset": billing}
    admin.revoke_grant(KeyId=key, GrantId=subset["GrantId"])

    admin.create_grant(KeyId=key, GranteePrincipal=tenant["alice_arn"], Operations=["Decrypt"],
                       Constraints={"EncryptionContextEquals": billing})
    assert alice.decrypt(CiphertextBlob=sealed(billing), EncryptionContext=billing)["Plaintext"] == b"p"
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=sealed(billing_and_team), EncryptionContext=billing_and_team)
    # A key whose "=" would make it read like another pair is not confused with it.
    tricky = {"purpose=billing": ""}
    with expect_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=sealed(tricky), EncryptionContext=tricky)


def test_a_grantee_can_pass_on_only_what_it_holds(tenant):
    admin, alice, bob = tenant["admin"], tenant["alice"], tenant["bob"]
    key = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.create_grant(KeyId=key, GranteePrincipal=tenant["alice_arn"],
                       Operations=["Decrypt", "CreateGrant", "RetireGrant"])
    passed = alice.create_grant(KeyId=key, GranteePrincipal=tenant["bob_arn"], Operations=["Decrypt"])
    blob = admin.encrypt(KeyId=key, Plaintext=b"s")["CiphertextBlob"]
    assert bob.decrypt(CiphertextBlob=blob)["Plaintext"] == b"s"
    with expect_error("AccessDeniedException"):
        alice.create_grant(KeyId=key, GranteePrincipal=tenant["bob_arn"], Operations=["Encrypt"])
    # Alice may retire her own grant (RetireGrant is hers), not bob's.
    with expect_error("AccessDeniedException"):
        alice.retire_grant(KeyId=key, GrantId=passed["GrantId"])


def test_key_policies_are_cedar_on_the_key(tenant, server):
    admin, alice = tenant["admin"], tenant["alice"]
    key = admin.create_key()["KeyMetadata"]
    other = admin.create_key()["KeyMetadata"]
    assert admin.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]
    default = admin.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    # AWS's own default: the account root statement, which leaves the decision to the
    # account's policies.
    assert default["PolicyName"] == "default"
    assert json.loads(default["Policy"])["Statement"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{tenant['account']}:root"}
    # The default policy is itself a valid key policy.
    admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=default["Policy"])

    with expect_error("MalformedPolicyDocumentException") as refused:
        admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                             Policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                                    '"NotPrincipal": {"AWS": "x"}, "Action": "kms:*", "Resource": "*"}]}')
    assert "NotPrincipal" in str(refused.exc)
    with expect_error("MalformedPolicyDocumentException"):
        admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="permit (principal")
    with expect_error("MalformedPolicyDocumentException"):
        admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                             Policy=f'permit (principal, action, resource == Sluice::Key::"{other["Arn"]}");')

    policy = (f'permit (principal == Sluice::User::"{tenant["alice_arn"]}", '
              f'action == Sluice::Action::"kms:Encrypt", resource);')
    with expect_error("AccessDeniedException"):
        alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    assert admin.get_key_policy(KeyId=key["KeyId"])["Policy"] == policy
    assert alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    # The open resource means this key and no other.
    with expect_error("AccessDeniedException"):
        alice.encrypt(KeyId=other["KeyId"], Plaintext=b"x")

    # CreateKey takes a policy too; a refused one leaves no key behind.
    made = admin.create_key(Policy=policy)["KeyMetadata"]
    assert alice.encrypt(KeyId=made["KeyId"], Plaintext=b"x")["KeyId"] == made["Arn"]
    before = {k["KeyId"] for k in admin.list_keys(Limit=1000)["Keys"]}
    with expect_error("MalformedPolicyDocumentException"):
        admin.create_key(Policy="permit (principal, action, resource == Sluice::Stream::\"x\");")
    assert {k["KeyId"] for k in admin.list_keys(Limit=1000)["Keys"]} == before
    with expect_error("NotFoundException"):
        admin.get_key_policy(KeyId=key["KeyId"], PolicyName="other")


def test_grants_on_signing_keys_allow_what_the_key_can_do(tenant):
    admin, alice = tenant["admin"], tenant["alice"]
    key = admin.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with expect_error("ValidationException"):
        admin.create_grant(KeyId=key, GranteePrincipal=tenant["alice_arn"], Operations=["Decrypt"])
    admin.create_grant(KeyId=key, GranteePrincipal=tenant["alice_arn"], Operations=["Sign", "GetPublicKey"])
    signature = alice.sign(KeyId=key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert alice.get_public_key(KeyId=key)["KeyUsage"] == "SIGN_VERIFY"
    with expect_error("AccessDeniedException"):
        alice.verify(KeyId=key, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")


def test_iam_json_key_policies_mean_what_they_say(tenant):
    """What Terraform, the CDK and the console send: the root statement delegates to the
    account's own policies (grants nothing by itself), a user's statement lets that user,
    a Deny forbids; GetKeyPolicy gives the document back as written."""
    admin, alice, bob = tenant["admin"], tenant["alice"], tenant["bob"]
    account = tenant["account"]
    policy = json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Allow use of the key", "Effect": "Allow",
         "Principal": {"AWS": tenant["alice_arn"]},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                    "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "Never raw encrypt", "Effect": "Deny", "Principal": {"AWS": tenant["alice_arn"]},
         "Action": "kms:Encrypt", "Resource": "*"},
    ]})
    key = admin.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    assert admin.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == policy
    blob = admin.encrypt(KeyId=key, Plaintext=b"s")["CiphertextBlob"]
    assert alice.decrypt(CiphertextBlob=blob)["Plaintext"] == b"s"
    assert len(alice.generate_data_key(KeyId=key, KeySpec="AES_256")["Plaintext"]) == 32
    with expect_error("AccessDeniedException"):
        alice.encrypt(KeyId=key, Plaintext=b"x")
    # The root statement alone grants bob nothing: his account's policies decide.
    with expect_error("AccessDeniedException"):
        bob.decrypt(CiphertextBlob=blob)
    # The admin keeps every right whatever the document says.
    assert admin.decrypt(CiphertextBlob=blob)["Plaintext"] == b"s"
