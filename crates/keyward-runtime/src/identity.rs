//! Client identities for outbound mutual TLS that follow the keystore live.
//!
//! A node holds one [`LiveKeys`]: an atomically swappable [`KeyRing`], the snapshot of every
//! key pair's active version that is valid now. When the keystore changes, the node reads
//! the key pairs again and swaps in a new ring; nothing else is restarted.
//!
//! A channel's TLS configuration carries a [`LiveClientCert`], rustls's
//! [`ResolvesClientCert`] for one alias or for "any valid key". rustls asks it for a
//! certificate during every handshake that requests one, and it answers from the ring
//! current at that moment, so the next new connection after a swap presents the new
//! version. Connections already open keep the identity they were opened with; the channel
//! replaces its connection pool when the identity it would present changes (see the
//! node), which drains them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use keyward_domain::{Alias, VersionId};
use keyward_keystore::KeyPairVersion;
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// Why a key pair cannot serve as a TLS client identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// rustls (aws-lc-rs) did not accept the private key.
    #[error("{alias} version {version}: the private key cannot sign TLS handshakes: {reason}")]
    UnusableKey {
        /// The alias.
        alias: Alias,
        /// The version.
        version: VersionId,
        /// What rustls said.
        reason: String,
    },
}

/// One key pair version ready to be presented as a client certificate.
pub struct ClientKey {
    alias: Alias,
    version: VersionId,
    subject: String,
    pair: KeyPairVersion,
    certified: Arc<CertifiedKey>,
    /// The subject and issuer names (DER) of every certificate in the chain: a server
    /// that names one of them as an acceptable CA accepts this chain.
    names: Vec<Vec<u8>>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("alias", &self.alias)
            .field("version", &self.version)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Prepares a key pair version for TLS.
    ///
    /// # Errors
    /// [`IdentityError::UnusableKey`] when rustls's provider does not load the key.
    pub fn new(pair: &KeyPairVersion) -> Result<Self, IdentityError> {
        let unusable = |reason: String| IdentityError::UnusableKey {
            alias: pair.alias.clone(),
            version: pair.version,
            reason,
        };
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.key.pkcs8_der().to_vec()));
        let signing_key = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| unusable(e.to_string()))?;
        let chain: Vec<CertificateDer<'static>> = pair
            .chain
            .certificates()
            .iter()
            .map(|certificate| CertificateDer::from(certificate.der().to_vec()))
            .collect();
        let mut names = Vec::new();
        for certificate in pair.chain.certificates() {
            names.push(certificate.subject_der().to_vec());
            names.push(certificate.issuer_der().to_vec());
        }
        Ok(ClientKey {
            alias: pair.alias.clone(),
            version: pair.version,
            subject: pair.chain.leaf().subject(),
            pair: pair.clone(),
            certified: Arc::new(CertifiedKey::new(chain, signing_key)),
            names,
        })
    }

    /// The alias.
    pub fn alias(&self) -> &Alias {
        &self.alias
    }

    /// The version.
    pub fn version(&self) -> VersionId {
        self.version
    }

    /// The leaf certificate's subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The key pair version itself, for signing.
    pub fn pair(&self) -> &KeyPairVersion {
        &self.pair
    }

    /// Whether a server that accepts client certificates from the CAs named `hints` (DER
    /// names, as in a TLS CertificateRequest) accepts this chain. No hints: any chain.
    pub fn accepted_by(&self, hints: &[&[u8]]) -> bool {
        hints.is_empty()
            || hints.iter().any(|hint| {
                self.names
                    .iter()
                    .any(|name| name.as_slice() == *hint || name_contents(name) == Some(*hint))
            })
    }

    /// Whether the key can sign with one of `schemes`.
    fn supports(&self, schemes: &[SignatureScheme]) -> bool {
        self.certified.key.choose_scheme(schemes).is_some()
    }
}

/// The contents of a DER `Name` without its SEQUENCE header: some peers send acceptable-CA
/// names in that form.
fn name_contents(name: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = name.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let skip = if first < 0x80 { 0 } else { usize::from(first & 0x7f) };
    rest.get(skip..)
}

/// The key pairs a node presents: each key pair's active version that is valid, by alias,
/// as read when the keystore's change marker was `marker`.
#[derive(Debug, Default)]
pub struct KeyRing {
    marker: i64,
    keys: BTreeMap<Alias, Arc<ClientKey>>,
}

