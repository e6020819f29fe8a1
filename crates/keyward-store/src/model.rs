//! The values passed into and out of [`crate::Store`]: changes to apply, stored material,
//! tokens, audit records, and the runtime's deployed flows, nodes and observed uses.
//!
//! Types that carry sealed private keys or token hashes implement `Debug` by hand so that
//! logging them shows sizes, never bytes.

use std::fmt;
use std::str::FromStr;

use keyward_domain::{
    Actor, Alias, EntryKind, Owner, Revision, Role, Timestamp, Transition, VersionId, VersionState,
};

/// A version's material as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMaterial {
    /// DER certificates, leaf first, in the order they were given.
    pub chain_der: Vec<Vec<u8>>,
    /// The private key as sealed by the crypto layer; `None` for certificate entries.
    pub sealed_private_key: Option<Vec<u8>>,
}

impl fmt::Debug for StoredMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredMaterial")
            .field("chain_der", &ChainSizes(&self.chain_der))
            .field("sealed_private_key", &SealedSize(self.sealed_private_key.as_deref()))
            .finish()
    }
}

/// One change to one entry, applied by [`crate::Store::apply`] in one transaction together
/// with its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryChange {
    /// The entry changed.
    pub alias: Alias,
    /// The revision the change was planned from; `None` when `op` is [`EntryOp::Create`].
    pub expected_revision: Option<Revision>,
    /// Who makes the change (recorded as `modified_by`, `created_by` and in the audit log).
    pub actor: Actor,
    /// When (recorded as `modified_at`, `created_at` and in the audit log).
    pub at: Timestamp,
    /// What changes.
    pub op: EntryOp,
    /// What is recorded in the audit log as the action, e.g. `keys.activate`.
    pub audit_action: String,
    /// Human summary of before/after, reasons for forced operations, etc.
    pub audit_detail: String,
}

/// What an [`EntryChange`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    /// Creates the entry with its first version; the entry starts at revision 1.
    Create {
        /// What the entry holds.
        kind: EntryKind,
        /// Who provides its material.
        owner: Owner,
        /// Its first version.
        first: NewVersion,
    },
    /// Adds a version, after applying `transitions` to existing versions (typically the
    /// retirement of the active version when the new one is active).
    AddVersion {
        /// The new version.
        version: NewVersion,
        /// State changes of existing versions.
        transitions: Vec<Transition>,
    },
    /// Changes the state of existing versions (activation, restore).
    Transition {
        /// The state changes; retirements are applied before activations.
        transitions: Vec<Transition>,
    },
    /// Deletes the entry with all its versions and their material.
    Delete,
}

/// A version to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// Its number within the entry.
    pub id: VersionId,
    /// Its initial state; `activated_at` is set to the change's time when it is active.
    pub state: VersionState,
    /// Expiry of its leaf certificate.
    pub not_after: Timestamp,
    /// DER certificates, leaf first.
    pub chain_der: Vec<Vec<u8>>,
    /// The sealed private key, for key pairs.
    pub sealed_private_key: Option<Vec<u8>>,
}

impl fmt::Debug for NewVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewVersion")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("not_after", &self.not_after)
            .field("chain_der", &ChainSizes(&self.chain_der))
            .field("sealed_private_key", &SealedSize(self.sealed_private_key.as_deref()))
            .finish()
    }
}

/// An API token to store. Only the SHA-256 hash of its secret is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Unique name, recorded as the actor of the token's changes.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("hash", &"<32 bytes>")
            .finish()
    }
}

/// A stored API token, found by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
}

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// When the change was made.
    pub at: Timestamp,
    /// The acting token's name.
    pub actor: String,
    /// The acting token's role.
    pub role: Role,
    /// What was done, e.g. `keys.activate` or `tokens.create`.
    pub action: String,
    /// The entry changed, if any.
    pub alias: Option<String>,
    /// The version concerned, if any.
    pub version: Option<u32>,
    /// Human summary.
    pub detail: String,
    /// The record's SHA-256 hash, hex.
    pub hash: String,
}

/// The outcome of [`crate::Store::audit_verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// How many records were read.
    pub records: u64,
    /// The first problem found, if any.
    pub problem: Option<AuditProblem>,
}

impl AuditVerification {
    /// Whether the chain is intact.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first break found in the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    /// The sequence number where the chain breaks.
    pub seq: i64,
    /// What is wrong, e.g. "record 17 was edited (hash mismatch)".
    pub description: String,
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// Shows a chain as the sizes of its certificates.
struct ChainSizes<'a>(&'a [Vec<u8>]);

impl fmt::Debug for ChainSizes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|c| CertSize(c.len()))).finish()
    }
}

struct CertSize(usize);

impl fmt::Debug for CertSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<certificate, {} bytes>", self.0)
    }
}

/// Shows a sealed key as its size only.
struct SealedSize<'a>(Option<&'a [u8]>);

