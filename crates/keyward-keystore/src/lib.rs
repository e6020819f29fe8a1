//! The keystore service: every keystore operation, end to end.
//!
//! [`Keystore`] is where the other crates meet. For each operation it reads the entry from
//! the [`Store`](keyward_store::Store), asks the domain whether the caller may do it and
//! what changes, does the cryptography (generation, parsing, sealing private keys under the
//! [`MasterKey`](keyward_crypto::MasterKey)), and hands the storage layer one
//! [`EntryChange`](keyward_store::EntryChange) to apply in one transaction together with its
//! audit record. It knows neither HTTP nor SQL.
//!
//! # Layout
//! - [`service`]: [`Keystore`] and its operations.
//! - [`views`]: what reads return ([`EntryView`], [`VersionView`], [`EntrySummary`]).
//! - [`messages`]: CMS signing with aliases' active versions, verification against entries.
//! - [`lifecycle`]: what renewals do to keys (the next key, a temporary alias's key
//!   adopted, retirement, activation inside a renewal).
//! - [`material`]: key pairs and trusted certificates for the runtime and the
//!   connectivity test.
//! - [`tokens`]: API tokens: generation, hashing, authentication.
//! - [`clock`]: the [`Clock`] trait, so tests can move time.
//! - [`error`]: [`KeystoreError`], classified for the HTTP layer.

pub mod clock;
pub mod error;
pub mod lifecycle;
pub mod material;
pub mod messages;
pub mod service;
pub mod tokens;
pub mod views;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::KeystoreError;
pub use material::{KeyPairVersion, VersionChoice};
pub use messages::{Decrypted, SignerRequest};
pub use service::{Keystore, ListFilter, PublicFormat};
pub use views::{EntrySummary, EntryView, VersionView};
