//! The runtime: what runs integration flows and keeps their keys current.
//!
//! # Layout
//! - [`flow`]: a flow definition (TOML) parsed into [`flow::Flow`], with errors that name
//!   the line and the field, and checked against the keystore's aliases.
//! - [`flow_edit`]: adding and removing a signer alias in a flow file, keeping the rest.
//! - [`identity`]: client identities for outbound mutual TLS that follow the keystore
//!   live: a [`rustls::client::ResolvesClientCert`] over a swappable snapshot of the
//!   active key pairs, for one alias or for "any valid key".
//! - [`channel`]: a flow's receiver channel: posts with retries over a connection pool
//!   that is replaced when the client identity or the trusted certificates change.
//! - [`node`]: a runtime node: runs the deployed flows, follows keystore and deployment
//!   changes, writes heartbeats and observed usage.
//! - [`operations`]: deploying and operating flows, the node list and where-used, with
//!   the domain's role checks.
//! - [`probe`]: the TLS connectivity test: a handshake to a partner, optionally with a
//!   client certificate from an alias (including a staged version), and a report of what
//!   was negotiated or why it failed.
//! - [`renewal`]: the renewal engine: partners, planning (which procedure, which
//!   variant), starting and driving renewals step by step, abort with revert.
//! - [`expiry`]: certificate expiry states, alerts, and the automatic activation of
//!   platform keys.
//! - `testing` (feature `testing`): a PKI and a partner HTTPS server for tests.

pub mod channel;
pub mod expiry;
pub mod flow;
pub mod flow_edit;
pub mod identity;
pub mod node;
pub mod operations;
pub mod probe;
pub mod renewal;
#[cfg(feature = "testing")]
pub mod testing;
