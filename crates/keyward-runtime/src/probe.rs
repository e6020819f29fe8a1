//! The TLS connectivity test: one handshake to a partner, optionally presenting a client
//! certificate from a key pair version (a staged one too, before it is activated), then one
//! HTTP request so that a server that checks the client certificate after the handshake
//! (TLS 1.3) has answered.
//!
//! The [`ProbeReport`] says what was negotiated (protocol, cipher suite), the server's chain
//! with its validity, whether it is trusted, the CAs the server accepts for client
//! certificates, the certificate presented, the HTTP status line, and on failure the
//! precise cause as a [`ProbeFailure`]: refused, timed out, name mismatch, untrusted or
//! expired server certificate, client certificate required or rejected, another alert.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward_crypto::Certificate;
use keyward_domain::{Alias, Timestamp, VersionId};
use keyward_keystore::KeyPairVersion;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::identity::{ClientChoice, KeyRing, LiveClientCert, LiveKeys};

/// Where to connect: from an `https://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port; 443 when the URL names none.
    pub port: u16,
    /// Path for the HTTP request, `/` at least.
    pub path: String,
}

impl Target {
    /// Reads an `https://` URL.
    ///
    /// # Errors
    /// A description of what is wrong with the URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url:?} is not an https:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("{url:?}: user information in the URL is not supported"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let port = match port {
            Some(port) => port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{url:?}: {port:?} is not a port number"))?,
            None => 443,
        };
        Ok(Target { host: host.to_owned(), port, path: path.to_owned() })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "https://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "https://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// What to test with.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The key pair version to present when the server asks for a client certificate.
    pub client: Option<KeyPairVersion>,
    /// The certificates trusted for the server (trust anchors).
    pub trust: Vec<Certificate>,
    /// Limit for connecting, for the handshake and for the HTTP answer, each.
    pub timeout: Duration,
}

/// A certificate as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// Whether it is valid at the time of the test.
    pub valid_now: bool,
}

/// The client certificate presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// Its alias.
    pub alias: Alias,
    /// Its version.
    pub version: VersionId,
    /// Its subject DN.
    pub subject: String,
}

/// Why a test failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// Nothing accepted the connection.
    #[error("connection refused or host unreachable: {0}")]
    Refused(String),
    /// A stage took longer than the limit.
    #[error("timed out while {stage} (limit {limit_ms} ms)")]
    Timeout {
        /// What was going on.
        stage: &'static str,
        /// The limit in milliseconds.
        limit_ms: u128,
    },
    /// The server's certificate is not for the host name used.
    #[error("the server's certificate is not valid for {host}: {detail}")]
    NameMismatch {
        /// The host name connected to.
        host: String,
        /// What rustls reported.
        detail: String,
    },
    /// The server's certificate chain does not lead to a trusted certificate.
    #[error("the server's certificate is not trusted: {0}")]
    UntrustedServer(String),
    /// The server's certificate has expired or is not valid yet.
    #[error("the server's certificate is outside its validity period: {0}")]
    ServerCertificateNotValidNow(String),
    /// The server requires a client certificate and none was presented.
    #[error("the server requires a client certificate and none was presented ({0})")]
    ClientCertificateRequired(String),
    /// The server refused the client certificate presented.
    #[error("the server rejected the client certificate {presented}: alert {alert}")]
    ClientCertificateRejected {
        /// The certificate presented.
        presented: String,
        /// The TLS alert received.
        alert: String,
    },
    /// Another TLS alert from the server.
    #[error("the server ended the handshake with alert {0}")]
    HandshakeAlert(String),
    /// Another TLS error.
    #[error("TLS error: {0}")]
    Tls(String),
    /// An I/O error after connecting.
    #[error("connection error: {0}")]
    Io(String),
    /// The test could not be set up.
    #[error("{0}")]
    Setup(String),
}

