//! Key material for the runtime: what nodes load to present client certificates and to
//! sign, and what the connectivity test uses.
//!
//! [`Keystore::key_pairs_in_use`] is the node's view: for every key pair, the active
//! version, if its certificate is valid now. It is read without an actor, because a node
//! acts for the flows an authorised person deployed, and it is read again whenever the
//! store's [`change marker`](Keystore::change_marker) moves.
//! [`Keystore::key_pair_version`] is the connectivity test's: one chosen version (active,
//! staged or by number) of one alias, for a caller who may use private keys.

use keyward_crypto::{Certificate, Chain, PrivateKey};
use keyward_domain::{Action, Actor, Alias, EntryKind, Timestamp, VersionId, VersionState, authorize};

use crate::{Keystore, KeystoreError};

/// One version of a key pair with its private key.
#[derive(Debug, Clone)]
pub struct KeyPairVersion {
    /// The alias.
    pub alias: Alias,
    /// The version.
    pub version: VersionId,
    /// Its state when read.
    pub state: VersionState,
    /// The private key.
    pub key: PrivateKey,
    /// The certificate chain, leaf first.
    pub chain: Chain,
}

/// Which version of an alias to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionChoice {
    /// The active version.
    Active,
    /// The newest staged version.
    Staged,
    /// A version by number.
    Number(VersionId),
}

impl Keystore {
    /// A marker that changes whenever anything in the store changes (every change is
    /// audited; this is the audit log's newest sequence number). Cheap to read, for nodes
    /// that check for changes.
    ///
    /// # Errors
    /// Database errors.
    pub async fn change_marker(&self) -> Result<i64, KeystoreError> {
        Ok(self.store().change_marker().await?)
    }

    /// What a TLS connectivity test needs: the client key pair version, if one is asked
    /// for, and the certificates trusted for the server (of `trust`, or of every entry).
    /// A test makes the server connect out and may use a private key, so it needs
    /// `developer` or `admin` (the roles that may sign) even without a client certificate.
    ///
    /// # Errors
    /// Forbidden roles, unknown aliases, certificate entries named as client, no version of
    /// the kind asked for.
    pub async fn connectivity_test_material(
        &self,
        actor: &Actor,
        client: Option<(&Alias, VersionChoice)>,
        trust: &[Alias],
    ) -> Result<(Option<KeyPairVersion>, Vec<Certificate>), KeystoreError> {
        authorize(actor.role, Action::Sign, None)?;
        let client = match client {
            Some((alias, choice)) => Some(self.key_pair_version(actor, alias, choice).await?),
            None => None,
        };
        Ok((client, self.trust_certificates(actor, trust).await?))
    }

    /// For every key pair, its active version when the certificate is valid at `now`,
    /// sorted by alias.
    ///
    /// # Errors
    /// Database errors, material that does not open under the master key.
    pub async fn key_pairs_in_use(&self) -> Result<Vec<KeyPairVersion>, KeystoreError> {
        let now = self.now();
        let mut pairs = Vec::new();
        for entry in self.store().list_entries().await? {
            if entry.kind != EntryKind::KeyPair {
                continue;
            }
            let Some(active) = entry.active() else { continue };
            let pair = self.load_key_pair(&entry.alias, active.id, active.state).await?;
            if valid_at(pair.chain.leaf(), now) {
                pairs.push(pair);
            }
        }
        Ok(pairs)
    }

    /// One version of the key pair `alias`, for a caller who may use private keys
    /// (`developer` or `admin`, as for signing).
    ///
    /// # Errors
    /// Forbidden roles, unknown aliases, certificate entries, no version of the kind asked
    /// for.
    pub async fn key_pair_version(
        &self,
        actor: &Actor,
        alias: &Alias,
        choice: VersionChoice,
    ) -> Result<KeyPairVersion, KeystoreError> {
        authorize(actor.role, Action::Sign, None)?;
        let entry = self.require_entry(alias).await?;
        if entry.kind != EntryKind::KeyPair {
            return Err(KeystoreError::Invalid(format!(
                "{alias} is a certificate entry; a client certificate needs a key pair"
            )));
        }
        let version = match choice {
            VersionChoice::Active => entry
                .active()
                .ok_or_else(|| KeystoreError::Invalid(format!("{alias} has no active version")))?,
            VersionChoice::Staged => entry
                .staged()
                .next()
                .ok_or_else(|| KeystoreError::Invalid(format!("{alias} has no staged version")))?,
            VersionChoice::Number(id) => entry.require_version(id)?,
        };
        self.load_key_pair(alias, version.id, version.state).await
    }

    /// The certificates to trust for a server: the leaf of every active and staged version
    /// of the `aliases`, or of every entry when `aliases` is empty, plus the other
    /// certificates of their chains that are CAs.
    ///
    /// # Errors
    /// Forbidden roles (reading needs `viewer`), unknown aliases.
    pub async fn trust_certificates(
        &self,
        actor: &Actor,
        aliases: &[Alias],
    ) -> Result<Vec<Certificate>, KeystoreError> {
        authorize(actor.role, Action::Read, None)?;
        self.trust_certificates_unchecked(aliases).await
    }

    /// [`Keystore::trust_certificates`] for a node, without an actor.
    ///
    /// # Errors
    /// Unknown aliases, database errors.
    pub async fn trust_certificates_unchecked(&self, aliases: &[Alias]) -> Result<Vec<Certificate>, KeystoreError> {
        let entries = self.entries_or_all(aliases).await?;
        let mut trusted: Vec<Certificate> = Vec::new();
        for entry in &entries {
            for version in entry.versions.iter().filter(|v| v.state != VersionState::Retired) {
                let (chain, _) = self.material(&entry.alias, version.id).await?;
                for (index, certificate) in chain.certificates().iter().enumerate() {
                    let wanted = index == 0 || certificate.is_ca();
                    if wanted && !trusted.iter().any(|known| known.der() == certificate.der()) {
                        trusted.push(certificate.clone());
                    }
                }
            }
        }
        Ok(trusted)
    }

    async fn load_key_pair(
        &self,
        alias: &Alias,
        version: VersionId,
        state: VersionState,
    ) -> Result<KeyPairVersion, KeystoreError> {
        let (chain, sealed) = self.material(alias, version).await?;
        let sealed = sealed.ok_or_else(|| KeystoreError::Corrupt {
            what: format!("{alias} version {version}"),
            detail: "a key-pair version without a private key".into(),
        })?;
        let key = self.unseal(alias, version, &sealed)?;
        Ok(KeyPairVersion { alias: alias.clone(), version, state, key, chain })
    }
}

/// Whether `certificate` is within its validity period at `now`.
pub fn valid_at(certificate: &Certificate, now: Timestamp) -> bool {
    certificate.not_before() <= now && now <= certificate.not_after()
}
