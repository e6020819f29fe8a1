//! CMS `SignedData` (RFC 5652): signing payloads with keyward's keys and verifying signed
//! messages against trusted certificates.
//!
//! # Layout
//! - [`algorithm`]: [`DigestAlgorithm`], [`SignatureScheme`], [`IncludeCertificates`],
//!   [`Require`] and the object identifiers they map to.
//! - [`sign`](mod@sign): [`sign()`](fn@sign) and [`Signer`], one `SignerInfo` per signer.
//! - [`verify`](mod@verify): [`verify()`](fn@verify), [`Verification`] and [`SignerReport`],
//!   a verdict for every signer.
//! - [`error`]: [`CmsError`] with [`CmsError::is_user_error`].
//!
//! The ASN.1 structures are the `cms`, `der` and `x509-cert` types; private-key operations
//! and signature checks run on aws-lc-rs through `keyward-crypto`. Messages are written as
//! DER; DER, BER (indefinite lengths, as OpenSSL streams), PEM and base64 are read.

pub mod algorithm;
pub mod error;
mod input;
pub mod sign;
pub mod verify;

pub use algorithm::{DigestAlgorithm, IncludeCertificates, Require, SignatureScheme};
pub use error::CmsError;
pub use sign::{Signer, sign};
pub use verify::{SignerReport, Verification, verify};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
