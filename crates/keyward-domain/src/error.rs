//! The domain's error type.
//!
//! Each variant carries what a user needs to understand the refusal. [`DomainError::class`]
//! decides whether an error is the caller's (invalid, forbidden, not found, conflict); the
//! HTTP layer maps classes to status codes and never inspects messages.

use crate::{Alias, Role, Timestamp, VersionId, VersionState};

/// How an error should be reported: it decides the HTTP status, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong (400/422).
    Invalid,
    /// The caller's role may not do this (403).
    Forbidden,
    /// The thing named does not exist (404).
    NotFound,
    /// The request is valid but clashes with the current state (409).
    Conflict,
}

/// A refusal by a domain rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The alias breaks the character-set or length rule.
    #[error("invalid alias {alias:?}: {reason}")]
    InvalidAlias {
        /// The input (cut to 80 characters).
        alias: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The role may not perform the action.
    #[error("role {role} may not {action}: {reason}")]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// What was attempted, in words.
        action: &'static str,
        /// Why not.
        reason: &'static str,
    },
    /// No entry has this alias.
    #[error("no entry with alias {alias}")]
    EntryNotFound {
        /// The alias asked for.
        alias: Alias,
    },
    /// An entry already exists where a new one was to be created.
    #[error("an entry with alias {alias} already exists")]
    EntryExists {
        /// The alias.
        alias: Alias,
    },
    /// The entry has no such version.
    #[error("entry {alias} has no version {version}")]
    VersionNotFound {
        /// The alias.
        alias: Alias,
        /// The version asked for.
        version: VersionId,
    },
    /// A transition was asked for a version in the wrong state.
    #[error("version {version} of {alias} is {state}, it must be {expected} to {action}")]
    WrongState {
        /// The alias.
        alias: Alias,
        /// The version.
        version: VersionId,
        /// Its current state.
        state: VersionState,
        /// The state the transition needs.
        expected: VersionState,
        /// The transition, in words.
        action: &'static str,
    },
    /// Activation without a version, but nothing is staged.
    #[error("entry {alias} has no staged version to activate")]
    NothingStaged {
        /// The alias.
        alias: Alias,
    },
    /// New material of the wrong kind for the entry.
    #[error("entry {alias} holds {expected} material, not {got}")]
    KindMismatch {
        /// The alias.
        alias: Alias,
        /// The entry's kind.
        expected: crate::EntryKind,
        /// The kind of the new material.
        got: crate::EntryKind,
    },
    /// A key pair whose first certificate does not belong to its private key.
    #[error("the certificate chain does not match the private key: {detail}")]
    ChainMismatch {
        /// What did not match.
        detail: String,
    },
    /// Deleting a key pair whose old versions may still be needed to decrypt.
    #[error(
        "entry {alias} is a key pair whose version {version} was active until {active_until}; \
         it may still be needed to decrypt until {kept_until}. An admin can force the deletion with a reason"
    )]
    StillNeeded {
        /// The alias.
        alias: Alias,
        /// The most recently retired version.
        version: VersionId,
        /// When it stopped being active.
        active_until: Timestamp,
        /// When the retention period ends.
        kept_until: Timestamp,
    },
    /// A setting outside its range.
    #[error("{detail}")]
    InvalidSetting {
        /// What is wrong.
        detail: String,
    },
    /// A forced operation without a reason.
    #[error("a forced {action} needs a reason, which is recorded in the audit log")]
    ReasonRequired {
        /// The operation.
        action: &'static str,
    },
    /// Retiring the active version, but there is none.
    #[error("entry {alias} has no active version to retire")]
    NothingActive {
        /// The alias.
        alias: Alias,
    },
    /// A renewal step that may not be confirmed now, or a renewal that may not change.
    #[error("{detail}")]
    RenewalStep {
        /// Why not.
        detail: String,
    },
    /// A renewal is already running for the alias.
    #[error("renewal {id} of {alias} is in progress; {hint}")]
    RenewalInProgress {
        /// The alias.
        alias: Alias,
        /// The running renewal.
        id: i64,
        /// What to do instead.
        hint: &'static str,
    },
}

impl DomainError {
    /// How this error is reported.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidAlias { .. }
            | Self::KindMismatch { .. }
            | Self::ChainMismatch { .. }
            | Self::ReasonRequired { .. }
            | Self::InvalidSetting { .. } => ErrorClass::Invalid,
            Self::Forbidden { .. } => ErrorClass::Forbidden,
            Self::EntryNotFound { .. } | Self::VersionNotFound { .. } => ErrorClass::NotFound,
            Self::EntryExists { .. }
            | Self::WrongState { .. }
            | Self::NothingStaged { .. }
            | Self::StillNeeded { .. }
            | Self::RenewalStep { .. }
            | Self::NothingActive { .. }
            | Self::RenewalInProgress { .. } => ErrorClass::Conflict,
        }
    }
}
