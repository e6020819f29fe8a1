//! A flow's receiver channel: HTTP or HTTPS posts to a partner, with a client certificate
//! that follows the keystore live, a trust list for the server, timeouts and retries.
//!
//! The channel owns a `reqwest` client (a connection pool) built for one client identity
//! and one set of trusted certificates. [`Channel::refresh`] runs after every keystore
//! change: when the identity the channel would present, or the certificates it trusts,
//! differ from the ones its client was built for, it builds a new client and swaps it in.
//! New requests take the new client and so open new connections with the new identity;
//! requests in flight finish on the old client, whose pooled connections close when the
//! last of them drops it. Building a new client also drops TLS session tickets, so no
//! connection resumes a session authenticated with the old certificate.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use keyward_crypto::Certificate;
use keyward_domain::{Alias, VersionId};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use crate::identity::{ClientChoice, LiveClientCert, LiveKeys};

/// How a channel reaches its partner.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The receiver's URL.
    pub url: String,
    /// The client certificate to present, if any.
    pub client: Option<ClientChoice>,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for a whole request.
    pub timeout: Duration,
    /// Attempts after the first failed one.
    pub retries: u32,
    /// Wait before the first retry; doubles for each further one.
    pub backoff: Duration,
}

/// Why a post to the partner failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel could not be set up (bad trust material, client build failure).
    #[error("the channel to {url} cannot be set up: {reason}")]
    Setup {
        /// The receiver URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Every attempt failed to get an answer.
    #[error("no answer from {url} after {attempts} attempts: {last}")]
    Unreachable {
        /// The receiver URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        last: String,
        /// Whether the last attempt timed out.
        timed_out: bool,
    },
}

/// The partner's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Its Content-Type, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// The client certificate the connection presented, if any.
    pub presented: Option<(Alias, VersionId)>,
    /// Attempts it took.
    pub attempts: u32,
}

/// A client built for one identity and one trust set.
struct Built {
    client: reqwest::Client,
    identity: Option<(Alias, VersionId)>,
    trust: Vec<Vec<u8>>,
}

/// A receiver channel.
pub struct Channel {
    config: ChannelConfig,
    resolver: Option<Arc<LiveClientCert>>,
    built: ArcSwap<Built>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("url", &self.config.url).finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel for `config` presenting client certificates from `keys` and trusting
    /// `trust` for HTTPS servers.
    ///
    /// # Errors
    /// [`ChannelError::Setup`] when a certificate cannot be a trust anchor or the client
    /// cannot be built.
    pub fn new(config: ChannelConfig, keys: &Arc<LiveKeys>, trust: &[Certificate]) -> Result<Self, ChannelError> {
        let resolver = config.client.clone().map(|choice| LiveClientCert::new(Arc::clone(keys), choice));
        let built = build(&config, resolver.as_ref(), trust)?;
        Ok(Channel { config, resolver, built: ArcSwap::from_pointee(built) })
    }

    /// The receiver URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The identity new connections present, if any.
    pub fn identity(&self) -> Option<(Alias, VersionId)> {
        self.built.load().identity.clone()
    }

    /// After a keystore change: replaces the client when the identity to present or the
    /// trusted certificates changed. Returns whether it did.
    ///
    /// # Errors
    /// [`ChannelError::Setup`]; the old client stays in use then.
    pub fn refresh(&self, trust: &[Certificate]) -> Result<bool, ChannelError> {
        let current = self.built.load();
        let identity = self.resolver.as_ref().and_then(|r| r.would_present());
        let same_trust = current.trust.len() == trust.len()
            && current.trust.iter().zip(trust).all(|(known, new)| known.as_slice() == new.der());
        if identity == current.identity && same_trust {
            return Ok(false);
        }
        self.built.store(Arc::new(build(&self.config, self.resolver.as_ref(), trust)?));
        Ok(true)
    }