impl fmt::Debug for SealedSize<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "Some(<sealed, {} bytes>)", key.len()),
            None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_key_bytes() {
        let version = NewVersion {
            id: VersionId(1),
            state: VersionState::Active,
            not_after: Timestamp::from_seconds(0),
            chain_der: vec![vec![0x30, 0x82]],
            sealed_private_key: Some(vec![0xAB; 5]),
        };
        let shown = format!("{version:?}");
        assert!(shown.contains("<sealed, 5 bytes>"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        let material = StoredMaterial { chain_der: vec![], sealed_private_key: Some(vec![0xCD; 3]) };
        let shown = format!("{material:?}");
        assert!(shown.contains("<sealed, 3 bytes>") && !shown.contains("205"), "{shown}");
    }
}

/// Something worth an audit record that changes no entry (a private-key export, say).
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// When.
    pub at: Timestamp,
    /// What, e.g. `keys.export-private`.
    pub action: &'a str,
    /// Which entry, if any.
    pub alias: Option<&'a Alias>,
    /// Which version, if any.
    pub version: Option<VersionId>,
    /// Details.
    pub detail: &'a str,
}

/// Whether a deployed flow takes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// Running: nodes pass its messages on.
    Started,
    /// Deployed but halted: nodes refuse its messages until it is started again.
    Stopped,
}

impl FlowState {
    /// The state's name as used in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Started => "started",
            FlowState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FlowState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [FlowState::Started, FlowState::Stopped]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown flow state {s:?}; expected one of started, stopped"))
    }
}

/// A change of a deployed flow's state, applied by [`crate::Store::set_flow_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowChange {
    /// The flow becomes [`FlowState::Stopped`]; its generation stays.
    Stop,
    /// The flow becomes [`FlowState::Started`]; its generation stays.
    Start,
    /// The flow becomes [`FlowState::Started`] and its generation moves, so that every node
    /// rebuilds it.
    Restart,
}

impl FlowChange {
    /// The audit action recording this change: `flows.stop`, `flows.start` or
    /// `flows.restart`.
    pub fn audit_action(self) -> &'static str {
        match self {
            FlowChange::Stop => "flows.stop",
            FlowChange::Start => "flows.start",
            FlowChange::Restart => "flows.restart",
        }
    }

    /// The state the flow is in after the change.
    pub fn state(self) -> FlowState {
        match self {
            FlowChange::Stop => FlowState::Stopped,
            FlowChange::Start | FlowChange::Restart => FlowState::Started,
        }
    }
}

/// A deployed flow: the state every runtime node converges to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// The flow's unique name.
    pub name: String,
    /// The flow file (TOML), stored verbatim.
    pub source: String,
    /// Whether it takes messages.
    pub state: FlowState,
    /// Moves on every deploy and restart, from 1; nodes rebuild a flow when it moves.
    pub generation: i64,
    /// When the current source was deployed.
    pub deployed_at: Timestamp,
    /// Who deployed the current source.
    pub deployed_by: String,
    /// When the flow last changed (deploy, stop, start or restart).
    pub updated_at: Timestamp,
    /// Who last changed it.
    pub updated_by: String,
    /// Nodes where it was stopped, started or restarted alone, by node id.
    pub nodes: Vec<FlowOnNode>,
}

/// A flow's state on one node that an operator changed on that node alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowOnNode {
    /// The node's id.
    pub node: String,
    /// The flow's state there.
    pub state: FlowState,
    /// Restarts on that node alone.
    pub restarts: i64,
}

impl FlowRecord {
    /// The flow's state on node `node`.
    pub fn state_on(&self, node: &str) -> FlowState {
        self.nodes.iter().find(|n| n.node == node).map_or(self.state, |n| n.state)
    }

    /// The flow's generation on node `node`: its generation plus the restarts there alone.
    pub fn generation_on(&self, node: &str) -> i64 {
        self.generation + self.nodes.iter().find(|n| n.node == node).map_or(0, |n| n.restarts)
    }
}

/// A runtime node as it last reported itself with [`crate::Store::heartbeat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's unique id.
    pub id: String,
    /// Where the node serves `/flows/NAME`.
    pub address: String,
    /// When the node started.
    pub started_at: Timestamp,
    /// When it last reported.
    pub heartbeat_at: Timestamp,
    /// The change marker ([`crate::Store::change_marker`]) the node has applied.
    pub applied_marker: i64,
    /// The node's own summary of its flows, e.g. `orders:started:g3 billing:stopped:g1`.
    pub flows: String,
}

/// How often a flow used one version of an alias with one partner, as nodes observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The flow.
    pub flow: String,
    /// The alias used.
    pub alias: String,
    /// Its version.
    pub version: u32,
    /// The partner (the flow's receiver).
    pub partner: String,
    /// How many uses: passed to [`crate::Store::record_usage`], the uses since the last
    /// report; read back, the total.
    pub count: i64,
    /// When it was last used.
    pub last_used: Timestamp,
}
