//! Flow definitions: one declarative TOML file per integration flow, parsed into [`Flow`].
//!
//! A runtime node runs a flow for every message posted to its sender endpoint
//! (`POST /flows/NAME` on the node, see [`Flow::sender_path`]): the message passes through
//! the [`Step`]s in order (sign, verify, encrypt, decrypt, each with aliases from the
//! keystore), and the result is posted to the [`Receiver`] (HTTP, or HTTPS with optional
//! mutual TLS).
//!
//! # File format
//!
//! ```toml
//! name = "orders-to-acme"            # 1-100 characters of a-z 0-9 . _ - (folded to lower case)
//! description = "Orders, signed twice and posted to ACME over mutual TLS"   # optional
//! sender_partner = "shop"            # optional: the partner system that sends here and gets the answers
//!
//! [[steps]]
//! type = "sign"                      # sign | verify | encrypt | decrypt
//! detached = false                   # optional, default false
//!   [[steps.signers]]                # 1 to 16 signers; the active version of each alias signs
//!   alias = "signing-2026"
//!   digest = "sha256"                # optional: sha256 | sha384 | sha512; default by key type
//!   scheme = "rsa-pss"               # optional: rsa-pkcs1 | rsa-pss | ecdsa | ed25519
//!   certificates = "signer"          # optional: none | signer | chain, default signer
//!   signing_time = true              # optional, default true
//!   [[steps.signers]]
//!   alias = "signing-2027"
//!   if_active = true                 # optional, default false: sign only while the alias has an active key
//!
//! [[steps]]
//! type = "verify"
//! trust = ["partner-signing"]        # optional; empty or absent: every certificate in the keystore
//! require = "all"                    # optional: all | any, default all
//!
//! [[steps]]
//! type = "encrypt"
//! recipients = ["acme-encryption"]   # 1 to 16 aliases (certificates or key pairs)
//! key_transport = "rsa-oaep"         # optional: rsa-oaep | rsa-oaep-sha1 | rsa-oaep-sha384 | rsa-oaep-sha512 | rsa-pkcs1, default rsa-oaep
//! content_encryption = "aes256-gcm"  # optional: aes128-cbc | aes256-cbc | aes128-gcm | aes256-gcm, default aes256-cbc
//!
//! [[steps]]
//! type = "decrypt"                   # with any valid key pair: no alias
//!
//! [[response_steps]]                 # optional: run over the receiver's 2xx answer before it goes back
//! type = "sign"                      # the same step types and fields as [[steps]]
//!   [[response_steps.signers]]
//!   alias = "responses-2026"
//!
//! [receiver]
//! url = "https://127.0.0.1:8443/in"  # http:// or https://
//! partner = "acme"                   # optional: the partner system the channel posts to
//! client_alias = "tls-client"        # optional: present the certificate of this key pair alias
//! client_any_valid_key = false       # optional: present any valid key pair the server's CAs accept
//! trust = ["acme-root"]              # optional, https only; empty or absent: the keystore's certificates
//! connect_timeout_ms = 5000          # optional, 1 to 600000, default 5000
//! timeout_ms = 30000                 # optional, 1 to 600000, default 30000 (whole request)
//! retries = 2                        # optional, 0 to 10, default 2
//! backoff_ms = 200                   # optional, 0 to 600000, default 200; doubles after each retry
//! ```
//!
//! The names of algorithms and choices are those of the command line and the API
//! (`keyward_cms`'s `FromStr`/`Display`). A flow may have no steps: it then forwards the
//! message unchanged.
//!
//! # Rules
//! [`parse`] refuses, with an error naming the line, the column and the field:
//! - TOML syntax errors, unknown fields, missing required fields (`name`, `receiver`,
//!   `receiver.url`, each step's `type`, each signer's `alias`) and values of the wrong type;
//! - an invalid flow name or alias (see [`Alias`]), an unknown step type or algorithm name;
//! - a field that does not belong to the step's type (`recipients` in a sign step, anything
//!   but `type` in a decrypt step);
//! - a sign step without 1 to 16 signers, an encrypt step without 1 to 16 recipients;
//! - a `partner` or `sender_partner` that breaks the alias rules (partner names follow them);
//! - a receiver URL that is not `http://` or `https://` with a host (and an optional port
//!   and path);
//! - `client_alias` together with `client_any_valid_key = true`; a client certificate or
//!   a non-empty `trust` with an `http://` URL;
//! - timeouts outside 1 to 600000 ms, more than 10 retries, a backoff above 600000 ms.
//!
//! [`check_aliases`] (or [`parse_and_check`]) then checks every alias against the keystore:
//! it must exist (except a signer's with `if_active = true`, which may come later), and
//! signer aliases and `client_alias` must be key pairs.
//!
//! At run time, a signer with `if_active = true` is skipped while its alias has no active,
//! valid key pair; a sign step with no signer left fails. That is how a sign step carries a
//! second alias for the next key: a renewal adds a key pair under it, and from then on
//! messages carry two signatures. Response steps run only on a 2xx answer; a failing one
//! answers the sender 502, naming the response step.
//!
//! Field paths in errors count from 0 (`steps[1].signers[0].alias` is the first signer of
//! the second step); lines and columns count from 1, columns in characters.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use keyward_cms::{
    ContentEncryption, DigestAlgorithm, IncludeCertificates, KeyTransport, OaepHash, Require,
    SignatureScheme,
};
use keyward_domain::{Alias, DomainError, EntryKind};
use keyward_keystore::SignerRequest;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Longest flow name accepted, in characters.
pub const MAX_FLOW_NAME_LEN: usize = 100;
/// Most signers in one sign step (the keystore's limit per message).
pub const MAX_SIGNERS: usize = keyward_keystore::messages::MAX_SIGNERS;
/// Most recipients in one encrypt step (the keystore's limit per message).
pub const MAX_RECIPIENTS: usize = keyward_keystore::messages::MAX_SIGNERS;
/// Longest connect or request timeout, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Longest initial backoff between retries, in milliseconds.
pub const MAX_BACKOFF_MS: u64 = 600_000;
/// Most retries after a failed attempt.
pub const MAX_RETRIES: u32 = 10;
/// Connect timeout when the file names none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Whole-request timeout when the file names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Retries when the file names none.
pub const DEFAULT_RETRIES: u32 = 2;
/// Wait before the first retry when the file names none.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(200);
/// Key transport of an encrypt step that names none (the keystore API's default).
pub const DEFAULT_KEY_TRANSPORT: KeyTransport = KeyTransport::RsaOaep(OaepHash::Sha256);
/// Content encryption of an encrypt step that names none (the keystore API's default).
pub const DEFAULT_CONTENT_ENCRYPTION: ContentEncryption = ContentEncryption::Aes256Cbc;
/// The step types, as written in `type = "…"`.
pub const STEP_TYPES: [&str; 4] = ["sign", "verify", "encrypt", "decrypt"];

/// Longest piece of user input quoted back in an error message, in characters.
const QUOTE_LEN: usize = 80;

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// A parsed, structurally valid flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The flow's name, also its sender path.
    pub name: FlowName,
    /// Free text for people.
    pub description: Option<String>,
    /// Message-security steps, applied in order.
    pub steps: Vec<Step>,
    /// Steps applied, in order, to the receiver's 2xx answer before it goes back to the
    /// sender (signing a response, for example).
    pub response_steps: Vec<Step>,
    /// The partner system that sends to this flow and receives its answers, if declared.
    pub sender_partner: Option<String>,
    /// Where the result goes.
    pub receiver: Receiver,
}

/// A validated, lower-case flow name: 1 to [`MAX_FLOW_NAME_LEN`] characters of
/// `a-z 0-9 . _ -`, starting with a letter or digit (upper case is folded, as for aliases).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowName(String);

/// Why a flow name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid flow name {name:?}: {reason}")]
pub struct FlowNameError {
    /// The input (cut to 80 characters).
    pub name: String,
    /// Which rule it breaks.
    pub reason: String,
}

