//! [`StoreError`], the storage layer's error type.
//!
//! Callers decide what to report from [`StoreError::class`] (or the `is_*` helpers), never
//! from messages. Messages name aliases, versions and token names, never key material,
//! token secrets or database passwords.

use keyward_domain::ErrorClass;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The change clashes with the stored state: an alias or token name already taken, an
    /// entry changed since it was read, a version no longer in the expected state.
    #[error("{0}")]
    Conflict(String),
    /// The entry the change refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change itself is malformed (for example an update without the revision it was
    /// planned from).
    #[error("{0}")]
    Invalid(String),
    /// The database holds a value keyward cannot read back (an unknown role or state name,
    /// an invalid alias, a missing audit head).
    #[error("the database holds data keyward cannot read: {0}")]
    Corrupt(String),
    /// The database URL or options cannot be used.
    #[error("cannot use the database: {0}")]
    Config(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// How the error is reported: `Some` for errors caused by the request (conflicts,
    /// unknown entries, malformed changes), `None` for failures of the storage itself.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Conflict(_) => Some(ErrorClass::Conflict),
            Self::NotFound(_) => Some(ErrorClass::NotFound),
            Self::Invalid(_) => Some(ErrorClass::Invalid),
            Self::Corrupt(_) | Self::Config(_) | Self::Database(_) | Self::Migrate(_) => None,
        }
    }

    /// Whether the change clashed with the stored state (retrying after a reload may help).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// Whether the entry the change refers to does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with `message`; other
/// errors pass through.
pub(crate) fn conflict_on_unique(err: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(err),
    }
}
