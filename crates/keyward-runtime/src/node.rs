//! A runtime node: runs the deployed flows and follows the keystore live.
//!
//! A node keeps three things current: its [`LiveKeys`] (the key ring its TLS channels and
//! sign steps use), its running flows (parsed flow files with their channels) and the
//! keystore change marker it has applied. [`Node::sync`] brings them up to date; the task
//! from [`Node::spawn`] calls it whenever the store's [`ChangeFeed`] reports a change
//! (PostgreSQL `LISTEN/NOTIFY`; for SQLite a cheap check of one row every few
//! milliseconds), so an activation reaches the next signature and the next new TLS
//! connection without a restart. The same task writes the node's heartbeat and what it
//! observed in use (flow, alias, version, partner) once a second.
//!
//! Deployment state lives in the store; every node converges to it: a flow whose
//! generation moved (deploy, restart) is rebuilt, a stopped one answers
//! [`FlowRunError::Stopped`], an undeployed one disappears. An operator may also stop,
//! start or restart a flow on one node alone; the node reads its own state and generation
//! for the flow ([`FlowRecord::state_on`], [`FlowRecord::generation_on`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use keyward_cms::Signer;
use keyward_crypto::Certificate;
use keyward_domain::{Actor, Alias, Role, Timestamp, VersionId};
use keyward_keystore::{Keystore, KeystoreError};
use keyward_store::{ChangeFeed, FlowRecord, FlowState, NodeRecord, StoreError, UsageRecord};

use crate::channel::{Answer, Channel, ChannelConfig, ChannelError};
use crate::flow::{self, ClientAuth, Flow, Step};
use crate::identity::{ClientChoice, KeyRing, LiveKeys};

/// How often a node writes its heartbeat and usage, and the longest it waits for a change
/// notification before checking anyway.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Why a node could not start or sync.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a message through a flow failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowRunError {
    /// No flow of that name is deployed.
    #[error("no flow named {0:?} is deployed")]
    NotDeployed(String),
    /// The flow is stopped; senders should retry later.
    #[error("flow {0:?} is stopped")]
    Stopped(String),
    /// The flow's definition or channel could not be built on this node.
    #[error("flow {name:?} cannot run on this node: {reason}")]
    Broken {
        /// The flow.
        name: String,
        /// Why.
        reason: String,
    },
    /// A step failed.
    #[error("flow {name:?}, step {step} ({kind}): {reason}")]
    Step {
        /// The flow.
        name: String,
        /// The step's 1-based position.
        step: usize,
        /// Its kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// A response step failed on the receiver's answer.
    #[error("flow {name:?}, response step {step} ({kind}): {reason}")]
    ResponseStep {
        /// The flow.
        name: String,
        /// The response step's 1-based position.
        step: usize,
        /// Its kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// The receiver gave no answer.
    #[error(transparent)]
    Receiver(#[from] ChannelError),
}

/// A deployed flow as this node runs it.
#[derive(Debug)]
pub struct RunningFlow {
    /// The stored record it was built from.
    pub record: FlowRecord,
    /// The parsed flow, or why it could not be built here.
    built: Result<(Flow, Arc<Channel>), String>,
}

impl RunningFlow {
    /// The parsed flow, when it could be built.
    pub fn flow(&self) -> Option<&Flow> {
        self.built.as_ref().ok().map(|(flow, _)| flow)
    }

    /// Why it could not be built on this node.
    pub fn problem(&self) -> Option<&str> {
        self.built.as_ref().err().map(String::as_str)
    }
}

/// Trust lists read during one sync, with their certificates.
type TrustLists = Vec<(Vec<Alias>, Vec<Certificate>)>;

/// Counts of (flow, alias, version, partner) uses not yet written.
type Observed = BTreeMap<(String, String, u32, String), (i64, Timestamp)>;

/// A runtime node.
pub struct Node {
    id: String,
    address: String,
    keystore: Keystore,
    actor: Actor,
    started_at: Timestamp,
    keys: Arc<LiveKeys>,
    flows: ArcSwap<BTreeMap<String, Arc<RunningFlow>>>,
    applied: AtomicI64,
    observed: Mutex<Observed>,
    syncing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.id).field("address", &self.address).finish_non_exhaustive()
    }
}

