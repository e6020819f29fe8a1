//! The service's error type.
//!
//! [`KeystoreError::class`] says whether the caller is at fault (and how) or keyward is;
//! the HTTP layer turns that into a status code.

use keyward_crypto::CryptoError;
use keyward_domain::{DomainError, ErrorClass};
use keyward_store::StoreError;

/// Why a keystore operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// A domain rule refused the operation.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The material could not be parsed, generated or converted.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A CMS message could not be made or read.
    #[error(transparent)]
    Cms(#[from] keyward_cms::CmsError),
    /// Storage refused (conflict) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request is invalid for a reason outside the domain rules.
    #[error("{0}")]
    Invalid(String),
    /// Something named in the request does not exist (outside the keystore's entries).
    #[error("{0}")]
    NotFound(String),
    /// Stored data that cannot be read back (a damaged database or a wrong master key).
    #[error("stored data for {what} cannot be read: {detail}")]
    Corrupt {
        /// What was being read.
        what: String,
        /// What went wrong.
        detail: String,
    },
}

impl KeystoreError {
    /// How the error is reported; `None` for internal errors.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Domain(e) => Some(e.class()),
            Self::Crypto(e) if e.is_user_error() => Some(ErrorClass::Invalid),
            Self::Crypto(_) => None,
            Self::Cms(e) if e.is_user_error() => Some(ErrorClass::Invalid),
            Self::Cms(_) => None,
            Self::Store(e) if e.is_conflict() => Some(ErrorClass::Conflict),
            Self::Store(e) if e.is_not_found() => Some(ErrorClass::NotFound),
            Self::Store(_) => None,
            Self::Invalid(_) => Some(ErrorClass::Invalid),
            Self::NotFound(_) => Some(ErrorClass::NotFound),
            Self::Corrupt { .. } => None,
        }
    }
}
