//! JSON request and response bodies.
//!
//! These types are the API's contract: the server produces them, the client reads them, and
//! the OpenAPI document describes them. Conversions from the service's views live here too,
//! so no other crate needs to know how an entry looks in JSON. Times are RFC 3339 strings;
//! binary material travels as standard base64.

use keyward_crypto::CertificateDetails;
use keyward_domain::{Timestamp, Transition};
use keyward_keystore::{EntrySummary, EntryView, VersionView};
use keyward_store::{AuditRecord, AuditVerification};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error (RFC 9457 problem details).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProblemJson {
    /// A URI naming the class of problem, e.g. `urn:keyward:problem:conflict`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the class of problem (the HTTP reason phrase).
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What was wrong with this request.
    pub detail: String,
}

/// One entry in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntrySummaryJson {
    /// The alias.
    pub alias: String,
    /// `key-pair` or `certificate`.
    pub kind: String,
    /// `tenant` or `platform`.
    pub owner: String,
    /// The active version's number.
    pub active_version: Option<u32>,
    /// Staged versions waiting for activation, newest first.
    pub staged_versions: Vec<u32>,
    /// Number of versions in all states.
    pub versions: usize,
    /// Expiry of the active (or newest) version.
    pub not_after: Option<String>,
    /// Expires within 30 days.
    pub expiring_soon: bool,
    /// Has expired.
    pub expired: bool,
    /// `valid`, `critical` (the server's critical period or less left) or `expired`, for
    /// the active (or newest) version; absent without a version.
    #[serde(default)]
    pub expiry_state: Option<String>,
}

impl From<&EntrySummary> for EntrySummaryJson {
    fn from(s: &EntrySummary) -> Self {
        Self {
            alias: s.alias.to_string(),
            kind: s.kind.to_string(),
            owner: s.owner.to_string(),
            active_version: s.active.map(|v| v.0),
            staged_versions: s.staged.iter().map(|v| v.0).collect(),
            versions: s.versions,
            not_after: s.not_after.map(Timestamp::to_rfc3339),
            expiring_soon: s.expiring_soon,
            expired: s.expired,
            expiry_state: None,
        }
    }
}

/// Details of one certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateJson {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hexadecimal.
    pub serial: String,
    /// Start of validity.
    pub not_before: String,
    /// End of validity.
    pub not_after: String,
    /// Signature algorithm, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Public key algorithm: `RSA`, `EC` or `Ed25519`.
    pub key_algorithm: String,
    /// Key size in bits.
    pub key_size: u32,
    /// Named curve of EC keys.
    pub curve: Option<String>,
    /// SHA-1 fingerprint, colon-separated hex.
    pub sha1_fingerprint: String,
    /// SHA-256 fingerprint, colon-separated hex.
    pub sha256_fingerprint: String,
    /// Whether the certificate is a CA.
    pub is_ca: bool,
    /// Whether it is self-signed.
    pub self_signed: bool,
}

impl From<&CertificateDetails> for CertificateJson {
    fn from(d: &CertificateDetails) -> Self {
        Self {
            subject: d.subject.clone(),
            issuer: d.issuer.clone(),
            serial: d.serial_hex.clone(),
            not_before: d.not_before.to_rfc3339(),
            not_after: d.not_after.to_rfc3339(),
            signature_algorithm: d.signature_algorithm.clone(),
            key_algorithm: d.key_algorithm.clone(),
            key_size: d.key_size_bits,
            curve: d.curve.clone(),
            sha1_fingerprint: d.sha1_fingerprint.clone(),
            sha256_fingerprint: d.sha256_fingerprint.clone(),
            is_ca: d.is_ca,
            self_signed: d.self_signed,
        }
    }
}

/// One version of an entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionJson {
    /// Version number.
    pub version: u32,
    /// `staged`, `active` or `retired`.
    pub state: String,
    /// When it was added.
    pub created_at: String,
    /// Who added it.
    pub created_by: String,
    /// When it last became active.
    pub activated_at: Option<String>,
    /// When it last stopped being active.
    pub active_until: Option<String>,
    /// Whether it holds a private key (the key itself never appears in the API).
    pub has_private_key: bool,
    /// The private key's algorithm.
    pub key_algorithm: Option<String>,
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateJson>,
}

