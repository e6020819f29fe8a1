//! CMS `SignedData` (RFC 5652): signing payloads with keyward's keys and verifying signed
//! messages against trusted certificates; CMS `EnvelopedData` (RFC 5652) and
//! `AuthEnvelopedData` (RFC 5083): encrypting payloads for RSA recipients and decrypting
//! them.
//!
//! # Layout
//! - [`algorithm`]: [`DigestAlgorithm`], [`SignatureScheme`], [`IncludeCertificates`],
//!   [`Require`] and the object identifiers they map to.
//! - [`sign`](mod@sign): [`sign()`](fn@sign) and [`Signer`], one `SignerInfo` per signer.
//! - [`verify`](mod@verify): [`verify()`](fn@verify), [`Verification`] and [`SignerReport`],
//!   a verdict for every signer.
//! - [`encryption`]: [`KeyTransport`] and [`ContentEncryption`], the algorithms of an
//!   encrypted message.
//! - [`envelope`]: [`encrypt()`](fn@encrypt), [`recipients()`](fn@recipients),
//!   [`decrypt()`](fn@decrypt) and [`RecipientId`].
//! - [`error`]: [`CmsError`] with [`CmsError::is_user_error`].
//!
//! The ASN.1 structures are the `cms`, `der` and `x509-cert` types; private-key operations,
//! RSA encryption and signature checks run on aws-lc-rs through `keyward-crypto`, AES on
//! aws-lc-rs directly. Messages are written as DER; DER, BER (indefinite lengths, as
//! OpenSSL streams), PEM and base64 are read.

#[macro_use]
mod names;
pub mod algorithm;
pub mod encryption;
pub mod envelope;
pub mod error;
mod input;
pub mod sign;
mod signed_der;
pub mod verify;

pub use algorithm::{DigestAlgorithm, IncludeCertificates, Require, SignatureScheme};
pub use encryption::{ContentEncryption, KeyTransport};
pub use envelope::{RecipientId, decrypt, encrypt, recipients};
pub use error::CmsError;
pub use keyward_crypto::OaepHash;
pub use sign::{Signer, sign};
pub use verify::{SignerReport, Verification, verify};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod envelope_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sign_tests;
