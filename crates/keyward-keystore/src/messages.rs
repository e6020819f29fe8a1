//! Message security over aliases: CMS signing with the active versions of one or more
//! aliases, verification against trusted entries, encryption to certificate aliases, and
//! decryption with any valid key.
//!
//! The keystore's part is choosing the material: the *active* version of each signer alias
//! at the moment of signing, and the certificates to trust. The CMS structures and the
//! cryptography are `keyward_cms`'s.

use keyward_cms::{
    ContentEncryption, DigestAlgorithm, IncludeCertificates, KeyTransport, Require, SignatureScheme, Signer,
    Verification,
};
use keyward_crypto::{Certificate, Chain, KeyKind, PrivateKey};
use keyward_domain::{Action, Actor, Alias, EntryKind, VersionId, VersionState, authorize};

use crate::service::blocking;
use crate::{Keystore, KeystoreError};

/// Most signers in one message.
pub const MAX_SIGNERS: usize = 16;

/// One signer of a message: an alias and how it signs.
#[derive(Debug, Clone)]
pub struct SignerRequest {
    /// The key pair whose active version signs.
    pub alias: Alias,
    /// Digest algorithm; by default SHA-512 for Ed25519 (RFC 8419), SHA-384 for P-384 and
    /// SHA-256 otherwise.
    pub digest: Option<DigestAlgorithm>,
    /// Signature scheme; the key's natural one when `None`.
    pub scheme: Option<SignatureScheme>,
    /// Which certificates go into the message.
    pub include: IncludeCertificates,
    /// Whether to add a signing-time attribute.
    pub signing_time: bool,
}

impl Keystore {
    /// Signs `payload` once per signer, each with its alias's active version, into one CMS
    /// SignedData (DER).
    ///
    /// # Errors
    /// Forbidden roles (signing needs `developer` or `admin`), unknown aliases, certificate
    /// entries, aliases without an active version, parameters that do not fit the key.
    pub async fn sign(
        &self,
        actor: &Actor,
        signers: &[SignerRequest],
        payload: Vec<u8>,
        detached: bool,
    ) -> Result<Vec<u8>, KeystoreError> {
        authorize(actor.role, Action::Sign, None)?;
        if signers.is_empty() || signers.len() > MAX_SIGNERS {
            return Err(KeystoreError::Invalid(format!(
                "a message is signed by 1 to {MAX_SIGNERS} aliases, not {}",
                signers.len()
            )));
        }
        let mut material: Vec<(PrivateKey, Chain, SignerRequest)> = Vec::with_capacity(signers.len());
        for request in signers {
            let (key, chain) = self.active_key_pair(&request.alias).await?;
            material.push((key, chain, request.clone()));
        }
        let now = self.now();
        let signed = blocking(move || {
            let signers: Vec<Signer<'_>> = material
                .iter()
                .map(|(key, chain, request)| Signer {
                    key,
                    chain,
                    digest: request.digest.unwrap_or_else(|| default_digest(key.algorithm())),
                    scheme: request.scheme,
                    include: request.include,
                    signing_time: request.signing_time.then_some(now),
                })
                .collect();
            keyward_cms::sign(&payload, &signers, detached)
        })
        .await??;
        Ok(signed)
    }

    /// Verifies a CMS SignedData against the certificates of the `trust` aliases, or of
    /// every entry when `trust` is empty. Trusted are the active and staged versions (so a
    /// partner's announced new certificate is accepted during its renewal) and retired
    /// versions within the retention period (so messages signed just before a renewal
    /// still verify).
    ///
    /// A message that parses always gives a [`Verification`]; whether it passed `require` is
    /// its `verified` flag.
    ///
    /// # Errors
    /// Unknown trust aliases, a message that is not CMS SignedData, detached content missing.
    pub async fn verify(
        &self,
        actor: &Actor,
        message: Vec<u8>,
        content: Option<Vec<u8>>,
        trust: &[Alias],
        require: Require,
    ) -> Result<(Verification, bool), KeystoreError> {
        authorize(actor.role, Action::Verify, None)?;
        let entries = self.entries_or_all(trust).await?;
        let now = self.now();
        let retention = self.retention().await?;
        let still_trusted = |until: Option<keyward_domain::Timestamp>| until.is_some_and(|until| retention.still_usable(until, now));
        let mut trusted: Vec<Certificate> = Vec::new();
        for entry in &entries {
            let usable = entry.versions.iter().filter(|v| v.state != VersionState::Retired || still_trusted(v.active_until));
            for version in usable {
                let (chain, _) = self.material(&entry.alias, version.id).await?;
                trusted.push(chain.leaf().clone());
            }
        }
        blocking(move || match keyward_cms::verify(&message, content.as_deref(), &trusted, require, now) {
            Ok(verification) => Ok((verification, true)),
            Err(keyward_cms::CmsError::Verification { verification, .. }) => Ok((verification, false)),
            Err(other) => Err(KeystoreError::from(other)),
        })
        .await?
    }