impl From<&VersionView> for VersionJson {
    fn from(v: &VersionView) -> Self {
        Self {
            version: v.version.id.0,
            state: v.version.state.to_string(),
            created_at: v.version.created_at.to_rfc3339(),
            created_by: v.version.created_by.clone(),
            activated_at: v.version.activated_at.map(Timestamp::to_rfc3339),
            active_until: v.version.active_until.map(Timestamp::to_rfc3339),
            has_private_key: v.has_private_key,
            key_algorithm: v.key_algorithm.clone(),
            chain: v.chain.iter().map(CertificateJson::from).collect(),
        }
    }
}

/// An entry with all its versions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryJson {
    /// The alias.
    pub alias: String,
    /// `key-pair` or `certificate`.
    pub kind: String,
    /// `tenant` or `platform`.
    pub owner: String,
    /// Change counter.
    pub revision: i64,
    /// When the entry was created.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub modified_at: String,
    /// Who changed it last.
    pub modified_by: String,
    /// Versions, ascending.
    pub versions: Vec<VersionJson>,
}

impl From<&EntryView> for EntryJson {
    fn from(v: &EntryView) -> Self {
        let e = &v.entry;
        Self {
            alias: e.alias.to_string(),
            kind: e.kind.to_string(),
            owner: e.owner.to_string(),
            revision: e.revision.0,
            created_at: e.created_at.to_rfc3339(),
            created_by: e.created_by.clone(),
            modified_at: e.modified_at.to_rfc3339(),
            modified_by: e.modified_by.clone(),
            versions: v.versions.iter().map(VersionJson::from).collect(),
        }
    }
}

/// Generate a key pair with a self-signed certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GenerateRequest {
    /// `rsa-2048`, `rsa-3072`, `rsa-4096`, `ec-p256`, `ec-p384` or `ed25519`.
    pub algorithm: String,
    /// Subject, e.g. `CN=flow client, O=Example AG, C=DE`.
    pub subject: String,
    /// Validity in days (default 365).
    #[serde(default)]
    pub days: Option<u32>,
    /// Add the version as staged instead of activating it.
    #[serde(default)]
    pub staged: bool,
}

/// Import a certificate, a key pair or a PKCS#12 file.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportRequest {
    /// The file's bytes, base64.
    pub data: String,
    /// Password of a PKCS#12 file.
    #[serde(default)]
    pub password: Option<String>,
    /// Add the version as staged instead of activating it.
    #[serde(default)]
    pub staged: bool,
}

/// Import a CA's response to a certificate signing request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseImportRequest {
    /// The signed certificate or chain (PEM, DER or PKCS#7), base64.
    pub data: String,
    /// Add the version as staged even when the request came from the active version.
    #[serde(default)]
    pub staged: bool,
}

/// A version was added.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionCreated {
    /// The alias.
    pub alias: String,
    /// The new version's number.
    pub version: u32,
}

/// Activate a staged version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ActivateRequest {
    /// The version; the newest staged one when absent.
    #[serde(default)]
    pub version: Option<u32>,
}

/// Move a retired version back to staged.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreRequest {
    /// The retired version.
    pub version: u32,
}

/// Export a key pair as PKCS#12.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct Pkcs12Request {
    /// Password protecting the file (required, not empty).
    pub password: String,
    /// The version; the active one when absent.
    #[serde(default)]
    pub version: Option<u32>,
}

/// One state change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransitionJson {
    /// The version.
    pub version: u32,
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// When.
    pub at: String,
}

impl From<&Transition> for TransitionJson {
    fn from(t: &Transition) -> Self {
        Self { version: t.version.0, from: t.from.to_string(), to: t.to.to_string(), at: t.at.to_rfc3339() }
    }
}

