//! A renewal: one instance of a procedure variant for one alias, with the state of each
//! step.
//!
//! Steps are instantiated from the variant's table when the renewal starts: a step whose
//! actor is [`StepActor::Partner`] is repeated for every affected partner (and skipped
//! when there is none). The rules of order live here:
//! - a step is *open* when every step before it is finished; consecutive steps of the same
//!   table row (one per partner) are open together, in any order;
//! - only open steps are confirmed, by the role of the step's actor (administrators speak
//!   for developers and for partners);
//! - a step in the downtime window is not open before the window opens;
//! - a failed probe stops the renewal until it is run again and passes, or until an
//!   administrator overrides it with a reason.

use std::fmt;
use std::str::FromStr;

use crate::procedure::{Procedure, StepActor, StepDef, StepKind, VariantDef};
use crate::{Alias, DomainError, Role, Timestamp, VersionId};

/// Where a renewal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenewalState {
    /// Steps remain.
    Running,
    /// Every step is finished.
    Completed,
    /// Stopped by an administrator; what could be reverted was.
    Aborted,
}

impl RenewalState {
    /// Every state, in a stable order.
    pub const ALL: [RenewalState; 3] = [RenewalState::Running, RenewalState::Completed, RenewalState::Aborted];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewalState::Running => "running",
            RenewalState::Completed => "completed",
            RenewalState::Aborted => "aborted",
        }
    }
}

impl fmt::Display for RenewalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RenewalState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RenewalState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown renewal state {s:?}"))
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepState {
    /// Not done yet.
    Pending,
    /// Done (by keyward or confirmed by someone).
    Done,
    /// A probe that failed: the renewal waits.
    Failed,
    /// A failed probe an administrator decided to go past (with a reason).
    Overridden,
    /// Not needed (no affected partner, nothing to do).
    Skipped,
    /// Done later: due at the step's `due` time.
    Scheduled,
}

impl StepState {
    /// Every state, in a stable order.
    pub const ALL: [StepState; 6] = [
        StepState::Pending,
        StepState::Done,
        StepState::Failed,
        StepState::Overridden,
        StepState::Skipped,
        StepState::Scheduled,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Overridden => "overridden",
            StepState::Skipped => "skipped",
            StepState::Scheduled => "scheduled",
        }
    }

    /// Whether later steps may go ahead.
    pub fn finished(self) -> bool {
        matches!(self, StepState::Done | StepState::Overridden | StepState::Skipped | StepState::Scheduled)
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepState::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| format!("unknown step state {s:?}"))
    }
}

/// One step of a running renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalStep {
    /// 1-based position in the renewal.
    pub position: u32,
    /// The table row's key.
    pub key: String,
    /// The partner this step is for, for partner steps.
    pub partner: Option<String>,
    /// Where it is.
    pub state: StepState,
    /// Who finished it (a token name, or `keyward` for automated steps).
    pub by: Option<String>,
    /// When it changed last.
    pub at: Option<Timestamp>,
    /// The result, or the note given with a confirmation.
    pub note: Option<String>,
    /// For scheduled steps: when they are due.
    pub due: Option<Timestamp>,
}

/// A renewal of one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// The renewal's number.
    pub id: i64,
    /// The alias renewed.
    pub alias: Alias,
    /// The procedure.
    pub procedure: Procedure,
    /// The variant's name (see [`Renewal::variant`]).
    pub variant: String,
    /// Where it is.
    pub state: RenewalState,
    /// The affected flows.
    pub flows: Vec<String>,
    /// The affected partners.
    pub partners: Vec<String>,
    /// The version that was active when the renewal started.
    pub old_version: Option<VersionId>,
    /// The new version, once there is one.
    pub new_version: Option<VersionId>,
    /// The temporary or second alias, for the signer variants that use one.
    pub second_alias: Option<Alias>,
    /// The agreed downtime window.
    pub window: Option<(Timestamp, Timestamp)>,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Moves on every change (lost updates are refused).
    pub revision: i64,
    /// The steps, in order.
    pub steps: Vec<RenewalStep>,
}

