//! The renewal engine: plans, starts and drives renewals through their procedure's steps.
//!
//! The tables of steps are data in the domain crate ([`keyward_domain::procedure`]); the
//! rules of order are there too ([`keyward_domain::renewal`]). This module does the work:
//! - [`Renewals::plan`] reads every deployed flow, finds where the alias is used (client
//!   certificate, sign step, response sign step, encrypt step), picks the procedure, and
//!   the variant that the most restrictive affected partner allows;
//! - [`Renewals::advance`] runs automated steps (tasks, notifications, probes) in order
//!   until the renewal waits for a person, a partner, a failed probe or the downtime
//!   window, saving and auditing each step as it finishes;
//! - [`Renewals::confirm`], [`Renewals::schedule_downtime`] and [`Renewals::abort`] are what
//!   people do; abort reverts what can be reverted (the old key becomes active again,
//!   stopped flows start, undeployed flows come back, temporary aliases go).
//!
//! Every step's state is in the store, so a renewal survives a restart: the server calls
//! [`Renewals::tick`] every second, which advances every running renewal (steps whose
//! window has opened, steps interrupted by a crash). Automated steps are written to be
//! safe to run twice.

use std::collections::BTreeSet;
use std::time::Duration;

use keyward_domain::partner::check_partner_name;
use keyward_domain::procedure::{Input, Probe, Task};
use keyward_domain::renewal::instantiate;
use keyward_domain::{
    Action, Actor, Alias, Capabilities, DomainError, EntryKind, Owner, Partner, Procedure, Renewal, RenewalState,
    RenewalStep, Role, StepActor, StepKind, StepState, Timestamp, VariantDef, VersionState, authorize,
    choose_variant,
};
use keyward_keystore::{Keystore, KeystoreError, VersionChoice};
use keyward_store::{AuditEvent, FlowChange, FlowRecord, StoreError};

use crate::flow::{self, ClientAuth, Flow, Step};
use crate::flow_edit;
use crate::operations::{Flows, FlowsError};
use crate::probe::{ProbeOptions, Target, probe};

/// Why a renewal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    /// A domain rule refused it (role, order, window).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Bad input (unknown procedure, a name that breaks the rules, nothing to renew).
    #[error("{0}")]
    Invalid(String),
    /// No such renewal or partner.
    #[error("{0}")]
    NotFound(String),
    /// The keystore refused or failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A flow operation failed.
    #[error(transparent)]
    Flows(#[from] FlowsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A node whose last heartbeat is older than this is not waited for.
const NODE_ALIVE: Duration = Duration::from_secs(5);

/// How long a step waits for every live node to apply a flow change.
const NODE_WAIT: Duration = Duration::from_secs(10);

/// How far ahead of the old key's use renewals keep old keys.
pub const OLD_KEY_KEPT_DAYS: i64 = 90;

/// What a flow uses an alias for, as far as renewals care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    /// The receiver channel presents it as its client certificate, by alias.
    ClientCertificate,
    /// The receiver channel presents any valid key, which may be this one.
    AnyValidKeyClient,
    /// A request sign step signs with it.
    Sign,
    /// A response sign step signs with it.
    ResponseSign,
    /// An encrypt step (request or response) encrypts to it.
    Encrypt,
    /// A decrypt step may use it (any valid key).
    Decrypt,
    /// A verify step trusts it.
    Verify,
}

/// One place in a deployed flow where the alias is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasUse {
    /// The flow.
    pub flow: String,
    /// What it is used for.
    pub kind: UseKind,
    /// The place in words: `client certificate`, `client certificate (any valid key)`,
    /// `sign step N`, `response sign step N`, `encrypt step N`, `decrypt step N (any valid key)`.
    pub place: String,
    /// The partner affected: the channel's declared partner, or its URL when none is.
    pub partner: String,
    /// The receiver URL (where a probe connects).
    pub url: String,
}

/// What `renew plan` computes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The alias.
    pub alias: Alias,
    /// The procedure.
    pub procedure: Procedure,
    /// Why this procedure.
    pub reason: String,
    /// The variant the most restrictive partner allows (or the one asked for).
    pub variant: &'static VariantDef,
    /// Every use of the alias in deployed flows.
    pub uses: Vec<AliasUse>,
    /// The affected flows.
    pub flows: Vec<String>,
    /// The affected partners, declared or not.
    pub partners: Vec<String>,
    /// Affected partners that were never declared (`partners add`): assumed to do
    /// nothing with old and new material at once.
    pub undeclared: Vec<String>,
    /// The temporary or second alias, for the signer variants.
    pub second_alias: Option<Alias>,
    /// The steps, as they would be instantiated.
    pub steps: Vec<RenewalStep>,
}

/// A step waiting for someone, for `renew tasks`.
#[derive(Debug, Clone)]
pub struct WaitingStep {
    /// The renewal.
    pub renewal: i64,
    /// Its alias.
    pub alias: Alias,
    /// The step.
    pub step: RenewalStep,
    /// Who it waits for.
    pub actor: StepActor,
    /// What to do.
    pub text: &'static str,
}

/// What a confirmation brings.
#[derive(Debug, Clone, Default)]
pub struct Confirmation {
    /// Which partner's instance of a per-partner step.
    pub partner: Option<String>,
    /// A note, recorded with the step.
    pub note: Option<String>,
    /// A file for input steps (a CA response, a partner's certificate).
    pub input: Option<Vec<u8>>,
    /// Go past a failed probe (administrators, with a note).
    pub override_probe: bool,
}

/// Partners and renewals over a keystore and its flows.
#[derive(Clone)]
pub struct Renewals {
    keystore: Keystore,
    flows: Flows,
    /// One driver at a time in this process (shared by every `Renewals`, so the API's
    /// and the server's ticking engine never run a step twice); the store's revisions
    /// guard across processes.
    driving: &'static tokio::sync::Mutex<()>,
    probe_timeout: Duration,
}

impl std::fmt::Debug for Renewals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewals").finish_non_exhaustive()
    }
}

static DRIVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn engine(id: i64) -> Actor {
    Actor::new(format!("keyward:renewal-{id}"), Role::Admin)
}

impl Renewals {
    /// The engine for `keystore` and its flows.
    pub fn new(keystore: Keystore) -> Self {
        Renewals {
            flows: Flows::new(keystore.clone()),
            keystore,
            driving: &DRIVING,
            probe_timeout: Duration::from_secs(10),
        }
    }

    // ----- partners ----------------------------------------------------------------------