/// The state changes an operation made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransitionsJson {
    /// The alias.
    pub alias: String,
    /// What changed.
    pub transitions: Vec<TransitionJson>,
}

/// Create an API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// A name for the token, recorded as the actor of its changes.
    pub name: String,
    /// `viewer`, `developer`, `admin` or `platform`.
    pub role: String,
}

/// A created token. It is shown once; only its hash is stored.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The name.
    pub name: String,
    /// The role.
    pub role: String,
    /// The bearer token.
    pub token: String,
}

/// A token as listed: its secret is never stored, so never shown again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenJson {
    /// The name.
    pub name: String,
    /// The role.
    pub role: String,
    /// When it was created.
    pub created_at: String,
}

impl From<&keyward_store::TokenRecord> for TokenJson {
    fn from(t: &keyward_store::TokenRecord) -> Self {
        Self { name: t.name.clone(), role: t.role.to_string(), created_at: t.created_at.to_rfc3339() }
    }
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditRecordJson {
    /// Position in the log.
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who (token name).
    pub actor: String,
    /// With which role.
    pub role: String,
    /// What, e.g. `keys.activate`.
    pub action: String,
    /// Which alias.
    pub alias: Option<String>,
    /// Which version.
    pub version: Option<u32>,
    /// Before/after and reasons.
    pub detail: String,
    /// This record's chain hash.
    pub hash: String,
}

impl From<&AuditRecord> for AuditRecordJson {
    fn from(r: &AuditRecord) -> Self {
        Self {
            seq: r.seq,
            at: r.at.to_rfc3339(),
            actor: r.actor.clone(),
            role: r.role.to_string(),
            action: r.action.clone(),
            alias: r.alias.clone(),
            version: r.version,
            detail: r.detail.clone(),
            hash: r.hash.clone(),
        }
    }
}

/// The result of checking the audit log's hash chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditVerifyJson {
    /// Records checked.
    pub records: u64,
    /// Whether the chain is intact.
    pub intact: bool,
    /// The first problem found.
    pub problem: Option<String>,
}

impl From<&AuditVerification> for AuditVerifyJson {
    fn from(v: &AuditVerification) -> Self {
        Self {
            records: v.records,
            intact: v.problem.is_none(),
            problem: v.problem.as_ref().map(ToString::to_string),
        }
    }
}

/// One signer of a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignerJson {
    /// The key pair whose active version signs.
    pub alias: String,
    /// `sha256`, `sha384` or `sha512`; by default SHA-512 for Ed25519, SHA-384 for P-384, else SHA-256.
    #[serde(default)]
    pub digest: Option<String>,
    /// `rsa-pkcs1`, `rsa-pss`, `ecdsa` or `ed25519`; by default the key's natural scheme.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Certificates to include: `none`, `signer` or `chain` (default `signer`).
    #[serde(default)]
    pub certs: Option<String>,
    /// Add a signing-time attribute (default true).
    #[serde(default = "yes")]
    pub signing_time: bool,
}

fn yes() -> bool {
    true
}

/// Sign a payload with one or more aliases.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SignRequest {
    /// The signers, one SignerInfo each, in this order.
    pub signers: Vec<SignerJson>,
    /// The payload, base64.
    pub data: String,
    /// Leave the content out of the message (detached signature).
    #[serde(default)]
    pub detached: bool,
}

/// Verify a signed message.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The CMS message (DER, BER or PEM), base64.
    pub message: String,
    /// The content of a detached signature, base64.
    #[serde(default)]
    pub content: Option<String>,
    /// Aliases whose certificates are trusted; every entry when empty.
    #[serde(default)]
    pub trust: Vec<String>,
    /// `all` (default): every signature must be valid; `any`: at least one.
    #[serde(default)]
    pub require: Option<String>,
}

