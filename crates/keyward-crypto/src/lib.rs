//! keyward's cryptography and formats.
//!
//! # Layout
//! - [`key`]: [`PrivateKey`] (PKCS#8 v1, zeroized), [`KeyKind`], [`key_mismatch`].
//! - [`certificate`]: [`Certificate`] and [`CertificateDetails`].
//! - [`chain`]: [`Chain`], certificates ordered leaf first.
//! - [`issue`]: [`generate`] (key + self-signed certificate) and [`certificate_request`].
//! - [`import`](mod@import): [`import()`](fn@import) and [`parse_certificates`] for PEM, DER, PKCS#7 and PKCS#12.
//! - [`export`]: [`p7b_der`], [`p7b_pem`], [`pkcs12`].
//! - [`seal`]: [`MasterKey`], AES-256-GCM encryption at rest.
//! - [`signature`]: [`SignatureScheme`], [`PrivateKey::sign_with`] and
//!   [`Certificate::verify_signature`].
//! - [`encryption`]: [`RsaEncryptionPadding`], [`OaepHash`], [`Certificate::rsa_encrypt`]
//!   and [`PrivateKey::rsa_decrypt`] (RSA key transport).
//! - [`error`]: [`CryptoError`] with [`CryptoError::is_user_error`].
//!
//! Private-key operations (generation, signing, decryption) run on aws-lc-rs. ASN.1
//! structures are the RustCrypto types (`der`, `x509-cert`, `cms`, `pkcs8`); details are
//! read with `x509-parser`; PKCS#12 is p12-keystore.

pub mod certificate;
pub mod chain;
mod dn;
pub mod encryption;
pub mod error;
pub mod export;
pub mod import;
pub mod issue;
pub mod key;
mod oids;
mod pem;
pub mod seal;
pub mod signature;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod testutil;

pub use certificate::{Certificate, CertificateDetails};
pub use chain::Chain;
pub use encryption::{OaepHash, RsaEncryptionPadding};
pub use error::CryptoError;
pub use export::{p7b_der, p7b_pem, pkcs12};
pub use import::{Imported, import, parse_certificates};
pub use issue::{MAX_VALIDITY_DAYS, certificate_request, generate};
pub use key::{KeyKind, PrivateKey, key_mismatch};
pub use keyward_domain::KeyAlgorithm;
pub use seal::MasterKey;
pub use signature::{HashAlgorithm, SignatureScheme};

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn sha256_hex_known_value() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
