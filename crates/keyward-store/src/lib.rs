//! keyward's persistence: entries, versions, their material, API tokens, a hash-chained
//! audit log and the runtime's deployed flows, nodes and observed uses, in SQLite (the
//! embedded default) or PostgreSQL (several processes sharing one database).
//!
//! This is the only crate that knows SQL. [`Store`] is one type over both backends; each
//! backend has its own migrations (`migrations/sqlite`, `migrations/postgres`) and shares
//! its statements with the other (see `ops.rs`).
//!
//! # Changes
//! Every write is one database transaction that also appends its audit record. An
//! [`EntryChange`] names the entry [`Revision`] it was planned from; if the entry changed
//! since, the change is refused with [`StoreError::Conflict`], so two concurrent changes
//! planned from the same state cannot both be applied. A unique index keeps at most one
//! active version per entry whatever the caller does.
//!
//! # Audit log
//! Each record carries the SHA-256 hash of its predecessor and of its own fields (see
//! `audit.rs`); a one-row head table holds the newest record's number and hash.
//! [`Store::audit_verify`] recomputes the chain and reports edited, missing and removed
//! records.
//!
//! # Runtime
//! Deployed flows are the state every runtime node converges to; deploying, stopping,
//! starting, restarting and undeploying a flow are audited changes like any other. Node
//! heartbeats ([`Store::heartbeat`]) and observed uses ([`Store::record_usage`]) are
//! reports, not changes: they are not audited and do not move the change marker.
//!
//! # Following changes
//! The audit head's number is the change marker ([`Store::change_marker`]). A
//! [`ChangeFeed`] ([`Store::change_feed`]) waits for it to move: PostgreSQL notifies
//! listeners when a change commits, SQLite feeds read the marker every 10 ms.
//!
//! # Layout
//! - `error`: [`StoreError`].
//! - `model`: the values passed in and out ([`EntryChange`], [`StoredMaterial`], ...).
//! - `rows`: rows as stored and their conversion into domain values.
//! - `audit`: the hash chain.
//! - `feed`: [`ChangeFeed`].
//! - `sqlite`, `postgres`: connection setup, the statements that differ and each backend's
//!   half of the change feed; both compile `ops.rs`, `runtime_ops.rs` and
//!   `renewal_ops.rs` (partners and renewals), the shared statements.

mod audit;
mod error;
mod feed;
mod model;
mod postgres;
mod rows;
mod sqlite;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use keyward_domain::{Actor, Alias, Entry, Partner, Renewal, Revision, Timestamp, VersionId};
use sqlx::sqlite::SqliteConnectOptions;

pub use error::StoreError;
pub use feed::ChangeFeed;
pub use model::{
    AuditEvent, AuditProblem, AuditRecord, AuditVerification, EntryChange, EntryOp, FlowChange, FlowOnNode, FlowRecord,
    FlowState, NewToken, NewVersion, NodeRecord, StoredMaterial, TokenRecord, UsageRecord,
};

/// keyward's storage: a pool of connections to a SQLite or PostgreSQL database.
///
/// Cloning is cheap and clones share the pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Handle),
    Postgres(postgres::Handle),
}

