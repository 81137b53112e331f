"""KMS keys besides symmetric encryption, seen from boto3 and checked with an
independent implementation (pyca/cryptography): signatures verify outside Sluice with
the public key GetPublicKey gives, RSA ciphertexts made outside open inside, ECDH agrees
with a peer's own computation, data key pairs are real PKCS #8 key pairs; and the
usage, algorithm and rotation refusals KMS gives."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from harness import expect_error

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def public_key(kms, key_id):
    out = kms.get_public_key(KeyId=key_id)
    return out, serialization.load_der_public_key(out["PublicKey"])


def test_rsa_and_ecdsa_signatures_verify_outside_sluice(kms):
    rsa_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert rsa_key["KeySpec"] == "RSA_2048" and rsa_key["KeyUsage"] == "SIGN_VERIFY"
    assert "RSASSA_PSS_SHA_256" in rsa_key["SigningAlgorithms"]
    assert "EncryptionAlgorithms" not in rsa_key
    out, public = public_key(kms, rsa_key["KeyId"])
    assert out["KeyUsage"] == "SIGN_VERIFY" and out["KeyId"] == rsa_key["Arn"]
    for algorithm in rsa_key["SigningAlgorithms"]:
        signature = kms.sign(KeyId=rsa_key["KeyId"], Message=b"the message",
                             SigningAlgorithm=algorithm)["Signature"]
        digest = HASHES[algorithm[-3:]]()
        pad = (padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
               if "PSS" in algorithm else padding.PKCS1v15())
        public.verify(signature, b"the message", pad, digest)  # raises if it does not
        assert kms.verify(KeyId=rsa_key["KeyId"], Message=b"the message", Signature=signature,
                          SigningAlgorithm=algorithm)["SignatureValid"] is True
        with expect_error("KMSInvalidSignatureException"):
            kms.verify(KeyId=rsa_key["KeyId"], Message=b"another message", Signature=signature,
                       SigningAlgorithm=algorithm)

    for spec, algorithm in [("ECC_NIST_P256", "ECDSA_SHA_256"), ("ECC_NIST_P384", "ECDSA_SHA_384"),
                            ("ECC_NIST_P521", "ECDSA_SHA_512"), ("ECC_SECG_P256K1", "ECDSA_SHA_256")]:
        key = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        assert key["SigningAlgorithms"] == [algorithm]
        _, public = public_key(kms, key["KeyId"])
        digest = HASHES[algorithm[-3:]]()
        signature = kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm=algorithm)["Signature"]
        public.verify(signature, b"m", ec.ECDSA(digest))
        # A digest signed is the message's signature.
        h = hashes.Hash(HASHES[algorithm[-3:]]())
        h.update(b"m")
        by_digest = kms.sign(KeyId=key["KeyId"], Message=h.finalize(), MessageType="DIGEST",
                             SigningAlgorithm=algorithm)["Signature"]
        public.verify(by_digest, b"m", ec.ECDSA(digest))
        with expect_error("ValidationException"):
            kms.sign(KeyId=key["KeyId"], Message=b"not a digest", MessageType="DIGEST",
                     SigningAlgorithm=algorithm)

    ed = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    _, public = public_key(kms, ed["KeyId"])
    public.verify(kms.sign(KeyId=ed["KeyId"], Message=b"m", SigningAlgorithm="ED25519_SHA_512")["Signature"], b"m")


@pytest.mark.parametrize("spec", ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"])
def test_ml_dsa_signatures_verify_outside_sluice(kms, spec):
    """FIPS 204 keys: signatures Sluice makes verify with pyca/cryptography's ML-DSA and
    the public key GetPublicKey gives."""
    from cryptography.hazmat.primitives.asymmetric import mldsa

    key = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert key["KeySpec"] == spec and key["SigningAlgorithms"] == ["ML_DSA_SHAKE_256"]
    out, public = public_key(kms, key["KeyId"])
    assert isinstance(public, getattr(mldsa, f"MLDSA{spec[-2:]}PublicKey"))
    assert out["SigningAlgorithms"] == ["ML_DSA_SHAKE_256"]
    message = b"a message signed after quantum computers"
    signature = kms.sign(KeyId=key["KeyId"], Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    public.verify(signature, message)  # raises if it does not
    assert kms.verify(KeyId=key["KeyId"], Message=message, Signature=signature,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"] is True
    with expect_error("KMSInvalidSignatureException"):
        kms.verify(KeyId=key["KeyId"], Message=b"another message", Signature=signature,
                   SigningAlgorithm="ML_DSA_SHAKE_256")
    with expect_error("ValidationException"):
        kms.sign(KeyId=key["KeyId"], Message=b"\0" * 32, MessageType="DIGEST", SigningAlgorithm="ML_DSA_SHAKE_256")
    with expect_error("UnsupportedOperationException", message="EXTERNAL_MU"):
        kms.sign(KeyId=key["KeyId"], Message=b"\0" * 64, MessageType="EXTERNAL_MU",
                 SigningAlgorithm="ML_DSA_SHAKE_256")
    with expect_error("InvalidKeyUsageException"):
        kms.sign(KeyId=key["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256")
    with expect_error("ValidationException", message=f"KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec {spec}"):
        kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")


def test_hmac_keys(kms):
    key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert key["MacAlgorithms"] == ["HMAC_SHA_256"]
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert len(mac) == 32
    assert mac == kms.generate_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac)["MacValid"]
    with expect_error("KMSInvalidMacException"):
        kms.verify_mac(KeyId=key["KeyId"], Message=b"n", MacAlgorithm="HMAC_SHA_256", Mac=mac)
    with expect_error("InvalidKeyUsageException"):
        kms.generate_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_512")
    with expect_error("UnsupportedOperationException"):
        kms.get_public_key(KeyId=key["KeyId"])


def test_rsa_encryption_keys(kms):
    key = kms.create_key(KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert key["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    _, public = public_key(kms, key["KeyId"])
    # Encrypted outside with the public key, decrypted inside.
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    outside = public.encrypt(b"secret", oaep)
    out = kms.decrypt(CiphertextBlob=outside, KeyId=key["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"secret" and out["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    inside = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"again", EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert kms.decrypt(CiphertextBlob=inside["CiphertextBlob"], KeyId=key["KeyId"],
                       EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == b"again"
    with expect_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=outside, KeyId=key["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    with expect_error("ValidationException"):
        kms.decrypt(CiphertextBlob=outside, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    with expect_error("InvalidKeyUsageException"):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    with expect_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with expect_error("InvalidKeyUsageException"):
        kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")


def test_data_key_pairs_are_real_key_pairs_sealed_under_a_symmetric_key(kms):
    wrapping = kms.create_key()["KeyMetadata"]["KeyId"]
    for spec in ("RSA_2048", "ECC_NIST_P256"):
        pair = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec=spec,
                                          EncryptionContext={"purpose": "pairs"})
        private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
        public = serialization.load_der_public_key(pair["PublicKey"])
        assert private.public_key().public_numbers() == public.public_numbers()
        opened = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"],
                             EncryptionContext={"purpose": "pairs"})["Plaintext"]
        assert opened == pair["PrivateKeyPlaintext"] and pair["KeyPairSpec"] == spec
    bare = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping, KeyPairSpec="ECC_NIST_P384")
    assert "PrivateKeyPlaintext" not in bare and bare["PrivateKeyCiphertextBlob"]
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with expect_error("InvalidKeyUsageException"):
        kms.generate_data_key_pair(KeyId=signing, KeyPairSpec="RSA_2048")


def test_ecdh_agrees_with_the_peer_and_ml_kem_round_trips(kms):
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    assert key["KeyAgreementAlgorithms"] == ["ECDH"]
    _, kms_public = public_key(kms, key["KeyId"])
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_der = peer.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    out = kms.derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_public)
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with expect_error("ValidationException"):
        kms.derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=other_curve)

    kem = kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    sealed = kms.encapsulate(KeyId=kem["KeyId"], EncapsulationAlgorithm="ML_KEM")
    opened = kms.decapsulate(KeyId=kem["KeyId"], EncapsulationAlgorithm="ML_KEM",
                             SharedSecretCiphertextBlob=sealed["SharedSecretCiphertextBlob"])
    assert opened["SharedSecret"] == sealed["SharedSecret"] and len(opened["SharedSecret"]) == 32


def test_kinds_usages_and_rotation_refusals(kms, raw_kms):
    with expect_error("ValidationException"):
        kms.create_key(KeySpec="RSA_2048", KeyUsage="GENERATE_VERIFY_MAC")
    with expect_error("ValidationException"):
        kms.create_key(KeySpec="HMAC_256", KeyUsage="ENCRYPT_DECRYPT")
    with expect_error("UnsupportedOperationException"):
        kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    for call in (kms.enable_key_rotation, kms.rotate_key_on_demand, kms.list_key_rotations):
        with expect_error("UnsupportedOperationException"):
            call(KeyId=rsa)
    with expect_error("InvalidKeyUsageException"):
        kms.sign(KeyId=rsa, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with expect_error("ValidationException"):
        raw_kms.sign(KeyId=rsa, Message=b"m", SigningAlgorithm="NOT_AN_ALGORITHM")
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    with expect_error("UnsupportedOperationException"):
        kms.get_public_key(KeyId=symmetric)
    with expect_error("InvalidKeyUsageException"):
        kms.sign(KeyId=symmetric, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")

    assert kms.list_key_rotations(KeyId=symmetric)["Rotations"] == []
    kms.rotate_key_on_demand(KeyId=symmetric)
    kms.rotate_key_on_demand(KeyId=symmetric)
    page = kms.list_key_rotations(KeyId=symmetric, Limit=1)
    assert page["Truncated"] is True and len(page["Rotations"]) == 1
    assert page["Rotations"][0]["RotationType"] == "ON_DEMAND"
    assert page["Rotations"][0]["KeyId"] == symmetric
    rest = kms.list_key_rotations(KeyId=symmetric, Marker=page["NextMarker"])
    assert rest["Truncated"] is False and len(rest["Rotations"]) == 1


def test_imported_key_material(kms, server):
    import datetime
    import os

    from cryptography.hazmat.primitives.asymmetric import padding as asym_padding

    key = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    assert key["Origin"] == "EXTERNAL" and key["KeyState"] == "PendingImport"
    with expect_error("KMSInvalidStateException", status=409):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with expect_error("KMSInvalidStateException", status=409):
        kms.enable_key(KeyId=key["KeyId"])
    with expect_error("UnsupportedOperationException"):
        kms.get_parameters_for_import(KeyId=kms.create_key()["KeyMetadata"]["KeyId"],
                                      WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")

    def wrap(params, material, sha256=True):
        public = serialization.load_der_public_key(params["PublicKey"])
        digest = hashes.SHA256() if sha256 else hashes.SHA1()
        return public.encrypt(material, asym_padding.OAEP(mgf=asym_padding.MGF1(digest),
                                                          algorithm=digest, label=None))

    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    assert params["ParametersValidTo"] > datetime.datetime.now(datetime.timezone.utc)
    material = os.urandom(32)
    with expect_error("IncorrectKeyMaterialException"):
        kms.import_key_material(KeyId=key["KeyId"], ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=wrap(params, os.urandom(16)))
    with expect_error("InvalidImportTokenException"):
        kms.import_key_material(KeyId=key["KeyId"], ImportToken=b"not a token",
                                EncryptedKeyMaterial=wrap(params, material))
    imported = kms.import_key_material(KeyId=key["KeyId"], ImportToken=params["ImportToken"],
                                       EncryptedKeyMaterial=wrap(params, material),
                                       ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"under my key")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under my key"

    # Delete it: the key cannot decrypt; only the same material brings it back.
    deleted = kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert deleted["KeyMaterialId"] == imported["KeyMaterialId"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    with expect_error("KMSInvalidStateException", status=409):
        kms.decrypt(CiphertextBlob=blob)
    again = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1",
                                          WrappingKeySpec="RSA_3072")
    with expect_error("IncorrectKeyMaterialException"):
        kms.import_key_material(KeyId=key["KeyId"], ImportToken=again["ImportToken"],
                                EncryptedKeyMaterial=wrap(again, os.urandom(32), sha256=False))
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    kms.import_key_material(KeyId=key["KeyId"], ImportToken=again["ImportToken"],
                            EncryptedKeyMaterial=wrap(again, material, sha256=False),
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=later)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under my key"
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    # A key with material takes no more.
    with expect_error("KMSInvalidStateException", status=409):
        kms.import_key_material(KeyId=key["KeyId"], ImportToken=again["ImportToken"],
                                EncryptedKeyMaterial=wrap(again, material, sha256=False))
    # Past ValidTo the sweep deletes the material (moved into the past in the catalog).
    server.sql(f"UPDATE kms_keys SET material_expires_ms = 1 WHERE key_id = '{key['KeyId']}'")
    import time
    deadline = time.monotonic() + 20
    while kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] != "PendingImport":
        assert time.monotonic() < deadline, "imported material outlived its ValidTo"
        time.sleep(0.5)
    with expect_error("KMSInvalidStateException", status=409):
        kms.decrypt(CiphertextBlob=blob)
