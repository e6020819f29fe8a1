//! [`CmsError`], the one error type of this crate.
//!
//! Messages speak to whoever supplied the input or the options: which option does not
//! suit which key, what part of a message could not be read, and for a failed verification
//! the verdict for every signer. [`CmsError::is_user_error`] separates those from internal
//! failures.

use keyward_crypto::CryptoError;
use thiserror::Error;

use crate::verify::Verification;

/// Errors from signing, verifying, encrypting and decrypting CMS messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CmsError {
    /// An option does not suit the key or the request (Ed25519 with SHA-256, no signers,
    /// a scheme for another kind of key, ...).
    #[error("{0}")]
    InvalidParameter(String),

    /// The input is not a readable CMS message (bad PEM or base64, truncated or damaged
    /// ASN.1, not a `SignedData`).
    #[error("{0}")]
    Malformed(String),

    /// The message is well formed but uses something keyward does not support.
    #[error("{0}")]
    Unsupported(String),

    /// The message does not contain its content and none was given.
    #[error(
        "the message is detached (it does not contain the signed content); give the content to verify it against"
    )]
    DetachedContentMissing,

    /// The signatures do not satisfy the requirement; `verification` holds every signer's
    /// verdict.
    #[error("{summary}")]
    Verification {
        /// One sentence per signer that failed, for people.
        summary: String,
        /// The content and the report for every signer.
        verification: Verification,
    },

    /// The certificate given for decryption is not among the message's recipients; the
    /// message names the recipients there are.
    #[error("{0}")]
    NotRecipient(String),

    /// An encrypted message does not decrypt with the key given: a wrong key, or a message
    /// that was damaged or tampered with (the two cannot be told apart).
    #[error("{0}")]
    DecryptionFailed(String),

    /// A failure in keyward's cryptography (a key that cannot sign, ...).
    #[error(transparent)]
    Crypto(#[from] CryptoError),

    /// An internal failure (encoding, random generator) not caused by input.
    #[error("internal CMS failure: {0}")]
    Internal(String),
}

impl CmsError {
    /// True when the error was caused by the input or the options, false for internal
    /// failures.
    pub fn is_user_error(&self) -> bool {
        match self {
            CmsError::Crypto(inner) => inner.is_user_error(),
            CmsError::Internal(_) => false,
            _ => true,
        }
    }

    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        CmsError::Internal(what.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_are_told_apart_from_internal_ones() {
        assert!(CmsError::Malformed("x".to_owned()).is_user_error());
        assert!(CmsError::DetachedContentMissing.is_user_error());
        assert!(CmsError::NotRecipient("x".to_owned()).is_user_error());
        assert!(CmsError::DecryptionFailed("x".to_owned()).is_user_error());
        assert!(!CmsError::internal("x").is_user_error());
        assert!(!CmsError::Crypto(CryptoError::Internal("x".to_owned())).is_user_error());
        assert!(CmsError::Crypto(CryptoError::InvalidKey("x".to_owned())).is_user_error());
    }
}