impl FlowName {
    /// Parses user input into a flow name.
    ///
    /// # Errors
    /// [`FlowNameError`] naming the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, FlowNameError> {
        keyward_domain::alias::check_name(input, "a flow name", MAX_FLOW_NAME_LEN)
            .map(Self)
            .map_err(|reason| FlowNameError { name: input.chars().take(QUOTE_LEN).collect(), reason })
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlowName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FlowName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for FlowName {
    type Err = FlowNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One message-security step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Sign the message as CMS SignedData, once per signer, each with the active version
    /// of its alias.
    Sign {
        /// 1 to [`MAX_SIGNERS`] signers.
        signers: Vec<SignerStep>,
        /// Whether the content stays out of the SignedData.
        detached: bool,
    },
    /// Verify a CMS SignedData and pass its content on.
    Verify {
        /// Aliases whose certificates are trusted; empty: every entry in the keystore.
        trust: Vec<Alias>,
        /// Whether all signers or any one must verify.
        require: Require,
    },
    /// Encrypt the message as CMS EnvelopedData (AuthEnvelopedData for AES-GCM).
    Encrypt {
        /// 1 to [`MAX_RECIPIENTS`] aliases whose active certificates receive the message.
        recipients: Vec<Alias>,
        /// How the content-encryption key reaches each recipient.
        key_transport: KeyTransport,
        /// How the content is encrypted.
        content_encryption: ContentEncryption,
    },
    /// Decrypt a CMS EnvelopedData with any valid key pair that is a recipient.
    Decrypt,
}

impl Step {
    /// The step's type as written in the file: `sign`, `verify`, `encrypt` or `decrypt`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Sign { .. } => "sign",
            Step::Verify { .. } => "verify",
            Step::Encrypt { .. } => "encrypt",
            Step::Decrypt => "decrypt",
        }
    }
}

/// One signer of a sign step; the same choices as the keystore's [`SignerRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerStep {
    /// The key pair whose active version signs.
    pub alias: Alias,
    /// Digest algorithm; `None`: chosen by the key type when signing.
    pub digest: Option<DigestAlgorithm>,
    /// Signature scheme; `None`: the key's natural one.
    pub scheme: Option<SignatureScheme>,
    /// Which certificates go into the message (`certificates` in the file).
    pub include: IncludeCertificates,
    /// Whether to add a signing-time attribute.
    pub signing_time: bool,
    /// Sign only while the alias has an active, valid key pair (else skip this signer):
    /// how a sign step carries a second alias for the next key.
    pub if_active: bool,
}

impl SignerStep {
    /// The keystore request for this signer.
    pub fn to_request(&self) -> SignerRequest {
        SignerRequest {
            alias: self.alias.clone(),
            digest: self.digest,
            scheme: self.scheme,
            include: self.include,
            signing_time: self.signing_time,
        }
    }
}

impl From<&SignerStep> for SignerRequest {
    fn from(step: &SignerStep) -> Self {
        step.to_request()
    }
}

/// The receiver channel: where a flow posts its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// The URL, its scheme in lower case.
    pub url: String,
    /// The URL's scheme.
    pub scheme: Scheme,
    /// The client certificate presented (https only).
    pub client: ClientAuth,
    /// Aliases trusted for the server's certificate (https only); empty: the keystore's
    /// certificates.
    pub trust: Vec<Alias>,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for a whole request.
    pub timeout: Duration,
    /// Attempts after the first failed one.
    pub retries: u32,
    /// Wait before the first retry; doubles after each retry.
    pub backoff: Duration,
    /// The partner system this channel posts to, if declared.
    pub partner: Option<String>,
}

/// A receiver URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client certificate a receiver channel presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate.
    None,
    /// The active version of this key pair alias.
    Alias(Alias),
    /// Any valid key pair whose certificate the server's requested CAs accept.
    AnyValidKey,
}

/// Where a flow names an alias, for the where-used report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasUse {
    /// The alias.
    pub alias: Alias,
    /// The step's index in [`Flow::steps`] (from 0); `None` for the receiver.
    pub step: Option<usize>,
    /// What the alias is used for: `sign step`, `verify step trust`, `encrypt step
    /// recipient`, `receiver client certificate` or `receiver trust`.
    pub place: &'static str,
}

/// Where a flow uses "any valid key" instead of an alias, for the where-used report.
///
/// Displays as `decrypt step N` (N counted from 1) or
/// `receiver client certificate (any valid key)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyValidKeyUse {
    /// The step's index in [`Flow::steps`] (from 0); `None` for the receiver.
    pub step: Option<usize>,
    /// `decrypt step` or `receiver client certificate (any valid key)`.
    pub place: &'static str,
}

impl fmt::Display for AnyValidKeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(index) => write!(f, "{} {}", self.place, index + 1),
            None => f.write_str(self.place),
        }
    }
}

/// An alias named in a flow, with where it sits in the file.
struct Site {
    alias: Alias,
    step: Option<usize>,
    place: &'static str,
    path: Vec<Seg>,
    needs_key_pair: bool,
    /// A signer with `if_active`: its alias may not exist yet.
    may_be_missing: bool,
}

impl Flow {
    /// `/flows/NAME`: where a node accepts messages for this flow.
    pub fn sender_path(&self) -> String {
        format!("/flows/{}", self.name)
    }

    /// Every alias the flow names, in file order (steps first, then the receiver).
    pub fn aliases(&self) -> Vec<AliasUse> {
        self.sites()
            .into_iter()
            .map(|site| AliasUse {
                alias: site.alias,
                step: site.step,
                place: site.place,
            })
            .collect()
    }

    /// Every place where the flow uses "any valid key": decrypt steps, and a receiver with
    /// `client_any_valid_key = true`.
    pub fn uses_any_valid_key(&self) -> Vec<AnyValidKeyUse> {
        let mut uses: Vec<AnyValidKeyUse> = self
            .steps
            .iter()
            .enumerate()
            .filter(|(_, step)| matches!(step, Step::Decrypt))
            .map(|(index, _)| AnyValidKeyUse {
                step: Some(index),
                place: "decrypt step",
            })
            .collect();
        uses.extend(self.response_steps.iter().enumerate().filter(|(_, step)| matches!(step, Step::Decrypt)).map(
            |(index, _)| AnyValidKeyUse { step: Some(index), place: "response decrypt step" },
        ));
        if self.receiver.client == ClientAuth::AnyValidKey {
            uses.push(AnyValidKeyUse {
                step: None,
                place: "receiver client certificate (any valid key)",
            });
        }
        uses
    }

    fn sites(&self) -> Vec<Site> {
        let mut sites = Vec::new();
        let lists: [(&str, &Vec<Step>, bool); 2] = [("steps", &self.steps, false), ("response_steps", &self.response_steps, true)];
        for (list, steps, response) in lists {
            for (index, step) in steps.iter().enumerate() {
                let base = || vec![Seg::key(list), Seg::Index(index)];
                match step {
                    Step::Sign { signers, .. } => {
                        for (number, signer) in signers.iter().enumerate() {
                            let mut path = base();
                            path.extend([Seg::key("signers"), Seg::Index(number), Seg::key("alias")]);
                            sites.push(Site {
                                alias: signer.alias.clone(),
                                step: Some(index),
                                place: if response { "response sign step" } else { "sign step" },
                                path,
                                needs_key_pair: true,
                                may_be_missing: signer.if_active,
                            });
                        }
                    }
                    Step::Verify { trust, .. } => {
                        let mut path = base();
                        path.push(Seg::key("trust"));
                        let place = if response { "response verify step trust" } else { "verify step trust" };
                        push_list(&mut sites, Some(index), place, &path, trust);
                    }
                    Step::Encrypt { recipients, .. } => {
                        let mut path = base();
                        path.push(Seg::key("recipients"));
                        let place = if response { "response encrypt step recipient" } else { "encrypt step recipient" };
                        push_list(&mut sites, Some(index), place, &path, recipients);
                    }
                    Step::Decrypt => {}
                }
            }
        }
        if let ClientAuth::Alias(alias) = &self.receiver.client {
            sites.push(Site {
                alias: alias.clone(),
                step: None,
                place: "receiver client certificate",
                path: vec![Seg::key("receiver"), Seg::key("client_alias")],
                needs_key_pair: true,
                may_be_missing: false,
            });
        }
        let path = [Seg::key("receiver"), Seg::key("trust")];
        push_list(&mut sites, None, "receiver trust", &path, &self.receiver.trust);
        sites
    }
}