    /// Declares a partner (admin).
    ///
    /// # Errors
    /// Forbidden roles, an invalid name or URL, a name taken.
    pub async fn add_partner(&self, actor: &Actor, mut partner: Partner) -> Result<Partner, RenewalError> {
        authorize(actor.role, Action::ManagePartners, None)?;
        partner.name = check_partner_name(&partner.name)
            .map_err(|e| RenewalError::Invalid(format!("invalid partner name {:?}: {e}", partner.name)))?;
        check_url(partner.url.as_deref())?;
        self.keystore.store().put_partner(&partner, true, actor, self.keystore.now()).await?;
        Ok(partner)
    }

    /// Changes a partner's URL, capabilities or description (admin); `None` keeps a field.
    ///
    /// # Errors
    /// Forbidden roles, an unknown partner, an invalid URL.
    pub async fn update_partner(
        &self,
        actor: &Actor,
        name: &str,
        url: Option<String>,
        capabilities: Option<Capabilities>,
        description: Option<String>,
    ) -> Result<Partner, RenewalError> {
        authorize(actor.role, Action::ManagePartners, None)?;
        let mut partner = self.partner(actor, name).await?;
        if let Some(url) = url {
            partner.url = (!url.is_empty()).then_some(url);
        }
        check_url(partner.url.as_deref())?;
        if let Some(capabilities) = capabilities {
            partner.capabilities = capabilities;
        }
        if let Some(description) = description {
            partner.description = (!description.is_empty()).then_some(description);
        }
        self.keystore.store().put_partner(&partner, false, actor, self.keystore.now()).await?;
        Ok(partner)
    }

    /// Every partner.
    ///
    /// # Errors
    /// Store errors.
    pub async fn partners(&self, actor: &Actor) -> Result<Vec<Partner>, RenewalError> {
        authorize(actor.role, Action::Read, None)?;
        Ok(self.keystore.store().partners().await?)
    }

