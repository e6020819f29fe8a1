//! Entries, versions and their transitions.
//!
//! An [`Entry`] is what an alias names. It has versions; at most one is
//! [`VersionState::Active`], any number are [`VersionState::Staged`] (waiting for
//! activation, the seeds' "new keys") or [`VersionState::Retired`] (once active, with
//! `active_until`). Versions are never overwritten or renumbered.
//!
//! The `plan_*` functions check every rule and return the [`Transition`]s to apply; they
//! change nothing. The storage layer applies a plan in one transaction, guarded by the
//! entry's [`Revision`], so two concurrent plans made from the same revision cannot both
//! be applied.

use std::fmt;
use std::str::FromStr;

use crate::error::DomainError;
use crate::role::{Action, Actor, Role, authorize};
use crate::{Alias, Timestamp};

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A private key with its certificate chain.
    KeyPair,
    /// A trusted certificate (a partner's certificate, a CA).
    Certificate,
}

impl EntryKind {
    /// The kind's name as used in the CLI, the API and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::KeyPair => "key-pair",
            EntryKind::Certificate => "certificate",
        }
    }
}

/// Who provides an entry's material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The tenant administrator.
    Tenant,
    /// The platform operator (the seeds' "SAP-owned keys").
    Platform,
}

impl Owner {
    /// The owner's name as used in the CLI, the API and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Tenant => "tenant",
            Owner::Platform => "platform",
        }
    }
}

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionState {
    /// Waiting for activation.
    Staged,
    /// In use. At most one version of an entry.
    Active,
    /// Was active until `active_until`.
    Retired,
}

impl VersionState {
    /// The state's name as used in the CLI, the API and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Staged => "staged",
            VersionState::Active => "active",
            VersionState::Retired => "retired",
        }
    }
}

macro_rules! name_conversions {
    ($ty:ty, $what:literal, [$($variant:expr),+]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                [$($variant),+]
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = [$($variant),+].iter().map(|v| v.as_str()).collect();
                        format!("unknown {} {:?}; expected one of {}", $what, s, names.join(", "))
                    })
            }
        }
    };
}

name_conversions!(EntryKind, "kind", [EntryKind::KeyPair, EntryKind::Certificate]);
name_conversions!(Owner, "owner", [Owner::Tenant, Owner::Platform]);
name_conversions!(
    VersionState,
    "state",
    [VersionState::Staged, VersionState::Active, VersionState::Retired]
);

/// Key algorithms keyward generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Ed25519,
    ];

    /// The algorithm's name on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

name_conversions!(
    KeyAlgorithm,
    "algorithm",
    [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Ed25519
    ]
);

/// A version number within one entry, counting from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(pub u32);

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An entry's change counter; every applied plan increments it by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision(pub i64);

/// How long retired key pairs stay usable for decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days after `active_until` during which a retired key pair may still be needed.
    pub decrypt_days: i64,
}

impl Retention {
    /// The seeds' rule: keep old keys at least 90 days.
    pub const MINIMUM_DECRYPT_DAYS: i64 = 90;
}

impl Retention {
    /// Longest retention accepted, in days.
    pub const MAXIMUM_DECRYPT_DAYS: i64 = 3650;

    /// Plans a new retention period. Below the seeds' 90 days only with a reason (which is
    /// audited): old keys may still be needed to decrypt what partners sent.
    ///
    /// # Errors
    /// Forbidden roles, a period out of range, a shortened period without a reason.
    pub fn plan(actor: &Actor, days: i64, reason: Option<&str>) -> Result<Self, DomainError> {
        authorize(actor.role, Action::Configure, None)?;
        if !(1..=Self::MAXIMUM_DECRYPT_DAYS).contains(&days) {
            return Err(DomainError::InvalidSetting {
                detail: format!("the retention of retired keys is 1 to {} days, not {days}", Self::MAXIMUM_DECRYPT_DAYS),
            });
        }
        let has_reason = reason.is_some_and(|r| !r.trim().is_empty());
        if days < Self::MINIMUM_DECRYPT_DAYS && !has_reason {
            return Err(DomainError::ReasonRequired { action: "retention below 90 days" });
        }
        Ok(Self { decrypt_days: days })
    }

    /// Whether a version retired at `active_until` may still be used to decrypt at `now`.
    pub fn still_usable(self, active_until: Timestamp, now: Timestamp) -> bool {
        active_until.plus_days(self.decrypt_days) > now
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self { decrypt_days: Self::MINIMUM_DECRYPT_DAYS }
    }
}