/// Adds one site per alias of a list that may name key pairs or certificates.
fn push_list(sites: &mut Vec<Site>, step: Option<usize>, place: &'static str, path: &[Seg], aliases: &[Alias]) {
    for (index, alias) in aliases.iter().enumerate() {
        let mut path = path.to_vec();
        path.push(Seg::Index(index));
        sites.push(Site {
            alias: alias.clone(),
            step,
            place,
            path,
            needs_key_pair: false,
            may_be_missing: false,
        });
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a flow file was refused. Every variant names the 1-based line and column in the
/// file; all but [`FlowError::Syntax`] also name the field, as a path such as
/// `steps[1].signers[0].alias` or `receiver.client_alias`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The file is not valid TOML.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A field is unknown, missing, of the wrong type, or breaks a rule.
    #[error("{}: {message}", location(.line, .column, .field))]
    Invalid {
        /// Line of the offending value, from 1.
        line: usize,
        /// Column of the offending value, from 1, in characters.
        column: usize,
        /// Path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No keystore entry has the alias.
    #[error("{}: unknown alias {alias} (no entry in the keystore has it)", location(.line, .column, .field))]
    UnknownAlias {
        /// Line of the alias, from 1.
        line: usize,
        /// Column of the alias, from 1, in characters.
        column: usize,
        /// Path of the field.
        field: String,
        /// The alias.
        alias: Alias,
        /// What the flow uses it for (as in [`AliasUse::place`]).
        place: &'static str,
    },
    /// The alias names a certificate where a key pair is needed (a signer, a client
    /// certificate).
    #[error(
        "{}: {alias} is a certificate entry, but a {place} needs a key pair",
        location(.line, .column, .field)
    )]
    NotAKeyPair {
        /// Line of the alias, from 1.
        line: usize,
        /// Column of the alias, from 1, in characters.
        column: usize,
        /// Path of the field.
        field: String,
        /// The alias.
        alias: Alias,
        /// What the flow uses it for (as in [`AliasUse::place`]).
        place: &'static str,
    },
}

impl FlowError {
    /// The line the error points at, from 1.
    pub fn line(&self) -> usize {
        match self {
            FlowError::Syntax { line, .. }
            | FlowError::Invalid { line, .. }
            | FlowError::UnknownAlias { line, .. }
            | FlowError::NotAKeyPair { line, .. } => *line,
        }
    }

    /// The column the error points at, from 1, in characters.
    pub fn column(&self) -> usize {
        match self {
            FlowError::Syntax { column, .. }
            | FlowError::Invalid { column, .. }
            | FlowError::UnknownAlias { column, .. }
            | FlowError::NotAKeyPair { column, .. } => *column,
        }
    }

    /// The path of the field, when the error concerns one.
    pub fn field(&self) -> Option<&str> {
        match self {
            FlowError::Syntax { .. } => None,
            FlowError::Invalid { field, .. }
            | FlowError::UnknownAlias { field, .. }
            | FlowError::NotAKeyPair { field, .. } => (!field.is_empty()).then_some(field.as_str()),
        }
    }
}

/// `line L, column C, FIELD` (without the field when there is none).
fn location(line: &usize, column: &usize, field: &str) -> String {
    if field.is_empty() {
        format!("line {line}, column {column}")
    } else {
        format!("line {line}, column {column}, {field}")
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Parses a flow file and checks every rule that needs no keystore.
///
/// # Errors
/// The first problem found, as a [`FlowError`] with its line, column and field.
pub fn parse(source: &str) -> Result<Flow, FlowError> {
    let raw: RawFlow = toml::from_str(source).map_err(|error| toml_error(source, &error))?;
    build(&Source(source), raw)
}

/// Checks the aliases of `flow` against the keystore: each must exist (`lookup` gives its
/// kind, or `None` when no entry has it), and signer aliases and `client_alias` must be
/// key pairs; trusted and recipient aliases may be key pairs or certificates.
///
/// `source` is the file `flow` was parsed from; the error's line and column are taken from
/// it (line 1, column 1 when it does not contain the field).
///
/// # Errors
/// [`FlowError::UnknownAlias`] or [`FlowError::NotAKeyPair`] for the first alias, in file
/// order, that fails.
pub fn check_aliases(
    source: &str,
    flow: &Flow,
    lookup: impl Fn(&Alias) -> Option<EntryKind>,
) -> Result<(), FlowError> {
    for site in flow.sites() {
        let kind = lookup(&site.alias);
        let fits = match kind {
            None => site.may_be_missing,
            Some(EntryKind::KeyPair) => true,
            Some(EntryKind::Certificate) => !site.needs_key_pair,
        };
        if fits {
            continue;
        }
        let (line, column) = DeTable::parse(source)
            .ok()
            .and_then(|document| span_of(document.get_ref(), &site.path))
            .map_or((1, 1), |span| line_column(source, span.start));
        let field = render(&site.path);
        return Err(match kind {
            None => FlowError::UnknownAlias { line, column, field, alias: site.alias, place: site.place },
            Some(_) => FlowError::NotAKeyPair { line, column, field, alias: site.alias, place: site.place },
        });
    }
    Ok(())
}

/// [`parse`] followed by [`check_aliases`].
///
/// # Errors
/// As [`parse`] and [`check_aliases`].
pub fn parse_and_check(
    source: &str,
    lookup: impl Fn(&Alias) -> Option<EntryKind>,
) -> Result<Flow, FlowError> {
    let flow = parse(source)?;
    check_aliases(source, &flow, lookup)?;
    Ok(flow)
}

/// The file as serde sees it: every value that a rule may refuse keeps its span.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    name: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    steps: Vec<RawStep>,
    #[serde(default)]
    response_steps: Vec<RawStep>,
    sender_partner: Option<Spanned<String>>,
    receiver: RawReceiver,
}

/// A step with the fields of every type; [`build_step`] refuses those of other types.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    signers: Option<Spanned<Vec<RawSigner>>>,
    detached: Option<Spanned<bool>>,
    trust: Option<Spanned<Vec<Spanned<String>>>>,
    require: Option<Spanned<String>>,
    recipients: Option<Spanned<Vec<Spanned<String>>>>,
    key_transport: Option<Spanned<String>>,
    content_encryption: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    alias: Spanned<String>,
    digest: Option<Spanned<String>>,
    scheme: Option<Spanned<String>>,
    certificates: Option<Spanned<String>>,
    signing_time: Option<bool>,
    if_active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    url: Spanned<String>,
    client_alias: Option<Spanned<String>>,
    client_any_valid_key: Option<Spanned<bool>>,
    trust: Option<Spanned<Vec<Spanned<String>>>>,
    connect_timeout_ms: Option<Spanned<i64>>,
    timeout_ms: Option<Spanned<i64>>,
    retries: Option<Spanned<i64>>,
    backoff_ms: Option<Spanned<i64>>,
    partner: Option<Spanned<String>>,
}

/// The step types, for matching.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StepType {
    Sign,
    Verify,
    Encrypt,
    Decrypt,
}

impl StepType {
    const ALL: [StepType; 4] = [StepType::Sign, StepType::Verify, StepType::Encrypt, StepType::Decrypt];

    fn name(self) -> &'static str {
        match self {
            StepType::Sign => STEP_TYPES[0],
            StepType::Verify => STEP_TYPES[1],
            StepType::Encrypt => STEP_TYPES[2],
            StepType::Decrypt => STEP_TYPES[3],
        }
    }

    /// The fields a step of this type takes besides `type`.
    fn fields(self) -> &'static [&'static str] {
        match self {
            StepType::Sign => &["signers", "detached"],
            StepType::Verify => &["trust", "require"],
            StepType::Encrypt => &["recipients", "key_transport", "content_encryption"],
            StepType::Decrypt => &[],
        }
    }
}

/// The source text, to turn spans into lines and columns.
struct Source<'s>(&'s str);

