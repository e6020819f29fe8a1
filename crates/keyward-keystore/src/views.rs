//! What keystore reads return: the domain's entries, enriched with certificate details.

use keyward_crypto::CertificateDetails;
use keyward_domain::{Alias, Entry, EntryKind, Owner, Timestamp, Version, VersionId};

/// Days before expiry from which `keys list` flags an entry.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// One line of `keys list`.
#[derive(Debug, Clone)]
pub struct EntrySummary {
    /// The alias.
    pub alias: Alias,
    /// What the entry holds.
    pub kind: EntryKind,
    /// Who provides its material.
    pub owner: Owner,
    /// The active version.
    pub active: Option<VersionId>,
    /// Staged versions waiting for activation ("new keys"), newest first.
    pub staged: Vec<VersionId>,
    /// Number of versions, all states.
    pub versions: usize,
    /// Expiry of the active version (or of the newest, with none active).
    pub not_after: Option<Timestamp>,
    /// Whether that expiry is within [`EXPIRY_WARNING_DAYS`].
    pub expiring_soon: bool,
    /// Whether it has passed.
    pub expired: bool,
}

impl EntrySummary {
    pub(crate) fn of(entry: &Entry, now: Timestamp) -> Self {
        let current = entry.current();
        Self {
            alias: entry.alias.clone(),
            kind: entry.kind,
            owner: entry.owner,
            active: entry.active().map(|v| v.id),
            staged: entry.staged().map(|v| v.id).collect(),
            versions: entry.versions.len(),
            not_after: current.map(|v| v.not_after),
            expiring_soon: entry.expires_within(EXPIRY_WARNING_DAYS, now),
            expired: current.is_some_and(|v| v.not_after <= now),
        }
    }
}

/// One version with its material's details.
#[derive(Debug, Clone)]
pub struct VersionView {
    /// The version's state and dates.
    pub version: Version,
    /// Whether it holds a private key.
    pub has_private_key: bool,
    /// The private key's algorithm ("RSA 2048", "EC P-256", "Ed25519").
    pub key_algorithm: Option<String>,
    /// Its certificate chain, leaf first.
    pub chain: Vec<CertificateDetails>,
}

/// An entry with every version's details.
#[derive(Debug, Clone)]
pub struct EntryView {
    /// The entry.
    pub entry: Entry,
    /// Its versions, ascending.
    pub versions: Vec<VersionView>,
}
