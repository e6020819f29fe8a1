//! keyward's domain model, free of I/O, async, SQL and JSON.
//!
//! # Layout
//! - [`alias`]: the [`Alias`] newtype and its documented safe character set.
//! - [`clock`]: [`Timestamp`], the only notion of time here; callers pass "now" in.
//! - [`role`]: [`Role`], [`Actor`], [`Action`] and [`authorize`], the permission table.
//! - [`entry`]: [`Entry`], [`Version`], their states and the planned transitions
//!   (add a version, activate, restore, delete). Planning never mutates anything: it
//!   returns what must change, and the storage layer applies it in one transaction.
//! - [`expiry`]: [`ExpiryState`] (valid, critical, expired) and the alert thresholds.
//! - [`partner`]: [`Partner`]s and their [`Capability`]s.
//! - [`procedure`]: the renewal procedures of the seeds as tables of steps, and
//!   [`choose_variant`] (the most restrictive partner decides).
//! - [`renewal`]: a running [`Renewal`], its steps' states and the rules of order.
//! - [`error`]: [`DomainError`] and its [`ErrorClass`] (user error vs conflict vs ...).
//!
//! Everything that decides *whether* something may happen lives here, so that the
//! rules can be read and tested as tables without a database or a network.

pub mod alias;
pub mod clock;
pub mod entry;
pub mod error;
pub mod expiry;
pub mod partner;
pub mod procedure;
pub mod renewal;
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
pub use partner::{Capabilities, Capability, Partner};
pub use procedure::{Procedure, StepActor, StepDef, StepKind, VariantDef, choose_variant};
pub use renewal::{Renewal, RenewalState, RenewalStep, StepState};
pub use expiry::ExpiryState;