impl Source<'_> {
    fn invalid(&self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) -> FlowError {
        let (line, column) = line_column(self.0, span.start);
        FlowError::Invalid {
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    fn alias(&self, value: &Spanned<String>, field: impl Into<String>) -> Result<Alias, FlowError> {
        Alias::parse(value.get_ref()).map_err(|error| {
            let reason = match error {
                DomainError::InvalidAlias { reason, .. } => reason,
                other => other.to_string(),
            };
            self.invalid(
                value.span(),
                field,
                format!("{} is not a valid alias: {reason}", quoted(value.get_ref())),
            )
        })
    }

    fn partner(&self, value: &Spanned<String>, field: &str) -> Result<String, FlowError> {
        keyward_domain::partner::check_partner_name(value.get_ref()).map_err(|reason| {
            self.invalid(value.span(), field, format!("{} is not a valid partner name: {reason}", quoted(value.get_ref())))
        })
    }

    fn aliases(&self, values: Vec<Spanned<String>>, field: &str) -> Result<Vec<Alias>, FlowError> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| self.alias(value, format!("{field}[{index}]")))
            .collect()
    }

    /// A name from `keyward_cms` (digest, scheme, ...), whose error lists the valid names.
    fn named<T>(&self, value: &Spanned<String>, field: impl Into<String>) -> Result<T, FlowError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        value
            .get_ref()
            .parse()
            .map_err(|error: T::Err| self.invalid(value.span(), field, error.to_string()))
    }

    /// An optional integer within `min..=max`.
    fn bounded(
        &self,
        value: Option<&Spanned<i64>>,
        field: &str,
        (min, max): (u64, u64),
        unit: &str,
    ) -> Result<Option<u64>, FlowError> {
        let Some(value) = value else { return Ok(None) };
        match u64::try_from(*value.get_ref()) {
            Ok(number) if (min..=max).contains(&number) => Ok(Some(number)),
            _ => Err(self.invalid(
                value.span(),
                field,
                format!("must be between {min} and {max}{unit}, not {}", value.get_ref()),
            )),
        }
    }

    /// A list of 1 to `max` items, `span` pointing at the list (or at the step's type when
    /// the list is missing).
    fn count(&self, span: Range<usize>, field: String, what: &str, items: &str, len: usize, max: usize) -> Result<(), FlowError> {
        if (1..=max).contains(&len) {
            Ok(())
        } else {
            Err(self.invalid(span, field, format!("{what} needs 1 to {max} {items}, this one has {len}")))
        }
    }
}

fn build(source: &Source<'_>, raw: RawFlow) -> Result<Flow, FlowError> {
    let name = FlowName::parse(raw.name.get_ref()).map_err(|error| {
        source.invalid(
            raw.name.span(),
            "name",
            format!("{} is not a valid flow name: {}", quoted(raw.name.get_ref()), error.reason),
        )
    })?;
    let steps = raw
        .steps
        .into_iter()
        .enumerate()
        .map(|(index, step)| build_step(source, "steps", index, step))
        .collect::<Result<Vec<_>, _>>()?;
    let response_steps = raw
        .response_steps
        .into_iter()
        .enumerate()
        .map(|(index, step)| build_step(source, "response_steps", index, step))
        .collect::<Result<Vec<_>, _>>()?;
    let sender_partner = raw.sender_partner.as_ref().map(|p| source.partner(p, "sender_partner")).transpose()?;
    let receiver = build_receiver(source, raw.receiver)?;
    Ok(Flow {
        name,
        description: raw.description,
        steps,
        response_steps,
        sender_partner,
        receiver,
    })
}

fn build_step(source: &Source<'_>, list: &str, index: usize, raw: RawStep) -> Result<Step, FlowError> {
    let base = format!("{list}[{index}]");
    let wanted = raw.kind.get_ref().trim().to_ascii_lowercase();
    let Some(kind) = StepType::ALL.into_iter().find(|kind| kind.name() == wanted) else {
        return Err(source.invalid(
            raw.kind.span(),
            format!("{base}.type"),
            format!(
                "unknown step type {}; use sign, verify, encrypt or decrypt",
                quoted(raw.kind.get_ref())
            ),
        ));
    };
    let present = [
        ("signers", raw.signers.as_ref().map(Spanned::span)),
        ("detached", raw.detached.as_ref().map(Spanned::span)),
        ("trust", raw.trust.as_ref().map(Spanned::span)),
        ("require", raw.require.as_ref().map(Spanned::span)),
        ("recipients", raw.recipients.as_ref().map(Spanned::span)),
        ("key_transport", raw.key_transport.as_ref().map(Spanned::span)),
        ("content_encryption", raw.content_encryption.as_ref().map(Spanned::span)),
    ];
    for (field, span) in present {
        if let Some(span) = span
            && !kind.fields().contains(&field)
        {
            let takes = match kind.fields() {
                [] => "no field but `type`".to_owned(),
                [fields @ .., last] => {
                    let fields: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                    format!("{} and `{last}`", fields.join(", "))
                }
            };
            return Err(source.invalid(
                span,
                format!("{base}.{field}"),
                format!("`{field}` does not belong in a {} step, which takes {takes}", kind.name()),
            ));
        }
    }
    match kind {
        StepType::Sign => {
            let (span, signers) = match raw.signers {
                Some(signers) => (signers.span(), signers.into_inner()),
                None => (raw.kind.span(), Vec::new()),
            };
            let field = format!("{base}.signers");
            source.count(span, field.clone(), "a sign step", "signers", signers.len(), MAX_SIGNERS)?;
            let signers = signers
                .into_iter()
                .enumerate()
                .map(|(number, signer)| build_signer(source, &format!("{field}[{number}]"), signer))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Step::Sign {
                signers,
                detached: raw.detached.is_some_and(|detached| *detached.get_ref()),
            })
        }
        StepType::Verify => {
            let trust = match raw.trust {
                Some(trust) => source.aliases(trust.into_inner(), &format!("{base}.trust"))?,
                None => Vec::new(),
            };
            let require = match &raw.require {
                Some(require) => source.named(require, format!("{base}.require"))?,
                None => Require::All,
            };
            Ok(Step::Verify { trust, require })
        }
        StepType::Encrypt => {
            let (span, recipients) = match raw.recipients {
                Some(recipients) => (recipients.span(), recipients.into_inner()),
                None => (raw.kind.span(), Vec::new()),
            };
            let field = format!("{base}.recipients");
            source.count(span, field.clone(), "an encrypt step", "recipients", recipients.len(), MAX_RECIPIENTS)?;
            let recipients = source.aliases(recipients, &field)?;
            let key_transport = match &raw.key_transport {
                Some(value) => source.named(value, format!("{base}.key_transport"))?,
                None => DEFAULT_KEY_TRANSPORT,
            };
            let content_encryption = match &raw.content_encryption {
                Some(value) => source.named(value, format!("{base}.content_encryption"))?,
                None => DEFAULT_CONTENT_ENCRYPTION,
            };
            Ok(Step::Encrypt {
                recipients,
                key_transport,
                content_encryption,
            })
        }
        StepType::Decrypt => Ok(Step::Decrypt),
    }
}

fn build_signer(source: &Source<'_>, base: &str, raw: RawSigner) -> Result<SignerStep, FlowError> {
    let alias = source.alias(&raw.alias, format!("{base}.alias"))?;
    let digest = raw
        .digest
        .as_ref()
        .map(|value| source.named(value, format!("{base}.digest")))
        .transpose()?;
    let scheme = raw
        .scheme
        .as_ref()
        .map(|value| source.named(value, format!("{base}.scheme")))
        .transpose()?;
    let include = match &raw.certificates {
        Some(value) => source.named(value, format!("{base}.certificates"))?,
        None => IncludeCertificates::Signer,
    };
    Ok(SignerStep {
        alias,
        digest,
        scheme,
        include,
        signing_time: raw.signing_time.unwrap_or(true),
        if_active: raw.if_active.unwrap_or(false),
    })
}

