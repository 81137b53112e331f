//! The kinds of KMS key besides symmetric encryption, and their cryptography (all of it
//! aws-lc-rs): RSA (signing, or RSAES-OAEP encryption), NIST and SECG elliptic curves
//! (ECDSA signing, or ECDH key agreement), Ed25519 and ML-DSA (FIPS 204) signing, HMAC,
//! and ML-KEM encapsulation. Material is what the catalog keeps sealed: an asymmetric
//! key's private key as PKCS #8 (ML-KEM: its decapsulation key bytes), an HMAC key's
//! secret.
//! Nothing here does I/O.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{self, KeyPair};
use aws_lc_rs::{agreement, digest, hmac, kem, rsa};
use protocol::{ApiError, ErrorCode};
use zeroize::Zeroizing;

/// A key spec Sluice makes keys of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    Symmetric,
    Rsa(rsa::KeySize),
    /// A NIST curve (P-256, P-384, P-521) or SECG's secp256k1.
    Ecc(Curve),
    Ed25519,
    /// HMAC with the digest of this many bits.
    Hmac(u16),
    MlKem(u16),
    /// ML-DSA at this parameter set (44, 65, 87).
    MlDsa(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
    Secp256k1,
}

pub(crate) const SIGN_VERIFY: &str = "SIGN_VERIFY";
pub(crate) const GENERATE_VERIFY_MAC: &str = "GENERATE_VERIFY_MAC";
pub(crate) const KEY_AGREEMENT: &str = "KEY_AGREEMENT";
pub(crate) const ENCAPSULATE_DECAPSULATE: &str = "ENCAPSULATE_DECAPSULATE";
pub(crate) const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";

fn unsupported(text: String) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedOperation, text)
}

fn internal(what: &str) -> ApiError {
    tracing::error!(what, "KMS key material did not load");
    ApiError::internal()
}

impl Spec {
    /// A KeySpec by KMS's name; SM2 (China Regions only) is refused as unsupported
    /// here.
    pub(crate) fn parse(name: &str) -> Result<Spec, ApiError> {
        Ok(match name {
            "SYMMETRIC_DEFAULT" => Spec::Symmetric,
            "RSA_2048" => Spec::Rsa(rsa::KeySize::Rsa2048),
            "RSA_3072" => Spec::Rsa(rsa::KeySize::Rsa3072),
            "RSA_4096" => Spec::Rsa(rsa::KeySize::Rsa4096),
            "ECC_NIST_P256" => Spec::Ecc(Curve::P256),
            "ECC_NIST_P384" => Spec::Ecc(Curve::P384),
            "ECC_NIST_P521" => Spec::Ecc(Curve::P521),
            "ECC_SECG_P256K1" => Spec::Ecc(Curve::Secp256k1),
            "ECC_NIST_EDWARDS25519" => Spec::Ed25519,
            "HMAC_224" => Spec::Hmac(224),
            "HMAC_256" => Spec::Hmac(256),
            "HMAC_384" => Spec::Hmac(384),
            "HMAC_512" => Spec::Hmac(512),
            "ML_KEM_512" => Spec::MlKem(512),
            "ML_KEM_768" => Spec::MlKem(768),
            "ML_KEM_1024" => Spec::MlKem(1024),
            "ML_DSA_44" => Spec::MlDsa(44),
            "ML_DSA_65" => Spec::MlDsa(65),
            "ML_DSA_87" => Spec::MlDsa(87),
            other => {
                return Err(unsupported(format!(
                    "KeySpec {other} is not supported by this server."
                )));
            }
        })
    }