impl Node {
    /// Starts a node named `id` that serves flows at `address` and syncs it once.
    ///
    /// # Errors
    /// Keystore and store errors of the first sync.
    pub async fn start(keystore: Keystore, id: String, address: String) -> Result<Arc<Node>, NodeError> {
        let node = Arc::new(Node {
            actor: Actor::new(format!("node:{id}"), Role::Developer),
            started_at: keystore.now(),
            id,
            address,
            keystore,
            keys: LiveKeys::new(KeyRing::default()),
            flows: ArcSwap::from_pointee(BTreeMap::new()),
            applied: AtomicI64::new(-1),
            observed: Mutex::new(BTreeMap::new()),
            syncing: tokio::sync::Mutex::new(()),
        });
        node.sync().await?;
        node.heartbeat().await?;
        Ok(node)
    }

    /// The node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The keystore change marker this node has applied.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The node's key ring now.
    pub fn keys(&self) -> &Arc<LiveKeys> {
        &self.keys
    }

    /// The flows this node runs now.
    pub fn flows(&self) -> Arc<BTreeMap<String, Arc<RunningFlow>>> {
        self.flows.load_full()
    }

    /// Brings keys and flows up to the store's current state. Returns whether anything
    /// was read (the change marker had moved).
    ///
    /// # Errors
    /// Keystore and store errors; the node keeps its previous state then.
    pub async fn sync(&self) -> Result<bool, NodeError> {
        let _one_at_a_time = self.syncing.lock().await;
        let marker = self.keystore.change_marker().await?;
        if marker == self.applied() {
            return Ok(false);
        }
        let pairs = self.keystore.key_pairs_in_use().await?;
        let (ring, problems) = KeyRing::new(marker, &pairs);
        for problem in problems {
            tracing::warn!(node = %self.id, %problem, "key pair left out of the key ring");
        }
        self.keys.replace(ring);

        let previous = self.flows.load_full();
        let mut next = BTreeMap::new();
        // Flows often share a trust list; each list is read once per sync.
        let mut trust_lists: TrustLists = Vec::new();
        for record in self.keystore.store().flows().await? {
            let running = match previous.get(&record.name) {
                Some(old)
                    if old.record.generation_on(&self.id) == record.generation_on(&self.id)
                        && old.record.source == record.source =>
                {
                    if let Ok((flow, channel)) = &old.built {
                        let trust = self.trust(flow, &mut trust_lists).await?;
                        if let Err(e) = channel.refresh(&trust) {
                            tracing::warn!(node = %self.id, flow = %record.name, error = %e, "channel kept its previous client");
                        }
                    }
                    RunningFlow { built: old.built.clone(), record }
                }
                _ => self.build(record, &mut trust_lists).await?,
            };
            next.insert(running.record.name.clone(), Arc::new(running));
        }
        self.flows.store(Arc::new(next));
        self.applied.store(marker, Ordering::Release);
        tracing::debug!(node = %self.id, marker, "synced");
        Ok(true)
    }

    /// The certificates a flow's channel trusts for its server: none for plain HTTP.
    async fn trust(&self, flow: &Flow, known: &mut TrustLists) -> Result<Vec<Certificate>, NodeError> {
        if !flow.receiver.url.starts_with("https://") {
            return Ok(Vec::new());
        }
        if let Some((_, certificates)) = known.iter().find(|(aliases, _)| *aliases == flow.receiver.trust) {
            return Ok(certificates.clone());
        }
        let certificates = self.keystore.trust_certificates_unchecked(&flow.receiver.trust).await?;
        known.push((flow.receiver.trust.clone(), certificates.clone()));
        Ok(certificates)
    }

    async fn build(&self, record: FlowRecord, trust_lists: &mut TrustLists) -> Result<RunningFlow, NodeError> {
        let flow = match flow::parse(&record.source) {
            Ok(flow) => flow,
            Err(e) => return Ok(RunningFlow { built: Err(e.to_string()), record }),
        };
        let trust = self.trust(&flow, trust_lists).await?;
        let config = ChannelConfig {
            url: flow.receiver.url.clone(),
            client: match &flow.receiver.client {
                ClientAuth::None => None,
                ClientAuth::Alias(alias) => Some(ClientChoice::Alias(alias.clone())),
                ClientAuth::AnyValidKey => Some(ClientChoice::AnyValidKey),
            },
            connect_timeout: flow.receiver.connect_timeout,
            timeout: flow.receiver.timeout,
            retries: flow.receiver.retries,
            backoff: flow.receiver.backoff,
        };
        let built = Channel::new(config, &self.keys, &trust).map(|channel| (flow, Arc::new(channel))).map_err(|e| e.to_string());
        Ok(RunningFlow { built, record })
    }