/// Runs `$body` with `$h` bound to whichever backend handle the store has.
macro_rules! dispatch {
    ($self:ident, $h:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($h) => $body,
            Backend::Postgres($h) => $body,
        }
    };
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database named by `url` and brings its schema up to date.
    ///
    /// - `sqlite:///abs/path/keyward.db`, `sqlite://relative.db` or `sqlite:relative.db`:
    ///   a SQLite file, created if missing (its directory must exist). `sqlite::memory:`
    ///   is a private in-memory database, for tests.
    /// - `postgres://user@host:port/db` (or `postgresql://`): a PostgreSQL database.
    ///
    /// # Errors
    /// [`StoreError::Config`] for URLs of other kinds, database and migration errors.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let handle = sqlite::Handle::connect(options, in_memory).await?;
            Ok(Store { backend: Backend::Sqlite(handle) })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let handle = postgres::Handle::connect(postgres::options(url)?, None).await?;
            Ok(Store { backend: Backend::Postgres(handle) })
        } else {
            // Only the scheme is shown: the rest may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            Err(StoreError::Config(format!(
                "unsupported database URL scheme {scheme:?}; use sqlite:///path/to/keyward.db or postgres://user@host/db"
            )))
        }
    }

    /// Opens the SQLite database at `path`, creating the file if missing, and brings its
    /// schema up to date.
    ///
    /// # Errors
    /// Database and migration errors (for example a missing directory).
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new().filename(path);
        let handle = sqlite::Handle::connect(options, false).await?;
        Ok(Store { backend: Backend::Sqlite(handle) })
    }

    /// Connects to the PostgreSQL database at `url` and keeps keyward's tables in `schema`
    /// (created if missing; it becomes the connections' search path), then brings the
    /// schema up to date. Lets several keyward instances, or tests, share one database.
    ///
    /// # Errors
    /// [`StoreError::Config`] for invalid URLs or schema names (letters, digits and `_`,
    /// not starting with a digit, at most 63), database and migration errors.
    pub async fn connect_postgres_schema(url: &str, schema: &str) -> Result<Store, StoreError> {
        let handle = postgres::Handle::connect(postgres::options(url)?, Some(schema)).await?;
        Ok(Store { backend: Backend::Postgres(handle) })
    }

    /// The backend's name: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool's connections, waiting for those in use to be returned. Operations
    /// after this fail.
    pub async fn close(&self) {
        dispatch!(self, h => h.close().await)
    }

    /// All entries with their versions, sorted by alias, versions ascending.
    ///
    /// # Errors
    /// Database errors, [`StoreError::Corrupt`] for unreadable rows.
    pub async fn list_entries(&self) -> Result<Vec<Entry>, StoreError> {
        dispatch!(self, h => h.list_entries().await)
    }

    /// The entry named `alias` with its versions, if it exists.
    ///
    /// # Errors
    /// Database errors, [`StoreError::Corrupt`] for unreadable rows.
    pub async fn entry(&self, alias: &Alias) -> Result<Option<Entry>, StoreError> {
        dispatch!(self, h => h.entry(alias).await)
    }

    /// The certificates and sealed private key of one version, if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn material(&self, alias: &Alias, version: VersionId) -> Result<Option<StoredMaterial>, StoreError> {
        dispatch!(self, h => h.material(alias, version).await)
    }

    /// Applies one change and appends its audit record, in one transaction.
    ///
    /// Returns the entry's new revision: 1 after [`EntryOp::Create`], 0 after
    /// [`EntryOp::Delete`].
    ///
    /// # Errors
    /// - [`StoreError::Conflict`]: the alias already exists (create); the entry's revision
    ///   is no longer `expected_revision`; a transition's `from` state no longer holds; the
    ///   change would leave two active versions.
    /// - [`StoreError::NotFound`]: no entry with the alias (other than create).
    /// - [`StoreError::Invalid`]: a change other than create without `expected_revision`.
    /// - Database errors. Nothing is changed when an error is returned.
    pub async fn apply(&self, change: EntryChange) -> Result<Revision, StoreError> {
        dispatch!(self, h => h.apply(change).await)
    }

    /// The audit log's newest sequence number (0 when empty). Every change is audited, so
    /// this moves with every change: a cheap check for "anything new?".
    ///
    /// # Errors
    /// Database errors.
    pub async fn change_marker(&self) -> Result<i64, StoreError> {
        dispatch!(self, h => h.change_marker().await)
    }

    /// Stores a new API token (its hash only) and audits it as `tokens.create`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name (or, improbably, the hash) is taken; database
    /// errors.
    pub async fn create_token(&self, token: NewToken, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        dispatch!(self, h => h.create_token(token, actor, at).await)
    }

    /// The token whose secret hashes to `hash`, if any.
    ///
    /// # Errors
    /// Database errors, [`StoreError::Corrupt`] for an unknown stored role.
    pub async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        dispatch!(self, h => h.token_by_hash(hash).await)
    }

    /// How many tokens exist (zero on a fresh installation).
    ///
    /// # Errors
    /// Database errors.
    pub async fn token_count(&self) -> Result<i64, StoreError> {
        dispatch!(self, h => h.token_count().await)
    }

    /// The token with this name.
    ///
    /// # Errors
    /// Database failures.
    pub async fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        dispatch!(self, h => h.token_by_name(name).await)
    }

    /// Every token, oldest first (names and roles; the secrets are not stored).
    ///
    /// # Errors
    /// Database failures.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        dispatch!(self, h => h.list_tokens().await)
    }

    /// Deletes a token, with its audit record, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown name; database failures.
    pub async fn revoke_token(&self, name: &str, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        dispatch!(self, h => h.revoke_token(name, actor, at).await)
    }

    /// Appends an audit record for something that changes no entry (a private-key export).
    ///
    /// # Errors
    /// Database failures.
    pub async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
        dispatch!(self, h => h.record(event).await)
    }

    /// A keystore-wide setting written by [`Store::put_setting_if_absent`].
    ///
    /// # Errors
    /// Database failures.
    pub async fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, h => h.setting(name).await)
    }

    /// Writes (or replaces) a setting together with the audit record of the change.
    ///
    /// # Errors
    /// Database failures.
    pub async fn put_setting(&self, name: &str, value: &[u8], event: AuditEvent<'_>) -> Result<(), StoreError> {
        dispatch!(self, h => h.put_setting(name, value, event).await)
    }

    /// Writes a setting unless it exists; returns whether this call wrote it. Settings are
    /// write-once, so two processes starting on a new database agree on one value.
    ///
    /// # Errors
    /// Database failures.
    pub async fn put_setting_if_absent(&self, name: &str, value: &[u8]) -> Result<bool, StoreError> {
        dispatch!(self, h => h.put_setting_if_absent(name, value).await)
    }

    /// Up to `limit` audit records, newest first, with `seq` below `before_seq` when given
    /// (pass the last `seq` of one page to get the next).
    ///
    /// # Errors
    /// Database errors, [`StoreError::Corrupt`] for unreadable rows.
    pub async fn audit_list(&self, limit: i64, before_seq: Option<i64>) -> Result<Vec<AuditRecord>, StoreError> {
        dispatch!(self, h => h.audit_list(limit, before_seq).await)
    }

    /// Recomputes the audit chain from the first record and reports the first problem:
    /// an edited record, a missing one, or removed newest records.
    ///
    /// # Errors
    /// Database errors (a broken chain is a result, not an error).
    pub async fn audit_verify(&self) -> Result<AuditVerification, StoreError> {
        dispatch!(self, h => h.audit_verify().await)
    }

    /// Deploys a flow: stores `source` (the flow file, verbatim) under `name`, replacing the
    /// source of a flow of that name, and audits it as `flows.deploy`, in one transaction.
    /// The flow is started and its generation moves (1 for a new flow), so nodes rebuild it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn deploy_flow(&self, name: &str, source: &str, actor: &Actor, at: Timestamp) -> Result<FlowRecord, StoreError> {
        dispatch!(self, h => h.deploy_flow(name, source, actor, at).await)
    }

    /// Stops, starts or restarts a deployed flow and audits it as `flows.stop`,
    /// `flows.start` or `flows.restart`, in one transaction. A restart also moves the
    /// generation. Returns the flow as changed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no flow has this name; database failures.
    pub async fn set_flow_state(
        &self,
        name: &str,
        change: FlowChange,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<FlowRecord, StoreError> {
        dispatch!(self, h => h.set_flow_state(name, change, actor, at).await)
    }

    /// Stops, starts or restarts a flow on node `node` alone (until the next change for
    /// every node, or the next deploy). Audited like [`Store::set_flow_state`], naming the
    /// node.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown flow, database errors.
    pub async fn set_flow_state_on_node(
        &self,
        name: &str,
        node: &str,
        change: FlowChange,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<FlowRecord, StoreError> {
        dispatch!(self, h => h.set_flow_state_on_node(name, node, change, actor, at).await)
    }

    /// Removes a deployed flow and audits it as `flows.undeploy`, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no flow has this name; database failures.
    pub async fn undeploy_flow(&self, name: &str, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        dispatch!(self, h => h.undeploy_flow(name, actor, at).await)
    }

    /// Every deployed flow, sorted by name.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`] for an unknown stored state.
    pub async fn flows(&self) -> Result<Vec<FlowRecord>, StoreError> {
        dispatch!(self, h => h.flows().await)
    }

    /// The deployed flow named `name`, if any.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`] for an unknown stored state.
    pub async fn flow(&self, name: &str) -> Result<Option<FlowRecord>, StoreError> {
        dispatch!(self, h => h.flow(name).await)
    }

    /// Adds a partner (`create`) or changes one, audited.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a name taken on create, [`StoreError::NotFound`] for
    /// an unknown partner on update, database errors.
    pub async fn put_partner(&self, partner: &Partner, create: bool, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        dispatch!(self, h => h.put_partner(partner, create, actor, at).await)
    }

    /// Every partner, by name.
    ///
    /// # Errors
    /// Database errors, unreadable rows.
    pub async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        dispatch!(self, h => h.partners().await)
    }

    /// Stores a new renewal with its steps (and the flow definitions it keeps), audited;
    /// returns its number.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a renewal of the alias is already running.
    pub async fn create_renewal(&self, renewal: &Renewal, kept_flows: &[(String, String)], actor: &Actor) -> Result<i64, StoreError> {
        dispatch!(self, h => h.create_renewal(renewal, kept_flows, actor).await)
    }

    /// Writes a renewal's row and the steps at `changed_steps`, keeps more flow
    /// definitions, and appends `event`, in one transaction; returns the new revision.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the renewal's revision is no longer `renewal.revision`.
    pub async fn save_renewal(
        &self,
        renewal: &Renewal,
        changed_steps: &[u32],
        kept_flows: &[(String, String)],
        event: &AuditEvent<'_>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, h => h.save_renewal(renewal, changed_steps, kept_flows, event).await)
    }

    /// Every renewal with its steps, by number.
    ///
    /// # Errors
    /// Database errors, unreadable rows.
    pub async fn renewals(&self) -> Result<Vec<Renewal>, StoreError> {
        dispatch!(self, h => h.renewals().await)
    }

    /// One renewal with its steps.
    ///
    /// # Errors
    /// Database errors, unreadable rows.
    pub async fn renewal(&self, id: i64) -> Result<Option<Renewal>, StoreError> {
        dispatch!(self, h => h.renewal(id).await)
    }

    /// The renewals that are running, with their steps, by number.
    ///
    /// # Errors
    /// Database errors, unreadable rows.
    pub async fn running_renewals(&self) -> Result<Vec<Renewal>, StoreError> {
        dispatch!(self, h => h.running_renewals().await)
    }

    /// The number of the running renewal of `alias`, if there is one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn running_renewal(&self, alias: &Alias) -> Result<Option<i64>, StoreError> {
        dispatch!(self, h => h.running_renewal(alias).await)
    }

    /// The flow definitions a renewal keeps (flow, source), by name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn kept_flows(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, h => h.kept_flows(id).await)
    }

    /// Writes a node's report, replacing its previous one. Not audited: it does not move
    /// the change marker.
    ///
    /// # Errors
    /// Database failures.
    pub async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        dispatch!(self, h => h.heartbeat(node).await)
    }

    /// Every node's last report, sorted by id.
    ///
    /// # Errors
    /// Database failures.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        dispatch!(self, h => h.nodes().await)
    }

    /// Forgets a node (one that left). Not audited.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no node has this id; database failures.
    pub async fn remove_node(&self, id: &str) -> Result<(), StoreError> {
        dispatch!(self, h => h.remove_node(id).await)
    }

    /// Adds observed uses, in one transaction: for each (flow, alias, version, partner),
    /// the count is added to the stored one and the later last use is kept. Not audited.
    ///
    /// # Errors
    /// Database failures; nothing is recorded then.
    pub async fn record_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        dispatch!(self, h => h.record_usage(records).await)
    }

    /// Observed uses, all or those of one alias, sorted by flow, alias, version and
    /// partner.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`] for an out-of-range version.
    pub async fn usage(&self, alias: Option<&str>) -> Result<Vec<UsageRecord>, StoreError> {
        dispatch!(self, h => h.usage(alias).await)
    }

    /// A feed that waits for the change marker to move (see [`ChangeFeed::wait`]).
    ///
    /// On PostgreSQL the feed listens for notifications on a connection of its own, which
    /// it holds while it lives; on SQLite it reads the marker every 10 ms.
    ///
    /// # Errors
    /// On PostgreSQL, failing to open the listening connection or to `LISTEN`.
    pub async fn change_feed(&self) -> Result<ChangeFeed, StoreError> {
        match &self.backend {
            Backend::Sqlite(h) => Ok(ChangeFeed::sqlite(h.change_feed())),
            Backend::Postgres(h) => Ok(ChangeFeed::postgres(h.change_feed().await?)),
        }
    }
}