    /// The usages a key of this spec may have; the first is its default.
    pub(crate) fn usages(self) -> &'static [&'static str] {
        match self {
            Spec::Symmetric => &[ENCRYPT_DECRYPT],
            Spec::Rsa(_) => &[ENCRYPT_DECRYPT, SIGN_VERIFY],
            Spec::Ecc(Curve::Secp256k1) | Spec::Ed25519 | Spec::MlDsa(_) => &[SIGN_VERIFY],
            Spec::Ecc(_) => &[SIGN_VERIFY, KEY_AGREEMENT],
            Spec::Hmac(_) => &[GENERATE_VERIFY_MAC],
            Spec::MlKem(_) => &[ENCAPSULATE_DECAPSULATE],
        }
    }

    /// Fresh material for a key of this spec and usage.
    pub(crate) fn generate(self) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let failed = || internal("generating a key pair");
        Ok(Zeroizing::new(match self {
            Spec::Symmetric => {
                let mut key = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut key).map_err(|_| failed())?;
                key
            }
            Spec::Rsa(size) => {
                let pair = rsa::KeyPair::generate(size).map_err(|_| failed())?;
                let der: Pkcs8V1Der = pair.as_der().map_err(|_| failed())?;
                der.as_ref().to_vec()
            }
            Spec::Ecc(curve) => {
                let doc = signature::EcdsaKeyPair::generate_pkcs8(
                    ecdsa_signing(curve),
                    &aws_lc_rs::rand::SystemRandom::new(),
                )
                .map_err(|_| failed())?;
                doc.as_ref().to_vec()
            }
            Spec::Ed25519 => {
                let doc = signature::Ed25519KeyPair::generate_pkcs8(
                    &aws_lc_rs::rand::SystemRandom::new(),
                )
                .map_err(|_| failed())?;
                doc.as_ref().to_vec()
            }
            Spec::Hmac(bits) => {
                let mut key = vec![0u8; usize::from(bits / 8)];
                aws_lc_rs::rand::fill(&mut key).map_err(|_| failed())?;
                key
            }
            Spec::MlDsa(level) => {
                let pair = signature::PqdsaKeyPair::generate(ml_dsa_signing(level))
                    .map_err(|_| failed())?;
                pair.to_pkcs8v1().map_err(|_| failed())?.as_ref().to_vec()
            }
            Spec::MlKem(bits) => {
                // The decapsulation key then the encapsulation key: a decapsulation
                // key loaded from its bytes cannot give its public half back.
                let key = kem::DecapsulationKey::generate(ml_kem(bits)).map_err(|_| failed())?;
                let mut out = key.key_bytes().map_err(|_| failed())?.as_ref().to_vec();
                let public = key.encapsulation_key().map_err(|_| failed())?;
                out.extend_from_slice(public.key_bytes().map_err(|_| failed())?.as_ref());
                out
            }
        }))
    }

    pub(crate) fn signing_algorithms(self) -> Vec<&'static str> {
        match self {
            Spec::Rsa(_) => vec![
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
            Spec::Ecc(Curve::P256 | Curve::Secp256k1) => vec!["ECDSA_SHA_256"],
            Spec::Ecc(Curve::P384) => vec!["ECDSA_SHA_384"],
            Spec::Ecc(Curve::P521) => vec!["ECDSA_SHA_512"],
            Spec::Ed25519 => vec!["ED25519_SHA_512"],
            Spec::MlDsa(_) => vec!["ML_DSA_SHAKE_256"],
            _ => vec![],
        }
    }

    pub(crate) fn encryption_algorithms(self) -> Vec<&'static str> {
        match self {
            Spec::Symmetric => vec!["SYMMETRIC_DEFAULT"],
            Spec::Rsa(_) => vec!["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
            _ => vec![],
        }
    }

    pub(crate) fn mac_algorithms(self) -> Vec<&'static str> {
        match self {
            Spec::Hmac(224) => vec!["HMAC_SHA_224"],
            Spec::Hmac(256) => vec!["HMAC_SHA_256"],
            Spec::Hmac(384) => vec!["HMAC_SHA_384"],
            Spec::Hmac(512) => vec!["HMAC_SHA_512"],
            _ => vec![],
        }
    }
}

fn ecdsa_signing(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
    }
}

fn ecdsa_verifying(curve: Curve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
        Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1,
        Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_ASN1,
    }
}

fn ml_dsa_signing(level: u8) -> &'static signature::PqdsaSigningAlgorithm {
    match level {
        44 => &signature::ML_DSA_44_SIGNING,
        65 => &signature::ML_DSA_65_SIGNING,
        _ => &signature::ML_DSA_87_SIGNING,
    }
}

fn ml_dsa_verifying(level: u8) -> &'static signature::PqdsaVerificationAlgorithm {
    match level {
        44 => &signature::ML_DSA_44,
        65 => &signature::ML_DSA_65,
        _ => &signature::ML_DSA_87,
    }
}

