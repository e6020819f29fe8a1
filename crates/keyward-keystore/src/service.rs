//! [`Keystore`]: the keystore operations.
//!
//! Every write follows the same shape: read the entry, let the domain plan the change
//! (which checks the caller's role and every rule), do the cryptography, and apply one
//! [`EntryChange`] whose audit record commits with it. A change planned from a revision
//! that someone else has changed in the meantime is refused by the store as a conflict.

use std::sync::Arc;

use keyward_crypto::{self as crypto, Certificate, Chain, Imported, MasterKey, PrivateKey};
use keyward_domain::{
    Action, Actor, Alias, DomainError, Entry, EntryKind, KeyAlgorithm, Owner, Retention, Role,
    Transition, VersionId, VersionState, authorize, authorize_some_owner, authorize_token,
    check_key_pair_material, plan_add_version,
};
use keyward_store::{
    AuditEvent, AuditRecord, AuditVerification, EntryChange, EntryOp, NewToken, NewVersion, Store,
    TokenRecord,
};

use crate::clock::Clock;
use crate::tokens::{generate_token, hash_token};
use crate::views::{EntrySummary, EntryView, VersionView};
use crate::KeystoreError;

/// Longest validity a generated self-signed certificate may have, in days.
pub const MAX_VALIDITY_DAYS: u32 = 3650;

/// Filters for [`Keystore::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only entries whose current version expires within this many days.
    pub expiring_within_days: Option<i64>,
    /// Only entries with this owner.
    pub owner: Option<Owner>,
    /// Only entries of this kind.
    pub kind: Option<EntryKind>,
}

/// Public material that anyone with read access may download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicFormat {
    /// The leaf certificate, PEM.
    CertificatePem,
    /// The leaf certificate, DER (.cer).
    CertificateDer,
    /// The whole chain as concatenated PEM certificates.
    ChainPem,
    /// The chain as a certs-only PKCS#7 (.p7b), DER.
    P7bDer,
    /// The chain as a certs-only PKCS#7, PEM.
    P7bPem,
    /// The topmost certificate of the chain (the root, when the chain is complete), PEM.
    RootPem,
    /// The same, DER.
    RootDer,
}

impl PublicFormat {
    /// Every format with its name in the API and the CLI.
    pub const ALL: [(PublicFormat, &'static str); 7] = [
        (PublicFormat::CertificatePem, "pem"),
        (PublicFormat::CertificateDer, "der"),
        (PublicFormat::ChainPem, "chain-pem"),
        (PublicFormat::P7bDer, "p7b"),
        (PublicFormat::P7bPem, "p7b-pem"),
        (PublicFormat::RootPem, "root-pem"),
        (PublicFormat::RootDer, "root-der"),
    ];

    /// The format's name.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(f, _)| *f == self).map_or("pem", |(_, name)| name)
    }

    /// Parses a format name.
    ///
    /// # Errors
    /// A message listing the known names.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
            format!("unknown export format {name:?}; expected one of {}", names.join(", "))
        })
    }
}

/// The keystore service. Cheap to clone.
#[derive(Clone)]
pub struct Keystore {
    store: Store,
    master_key: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
}

impl Keystore {
    /// A keystore over `store`, sealing private keys under `master_key`.
    pub fn new(store: Store, master_key: MasterKey, clock: Arc<dyn Clock>) -> Self {
        Self { store, master_key: Arc::new(master_key), clock }
    }

    /// The storage underneath (for the server's start-up and health checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current time as the keystore sees it.
    pub fn now(&self) -> keyward_domain::Timestamp {
        self.clock.now()
    }

    // ----- reads -------------------------------------------------------------------------

