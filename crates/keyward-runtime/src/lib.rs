//! The runtime: what runs integration flows and keeps their keys current.
//!
//! # Layout
//! - [`identity`]: client identities for outbound mutual TLS that follow the keystore
//!   live: a [`rustls::client::ResolvesClientCert`] over a swappable snapshot of the
//!   active key pairs, for one alias or for "any valid key".
//! - [`probe`]: the TLS connectivity test: a handshake to a partner, optionally with a
//!   client certificate from an alias (including a staged version), and a report of what
//!   was negotiated or why it failed.
//! - `testing` (feature `testing`): a PKI and a partner HTTPS server for tests.

pub mod identity;
pub mod probe;
#[cfg(feature = "testing")]
pub mod testing;