impl KeyRing {
    /// A ring of `pairs` read at change marker `marker`. Pairs whose keys rustls cannot
    /// use are left out and returned with the reason, so that one bad key does not stop
    /// the others.
    pub fn new(marker: i64, pairs: &[KeyPairVersion]) -> (Self, Vec<IdentityError>) {
        let mut keys = BTreeMap::new();
        let mut problems = Vec::new();
        for pair in pairs {
            match ClientKey::new(pair) {
                Ok(key) => {
                    keys.insert(pair.alias.clone(), Arc::new(key));
                }
                Err(problem) => problems.push(problem),
            }
        }
        (KeyRing { marker, keys }, problems)
    }

    /// The keystore change marker this ring was read at.
    pub fn marker(&self) -> i64 {
        self.marker
    }

    /// The key for `alias`, if it has a valid active version.
    pub fn get(&self, alias: &Alias) -> Option<&Arc<ClientKey>> {
        self.keys.get(alias)
    }

    /// Every key, by alias.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<ClientKey>> {
        self.keys.values()
    }

    /// The key `choice` presents to a server that named `hints` as acceptable CAs and
    /// offered `schemes`.
    pub fn choose(&self, choice: &ClientChoice, hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<&Arc<ClientKey>> {
        match choice {
            ClientChoice::Alias(alias) => self.get(alias).filter(|key| key.supports(schemes)),
            ClientChoice::AnyValidKey => self
                .keys
                .values()
                .find(|key| key.accepted_by(hints) && key.supports(schemes)),
        }
    }
}

/// The node's current [`KeyRing`], replaced as a whole.
#[derive(Debug, Default)]
pub struct LiveKeys(ArcSwap<KeyRing>);

impl LiveKeys {
    /// Starts with `ring`.
    pub fn new(ring: KeyRing) -> Arc<Self> {
        Arc::new(LiveKeys(ArcSwap::from_pointee(ring)))
    }

    /// The ring now.
    pub fn current(&self) -> Arc<KeyRing> {
        self.0.load_full()
    }

    /// Makes `ring` the current one; handshakes from now on use it.
    pub fn replace(&self, ring: KeyRing) {
        self.0.store(Arc::new(ring));
    }
}

/// Which key pair a channel presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientChoice {
    /// The active version of this alias.
    Alias(Alias),
    /// Any valid key pair whose chain the server's acceptable CAs name (the first by
    /// alias), or the first valid key pair when the server names none.
    AnyValidKey,
}

/// A rustls client-certificate resolver that answers from the node's live key ring.
pub struct LiveClientCert {
    keys: Arc<LiveKeys>,
    choice: ClientChoice,
    last: ArcSwapOption<ClientKey>,
    hints: ArcSwapOption<Vec<Vec<u8>>>,
}

impl fmt::Debug for LiveClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveClientCert").field("choice", &self.choice).finish_non_exhaustive()
    }
}

impl LiveClientCert {
    /// A resolver for `choice` over `keys`.
    pub fn new(keys: Arc<LiveKeys>, choice: ClientChoice) -> Arc<Self> {
        Arc::new(LiveClientCert {
            keys,
            choice,
            last: ArcSwapOption::empty(),
            hints: ArcSwapOption::empty(),
        })
    }

    /// What it presents.
    pub fn choice(&self) -> &ClientChoice {
        &self.choice
    }

    /// The key presented in the latest handshake that asked for a certificate, if one was.
    pub fn last_presented(&self) -> Option<Arc<ClientKey>> {
        self.last.load_full()
    }

    /// The acceptable-CA names (DER) the server sent in the latest handshake that asked for
    /// a certificate.
    pub fn last_hints(&self) -> Option<Arc<Vec<Vec<u8>>>> {
        self.hints.load_full()
    }

    /// The key this resolver would present now, to a server that names the acceptable CAs
    /// it named in the latest handshake (none before the first); a channel compares it
    /// between keystore changes to know when to replace its connections.
    pub fn would_present(&self) -> Option<(Alias, VersionId)> {
        let ring = self.keys.current();
        let key = match &self.choice {
            ClientChoice::Alias(alias) => ring.get(alias),
            ClientChoice::AnyValidKey => {
                let hints = self.hints.load();
                let hints: Vec<&[u8]> = hints.as_deref().map_or_else(Vec::new, |h| h.iter().map(Vec::as_slice).collect());
                ring.keys().find(|key| key.accepted_by(&hints))
            }
        };
        key.map(|key| (key.alias.clone(), key.version))
    }
}