/// One version of an entry, without its material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Number within the entry.
    pub id: VersionId,
    /// Current state.
    pub state: VersionState,
    /// When the version was added.
    pub created_at: Timestamp,
    /// Who added it.
    pub created_by: String,
    /// When it last became active.
    pub activated_at: Option<Timestamp>,
    /// When it last stopped being active.
    pub active_until: Option<Timestamp>,
    /// Expiry of its (leaf) certificate.
    pub not_after: Timestamp,
}

/// An entry with all its versions, as last read from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The alias.
    pub alias: Alias,
    /// What it holds.
    pub kind: EntryKind,
    /// Who provides its material.
    pub owner: Owner,
    /// Change counter used to refuse concurrent conflicting changes.
    pub revision: Revision,
    /// When the entry was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub modified_at: Timestamp,
    /// Who last changed it.
    pub modified_by: String,
    /// All versions, in ascending order of [`VersionId`].
    pub versions: Vec<Version>,
}

/// One state change of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The version that changes.
    pub version: VersionId,
    /// Its state before.
    pub from: VersionState,
    /// Its state after.
    pub to: VersionState,
    /// When: becomes `activated_at` for `to == Active`, `active_until` for `to == Retired`.
    pub at: Timestamp,
}

/// What adding a version changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddVersionPlan {
    /// Whether the entry is created by this change.
    pub create_entry: bool,
    /// The entry's owner (decided by the creator's role for new entries).
    pub owner: Owner,
    /// The new version's number.
    pub version: VersionId,
    /// The new version's state.
    pub state: VersionState,
    /// Transitions of existing versions (the active one retires when the new one is active).
    pub transitions: Vec<Transition>,
}

/// What deleting an entry involves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePlan {
    /// Whether the retention rule was overridden.
    pub forced: bool,
    /// The reason given for a forced deletion.
    pub reason: Option<String>,
}

/// Plans adding a version of `kind` under `alias`, to `entry` if it exists.
///
/// New versions are active unless `staged` is asked for; activating one retires the active
/// version in the same change. A new entry is owned by the platform when the platform role
/// creates it, otherwise by the tenant.
///
/// # Errors
/// Forbidden roles, a kind that differs from the entry's, the platform role asking for an
/// active version.
pub fn plan_add_version(
    entry: Option<&Entry>,
    alias: &Alias,
    actor: &Actor,
    kind: EntryKind,
    staged: bool,
    now: Timestamp,
) -> Result<AddVersionPlan, DomainError> {
    authorize(actor.role, Action::AddVersion, entry.map(|e| e.owner))?;
    if actor.role == Role::Platform && !staged {
        return Err(DomainError::Forbidden {
            role: actor.role,
            action: "add active versions",
            reason: "the platform role can only add staged versions; the tenant administrator activates them",
        });
    }
    let Some(entry) = entry else {
        return Ok(AddVersionPlan {
            create_entry: true,
            owner: if actor.role == Role::Platform { Owner::Platform } else { Owner::Tenant },
            version: VersionId(1),
            state: if staged { VersionState::Staged } else { VersionState::Active },
            transitions: Vec::new(),
        });
    };
    if entry.kind != kind {
        return Err(DomainError::KindMismatch { alias: alias.clone(), expected: entry.kind, got: kind });
    }
    let version = entry.next_version_id();
    let (state, transitions) = if staged {
        (VersionState::Staged, Vec::new())
    } else {
        (VersionState::Active, entry.retire_active(now).into_iter().collect())
    };
    Ok(AddVersionPlan { create_entry: false, owner: entry.owner, version, state, transitions })
}

/// Checks the material of a new key-pair version: its leaf certificate must carry the
/// public half of its private key.
///
/// `mismatch` is `None` when they match, or a description of what differs.
///
/// # Errors
/// [`DomainError::ChainMismatch`] with that description.
pub fn check_key_pair_material(mismatch: Option<String>) -> Result<(), DomainError> {
    match mismatch {
        None => Ok(()),
        Some(detail) => Err(DomainError::ChainMismatch { detail }),
    }
}