fn ml_dsa_pair(level: u8, material: &[u8]) -> Result<signature::PqdsaKeyPair, ApiError> {
    signature::PqdsaKeyPair::from_pkcs8(ml_dsa_signing(level), material)
        .map_err(|_| internal("an ML-DSA key"))
}

/// An ML-KEM key's material as (decapsulation key, encapsulation key).
fn ml_kem_halves(bits: u16, material: &[u8]) -> Result<(&[u8], &[u8]), ApiError> {
    // FIPS 203's decapsulation key sizes.
    let at = match bits {
        512 => 1632,
        768 => 2400,
        _ => 3168,
    };
    if material.len() <= at {
        return Err(internal("an ML-KEM key"));
    }
    Ok(material.split_at(at))
}

fn ml_kem(bits: u16) -> &'static kem::Algorithm<kem::AlgorithmId> {
    match bits {
        512 => &kem::ML_KEM_512,
        768 => &kem::ML_KEM_768,
        _ => &kem::ML_KEM_1024,
    }
}

/// The X.509 SubjectPublicKeyInfo of a key's public half (GetPublicKey,
/// GenerateDataKeyPair), in DER.
pub(crate) fn public_key_der(spec: Spec, material: &[u8]) -> Result<Vec<u8>, ApiError> {
    let failed = || internal("the public half of a key");
    match spec {
        Spec::Rsa(_) => {
            let pair = rsa::KeyPair::from_pkcs8(material).map_err(|_| failed())?;
            let der: PublicKeyX509Der = pair.public_key().as_der().map_err(|_| failed())?;
            Ok(der.as_ref().to_vec())
        }
        Spec::Ecc(curve) => {
            let pair = signature::EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), material)
                .map_err(|_| failed())?;
            let der: PublicKeyX509Der = pair.public_key().as_der().map_err(|_| failed())?;
            Ok(der.as_ref().to_vec())
        }
        Spec::Ed25519 => {
            let pair = signature::Ed25519KeyPair::from_pkcs8(material).map_err(|_| failed())?;
            let der: PublicKeyX509Der = pair.public_key().as_der().map_err(|_| failed())?;
            Ok(der.as_ref().to_vec())
        }
        Spec::MlKem(bits) => {
            let (_, public) = ml_kem_halves(bits, material)?;
            Ok(ml_kem_spki(bits, public))
        }
        Spec::MlDsa(level) => {
            let pair = ml_dsa_pair(level, material)?;
            let der: PublicKeyX509Der = pair.public_key().as_der().map_err(|_| failed())?;
            Ok(der.as_ref().to_vec())
        }
        Spec::Symmetric | Spec::Hmac(_) => Err(unsupported(
            "GetPublicKey is for asymmetric keys; this key has no public key.".into(),
        )),
    }
}

/// DER of a length.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// SubjectPublicKeyInfo of an ML-KEM encapsulation key (FIPS 203's OIDs
/// 2.16.840.1.101.3.4.4.1-3, no parameters).
fn ml_kem_spki(bits: u16, raw: &[u8]) -> Vec<u8> {
    let last = match bits {
        512 => 1,
        768 => 2,
        _ => 3,
    };
    let oid = der(
        0x06,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last],
    );
    let algorithm = der(0x30, &oid);
    let mut bit_string = vec![0u8];
    bit_string.extend_from_slice(raw);
    let mut body = algorithm;
    body.extend(der(0x03, &bit_string));
    der(0x30, &body)
}

/// How Sign and Verify take the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageType {
    Raw,
    Digest,
}

fn digest_of(algorithm: &str) -> Option<&'static digest::Algorithm> {
    Some(match algorithm {
        "RSASSA_PSS_SHA_256" | "RSASSA_PKCS1_V1_5_SHA_256" | "ECDSA_SHA_256" => &digest::SHA256,
        "RSASSA_PSS_SHA_384" | "RSASSA_PKCS1_V1_5_SHA_384" | "ECDSA_SHA_384" => &digest::SHA384,
        "RSASSA_PSS_SHA_512" | "RSASSA_PKCS1_V1_5_SHA_512" | "ECDSA_SHA_512" => &digest::SHA512,
        _ => return None,
    })
}

