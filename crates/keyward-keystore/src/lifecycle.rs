//! Keystore operations a renewal performs: generating the next key for an alias, moving a
//! key from a temporary alias to the stable one, retiring a key without a successor, and
//! activation on behalf of a running renewal.
//!
//! Activation of an alias with a running renewal goes through the renewal: plain
//! [`Keystore::activate`] refuses it (see [`Keystore::check_no_renewal`]), and the renewal
//! engine calls [`Keystore::activate_in_renewal`] when its activation step is due.

use keyward_domain::{Actor, Alias, DomainError, EntryKind, VersionId, plan_add_version};
use keyward_store::EntryOp;

use crate::KeystoreError;
use crate::service::{Keystore, MAX_VALIDITY_DAYS, describe_transitions};

/// Validity of a renewed key's self-signed certificate when the old one's cannot be read.
const DEFAULT_VALIDITY_DAYS: u32 = 365;

impl Keystore {
    /// Refuses when a renewal of `alias` is running: its activation goes through the
    /// renewal's steps.
    ///
    /// # Errors
    /// [`DomainError::RenewalInProgress`], store errors.
    pub async fn check_no_renewal(&self, alias: &Alias) -> Result<(), KeystoreError> {
        match self.store().running_renewal(alias).await? {
            Some(id) => Err(DomainError::RenewalInProgress {
                alias: alias.clone(),
                id,
                hint: "its activation goes through the renewal (keyward renew show ID), or abort the renewal first",
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Activates the newest staged version of `alias` as a step of renewal `renewal`.
    ///
    /// # Errors
    /// Domain rules; conflicts.
    pub async fn activate_in_renewal(
        &self,
        actor: &Actor,
        alias: &Alias,
        version: Option<VersionId>,
        renewal: i64,
    ) -> Result<Vec<keyward_domain::Transition>, KeystoreError> {
        let entry = self.require_entry(alias).await?;
        let transitions = entry.plan_activate(actor, version, self.now())?;
        let detail = format!("{} (renewal {renewal})", describe_transitions(&transitions));
        let op = EntryOp::Transition { transitions: transitions.clone() };
        self.commit(actor, &entry, op, "keys.activate", detail).await?;
        Ok(transitions)
    }

    /// Generates the next key pair of `alias` as a staged version: the algorithm and the
    /// subject of the current version, and a self-signed certificate as long-lived as the
    /// current one (a CA's response to the staged key's CSR replaces it when a CA signs).
    ///
    /// # Errors
    /// A certificate entry, an entry without versions, domain rules, conflicts.
    pub async fn stage_next_key(&self, actor: &Actor, alias: &Alias) -> Result<VersionId, KeystoreError> {
        let entry = self.require_entry(alias).await?;
        let current = entry.current().ok_or_else(|| KeystoreError::Invalid(format!("{alias} has no version to renew")))?;
        if entry.kind != EntryKind::KeyPair {
            return Err(KeystoreError::Invalid(format!(
                "{alias} is a certificate entry; its owner renews the key and sends the new certificate"
            )));
        }
        let (chain, sealed) = self.material(alias, current.id).await?;
        let sealed = sealed.ok_or_else(|| KeystoreError::Invalid(format!("{alias} has no private key")))?;
        let key = self.unseal(alias, current.id, &sealed)?;
        let algorithm = key.algorithm().key_algorithm().ok_or_else(|| {
            KeystoreError::Invalid(format!("{alias} uses a key type keyward cannot generate; import the new key"))
        })?;
        let leaf = chain.leaf();
        let days = (leaf.not_after().seconds() - leaf.not_before().seconds()) / 86_400;
        let days = u32::try_from(days).ok().filter(|d| (1..=MAX_VALIDITY_DAYS).contains(d)).unwrap_or(DEFAULT_VALIDITY_DAYS);
        let subject = leaf.subject();
        self.generate(actor, alias, algorithm, &subject, days, true).await
    }

    /// Generates a key pair for `alias` (which may not exist yet) with the algorithm and
    /// subject of `like`'s current version, active at once when the alias is new.
    ///
    /// # Errors
    /// As [`Keystore::stage_next_key`].
    pub async fn create_key_like(&self, actor: &Actor, alias: &Alias, like: &Alias) -> Result<VersionId, KeystoreError> {
        let model = self.require_entry(like).await?;
        let current = model.current().ok_or_else(|| KeystoreError::Invalid(format!("{like} has no version")))?;
        let (chain, sealed) = self.material(like, current.id).await?;
        let sealed = sealed.ok_or_else(|| KeystoreError::Invalid(format!("{like} has no private key")))?;
        let algorithm = self.unseal(like, current.id, &sealed)?.algorithm().key_algorithm().ok_or_else(|| {
            KeystoreError::Invalid(format!("{like} uses a key type keyward cannot generate"))
        })?;
        let subject = chain.leaf().subject();
        self.generate(actor, alias, algorithm, &subject, DEFAULT_VALIDITY_DAYS, false).await
    }

    /// Copies version `version` of `from` (key and chain) into `to` as a new staged version.
    ///
    /// # Errors
    /// A version without a private key, domain rules, conflicts.
    pub async fn copy_key(
        &self,
        actor: &Actor,
        from: &Alias,
        version: VersionId,
        to: &Alias,
    ) -> Result<VersionId, KeystoreError> {
        let (chain, sealed) = self.material(from, version).await?;
        let sealed = sealed.ok_or_else(|| KeystoreError::Invalid(format!("{from} version {version} has no private key")))?;
        let key = self.unseal(from, version, &sealed)?;
        let entry = self.store().entry(to).await?;
        plan_add_version(entry.as_ref(), to, actor, EntryKind::KeyPair, true, self.now())?;
        let detail = format!("key of {from} version {version}, subject {}", chain.leaf().subject());
        self.add_version(actor, to, entry, Some(key), chain, true, "keys.copy", detail).await
    }

    /// The certificate chain of one version (public material).
    ///
    /// # Errors
    /// Unknown alias or version, store errors.
    pub async fn chain_of(&self, alias: &Alias, version: VersionId) -> Result<keyward_crypto::Chain, KeystoreError> {
        Ok(self.material(alias, version).await?.0)
    }

    /// Retires the active version of `alias` without a successor.
    ///
    /// # Errors
    /// No active version, domain rules, conflicts.
    pub async fn retire(&self, actor: &Actor, alias: &Alias, renewal: i64) -> Result<(), KeystoreError> {
        let entry = self.require_entry(alias).await?;
        let transition = entry.plan_retire(actor, self.now())?;
        let detail = format!("{} (renewal {renewal})", describe_transitions(&[transition]));
        self.commit(actor, &entry, EntryOp::Transition { transitions: vec![transition] }, "keys.retire", detail)
            .await
    }
}