    /// Entries matching `filter`, sorted by alias.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list(&self, actor: &Actor, filter: &ListFilter) -> Result<Vec<EntrySummary>, KeystoreError> {
        authorize(actor.role, Action::Read, None)?;
        let now = self.clock.now();
        Ok(self
            .store
            .list_entries()
            .await?
            .iter()
            .filter(|e| filter.owner.is_none_or(|o| e.owner == o))
            .filter(|e| filter.kind.is_none_or(|k| e.kind == k))
            .filter(|e| filter.expiring_within_days.is_none_or(|d| e.expires_within(d, now)))
            .map(|e| EntrySummary::of(e, now))
            .collect())
    }

    /// One entry with the details of every version.
    ///
    /// # Errors
    /// Unknown alias, storage failures, unreadable stored material.
    pub async fn show(&self, actor: &Actor, alias: &Alias) -> Result<EntryView, KeystoreError> {
        authorize(actor.role, Action::Read, None)?;
        let entry = self.require_entry(alias).await?;
        let mut versions = Vec::with_capacity(entry.versions.len());
        for version in &entry.versions {
            let (chain, sealed) = self.material(alias, version.id).await?;
            // The leaf certificate carries the key's public half, so reading entries never
            // needs to unseal a private key.
            let key_algorithm = sealed.as_ref().and_then(|_| chain.leaf().key_kind()).map(|k| k.to_string());
            versions.push(VersionView {
                version: version.clone(),
                has_private_key: sealed.is_some(),
                key_algorithm,
                chain: chain.certificates().iter().map(Certificate::details).collect(),
            });
        }
        Ok(EntryView { entry, versions })
    }

    /// Public material of a version (the active one, or the newest with none active).
    ///
    /// # Errors
    /// Unknown alias or version, storage failures.
    pub async fn export_public(
        &self,
        actor: &Actor,
        alias: &Alias,
        version: Option<VersionId>,
        format: PublicFormat,
    ) -> Result<Vec<u8>, KeystoreError> {
        authorize(actor.role, Action::DownloadPublic, None)?;
        let entry = self.require_entry(alias).await?;
        let version = resolve_version(&entry, version)?;
        let (chain, _) = self.material(alias, version).await?;
        Ok(match format {
            PublicFormat::CertificatePem => chain.leaf().to_pem().into_bytes(),
            PublicFormat::CertificateDer => chain.leaf().der().to_vec(),
            PublicFormat::ChainPem => chain.to_pem().into_bytes(),
            PublicFormat::P7bDer => crypto::p7b_der(&chain),
            PublicFormat::P7bPem => crypto::p7b_pem(&chain).into_bytes(),
            PublicFormat::RootPem => chain.root().to_pem().into_bytes(),
            PublicFormat::RootDer => chain.root().der().to_vec(),
        })
    }

    /// A key pair with its chain as PKCS#12, protected by `password`. Admin only; audited.
    ///
    /// # Errors
    /// Forbidden roles, certificate entries, unknown alias or version, an empty password.
    pub async fn export_pkcs12(
        &self,
        actor: &Actor,
        alias: &Alias,
        version: Option<VersionId>,
        password: &str,
    ) -> Result<Vec<u8>, KeystoreError> {
        authorize_some_owner(actor.role, Action::ExportPrivateKey)?;
        let entry = self.require_entry(alias).await?;
        authorize(actor.role, Action::ExportPrivateKey, Some(entry.owner))?;
        let version = resolve_version(&entry, version)?;
        let (chain, sealed) = self.material(alias, version).await?;
        let sealed = sealed.ok_or_else(|| {
            KeystoreError::Invalid(format!("{alias} is a certificate entry; it has no private key to export"))
        })?;
        let key = self.unseal(alias, version, &sealed)?;
        let friendly_name = alias.to_string();
        let password = password.to_owned();
        let bytes = blocking(move || crypto::pkcs12(&key, &chain, &friendly_name, &password)).await??;
        self.store
            .record(AuditEvent {
                actor,
                at: self.clock.now(),
                action: "keys.export-private",
                alias: Some(alias),
                version: Some(version),
                detail: &format!("version {version} exported as PKCS#12"),
            })
            .await?;
        Ok(bytes)
    }

    /// A PKCS#10 certificate signing request for a key pair version (the newest staged
    /// one, else the active one, when `version` is `None`).
    ///
    /// # Errors
    /// Forbidden roles, certificate entries, unknown alias or version.
    pub async fn certificate_request(
        &self,
        actor: &Actor,
        alias: &Alias,
        version: Option<VersionId>,
    ) -> Result<String, KeystoreError> {
        authorize_some_owner(actor.role, Action::CreateRequest)?;
        let entry = self.require_entry(alias).await?;
        authorize(actor.role, Action::CreateRequest, Some(entry.owner))?;
        let version = match version {
            Some(v) => entry.require_version(v)?.id,
            None => entry.staged().next().or_else(|| entry.active()).map(|v| v.id).ok_or_else(|| {
                KeystoreError::Invalid(format!(
                    "{alias} has no staged or active version; name the version for the request with --version"
                ))
            })?,
        };
        let (chain, sealed) = self.material(alias, version).await?;
        let sealed = sealed.ok_or_else(|| {
            KeystoreError::Invalid(format!("{alias} is a certificate entry; a CSR needs a key pair"))
        })?;
        let key = self.unseal(alias, version, &sealed)?;
        Ok(crypto::certificate_request(&key, chain.leaf())?)
    }

    // ----- writes ------------------------------------------------------------------------

    /// Generates a key pair with a self-signed certificate as a new version of `alias`.
    ///
    /// # Errors
    /// Domain rules, an invalid subject or validity, storage conflicts.
    pub async fn generate(
        &self,
        actor: &Actor,
        alias: &Alias,
        algorithm: KeyAlgorithm,
        subject: &str,
        validity_days: u32,
        staged: bool,
    ) -> Result<VersionId, KeystoreError> {
        if validity_days == 0 || validity_days > MAX_VALIDITY_DAYS {
            return Err(KeystoreError::Invalid(format!(
                "validity must be between 1 and {MAX_VALIDITY_DAYS} days, not {validity_days}"
            )));
        }
        authorize_some_owner(actor.role, Action::AddVersion)?;
        let entry = self.store.entry(alias).await?;
        // Check the rules before spending time on key generation.
        plan_add_version(entry.as_ref(), alias, actor, EntryKind::KeyPair, staged, self.clock.now())?;
        let (subject, now) = (subject.to_owned(), self.clock.now());
        let (key, certificate) = blocking(move || crypto::generate(algorithm, &subject, validity_days, now)).await??;
        let chain = Chain::new(vec![certificate])?;
        let detail = format!("generated {algorithm} key, subject {}", chain.leaf().subject());
        self.add_version(actor, alias, entry, Some(key), chain, staged, "keys.create", detail).await
    }

    /// Imports a certificate, a key pair (PEM key with its chain) or a PKCS#12 file as a
    /// new version of `alias`.
    ///
    /// # Errors
    /// Unreadable input, a wrong password, a key that does not match its certificate,
    /// domain rules, storage conflicts.
    pub async fn import(
        &self,
        actor: &Actor,
        alias: &Alias,
        bytes: &[u8],
        password: Option<&str>,
        staged: bool,
    ) -> Result<VersionId, KeystoreError> {
        authorize_some_owner(actor.role, Action::AddVersion)?;
        let entry = self.store.entry(alias).await?;
        let (bytes, password) = (bytes.to_vec(), password.map(str::to_owned));
        let (key, chain) = match blocking(move || crypto::import(&bytes, password.as_deref())).await?? {
            Imported::Certificates(chain) => (None, chain),
            Imported::KeyPair { key, chain } => (Some(key), chain),
        };
        let detail = format!(
            "imported {} with subject {}",
            if key.is_some() { "key pair" } else { "certificate" },
            chain.leaf().subject()
        );
        self.add_version(actor, alias, entry, key, chain, staged, "keys.import", detail).await
    }

    /// Imports a CA's response to a certificate signing request: a new version of `alias`
    /// with the private key of the version the CSR came from and the CA's chain.
    ///
    /// The new version is staged when `staged` is asked for or when the request came from
    /// a staged version; otherwise it becomes active at once.
    ///
    /// # Errors
    /// A response that matches no key of the entry, domain rules, storage conflicts.
    pub async fn import_response(
        &self,
        actor: &Actor,
        alias: &Alias,
        bytes: &[u8],
        staged: bool,
    ) -> Result<VersionId, KeystoreError> {
        authorize_some_owner(actor.role, Action::AddVersion)?;
        let entry = self.require_entry(alias).await?;
        authorize(actor.role, Action::AddVersion, Some(entry.owner))?;
        if entry.kind != EntryKind::KeyPair {
            return Err(DomainError::KindMismatch {
                alias: alias.clone(),
                expected: entry.kind,
                got: EntryKind::KeyPair,
            }
            .into());
        }
        let chain = crypto::parse_certificates(bytes)?;
        // Newest first: a renewal's staged key is the likeliest match.
        let mut source = None;
        for version in entry.versions.iter().rev() {
            let (_, sealed) = self.material(alias, version.id).await?;
            if let Some(sealed) = sealed {
                let key = self.unseal(alias, version.id, &sealed)?;
                if crypto::key_mismatch(&key, chain.leaf()).is_none() {
                    source = Some((version.id, version.state, key));
                    break;
                }
            }
        }
        let Some((from, from_state, key)) = source else {
            return Err(DomainError::ChainMismatch {
                detail: format!(
                    "the response's certificate ({}) belongs to none of the private keys of {alias}; \
                     was the request made from another alias?",
                    chain.leaf().subject()
                ),
            }
            .into());
        };
        let staged = staged || from_state == VersionState::Staged;
        let detail = format!(
            "CA response for the key of version {from}, issuer {}",
            chain.leaf().issuer()
        );
        self.add_version(actor, alias, Some(entry), Some(key), chain, staged, "keys.import-response", detail)
            .await
    }

    /// Activates `version`, or the newest staged version: the active version retires.
    ///
    /// # Errors
    /// Domain rules; a conflict when someone else changed the entry meanwhile.
    pub async fn activate(
        &self,
        actor: &Actor,
        alias: &Alias,
        version: Option<VersionId>,
    ) -> Result<Vec<Transition>, KeystoreError> {
        authorize_some_owner(actor.role, Action::Activate)?;
        let entry = self.require_entry(alias).await?;
        self.check_no_renewal(alias).await?;
        let now = self.clock.now();
        let transitions = entry.plan_activate(actor, version, now)?;
        let detail = describe_transitions(&transitions);
        let op = EntryOp::Transition { transitions: transitions.clone() };
        self.commit(actor, &entry, op, "keys.activate", detail).await?;
        Ok(transitions)
    }

    /// Moves a retired version back to staged.
    ///
    /// # Errors
    /// Domain rules; conflicts.
    pub async fn restore(&self, actor: &Actor, alias: &Alias, version: VersionId) -> Result<Transition, KeystoreError> {
        authorize_some_owner(actor.role, Action::Restore)?;
        let entry = self.require_entry(alias).await?;
        let transition = entry.plan_restore(actor, version, self.clock.now())?;
        let detail = describe_transitions(&[transition]);
        let op = EntryOp::Transition { transitions: vec![transition] };
        self.commit(actor, &entry, op, "keys.restore", detail).await?;
        Ok(transition)
    }

    /// Deletes an entry with all its versions.
    ///
    /// # Errors
    /// Domain rules (retention of key pairs, forced deletion without reason); conflicts.
    pub async fn delete(
        &self,
        actor: &Actor,
        alias: &Alias,
        force: bool,
        reason: Option<&str>,
    ) -> Result<(), KeystoreError> {
        authorize_some_owner(actor.role, Action::Delete)?;
        let entry = self.require_entry(alias).await?;
        let plan = entry.plan_delete(actor, force, reason, self.retention().await?, self.clock.now())?;
        let versions: Vec<String> = entry.versions.iter().map(|v| format!("{}:{}", v.id, v.state)).collect();
        let detail = match &plan.reason {
            Some(reason) if plan.forced => {
                format!("forced deletion of versions [{}]; reason: {reason}", versions.join(", "))
            }
            _ => format!("deleted versions [{}]", versions.join(", ")),
        };
        self.commit(actor, &entry, EntryOp::Delete, "keys.delete", detail).await
    }

    // ----- tokens and audit --------------------------------------------------------------

    /// Creates an API token and returns it; only its hash is stored.
    ///
    /// # Errors
    /// Forbidden roles, an invalid or duplicate name.
    pub async fn create_token(&self, actor: &Actor, name: &str, role: Role) -> Result<String, KeystoreError> {
        authorize_token(actor.role, role)?;
        let token = generate_token()?;
        self.insert_token(actor, name, role, &token).await?;
        Ok(token)
    }

    /// Every token's name, role and creation time (admin).
    ///
    /// # Errors
    /// Forbidden roles, storage failures.
    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<TokenRecord>, KeystoreError> {
        authorize(actor.role, Action::ManageTokens, None)?;
        Ok(self.store.list_tokens().await?)
    }

    /// Revokes a token: requests with it are refused from now on. An admin revokes viewer,
    /// developer and admin tokens; the platform role revokes platform tokens.
    ///
    /// # Errors
    /// Forbidden roles, an unknown name, storage failures.
    pub async fn revoke_token(&self, actor: &Actor, name: &str) -> Result<(), KeystoreError> {
        authorize_some_owner(actor.role, Action::ManageTokens)
            .or_else(|_| authorize_token(actor.role, Role::Platform))?;
        let token = self
            .store
            .token_by_name(name)
            .await?
            .ok_or_else(|| KeystoreError::NotFound(format!("no token named {name:?}")))?;
        authorize_token(actor.role, token.role)?;
        Ok(self.store.revoke_token(name, actor, self.clock.now()).await?)
    }

    /// Whether the keystore has no token yet (a first start).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn has_no_tokens(&self) -> Result<bool, KeystoreError> {
        Ok(self.store.token_count().await? == 0)
    }

    /// Stores `token` with `role`, on the authority of whoever runs keyward on the server
    /// (recorded as actor `keyward`): the first admin token, platform tokens, and a new
    /// admin token when every admin token is lost. The caller creates `token` with
    /// [`crate::tokens::generate_token`] and saves it before calling this, so that a
    /// crash never leaves a stored token nobody has.
    ///
    /// # Errors
    /// An invalid or taken name, storage failures.
    pub async fn issue_token_as_operator(&self, name: &str, role: Role, token: &str) -> Result<(), KeystoreError> {
        self.insert_token(&Actor::new("keyward", Role::Admin), name, role, token).await
    }

    async fn insert_token(&self, actor: &Actor, name: &str, role: Role, token: &str) -> Result<(), KeystoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(KeystoreError::Invalid(
                "a token name is 1 to 100 printable characters".into(),
            ));
        }
        self.store
            .create_token(NewToken { name: name.to_owned(), role, hash: hash_token(token) }, actor, self.clock.now())
            .await?;
        Ok(())
    }

    // ----- settings ----------------------------------------------------------------------

    /// How long retired key pairs stay usable for decryption (and protected from deletion):
    /// the configured period, 90 days by default.
    ///
    /// # Errors
    /// Storage failures, an unreadable stored value.
    pub async fn retention(&self) -> Result<Retention, KeystoreError> {
        match self.store.setting(RETENTION_SETTING).await? {
            None => Ok(Retention::default()),
            Some(value) => std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.parse().ok())
                .map(|decrypt_days| Retention { decrypt_days })
                .ok_or_else(|| KeystoreError::Corrupt {
                    what: "the retention setting".into(),
                    detail: "not a number of days".into(),
                }),
        }
    }

    /// Changes the retention period (admin). Below 90 days only with a reason; the change
    /// and the reason are audited.
    ///
    /// # Errors
    /// Domain rules, storage failures.
    pub async fn set_retention(&self, actor: &Actor, days: i64, reason: Option<&str>) -> Result<Retention, KeystoreError> {
        let retention = Retention::plan(actor, days, reason)?;
        let before = self.retention().await?;
        let mut detail = format!("retention of retired keys: {} -> {} days", before.decrypt_days, days);
        if let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) {
            detail.push_str("; reason: ");
            detail.push_str(reason);
        }
        let event = AuditEvent {
            actor,
            at: self.clock.now(),
            action: "settings.retention",
            alias: None,
            version: None,
            detail: &detail,
        };
        self.store.put_setting(RETENTION_SETTING, days.to_string().as_bytes(), event).await?;
        Ok(retention)
    }

    // ----- the master key ----------------------------------------------------------------

    /// Checks that the master key is the one this keystore's private keys are sealed with.
    ///
    /// The first start stores a check value sealed under the master key; every later start
    /// opens it. A wrong key (another installation's `master.key`, a mistyped
    /// `KEYWARD_MASTER_KEY`) is refused at start-up instead of producing keys sealed under
    /// two different keys. Returns whether the check value was written by this call.
    ///
    /// # Errors
    /// [`KeystoreError::Invalid`] for a master key that does not match.
    pub async fn check_master_key(&self) -> Result<bool, KeystoreError> {
        if let Some(sealed) = self.store.setting(MASTER_KEY_CHECK).await? {
            return self.verify_check_value(&sealed).map(|()| false);
        }
        let sealed = self.master_key.seal(MASTER_KEY_CHECK_VALUE, MASTER_KEY_CHECK.as_bytes())?;
        if self.store.put_setting_if_absent(MASTER_KEY_CHECK, &sealed).await? {
            return Ok(true);
        }
        // Another process initialised the database at the same moment: its value decides.
        let sealed = self.store.setting(MASTER_KEY_CHECK).await?.unwrap_or_default();
        self.verify_check_value(&sealed).map(|()| false)
    }

    /// Whether a keystore has been initialised with a master key already (by
    /// [`Keystore::check_master_key`] on an earlier start).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn is_initialised(store: &Store) -> Result<bool, KeystoreError> {
        Ok(store.setting(MASTER_KEY_CHECK).await?.is_some())
    }

    fn verify_check_value(&self, sealed: &[u8]) -> Result<(), KeystoreError> {
        match self.master_key.open(sealed, MASTER_KEY_CHECK.as_bytes()) {
            Ok(value) if value.as_slice() == MASTER_KEY_CHECK_VALUE => Ok(()),
            _ => Err(KeystoreError::Invalid(
                "the master key does not match this keystore: its private keys were sealed with another key \
                 (check master.key in the data directory or KEYWARD_MASTER_KEY)"
                    .into(),
            )),
        }
    }

    /// The actor a bearer token stands for, if it is known.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Actor>, KeystoreError> {
        Ok(self
            .store
            .token_by_hash(&hash_token(token))
            .await?
            .map(|record| Actor::new(record.name, record.role)))
    }

    /// The newest audit records, newest first.
    ///
    /// # Errors
    /// Forbidden roles, storage failures.
    pub async fn audit_list(
        &self,
        actor: &Actor,
        limit: i64,
        before_seq: Option<i64>,
    ) -> Result<Vec<AuditRecord>, KeystoreError> {
        authorize(actor.role, Action::ReadAudit, None)?;
        Ok(self.store.audit_list(limit.clamp(1, 1000), before_seq).await?)
    }

    /// Recomputes the audit log's hash chain.
    ///
    /// # Errors
    /// Forbidden roles, storage failures.
    pub async fn audit_verify(&self, actor: &Actor) -> Result<AuditVerification, KeystoreError> {
        authorize(actor.role, Action::ReadAudit, None)?;
        Ok(self.store.audit_verify().await?)
    }

    // ----- helpers -----------------------------------------------------------------------

    pub(crate) async fn require_entry(&self, alias: &Alias) -> Result<Entry, KeystoreError> {
        self.store
            .entry(alias)
            .await?
            .ok_or_else(|| DomainError::EntryNotFound { alias: alias.clone() }.into())
    }

    /// The entries named `aliases`, or every entry when `aliases` is empty.
    pub(crate) async fn entries_or_all(&self, aliases: &[Alias]) -> Result<Vec<Entry>, KeystoreError> {
        if aliases.is_empty() {
            return Ok(self.store.list_entries().await?);
        }
        let mut entries = Vec::with_capacity(aliases.len());
        for alias in aliases {
            entries.push(self.require_entry(alias).await?);
        }
        Ok(entries)
    }

    pub(crate) async fn material(&self, alias: &Alias, version: VersionId) -> Result<(Chain, Option<Vec<u8>>), KeystoreError> {
        let material = self.store.material(alias, version).await?.ok_or_else(|| KeystoreError::Corrupt {
            what: format!("{alias} version {version}"),
            detail: "the version has no stored material".into(),
        })?;
        let corrupt = |detail: String| KeystoreError::Corrupt { what: format!("{alias} version {version}"), detail };
        let certificates = material
            .chain_der
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(e.to_string()))?;
        let chain = Chain::new(certificates).map_err(|e| corrupt(e.to_string()))?;
        Ok((chain, material.sealed_private_key))
    }

    pub(crate) fn unseal(&self, alias: &Alias, version: VersionId, sealed: &[u8]) -> Result<PrivateKey, KeystoreError> {
        let corrupt = |detail: String| KeystoreError::Corrupt {
            what: format!("the private key of {alias} version {version}"),
            detail,
        };
        let der = self
            .master_key
            .open(sealed, &seal_context(alias, version))
            .map_err(|e| corrupt(format!("{e} (is this the master key the keystore was created with?)")))?;
        PrivateKey::from_pkcs8_der(&der).map_err(|e| corrupt(e.to_string()))
    }

    #[allow(clippy::too_many_arguments)] // one call site per operation; a struct would only rename them
    pub(crate) async fn add_version(
        &self,
        actor: &Actor,
        alias: &Alias,
        entry: Option<Entry>,
        key: Option<PrivateKey>,
        chain: Chain,
        staged: bool,
        action: &str,
        detail: String,
    ) -> Result<VersionId, KeystoreError> {
        let kind = if key.is_some() { EntryKind::KeyPair } else { EntryKind::Certificate };
        let now = self.clock.now();
        let plan = plan_add_version(entry.as_ref(), alias, actor, kind, staged, now)?;
        if let Some(key) = &key {
            check_key_pair_material(crypto::key_mismatch(key, chain.leaf()))?;
        }
        let sealed_private_key = key
            .as_ref()
            .map(|key| self.master_key.seal(key.pkcs8_der(), &seal_context(alias, plan.version)))
            .transpose()?;
        let version = NewVersion {
            id: plan.version,
            state: plan.state,
            not_after: chain.leaf().not_after(),
            chain_der: chain.certificates().iter().map(|c| c.der().to_vec()).collect(),
            sealed_private_key,
        };
        let mut detail = format!("version {} ({}): {detail}", plan.version, plan.state);
        if !plan.transitions.is_empty() {
            detail.push_str("; ");
            detail.push_str(&describe_transitions(&plan.transitions));
        }
        let op = if plan.create_entry {
            EntryOp::Create { kind, owner: plan.owner, first: version }
        } else {
            EntryOp::AddVersion { version, transitions: plan.transitions }
        };
        self.store
            .apply(EntryChange {
                alias: alias.clone(),
                expected_revision: entry.as_ref().map(|e| e.revision),
                actor: actor.clone(),
                at: now,
                op,
                audit_action: action.into(),
                audit_detail: detail,
            })
            .await?;
        Ok(plan.version)
    }

    /// Applies `op` to an existing entry, planned from the revision it was read at.
    pub(crate) async fn commit(
        &self,
        actor: &Actor,
        entry: &Entry,
        op: EntryOp,
        action: &str,
        detail: String,
    ) -> Result<(), KeystoreError> {
        self.store
            .apply(EntryChange {
                alias: entry.alias.clone(),
                expected_revision: Some(entry.revision),
                actor: actor.clone(),
                at: self.clock.now(),
                op,
                audit_action: action.into(),
                audit_detail: detail,
            })
            .await?;
        Ok(())
    }
}