fn build_receiver(source: &Source<'_>, raw: RawReceiver) -> Result<Receiver, FlowError> {
    let (scheme, url) = check_url(raw.url.get_ref()).map_err(|reason| {
        source.invalid(
            raw.url.span(),
            "receiver.url",
            format!("{} is not a usable receiver URL: {reason}", quoted(raw.url.get_ref())),
        )
    })?;
    let client_alias = raw
        .client_alias
        .as_ref()
        .map(|value| source.alias(value, "receiver.client_alias"))
        .transpose()?;
    let any_valid_key = raw.client_any_valid_key.as_ref().filter(|value| *value.get_ref());
    if client_alias.is_some()
        && let Some(any_valid_key) = any_valid_key
    {
        return Err(source.invalid(
            any_valid_key.span(),
            "receiver.client_any_valid_key",
            "client_alias and client_any_valid_key = true exclude each other: present the \
             certificate of one alias or of any valid key pair, not both",
        ));
    }
    if scheme == Scheme::Http {
        let client = match (&raw.client_alias, any_valid_key) {
            (Some(value), _) => Some((value.span(), "receiver.client_alias")),
            (None, Some(value)) => Some((value.span(), "receiver.client_any_valid_key")),
            (None, None) => None,
        };
        if let Some((span, field)) = client {
            return Err(source.invalid(
                span,
                field,
                "a client certificate needs an https:// receiver URL; this one is http://",
            ));
        }
        if let Some(trust) = raw.trust.as_ref().filter(|trust| !trust.get_ref().is_empty()) {
            return Err(source.invalid(
                trust.span(),
                "receiver.trust",
                "trust applies to the server certificate of an https:// receiver URL; this one is http://",
            ));
        }
    }
    let client = match (client_alias, any_valid_key) {
        (Some(alias), _) => ClientAuth::Alias(alias),
        (None, Some(_)) => ClientAuth::AnyValidKey,
        (None, None) => ClientAuth::None,
    };
    let trust = match raw.trust {
        Some(trust) => source.aliases(trust.into_inner(), "receiver.trust")?,
        None => Vec::new(),
    };
    let timeout_range = (1, MAX_TIMEOUT_MS);
    let connect_timeout = source
        .bounded(raw.connect_timeout_ms.as_ref(), "receiver.connect_timeout_ms", timeout_range, " milliseconds")?
        .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis);
    let timeout = source
        .bounded(raw.timeout_ms.as_ref(), "receiver.timeout_ms", timeout_range, " milliseconds")?
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    let retries = source
        .bounded(raw.retries.as_ref(), "receiver.retries", (0, u64::from(MAX_RETRIES)), "")?
        // At most MAX_RETRIES here, so the conversion cannot fail.
        .map_or(DEFAULT_RETRIES, |retries| u32::try_from(retries).unwrap_or(MAX_RETRIES));
    let backoff = source
        .bounded(raw.backoff_ms.as_ref(), "receiver.backoff_ms", (0, MAX_BACKOFF_MS), " milliseconds")?
        .map_or(DEFAULT_BACKOFF, Duration::from_millis);
    let partner = raw.partner.as_ref().map(|p| source.partner(p, "receiver.partner")).transpose()?;
    Ok(Receiver {
        url,
        scheme,
        client,
        trust,
        connect_timeout,
        timeout,
        retries,
        backoff,
        partner,
    })
}

/// Checks `scheme://host[:port][/path…]` (IPv6 hosts in brackets) and returns the scheme
/// and the URL with its scheme in lower case, or why the URL is refused.
fn check_url(url: &str) -> Result<(Scheme, String), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("it does not start with http:// or https://".into());
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(format!("scheme {} is not supported; use http:// or https://", quoted(scheme))),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user information (user@host) is not supported".into());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err("the IPv6 address lacks its closing ]".into());
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.')) {
            return Err(format!("{} is not an IPv6 address", quoted(host)));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| format!("unexpected {} after the IPv6 address", quoted(after)))?),
        };
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')) {
            return Err(format!("host {} is not a host name or an IP address", quoted(host)));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("it names no host".into());
    }
    if let Some(port) = port {
        let valid = port.chars().all(|c| c.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|port| port != 0);
        if !valid {
            return Err(format!("port {} is not a number from 1 to 65535", quoted(port)));
        }
    }
    Ok((scheme, format!("{}://{rest}", scheme.as_str())))
}

/// Input quoted for a message, cut to [`QUOTE_LEN`] characters.
fn quoted(input: &str) -> String {
    format!("{:?}", input.chars().take(QUOTE_LEN).collect::<String>())
}

// ---------------------------------------------------------------------------------------
// Locations: byte offsets to lines and columns, spans to field paths and back
// ---------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn key(name: &str) -> Self {
        Seg::Key(name.to_owned())
    }
}

/// `steps[0].signers[1].alias`
fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Turns a `toml` error into a [`FlowError`]: a syntax error when the document does not
/// parse, otherwise a field error whose path is found from the error's span.
fn toml_error(source: &str, error: &toml::de::Error) -> FlowError {
    let span = error.span().unwrap_or(0..0);
    let (line, column) = line_column(source, span.start);
    let message = error.message().trim().to_owned();
    let Ok(document) = DeTable::parse(source) else {
        return FlowError::Syntax { line, column, message };
    };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field.to_owned());
    let path = match missing {
        // the span is the table's (its header); the field is one of its keys
        Some(field) => {
            let mut path = path_at(document.get_ref(), &span, true);
            path.push(Seg::Key(field));
            path
        }
        None => path_at(document.get_ref(), &span, false),
    };
    FlowError::Invalid {
        line,
        column,
        field: render(&path),
        message: tidy(&message),
    }
}

/// Serde's words for this module's types, in the file's terms.
fn tidy(message: &str) -> String {
    let mut message = message
        .replace(" as i128, expected i64", ", expected an integer")
        .replace("expected i64", "expected an integer");
    for raw in ["RawFlow", "RawStep", "RawSigner", "RawReceiver"] {
        message = message.replace(&format!("struct {raw}"), "a table");
    }
    message
}

/// The path of the key or value at `span`: the one whose span equals it (`exact`), or the
/// smallest, deepest one that contains its start. The document itself is the empty path.
fn path_at(document: &DeTable<'_>, span: &Range<usize>, exact: bool) -> Vec<Seg> {
    let mut best: Option<(usize, usize, Vec<Seg>)> = None;
    let mut visit = |node: Range<usize>, path: &[Seg]| {
        let hit = if exact {
            node == *span
        } else {
            node.start <= span.start && span.start < node.end
        };
        let (len, depth) = (node.len(), path.len());
        let better = best
            .as_ref()
            .is_none_or(|(best_len, best_depth, _)| len < *best_len || (len == *best_len && depth >= *best_depth));
        if hit && better {
            best = Some((len, depth, path.to_vec()));
        }
    };
    walk_table(document, &mut Vec::new(), &mut visit);
    best.map(|(_, _, path)| path).unwrap_or_default()
}