impl ResolvesClientCert for LiveClientCert {
    fn resolve(&self, root_hint_subjects: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.hints
            .store(Some(Arc::new(root_hint_subjects.iter().map(|hint| hint.to_vec()).collect())));
        let ring = self.keys.current();
        let chosen = ring.choose(&self.choice, root_hint_subjects, sigschemes).cloned();
        let certified = chosen.as_ref().map(|key| Arc::clone(&key.certified));
        self.last.store(chosen);
        certified
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keyward_crypto::{Chain, KeyAlgorithm};
    use keyward_domain::{Timestamp, VersionState};

    fn pair(alias: &str, version: u32, algorithm: KeyAlgorithm) -> KeyPairVersion {
        let now = Timestamp::from_seconds(1_795_428_000);
        let (key, certificate) = keyward_crypto::generate(algorithm, &format!("CN={alias}"), 30, now).unwrap();
        KeyPairVersion {
            alias: Alias::parse(alias).unwrap(),
            version: VersionId(version),
            state: VersionState::Active,
            key,
            chain: Chain::new(vec![certificate]).unwrap(),
        }
    }

    const ALL_SCHEMES: &[SignatureScheme] = &[
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
        SignatureScheme::ED25519,
    ];

    #[test]
    fn a_named_alias_is_presented_and_follows_replacement() {
        let (ring, problems) = KeyRing::new(1, &[pair("tls-a", 1, KeyAlgorithm::EcP256)]);
        assert!(problems.is_empty());
        let keys = LiveKeys::new(ring);
        let resolver = LiveClientCert::new(Arc::clone(&keys), ClientChoice::Alias(Alias::parse("tls-a").unwrap()));
        assert!(resolver.resolve(&[], ALL_SCHEMES).is_some());
        assert_eq!(resolver.last_presented().unwrap().version(), VersionId(1));

        let (ring, _) = KeyRing::new(2, &[pair("tls-a", 2, KeyAlgorithm::EcP256)]);
        keys.replace(ring);
        assert!(resolver.resolve(&[], ALL_SCHEMES).is_some());
        assert_eq!(resolver.last_presented().unwrap().version(), VersionId(2));
        assert_eq!(resolver.would_present().unwrap().1, VersionId(2));
    }

    #[test]
    fn an_unknown_alias_or_unsupported_scheme_presents_nothing() {
        let (ring, _) = KeyRing::new(1, &[pair("tls-a", 1, KeyAlgorithm::EcP256)]);
        let keys = LiveKeys::new(ring);
        let missing = LiveClientCert::new(Arc::clone(&keys), ClientChoice::Alias(Alias::parse("nope").unwrap()));
        assert!(missing.resolve(&[], ALL_SCHEMES).is_none());
        assert!(missing.last_presented().is_none());
        let named = LiveClientCert::new(keys, ClientChoice::Alias(Alias::parse("tls-a").unwrap()));
        assert!(named.resolve(&[], &[SignatureScheme::RSA_PSS_SHA256]).is_none());
    }

    #[test]
    fn any_valid_key_follows_the_servers_acceptable_cas() {
        let a = pair("a-rsa", 1, KeyAlgorithm::Rsa2048);
        let b = pair("b-ec", 1, KeyAlgorithm::EcP256);
        let b_name = b.chain.leaf().subject_der().to_vec();
        let (ring, _) = KeyRing::new(1, &[a, b]);
        let resolver = LiveClientCert::new(LiveKeys::new(ring), ClientChoice::AnyValidKey);
        resolver.resolve(&[], ALL_SCHEMES).unwrap();
        assert_eq!(resolver.last_presented().unwrap().alias().as_str(), "a-rsa");
        resolver.resolve(&[b_name.as_slice()], ALL_SCHEMES).unwrap();
        assert_eq!(resolver.last_presented().unwrap().alias().as_str(), "b-ec");
        assert_eq!(resolver.last_hints().unwrap().as_slice(), std::slice::from_ref(&b_name));
        // The same name without its SEQUENCE header is recognised too.
        let contents = name_contents(&b_name).unwrap().to_vec();
        resolver.resolve(&[contents.as_slice()], ALL_SCHEMES).unwrap();
        assert_eq!(resolver.last_presented().unwrap().alias().as_str(), "b-ec");
        // A channel asks which key it would present: the one the server's CAs accept.
        assert_eq!(resolver.would_present().unwrap().0.as_str(), "b-ec");
        assert!(resolver.resolve(&[b"\x30\x00".as_slice()], ALL_SCHEMES).is_none());
    }
}
