//! Test fixtures for keyward's own tests (feature `testing`): a small PKI made with rcgen
//! at run time, and a partner HTTPS server on loopback that can require client
//! certificates from chosen CAs and records the client certificates it saw.
//!
//! Everything here panics on failure: it is for tests only.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use keyward_crypto::{Certificate, Chain, PrivateKey};
use keyward_domain::{Alias, VersionId, VersionState};
use keyward_keystore::KeyPairVersion;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA: parameters, key and certificate.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// Its certificate.
    pub certificate: Certificate,
}

fn params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Test Partner");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.use_authority_key_identifier_extension = true;
    params
}

impl Ca {
    /// A self-signed CA named `cn`.
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = params(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let certificate = Certificate::from_der(params.self_signed(&key).unwrap().der()).unwrap();
        Ca { params, key, certificate }
    }

    /// A leaf named `cn` issued by this CA, with `ip` as IP SAN when given; returns the
    /// private key (PKCS#8 DER) and the chain (leaf, CA).
    pub fn issue(&self, cn: &str, ip: Option<&str>) -> (Vec<u8>, Vec<Certificate>) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = params(cn);
        if let Some(ip) = ip {
            params.subject_alt_names = vec![SanType::IpAddress(ip.parse().unwrap())];
        }
        let leaf = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key)).unwrap();
        (key.serialize_der(), vec![Certificate::from_der(leaf.der()).unwrap(), self.certificate.clone()])
    }

    /// A key and chain named `cn` issued by this CA, as PEM (key first), the way
    /// `keyward keys import` reads them.
    pub fn issue_pem(&self, cn: &str) -> Vec<u8> {
        let (key, chain) = self.issue(cn, None);
        let mut pem = pem_block("PRIVATE KEY", &key);
        for certificate in &chain {
            pem.push_str(&certificate.to_pem());
        }
        pem.into_bytes()
    }

    /// A client key pair version for `alias` issued by this CA.
    pub fn client(&self, alias: &str, version: u32) -> KeyPairVersion {
        let (key, chain) = self.issue(&format!("{alias} v{version}"), None);
        KeyPairVersion {
            alias: Alias::parse(alias).unwrap(),
            version: VersionId(version),
            state: VersionState::Active,
            key: PrivateKey::from_pkcs8_der(&key).unwrap(),
            chain: Chain::new(chain).unwrap(),
        }
    }
}

/// What a partner received: the client certificate's subject and the body of each request.
pub type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A partner HTTPS server on 127.0.0.1.
pub struct Partner {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA certificate of its server certificate.
    pub server_ca: Certificate,
    /// Subjects of the client certificates of the requests it answered, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// The requests it answered: the client certificate's subject and the body. Every
    /// answer is 200 with the client certificate's subject as body.
    pub bodies: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Partner {
    /// Starts a server whose certificate (for 127.0.0.1) a fresh CA issued; it requires
    /// client certificates from `client_cas`, or none when empty, and answers every
    /// request with 200.
    pub async fn start(client_cas: &[&Certificate]) -> Partner {
        Partner::start_with(&Ca::new("Partner Server CA"), client_cas).await
    }

    /// Like [`Partner::start`], with a server certificate that `server_ca` issues.
    pub async fn start_with(server_ca: &Ca, client_cas: &[&Certificate]) -> Partner {
        let (key, chain) = server_ca.issue("partner server", Some("127.0.0.1"));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_cas.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in client_cas {
                roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        };
        let chain: Vec<CertificateDer<'static>> = chain.iter().map(|c| CertificateDer::from(c.der().to_vec())).collect();
        let config = builder
            .with_single_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let recorded_bodies = Arc::clone(&bodies);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                let recorded = Arc::clone(&recorded);
                let recorded_bodies = Arc::clone(&recorded_bodies);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let subject = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| Certificate::from_der(leaf).unwrap().subject())
                        .unwrap_or_default();
                    // HTTP/1.1 with keep-alive: requests until the client closes.
                    let mut buffer = Vec::new();
                    loop {
                        let Some((_, body)) = read_request(&mut tls, &mut buffer).await else { return };
                        recorded.lock().unwrap().push(subject.clone());
                        recorded_bodies.lock().unwrap().push((subject.clone(), body));
                        let answer = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}", subject.len(), subject);
                        if tls.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Partner { addr, server_ca: server_ca.certificate.clone(), seen, bodies, task }
    }

    /// Its URL with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// PEM with `label` around `der`.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// Reads one HTTP/1.1 request (head and a `Content-Length` body) from `stream`, keeping
/// bytes of the next request in `buffer`; `None` when the peer closes first. Returns the
/// head as text and the body.
pub async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = header(&head, "content-length").and_then(|value| value.parse().ok()).unwrap_or(0);
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buffer[head_end..head_end + length].to_vec();
    buffer.drain(..head_end + length);
    Some((head, body))
}

/// The value of header `name` (any case) in a request head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        line.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
    })
}