/// Instantiates a variant's steps for the affected partners.
pub fn instantiate(variant: &VariantDef, partners: &[String]) -> Vec<RenewalStep> {
    let mut steps = Vec::new();
    for def in variant.steps {
        let targets: Vec<Option<String>> = if def.actor == StepActor::Partner && !matches!(def.kind, StepKind::Notify(_)) {
            partners.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        let skip = targets.is_empty();
        for partner in targets.into_iter().chain(skip.then_some(None)) {
            steps.push(RenewalStep {
                position: steps.len() as u32 + 1,
                key: def.key.to_owned(),
                partner,
                state: if skip { StepState::Skipped } else { StepState::Pending },
                by: None,
                at: None,
                note: skip.then(|| "no affected partner".to_owned()),
                due: None,
            });
        }
    }
    steps
}

/// Why a step may not be confirmed now.
fn refuse(detail: String) -> DomainError {
    DomainError::RenewalStep { detail }
}

impl Renewal {
    /// The variant's table.
    pub fn variant(&self) -> Option<&'static VariantDef> {
        self.procedure.variant(&self.variant).ok()
    }

    /// The table row of a step.
    pub fn def(&self, step: &RenewalStep) -> Option<&'static StepDef> {
        self.variant()?.steps.iter().find(|d| d.key == step.key)
    }

    /// The steps that may be worked on now, ignoring the window: the first unfinished
    /// step and the following steps of the same row.
    pub fn open_steps(&self) -> Vec<&RenewalStep> {
        let Some(first) = self.steps.iter().find(|s| !s.state.finished()) else {
            return Vec::new();
        };
        self.steps
            .iter()
            .skip_while(|s| s.position != first.position)
            .take_while(|s| s.key == first.key)
            .filter(|s| !s.state.finished())
            .collect()
    }

    /// Whether the window is open at `now` (a window is set and has begun).
    pub fn window_open(&self, now: Timestamp) -> bool {
        self.window.is_some_and(|(from, _)| from <= now)
    }

    /// The step `selector` names: its position, or its key (with `partner` telling the
    /// per-partner instances apart).
    ///
    /// # Errors
    /// No such step, or a key shared by several partners' steps without `partner`.
    pub fn find_step(&self, selector: &str, partner: Option<&str>) -> Result<&RenewalStep, DomainError> {
        if let Ok(position) = selector.parse::<u32>() {
            return self
                .steps
                .iter()
                .find(|s| s.position == position)
                .ok_or_else(|| refuse(format!("renewal {} has no step {position}", self.id)));
        }
        let matching: Vec<&RenewalStep> = self
            .steps
            .iter()
            .filter(|s| s.key == selector && (partner.is_none() || s.partner.as_deref() == partner))
            .collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => Err(refuse(format!("renewal {} has no step {selector:?}{}", self.id, for_partner(partner)))),
            several => {
                let open: Vec<&&RenewalStep> = several.iter().filter(|s| !s.state.finished()).collect();
                match open.as_slice() {
                    [one] => Ok(one),
                    _ => Err(refuse(format!(
                        "step {selector:?} of renewal {} is repeated for partners {}; name one with --partner or give the step's number",
                        self.id,
                        several.iter().filter_map(|s| s.partner.as_deref()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }
    }

    /// Checks that `role` may confirm `step` now, with or without an `override_probe`.
    ///
    /// # Errors
    /// A renewal that is not running; a step that is finished, not open yet, waiting for
    /// its window, automated (only failed probes are confirmed, to run them again or to
    /// override them); the wrong role.
    pub fn check_confirm(
        &self,
        step: &RenewalStep,
        role: Role,
        override_probe: bool,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if self.state != RenewalState::Running {
            return Err(refuse(format!("renewal {} is {}", self.id, self.state)));
        }
        let def = self.def(step).ok_or_else(|| refuse(format!("step {} is not in the procedure's table", step.key)))?;
        if step.state.finished() {
            return Err(refuse(format!("step {} ({}) is already {}", step.position, step.key, step.state)));
        }
        if !self.open_steps().iter().any(|s| s.position == step.position) {
            let first = self.open_steps().first().map(|s| format!("{} ({})", s.position, s.key)).unwrap_or_default();
            return Err(refuse(format!(
                "step {} ({}) comes after step {first}, which is not finished",
                step.position, step.key
            )));
        }
        if def.in_window && !self.window_open(now) {
            return Err(refuse(match self.window {
                Some((from, _)) => format!(
                    "step {} ({}) is inside the downtime window, which opens at {}",
                    step.position,
                    step.key,
                    from.to_rfc3339()
                ),
                None => format!("step {} ({}) needs a downtime window; schedule one first", step.position, step.key),
            }));
        }
        let allowed = match def.actor {
            StepActor::Admin => role == Role::Admin,
            StepActor::Developer => matches!(role, Role::Admin | Role::Developer),
            StepActor::Partner => role == Role::Admin,
        };
        if !allowed {
            return Err(DomainError::Forbidden {
                role,
                action: "confirm this renewal step",
                reason: match def.actor {
                    StepActor::Admin => "the step is the tenant administrator's",
                    StepActor::Developer => "the step is the integration developer's (or an administrator's)",
                    StepActor::Partner => "partner steps are confirmed by a tenant administrator speaking for the partner",
                },
            });
        }
        match def.kind {
            StepKind::Confirm | StepKind::Input(_) => Ok(()),
            StepKind::Probe(_) if step.state == StepState::Failed => {
                if override_probe && role != Role::Admin {
                    return Err(DomainError::Forbidden {
                        role,
                        action: "override a failed probe",
                        reason: "only a tenant administrator overrides a probe",
                    });
                }
                Ok(())
            }
            StepKind::Window => Err(refuse(format!(
                "step {} agrees the downtime window: use renew schedule-downtime",
                step.position
            ))),
            _ => Err(refuse(format!("step {} ({}) is automated; keyward runs it", step.position, step.key))),
        }
    }

    /// Checks a downtime window for this renewal.
    ///
    /// # Errors
    /// Not running, no window step in the variant, a window that ends before it starts or
    /// that is already over, or a window changed after steps inside it began.
    pub fn check_window(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> Result<(), DomainError> {
        if self.state != RenewalState::Running {
            return Err(refuse(format!("renewal {} is {}", self.id, self.state)));
        }
        if !self.variant().is_some_and(|v| v.steps.iter().any(|s| s.kind == StepKind::Window)) {
            return Err(refuse(format!(
                "variant {} of {} needs no downtime window",
                self.variant, self.procedure
            )));
        }
        if to <= from {
            return Err(refuse("the window must end after it starts".to_owned()));
        }
        if to <= now {
            return Err(refuse(format!("the window ends in the past ({})", to.to_rfc3339())));
        }
        let started = self
            .steps
            .iter()
            .any(|s| self.def(s).is_some_and(|d| d.in_window) && s.state.finished() && s.state != StepState::Skipped);
        if started {
            return Err(refuse("steps inside the current window have begun; it can no longer be moved".to_owned()));
        }
        Ok(())
    }

    /// Whether a step keyed `key` exists and is finished.
    pub fn done(&self, key: &str) -> bool {
        let mut matching = self.steps.iter().filter(|s| s.key == key).peekable();
        matching.peek().is_some() && matching.all(|s| s.state.finished())
    }

    /// The roles or partners the open steps wait for, for `renew tasks`.
    pub fn waiting_for(&self, now: Timestamp) -> Vec<(&RenewalStep, StepActor)> {
        if self.state != RenewalState::Running {
            return Vec::new();
        }
        self.open_steps()
            .into_iter()
            .filter_map(|s| {
                let def = self.def(s)?;
                if def.in_window && !self.window_open(now) && def.kind != StepKind::Window {
                    return None;
                }
                let person = matches!(def.kind, StepKind::Confirm | StepKind::Input(_) | StepKind::Window)
                    || s.state == StepState::Failed;
                person.then_some((s, def.actor))
            })
            .collect()
    }
}

fn for_partner(partner: Option<&str>) -> String {
    partner.map(|p| format!(" for partner {p}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procedure::Procedure;

    fn renewal(procedure: Procedure, variant: &str, partners: &[&str]) -> Renewal {
        let partners: Vec<String> = partners.iter().map(|p| (*p).to_owned()).collect();
        let def = procedure.variant(variant).unwrap();
        Renewal {
            id: 1,
            alias: Alias::parse("tls-client").unwrap(),
            procedure,
            variant: variant.to_owned(),
            state: RenewalState::Running,
            flows: vec!["orders".into()],
            steps: instantiate(def, &partners),
            partners,
            old_version: Some(VersionId(1)),
            new_version: None,
            second_alias: None,
            window: None,
            created_by: "root".into(),
            created_at: Timestamp::from_seconds(0),
            updated_at: Timestamp::from_seconds(0),
            revision: 1,
        }
    }

    fn finish(r: &mut Renewal, upto: u32) {
        for s in r.steps.iter_mut().filter(|s| s.position <= upto) {
            s.state = StepState::Done;
        }
    }

    #[test]
    fn partner_steps_repeat_per_partner_and_open_together() {
        let mut r = renewal(Procedure::ClientCertificate, "accepts-both", &["acme", "globex"]);
        let keys: Vec<(&str, Option<&str>)> = r.steps.iter().map(|s| (s.key.as_str(), s.partner.as_deref())).collect();
        assert_eq!(keys[3], ("partner-accepts-both", Some("acme")));
        assert_eq!(keys[4], ("partner-accepts-both", Some("globex")));
        assert_eq!(r.steps.len(), 11);
        finish(&mut r, 3);
        let open: Vec<u32> = r.open_steps().iter().map(|s| s.position).collect();
        assert_eq!(open, vec![4, 5]);
        let now = Timestamp::from_seconds(10);
        let globex = r.find_step("partner-accepts-both", Some("globex")).unwrap().clone();
        r.check_confirm(&globex, Role::Admin, false, now).unwrap();
        let err = r.check_confirm(&globex, Role::Developer, false, now).unwrap_err();
        assert!(matches!(err, DomainError::Forbidden { .. }));
        assert!(r.find_step("partner-accepts-both", None).is_err(), "ambiguous without a partner");
        let probe = r.find_step("probe-staged", None).unwrap().clone();
        let err = r.check_confirm(&probe, Role::Admin, false, now).unwrap_err().to_string();
        assert!(err.contains("comes after step 4"), "{err}");
    }

    #[test]
    fn no_partner_means_partner_steps_are_skipped() {
        let r = renewal(Procedure::CmsSigner, "verifies-both", &[]);
        let skipped: Vec<&str> =
            r.steps.iter().filter(|s| s.state == StepState::Skipped).map(|s| s.key.as_str()).collect();
        assert_eq!(skipped, vec!["partner-verifies-both", "partner-removes-old"]);
    }

    #[test]
    fn window_steps_wait_for_the_window() {
        let mut r = renewal(Procedure::CmsSigner, "one-signature", &["acme"]);
        let now = Timestamp::from_seconds(1_000);
        finish(&mut r, 4);
        let step = r.find_step("partner-exchanges", None).unwrap().clone();
        let err = r.check_confirm(&step, Role::Admin, false, now).unwrap_err().to_string();
        assert!(err.contains("needs a downtime window"), "{err}");
        r.window = Some((Timestamp::from_seconds(2_000), Timestamp::from_seconds(3_000)));
        let err = r.check_confirm(&step, Role::Admin, false, now).unwrap_err().to_string();
        assert!(err.contains("opens at"), "{err}");
        r.check_confirm(&step, Role::Admin, false, Timestamp::from_seconds(2_000)).unwrap();
        assert!(r.check_window(Timestamp::from_seconds(5), Timestamp::from_seconds(4), now).is_err());
        assert!(r.check_window(Timestamp::from_seconds(5), Timestamp::from_seconds(6), now).is_err(), "past");
        let err = r.check_window(now, now.plus_days(1), now).unwrap_err().to_string();
        assert!(err.contains("begun"), "activation inside the window already ran: {err}");
    }

    #[test]
    fn probes_are_confirmed_only_when_failed_and_overridden_only_by_admins() {
        let mut r = renewal(Procedure::ClientCertificate, "accepts-both", &["acme"]);
        let now = Timestamp::from_seconds(10);
        finish(&mut r, 4);
        let probe = r.find_step("probe-staged", None).unwrap().clone();
        assert!(r.check_confirm(&probe, Role::Admin, false, now).unwrap_err().to_string().contains("automated"));
        r.steps[4].state = StepState::Failed;
        let probe = r.steps[4].clone();
        r.check_confirm(&probe, Role::Admin, true, now).unwrap();
        assert!(r.check_confirm(&probe, Role::Developer, true, now).is_err());
        assert_eq!(r.waiting_for(now).len(), 1);
    }
}
