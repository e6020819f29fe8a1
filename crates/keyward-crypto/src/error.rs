//! [`CryptoError`], the one error type of this crate.
//!
//! Every message is written for the person who supplied the input: it says which part
//! of the input was wrong (which PEM block, which DN attribute, which password) and,
//! where it helps, what keyward expects instead. [`CryptoError::is_user_error`] separates
//! those input problems from internal failures such as the random generator failing.

use thiserror::Error;

/// Errors from key generation, certificate handling, format import/export and sealing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A subject distinguished name could not be parsed or is not acceptable.
    #[error("the subject DN {dn:?} is not valid: {reason}")]
    InvalidDn {
        /// The DN as given.
        dn: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A parameter such as the validity period is out of range.
    #[error("{0}")]
    InvalidParameter(String),

    /// A private key could not be read.
    #[error("{0}")]
    InvalidKey(String),

    /// A private key is well formed but of an algorithm or size keyward does not support.
    #[error("{0}")]
    UnsupportedKey(String),

    /// A certificate could not be read.
    #[error("{0}")]
    InvalidCertificate(String),

    /// PEM text could not be read (bad armour, bad base64, unsupported label, ...).
    #[error("{0}")]
    InvalidPem(String),

    /// The input is in no format keyward recognises.
    #[error("{0}")]
    UnrecognizedFormat(String),

    /// An encrypted input (PKCS#12, encrypted PEM key) was given without a password.
    #[error("{0}")]
    PasswordRequired(String),

    /// The PKCS#12 password is wrong (or the file is damaged so the MAC fails).
    #[error("the PKCS#12 password is wrong or the file is damaged (MAC check failed)")]
    WrongPassword,

    /// An encrypted private key could not be decrypted with the given password.
    #[error("the password for the encrypted private key is wrong or the key is damaged")]
    WrongKeyPassword,

    /// A PKCS#12 file is damaged or uses features keyward does not support.
    #[error("the PKCS#12 file could not be read: {0}")]
    InvalidPkcs12(String),

    /// The input holds a private key but no certificate for it.
    #[error(
        "the input holds a private key but no certificate; a private key needs its certificate chain in the same input"
    )]
    KeyWithoutCertificate,

    /// The input holds more than one private key.
    #[error(
        "the input holds {0} private keys; import one key (with its certificate chain) at a time"
    )]
    MultipleKeys(usize),

    /// The input holds no certificate at all.
    #[error("{0}")]
    NoCertificates(String),

    /// The certificates given do not form one chain.
    #[error("{0}")]
    InvalidChain(String),

    /// A password that must not be empty was empty.
    #[error("{0}")]
    EmptyPassword(String),

    /// A master key for encryption at rest is malformed.
    #[error("{0}")]
    InvalidMasterKey(String),

    /// Sealed data could not be opened: wrong master key, wrong context, or damaged data.
    #[error("{0}")]
    Unseal(String),

    /// A signature does not verify with the public key it was checked against.
    #[error("{0}")]
    SignatureInvalid(String),

    /// A ciphertext does not decrypt with the private key it was given to (wrong key or
    /// damaged ciphertext); deliberately without detail.
    #[error("{0}")]
    Decryption(String),

    /// An internal failure (random generator, key generation, encoding) not caused by input.
    #[error("internal cryptography failure: {0}")]
    Internal(String),
}

impl CryptoError {
    /// True when the error was caused by the input (a bad file, password, DN, ...), false
    /// for internal failures.
    ///
    /// [`CryptoError::Unseal`] counts as internal: sealed data is keyward's own storage, so
    /// failing to open it means a wrong master key or damaged storage, not a bad request.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, CryptoError::Internal(_) | CryptoError::Unseal(_))
    }

    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        CryptoError::Internal(what.to_string())
    }
}
