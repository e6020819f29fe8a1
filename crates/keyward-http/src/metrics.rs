//! `GET /metrics`: Prometheus text exposition of certificate expiry, renewals and node
//! sync lag.
//!
//! - `keyward_certificate_expiration_timestamp_seconds{alias,version,state,owner}`: when
//!   each active and staged certificate version expires;
//! - `keyward_certificate_expiry_state{alias,state}`: 1 for the state (valid, critical,
//!   expired) of each alias's active version, 0 for the others;
//! - `keyward_renewals{state}`: renewals by state; `keyward_renewal_steps_waiting{actor}`:
//!   open steps waiting for a person or a partner;
//! - `keyward_node_sync_lag_changes{node}`: keystore changes a node has not applied yet;
//!   `keyward_node_heartbeat_age_seconds{node}`: time since its last heartbeat.
//!
//! Like the OpenAPI document and the health check, it needs no token: it shows aliases
//! and expiry dates (public material), never keys.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keyward_domain::expiry::ExpiryState;
use keyward_domain::{RenewalState, StepActor, VersionState};
use keyward_runtime::expiry::expiries;

use crate::problem::Problem;
use crate::server::AppState;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header_lines(out: &mut String, name: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// The metrics, rendered.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, Problem> {
    let keystore = &state.keystore;
    let now = keystore.now();
    let mut out = String::new();

    let all = expiries(keystore, state.expiry.critical_days).await?;
    header_lines(&mut out, "keyward_certificate_expiration_timestamp_seconds", "When each active or staged certificate version expires.");
    for e in &all {
        let _ = writeln!(
            out,
            "keyward_certificate_expiration_timestamp_seconds{{alias=\"{}\",version=\"{}\",state=\"{}\",owner=\"{}\"}} {}",
            label(e.alias.as_str()),
            e.version,
            e.version_state.as_str(),
            e.owner.as_str(),
            e.not_after.seconds()
        );
    }
    header_lines(&mut out, "keyward_certificate_expiry_state", "1 for the expiry state of each alias's active version.");
    for e in all.iter().filter(|e| e.version_state == VersionState::Active) {
        for s in ExpiryState::ALL {
            let _ = writeln!(
                out,
                "keyward_certificate_expiry_state{{alias=\"{}\",state=\"{}\"}} {}",
                label(e.alias.as_str()),
                s.as_str(),
                u8::from(s == e.state)
            );
        }
    }

    let renewals = keystore.store().renewals().await.map_err(keyward_keystore::KeystoreError::from)?;
    header_lines(&mut out, "keyward_renewals", "Renewals by state.");
    for s in RenewalState::ALL {
        let count = renewals.iter().filter(|r| r.state == s).count();
        let _ = writeln!(out, "keyward_renewals{{state=\"{}\"}} {count}", s.as_str());
    }
    header_lines(&mut out, "keyward_renewal_steps_waiting", "Open renewal steps waiting for a person or a partner.");
    for actor in [StepActor::Admin, StepActor::Developer, StepActor::Partner] {
        let count: usize = renewals.iter().map(|r| r.waiting_for(now).iter().filter(|(_, a)| *a == actor).count()).sum();
        let _ = writeln!(out, "keyward_renewal_steps_waiting{{actor=\"{}\"}} {count}", actor.as_str());
    }

    let marker = keystore.change_marker().await?;
    let nodes = keystore.store().nodes().await.map_err(keyward_keystore::KeystoreError::from)?;
    header_lines(&mut out, "keyward_node_sync_lag_changes", "Keystore changes a node has not applied yet.");
    for node in &nodes {
        let _ = writeln!(out, "keyward_node_sync_lag_changes{{node=\"{}\"}} {}", label(&node.id), (marker - node.applied_marker).max(0));
    }
    header_lines(&mut out, "keyward_node_heartbeat_age_seconds", "Seconds since a node's last heartbeat.");
    for node in &nodes {
        let age = (now.millis() - node.heartbeat_at.millis()).max(0) as f64 / 1000.0;
        let _ = writeln!(out, "keyward_node_heartbeat_age_seconds{{node=\"{}\"}} {age}", label(&node.id));
    }

    let mut response = out.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}