    /// Encrypts `payload` to the active certificate of each recipient alias (certificate
    /// or key-pair entries) as CMS EnvelopedData (AuthEnvelopedData for AES-GCM).
    ///
    /// # Errors
    /// Unknown aliases, aliases without an active version, recipients whose keys cannot
    /// receive (not RSA).
    pub async fn encrypt(
        &self,
        actor: &Actor,
        recipients: &[Alias],
        payload: Vec<u8>,
        transport: KeyTransport,
        content: ContentEncryption,
    ) -> Result<Vec<u8>, KeystoreError> {
        authorize(actor.role, Action::Encrypt, None)?;
        if recipients.is_empty() || recipients.len() > MAX_SIGNERS {
            return Err(KeystoreError::Invalid(format!(
                "a message is encrypted to 1 to {MAX_SIGNERS} recipients, not {}",
                recipients.len()
            )));
        }
        let mut certificates = Vec::with_capacity(recipients.len());
        for alias in recipients {
            let entry = self.require_entry(alias).await?;
            let active = entry.active().ok_or_else(|| {
                KeystoreError::Invalid(format!("{alias} has no active version to encrypt to"))
            })?;
            let (chain, _) = self.material(alias, active.id).await?;
            certificates.push(chain.leaf().clone());
        }
        let encrypted = blocking(move || {
            let recipients: Vec<&Certificate> = certificates.iter().collect();
            keyward_cms::encrypt(&payload, &recipients, transport, content)
        })
        .await??;
        Ok(encrypted)
    }

    /// Decrypts a CMS EnvelopedData with any valid key: the recipient is looked up among the
    /// active versions and the retired versions within the retention period of every key
    /// pair ("keep old keys at least 90 days").
    ///
    /// # Errors
    /// Forbidden roles, a message for none of the keystore's keys, a message whose key was
    /// retired beyond the retention period (named in the error), damaged messages.
    pub async fn decrypt(&self, actor: &Actor, message: Vec<u8>) -> Result<Decrypted, KeystoreError> {
        authorize(actor.role, Action::Decrypt, None)?;
        let recipients = keyward_cms::recipients(&message)?;
        let now = self.now();
        let retention = self.retention().await?;
        let mut expired: Option<String> = None;
        for entry in self.store().list_entries().await?.iter().filter(|e| e.kind == EntryKind::KeyPair) {
            for version in entry.versions.iter().rev() {
                let usable = match version.state {
                    VersionState::Active => true,
                    VersionState::Retired => version.active_until.is_some_and(|until| retention.still_usable(until, now)),
                    VersionState::Staged => false,
                };
                let (chain, sealed) = self.material(&entry.alias, version.id).await?;
                if !recipients.iter().any(|r| r.matches(chain.leaf())) {
                    continue;
                }
                if !usable {
                    expired.get_or_insert_with(|| match version.active_until {
                        Some(until) => format!(
                            "the message is encrypted for {} version {}, which was retired on {until}; retired keys \
                             decrypt for {} days after retirement, until {}",
                            entry.alias,
                            version.id,
                            retention.decrypt_days,
                            until.plus_days(retention.decrypt_days)
                        ),
                        None => format!(
                            "the message is encrypted for {} version {}, which is staged and not yet active",
                            entry.alias, version.id
                        ),
                    });
                    continue;
                }
                let Some(sealed) = sealed else { continue };
                let key = self.unseal(&entry.alias, version.id, &sealed)?;
                let certificate = chain.leaf().clone();
                let message = message.clone();
                let content = blocking(move || keyward_cms::decrypt(&message, &key, &certificate)).await??;
                return Ok(Decrypted { content, alias: entry.alias.clone(), version: version.id, state: version.state });
            }
        }
        Err(KeystoreError::Invalid(expired.unwrap_or_else(|| {
            format!(
                "the message is encrypted for none of this keystore's keys ({} recipient{})",
                recipients.len(),
                if recipients.len() == 1 { "" } else { "s" }
            )
        })))
    }

    async fn active_key_pair(&self, alias: &Alias) -> Result<(PrivateKey, Chain), KeystoreError> {
        let entry = self.require_entry(alias).await?;
        if entry.kind != EntryKind::KeyPair {
            return Err(KeystoreError::Invalid(format!("{alias} is a certificate entry; signing needs a key pair")));
        }
        let active = entry.active().ok_or_else(|| {
            KeystoreError::Invalid(format!("{alias} has no active version to sign with; activate one first"))
        })?;
        let (chain, sealed) = self.material(alias, active.id).await?;
        let sealed = sealed.ok_or_else(|| KeystoreError::Corrupt {
            what: format!("{alias} version {}", active.id),
            detail: "a key-pair version without a private key".into(),
        })?;
        Ok((self.unseal(alias, active.id, &sealed)?, chain))
    }
}

/// The digest that goes with a key when the caller names none.
pub fn default_digest(key: KeyKind) -> DigestAlgorithm {
    match key {
        KeyKind::Ed25519 => DigestAlgorithm::Sha512,
        KeyKind::EcP384 => DigestAlgorithm::Sha384,
        KeyKind::Rsa { .. } | KeyKind::EcP256 => DigestAlgorithm::Sha256,
    }
}

/// A decrypted message and the key that opened it.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The plaintext.
    pub content: Vec<u8>,
    /// The alias whose key decrypted it.
    pub alias: Alias,
    /// The version of that key.
    pub version: VersionId,
    /// Whether that version is active or retired.
    pub state: VersionState,
}
