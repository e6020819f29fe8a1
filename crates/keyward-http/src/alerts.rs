//! Delivering expiry alerts to a webhook: one JSON `POST` per alert.
//!
//! The monitor ([`keyward_runtime::expiry::Monitor`]) logs every alert and hands it to a
//! channel; [`deliver`] posts each to the configured URL, retrying a failed delivery three
//! times with a growing pause, and logs what it could not deliver.

use std::time::Duration;

use keyward_runtime::expiry::{Alert, AlertKind};
use serde::Serialize;

/// The JSON body of an alert.
#[derive(Debug, Serialize)]
pub struct AlertJson {
    /// `expiry`, `new-key-waiting` or `auto-activated`.
    pub kind: &'static str,
    /// For expiry alerts: the threshold crossed, in days.
    pub threshold_days: Option<i64>,
    /// For automatic activations: the renewal.
    pub renewal: Option<i64>,
    /// The alias.
    pub alias: String,
    /// The version concerned.
    pub version: u32,
    /// When the active certificate expires, RFC 3339.
    pub not_after: String,
    /// valid, critical or expired.
    pub state: &'static str,
    /// The alert in words.
    pub message: String,
}

impl From<&Alert> for AlertJson {
    fn from(alert: &Alert) -> Self {
        let (kind, threshold_days, renewal) = match alert.kind {
            AlertKind::Expiry { threshold_days } => ("expiry", Some(threshold_days), None),
            AlertKind::NewKeyWaiting => ("new-key-waiting", None, None),
            AlertKind::AutoActivated { renewal } => ("auto-activated", None, Some(renewal)),
        };
        AlertJson {
            kind,
            threshold_days,
            renewal,
            alias: alert.alias.to_string(),
            version: alert.version.0,
            not_after: alert.not_after.to_rfc3339(),
            state: alert.state.as_str(),
            message: alert.message.clone(),
        }
    }
}

/// Posts every alert from `alerts` to `url` until the channel closes.
pub async fn deliver(mut alerts: tokio::sync::mpsc::Receiver<Alert>, url: String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    while let Some(alert) = alerts.recv().await {
        let body = AlertJson::from(&alert);
        let mut delivered = false;
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            match client.post(&url).json(&body).send().await {
                Ok(answer) if answer.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(answer) => tracing::warn!(status = %answer.status(), "alert webhook refused an alert"),
                Err(e) => tracing::warn!(error = %e, "alert webhook not reached"),
            }
        }
        if !delivered {
            tracing::error!(alias = %alert.alias, "alert not delivered to the webhook: {}", alert.message);
        }
    }
}