/// The verdict on one signature.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignerReportJson {
    /// The signer certificate's subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Its serial number.
    pub serial: String,
    /// Digest algorithm.
    pub digest: String,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// The signing-time attribute.
    pub signing_time: Option<String>,
    /// Whether this signature is valid.
    pub valid: bool,
    /// Why not.
    pub problem: Option<String>,
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether the message passed the requirement.
    pub verified: bool,
    /// The requirement: `all` or `any`.
    pub require: String,
    /// One verdict per SignerInfo.
    pub signers: Vec<SignerReportJson>,
    /// The signed content (base64), for encapsulated signatures.
    pub content: Option<String>,
}

/// Encrypt a payload to one or more certificate aliases.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct EncryptRequest {
    /// Aliases whose active certificates receive the message.
    pub recipients: Vec<String>,
    /// The payload, base64.
    pub data: String,
    /// `rsa-oaep` (SHA-256, default), `rsa-oaep-sha1`, `rsa-oaep-sha384`, `rsa-oaep-sha512` or `rsa-pkcs1`.
    #[serde(default)]
    pub key_transport: Option<String>,
    /// `aes256-cbc` (default), `aes128-cbc`, `aes128-gcm` or `aes256-gcm` (AuthEnvelopedData).
    #[serde(default)]
    pub content_encryption: Option<String>,
}

/// Decrypt a CMS EnvelopedData with any valid key.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct DecryptRequest {
    /// The message (DER, BER or PEM), base64.
    pub message: String,
}

/// A decrypted message.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct DecryptResponse {
    /// The plaintext, base64.
    pub content: String,
    /// The alias whose key opened it.
    pub alias: String,
    /// That key's version.
    pub version: u32,
    /// `active` or `retired`.
    pub state: String,
}

/// How long retired key pairs decrypt (and are kept).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetentionJson {
    /// Days after a version's `active_until`.
    pub days: i64,
}

/// Change the retention of retired key pairs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetentionRequest {
    /// Days after a version's `active_until`; below 90 only with a reason.
    pub days: i64,
    /// Why (required below 90 days; audited).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Serializes a wire value as pretty JSON, for the CLI's `--output json`.
pub fn to_pretty_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Writes `<redacted>` for a secret field, so request and response bodies can be logged.
macro_rules! redacted_debug {
    ($ty:ident { $($field:ident),* } secret { $($secret:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($secret), &"<redacted>"))*
                    .finish()
            }
        }
    };
}

redacted_debug!(ImportRequest { staged } secret { data, password });
redacted_debug!(Pkcs12Request { version } secret { password });
redacted_debug!(TokenCreated { name, role } secret { token });
redacted_debug!(SignRequest { signers, detached } secret { data });
/// A TLS connectivity test.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TlsTestRequest {
    /// The partner's `https://` URL; the test sends one `GET` for its path.
    pub url: String,
    /// Present a client certificate from this key pair alias when the server asks for one.
    #[serde(default)]
    pub alias: Option<String>,
    /// Which version of `alias`: `active` (default), `staged` (the newest staged) or a number.
    #[serde(default)]
    pub version: Option<String>,
    /// Aliases whose certificates are trusted for the server; every entry when empty.
    #[serde(default)]
    pub trust: Vec<String>,
    /// Limit for connecting, the handshake and the HTTP answer, each, in milliseconds
    /// (default 10000, at most 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A certificate of the server's chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainCertificateJson {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// Whether it is valid now.
    pub valid_now: bool,
}

/// The client certificate a test presented.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresentedJson {
    /// Alias.
    pub alias: String,
    /// Version number.
    pub version: u32,
    /// Subject DN.
    pub subject: String,
}

