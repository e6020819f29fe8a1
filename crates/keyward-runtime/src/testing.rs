//! Test fixtures for keyward's own tests (feature `testing`): a small PKI made with rcgen
//! at run time; a partner HTTPS server on loopback that can require client certificates
//! from chosen CAs (changeable while it runs, as the partner's administrator would) and
//! records the client certificates it saw; and plain-HTTP partners that judge each message
//! (a CMS verifier, a CMS decryptor) with rules the test changes while messages flow.
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

    /// Signs a PEM certificate signing request (as `keyward keys csr` writes it); returns
    /// the leaf and this CA's certificate as PEM, the way a CA answers.
    pub fn sign_request(&self, csr_pem: &str) -> String {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
        csr.params.use_authority_key_identifier_extension = true;
        let leaf = csr.signed_by(&Issuer::from_params(&self.params, &self.key)).unwrap();
        format!("{}{}", leaf.pem(), self.certificate.to_pem())
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
    config: Arc<Mutex<Arc<rustls::ServerConfig>>>,
    identity: (Vec<u8>, Vec<Certificate>),
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
        let config = Arc::new(Mutex::new(server_config(&key, &chain, client_cas)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let recorded_bodies = Arc::clone(&bodies);
        let current = Arc::clone(&config);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                // Each connection uses the trust in force when it was accepted.
                let acceptor = TlsAcceptor::from(Arc::clone(&current.lock().unwrap()));
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
        Partner { addr, server_ca: server_ca.certificate.clone(), seen, bodies, task, config, identity: (key, chain) }
    }

    /// Changes the client CAs the partner accepts, as its administrator would: new
    /// connections are checked against them (open ones are not touched).
    pub fn set_client_cas(&self, client_cas: &[&Certificate]) {
        let (key, chain) = &self.identity;
        *self.config.lock().unwrap() = server_config(key, chain, client_cas);
    }

    /// Its URL with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// A TLS server configuration for 127.0.0.1 that requires client certificates from
/// `client_cas` (none when empty).
fn server_config(key: &[u8], chain: &[Certificate], client_cas: &[&Certificate]) -> Arc<rustls::ServerConfig> {
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
    let config = builder.with_single_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()))).unwrap();
    Arc::new(config)
}

/// What a plain-HTTP partner stand-in decides about one message: `Ok(answer)` is a 200
/// with that body, `Err(reason)` a 422 with the reason.
pub type Judge = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// A partner on plain HTTP (127.0.0.1) that judges each message with a function the test
/// can replace at any time (a CMS verifier, a CMS decryptor), and counts its verdicts.
pub struct HttpPartner {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many messages it accepted and refused.
    pub verdicts: Arc<Mutex<(u64, u64)>>,
    /// The reasons of the refusals, in order.
    pub refusals: Arc<Mutex<Vec<String>>>,
    judge: Arc<Mutex<Judge>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpPartner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpPartner {
    /// Starts the partner with its first judge.
    pub async fn start(judge: Judge) -> HttpPartner {
        let judge = Arc::new(Mutex::new(judge));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let verdicts = Arc::new(Mutex::new((0, 0)));
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let (j, v, r) = (Arc::clone(&judge), Arc::clone(&verdicts), Arc::clone(&refusals));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else { return };
                let _ = tcp.set_nodelay(true);
                let (judge, verdicts, refusals) = (Arc::clone(&j), Arc::clone(&v), Arc::clone(&r));
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let Some((_, body)) = read_request(&mut tcp, &mut buffer).await else { return };
                        let current = Arc::clone(&judge.lock().unwrap());
                        let (status, answer) = match current(&body) {
                            Ok(answer) => {
                                verdicts.lock().unwrap().0 += 1;
                                ("200 OK", answer)
                            }
                            Err(reason) => {
                                verdicts.lock().unwrap().1 += 1;
                                refusals.lock().unwrap().push(reason.clone());
                                ("422 Unprocessable Entity", reason.into_bytes())
                            }
                        };
                        // One write: head and body in two would wait on Nagle and delayed ACKs.
                        let mut response = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", answer.len()).into_bytes();
                        response.extend_from_slice(&answer);
                        if tcp.write_all(&response).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HttpPartner { addr, verdicts, refusals, judge, task }
    }

    /// Replaces the judge, as the partner's administrator reconfigures the system.
    pub fn set_judge(&self, judge: Judge) {
        *self.judge.lock().unwrap() = judge;
    }

    /// Its URL with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A CMS verifier: accepts signed data when at least one signature verifies against
/// `trusted` and it carries at most `max_signatures` signatures; answers with the content.
pub fn cms_verifier(trusted: Vec<Certificate>, max_signatures: usize) -> Judge {
    Arc::new(move |message: &[u8]| {
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let now = keyward_domain::Timestamp::from_millis(i64::try_from(millis).unwrap());
        match keyward_cms::verify(message, None, &trusted, keyward_cms::Require::Any, now) {
            Ok(v) if v.signers.len() > max_signatures => {
                Err(format!("{} signatures; this partner accepts at most {max_signatures}", v.signers.len()))
            }
            Ok(v) => Ok(v.content),
            Err(e) => Err(format!("signature not verified: {e}")),
        }
    })
}

/// A CMS decryptor: decrypts enveloped data with the first of `keys` that opens it.
pub fn cms_decryptor(keys: Vec<(PrivateKey, Certificate)>) -> Judge {
    Arc::new(move |message: &[u8]| {
        let mut last = "no key".to_owned();
        for (key, certificate) in &keys {
            match keyward_cms::decrypt(message, key, certificate) {
                Ok(content) => return Ok(content),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("cannot decrypt: {last}"))
    })
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