    /// Posts `body` to the receiver, retrying failed attempts (no answer at all) with
    /// backoff. An HTTP error status is an answer, not retried.
    ///
    /// # Errors
    /// [`ChannelError::Unreachable`] when no attempt got an answer.
    pub async fn post(&self, body: Vec<u8>, content_type: Option<&str>) -> Result<Answer, ChannelError> {
        // Cheap to clone for each attempt.
        let body = bytes::Bytes::from(body);
        let mut wait = self.config.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Each attempt takes the client current at that moment.
            let built = self.built.load_full();
            let mut request = built.client.post(&self.config.url).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let content_type = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    match response.bytes().await {
                        Ok(bytes) => {
                            return Ok(Answer {
                                status,
                                content_type,
                                body: bytes.to_vec(),
                                presented: built.identity.clone(),
                                attempts,
                            });
                        }
                        Err(e) if attempts > self.config.retries => return Err(self.unreachable(attempts, &e)),
                        Err(_) => {}
                    }
                }
                Err(e) if attempts > self.config.retries => return Err(self.unreachable(attempts, &e)),
                Err(e) => tracing::debug!(url = %self.config.url, attempt = attempts, error = %error_chain(&e), "retrying"),
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }

    fn unreachable(&self, attempts: u32, error: &reqwest::Error) -> ChannelError {
        ChannelError::Unreachable {
            url: self.config.url.clone(),
            attempts,
            last: error_chain(error),
            timed_out: error.is_timeout(),
        }
    }
}

/// An error with its sources, which carry the useful part (the TLS alert, the refusal).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// A client for one-off posts to `url` (renewal probes): no client certificate; for an
/// https URL, the server must have a certificate from `trust`.
///
/// # Errors
/// [`ChannelError::Setup`] when nothing in `trust` can anchor an https server.
pub(crate) fn one_off_client(url: &str, timeout: Duration, trust: &[Certificate]) -> Result<reqwest::Client, ChannelError> {
    let config = ChannelConfig {
        url: url.to_owned(),
        client: None,
        connect_timeout: timeout,
        timeout,
        retries: 0,
        backoff: Duration::ZERO,
    };
    Ok(build(&config, None, trust)?.client)
}

fn build(config: &ChannelConfig, resolver: Option<&Arc<LiveClientCert>>, trust: &[Certificate]) -> Result<Built, ChannelError> {
    let setup = |reason: String| ChannelError::Setup { url: config.url.clone(), reason };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if config.url.starts_with("https://") {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for certificate in trust {
            // Certificates that cannot be anchors (unsupported keys) are skipped; the
            // others still serve.
            if let Err(e) = roots.add(CertificateDer::from(certificate.der().to_vec())) {
                tracing::debug!(subject = %certificate.subject(), error = %e, "not usable as a trust anchor");
            }
        }
        if roots.is_empty() {
            return Err(setup("no certificate to trust for the server".into()));
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(e.to_string()))?
            .with_root_certificates(roots);
        let tls = match resolver {
            Some(resolver) => tls.with_client_cert_resolver(Arc::clone(resolver) as Arc<dyn rustls::client::ResolvesClientCert>),
            None => tls.with_no_client_auth(),
        };
        builder = builder.tls_backend_preconfigured(tls);
    }
    let client = builder.build().map_err(|e| setup(error_chain(&e)))?;
    Ok(Built {
        client,
        identity: resolver.and_then(|r| r.would_present()),
        trust: trust.iter().map(|c| c.der().to_vec()).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::KeyRing;

    fn config(url: &str) -> ChannelConfig {
        ChannelConfig {
            url: url.to_owned(),
            client: None,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::from_millis(1),
        }
    }

    fn certificate(name: &str) -> Certificate {
        let now = keyward_domain::Timestamp::from_seconds(1_795_428_000);
        keyward_crypto::generate(keyward_crypto::KeyAlgorithm::EcP256, &format!("CN={name}"), 30, now).unwrap().1
    }

    #[test]
    fn a_client_is_replaced_only_when_what_it_was_built_for_changes() {
        let keys = LiveKeys::new(KeyRing::default());
        let plain = Channel::new(config("http://127.0.0.1:9/in"), &keys, &[]).unwrap();
        assert!(!plain.refresh(&[]).unwrap(), "nothing changed for a plain HTTP channel");
        let (a, b) = (certificate("a"), certificate("b"));
        let tls = Channel::new(config("https://127.0.0.1:9/in"), &keys, std::slice::from_ref(&a)).unwrap();
        assert!(!tls.refresh(std::slice::from_ref(&a)).unwrap());
        assert!(tls.refresh(&[a.clone(), b]).unwrap(), "a new trusted certificate replaces the client");
        assert!(matches!(tls.refresh(&[]), Err(ChannelError::Setup { .. })), "nothing to trust is refused");
        assert_eq!(tls.identity(), None);
    }
}