impl Entry {
    /// The active version, if any.
    pub fn active(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.state == VersionState::Active)
    }

    /// The version with this number.
    pub fn version(&self, id: VersionId) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// The version with this number, or an error naming the entry.
    ///
    /// # Errors
    /// [`DomainError::VersionNotFound`].
    pub fn require_version(&self, id: VersionId) -> Result<&Version, DomainError> {
        self.version(id)
            .ok_or_else(|| DomainError::VersionNotFound { alias: self.alias.clone(), version: id })
    }

    /// Staged versions, newest first.
    pub fn staged(&self) -> impl Iterator<Item = &Version> {
        self.versions.iter().rev().filter(|v| v.state == VersionState::Staged)
    }

    /// The version a caller means when it names none: the active one, else the newest.
    pub fn current(&self) -> Option<&Version> {
        self.active().or_else(|| self.versions.last())
    }

    /// Whether the version in use (or the newest, with none active) expires before
    /// `now + days`.
    pub fn expires_within(&self, days: i64, now: Timestamp) -> bool {
        self.current().is_some_and(|v| v.not_after < now.plus_days(days))
    }

    /// The number the next version gets.
    pub fn next_version_id(&self) -> VersionId {
        VersionId(self.versions.iter().map(|v| v.id.0).max().unwrap_or(0) + 1)
    }

    fn retire_active(&self, now: Timestamp) -> Option<Transition> {
        self.active().map(|v| Transition {
            version: v.id,
            from: VersionState::Active,
            to: VersionState::Retired,
            at: now,
        })
    }

    /// Plans the activation of `version`, or of the newest staged version when `None`.
    ///
    /// The active version (if any) retires with `active_until = now` and the staged one
    /// becomes active, as one change.
    ///
    /// # Errors
    /// Forbidden roles, unknown versions, versions that are not staged, nothing staged.
    pub fn plan_activate(
        &self,
        actor: &Actor,
        version: Option<VersionId>,
        now: Timestamp,
    ) -> Result<Vec<Transition>, DomainError> {
        authorize(actor.role, Action::Activate, Some(self.owner))?;
        let target = match version {
            Some(id) => self.require_version(id)?,
            None => self
                .staged()
                .next()
                .ok_or_else(|| DomainError::NothingStaged { alias: self.alias.clone() })?,
        };
        self.require_state(target, VersionState::Staged, "activate it")?;
        let mut transitions: Vec<Transition> = self.retire_active(now).into_iter().collect();
        transitions.push(Transition {
            version: target.id,
            from: VersionState::Staged,
            to: VersionState::Active,
            at: now,
        });
        Ok(transitions)
    }

    /// Plans retiring the active version without a successor: the alias then has no
    /// active version (a signer step with a second alias signs with that one alone).
    ///
    /// # Errors
    /// Forbidden roles, no active version.
    pub fn plan_retire(&self, actor: &Actor, now: Timestamp) -> Result<Transition, DomainError> {
        authorize(actor.role, Action::Activate, Some(self.owner))?;
        self.retire_active(now).ok_or_else(|| DomainError::NothingActive { alias: self.alias.clone() })
    }

    /// Plans moving retired `version` back to staged (the seeds' "Add to New SAP Keys").
    ///
    /// # Errors
    /// Forbidden roles, unknown versions, versions that are not retired.
    pub fn plan_restore(
        &self,
        actor: &Actor,
        version: VersionId,
        now: Timestamp,
    ) -> Result<Transition, DomainError> {
        authorize(actor.role, Action::Restore, Some(self.owner))?;
        let target = self.require_version(version)?;
        self.require_state(target, VersionState::Retired, "restore it")?;
        Ok(Transition { version, from: VersionState::Retired, to: VersionState::Staged, at: now })
    }

    /// Plans deleting the entry.
    ///
    /// A key pair whose most recently retired version stopped being active less than
    /// `retention.decrypt_days` ago may still be needed to decrypt, so the deletion is
    /// refused unless `force` is set with a non-empty `reason` (recorded in the audit log).
    ///
    /// # Errors
    /// Forbidden roles, a forced deletion without reason, the retention rule.
    pub fn plan_delete(
        &self,
        actor: &Actor,
        force: bool,
        reason: Option<&str>,
        retention: Retention,
        now: Timestamp,
    ) -> Result<DeletePlan, DomainError> {
        authorize(actor.role, Action::Delete, Some(self.owner))?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
        if force && reason.is_none() {
            return Err(DomainError::ReasonRequired { action: "deletion" });
        }
        if self.kind == EntryKind::KeyPair && !force {
            let newest_retired = self
                .versions
                .iter()
                .filter_map(|v| v.active_until.map(|until| (until, v.id)))
                .max();
            if let Some((active_until, version)) = newest_retired {
                let kept_until = active_until.plus_days(retention.decrypt_days);
                if kept_until > now {
                    return Err(DomainError::StillNeeded {
                        alias: self.alias.clone(),
                        version,
                        active_until,
                        kept_until,
                    });
                }
            }
        }
        Ok(DeletePlan { forced: force, reason })
    }

    fn require_state(
        &self,
        version: &Version,
        expected: VersionState,
        action: &'static str,
    ) -> Result<(), DomainError> {
        if version.state == expected {
            Ok(())
        } else {
            Err(DomainError::WrongState {
                alias: self.alias.clone(),
                version: version.id,
                state: version.state,
                expected,
                action,
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // the case tables are tuples on purpose: one row, one case
mod tests {
    use super::*;
    use crate::ErrorClass;
    use VersionState::*;

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    fn admin() -> Actor {
        Actor::new("alice", Role::Admin)
    }

    fn version(id: u32, state: VersionState, active_until_days_ago: Option<i64>) -> Version {
        Version {
            id: VersionId(id),
            state,
            created_at: NOW.plus_days(-400),
            created_by: "alice".into(),
            activated_at: None,
            active_until: active_until_days_ago.map(|d| NOW.plus_days(-d)),
            not_after: NOW.plus_days(365),
        }
    }

    fn entry(kind: EntryKind, owner: Owner, versions: Vec<Version>) -> Entry {
        Entry {
            alias: Alias::parse("partner-a").unwrap(),
            kind,
            owner,
            revision: Revision(1),
            created_at: NOW,
            created_by: "alice".into(),
            modified_at: NOW,
            modified_by: "alice".into(),
            versions,
        }
    }

    fn states(entry: &Entry, transitions: &[Transition]) -> Vec<VersionState> {
        entry
            .versions
            .iter()
            .map(|v| transitions.iter().find(|t| t.version == v.id).map_or(v.state, |t| t.to))
            .collect()
    }

    #[test]
    fn activation_table() {
        // (case, versions, requested version, expected states after or error class)
        let cases: Vec<(&str, Vec<Version>, Option<u32>, Result<Vec<VersionState>, ErrorClass>)> = vec![
            (
                "activating the staged version retires the active one",
                vec![version(1, Active, None), version(2, Staged, None)],
                Some(2),
                Ok(vec![Retired, Active]),
            ),
            (
                "without a version the newest staged one is activated",
                vec![version(1, Active, None), version(2, Staged, None), version(3, Staged, None)],
                None,
                Ok(vec![Retired, Staged, Active]),
            ),
            (
                "a first activation retires nothing",
                vec![version(1, Staged, None)],
                None,
                Ok(vec![Active]),
            ),
            (
                "a restored version can be activated again",
                vec![version(1, Staged, Some(3)), version(2, Active, None)],
                Some(1),
                Ok(vec![Active, Retired]),
            ),
            (
                "activating the active version is a conflict",
                vec![version(1, Active, None)],
                Some(1),
                Err(ErrorClass::Conflict),
            ),
            (
                "activating a retired version is a conflict (restore it first)",
                vec![version(1, Retired, Some(1)), version(2, Active, None)],
                Some(1),
                Err(ErrorClass::Conflict),
            ),
            (
                "nothing staged is a conflict",
                vec![version(1, Active, None)],
                None,
                Err(ErrorClass::Conflict),
            ),
            (
                "an unknown version is not found",
                vec![version(1, Active, None)],
                Some(7),
                Err(ErrorClass::NotFound),
            ),
        ];
        for (case, versions, requested, expected) in cases {
            let e = entry(EntryKind::KeyPair, Owner::Tenant, versions);
            let got = e
                .plan_activate(&admin(), requested.map(VersionId), NOW)
                .map(|t| states(&e, &t))
                .map_err(|err| err.class());
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn at_most_one_active_after_any_activation() {
        let e = entry(
            EntryKind::KeyPair,
            Owner::Tenant,
            vec![version(1, Retired, Some(5)), version(2, Active, None), version(3, Staged, None)],
        );
        let t = e.plan_activate(&admin(), None, NOW).unwrap();
        assert_eq!(states(&e, &t).iter().filter(|s| **s == Active).count(), 1);
        assert!(t.iter().all(|t| t.at == NOW));
    }

    #[test]
    fn role_rules_on_platform_entries() {
        let e = entry(
            EntryKind::KeyPair,
            Owner::Platform,
            vec![version(1, Active, None), version(2, Staged, None)],
        );
        let platform = Actor::new("ops", Role::Platform);
        let cases: Vec<(&str, Result<(), ErrorClass>)> = vec![
            (
                "the platform role cannot activate",
                e.plan_activate(&platform, None, NOW).map(drop).map_err(|e| e.class()),
            ),
            (
                "the tenant administrator activates platform keys",
                e.plan_activate(&admin(), None, NOW).map(drop).map_err(|e| e.class()),
            ),
            (
                "the platform role stages versions of its entries",
                plan_add_version(Some(&e), &e.alias, &platform, EntryKind::KeyPair, true, NOW)
                    .map(drop)
                    .map_err(|e| e.class()),
            ),
            (
                "the platform role cannot add active versions",
                plan_add_version(Some(&e), &e.alias, &platform, EntryKind::KeyPair, false, NOW)
                    .map(drop)
                    .map_err(|e| e.class()),
            ),
            (
                "the tenant administrator cannot change platform material",
                plan_add_version(Some(&e), &e.alias, &admin(), EntryKind::KeyPair, true, NOW)
                    .map(drop)
                    .map_err(|e| e.class()),
            ),
            (
                "the tenant administrator cannot delete platform entries",
                e.plan_delete(&admin(), false, None, Retention::default(), NOW)
                    .map(drop)
                    .map_err(|e| e.class()),
            ),
        ];
        let expected = [
            Err(ErrorClass::Forbidden),
            Ok(()),
            Ok(()),
            Err(ErrorClass::Forbidden),
            Err(ErrorClass::Forbidden),
            Err(ErrorClass::Forbidden),
        ];
        for ((case, got), want) in cases.into_iter().zip(expected) {
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn add_version_table() {
        let alias = Alias::parse("a").unwrap();
        let existing = entry(EntryKind::KeyPair, Owner::Tenant, vec![version(1, Active, None)]);
        let platform = Actor::new("ops", Role::Platform);
        let viewer = Actor::new("v", Role::Viewer);
        let admin = admin();
        // (case, entry, actor, kind, staged, expected (owner, version, state, retired count))
        type Expect = Result<(Owner, u32, VersionState, usize), ErrorClass>;
        let cases: Vec<(&str, Option<&Entry>, &Actor, EntryKind, bool, Expect)> = vec![
            ("a new entry's first version is active", None, &admin, EntryKind::KeyPair, false, Ok((Owner::Tenant, 1, Active, 0))),
            ("a new entry can start staged", None, &admin, EntryKind::Certificate, true, Ok((Owner::Tenant, 1, Staged, 0))),
            ("the platform role creates platform-owned entries", None, &platform, EntryKind::KeyPair, true, Ok((Owner::Platform, 1, Staged, 0))),
            ("an active new version retires the old one", Some(&existing), &admin, EntryKind::KeyPair, false, Ok((Owner::Tenant, 2, Active, 1))),
            ("a staged new version retires nothing", Some(&existing), &admin, EntryKind::KeyPair, true, Ok((Owner::Tenant, 2, Staged, 0))),
            ("a certificate cannot be added to a key pair entry", Some(&existing), &admin, EntryKind::Certificate, false, Err(ErrorClass::Invalid)),
            ("the platform role cannot touch tenant entries", Some(&existing), &platform, EntryKind::KeyPair, true, Err(ErrorClass::Forbidden)),
            ("a viewer cannot add anything", None, &viewer, EntryKind::KeyPair, true, Err(ErrorClass::Forbidden)),
        ];
        for (case, e, actor, kind, staged, expected) in cases {
            let got = plan_add_version(e, &alias, actor, kind, staged, NOW)
                .map(|p| (p.owner, p.version.0, p.state, p.transitions.len()))
                .map_err(|e| e.class());
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn restore_table() {
        let e = entry(
            EntryKind::KeyPair,
            Owner::Tenant,
            vec![version(1, Retired, Some(2)), version(2, Active, None), version(3, Staged, None)],
        );
        let cases: Vec<(&str, u32, Result<(), ErrorClass>)> = vec![
            ("a retired version moves back to staged", 1, Ok(())),
            ("the active version cannot be restored", 2, Err(ErrorClass::Conflict)),
            ("a staged version cannot be restored", 3, Err(ErrorClass::Conflict)),
            ("an unknown version is not found", 9, Err(ErrorClass::NotFound)),
        ];
        for (case, v, expected) in cases {
            let got = e.plan_restore(&admin(), VersionId(v), NOW).map(|t| {
                assert_eq!((t.from, t.to), (Retired, Staged));
            });
            assert_eq!(got.map_err(|e| e.class()), expected, "{case}");
        }
    }

    #[test]
    fn delete_table() {
        let retired_days_ago = |days| {
            vec![version(1, Retired, Some(days)), version(2, Active, None)]
        };
        // (case, kind, versions, force, reason, expected)
        let cases: Vec<(&str, EntryKind, Vec<Version>, bool, Option<&str>, Result<bool, ErrorClass>)> = vec![
            ("a key pair retired 30 days ago is still needed", EntryKind::KeyPair, retired_days_ago(30), false, None, Err(ErrorClass::Conflict)),
            ("a key pair retired 89 days ago is still needed", EntryKind::KeyPair, retired_days_ago(89), false, None, Err(ErrorClass::Conflict)),
            ("a key pair retired 91 days ago may go", EntryKind::KeyPair, retired_days_ago(91), false, None, Ok(false)),
            ("a key pair never retired may go", EntryKind::KeyPair, vec![version(1, Active, None)], false, None, Ok(false)),
            ("a certificate retired yesterday may go", EntryKind::Certificate, retired_days_ago(1), false, None, Ok(false)),
            ("forcing with a reason overrides retention", EntryKind::KeyPair, retired_days_ago(30), true, Some("compromised"), Ok(true)),
            ("forcing needs a reason", EntryKind::KeyPair, retired_days_ago(30), true, None, Err(ErrorClass::Invalid)),
            ("a blank reason is no reason", EntryKind::KeyPair, retired_days_ago(30), true, Some("  "), Err(ErrorClass::Invalid)),
        ];
        for (case, kind, versions, force, reason, expected) in cases {
            let e = entry(kind, Owner::Tenant, versions);
            let got = e
                .plan_delete(&admin(), force, reason, Retention::default(), NOW)
                .map(|p| p.forced)
                .map_err(|e| e.class());
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn still_needed_message_names_the_dates() {
        let e = entry(EntryKind::KeyPair, Owner::Tenant, vec![version(1, Retired, Some(10))]);
        let err = e.plan_delete(&admin(), false, None, Retention::default(), NOW).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("needed to decrypt until"), "{text}");
        assert!(text.contains(&NOW.plus_days(80).to_rfc3339()), "{text}");
    }

    #[test]
    fn retention_table() {
        let viewer = Actor::new("v", Role::Viewer);
        let admin = admin();
        let cases: Vec<(&str, &Actor, i64, Option<&str>, Result<i64, ErrorClass>)> = vec![
            ("longer than 90 days is fine", &admin, 180, None, Ok(180)),
            ("exactly 90 days is fine", &admin, 90, None, Ok(90)),
            ("shorter needs a reason", &admin, 30, None, Err(ErrorClass::Invalid)),
            ("a blank reason is no reason", &admin, 30, Some(" "), Err(ErrorClass::Invalid)),
            ("shorter with a reason is an audited override", &admin, 30, Some("contract ends"), Ok(30)),
            ("zero days is refused", &admin, 0, Some("x"), Err(ErrorClass::Invalid)),
            ("more than ten years is refused", &admin, 4000, None, Err(ErrorClass::Invalid)),
            ("a viewer cannot change it", &viewer, 180, None, Err(ErrorClass::Forbidden)),
        ];
        for (case, actor, days, reason, expected) in cases {
            let got = Retention::plan(actor, days, reason).map(|r| r.decrypt_days).map_err(|e| e.class());
            assert_eq!(got, expected, "{case}");
        }
        let retention = Retention::default();
        assert!(retention.still_usable(NOW.plus_days(-89), NOW));
        assert!(!retention.still_usable(NOW.plus_days(-91), NOW));
    }

    #[test]
    fn key_pair_material_must_match() {
        assert!(check_key_pair_material(None).is_ok());
        let err = check_key_pair_material(Some("public keys differ".into())).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Invalid);
    }

    #[test]
    fn expiring_within_uses_the_active_version() {
        let mut v = version(1, Active, None);
        v.not_after = NOW.plus_days(20);
        let e = entry(EntryKind::KeyPair, Owner::Tenant, vec![v, version(2, Staged, None)]);
        assert!(e.expires_within(30, NOW));
        assert!(!e.expires_within(14, NOW));
    }

    #[test]
    fn names_parse_back() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<KeyAlgorithm>(), Ok(a));
        }
        assert!("rsa-1024".parse::<KeyAlgorithm>().unwrap_err().contains("rsa-2048"));
        assert_eq!("key-pair".parse::<EntryKind>(), Ok(EntryKind::KeyPair));
        assert_eq!("retired".parse::<VersionState>(), Ok(Retired));
    }
}