/// The result of a TLS connectivity test. A test that ran answers 200 whether or not the
/// handshake succeeded; `ok` and `cause` tell.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TlsTestResponse {
    /// The URL tested.
    pub url: String,
    /// Whether the handshake succeeded and the server answered.
    pub ok: bool,
    /// On failure, the cause: `refused`, `timeout`, `name-mismatch`, `untrusted-server`,
    /// `server-certificate-not-valid-now`, `client-certificate-required`,
    /// `client-certificate-rejected`, `handshake-alert`, `tls`, `io` or `setup`.
    pub cause: Option<String>,
    /// On failure, what happened, for people.
    pub failure: Option<String>,
    /// Negotiated protocol version.
    pub protocol: Option<String>,
    /// Negotiated cipher suite.
    pub cipher_suite: Option<String>,
    /// The server's chain, leaf first.
    pub server_chain: Vec<ChainCertificateJson>,
    /// Whether the server's chain is trusted (absent: no chain was received).
    pub server_trusted: Option<bool>,
    /// The CAs the server accepts for client certificates (absent: it asked for none).
    pub acceptable_client_cas: Option<Vec<String>>,
    /// The client certificate presented.
    pub presented: Option<PresentedJson>,
    /// The status line of the server's HTTP answer.
    pub http_status: Option<String>,
    /// Duration of the test in milliseconds.
    pub elapsed_ms: u64,
}

/// A flow file to deploy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployRequest {
    /// The flow file (TOML).
    pub source: String,
}

/// A deployed flow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlowJson {
    /// Name; senders post to `/flows/NAME` on any node.
    pub name: String,
    /// `started` or `stopped`.
    pub state: String,
    /// Moves on every deploy and restart; nodes rebuild the flow when it does.
    pub generation: i64,
    /// When it was last deployed (RFC 3339).
    pub deployed_at: String,
    /// Who deployed it.
    pub deployed_by: String,
    /// When its state last changed (RFC 3339).
    pub updated_at: String,
    /// Who changed it.
    pub updated_by: String,
    /// Nodes where it was stopped, started or restarted alone.
    pub nodes: Vec<FlowNodeJson>,
    /// The flow file.
    pub source: String,
}

/// A flow's state on one node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlowNodeJson {
    /// The node.
    pub node: String,
    /// `started` or `stopped` there.
    pub state: String,
    /// Restarts there alone.
    pub restarts: i64,
}

/// A runtime node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeJson {
    /// Node id.
    pub id: String,
    /// Where it serves `/flows/NAME`.
    pub address: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// Seconds since that heartbeat.
    pub seconds_since_heartbeat: i64,
    /// The keystore change marker it has applied.
    pub applied_marker: i64,
    /// Whether that is the current marker.
    pub in_sync: bool,
    /// Its flows as `name:state:gGENERATION`.
    pub flows: String,
}

/// A place in a deployed flow that uses an alias.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeclaredUseJson {
    /// The flow.
    pub flow: String,
    /// The 1-based step, when in a step.
    pub step: Option<usize>,
    /// What the place is.
    pub place: String,
    /// The flow's receiver URL.
    pub partner: String,
    /// Whether it is "any valid key" rather than the alias by name.
    pub any_valid_key: bool,
}

/// Uses that nodes observed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObservedUseJson {
    /// The flow.
    pub flow: String,
    /// The alias.
    pub alias: String,
    /// The version used.
    pub version: u32,
    /// The receiver URL.
    pub partner: String,
    /// How many messages.
    pub count: i64,
    /// The last one (RFC 3339).
    pub last_used: String,
}

/// Where an alias is used.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageJson {
    /// The alias.
    pub alias: String,
    /// Places in deployed flows.
    pub declared: Vec<DeclaredUseJson>,
    /// What nodes observed.
    pub observed: Vec<ObservedUseJson>,
}

redacted_debug!(VerifyRequest { trust, require } secret { message, content });
redacted_debug!(EncryptRequest { recipients, key_transport, content_encryption } secret { data });
redacted_debug!(DecryptRequest { } secret { message });
redacted_debug!(DecryptResponse { alias, version, state } secret { content });

// ----- partners and renewals ---------------------------------------------------------------

/// A partner system and what it can do with old and new material at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PartnerJson {
    /// The partner's name, which flows' channels refer to.
    pub name: String,
    /// Where it is reached.
    #[serde(default)]
    pub url: Option<String>,
    /// Capability names: two-client-certificates, two-cas, two-signing-keys,
    /// two-signatures, two-decryption-keys, two-response-keys.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Who administers it, how to reach them.
    #[serde(default)]
    pub description: Option<String>,
}

/// A change to a partner; absent fields stay, empty strings clear.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PartnerUpdate {
    /// New URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New capabilities (the whole set).
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

