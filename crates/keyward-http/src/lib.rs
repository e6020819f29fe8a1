//! keyward's HTTP API and its client.
//!
//! This is the only crate that knows JSON wire types. The server side turns requests into
//! [`Keystore`](keyward_keystore::Keystore) calls and their results or errors into JSON; the
//! client side ([`client::Client`]) is what the `keyward` command line uses to talk to a
//! server.
//!
//! # Layout
//! - [`wire`]: request and response bodies, with their OpenAPI schemas.
//! - [`problem`]: errors as problem JSON (RFC 9457).
//! - [`auth`]: bearer tokens to callers.
//! - [`api`]: the handlers and the OpenAPI document.
//! - [`flows`]: flow operations, nodes and where-used; the node endpoint `POST /flows/NAME`.
//! - [`metrics`]: `GET /metrics` for Prometheus.
//! - [`alerts`]: expiry alerts posted to a webhook.
//! - [`renewals`]: partners and renewals (`/api/v1/partners…`, `/api/v1/renewals…`).
//! - [`server`]: [`server::router`] and [`server::serve`] (`run(listener, shutdown)` style).
//! - [`client`]: the typed client.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod client;
pub mod flows;
pub mod metrics;
pub mod problem;
pub mod renewals;
pub mod server;
pub mod wire;