    /// Runs one message through flow `name`: its steps, then the post to its receiver,
    /// whose answer it returns.
    ///
    /// # Errors
    /// [`FlowRunError`]: not deployed, stopped, broken, a step failed, no answer.
    pub async fn handle(&self, name: &str, body: Vec<u8>, content_type: Option<&str>) -> Result<Answer, FlowRunError> {
        let running = self.flows.load().get(name).cloned().ok_or_else(|| FlowRunError::NotDeployed(name.to_owned()))?;
        if running.record.state_on(&self.id) == FlowState::Stopped {
            return Err(FlowRunError::Stopped(name.to_owned()));
        }
        let (flow, channel) = running
            .built
            .as_ref()
            .map_err(|reason| FlowRunError::Broken { name: name.to_owned(), reason: reason.clone() })?;
        let mut used: Vec<(Alias, VersionId)> = Vec::new();
        let payload = self.run_steps(&flow.steps, body, &mut used).await.map_err(|(step, kind, reason)| {
            FlowRunError::Step { name: name.to_owned(), step, kind, reason }
        })?;
        let mut answer = channel.post(payload, content_type).await?;
        if let Some(presented) = &answer.presented {
            used.push(presented.clone());
        }
        if !flow.response_steps.is_empty() && (200..300).contains(&answer.status) {
            let body = std::mem::take(&mut answer.body);
            answer.body = self.run_steps(&flow.response_steps, body, &mut used).await.map_err(|(step, kind, reason)| {
                FlowRunError::ResponseStep { name: name.to_owned(), step, kind, reason }
            })?;
            if matches!(flow.response_steps.last(), Some(Step::Sign { .. } | Step::Encrypt { .. })) {
                answer.content_type = Some("application/pkcs7-mime".to_owned());
            }
        }
        self.observe(name, channel.url(), &used);
        Ok(answer)
    }