fn walk_table(table: &DeTable<'_>, path: &mut Vec<Seg>, visit: &mut dyn FnMut(Range<usize>, &[Seg])) {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        visit(key.span(), path);
        walk_value(value, path, visit);
        path.pop();
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, path: &mut Vec<Seg>, visit: &mut dyn FnMut(Range<usize>, &[Seg])) {
    visit(value.span(), path);
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, path, visit),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                path.push(Seg::Index(index));
                walk_value(item, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The span of the value at `path`, if the document has one.
fn span_of(document: &DeTable<'_>, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut value = document.iter().find(|(key, _)| key.get_ref() == first)?.1;
    for seg in rest {
        value = match (seg, value.get_ref()) {
            (Seg::Key(name), DeValue::Table(table)) => table.iter().find(|(key, _)| key.get_ref() == name)?.1,
            (Seg::Index(index), DeValue::Array(array)) => array.get(*index)?,
            _ => return None,
        };
    }
    Some(value.span())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn alias(name: &str) -> Alias {
        Alias::parse(name).unwrap()
    }

    /// The ```toml example of the module documentation, so that it is tested as written.
    fn documented_example() -> String {
        let this_file = include_str!("flow.rs");
        let mut lines = this_file
            .lines()
            .skip_while(|line| line.trim() != "//! ```toml")
            .skip(1)
            .take_while(|line| line.trim() != "//! ```")
            .map(|line| line.strip_prefix("//! ").unwrap_or(line.trim_start_matches("//!")))
            .collect::<Vec<_>>()
            .join("\n");
        lines.push('\n');
        lines
    }

    fn example_model() -> Flow {
        Flow {
            name: FlowName::parse("orders-to-acme").unwrap(),
            description: Some("Orders, signed twice and posted to ACME over mutual TLS".into()),
            steps: vec![
                Step::Sign {
                    signers: vec![
                        SignerStep {
                            alias: alias("signing-2026"),
                            digest: Some(DigestAlgorithm::Sha256),
                            scheme: Some(SignatureScheme::RsaPss),
                            include: IncludeCertificates::Signer,
                            signing_time: true,
                            if_active: false,
                        },
                        SignerStep {
                            alias: alias("signing-2027"),
                            digest: None,
                            scheme: None,
                            include: IncludeCertificates::Signer,
                            signing_time: true,
                            if_active: true,
                        },
                    ],
                    detached: false,
                },
                Step::Verify {
                    trust: vec![alias("partner-signing")],
                    require: Require::All,
                },
                Step::Encrypt {
                    recipients: vec![alias("acme-encryption")],
                    key_transport: KeyTransport::RsaOaep(OaepHash::Sha256),
                    content_encryption: ContentEncryption::Aes256Gcm,
                },
                Step::Decrypt,
            ],
            response_steps: vec![Step::Sign {
                signers: vec![SignerStep {
                    alias: alias("responses-2026"),
                    digest: None,
                    scheme: None,
                    include: IncludeCertificates::Signer,
                    signing_time: true,
                    if_active: false,
                }],
                detached: false,
            }],
            sender_partner: Some("shop".into()),
            receiver: Receiver {
                url: "https://127.0.0.1:8443/in".into(),
                scheme: Scheme::Https,
                client: ClientAuth::Alias(alias("tls-client")),
                trust: vec![alias("acme-root")],
                connect_timeout: Duration::from_millis(5000),
                timeout: Duration::from_millis(30000),
                retries: 2,
                backoff: Duration::from_millis(200),
                partner: Some("acme".into()),
            },
        }
    }

    #[test]
    fn documented_example_parses_into_the_expected_model() {
        let source = documented_example();
        assert!(source.starts_with("name = \"orders-to-acme\""), "{source}");
        let flow = parse(&source).unwrap();
        assert_eq!(flow, example_model());
        assert_eq!(flow.sender_path(), "/flows/orders-to-acme");
        assert_eq!(
            flow.steps.iter().map(Step::kind).collect::<Vec<_>>(),
            ["sign", "verify", "encrypt", "decrypt"]
        );
    }

    #[test]
    fn minimal_flow_gets_the_defaults() {
        let flow = parse("name = \"Relay\"\n[receiver]\nurl = \"HTTP://partner.example\"\n").unwrap();
        assert_eq!(flow.name.as_str(), "relay");
        assert_eq!(flow.description, None);
        assert!(flow.steps.is_empty());
        assert_eq!(
            flow.receiver,
            Receiver {
                url: "http://partner.example".into(),
                scheme: Scheme::Http,
                client: ClientAuth::None,
                trust: Vec::new(),
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                timeout: DEFAULT_TIMEOUT,
                retries: DEFAULT_RETRIES,
                backoff: DEFAULT_BACKOFF,
                partner: None,
            }
        );
    }

    #[test]
    fn step_defaults_and_inline_forms() {
        let source = r#"name = "f"
steps = [
  { type = "Sign", signers = [{ alias = "A1", certificates = "chain", signing_time = false }], detached = true },
  { type = "verify" },
  { type = "encrypt", recipients = ["r1", "r2"] },
]
[receiver]
url = "https://[::1]:9443"
client_any_valid_key = true
retries = 0
backoff_ms = 0
timeout_ms = 600000
"#;
        let flow = parse(source).unwrap();
        assert_eq!(
            flow.steps,
            vec![
                Step::Sign {
                    signers: vec![SignerStep {
                        alias: alias("a1"),
                        digest: None,
                        scheme: None,
                        include: IncludeCertificates::Chain,
                        signing_time: false,
                        if_active: false,
                    }],
                    detached: true,
                },
                Step::Verify { trust: vec![], require: Require::All },
                Step::Encrypt {
                    recipients: vec![alias("r1"), alias("r2")],
                    key_transport: DEFAULT_KEY_TRANSPORT,
                    content_encryption: DEFAULT_CONTENT_ENCRYPTION,
                },
            ]
        );
        assert_eq!(flow.receiver.client, ClientAuth::AnyValidKey);
        assert_eq!(flow.receiver.retries, 0);
        assert_eq!(flow.receiver.backoff, Duration::ZERO);
        assert_eq!(flow.receiver.timeout, Duration::from_secs(600));
        let request = flow_signer(&flow).to_request();
        assert_eq!(request.alias, alias("a1"));
        assert_eq!(request.include, IncludeCertificates::Chain);
        assert!(!request.signing_time);
    }

    fn flow_signer(flow: &Flow) -> &SignerStep {
        match &flow.steps[0] {
            Step::Sign { signers, .. } => &signers[0],
            other => panic!("not a sign step: {other:?}"),
        }
    }

    /// A valid receiver to append to sources that test steps.
    const RECEIVER: &str = "[receiver]\nurl = \"https://partner.example/in\"\n";

    #[test]
    fn bad_files_as_a_table() {
        let seventeen = (0..17).map(|n| format!("{{ alias = \"s{n}\" }}")).collect::<Vec<_>>().join(", ");
        let too_many_signers = format!("name = \"f\"\n[[steps]]\ntype = \"sign\"\nsigners = [{seventeen}]\n{RECEIVER}");
        let seventeen = (0..17).map(|n| format!("\"r{n}\"")).collect::<Vec<_>>().join(", ");
        let too_many_recipients = format!("name = \"f\"\n[[steps]]\ntype = \"encrypt\"\nrecipients = [{seventeen}]\n{RECEIVER}");
        let long_name = format!("name = \"{}\"\n{RECEIVER}", "n".repeat(101));
        let step = |body: &str| format!("name = \"f\"\n[[steps]]\n{body}\n{RECEIVER}");
        let receiver = |body: &str| format!("name = \"f\"\n[receiver]\n{body}\n");
        // (source, line, field (None: syntax error), phrase of the message)
        let cases: Vec<(String, usize, Option<&str>, &str)> = vec![
            // structure, as toml and serde see it
            (format!("name = \"f\"\nnmae = \"g\"\n{RECEIVER}"), 2, Some("nmae"), "unknown field `nmae`"),
            (RECEIVER.to_owned(), 1, Some("name"), "missing field `name`"),
            ("name = \"f\"\n".to_owned(), 1, Some("receiver"), "missing field `receiver`"),
            (receiver("timeout_ms = 10"), 2, Some("receiver.url"), "missing field `url`"),
            (receiver("url = \"http://x\"\nretry = 3"), 4, Some("receiver.retry"), "unknown field `retry`"),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"a\"\ndigets = \"sha256\""), 6, Some("steps[0].signers[0].digets"), "unknown field `digets`"),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"a\"\n[[steps.signers]]\ndigest = \"sha256\""), 6, Some("steps[0].signers[1].alias"), "missing field `alias`"),
            (step("detached = true"), 2, Some("steps[0].type"), "missing field `type`"),
            (step("type = \"decrypt\"\nalias = \"k\""), 4, Some("steps[0].alias"), "unknown field `alias`"),
            (step("type = \"sign\"\ndetached = \"yes\""), 4, Some("steps[0].detached"), "invalid type"),
            // partners and response steps
            (receiver("url = \"http://x\"\npartner = \"ACME Corp\""), 4, Some("receiver.partner"), "not a valid partner name"),
            (format!("name = \"f\"\nsender_partner = \"\"\n{RECEIVER}"), 2, Some("sender_partner"), "must not be empty"),
            (format!("name = \"f\"\n[[response_steps]]\ntype = \"sing\"\n{RECEIVER}"), 3, Some("response_steps[0].type"), "unknown step type"),
            (format!("name = \"f\"\n[[response_steps]]\ntype = \"sign\"\n{RECEIVER}"), 3, Some("response_steps[0].signers"), "needs 1 to 16 signers"),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"a\"\nif_active = \"yes\""), 6, Some("steps[0].signers[0].if_active"), "invalid type"),
            (receiver("url = \"http://x\"\nbackoff_ms = \"200\""), 4, Some("receiver.backoff_ms"), "expected an integer"),
            (receiver("url = \"http://x\"\nretries = 99999999999999999999"), 4, Some("receiver.retries"), "expected an integer"),
            (format!("name = \"f\"\n[steps]\ntype = \"sign\"\n{RECEIVER}"), 2, Some("steps"), "invalid type"),
            (format!("name = \"f\"\nsteps = [\"sign\"]\n{RECEIVER}"), 2, Some("steps[0]"), "invalid type: string \"sign\", expected a table"),
            ("name = \"f\"\nreceiver = 1\n".to_owned(), 2, Some("receiver"), "expected a table"),
            // syntax
            ("name = \"f\"\n\n[receiver]\nurl = http://x\n".to_owned(), 4, None, "string values must be quoted"),
            ("name = \"f\"\nname = \"g\"\n".to_owned(), 2, None, "duplicate key"),
            ("name = \"f\n".to_owned(), 1, None, "invalid basic string"),
            // names and aliases
            (format!("name = \"Orders To ACME\"\n{RECEIVER}"), 1, Some("name"), "is not a valid flow name"),
            (format!("name = \"\"\n{RECEIVER}"), 1, Some("name"), "must not be empty"),
            (long_name, 1, Some("name"), "at most 100 characters"),
            (format!("name = \"-f\"\n{RECEIVER}"), 1, Some("name"), "must start with a letter or a digit"),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"Bad Alias!\""), 5, Some("steps[0].signers[0].alias"), "\"Bad Alias!\" is not a valid alias"),
            (step("type = \"verify\"\ntrust = [\"ok\",\n  \"not ok\"]"), 5, Some("steps[0].trust[1]"), "is not a valid alias"),
            (step("type = \"encrypt\"\nrecipients = [\"/etc\"]"), 4, Some("steps[0].recipients[0]"), "is not a valid alias"),
            (receiver("url = \"https://x\"\nclient_alias = \"a b\""), 4, Some("receiver.client_alias"), "is not a valid alias"),
            (receiver("url = \"https://x\"\ntrust = [\".hidden\"]"), 4, Some("receiver.trust[0]"), "is not a valid alias"),
            // steps
            (step("type = \"sign\""), 3, Some("steps[0].signers"), "a sign step needs 1 to 16 signers, this one has 0"),
            (step("type = \"sign\"\nsigners = []"), 4, Some("steps[0].signers"), "this one has 0"),
            (too_many_signers, 4, Some("steps[0].signers"), "this one has 17"),
            (step("type = \"encrypt\""), 3, Some("steps[0].recipients"), "an encrypt step needs 1 to 16 recipients"),
            (too_many_recipients, 4, Some("steps[0].recipients"), "this one has 17"),
            (step("type = \"compress\""), 3, Some("steps[0].type"), "unknown step type \"compress\""),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"a\"\ndigest = \"md5\""), 6, Some("steps[0].signers[0].digest"), "unknown digest algorithm \"md5\""),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"a\"\nscheme = \"dsa\""), 6, Some("steps[0].signers[0].scheme"), "unknown signature scheme"),
            (step("type = \"sign\"\n[[steps.signers]]\nalias = \"a\"\ncertificates = \"all\""), 6, Some("steps[0].signers[0].certificates"), "unknown certificate choice"),
            (step("type = \"verify\"\nrequire = \"most\""), 4, Some("steps[0].require"), "unknown requirement"),
            (step("type = \"encrypt\"\nrecipients = [\"r\"]\nkey_transport = \"rsa-oaep-md5\""), 5, Some("steps[0].key_transport"), "unknown key transport"),
            (step("type = \"encrypt\"\nrecipients = [\"r\"]\ncontent_encryption = \"aes-256-gcm\""), 5, Some("steps[0].content_encryption"), "unknown content encryption"),
            (step("type = \"verify\"\nrecipients = [\"r\"]"), 4, Some("steps[0].recipients"), "which takes `trust` and `require`"),
            (step("type = \"encrypt\"\nrecipients = [\"r\"]\nrequire = \"any\""), 5, Some("steps[0].require"), "which takes `recipients`, `key_transport` and `content_encryption`"),
            (step("type = \"sign\"\nrecipients = [\"r\"]\n[[steps.signers]]\nalias = \"a\""), 4, Some("steps[0].recipients"), "`recipients` does not belong in a sign step, which takes `signers` and `detached`"),
            (step("type = \"decrypt\"\ndetached = true"), 4, Some("steps[0].detached"), "which takes no field but `type`"),
            (format!("name = \"f\"\n[[steps]]\ntype = \"decrypt\"\n[[steps]]\ntype = \"verify\"\nrequire = \"some\"\n{RECEIVER}"), 6, Some("steps[1].require"), "unknown requirement"),
            // receiver
            (receiver("url = \"https://x\"\nclient_alias = \"tls\"\nclient_any_valid_key = true"), 5, Some("receiver.client_any_valid_key"), "exclude each other"),
            (receiver("url = \"http://x\"\nclient_alias = \"tls\""), 4, Some("receiver.client_alias"), "needs an https:// receiver URL"),
            (receiver("url = \"http://x\"\nclient_any_valid_key = true"), 4, Some("receiver.client_any_valid_key"), "needs an https:// receiver URL"),
            (receiver("url = \"http://x\"\ntrust = [\"root\"]"), 4, Some("receiver.trust"), "trust applies to the server certificate"),
            (receiver("url = \"127.0.0.1:8443/in\""), 3, Some("receiver.url"), "does not start with http:// or https://"),
            (receiver("url = \"ftp://x/in\""), 3, Some("receiver.url"), "scheme \"ftp\" is not supported"),
            (receiver("url = \"https:///in\""), 3, Some("receiver.url"), "names no host"),
            (receiver("url = \"https://x:99999/in\""), 3, Some("receiver.url"), "port \"99999\""),
            (receiver("url = \"https://x:/in\""), 3, Some("receiver.url"), "port \"\""),
            (receiver("url = \"https://user:pw@x/in\""), 3, Some("receiver.url"), "user information"),
            (receiver("url = \"https://x y/in\""), 3, Some("receiver.url"), "spaces"),
            (receiver("url = \"https://x\"\ntimeout_ms = 0"), 4, Some("receiver.timeout_ms"), "between 1 and 600000 milliseconds, not 0"),
            (receiver("url = \"https://x\"\nconnect_timeout_ms = 600001"), 4, Some("receiver.connect_timeout_ms"), "not 600001"),
            (receiver("url = \"https://x\"\nretries = 11"), 4, Some("receiver.retries"), "between 0 and 10, not 11"),
            (receiver("url = \"https://x\"\nretries = -1"), 4, Some("receiver.retries"), "not -1"),
            (receiver("url = \"https://x\"\nbackoff_ms = 600001"), 4, Some("receiver.backoff_ms"), "between 0 and 600000"),
        ];
        assert!(cases.len() >= 20);
        for (source, line, field, phrase) in &cases {
            let error = parse(source).unwrap_err();
            let shown = error.to_string();
            assert_eq!(error.line(), *line, "line of {shown:?} for\n{source}");
            assert_eq!(error.field(), *field, "field of {shown:?} for\n{source}");
            assert!(shown.contains(phrase), "{shown:?} lacks {phrase:?} for\n{source}");
            assert!(shown.starts_with(&format!("line {line}, column ")), "{shown:?}");
            if let Some(field) = field {
                assert!(shown.contains(&format!(", {field}: ")), "{shown:?}");
            } else {
                assert!(matches!(error, FlowError::Syntax { .. }), "{error:?}");
            }
        }
    }

    #[test]
    fn error_display_names_line_column_and_field() {
        let source = "name = \"f\"\n\n[[steps]]\ntype = \"sign\"\n\n  [[steps.signers]]\n  alias = \"Bad Alias!\"\n[receiver]\nurl = \"http://x\"\n";
        let error = parse(source).unwrap_err();
        assert_eq!(error.line(), 7);
        assert_eq!(error.column(), 11);
        assert_eq!(
            error.to_string(),
            "line 7, column 11, steps[0].signers[0].alias: \"Bad Alias!\" is not a valid alias: \
             character ' ' at position 4 is not allowed; use letters a-z, digits, '.', '_' and '-'"
        );
        // columns count characters, not bytes
        let error = parse("description = \"ü\"; name = 1\n").unwrap_err();
        assert!(matches!(error, FlowError::Syntax { line: 1, column: 18, .. }), "{error:?}");
    }

    #[test]
    fn flow_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("orders-to-acme", Some("orders-to-acme")),
            ("Orders_2026.v2", Some("orders_2026.v2")),
            ("0", Some("0")),
            (&"a".repeat(100), Some(&"a".repeat(100))),
            (&"a".repeat(101), None),
            ("", None),
            ("..", None),
            ("_x", None),
            ("a/b", None),
            ("a b", None),
            ("ä", None),
        ];
        for (input, expected) in cases {
            let got = FlowName::parse(input).ok();
            assert_eq!(got.as_ref().map(FlowName::as_str), *expected, "input {input:?}");
            assert_eq!(input.parse::<FlowName>().ok(), got);
        }
        assert_eq!(FlowName::parse("X").unwrap().to_string(), "x");
    }

    #[test]
    fn urls() {
        let cases: &[(&str, Option<(Scheme, &str)>)] = &[
            ("https://127.0.0.1:8443/in", Some((Scheme::Https, "https://127.0.0.1:8443/in"))),
            ("http://partner.example", Some((Scheme::Http, "http://partner.example"))),
            ("HTTPS://Partner.Example/a?b=c", Some((Scheme::Https, "https://Partner.Example/a?b=c"))),
            ("https://[::1]:443/", Some((Scheme::Https, "https://[::1]:443/"))),
            ("https://[::1]", Some((Scheme::Https, "https://[::1]"))),
            ("https://x?q", Some((Scheme::Https, "https://x?q"))),
            ("https://", None),
            ("https://:443/", None),
            ("https://[::1", None),
            ("https://[]:1", None),
            ("https://[::1]x", None),
            ("https://x:0", None),
            ("https://x:65536", None),
            ("https://x:+1", None),
            ("https://a_b", None),
            ("mailto://x", None),
            ("x", None),
            ("https://x/\tin", None),
        ];
        for (input, expected) in cases {
            let got = check_url(input).ok();
            assert_eq!(
                got.as_ref().map(|(scheme, url)| (*scheme, url.as_str())),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn where_used() {
        let source = format!(
            "{}\n[[steps]]\ntype = \"decrypt\"\n",
            documented_example().replace("client_any_valid_key = false", "")
        );
        let flow = parse(&source).unwrap();
        let uses: Vec<(String, Option<usize>, &str)> = flow
            .aliases()
            .into_iter()
            .map(|use_| (use_.alias.to_string(), use_.step, use_.place))
            .collect();
        assert_eq!(
            uses,
            [
                ("signing-2026".to_owned(), Some(0), "sign step"),
                ("signing-2027".to_owned(), Some(0), "sign step"),
                ("partner-signing".to_owned(), Some(1), "verify step trust"),
                ("acme-encryption".to_owned(), Some(2), "encrypt step recipient"),
                ("responses-2026".to_owned(), Some(0), "response sign step"),
                ("tls-client".to_owned(), None, "receiver client certificate"),
                ("acme-root".to_owned(), None, "receiver trust"),
            ]
        );
        let any: Vec<String> = flow.uses_any_valid_key().iter().map(ToString::to_string).collect();
        assert_eq!(any, ["decrypt step 4", "decrypt step 5"]);

        let any_key = parse("name = \"f\"\n[receiver]\nurl = \"https://x\"\nclient_any_valid_key = true\n").unwrap();
        assert!(any_key.aliases().is_empty());
        assert_eq!(
            any_key.uses_any_valid_key(),
            [AnyValidKeyUse { step: None, place: "receiver client certificate (any valid key)" }]
        );
        assert_eq!(any_key.uses_any_valid_key()[0].to_string(), "receiver client certificate (any valid key)");
    }

    fn keystore() -> HashMap<Alias, EntryKind> {
        [
            ("signing-2026", EntryKind::KeyPair),
            ("signing-2027", EntryKind::KeyPair),
            ("partner-signing", EntryKind::Certificate),
            ("acme-encryption", EntryKind::Certificate),
            ("tls-client", EntryKind::KeyPair),
            ("acme-root", EntryKind::Certificate),
            ("responses-2026", EntryKind::KeyPair),
        ]
        .into_iter()
        .map(|(name, kind)| (alias(name), kind))
        .collect()
    }

    #[test]
    fn check_aliases_as_a_table() {
        let example = documented_example();
        let line_of = |needle: &str| example.lines().position(|line| line.contains(needle)).unwrap() + 1;
        // (change to the keystore, expected error: (line, field, phrase) or None)
        type Change = fn(&mut HashMap<Alias, EntryKind>);
        type Expected = Option<(usize, &'static str, &'static str)>;
        let cases: Vec<(Change, Expected)> = vec![
            (|_| {}, None),
            // trust and recipients may be key pairs too
            (|ks| {
                ks.insert(alias("partner-signing"), EntryKind::KeyPair);
                ks.insert(alias("acme-root"), EntryKind::KeyPair);
            }, None),
            // a signer with if_active may name an alias that does not exist yet
            (|ks| {
                ks.remove(&alias("signing-2027"));
            }, None),
            (|ks| {
                ks.insert(alias("signing-2027"), EntryKind::Certificate);
            }, Some((line_of("alias = \"signing-2027\""), "steps[0].signers[1].alias", "signing-2027 is a certificate entry"))),
            (|ks| {
                ks.remove(&alias("signing-2026"));
            }, Some((line_of("alias = \"signing-2026\""), "steps[0].signers[0].alias", "unknown alias signing-2026"))),
            (|ks| {
                ks.remove(&alias("responses-2026"));
            }, Some((line_of("alias = \"responses-2026\""), "response_steps[0].signers[0].alias", "unknown alias responses-2026"))),
            (|ks| {
                ks.insert(alias("signing-2026"), EntryKind::Certificate);
            }, Some((line_of("alias = \"signing-2026\""), "steps[0].signers[0].alias", "signing-2026 is a certificate entry, but a sign step needs a key pair"))),
            (|ks| {
                ks.remove(&alias("partner-signing"));
            }, Some((line_of("trust = [\"partner-signing\"]"), "steps[1].trust[0]", "unknown alias partner-signing"))),
            (|ks| {
                ks.remove(&alias("acme-encryption"));
            }, Some((line_of("recipients = "), "steps[2].recipients[0]", "unknown alias acme-encryption"))),
            (|ks| {
                ks.insert(alias("tls-client"), EntryKind::Certificate);
            }, Some((line_of("client_alias = "), "receiver.client_alias", "a receiver client certificate needs a key pair"))),
            (|ks| {
                ks.remove(&alias("acme-root"));
            }, Some((line_of("trust = [\"acme-root\"]"), "receiver.trust[0]", "unknown alias acme-root"))),
        ];
        let flow = parse(&example).unwrap();
        for (change, expected) in cases {
            let mut keystore = keystore();
            change(&mut keystore);
            let lookup = |alias: &Alias| keystore.get(alias).copied();
            let result = check_aliases(&example, &flow, lookup);
            assert_eq!(parse_and_check(&example, lookup).err(), result.clone().err());
            match (result, expected) {
                (Ok(()), None) => {}
                (Err(error), Some((line, field, phrase))) => {
                    let shown = error.to_string();
                    assert_eq!(error.line(), line, "{shown}");
                    assert_eq!(error.field(), Some(field), "{shown}");
                    assert!(shown.contains(phrase), "{shown:?} lacks {phrase:?}");
                    assert!(shown.starts_with(&format!("line {line}, column ")), "{shown}");
                }
                (got, expected) => panic!("got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn check_aliases_points_at_the_alias_in_the_source() {
        let source = "name = \"f\"\n[receiver]\nurl = \"https://x\"\ntrust = [\n  \"root-a\",\n    \"Root-B\",\n]\n";
        let flow = parse(source).unwrap();
        let error = check_aliases(source, &flow, |alias| (alias.as_str() == "root-a").then_some(EntryKind::Certificate))
            .unwrap_err();
        assert_eq!(
            error,
            FlowError::UnknownAlias {
                line: 6,
                column: 5,
                field: "receiver.trust[1]".into(),
                alias: alias("root-b"),
                place: "receiver trust",
            }
        );
        // a source without the field still gives an error, at its start
        let error = check_aliases("", &flow, |_| None).unwrap_err();
        assert_eq!((error.line(), error.column(), error.field()), (1, 1, Some("receiver.trust[0]")));
    }
}
