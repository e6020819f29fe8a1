//! keyward's domain model, free of I/O, async, SQL and JSON.
//!
//! # Layout
//! - [`alias`]: the [`Alias`] newtype and its documented safe character set.
//! - [`clock`]: [`Timestamp`], the only notion of time here; callers pass "now" in.
//! - [`role`]: [`Role`], [`Actor`], [`Action`] and [`authorize`], the permission table.
//! - [`entry`]: [`Entry`], [`Version`], their states and the planned transitions
//!   (add a version, activate, restore, delete). Planning never mutates anything: it
//!   returns what must change, and the storage layer applies it in one transaction.
//! - [`error`]: [`DomainError`] and its [`ErrorClass`] (user error vs conflict vs ...).
//!
//! Everything that decides *whether* something may happen lives here, so that the
//! rules can be read and tested as tables without a database or a network.

pub mod alias;
pub mod clock;
pub mod entry;
pub mod error;
pub mod role;

pub use alias::Alias;
pub use clock::Timestamp;
pub use entry::{
    check_key_pair_material, plan_add_version,
    AddVersionPlan, DeletePlan, Entry, EntryKind, KeyAlgorithm, Owner, Retention, Revision,
    Transition, Version, VersionId, VersionState,
};
pub use error::{DomainError, ErrorClass};
pub use role::{Action, Actor, Role, authorize, authorize_some_owner, authorize_token};