impl ProbeFailure {
    /// A stable name for the cause, for programs: `refused`, `timeout`, `name-mismatch`,
    /// `untrusted-server`, `server-certificate-not-valid-now`,
    /// `client-certificate-required`, `client-certificate-rejected`, `handshake-alert`,
    /// `tls`, `io` or `setup`.
    pub fn code(&self) -> &'static str {
        match self {
            ProbeFailure::Refused(_) => "refused",
            ProbeFailure::Timeout { .. } => "timeout",
            ProbeFailure::NameMismatch { .. } => "name-mismatch",
            ProbeFailure::UntrustedServer(_) => "untrusted-server",
            ProbeFailure::ServerCertificateNotValidNow(_) => "server-certificate-not-valid-now",
            ProbeFailure::ClientCertificateRequired(_) => "client-certificate-required",
            ProbeFailure::ClientCertificateRejected { .. } => "client-certificate-rejected",
            ProbeFailure::HandshakeAlert(_) => "handshake-alert",
            ProbeFailure::Tls(_) => "tls",
            ProbeFailure::Io(_) => "io",
            ProbeFailure::Setup(_) => "setup",
        }
    }
}

/// The result of a connectivity test.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Where it connected.
    pub target: Target,
    /// `Ok` when the handshake succeeded and the server answered the HTTP request.
    pub outcome: Result<(), ProbeFailure>,
    /// Negotiated protocol version, e.g. `TLSv1_3`.
    pub protocol: Option<String>,
    /// Negotiated cipher suite.
    pub cipher_suite: Option<String>,
    /// The chain the server presented, leaf first.
    pub server_chain: Vec<CertificateSummary>,
    /// Whether the chain was verified against the trusted certificates (`None`: the
    /// server presented none).
    pub server_trusted: Option<bool>,
    /// The CAs the server accepts for client certificates (`None`: it did not ask for
    /// one; empty: it asked without naming CAs).
    pub acceptable_client_cas: Option<Vec<String>>,
    /// The client certificate presented, if any.
    pub presented: Option<Presented>,
    /// The status line of the server's HTTP answer.
    pub http_status: Option<String>,
    /// Time from connecting to the end of the test.
    pub elapsed: Duration,
}

/// Runs one connectivity test to `target` at `now`.
pub async fn probe(target: &Target, options: &ProbeOptions, now: Timestamp) -> ProbeReport {
    let started = Instant::now();
    let mut report = ProbeReport {
        target: target.clone(),
        outcome: Ok(()),
        protocol: None,
        cipher_suite: None,
        server_chain: Vec::new(),
        server_trusted: None,
        acceptable_client_cas: None,
        presented: None,
        http_status: None,
        elapsed: Duration::ZERO,
    };
    let setup = match Setup::new(options) {
        Ok(setup) => setup,
        Err(failure) => {
            report.outcome = Err(failure);
            return report;
        }
    };
    let outcome = run(target, options, &setup, &mut report).await;
    if let Ok(seen) = setup.verifier.seen.lock() {
        report.server_chain = seen.chain.iter().map(|der| summary(der, now)).collect();
        report.server_trusted = seen.trusted;
    }
    if let Some(resolver) = &setup.resolver {
        report.acceptable_client_cas = resolver
            .last_hints()
            .map(|hints| hints.iter().map(|hint| name_text(hint)).collect());
        report.presented = resolver.last_presented().map(|key| Presented {
            alias: key.alias().clone(),
            version: key.version(),
            subject: key.subject().to_owned(),
        });
    }
    report.outcome = outcome.map_err(|failure| explain(failure, &report));
    report.elapsed = started.elapsed();
    report
}

/// The TLS configuration of a test.
struct Setup {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<RecordingVerifier>,
    resolver: Option<Arc<LiveClientCert>>,
}

impl Setup {
    fn new(options: &ProbeOptions) -> Result<Self, ProbeFailure> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for certificate in &options.trust {
            roots
                .add(CertificateDer::from(certificate.der().to_vec()))
                .map_err(|e| ProbeFailure::Setup(format!("cannot trust {}: {e}", certificate.subject())))?;
        }
        if roots.is_empty() {
            return Err(ProbeFailure::Setup(
                "no certificate to trust for the server; import its CA certificate or name trusted aliases".into(),
            ));
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| ProbeFailure::Setup(e.to_string()))?;
        let verifier = Arc::new(RecordingVerifier { inner, seen: Mutex::new(Seen::default()) });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeFailure::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>);
        let (config, resolver) = match &options.client {
            Some(pair) => {
                let (ring, problems) = KeyRing::new(0, std::slice::from_ref(pair));
                if let Some(problem) = problems.into_iter().next() {
                    return Err(ProbeFailure::Setup(problem.to_string()));
                }
                let resolver = LiveClientCert::new(LiveKeys::new(ring), ClientChoice::Alias(pair.alias.clone()));
                let config = builder.with_client_cert_resolver(Arc::clone(&resolver) as Arc<dyn rustls::client::ResolvesClientCert>);
                (config, Some(resolver))
            }
            None => (builder.with_no_client_auth(), None),
        };
        Ok(Setup { config: Arc::new(config), verifier, resolver })
    }
}

