//! Operating flows: deploying, stopping, starting, restarting and undeploying them, the
//! list of nodes, and where an alias is used.
//!
//! [`Flows`] is to flows what the keystore service is to keys: each operation checks the
//! caller's role with the domain's `authorize`, validates, and changes the deployment
//! state in the store in one audited transaction. Nodes converge to that state on their
//! own (see [`node`](crate::node)); nothing here talks to a node.

use keyward_domain::{Action, Actor, Alias, DomainError, EntryKind, authorize};
use keyward_keystore::{Keystore, KeystoreError};
use keyward_store::{FlowChange, FlowRecord, NodeRecord, StoreError, UsageRecord};

use crate::flow::{self, FlowError};

/// Why a flow operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowsError {
    /// The caller's role may not do this.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The flow file is not valid; nothing was deployed.
    #[error("{0}; nothing was deployed")]
    Definition(#[from] FlowError),
    /// No flow of that name is deployed.
    #[error("no flow named {0:?} is deployed")]
    NotFound(String),
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for FlowsError {
    fn from(error: StoreError) -> Self {
        FlowsError::Store(error)
    }
}

/// A place in a deployed flow's definition that names an alias or uses any valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredUse {
    /// The flow.
    pub flow: String,
    /// The 1-based step, when the use is in a step.
    pub step: Option<usize>,
    /// What the place is (`sign step`, `receiver client certificate`, …).
    pub place: String,
    /// The flow's receiver URL: the partner affected.
    pub partner: String,
    /// Whether this use is "any valid key" rather than the alias by name.
    pub any_valid_key: bool,
}

/// Where an alias is used: by name or through "any valid key" in deployed flows, and what
/// nodes observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    /// The alias.
    pub alias: Alias,
    /// Places in deployed flows.
    pub declared: Vec<DeclaredUse>,
    /// (flow, alias, version, partner) with the count and last time of use, from every node.
    pub observed: Vec<UsageRecord>,
}

/// Flow operations over a keystore's store.
#[derive(Clone)]
pub struct Flows {
    keystore: Keystore,
}

impl std::fmt::Debug for Flows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flows").finish_non_exhaustive()
    }
}

impl Flows {
    /// Operations on the store behind `keystore`.
    pub fn new(keystore: Keystore) -> Self {
        Flows { keystore }
    }

    /// Deploys a flow file: parses it, checks every alias it names against the keystore,
    /// and stores it (replacing a flow of the same name, which nodes then rebuild).
    ///
    /// # Errors
    /// Forbidden roles ([`Action::ManageFlows`]: developer, admin), an invalid file or an
    /// unknown alias ([`FlowsError::Definition`], with line and field), store errors.
    pub async fn deploy(&self, actor: &Actor, source: &str) -> Result<FlowRecord, FlowsError> {
        authorize(actor.role, Action::ManageFlows, None)?;
        let entries = self.keystore.store().list_entries().await?;
        let kind_of = |alias: &Alias| entries.iter().find(|e| &e.alias == alias).map(|e| e.kind);
        let flow = flow::parse_and_check(source, kind_of)?;
        Ok(self.keystore.store().deploy_flow(flow.name.as_str(), source, actor, self.keystore.now()).await?)
    }

    /// Every deployed flow, by name.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<FlowRecord>, FlowsError> {
        authorize(actor.role, Action::Read, None)?;
        Ok(self.keystore.store().flows().await?)
    }

    /// One deployed flow.
    ///
    /// # Errors
    /// [`FlowsError::NotFound`], store errors.
    pub async fn show(&self, actor: &Actor, name: &str) -> Result<FlowRecord, FlowsError> {
        authorize(actor.role, Action::Read, None)?;
        self.keystore.store().flow(name).await?.ok_or_else(|| FlowsError::NotFound(name.to_owned()))
    }

    /// Stops, starts or restarts a flow on every node, or on node `node` alone.
    ///
    /// # Errors
    /// Forbidden roles, [`FlowsError::NotFound`], store errors.
    pub async fn change(&self, actor: &Actor, name: &str, change: FlowChange, node: Option<&str>) -> Result<FlowRecord, FlowsError> {
        authorize(actor.role, Action::ManageFlows, None)?;
        let store = self.keystore.store();
        let now = self.keystore.now();
        let changed = match node {
            None => store.set_flow_state(name, change, actor, now).await,
            Some(node) => store.set_flow_state_on_node(name, node, change, actor, now).await,
        };
        changed.map_err(|e| not_found(e, name))
    }

    /// Removes a flow from every node.
    ///
    /// # Errors
    /// Forbidden roles, [`FlowsError::NotFound`], store errors.
    pub async fn undeploy(&self, actor: &Actor, name: &str) -> Result<(), FlowsError> {
        authorize(actor.role, Action::ManageFlows, None)?;
        self.keystore
            .store()
            .undeploy_flow(name, actor, self.keystore.now())
            .await
            .map_err(|e| not_found(e, name))
    }

    /// Every node that has written a heartbeat.
    ///
    /// # Errors
    /// Store errors.
    pub async fn nodes(&self, actor: &Actor) -> Result<Vec<NodeRecord>, FlowsError> {
        authorize(actor.role, Action::Read, None)?;
        Ok(self.keystore.store().nodes().await?)
    }

    /// Where `alias` is used: every deployed flow's step or channel that names it, every
    /// flow that uses any valid key (decrypt steps, client certificates without an alias)
    /// when the alias is a key pair, and what nodes observed.
    ///
    /// # Errors
    /// Unknown aliases, store errors.
    pub async fn usage(&self, actor: &Actor, alias: &Alias) -> Result<UsageReport, FlowsError> {
        authorize(actor.role, Action::Read, None)?;
        let entry = self
            .keystore
            .store()
            .entry(alias)
            .await?
            .ok_or_else(|| DomainError::EntryNotFound { alias: alias.clone() })?;
        let mut declared = Vec::new();
        for record in self.keystore.store().flows().await? {
            // A stored flow was valid when deployed; one that no longer parses names nothing.
            let Ok(flow) = flow::parse(&record.source) else { continue };
            // The partner a use affects: the sender for the response path, else the
            // receiver; by its declared name, or its URL.
            let receiver = flow.receiver.partner.clone().unwrap_or_else(|| flow.receiver.url.clone());
            let sender = flow.sender_partner.clone().unwrap_or_else(|| "sender".to_owned());
            let partner = |place: &str| if place.starts_with("response") { sender.clone() } else { receiver.clone() };
            for site in flow.aliases().into_iter().filter(|site| &site.alias == alias) {
                declared.push(DeclaredUse {
                    flow: record.name.clone(),
                    step: site.step,
                    place: site.place.to_owned(),
                    partner: partner(site.place),
                    any_valid_key: false,
                });
            }
            if entry.kind == EntryKind::KeyPair {
                for site in flow.uses_any_valid_key() {
                    declared.push(DeclaredUse {
                        flow: record.name.clone(),
                        step: site.step,
                        place: site.place.to_owned(),
                        partner: partner(site.place),
                        any_valid_key: true,
                    });
                }
            }
        }
        let observed = self.keystore.store().usage(Some(alias.as_str())).await?;
        Ok(UsageReport { alias: alias.clone(), declared, observed })
    }
}

fn not_found(error: StoreError, name: &str) -> FlowsError {
    if error.is_not_found() { FlowsError::NotFound(name.to_owned()) } else { FlowsError::Store(error) }
}
