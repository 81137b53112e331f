"""The AWS Encryption SDK for Python, its KMS master-key provider pointed at Sluice:
it encrypts a message under a Sluice KMS key (GenerateDataKey) and decrypts it
(Decrypt), and Sluice's Decrypt sees the SDK's encryption context."""

from __future__ import annotations

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk import CommitmentPolicy
from cryptography.exceptions import InvalidSignature, InvalidTag
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, DecryptKeyError

from harness import REGION


def botocore_session(server, monkeypatch, credentials=None):
    """A botocore session whose KMS clients go to Sluice and trust its CA. The SDK makes
    its own clients from the session, so the endpoint comes the way AWS documents for
    every SDK: the service-specific endpoint variable AWS_ENDPOINT_URL_KMS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", server.endpoint)
    key, secret = credentials or server.credentials()
    session = botocore.session.Session()
    session.set_credentials(key, secret)
    session.set_config_variable("region", REGION)
    session.set_config_variable("ca_bundle", server.ca)
    return session


def test_encryption_sdk_round_trip_through_sluice_kms(server, monkeypatch):
    kms = server.client(service="kms")
    key_arn = kms.create_key(Description="encryption SDK")["KeyMetadata"]["Arn"]
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=botocore_session(server, monkeypatch)
    )
    plaintext = b"records the server must never read " * 100
    context = {"stream": "orders", "purpose": "sdk-test"}
    ciphertext, header = client.encrypt(source=plaintext, key_provider=provider, encryption_context=context)
    assert plaintext not in ciphertext
    # The message names Sluice's key in its one encrypted data key.
    assert [k.key_provider.key_info.decode() for k in header.encrypted_data_keys] == [key_arn]
    decrypted, decrypt_header = client.decrypt(source=ciphertext, key_provider=provider)
    assert decrypted == plaintext
    assert {k: decrypt_header.encryption_context[k] for k in context} == context

    # With the key disabled in Sluice, the SDK cannot unwrap its data key.
    kms.disable_key(KeyId=key_arn)
    with pytest.raises((DecryptKeyError, AWSEncryptionSDKClientError)):
        client.decrypt(source=ciphertext, key_provider=provider)
    kms.enable_key(KeyId=key_arn)
    assert client.decrypt(source=ciphertext, key_provider=provider)[0] == plaintext

    # A changed byte of the message (body or signature footer) fails to decrypt, never
    # yields altered data.
    for offset in (len(ciphertext) // 2, len(ciphertext) - 40):
        tampered = bytearray(ciphertext)
        tampered[offset] ^= 1
        with pytest.raises((AWSEncryptionSDKClientError, InvalidSignature, InvalidTag)):
            client.decrypt(source=bytes(tampered), key_provider=provider)