/// How a test failed, before the report is complete: a TLS error is explained with what the
/// handshake showed (see [`explain`]).
enum Failed {
    /// Already a precise cause.
    Known(ProbeFailure),
    /// What rustls said.
    Tls(rustls::Error),
}

impl From<ProbeFailure> for Failed {
    fn from(failure: ProbeFailure) -> Self {
        Failed::Known(failure)
    }
}

async fn run(target: &Target, options: &ProbeOptions, setup: &Setup, report: &mut ProbeReport) -> Result<(), Failed> {
    let limit = options.timeout;
    let timeout = |stage: &'static str| ProbeFailure::Timeout { stage, limit_ms: limit.as_millis() };
    let server_name = ServerName::try_from(target.host.clone())
        .map_err(|e| ProbeFailure::Setup(format!("{:?} is not a host name: {e}", target.host)))?;
    let tcp = tokio::time::timeout(limit, TcpStream::connect((target.host.as_str(), target.port)))
        .await
        .map_err(|_| timeout("connecting"))?
        .map_err(|e| ProbeFailure::Refused(e.to_string()))?;
    let connector = TlsConnector::from(Arc::clone(&setup.config));
    let mut tls = tokio::time::timeout(limit, connector.connect(server_name, tcp))
        .await
        .map_err(|_| timeout("in the TLS handshake"))?
        .map_err(|e| classify(&e))?;
    {
        let (_, connection) = tls.get_ref();
        report.protocol = connection.protocol_version().map(|v| format!("{v:?}"));
        report.cipher_suite = connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
    }
    let host = if target.host.contains(':') { format!("[{}]", target.host) } else { target.host.clone() };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: keyward-connectivity-test\r\nConnection: close\r\n\r\n",
        target.path, target.port
    );
    tokio::time::timeout(limit, async {
        tls.write_all(request.as_bytes()).await?;
        tls.flush().await
    })
    .await
    .map_err(|_| timeout("sending the HTTP request"))?
    .map_err(|e| classify(&e))?;
    let mut answer = Vec::with_capacity(256);
    let mut buffer = [0u8; 256];
    let status = tokio::time::timeout(limit, async {
        loop {
            let read = tls.read(&mut buffer).await?;
            answer.extend_from_slice(&buffer[..read]);
            if read == 0 || answer.windows(2).any(|w| w == b"\r\n") || answer.len() > 8192 {
                return Ok::<_, std::io::Error>(());
            }
        }
    })
    .await
    .map_err(|_| timeout("waiting for the HTTP answer"))?;
    status.map_err(|e| classify(&e))?;
    let line = answer.split(|b| *b == b'\r' || *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err(ProbeFailure::Io("the server closed the connection without an HTTP answer".into()).into());
    }
    report.http_status = Some(String::from_utf8_lossy(line).into_owned());
    Ok(())
}

/// A failure from an I/O error, keeping the rustls error inside for [`explain`].
fn classify(error: &std::io::Error) -> Failed {
    match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => Failed::Tls(tls.clone()),
        None => Failed::Known(ProbeFailure::Io(error.to_string())),
    }
}

/// The precise cause of a failure, with what the handshake showed: an alert about
/// certificates is about the client certificate when the server asked for one.
fn explain(failed: Failed, report: &ProbeReport) -> ProbeFailure {
    let tls = match failed {
        Failed::Known(failure) => return failure,
        Failed::Tls(tls) => tls,
    };
    match &tls {
        rustls::Error::InvalidCertificate(problem) => match problem {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                ProbeFailure::NameMismatch { host: report.target.host.clone(), detail: tls.to_string() }
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => ProbeFailure::ServerCertificateNotValidNow(tls.to_string()),
            _ => ProbeFailure::UntrustedServer(tls.to_string()),
        },
        rustls::Error::AlertReceived(alert) => {
            let asked = report.acceptable_client_cas.is_some() || *alert == AlertDescription::CertificateRequired;
            let about_certificates = matches!(
                alert,
                AlertDescription::BadCertificate
                    | AlertDescription::UnsupportedCertificate
                    | AlertDescription::CertificateRevoked
                    | AlertDescription::CertificateExpired
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::UnknownCA
                    | AlertDescription::AccessDenied
                    | AlertDescription::CertificateRequired
                    | AlertDescription::HandshakeFailure
                    | AlertDescription::DecryptError
            );
            let alert = format!("{alert:?}");
            match (&report.presented, asked && about_certificates) {
                (Some(presented), true) => ProbeFailure::ClientCertificateRejected {
                    presented: format!("{} version {} ({})", presented.alias, presented.version, presented.subject),
                    alert,
                },
                (None, true) => ProbeFailure::ClientCertificateRequired(format!("alert {alert}")),
                _ => ProbeFailure::HandshakeAlert(alert),
            }
        }
        other => ProbeFailure::Tls(other.to_string()),
    }
}