fn rsa_signing(algorithm: &str) -> Option<&'static dyn signature::RsaEncoding> {
    Some(match algorithm {
        "RSASSA_PSS_SHA_256" => &signature::RSA_PSS_SHA256,
        "RSASSA_PSS_SHA_384" => &signature::RSA_PSS_SHA384,
        "RSASSA_PSS_SHA_512" => &signature::RSA_PSS_SHA512,
        "RSASSA_PKCS1_V1_5_SHA_256" => &signature::RSA_PKCS1_SHA256,
        "RSASSA_PKCS1_V1_5_SHA_384" => &signature::RSA_PKCS1_SHA384,
        "RSASSA_PKCS1_V1_5_SHA_512" => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn rsa_verifying(algorithm: &str) -> Option<&'static signature::RsaParameters> {
    Some(match algorithm {
        "RSASSA_PSS_SHA_256" => &signature::RSA_PSS_2048_8192_SHA256,
        "RSASSA_PSS_SHA_384" => &signature::RSA_PSS_2048_8192_SHA384,
        "RSASSA_PSS_SHA_512" => &signature::RSA_PSS_2048_8192_SHA512,
        "RSASSA_PKCS1_V1_5_SHA_256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RSASSA_PKCS1_V1_5_SHA_384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RSASSA_PKCS1_V1_5_SHA_512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

/// A DIGEST message as the digest of `algorithm`; its length must be the digest's.
fn imported_digest(algorithm: &str, message: &[u8]) -> Result<digest::Digest, ApiError> {
    let alg = digest_of(algorithm).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Validation,
            format!("MessageType DIGEST is not supported with {algorithm}."),
        )
    })?;
    digest::Digest::import_less_safe(message, alg).map_err(|_| {
        ApiError::new(
            ErrorCode::Validation,
            format!(
                "Digest is invalid length for algorithm {algorithm}: it must be {} bytes.",
                alg.output_len()
            ),
        )
    })
}

/// Signs `message` (or, for `Digest`, the digest it is) with the key's private half.
/// The algorithm was checked against the key's.
pub(crate) fn sign(
    spec: Spec,
    material: &[u8],
    algorithm: &str,
    message: &[u8],
    kind: MessageType,
) -> Result<Vec<u8>, ApiError> {
    let failed = || internal("signing");
    match spec {
        Spec::Rsa(_) => {
            let pair = rsa::KeyPair::from_pkcs8(material).map_err(|_| failed())?;
            let encoding = rsa_signing(algorithm).ok_or_else(failed)?;
            let mut out = vec![0u8; pair.public_modulus_len()];
            match kind {
                MessageType::Raw => pair
                    .sign(
                        encoding,
                        &aws_lc_rs::rand::SystemRandom::new(),
                        message,
                        &mut out,
                    )
                    .map_err(|_| failed())?,
                MessageType::Digest => pair
                    .sign_digest(encoding, &imported_digest(algorithm, message)?, &mut out)
                    .map_err(|_| failed())?,
            }
            Ok(out)
        }
        Spec::Ecc(curve) => {
            let pair = signature::EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), material)
                .map_err(|_| failed())?;
            let sig = match kind {
                MessageType::Raw => pair
                    .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                    .map_err(|_| failed())?,
                MessageType::Digest => pair
                    .sign_digest(&imported_digest(algorithm, message)?)
                    .map_err(|_| failed())?,
            };
            Ok(sig.as_ref().to_vec())
        }
        Spec::Ed25519 => {
            if kind == MessageType::Digest {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "ED25519_SHA_512 signs RAW messages only.",
                ));
            }
            let pair = signature::Ed25519KeyPair::from_pkcs8(material).map_err(|_| failed())?;
            Ok(pair.sign(message).as_ref().to_vec())
        }
        Spec::MlDsa(level) => {
            if kind == MessageType::Digest {
                return Err(ml_dsa_takes_raw());
            }
            let pair = ml_dsa_pair(level, material)?;
            let mut out = vec![0u8; ml_dsa_signing(level).signature_len()];
            let len = pair.sign(message, &mut out).map_err(|_| failed())?;
            out.truncate(len);
            Ok(out)
        }
        _ => Err(failed()),
    }
}