    /// One partner.
    ///
    /// # Errors
    /// [`RenewalError::NotFound`], store errors.
    pub async fn partner(&self, actor: &Actor, name: &str) -> Result<Partner, RenewalError> {
        let name = name.to_ascii_lowercase();
        self.partners(actor)
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| RenewalError::NotFound(format!("no partner named {name}")))
    }

    // ----- planning ----------------------------------------------------------------------

    /// Computes, without changing anything, the procedure and variant for `alias`, the
    /// affected flows and partners and the steps.
    ///
    /// # Errors
    /// Unknown alias, an alias no deployed flow uses (unless a procedure is named), an
    /// unknown procedure or variant, store errors.
    pub async fn plan(
        &self,
        actor: &Actor,
        alias: &Alias,
        procedure: Option<Procedure>,
        variant: Option<&str>,
    ) -> Result<Plan, RenewalError> {
        authorize(actor.role, Action::Read, None)?;
        let entry = self.keystore.store().entry(alias).await?.ok_or_else(|| DomainError::EntryNotFound { alias: alias.clone() })?;
        let deployed = self.deployed().await?;
        let entries = self.keystore.store().list_entries().await?;
        let uses = uses_of(alias, entry.kind, &deployed);
        let has = |kind: UseKind| uses.iter().any(|u| u.kind == kind);
        let (procedure, reason) = match procedure {
            Some(p) => (p, format!("procedure {p} was asked for")),
            None if entry.owner == Owner::Platform => {
                (Procedure::PlatformKey, "a platform-owned key: the platform stages, the tenant activates".to_owned())
            }
            None if entry.kind == EntryKind::Certificate && has(UseKind::Encrypt) => (
                Procedure::PartnerEncryption,
                "a partner's certificate that flows encrypt to: the partner renews its key".to_owned(),
            ),
            None if entry.kind == EntryKind::KeyPair && has(UseKind::ClientCertificate) => {
                (Procedure::ClientCertificate, "the client certificate of a flow's receiver channel".to_owned())
            }
            None if entry.kind == EntryKind::KeyPair && has(UseKind::Sign) => {
                (Procedure::CmsSigner, "a key that signs outbound CMS messages".to_owned())
            }
            None if entry.kind == EntryKind::KeyPair && has(UseKind::ResponseSign) => {
                (Procedure::ResponseSigning, "a key that signs responses to a sender".to_owned())
            }
            None if entry.kind == EntryKind::KeyPair && has(UseKind::AnyValidKeyClient) => (
                Procedure::ClientCertificate,
                "presented as \"any valid key\" by a flow's receiver channel".to_owned(),
            ),
            None => {
                return Err(RenewalError::Invalid(format!(
                    "no deployed flow uses {alias} in a way a procedure covers; name one with --procedure, \
                     or renew it directly (keys create / import, then keys activate)"
                )));
            }
        };
        let relevant: Vec<AliasUse> = uses
            .iter()
            .filter(|u| match procedure {
                Procedure::ClientCertificate => matches!(u.kind, UseKind::ClientCertificate | UseKind::AnyValidKeyClient),
                Procedure::CmsSigner => u.kind == UseKind::Sign,
                Procedure::ResponseSigning => u.kind == UseKind::ResponseSign,
                Procedure::PartnerEncryption => u.kind == UseKind::Encrypt,
                Procedure::PlatformKey => true,
            })
            .cloned()
            .collect();
        let flows: Vec<String> = relevant.iter().map(|u| u.flow.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let partners: Vec<String> =
            relevant.iter().map(|u| u.partner.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let declared = self.keystore.store().partners().await?;
        let none = Capabilities::new();
        let capabilities: Vec<&Capabilities> = partners
            .iter()
            .map(|name| declared.iter().find(|p| &p.name == name).map_or(&none, |p| &p.capabilities))
            .collect();
        let undeclared = partners.iter().filter(|name| !declared.iter().any(|p| &p.name == *name)).cloned().collect();
        let second = if procedure == Procedure::CmsSigner {
            second_alias(alias, &deployed, &flows, &entries)
        } else {
            None
        };
        let variant = match variant {
            Some(name) => procedure.variant(name).map_err(RenewalError::Invalid)?,
            None => choose_variant(procedure, capabilities.iter().copied(), second.is_some()),
        };
        let second_alias = match variant.name {
            "second-alias" => Some(second.ok_or_else(|| {
                RenewalError::Invalid(format!(
                    "variant second-alias needs a sign step that signs with {alias} and with a second alias \
                     that has no key yet, both with if_active = true"
                ))
            })?),
            "temporary-alias" => Some(temporary_alias(alias, &entries)?),
            _ => None,
        };
        let steps = instantiate(variant, &partners);
        Ok(Plan {
            alias: alias.clone(),
            procedure,
            reason,
            variant,
            uses,
            flows,
            partners,
            undeclared,
            second_alias,
            steps,
        })
    }

    async fn deployed(&self) -> Result<Vec<(FlowRecord, Flow)>, RenewalError> {
        let mut deployed = Vec::new();
        for record in self.keystore.store().flows().await? {
            // A deployed flow parsed when it was deployed; one that no longer does (a newer
            // keyward with stricter rules) uses nothing we can renew safely, so say so.
            match flow::parse(&record.source) {
                Ok(parsed) => deployed.push((record, parsed)),
                Err(e) => tracing::warn!(flow = %record.name, error = %e, "deployed flow no longer parses"),
            }
        }
        Ok(deployed)
    }

    // ----- starting and reading ----------------------------------------------------------

    /// Starts a renewal of `alias` (admin) and runs its first automated steps.
    ///
    /// # Errors
    /// As [`Renewals::plan`]; a renewal of the alias already running.
    pub async fn start(
        &self,
        actor: &Actor,
        alias: &Alias,
        procedure: Option<Procedure>,
        variant: Option<&str>,
    ) -> Result<Renewal, RenewalError> {
        authorize(actor.role, Action::ManageRenewals, None)?;
        let plan = self.plan(actor, alias, procedure, variant).await?;
        if let Some(id) = self.keystore.store().running_renewal(alias).await? {
            return Err(DomainError::RenewalInProgress { alias: alias.clone(), id, hint: "show it with keyward renew show" }.into());
        }
        let entry = self.keystore.store().entry(alias).await?.ok_or_else(|| DomainError::EntryNotFound { alias: alias.clone() })?;
        let now = self.keystore.now();
        let new_version = match plan.procedure {
            Procedure::PlatformKey => Some(entry.staged().last().map(|v| v.id).ok_or_else(|| {
                RenewalError::Invalid(format!("{alias} has no staged version: the platform has not provided a new key"))
            })?),
            _ => None,
        };
        let renewal = Renewal {
            id: 0,
            alias: alias.clone(),
            procedure: plan.procedure,
            variant: plan.variant.name.to_owned(),
            state: RenewalState::Running,
            flows: plan.flows,
            partners: plan.partners,
            old_version: entry.active().map(|v| v.id),
            new_version,
            second_alias: plan.second_alias,
            window: None,
            created_by: actor.name.clone(),
            created_at: now,
            updated_at: now,
            revision: 1,
            steps: plan.steps,
        };
        let id = self.keystore.store().create_renewal(&renewal, &[], actor).await?;
        tracing::info!(renewal = id, alias = %alias, procedure = %renewal.procedure, variant = %renewal.variant, "renewal started");
        self.advance(id).await
    }

    /// One renewal.
    ///
    /// # Errors
    /// [`RenewalError::NotFound`], store errors.
    pub async fn show(&self, actor: &Actor, id: i64) -> Result<Renewal, RenewalError> {
        authorize(actor.role, Action::Read, None)?;
        self.load(id).await
    }

    async fn load(&self, id: i64) -> Result<Renewal, RenewalError> {
        self.keystore.store().renewal(id).await?.ok_or_else(|| RenewalError::NotFound(format!("no renewal {id}")))
    }

    /// Every renewal, oldest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Renewal>, RenewalError> {
        authorize(actor.role, Action::Read, None)?;
        Ok(self.keystore.store().renewals().await?)
    }

    /// What is waiting for whom: open steps of running renewals that a person (or a
    /// partner) must do, optionally only for one actor kind or one partner.
    ///
    /// # Errors
    /// Store errors.
    pub async fn tasks(
        &self,
        actor: &Actor,
        role: Option<StepActor>,
        partner: Option<&str>,
    ) -> Result<Vec<WaitingStep>, RenewalError> {
        authorize(actor.role, Action::Read, None)?;
        let now = self.keystore.now();
        let mut tasks = Vec::new();
        for renewal in self.keystore.store().running_renewals().await? {
            for (step, who) in renewal.waiting_for(now) {
                if role.is_some_and(|r| r != who) || partner.is_some_and(|p| step.partner.as_deref() != Some(p)) {
                    continue;
                }
                let text = renewal.def(step).map_or("", |d| d.text);
                tasks.push(WaitingStep { renewal: renewal.id, alias: renewal.alias.clone(), step: step.clone(), actor: who, text });
            }
        }
        Ok(tasks)
    }

    // ----- what people do ----------------------------------------------------------------

    /// Confirms step `selector` (its number or key) of renewal `id`, then runs what follows.
    ///
    /// # Errors
    /// The rules of order and roles ([`Renewal::check_confirm`]); an input step without its
    /// file or with one the keystore refuses; an override without a note.
    pub async fn confirm(
        &self,
        actor: &Actor,
        id: i64,
        selector: &str,
        confirmation: Confirmation,
    ) -> Result<Renewal, RenewalError> {
        {
            let _driving = self.driving.lock().await;
            let mut renewal = self.load(id).await?;
            let now = self.keystore.now();
            let step = renewal.find_step(selector, confirmation.partner.as_deref())?.clone();
            renewal.check_confirm(&step, actor.role, confirmation.override_probe, now)?;
            let def = renewal.def(&step).ok_or_else(|| RenewalError::Invalid(format!("unknown step {}", step.key)))?;
            let mut state = StepState::Done;
            let mut note = confirmation.note.clone();
            match def.kind {
                StepKind::Input(input) => {
                    let bytes = confirmation.input.as_deref().ok_or_else(|| {
                        RenewalError::Invalid(format!(
                            "step {} ({}) imports a file: give it with --file",
                            step.position, step.key
                        ))
                    })?;
                    let version = match input {
                        Input::CaResponse => self.keystore.import_response(actor, &renewal.alias, bytes, true).await?,
                        Input::PartnerCertificate => self.keystore.import(actor, &renewal.alias, bytes, None, true).await?,
                    };
                    renewal.new_version = Some(version);
                    note = Some(join_note(format!("imported as staged version {version}"), note));
                }
                StepKind::Probe(_) if confirmation.override_probe => {
                    let reason = note.clone().filter(|n| !n.trim().is_empty()).ok_or(DomainError::ReasonRequired {
                        action: "override of a failed probe",
                    })?;
                    state = StepState::Overridden;
                    note = Some(format!("overridden: {reason}; the probe said: {}", step.note.clone().unwrap_or_default()));
                }
                StepKind::Probe(_) => {
                    // Run the probe again; advance records its result.
                    state = StepState::Pending;
                }
                _ => {}
            }
            if state != StepState::Pending {
                let detail = format!(
                    "renewal {id} step {} ({}){}: {state} by {}{}",
                    step.position,
                    step.key,
                    step.partner.as_deref().map(|p| format!(" for partner {p}")).unwrap_or_default(),
                    actor.name,
                    note.as_deref().map(|n| format!("; {n}")).unwrap_or_default()
                );
                set_step(&mut renewal, step.position, state, &actor.name, now, note);
                self.save(&renewal, &[step.position], &[], actor, "renewals.confirm", &detail).await?;
            } else {
                set_step(&mut renewal, step.position, StepState::Pending, &actor.name, now, None);
                let detail = format!("renewal {id} step {} ({}): run again by {}", step.position, step.key, actor.name);
                self.save(&renewal, &[step.position], &[], actor, "renewals.retry", &detail).await?;
            }
        }
        self.advance(id).await
    }

    /// Sets the downtime window of renewal `id` (admin) and finishes its window step.
    ///
    /// # Errors
    /// [`Renewal::check_window`]; forbidden roles.
    pub async fn schedule_downtime(
        &self,
        actor: &Actor,
        id: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Renewal, RenewalError> {
        authorize(actor.role, Action::ManageRenewals, None)?;
        {
            let _driving = self.driving.lock().await;
            let mut renewal = self.load(id).await?;
            let now = self.keystore.now();
            renewal.check_window(from, to, now)?;
            renewal.window = Some((from, to));
            let positions: Vec<u32> = renewal
                .steps
                .iter()
                .filter(|s| renewal.def(s).is_some_and(|d| d.kind == StepKind::Window))
                .map(|s| s.position)
                .collect();
            let note = format!("window {} to {}", from.to_rfc3339(), to.to_rfc3339());
            for position in &positions {
                set_step(&mut renewal, *position, StepState::Done, &actor.name, now, Some(note.clone()));
            }
            let detail = format!("renewal {id}: downtime {note}, agreed by {}", actor.name);
            self.save(&renewal, &positions, &[], actor, "renewals.schedule-downtime", &detail).await?;
        }
        self.advance(id).await
    }

    /// Aborts renewal `id` (admin), reverting what its finished steps changed: the old
    /// version becomes active again, stopped flows start, undeployed flows are deployed,
    /// temporary signers and aliases go.
    ///
    /// # Errors
    /// Forbidden roles, a renewal that is not running, a revert the keystore refuses
    /// (the renewal then stays running, and the error says what failed).
    pub async fn abort(&self, actor: &Actor, id: i64, reason: Option<&str>) -> Result<Renewal, RenewalError> {
        authorize(actor.role, Action::ManageRenewals, None)?;
        let _driving = self.driving.lock().await;
        let mut renewal = self.load(id).await?;
        if renewal.state != RenewalState::Running {
            return Err(DomainError::RenewalStep { detail: format!("renewal {id} is {}", renewal.state) }.into());
        }
        let reverted = self.revert(&renewal).await?;
        renewal.state = RenewalState::Aborted;
        let detail = format!(
            "aborted renewal {id} by {}{}; reverted: {}",
            actor.name,
            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            if reverted.is_empty() { "nothing".to_owned() } else { reverted.join("; ") }
        );
        self.save(&renewal, &[], &[], actor, "renewals.abort", &detail).await?;
        tracing::info!(renewal = id, alias = %renewal.alias, "{detail}");
        self.load(id).await
    }

    async fn revert(&self, renewal: &Renewal) -> Result<Vec<String>, RenewalError> {
        let actor = engine(renewal.id);
        let alias = &renewal.alias;
        let done = |key: &str| renewal.steps.iter().any(|s| s.key == key && s.state == StepState::Done);
        let mut reverted = Vec::new();
        if let (Some(second), true, false) = (&renewal.second_alias, done("add-signer"), done("remove-signer")) {
            for flow in &renewal.flows {
                if let Some(record) = self.keystore.store().flow(flow).await?
                    && let Ok(source) = flow_edit::remove_signer(&record.source, second)
                {
                    self.flows.deploy(&actor, &source).await?;
                    reverted.push(format!("removed {second} from flow {flow}"));
                }
            }
        }
        let exchanged = done("activate") || done("adopt-key") || done("retire-old");
        if exchanged && let Some(old) = renewal.old_version {
            let entry = self.keystore.store().entry(alias).await?;
            let state = entry.as_ref().and_then(|e| e.version(old)).map(|v| v.state);
            if state == Some(VersionState::Retired) {
                self.keystore.restore(&actor, alias, old).await?;
            }
            if state != Some(VersionState::Active) {
                self.keystore.activate_in_renewal(&actor, alias, Some(old), renewal.id).await?;
                reverted.push(format!("version {old} of {alias} is active again"));
            }
        }
        if let (Some(second), true) = (&renewal.second_alias, done("create-second-key"))
            && self.keystore.store().entry(second).await?.is_some_and(|e| e.active().is_some())
        {
            self.keystore.retire(&actor, second, renewal.id).await?;
            reverted.push(format!("retired the new key under {second}"));
        }
        if let (Some(second), true, false) = (&renewal.second_alias, done("create-temporary"), done("delete-temporary"))
            && self.keystore.store().entry(second).await?.is_some()
        {
            self.wait_for_nodes().await?;
            let reason = format!("renewal {} aborted", renewal.id);
            self.keystore.delete(&actor, second, true, Some(&reason)).await?;
            reverted.push(format!("deleted temporary alias {second}"));
        }
        if done("stop-flows") && !done("start-flows") {
            for flow in &renewal.flows {
                self.flows.change(&actor, flow, FlowChange::Start, None).await?;
            }
            reverted.push(format!("started flows {}", renewal.flows.join(", ")));
        }
        if done("undeploy-flows") && !done("redeploy-flows") {
            for (flow, source) in self.keystore.store().kept_flows(renewal.id).await? {
                if self.keystore.store().flow(&flow).await?.is_none() {
                    self.flows.deploy(&actor, &source).await?;
                    reverted.push(format!("deployed flow {flow} again"));
                }
            }
        }
        Ok(reverted)
    }

    // ----- driving -----------------------------------------------------------------------

    /// Runs renewal `id`'s automated steps, in order, until it waits for someone, a failed
    /// probe or its window, or is complete.
    ///
    /// # Errors
    /// Store errors; a task the keystore or the flows refuse (the step stays pending and
    /// the error is returned; the next tick tries again).
    pub async fn advance(&self, id: i64) -> Result<Renewal, RenewalError> {
        let _driving = self.driving.lock().await;
        loop {
            let mut renewal = self.load(id).await?;
            if renewal.state != RenewalState::Running {
                return Ok(renewal);
            }
            let now = self.keystore.now();
            let Some(step) = renewal.open_steps().first().map(|s| (*s).clone()) else {
                renewal.state = RenewalState::Completed;
                let detail = format!("renewal {id} of {} completed", renewal.alias);
                self.save(&renewal, &[], &[], &engine(id), "renewals.complete", &detail).await?;
                tracing::info!(renewal = id, alias = %renewal.alias, "renewal completed");
                continue;
            };
            let Some(def) = renewal.def(&step) else {
                return Err(RenewalError::Invalid(format!("step {} is not in the procedure's table", step.key)));
            };
            if def.in_window && !renewal.window_open(now) {
                return Ok(renewal);
            }
            let mut kept = Vec::new();
            let (state, note, due) = match def.kind {
                StepKind::Task(task) => {
                    let (note, due) = self.run_task(&mut renewal, task, &mut kept).await?;
                    (if due.is_some() { StepState::Scheduled } else { StepState::Done }, note, due)
                }
                StepKind::Notify(to) => {
                    let to = match to {
                        StepActor::Partner if renewal.partners.is_empty() => "no affected partner".to_owned(),
                        StepActor::Partner => format!("partner {}", renewal.partners.join(", ")),
                        other => format!("the {}", if other == StepActor::Admin { "tenant administrator" } else { "integration developer" }),
                    };
                    let note = format!("notified {to}: {}", self.notification(&renewal, def.text));
                    tracing::info!(renewal = id, alias = %renewal.alias, step = %step.key, "{note}");
                    (StepState::Done, note, None)
                }
                StepKind::Probe(probe) if step.state == StepState::Pending => match self.run_probe(&renewal, probe).await? {
                    Ok(note) => (StepState::Done, note, None),
                    Err(failure) => {
                        tracing::warn!(renewal = id, alias = %renewal.alias, "probe failed: {failure}");
                        (StepState::Failed, failure, None)
                    }
                },
                _ => return Ok(renewal),
            };
            let detail = format!("renewal {id} step {} ({}): {state}: {note}", step.position, step.key);
            renewal.steps.iter_mut().filter(|s| s.position == step.position).for_each(|s| {
                s.state = state;
                s.by = Some("keyward".to_owned());
                s.at = Some(now);
                s.note = Some(note.clone());
                s.due = due;
            });
            self.save(&renewal, &[step.position], &kept, &engine(id), "renewals.step", &detail).await?;
            if state == StepState::Failed {
                return self.load(id).await;
            }
        }
    }

    /// Drives renewal `id` to its end without waiting for people, for the automatic
    /// activation of a platform key before the active one expires: a downtime window opens
    /// now, confirmations nobody gave are skipped and failed probes overridden, each with
    /// `reason` as its note.
    ///
    /// # Errors
    /// As [`Renewals::advance`].
    pub async fn force_through(&self, id: i64, reason: &str) -> Result<Renewal, RenewalError> {
        let actor = engine(id);
        for _ in 0..64 {
            let renewal = self.advance(id).await?;
            if renewal.state != RenewalState::Running {
                return Ok(renewal);
            }
            let _driving = self.driving.lock().await;
            let mut renewal = self.load(id).await?;
            let now = self.keystore.now();
            if !renewal.window_open(now) {
                renewal.window = Some((now, now.plus_days(1)));
            }
            let mut changed = Vec::new();
            let open: Vec<RenewalStep> = renewal.open_steps().into_iter().cloned().collect();
            for step in open {
                let Some(def) = renewal.def(&step) else { continue };
                let state = match def.kind {
                    StepKind::Confirm | StepKind::Input(_) => StepState::Skipped,
                    StepKind::Window => StepState::Done,
                    StepKind::Probe(_) if step.state == StepState::Failed => StepState::Overridden,
                    _ => continue,
                };
                let note = match step.note.as_deref() {
                    Some(before) if state == StepState::Overridden => format!("{reason}; the probe said: {before}"),
                    _ => reason.to_owned(),
                };
                set_step(&mut renewal, step.position, state, &actor.name, now, Some(note));
                changed.push(step.position);
            }
            let detail = format!("renewal {id}: {reason}; steps {changed:?} finished without confirmation");
            self.save(&renewal, &changed, &[], &actor, "renewals.force", &detail).await?;
        }
        self.load(id).await
    }

    /// Advances every running renewal: steps whose window opened, steps a crash
    /// interrupted. Errors are logged, not returned: one renewal's trouble does not stop
    /// the others.
    pub async fn tick(&self) {
        let renewals = match self.keystore.store().running_renewals().await {
            Ok(renewals) => renewals,
            Err(e) => {
                tracing::warn!(error = %e, "could not read renewals");
                return;
            }
        };
        for renewal in renewals {
            let waits_on_engine = renewal.open_steps().first().is_some_and(|s| {
                renewal.def(s).is_some_and(|d| {
                    d.kind.automated() && s.state == StepState::Pending && (!d.in_window || renewal.window_open(self.keystore.now()))
                })
            });
            if waits_on_engine && let Err(e) = self.advance(renewal.id).await {
                tracing::warn!(renewal = renewal.id, error = %e, "renewal step failed; will try again");
            }
        }
    }

    /// Runs [`Renewals::tick`] every `period` until `shutdown` resolves.
    pub async fn run(self, period: Duration, shutdown: impl std::future::Future<Output = ()>) {
        every(period, shutdown, || self.tick()).await;
    }

    fn notification(&self, renewal: &Renewal, text: &str) -> String {
        match renewal.new_version {
            Some(v) => format!("{text} ({} version {v}; download with keyward keys export {} --version {v})", renewal.alias, renewal.alias),
            None => text.to_owned(),
        }
    }

    async fn save(
        &self,
        renewal: &Renewal,
        steps: &[u32],
        kept: &[(String, String)],
        actor: &Actor,
        action: &str,
        detail: &str,
    ) -> Result<(), RenewalError> {
        let event = AuditEvent {
            actor,
            at: self.keystore.now(),
            action,
            alias: Some(&renewal.alias),
            version: renewal.new_version,
            detail,
        };
        self.keystore.store().save_renewal(renewal, steps, kept, &event).await?;
        Ok(())
    }

    /// Runs one task; returns its note and, for scheduled tasks, when they are due.
    async fn run_task(
        &self,
        renewal: &mut Renewal,
        task: Task,
        kept: &mut Vec<(String, String)>,
    ) -> Result<(String, Option<Timestamp>), RenewalError> {
        let actor = engine(renewal.id);
        let alias = renewal.alias.clone();
        let entry = self.keystore.store().entry(&alias).await?.ok_or_else(|| DomainError::EntryNotFound { alias: alias.clone() })?;
        let note = match task {
            Task::StageKeyPair => {
                // A version staged after the active one (by an administrator before the
                // renewal, or by this step before a restart) is the new key; older staged
                // versions are leftovers and are not reused.
                let active = entry.active().map_or(0, |v| v.id.0);
                let version = match entry.staged().filter(|v| v.id.0 > active).last() {
                    Some(staged) => staged.id,
                    None => self.keystore.stage_next_key(&actor, &alias).await?,
                };
                renewal.new_version = Some(version);
                format!("version {version} of {alias} is staged; its CSR: keyward keys csr {alias}")
            }
            Task::Activate => {
                let staged = renewal.new_version.or_else(|| entry.staged().last().map(|v| v.id));
                match staged.and_then(|v| entry.version(v)) {
                    Some(v) if v.state == VersionState::Active => format!("version {} was already active", v.id),
                    Some(v) => {
                        let id = v.id;
                        self.keystore.activate_in_renewal(&actor, &alias, Some(id), renewal.id).await?;
                        renewal.new_version = Some(id);
                        format!("version {id} of {alias} is active; nodes switch without a restart")
                    }
                    None => return Err(RenewalError::Invalid(format!("{alias} has no staged version to activate"))),
                }
            }
            Task::CreateTemporaryAlias => {
                let second = self.second(renewal)?;
                if self.keystore.store().entry(&second).await?.is_none() {
                    self.keystore.create_key_like(&actor, &second, &alias).await?;
                }
                format!("key pair created under temporary alias {second}")
            }
            Task::AddTemporarySigner => {
                let second = self.second(renewal)?;
                // Every node holds the temporary key before a flow names it.
                self.wait_for_nodes().await?;
                let changed = self.edit_flows(renewal, |source| flow_edit::add_signer(source, &alias, &second)).await?;
                format!("{second} signs next to {alias} in flows {}", changed.join(", "))
            }
            Task::AdoptTemporaryKey => {
                let second = self.second(renewal)?;
                let temp = self.keystore.store().entry(&second).await?;
                let temp_version = temp.as_ref().and_then(|e| e.active()).map(|v| v.id).ok_or_else(|| {
                    RenewalError::Invalid(format!("temporary alias {second} has no active key"))
                })?;
                let version = match renewal.new_version {
                    Some(v) if entry.version(v).is_some() => v,
                    _ => self.keystore.copy_key(&actor, &second, temp_version, &alias).await?,
                };
                renewal.new_version = Some(version);
                if entry.version(version).is_none_or(|v| v.state != VersionState::Active) {
                    self.keystore.activate_in_renewal(&actor, &alias, Some(version), renewal.id).await?;
                }
                format!("the key of {second} is version {version} of {alias}, active")
            }
            Task::RemoveTemporarySigner => {
                let second = self.second(renewal)?;
                // Every node signs with the adopted key before the temporary signer goes.
                self.wait_for_nodes().await?;
                let changed = self.edit_flows(renewal, |source| flow_edit::remove_signer(source, &second)).await?;
                format!("{second} removed from flows {}", changed.join(", "))
            }
            Task::DeleteTemporaryAlias => {
                let second = self.second(renewal)?;
                if self.keystore.store().entry(&second).await?.is_some() {
                    // A node still running the flow with the temporary signer would fail
                    // once the key is gone: wait until every node has applied the edit.
                    self.wait_for_nodes().await?;
                    let reason = format!("renewal {}: its key is now version {} of {alias}", renewal.id, renewal.new_version.map_or(0, |v| v.0));
                    self.keystore.delete(&actor, &second, true, Some(&reason)).await?;
                }
                format!("temporary alias {second} deleted")
            }
            Task::CreateSecondAliasKey => {
                let second = self.second(renewal)?;
                let active = self.keystore.store().entry(&second).await?.and_then(|e| e.active().map(|v| v.id));
                let version = match active {
                    Some(v) => v,
                    None => self.keystore.create_key_like(&actor, &second, &alias).await?,
                };
                format!("version {version} of {second} is active: messages carry two signatures")
            }
            Task::RetireAlias => {
                if entry.active().is_some() {
                    self.keystore.retire(&actor, &alias, renewal.id).await?;
                }
                let second = self.second(renewal)?;
                format!("{alias} has no active key; {second} signs alone")
            }
            Task::StopFlows | Task::StartFlows | Task::RestartFlows => {
                let change = match task {
                    Task::StopFlows => FlowChange::Stop,
                    Task::StartFlows => FlowChange::Start,
                    _ => FlowChange::Restart,
                };
                let mut names = Vec::new();
                for flow in &renewal.flows {
                    match self.flows.change(&actor, flow, change, None).await {
                        Ok(_) => names.push(flow.clone()),
                        Err(FlowsError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                format!("{}: {}", task.describe(), if names.is_empty() { "no flow".to_owned() } else { names.join(", ") })
            }
            Task::UndeployFlows => {
                let mut names = Vec::new();
                for name in &renewal.flows {
                    if let Some(record) = self.keystore.store().flow(name).await? {
                        kept.push((name.clone(), record.source.clone()));
                        // Keep the definition before the flow goes.
                        self.keystore.store().save_renewal(renewal, &[], kept, &AuditEvent {
                            actor: &actor,
                            at: self.keystore.now(),
                            action: "renewals.keep-flow",
                            alias: Some(&alias),
                            version: None,
                            detail: &format!("renewal {} keeps the definition of flow {name}", renewal.id),
                        }).await?;
                        renewal.revision += 1;
                        self.flows.undeploy(&actor, name).await?;
                        names.push(name.clone());
                    }
                }
                format!("undeployed {} (definitions kept with the renewal)", names.join(", "))
            }
            Task::RedeployFlows => {
                let mut names = Vec::new();
                for (name, source) in self.keystore.store().kept_flows(renewal.id).await? {
                    if self.keystore.store().flow(&name).await?.is_none() {
                        self.flows.deploy(&actor, &source).await?;
                    }
                    names.push(name);
                }
                format!("deployed {} again", names.join(", "))
            }
            Task::DrainCheck => {
                "no message waits in keyward: a node signs each response while it answers the request".to_owned()
            }
            Task::ScheduleOldKeyRemoval => {
                let retention = self.keystore.retention().await?;
                let days = OLD_KEY_KEPT_DAYS.max(retention.decrypt_days);
                let due = self.keystore.now().plus_days(days);
                let old = renewal.old_version.map_or_else(|| "the old version".to_owned(), |v| format!("version {v}"));
                return Ok((
                    format!("{old} of {alias} is kept until {}; deleting the entry is refused before", due.to_rfc3339()),
                    Some(due),
                ));
            }
        };
        Ok((note, None))
    }

    /// Waits until every live node (a heartbeat within the last [`NODE_ALIVE`]) has
    /// applied the keystore's current change marker, for at most [`NODE_WAIT`].
    ///
    /// # Errors
    /// [`RenewalError::Invalid`] naming the nodes that lag after the wait (the step stays
    /// pending and is tried again); store errors.
    async fn wait_for_nodes(&self) -> Result<(), RenewalError> {
        let marker = self.keystore.change_marker().await?;
        let deadline = tokio::time::Instant::now() + NODE_WAIT;
        loop {
            let now = self.keystore.now();
            let lagging: Vec<String> = self
                .keystore
                .store()
                .nodes()
                .await?
                .into_iter()
                .filter(|n| now.millis() - n.heartbeat_at.millis() < NODE_ALIVE.as_millis() as i64 && n.applied_marker < marker)
                .map(|n| n.id)
                .collect();
            if lagging.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RenewalError::Invalid(format!(
                    "nodes {} have not applied the flow change yet; the step is tried again",
                    lagging.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn second(&self, renewal: &Renewal) -> Result<Alias, RenewalError> {
        renewal.second_alias.clone().ok_or_else(|| RenewalError::Invalid(format!("renewal {} has no second alias", renewal.id)))
    }

    /// Applies `edit` to the source of every affected flow and deploys the result.
    async fn edit_flows(
        &self,
        renewal: &Renewal,
        edit: impl Fn(&str) -> Result<String, flow::FlowError>,
    ) -> Result<Vec<String>, RenewalError> {
        let actor = engine(renewal.id);
        let mut changed = Vec::new();
        for name in &renewal.flows {
            let Some(record) = self.keystore.store().flow(name).await? else { continue };
            let source = edit(&record.source).map_err(|e| RenewalError::Invalid(format!("flow {name}: {e}")))?;
            if source != record.source {
                self.flows.deploy(&actor, &source).await?;
            }
            changed.push(name.clone());
        }
        Ok(changed)
    }

    /// Runs a probe against every affected TLS channel; `Err` holds the failures.
    async fn run_probe(&self, renewal: &Renewal, probe_kind: Probe) -> Result<Result<String, String>, RenewalError> {
        let actor = engine(renewal.id);
        let choice = match (probe_kind, renewal.new_version) {
            (Probe::MessageStaged, _) => return self.message_probe(renewal).await,
            (Probe::TlsStaged, Some(v)) => VersionChoice::Number(v),
            (Probe::TlsStaged, None) => VersionChoice::Staged,
            (Probe::TlsActive, _) => VersionChoice::Active,
        };
        let mut passed = Vec::new();
        let mut failed = Vec::new();
        for (record, parsed) in self.deployed().await? {
            if !renewal.flows.contains(&record.name) {
                continue;
            }
            let presents = match &parsed.receiver.client {
                ClientAuth::Alias(a) => a == &renewal.alias,
                ClientAuth::AnyValidKey => true,
                ClientAuth::None => false,
            };
            if !presents || parsed.receiver.scheme != flow::Scheme::Https {
                continue;
            }
            let target = Target::parse(&parsed.receiver.url).map_err(RenewalError::Invalid)?;
            let client = self.keystore.key_pair_version(&actor, &renewal.alias, choice).await?;
            let trust = self.keystore.trust_certificates_unchecked(&parsed.receiver.trust).await?;
            let options = ProbeOptions { client: Some(client), trust, timeout: self.probe_timeout };
            let report = probe(&target, &options, self.keystore.now()).await;
            let partner = parsed.receiver.partner.clone().unwrap_or_else(|| parsed.receiver.url.clone());
            match report.outcome {
                Ok(()) => passed.push(format!("{} → {target} ({partner}): accepted", record.name)),
                Err(failure) => failed.push(format!("{} → {target} ({partner}): {failure}", record.name)),
            }
        }
        if !failed.is_empty() {
            return Ok(Err(format!(
                "{}; fix the partner and run the probe again (renew confirm {} STEP), or override it with a reason",
                failed.join("; "),
                renewal.id
            )));
        }
        if passed.is_empty() {
            return Ok(Ok("no TLS channel presents this key; nothing to probe".to_owned()));
        }
        Ok(Ok(passed.join("; ")))
    }
}

/// Runs `work` every `period` (a late run delays the next) until `shutdown` resolves.
pub(crate) async fn every<F: std::future::Future<Output = ()>>(
    period: Duration,
    shutdown: impl std::future::Future<Output = ()>,
    mut work: impl FnMut() -> F,
) {
    tokio::pin!(shutdown);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = interval.tick() => work().await,
        }
    }
}

impl Renewals {
    /// Posts a test message protected with the new version (signed with it for a signer,
    /// encrypted to it for a partner's certificate) to every affected partner's declared
    /// URL; `Err` holds the refusals.
    async fn message_probe(&self, renewal: &Renewal) -> Result<Result<String, String>, RenewalError> {
        let alias = &renewal.alias;
        let version = match renewal.new_version {
            Some(v) => v,
            None => self
                .keystore
                .store()
                .entry(alias)
                .await?
                .and_then(|e| e.staged().last().map(|v| v.id))
                .ok_or_else(|| RenewalError::Invalid(format!("{alias} has no new version to probe with")))?,
        };
        let payload = format!("keyward renewal {} probe: {alias} version {version}", renewal.id).into_bytes();
        let message = match renewal.procedure {
            Procedure::PartnerEncryption => {
                let chain = self.keystore.chain_of(alias, version).await?;
                keyward_cms::encrypt(&payload, &[chain.leaf()], flow::DEFAULT_KEY_TRANSPORT, flow::DEFAULT_CONTENT_ENCRYPTION)
                    .map_err(|e| RenewalError::Invalid(format!("cannot encrypt the test message: {e}")))?
            }
            _ => {
                let pair = self.keystore.key_pair_version(&engine(renewal.id), alias, VersionChoice::Number(version)).await?;
                let signer = keyward_cms::Signer {
                    key: &pair.key,
                    chain: &pair.chain,
                    digest: keyward_keystore::messages::default_digest(pair.key.algorithm()),
                    scheme: None,
                    include: keyward_cms::IncludeCertificates::Signer,
                    signing_time: Some(self.keystore.now()),
                };
                keyward_cms::sign(&payload, &[signer], false)
                    .map_err(|e| RenewalError::Invalid(format!("cannot sign the test message: {e}")))?
            }
        };
        let declared = self.keystore.store().partners().await?;
        let trusted = self.keystore.trust_certificates_unchecked(&[]).await?;
        let (mut passed, mut failed) = (Vec::new(), Vec::new());
        for name in &renewal.partners {
            let Some(url) = declared.iter().find(|p| &p.name == name).and_then(|p| p.url.clone()) else {
                passed.push(format!("{name} declares no URL: not probed"));
                continue;
            };
            let client = match crate::channel::one_off_client(&url, self.probe_timeout, &trusted) {
                Ok(client) => client,
                Err(e) => {
                    failed.push(format!("{name} ({url}): {e}"));
                    continue;
                }
            };
            let answer = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/pkcs7-mime")
                .body(message.clone())
                .send()
                .await;
            match answer {
                Ok(a) if a.status().is_success() => passed.push(format!("{name} ({url}) accepted the test message")),
                Ok(a) => {
                    let status = a.status();
                    let body = a.text().await.unwrap_or_default();
                    let body: String = body.chars().take(200).collect();
                    failed.push(format!("{name} ({url}) refused the test message: {status} {body}"));
                }
                Err(e) => failed.push(format!("{name} ({url}) was not reached: {e}")),
            }
        }
        if !failed.is_empty() {
            return Ok(Err(format!(
                "{}; fix the partner and run the probe again (renew confirm {} probe-message), or override it with a reason",
                failed.join("; "),
                renewal.id
            )));
        }
        Ok(Ok(if passed.is_empty() { "no affected partner".to_owned() } else { passed.join("; ") }))
    }
}

fn set_step(renewal: &mut Renewal, position: u32, state: StepState, by: &str, at: Timestamp, note: Option<String>) {
    if let Some(step) = renewal.steps.iter_mut().find(|s| s.position == position) {
        step.state = state;
        step.by = Some(by.to_owned());
        step.at = Some(at);
        step.note = note;
    }
}

fn join_note(first: String, rest: Option<String>) -> String {
    match rest {
        Some(rest) if !rest.is_empty() => format!("{first}; {rest}"),
        _ => first,
    }
}

fn check_url(url: Option<&str>) -> Result<(), RenewalError> {
    match url {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
            Err(RenewalError::Invalid(format!("partner URL {url:?} must start with https:// or http://")))
        }
        _ => Ok(()),
    }
}

/// Every place a deployed flow uses `alias`.
pub fn uses_of(alias: &Alias, kind: EntryKind, deployed: &[(FlowRecord, Flow)]) -> Vec<AliasUse> {
    let mut uses = Vec::new();
    for (record, parsed) in deployed {
        let receiver = parsed.receiver.partner.clone().unwrap_or_else(|| parsed.receiver.url.clone());
        let sender = parsed.sender_partner.clone().unwrap_or_else(|| "sender".to_owned());
        let mut push = |use_kind: UseKind, place: String, partner: &str| {
            uses.push(AliasUse {
                flow: record.name.clone(),
                kind: use_kind,
                place,
                partner: partner.to_owned(),
                url: parsed.receiver.url.clone(),
            });
        };
        match &parsed.receiver.client {
            ClientAuth::Alias(a) if a == alias => push(UseKind::ClientCertificate, "client certificate".to_owned(), &receiver),
            ClientAuth::AnyValidKey if kind == EntryKind::KeyPair => {
                push(UseKind::AnyValidKeyClient, "client certificate (any valid key)".to_owned(), &receiver);
            }
            _ => {}
        }
        for (response, steps, partner) in [(false, &parsed.steps, &receiver), (true, &parsed.response_steps, &sender)] {
            let path = if response { "response " } else { "" };
            for (index, step) in steps.iter().enumerate() {
                let n = index + 1;
                match step {
                    Step::Sign { signers, .. } if signers.iter().any(|s| &s.alias == alias) => {
                        let use_kind = if response { UseKind::ResponseSign } else { UseKind::Sign };
                        push(use_kind, format!("{path}sign step {n}"), partner);
                    }
                    Step::Encrypt { recipients, .. } if recipients.contains(alias) => {
                        push(UseKind::Encrypt, format!("{path}encrypt step {n}"), partner);
                    }
                    Step::Decrypt if kind == EntryKind::KeyPair => {
                        push(UseKind::Decrypt, format!("{path}decrypt step {n} (any valid key)"), &sender);
                    }
                    Step::Verify { trust, .. } if trust.contains(alias) || (trust.is_empty() && kind == EntryKind::Certificate) => {
                        push(UseKind::Verify, format!("{path}verify step {n}"), &sender);
                    }
                    _ => {}
                }
            }
        }
    }
    uses
}

/// The signer steps' second alias for `alias`: another signer of the same step with
/// `if_active`, whose alias has no active version, while `alias`'s own signer also has
/// `if_active` (so that retiring it later leaves one signature).
fn second_alias(
    alias: &Alias,
    deployed: &[(FlowRecord, Flow)],
    flows: &[String],
    entries: &[keyward_domain::Entry],
) -> Option<Alias> {
    let no_key = |a: &Alias| entries.iter().find(|e| &e.alias == a).is_none_or(|e| e.active().is_none());
    let mut found = None;
    for (_, parsed) in deployed.iter().filter(|(r, _)| flows.contains(&r.name)) {
        for step in &parsed.steps {
            let Step::Sign { signers, .. } = step else { continue };
            let Some(own) = signers.iter().find(|s| &s.alias == alias) else { continue };
            let other = signers.iter().find(|s| &s.alias != alias && s.if_active && no_key(&s.alias));
            match (own.if_active, other) {
                (true, Some(other)) if found.as_ref().is_none_or(|f| f == &other.alias) => found = Some(other.alias.clone()),
                _ => return None,
            }
        }
    }
    found
}

/// A free temporary alias next to `alias`: `ALIAS.next`, `ALIAS.next2`, ….
fn temporary_alias(alias: &Alias, entries: &[keyward_domain::Entry]) -> Result<Alias, RenewalError> {
    for n in 1..100 {
        let suffix = if n == 1 { ".next".to_owned() } else { format!(".next{n}") };
        let mut base = alias.as_str().to_owned();
        base.truncate(100 - suffix.len());
        let candidate = Alias::parse(&format!("{base}{suffix}"))?;
        if !entries.iter().any(|e| e.alias == candidate) {
            return Ok(candidate);
        }
    }
    Err(RenewalError::Invalid(format!("no free temporary alias next to {alias}")))
}