fn summary(der: &[u8], now: Timestamp) -> CertificateSummary {
    match Certificate::from_der(der) {
        Ok(certificate) => CertificateSummary {
            subject: certificate.subject(),
            issuer: certificate.issuer(),
            not_before: certificate.not_before(),
            not_after: certificate.not_after(),
            valid_now: keyward_keystore::material::valid_at(&certificate, now),
        },
        Err(e) => CertificateSummary {
            subject: format!("(unreadable certificate: {e})"),
            issuer: String::new(),
            not_before: Timestamp::from_millis(0),
            not_after: Timestamp::from_millis(0),
            valid_now: false,
        },
    }
}

/// A distinguished name for people, from its DER (with or without the SEQUENCE header).
fn name_text(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    let read = |bytes: &[u8]| {
        x509_parser::x509::X509Name::from_der(bytes)
            .ok()
            .filter(|(rest, _)| rest.is_empty())
            .map(|(_, name)| name.to_string())
            .filter(|text| !text.is_empty())
    };
    let mut wrapped = Vec::with_capacity(der.len() + 4);
    wrapped.push(0x30);
    match u8::try_from(der.len()) {
        Ok(short) if short < 0x80 => wrapped.push(short),
        _ => {
            let length = u16::try_from(der.len()).unwrap_or(u16::MAX).to_be_bytes();
            wrapped.extend_from_slice(&[0x82, length[0], length[1]]);
        }
    }
    wrapped.extend_from_slice(der);
    read(der)
        .or_else(|| read(&wrapped))
        .unwrap_or_else(|| format!("(unreadable name, {} bytes)", der.len()))
}

/// What the verifier saw of the server.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<Vec<u8>>,
    trusted: Option<bool>,
}

/// rustls's WebPKI verifier, remembering the chain presented and its verdict for the report.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.to_vec()).collect();
            seen.trusted = Some(verdict.is_ok());
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        type Expected = Result<(&'static str, u16, &'static str), &'static str>;
        let cases: &[(&str, Expected)] = &[
            ("https://partner.example", Ok(("partner.example", 443, "/"))),
            ("https://127.0.0.1:8443/in/orders?x=1", Ok(("127.0.0.1", 8443, "/in/orders?x=1"))),
            ("https://[::1]:9443/", Ok(("::1", 9443, "/"))),
            ("http://partner.example", Err("not an https:// URL")),
            ("https://:443/", Err("names no host")),
            ("https://host:0/", Err("is not a port number")),
            ("https://host:99999/", Err("is not a port number")),
            ("https://user@host/", Err("user information")),
            ("https://[::1/", Err("unclosed")),
        ];
        for (url, expected) in cases {
            match (Target::parse(url), expected) {
                (Ok(target), Ok((host, port, path))) => {
                    assert_eq!((target.host.as_str(), target.port, target.path.as_str()), (*host, *port, *path), "{url}");
                }
                (Err(message), Err(phrase)) => assert!(message.contains(phrase), "{url}: {message}"),
                (got, _) => panic!("{url}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn names_read_with_and_without_their_sequence_header() {
        let now = Timestamp::from_seconds(1_795_428_000);
        let (_, certificate) =
            keyward_crypto::generate(keyward_crypto::KeyAlgorithm::EcP256, "CN=Partner CA,O=ACME", 30, now).unwrap();
        let full = certificate.subject_der();
        assert!(name_text(full).contains("CN=Partner CA"));
        assert!(name_text(&full[2..]).contains("CN=Partner CA"));
        let unreadable = name_text(b"\x04\x01\x00");
        assert!(unreadable.starts_with("(unreadable name"), "{unreadable}");
    }
}
