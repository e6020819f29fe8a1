//! Watching expiry: each certificate's state (valid, critical, expired), alerts at 30, 14,
//! 7 and 1 days before it expires, the announcement of new platform keys, and the
//! automatic activation of a platform key one day before the active one expires.
//!
//! [`Monitor::check`] runs every minute in the server. Alerts go to the log and to a
//! channel the server delivers (to a webhook); each alert goes out once, remembered in the
//! store's settings (`alert:ALIAS:VERSION:WHAT`), so a restart does not repeat them.
//! Automatic activation goes through the platform-key procedure ([`Renewals`]): partner
//! steps that nobody confirmed are skipped and a failed probe is overridden, each with a
//! note saying why, because an expired key fails every message anyway.

use keyward_domain::expiry::{ExpiryState, crossed_thresholds, days_left};
use keyward_domain::{Alias, Owner, Procedure, RenewalState, Timestamp, VersionId, VersionState};
use keyward_keystore::{Keystore, KeystoreError};

use crate::renewal::{RenewalError, Renewals};

/// How expiry is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirySettings {
    /// Days left at or below which a certificate is critical.
    pub critical_days: i64,
    /// Days before expiry at which alerts go out.
    pub alert_days: Vec<i64>,
    /// Activate a waiting platform key this many days before the active one expires;
    /// `None` switches it off.
    pub auto_activate_days: Option<i64>,
}

impl Default for ExpirySettings {
    fn default() -> Self {
        ExpirySettings {
            critical_days: keyward_domain::expiry::DEFAULT_CRITICAL_DAYS,
            alert_days: keyward_domain::expiry::DEFAULT_ALERT_DAYS.to_vec(),
            auto_activate_days: Some(1),
        }
    }
}

/// One certificate version that is active or staged, with its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateExpiry {
    /// The alias.
    pub alias: Alias,
    /// The version.
    pub version: VersionId,
    /// Active or staged.
    pub version_state: VersionState,
    /// Tenant or platform.
    pub owner: Owner,
    /// When the certificate expires.
    pub not_after: Timestamp,
    /// Valid, critical or expired.
    pub state: ExpiryState,
    /// Whole days left (negative once expired).
    pub days_left: i64,
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertKind {
    /// The active certificate has this many days or fewer left.
    Expiry {
        /// The threshold crossed.
        threshold_days: i64,
    },
    /// A platform key waits for activation.
    NewKeyWaiting,
    /// A platform key was activated automatically before the old one expired.
    AutoActivated {
        /// The renewal that did it.
        renewal: i64,
    },
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// The alias.
    pub alias: Alias,
    /// The version concerned.
    pub version: VersionId,
    /// When the active certificate expires.
    pub not_after: Timestamp,
    /// Its state now.
    pub state: ExpiryState,
    /// The alert in words.
    pub message: String,
}

/// Every active and staged certificate version with its expiry, by alias.
///
/// # Errors
/// Store errors.
pub async fn expiries(keystore: &Keystore, critical_days: i64) -> Result<Vec<CertificateExpiry>, KeystoreError> {
    let now = keystore.now();
    let mut out = Vec::new();
    for entry in keystore.store().list_entries().await? {
        for version in entry.versions.iter().filter(|v| v.state != VersionState::Retired) {
            out.push(CertificateExpiry {
                alias: entry.alias.clone(),
                version: version.id,
                version_state: version.state,
                owner: entry.owner,
                not_after: version.not_after,
                state: ExpiryState::of(version.not_after, now, critical_days),
                days_left: days_left(version.not_after, now),
            });
        }
    }
    Ok(out)
}