/// Whether `sig` is the key's signature of `message`.
pub(crate) fn verify(
    spec: Spec,
    material: &[u8],
    algorithm: &str,
    message: &[u8],
    kind: MessageType,
    sig: &[u8],
) -> Result<bool, ApiError> {
    let failed = || internal("verifying");
    if kind == MessageType::Digest && spec == Spec::Ed25519 {
        return Err(ApiError::new(
            ErrorCode::Validation,
            "ED25519_SHA_512 verifies RAW messages only.",
        ));
    }
    if let Spec::MlDsa(level) = spec {
        if kind == MessageType::Digest {
            return Err(ml_dsa_takes_raw());
        }
        let public = ml_dsa_pair(level, material)?.public_key().as_ref().to_vec();
        return Ok(
            signature::UnparsedPublicKey::new(ml_dsa_verifying(level), &public)
                .verify(message, sig)
                .is_ok(),
        );
    }
    // The key's public half, as the verification algorithm reads it.
    let (verifier, public): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) = match spec {
        Spec::Rsa(_) => {
            let pair = rsa::KeyPair::from_pkcs8(material).map_err(|_| failed())?;
            let verifier = rsa_verifying(algorithm).ok_or_else(failed)?;
            (verifier, pair.public_key().as_ref().to_vec())
        }
        Spec::Ecc(curve) => {
            let pair = signature::EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), material)
                .map_err(|_| failed())?;
            (ecdsa_verifying(curve), pair.public_key().as_ref().to_vec())
        }
        Spec::Ed25519 => {
            let pair = signature::Ed25519KeyPair::from_pkcs8(material).map_err(|_| failed())?;
            (&signature::ED25519, pair.public_key().as_ref().to_vec())
        }
        _ => return Err(failed()),
    };
    let key = signature::UnparsedPublicKey::new(verifier, &public)
        .parse()
        .map_err(|_| failed())?;
    Ok(match kind {
        MessageType::Raw => key.verify_sig(message, sig).is_ok(),
        MessageType::Digest => key
            .verify_digest_sig(&imported_digest(algorithm, message)?, sig)
            .is_ok(),
    })
}

fn ml_dsa_takes_raw() -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        "ML_DSA_SHAKE_256 takes MessageType RAW (or EXTERNAL_MU); DIGEST is not supported with it.",
    )
}

fn hmac_algorithm(bits: u16) -> hmac::Algorithm {
    match bits {
        224 => hmac::HMAC_SHA224,
        256 => hmac::HMAC_SHA256,
        384 => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    }
}

/// The HMAC of `message` under an HMAC key.
pub(crate) fn mac(bits: u16, material: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac_algorithm(bits), material);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// Whether `tag` is the HMAC of `message` (compared in constant time).
pub(crate) fn verify_mac(bits: u16, material: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(hmac_algorithm(bits), material);
    hmac::verify(&key, message, tag).is_ok()
}