    /// Runs `payload` through `steps`; on failure, the 1-based step, its kind and why.
    async fn run_steps(
        &self,
        steps: &[Step],
        mut payload: Vec<u8>,
        used: &mut Vec<(Alias, VersionId)>,
    ) -> Result<Vec<u8>, (usize, &'static str, String)> {
        for (index, step) in steps.iter().enumerate() {
            let failed = |reason: String| (index + 1, step.kind(), reason);
            payload = match step {
                Step::Sign { signers, detached } => {
                    let ring = self.keys.current();
                    let mut keys = Vec::with_capacity(signers.len());
                    for signer in signers {
                        match ring.get(&signer.alias) {
                            Some(key) => {
                                used.push((key.alias().clone(), key.version()));
                                keys.push((Arc::clone(key), signer));
                            }
                            // A signer for the next key signs only once that key is active.
                            None if signer.if_active => {}
                            None => return Err(failed(format!("{} has no valid active version", signer.alias))),
                        }
                    }
                    if keys.is_empty() {
                        return Err(failed("no signer of this step has an active, valid key".to_owned()));
                    }
                    let now = self.keystore.now();
                    let cms_signers: Vec<Signer<'_>> = keys
                        .iter()
                        .map(|(key, request)| Signer {
                            key: &key.pair().key,
                            chain: &key.pair().chain,
                            digest: request
                                .digest
                                .unwrap_or_else(|| keyward_keystore::messages::default_digest(key.pair().key.algorithm())),
                            scheme: request.scheme,
                            include: request.include,
                            signing_time: request.signing_time.then_some(now),
                        })
                        .collect();
                    keyward_cms::sign(&payload, &cms_signers, *detached).map_err(|e| failed(e.to_string()))?
                }
                Step::Verify { trust, require } => {
                    let (verification, verified) = self
                        .keystore
                        .verify(&self.actor, payload, None, trust, *require)
                        .await
                        .map_err(|e| failed(e.to_string()))?;
                    if !verified {
                        let problems: Vec<String> = verification
                            .signers
                            .iter()
                            .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.subject)))
                            .collect();
                        return Err(failed(format!("the signature does not verify ({})", problems.join("; "))));
                    }
                    verification.content
                }
                Step::Encrypt { recipients, key_transport, content_encryption } => self
                    .keystore
                    .encrypt(&self.actor, recipients, payload, *key_transport, *content_encryption)
                    .await
                    .map_err(|e| failed(e.to_string()))?,
                Step::Decrypt => {
                    let decrypted = self.keystore.decrypt(&self.actor, payload).await.map_err(|e| failed(e.to_string()))?;
                    used.push((decrypted.alias, decrypted.version));
                    decrypted.content
                }
            };
        }
        Ok(payload)
    }

    fn observe(&self, flow: &str, partner: &str, used: &[(Alias, VersionId)]) {
        let now = self.keystore.now();
        if let Ok(mut observed) = self.observed.lock() {
            for (alias, version) in used {
                let entry = observed
                    .entry((flow.to_owned(), alias.to_string(), version.0, partner.to_owned()))
                    .or_insert((0, now));
                entry.0 += 1;
                entry.1 = now;
            }
        }
    }

    /// Writes the heartbeat and the uses observed since the last one.
    ///
    /// # Errors
    /// Store errors (the observations are kept for the next attempt).
    pub async fn heartbeat(&self) -> Result<(), NodeError> {
        let flows = self.flows.load();
        let summary: Vec<String> = flows
            .values()
            .map(|f| format!("{}:{}:g{}", f.record.name, f.record.state_on(&self.id).as_str(), f.record.generation_on(&self.id)))
            .collect();
        let store = self.keystore.store();
        store
            .heartbeat(&NodeRecord {
                id: self.id.clone(),
                address: self.address.clone(),
                started_at: self.started_at,
                heartbeat_at: self.keystore.now(),
                applied_marker: self.applied(),
                flows: summary.join(" "),
            })
            .await?;
        let batch: Vec<UsageRecord> = match self.observed.lock() {
            Ok(mut observed) => std::mem::take(&mut *observed)
                .into_iter()
                .map(|((flow, alias, version, partner), (count, last_used))| UsageRecord { flow, alias, version, partner, count, last_used })
                .collect(),
            Err(_) => Vec::new(),
        };
        if !batch.is_empty()
            && let Err(e) = store.record_usage(&batch).await
        {
            if let Ok(mut observed) = self.observed.lock() {
                for record in batch {
                    let entry = observed.entry((record.flow, record.alias, record.version, record.partner)).or_insert((0, record.last_used));
                    entry.0 += record.count;
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Starts the task that follows the store: a sync after every change notification
    /// (and at least every [`HEARTBEAT`]), a heartbeat every [`HEARTBEAT`]. It ends when
    /// `shutdown` turns true.
    pub fn spawn(self: &Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let node = Arc::clone(self);
        tokio::spawn(async move {
            let mut feed: Option<ChangeFeed> = None;
            let mut last_beat = tokio::time::Instant::now();
            loop {
                if *shutdown.borrow() {
                    break;
                }
                if feed.is_none() {
                    match node.keystore.store().change_feed().await {
                        Ok(new) => feed = Some(new),
                        Err(e) => tracing::warn!(node = %node.id, error = %e, "no change feed; checking every second"),
                    }
                }
                let after = node.applied();
                let waited = match feed.as_mut() {
                    Some(feed) => tokio::select! {
                        changed = feed.wait(after, HEARTBEAT) => changed.map(|_| ()),
                        _ = shutdown.changed() => break,
                    },
                    None => tokio::select! {
                        () = tokio::time::sleep(HEARTBEAT) => Ok(()),
                        _ = shutdown.changed() => break,
                    },
                };
                if let Err(e) = waited {
                    tracing::warn!(node = %node.id, error = %e, "change feed failed; reconnecting");
                    feed = None;
                }
                if let Err(e) = node.sync().await {
                    tracing::warn!(node = %node.id, error = %e, "sync failed; retrying");
                }
                if last_beat.elapsed() >= HEARTBEAT {
                    last_beat = tokio::time::Instant::now();
                    if let Err(e) = node.heartbeat().await {
                        tracing::warn!(node = %node.id, error = %e, "heartbeat failed");
                    }
                }
            }
        })
    }
}