/// Watches expiry and activates platform keys in time.
#[derive(Clone)]
pub struct Monitor {
    keystore: Keystore,
    renewals: Renewals,
    settings: ExpirySettings,
    alerts: Option<tokio::sync::mpsc::Sender<Alert>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Monitor {
    /// A monitor; alerts also go to `alerts` when given.
    pub fn new(keystore: Keystore, settings: ExpirySettings, alerts: Option<tokio::sync::mpsc::Sender<Alert>>) -> Self {
        Monitor { renewals: Renewals::new(keystore.clone()), keystore, settings, alerts }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ExpirySettings {
        &self.settings
    }

    /// Sends the alerts that are due (each once), then activates platform keys whose
    /// active version expires within the automatic-activation period. Returns the alerts
    /// sent.
    ///
    /// # Errors
    /// Store errors; a renewal the engine could not drive.
    pub async fn check(&self) -> Result<Vec<Alert>, RenewalError> {
        let now = self.keystore.now();
        let mut sent = Vec::new();
        let all = expiries(&self.keystore, self.settings.critical_days).await?;
        for active in all.iter().filter(|e| e.version_state == VersionState::Active) {
            for threshold in crossed_thresholds(active.not_after, now, &self.settings.alert_days) {
                let kind = AlertKind::Expiry { threshold_days: threshold };
                let message = format!(
                    "{} version {} expires {} ({} day(s) left, {})",
                    active.alias,
                    active.version,
                    active.not_after.to_rfc3339(),
                    active.days_left,
                    active.state
                );
                if let Some(alert) = self.once(active, kind, &format!("{threshold}d"), message).await? {
                    sent.push(alert);
                }
            }
        }
        for staged in all.iter().filter(|e| e.version_state == VersionState::Staged && e.owner == Owner::Platform) {
            let message = format!("new platform key waiting: {} version {} (keyward renew plan {})", staged.alias, staged.version, staged.alias);
            if let Some(alert) = self.once(staged, AlertKind::NewKeyWaiting, "staged", message).await? {
                sent.push(alert);
            }
        }
        if let Some(days) = self.settings.auto_activate_days {
            for active in all.iter().filter(|e| e.version_state == VersionState::Active && e.owner == Owner::Platform) {
                let waiting = all.iter().any(|e| e.alias == active.alias && e.version_state == VersionState::Staged);
                if waiting && active.not_after <= now.plus_days(days) {
                    let id = self.auto_activate(&active.alias, active.not_after).await?;
                    let message = format!(
                        "{} version {} expires {}: the waiting platform key was activated automatically (renewal {id})",
                        active.alias,
                        active.version,
                        active.not_after.to_rfc3339()
                    );
                    if let Some(alert) = self.once(active, AlertKind::AutoActivated { renewal: id }, "auto", message).await? {
                        sent.push(alert);
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Records and sends an alert unless it went out before.
    async fn once(
        &self,
        about: &CertificateExpiry,
        kind: AlertKind,
        what: &str,
        message: String,
    ) -> Result<Option<Alert>, RenewalError> {
        let key = format!("alert:{}:{}:{what}", about.alias, about.version);
        let first = self.keystore.store().put_setting_if_absent(&key, self.keystore.now().to_rfc3339().as_bytes()).await?;
        if !first {
            return Ok(None);
        }
        tracing::warn!(alias = %about.alias, version = %about.version, "{message}");
        let alert = Alert { kind, alias: about.alias.clone(), version: about.version, not_after: about.not_after, state: about.state, message };
        if let Some(channel) = &self.alerts {
            // A full channel means the webhook is slow; the log line above has it.
            let _ = channel.try_send(alert.clone());
        }
        Ok(Some(alert))
    }

    /// Runs the platform-key procedure for `alias` to its activation, starting it when
    /// none runs; returns the renewal's number.
    async fn auto_activate(&self, alias: &Alias, expires: Timestamp) -> Result<i64, RenewalError> {
        let actor = keyward_domain::Actor::new("keyward:auto-activation", keyward_domain::Role::Admin);
        let id = match self.keystore.store().running_renewal(alias).await? {
            Some(id) => id,
            None => self.renewals.start(&actor, alias, Some(Procedure::PlatformKey), None).await?.id,
        };
        let reason = format!("automatic activation: the active key expires {}", expires.to_rfc3339());
        let renewal = self.renewals.force_through(id, &reason).await?;
        if renewal.state == RenewalState::Running && !renewal.done("activate") {
            tracing::warn!(renewal = id, alias = %alias, "automatic activation did not reach the activation step");
        }
        Ok(id)
    }

    /// Runs [`Monitor::check`] every `period` until `shutdown` resolves.
    pub async fn run(self, period: std::time::Duration, shutdown: impl std::future::Future<Output = ()>) {
        crate::renewal::every(period, shutdown, || async {
            if let Err(e) = self.check().await {
                tracing::warn!(error = %e, "expiry check failed");
            }
        })
        .await;
    }
}
