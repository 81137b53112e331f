//! Signed notifications: every envelope SNS delivers carries `SignatureVersion`,
//! `Signature` and `SigningCertURL`, so a receiver can check it came from the topic.
//!
//! The key is one RSA 2048 key per deployment, made on first use and kept in the
//! catalog sealed under the root key (a server secret, so every data plane signs with
//! the same key). Its certificate is self-signed and the same bytes in every process
//! (fixed serial, validity and name; RSA PKCS #1 v1.5 signatures are deterministic),
//! served without authentication at `https://HOST/sns/SimpleNotificationService-<id>.pem`
//! over Sluice's TLS, which is what a receiver trusts it by.
//!
//! Signature version 2 is SHA256withRSA over SNS's canonical string (each of the
//! message's fields in order, name and value on lines of their own). Version 1
//! (SHA1withRSA) is not offered: aws-lc-rs does not sign with SHA-1.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa;
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use catalog::Catalog;
use catalog::rootkey::RootKey;
use protocol::{ApiError, ErrorCode};

/// The catalog's name for the signing key.
const KEY_SECRET: &str = "sns-signing-key";
/// The signature version Sluice signs with.
pub const SIGNATURE_VERSION: &str = "2";

pub struct Signing {
    key: rsa::KeyPair,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Names the certificate in its URL: the first 16 hex digits of SHA-256 of the
    /// public key.
    pub cert_id: String,
}

fn internal(what: &str) -> ApiError {
    tracing::error!(what, "the SNS signing key");
    ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Signing {
    /// The deployment's key (made and stored the first time any process asks).
    pub async fn load(catalog: &Catalog, root: &RootKey) -> Result<Signing, ApiError> {
        let der = catalog
            .server_secret(root, KEY_SECRET, || {
                rsa::KeyPair::generate(rsa::KeySize::Rsa2048)
                    .ok()
                    .and_then(|k| {
                        let der: aws_lc_rs::encoding::Pkcs8V1Der = k.as_der().ok()?;
                        Some(der.as_ref().to_vec())
                    })
                    .unwrap_or_default()
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "reading the SNS signing key");
                internal("reading")
            })?;
        Signing::from_pkcs8(&der)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Signing, ApiError> {
        let key = rsa::KeyPair::from_pkcs8(der).map_err(|_| internal("loading"))?;
        let public: PublicKeyX509Der = key
            .public_key()
            .as_der()
            .map_err(|_| internal("its public key"))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public.as_ref());
        let cert_id = hex(&digest.as_ref()[..8]);
        let cert_key = rcgen::KeyPair::try_from(der).map_err(|_| internal("certifying"))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|_| internal("certifying"))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "sns.sluice (Sluice SNS message signing)",
        );
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&digest.as_ref()[..16]));
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_735_689_600) // 2025-01-01
            .map_err(|_| internal("certifying"))?;
        params.not_after = time::OffsetDateTime::from_unix_timestamp(4_891_363_200) // 2125-01-01
            .map_err(|_| internal("certifying"))?;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let cert = params
            .self_signed(&cert_key)
            .map_err(|_| internal("certifying"))?;
        Ok(Signing {
            key,
            cert_pem: cert.pem(),
            cert_id,
        })
    }

    /// The path the certificate is served at.
    pub fn cert_path(&self) -> String {
        format!("/sns/SimpleNotificationService-{}.pem", self.cert_id)
    }

    /// SHA256withRSA of `text`, base64.
    pub fn sign(&self, text: &str) -> Result<String, ApiError> {
        let mut out = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                text.as_bytes(),
                &mut out,
            )
            .map_err(|_| internal("signing"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }
}

/// SNS's canonical string of a notification: Message, MessageId, Subject (when there is
/// one), Timestamp, TopicArn and Type, each as its name and its value on lines of their
/// own.
pub fn notification_string(
    message: &str,
    message_id: &str,
    subject: Option<&str>,
    timestamp: &str,
    topic_arn: &str,
) -> String {
    let mut fields = vec![("Message", message), ("MessageId", message_id)];
    if let Some(s) = subject {
        fields.push(("Subject", s));
    }
    fields.extend([
        ("Timestamp", timestamp),
        ("TopicArn", topic_arn),
        ("Type", "Notification"),
    ]);
    fields.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_certificates_key_and_certificates_are_stable() {
        let key = rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
        let a = Signing::from_pkcs8(der.as_ref()).unwrap();
        let b = Signing::from_pkcs8(der.as_ref()).unwrap();
        assert_eq!(
            a.cert_pem, b.cert_pem,
            "every process serves the same certificate"
        );
        assert_eq!(a.cert_id.len(), 16);
        let text = notification_string("m", "id", Some("s"), "2026-12-07T00:00:00.000Z", "arn");
        assert_eq!(
            text,
            "Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\n2026-12-07T00:00:00.000Z\nTopicArn\narn\nType\nNotification\n"
        );
        let sig = base64::engine::general_purpose::STANDARD
            .decode(a.sign(&text).unwrap())
            .unwrap();
        let public = a.key.public_key().as_ref().to_vec();
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(text.as_bytes(), &sig)
            .unwrap();
        assert!(
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public)
                .verify(b"another text", &sig)
                .is_err()
        );
    }
}