/// Name of the setting that holds the retention of retired keys, in days.
const RETENTION_SETTING: &str = "decrypt-retention-days";
/// Name of the setting that holds the sealed master-key check value.
const MASTER_KEY_CHECK: &str = "master-key-check";
/// What the check value holds once opened.
const MASTER_KEY_CHECK_VALUE: &[u8] = b"keyward master key check, version 1";

/// Runs CPU-heavy cryptography (RSA key generation, key derivation for PKCS#12 and
/// encrypted keys, parsing large inputs) on tokio's blocking pool, so that one slow
/// request does not stall the async workers serving every other request.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, KeystoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| KeystoreError::Corrupt {
        what: "a cryptographic operation".into(),
        detail: e.to_string(),
    })
}

/// The version a read means: the one asked for, else the active one, else the newest.
fn resolve_version(entry: &Entry, version: Option<VersionId>) -> Result<VersionId, KeystoreError> {
    match version {
        Some(v) => Ok(entry.require_version(v)?.id),
        None => entry
            .current()
            .map(|v| v.id)
            .ok_or_else(|| KeystoreError::Invalid(format!("{} has no versions", entry.alias))),
    }
}

/// Additional authenticated data binding a sealed key to its alias and version, so a
/// sealed key copied to another row does not open.
fn seal_context(alias: &Alias, version: VersionId) -> Vec<u8> {
    format!("keyward/private-key/v1/{alias}/{version}").into_bytes()
}

pub(crate) fn describe_transitions(transitions: &[Transition]) -> String {
    transitions
        .iter()
        .map(|t| format!("version {}: {} -> {}", t.version, t.from, t.to))
        .collect::<Vec<_>>()
        .join(", ")
}
