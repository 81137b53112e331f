"""KMS as AWS behaves, seen from boto3: key tags, UpdateKeyDescription, UpdateAlias,
GenerateRandom, how key management names keys, CreateKey's validation, and the answers
for features a single-region server with its own key store has no meaning for."""

from __future__ import annotations

import pytest

from harness import expect_error, unique_name


def test_key_tags(kms, raw_kms):
    key = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "data"}])["KeyMetadata"]
    key_id = key["KeyId"]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "data"}]
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "env", "TagValue": "test"},
                                             {"TagKey": "team", "TagValue": "platform"}])
    out = kms.list_resource_tags(KeyId=key_id)
    assert out["Tags"] == [{"TagKey": "env", "TagValue": "test"}, {"TagKey": "team", "TagValue": "platform"}]
    assert out["Truncated"] is False
    page = kms.list_resource_tags(KeyId=key_id, Limit=1)
    assert page["Truncated"] is True and page["Tags"] == [{"TagKey": "env", "TagValue": "test"}]
    rest = kms.list_resource_tags(KeyId=key_id, Marker=page["NextMarker"])
    assert rest["Tags"] == [{"TagKey": "team", "TagValue": "platform"}]
    kms.untag_resource(KeyId=key_id, TagKeys=["env"])
    assert [t["TagKey"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]] == ["team"]
    with expect_error("TagException"):
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}])
    with expect_error("TagException"):
        kms.create_key(Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}])
    with expect_error("LimitExceededException"):
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": f"k{i}", "TagValue": "v"} for i in range(50)])
    with expect_error("NotFoundException"):
        kms.list_resource_tags(KeyId="11111111-2222-3333-4444-555555555555")
    # An empty list of tag keys removes nothing (the model sets no minimum), from a key
    # that must exist all the same.
    kms.untag_resource(KeyId=key_id, TagKeys=[])
    assert [t["TagKey"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]] == ["team"]
    with expect_error("NotFoundException", message="Invalid keyId unknown"):
        kms.untag_resource(KeyId="unknown", TagKeys=[])


def test_update_key_description_and_alias(kms):
    one = kms.create_key(Description="first")["KeyMetadata"]
    two = kms.create_key()["KeyMetadata"]
    kms.update_key_description(KeyId=one["KeyId"], Description="renamed")
    assert kms.describe_key(KeyId=one["KeyId"])["KeyMetadata"]["Description"] == "renamed"
    alias = f"alias/{unique_name('moving')}"
    kms.create_alias(AliasName=alias, TargetKeyId=one["KeyId"])
    assert kms.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"] == one["Arn"]
    kms.update_alias(AliasName=alias, TargetKeyId=two["KeyId"])
    assert kms.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"] == two["Arn"]
    listed = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == alias]
    assert listed[0]["TargetKeyId"] == two["KeyId"]
    with expect_error("NotFoundException"):
        kms.update_alias(AliasName=f"alias/{unique_name('none')}", TargetKeyId=two["KeyId"])
    with expect_error("ValidationException"):
        kms.update_alias(AliasName=alias, TargetKeyId=alias)


def test_generate_random(kms, raw_kms):
    a = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    b = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    assert len(a) == len(b) == 32 and a != b
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024
    for n in (0, 1025):
        with expect_error("ValidationException"):
            raw_kms.generate_random(NumberOfBytes=n)


def test_key_management_names_keys_by_id_or_arn(kms):
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/{unique_name('mgmt')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for call in (lambda k: kms.disable_key(KeyId=k), lambda k: kms.enable_key_rotation(KeyId=k),
                 lambda k: kms.get_key_rotation_status(KeyId=k),
                 lambda k: kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7),
                 lambda k: kms.tag_resource(KeyId=k, Tags=[{"TagKey": "a", "TagValue": "b"}])):
        with expect_error("NotFoundException"):
            call(alias)
    kms.disable_key(KeyId=key["Arn"])
    kms.enable_key(KeyId=key["KeyId"])
    # DescribeKey and cryptography take aliases.
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_create_key_validation(kms, raw_kms):
    with expect_error("ValidationException", message="keySpec"):
        raw_kms.create_key(KeySpec="AES_9000")
    with expect_error("ValidationException", message="keyUsage"):
        raw_kms.create_key(KeyUsage="SOMETHING")
    # The key spec KMS has and Sluice does not make: SM2 (China's Regions only).
    with expect_error("UnsupportedOperationException"):
        kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")
    with expect_error("ValidationException"):
        kms.create_key(KeySpec="RSA_2048", CustomerMasterKeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")


def test_features_without_meaning_here(kms):
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    key = kms.create_key()["KeyMetadata"]
    for call in (
        lambda: kms.create_custom_key_store(CustomKeyStoreName="hsm", CloudHsmClusterId="cluster-1234567abcd",
                                            TrustAnchorCertificate="x", KeyStorePassword="password1"),
        lambda: kms.replicate_key(KeyId=key["Arn"], ReplicaRegion="eu-west-1"),
        lambda: kms.update_primary_region(KeyId=key["Arn"], PrimaryRegion="eu-west-1"),
        lambda: kms.generate_random(NumberOfBytes=8, CustomKeyStoreId="cks-1234567890abcdef0"),
    ):
        with expect_error("UnsupportedOperationException"):
            call()


def test_unknown_kms_operation_says_which(server):
    r = server.raw(None, b"{}", headers={"X-Amz-Target": "TrentService.Nonexistent"},
                   content_type="application/x-amz-json-1.1", service="kms")
    assert r.error_type() == "UnknownOperationException"
    assert "Nonexistent" in r.json()["message"]


def test_get_key_last_usage(kms):
    key = kms.create_key()["KeyMetadata"]
    fresh = kms.get_key_last_usage(KeyId=key["KeyId"])
    assert "KeyLastUsage" not in fresh
    assert fresh["KeyCreationDate"] == key["CreationDate"] == fresh["TrackingStartDate"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    used = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert used["Operation"] == "Encrypt"
    assert used["KmsRequestId"] == blob["ResponseMetadata"]["RequestId"]
    out = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"])
    used = kms.get_key_last_usage(KeyId=key["Arn"])["KeyLastUsage"]
    assert used["Operation"] == "Decrypt" and used["KmsRequestId"] == out["ResponseMetadata"]["RequestId"]
    # Management is not a use.
    kms.describe_key(KeyId=key["KeyId"])
    assert kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]["Operation"] == "Decrypt"