fn oaep(algorithm: &str) -> Option<&'static rsa::OaepAlgorithm> {
    match algorithm {
        "RSAES_OAEP_SHA_1" => Some(&rsa::OAEP_SHA1_MGF1SHA1),
        "RSAES_OAEP_SHA_256" => Some(&rsa::OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

/// RSAES-OAEP encryption under an RSA key's public half.
pub(crate) fn rsa_encrypt(
    material: &[u8],
    algorithm: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let failed = || internal("RSA encryption");
    let private = rsa::PrivateDecryptingKey::from_pkcs8(material).map_err(|_| failed())?;
    let public = rsa::OaepPublicEncryptingKey::new(private.public_key()).map_err(|_| failed())?;
    let alg = oaep(algorithm).ok_or_else(failed)?;
    let max = public.max_plaintext_size(alg);
    if plaintext.len() > max {
        return Err(ApiError::new(
            ErrorCode::Validation,
            format!("Plaintext is too long: {algorithm} with this key takes at most {max} bytes."),
        ));
    }
    let mut out = vec![0u8; public.ciphertext_size()];
    let sealed = public
        .encrypt(alg, plaintext, &mut out, None)
        .map_err(|_| failed())?;
    Ok(sealed.to_vec())
}

/// RSAES-OAEP decryption; `None` when the ciphertext does not open.
pub(crate) fn rsa_decrypt(
    material: &[u8],
    algorithm: &str,
    ciphertext: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, ApiError> {
    let failed = || internal("RSA decryption");
    let private = rsa::PrivateDecryptingKey::from_pkcs8(material).map_err(|_| failed())?;
    let key = rsa::OaepPrivateDecryptingKey::new(private).map_err(|_| failed())?;
    let alg = oaep(algorithm).ok_or_else(failed)?;
    let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
    Ok(match key.decrypt(alg, ciphertext, &mut out, None) {
        Ok(plain) => Some(Zeroizing::new(plain.to_vec())),
        Err(_) => None,
    })
}

/// ECDH between a KEY_AGREEMENT key and a peer's public key (X.509 DER); `None` when
/// the peer's key is not a point of the key's curve.
pub(crate) fn derive_shared_secret(
    curve: Curve,
    material: &[u8],
    peer: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, ApiError> {
    let alg = match curve {
        Curve::P256 => &agreement::ECDH_P256,
        Curve::P384 => &agreement::ECDH_P384,
        Curve::P521 => &agreement::ECDH_P521,
        Curve::Secp256k1 => return Err(internal("ECDH on secp256k1")),
    };
    let private = agreement::PrivateKey::from_private_key_der(alg, material)
        .map_err(|_| internal("an ECDH key"))?;
    let peer = agreement::UnparsedPublicKey::new(alg, peer);
    Ok(agreement::agree(&private, peer, (), |secret| {
        Ok(Zeroizing::new(secret.to_vec()))
    })
    .ok())
}

/// ML-KEM encapsulation under the key's encapsulation key: (ciphertext, secret).
pub(crate) fn encapsulate(
    bits: u16,
    material: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), ApiError> {
    let failed = || internal("ML-KEM encapsulation");
    let (_, public) = ml_kem_halves(bits, material)?;
    let public = kem::EncapsulationKey::new(ml_kem(bits), public).map_err(|_| failed())?;
    let (ciphertext, secret) = public.encapsulate().map_err(|_| failed())?;
    Ok((
        ciphertext.as_ref().to_vec(),
        Zeroizing::new(secret.as_ref().to_vec()),
    ))
}

/// ML-KEM decapsulation; `None` when the ciphertext is not one of this key's size.
pub(crate) fn decapsulate(
    bits: u16,
    material: &[u8],
    ciphertext: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, ApiError> {
    let (private, _) = ml_kem_halves(bits, material)?;
    let key =
        kem::DecapsulationKey::new(ml_kem(bits), private).map_err(|_| internal("an ML-KEM key"))?;
    Ok(key
        .decapsulate(kem::Ciphertext::from(ciphertext))
        .ok()
        .map(|secret| Zeroizing::new(secret.as_ref().to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signing_spec_signs_and_verifies_raw_and_digest() {
        for name in [
            "RSA_2048",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
        ] {
            let spec = Spec::parse(name).unwrap();
            let material = spec.generate().unwrap();
            assert!(
                public_key_der(spec, &material)
                    .unwrap()
                    .starts_with(&[0x30])
            );
            for algorithm in spec.signing_algorithms() {
                let sig = sign(spec, &material, algorithm, b"message", MessageType::Raw).unwrap();
                assert!(
                    verify(
                        spec,
                        &material,
                        algorithm,
                        b"message",
                        MessageType::Raw,
                        &sig
                    )
                    .unwrap()
                );
                assert!(
                    !verify(
                        spec,
                        &material,
                        algorithm,
                        b"massage",
                        MessageType::Raw,
                        &sig
                    )
                    .unwrap()
                );
                let alg = digest_of(algorithm).unwrap();
                let d = digest::digest(alg, b"message");
                // A digest signed is the message's signature, and the other way round.
                let by_digest =
                    sign(spec, &material, algorithm, d.as_ref(), MessageType::Digest).unwrap();
                assert!(
                    verify(
                        spec,
                        &material,
                        algorithm,
                        b"message",
                        MessageType::Raw,
                        &by_digest
                    )
                    .unwrap()
                );
                assert!(
                    verify(
                        spec,
                        &material,
                        algorithm,
                        d.as_ref(),
                        MessageType::Digest,
                        &sig
                    )
                    .unwrap()
                );
                assert!(sign(spec, &material, algorithm, b"short", MessageType::Digest).is_err());
            }
        }
        let spec = Spec::parse("ECC_NIST_EDWARDS25519").unwrap();
        let material = spec.generate().unwrap();
        let sig = sign(spec, &material, "ED25519_SHA_512", b"m", MessageType::Raw).unwrap();
        assert!(
            verify(
                spec,
                &material,
                "ED25519_SHA_512",
                b"m",
                MessageType::Raw,
                &sig
            )
            .unwrap()
        );
    }

    #[test]
    fn ml_dsa_keys_sign_and_verify_raw_messages_only() {
        for (name, level, signature_len) in [
            ("ML_DSA_44", 44, 2420),
            ("ML_DSA_65", 65, 3309),
            ("ML_DSA_87", 87, 4627),
        ] {
            let spec = Spec::parse(name).unwrap();
            assert_eq!(spec, Spec::MlDsa(level));
            assert_eq!(spec.usages(), &[SIGN_VERIFY]);
            let material = spec.generate().unwrap();
            let alg = "ML_DSA_SHAKE_256";
            let sig = sign(spec, &material, alg, b"m", MessageType::Raw).unwrap();
            assert_eq!(
                sig.len(),
                signature_len,
                "{name}: FIPS 204's signature size"
            );
            assert!(verify(spec, &material, alg, b"m", MessageType::Raw, &sig).unwrap());
            assert!(!verify(spec, &material, alg, b"n", MessageType::Raw, &sig).unwrap());
            // Another key of the spec does not verify it.
            let other = spec.generate().unwrap();
            assert!(!verify(spec, &other, alg, b"m", MessageType::Raw, &sig).unwrap());
            let digest = sign(spec, &material, alg, &[0u8; 64], MessageType::Digest);
            assert_eq!(digest.unwrap_err().code, ErrorCode::Validation);
            assert!(!public_key_der(spec, &material).unwrap().is_empty());
        }
    }

    #[test]
    fn rsa_encryption_hmac_ecdh_and_ml_kem_round_trip() {
        let spec = Spec::parse("RSA_2048").unwrap();
        let material = spec.generate().unwrap();
        for algorithm in spec.encryption_algorithms() {
            let sealed = rsa_encrypt(&material, algorithm, b"secret").unwrap();
            let opened = rsa_decrypt(&material, algorithm, &sealed).unwrap().unwrap();
            assert_eq!(opened.as_slice(), b"secret");
        }
        assert!(rsa_encrypt(&material, "RSAES_OAEP_SHA_256", &[0u8; 191]).is_err());

        let key = Spec::Hmac(256).generate().unwrap();
        let tag = mac(256, &key, b"m");
        assert_eq!(tag.len(), 32);
        assert!(verify_mac(256, &key, b"m", &tag));
        assert!(!verify_mac(256, &key, b"n", &tag));

        let mine = Spec::Ecc(Curve::P256).generate().unwrap();
        let theirs = Spec::Ecc(Curve::P256).generate().unwrap();
        let their_public = public_key_der(Spec::Ecc(Curve::P256), &theirs).unwrap();
        let my_public = public_key_der(Spec::Ecc(Curve::P256), &mine).unwrap();
        let a = derive_shared_secret(Curve::P256, &mine, &their_public)
            .unwrap()
            .unwrap();
        let b = derive_shared_secret(Curve::P256, &theirs, &my_public)
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert!(
            derive_shared_secret(Curve::P256, &mine, b"junk")
                .unwrap()
                .is_none()
        );

        let kem_key = Spec::MlKem(768).generate().unwrap();
        let (ciphertext, secret) = encapsulate(768, &kem_key).unwrap();
        assert_eq!(
            decapsulate(768, &kem_key, &ciphertext).unwrap().unwrap(),
            secret
        );
        assert!(
            public_key_der(Spec::MlKem(768), &kem_key)
                .unwrap()
                .starts_with(&[0x30, 0x82])
        );
    }
}