/// One step of a renewal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewalStepJson {
    /// 1-based position.
    pub position: u32,
    /// The table row's key.
    pub key: String,
    /// admin, developer or partner.
    pub actor: String,
    /// task, notify, confirm, input, probe or window.
    pub kind: String,
    /// What happens.
    pub text: String,
    /// The partner, for per-partner steps.
    pub partner: Option<String>,
    /// Whether it waits for the downtime window.
    pub in_window: bool,
    /// The seed's step numbers.
    pub seed_steps: String,
    /// pending, done, failed, overridden, skipped or scheduled.
    pub state: String,
    /// Who finished it.
    pub by: Option<String>,
    /// When it changed last.
    pub at: Option<String>,
    /// The result or note.
    pub note: Option<String>,
    /// When a scheduled step is due.
    pub due: Option<String>,
}

/// A renewal with its steps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewalJson {
    /// Its number (0 in a plan).
    pub id: i64,
    /// The alias.
    pub alias: String,
    /// The procedure.
    pub procedure: String,
    /// The procedure in words.
    pub procedure_title: String,
    /// The variant.
    pub variant: String,
    /// The variant in words.
    pub variant_title: String,
    /// Whether the variant needs downtime.
    pub downtime: bool,
    /// running, completed or aborted (planned in a plan).
    pub state: String,
    /// The affected flows.
    pub flows: Vec<String>,
    /// The affected partners.
    pub partners: Vec<String>,
    /// The version active at the start.
    pub old_version: Option<u32>,
    /// The new version.
    pub new_version: Option<u32>,
    /// The temporary or second alias.
    pub second_alias: Option<String>,
    /// Start of the downtime window.
    pub window_from: Option<String>,
    /// End of the downtime window.
    pub window_to: Option<String>,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// The steps.
    pub steps: Vec<RenewalStepJson>,
}

/// One use of an alias in a deployed flow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AliasUseJson {
    /// The flow.
    pub flow: String,
    /// What uses the alias there.
    pub place: String,
    /// The partner affected.
    pub partner: String,
    /// The receiver URL.
    pub url: String,
}

/// What `renew plan` computes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanJson {
    /// Why this procedure.
    pub reason: String,
    /// Every use of the alias.
    pub uses: Vec<AliasUseJson>,
    /// Partners on the channels that were never declared (assumed to handle one key at a time).
    pub undeclared_partners: Vec<String>,
    /// The renewal as it would start.
    pub renewal: RenewalJson,
}

/// Start a renewal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewalStart {
    /// The alias.
    pub alias: String,
    /// A procedure instead of the one keyward picks.
    #[serde(default)]
    pub procedure: Option<String>,
    /// A variant instead of the one the partners' capabilities decide.
    #[serde(default)]
    pub variant: Option<String>,
}

/// Confirm a step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConfirmRequest {
    /// Which partner's instance of a per-partner step.
    #[serde(default)]
    pub partner: Option<String>,
    /// A note, recorded with the step (required to override a probe).
    #[serde(default)]
    pub note: Option<String>,
    /// The file an input step imports (CA response, partner certificate), base64.
    #[serde(default)]
    pub data: Option<String>,
    /// Go past a failed probe.
    #[serde(default, rename = "override")]
    pub override_probe: bool,
}

/// Agree a downtime window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DowntimeRequest {
    /// Start, RFC 3339.
    pub from: String,
    /// End, RFC 3339.
    pub to: String,
}

/// Abort a renewal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AbortRequest {
    /// Why, for the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A step waiting for someone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewalTaskJson {
    /// The renewal.
    pub renewal: i64,
    /// Its alias.
    pub alias: String,
    /// The step's position.
    pub position: u32,
    /// The step's key.
    pub key: String,
    /// admin, developer or partner.
    pub actor: String,
    /// The partner, for partner steps.
    pub partner: Option<String>,
    /// The step's state (pending, or failed for a probe).
    pub state: String,
    /// What to do.
    pub text: String,
}
