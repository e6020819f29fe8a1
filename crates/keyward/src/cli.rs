//! The command-line definition.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Tenant keystore and key-renewal service.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every client command.
#[derive(Args)]
pub struct Global {
    /// The keyward server's URL.
    #[arg(long, global = true, env = "KEYWARD_SERVER", default_value = "http://127.0.0.1:7447")]
    pub server: String,
    /// Bearer token (`keyward serve` writes the first admin token to DATA_DIR/admin.token).
    #[arg(long, global = true, env = "KEYWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("output", &self.output)
            .finish()
    }
}

/// How client commands print their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// The API's JSON, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API and keystore) on the embedded SQLite database or PostgreSQL.
    Serve(ServeArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Keystore entries: keys and certificates under their aliases.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Sign a file with the active versions of one or more aliases (CMS SignedData; one
    /// signature per alias).
    Sign(SignArgs),
    /// Verify a CMS SignedData against trusted entries; exits with 1 when it does not verify.
    Verify(VerifyArgs),
    /// Encrypt a file to the active certificates of one or more aliases (CMS EnvelopedData).
    Encrypt(EncryptArgs),
    /// Decrypt a CMS EnvelopedData with any valid key (active, or retired within the
    /// retention period).
    Decrypt(DecryptArgs),
    /// Show or change how long retired key pairs stay usable for decryption.
    Retention(RetentionArgs),
    /// Connectivity tests, run by the server towards a partner.
    #[command(subcommand)]
    Test(TestCommand),
    /// Integration flows: deploy, list, show, stop, start, restart, undeploy.
    #[command(subcommand)]
    Flows(FlowsCommand),
    /// Runtime nodes: each node's last heartbeat, the keystore change it applied, its flows.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Where an alias is used: flows that name it, flows that use any valid key, and what
    /// the nodes observed (count and last use per flow, version and partner).
    Usage {
        /// The alias.
        alias: String,
    },
    /// Run an extra runtime node against the database of a server.
    Node(NodeArgs),
    /// Partner systems and what they can do with old and new material at once, which
    /// decides the variant of a renewal.
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// Renewals: plan, start and follow the seeds' procedures step by step.
    #[command(subcommand)]
    Renew(RenewCommand),
}

#[derive(Debug, Subcommand)]
pub enum PartnersCommand {
    /// Declare a partner (admin).
    Add(PartnerArgs),
    /// The partners.
    List,
    /// One partner.
    Show {
        /// The partner's name.
        name: String,
    },
    /// Change a partner's URL, capabilities or description (admin); what is not given stays.
    Update(PartnerArgs),
}

#[derive(Debug, Args)]
pub struct PartnerArgs {
    /// The partner's name (the alias rules: a-z 0-9 . _ -), which flows' channels name
    /// with `partner = "NAME"`.
    pub name: String,
    /// Where the partner is reached.
    #[arg(long)]
    pub url: Option<String>,
    /// What it can do at once, comma-separated: two-client-certificates, two-cas,
    /// two-signing-keys, two-signatures, two-decryption-keys, two-response-keys, or none.
    #[arg(long)]
    pub capabilities: Option<String>,
    /// Who administers it, how to reach them.
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RenewCommand {
    /// Which procedure and variant a renewal of ALIAS takes, the affected flows and
    /// partners, and the steps with their actor; changes nothing.
    Plan(RenewSelect),
    /// Start a renewal of ALIAS (admin); keyward runs the first automated steps at once.
    Start(RenewSelect),
    /// One renewal with every step's who, when and result.
    Show {
        /// The renewal's number.
        id: i64,
    },
    /// Every renewal.
    List,
    /// What is waiting for whom.
    Tasks {
        /// Only steps for admin, developer or partner.
        #[arg(long)]
        role: Option<String>,
        /// Only this partner's steps.
        #[arg(long)]
        partner: Option<String>,
    },
    /// Confirm step STEP (its number or key) of renewal ID; input steps take --file, a
    /// failed probe runs again, or is overridden with --override and a --note (admin).
    Confirm {
        /// The renewal's number.
        id: i64,
        /// The step's number or key.
        step: String,
        /// For a step repeated per partner: which partner.
        #[arg(long)]
        partner: Option<String>,
        /// A note, recorded with the step.
        #[arg(long)]
        note: Option<String>,
        /// The file an input step imports (a CA's response, a partner's certificate).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Go past a failed probe (admin; needs --note).
        #[arg(long = "override")]
        override_probe: bool,
    },
    /// Abort renewal ID (admin), reverting what it changed.
    Abort {
        /// The renewal's number.
        id: i64,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Agree the downtime window of renewal ID (admin); steps inside it wait for it.
    ScheduleDowntime {
        /// The renewal's number.
        id: i64,
        /// Start: RFC 3339, or "now", or "+MINUTES" from now.
        #[arg(long)]
        from: String,
        /// End: RFC 3339, or "+MINUTES" from now.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct RenewSelect {
    /// The alias to renew.
    pub alias: String,
    /// A procedure instead of the one keyward picks: client-certificate, cms-signer,
    /// partner-encryption, response-signing, platform-key.
    #[arg(long)]
    pub procedure: Option<String>,
    /// A variant instead of the one the partners' capabilities decide.
    #[arg(long)]
    pub variant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Deploy a flow file (TOML), or replace the deployed flow of the same name. An invalid
    /// file or an unknown alias is refused with the line and field; nothing is deployed.
    Deploy {
        /// The flow file.
        file: PathBuf,
    },
    /// The deployed flows.
    List,
    /// One flow with its file.
    Show {
        /// The flow's name.
        name: String,
    },
    /// Stop a flow (on every node, or --node ID); its senders get 503 with Retry-After.
    Stop(FlowTarget),
    /// Start a stopped flow (on every node, or --node ID).
    Start(FlowTarget),
    /// Restart a flow (on every node, or --node ID): it is rebuilt, its connections replaced.
    Restart(FlowTarget),
    /// Remove a flow from every node.
    Undeploy {
        /// The flow's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct FlowTarget {
    /// The flow's name.
    pub name: String,
    /// Only on this node (see `keyward nodes list`); a later change for every node, or a
    /// deploy, ends it.
    #[arg(long, conflicts_with = "all_nodes")]
    pub node: Option<String>,
    /// On every node (the default).
    #[arg(long)]
    pub all_nodes: bool,
}

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// Every node that has written a heartbeat.
    List,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub keystore: KeystoreArgs,
    /// Address to serve /flows/NAME on.
    #[arg(long, env = "KEYWARD_NODE_LISTEN", default_value = "127.0.0.1:7448")]
    pub listen: SocketAddr,
    /// The node's id (default: node-PORT).
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// A TLS handshake to URL and one GET, optionally with a client certificate from an
    /// alias (a staged version too); exits with 1 when it fails, and says why.
    Tls(TlsTestArgs),
}

#[derive(Debug, Args)]
pub struct TlsTestArgs {
    /// The partner's https:// URL.
    pub url: String,
    /// Present a client certificate from this key pair alias when the server asks.
    #[arg(long)]
    pub alias: Option<String>,
    /// Which version of the alias: active, staged (the newest staged) or a number.
    #[arg(long, requires = "alias")]
    pub version: Option<String>,
    /// An alias whose certificates are trusted for the server (several allowed); every
    /// entry by default.
    #[arg(long = "trust")]
    pub trust: Vec<String>,
    /// Limit for connecting, the handshake and the answer, each, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// A recipient alias (certificate or key pair); give it several times for several.
    #[arg(long = "recipient", required = true)]
    pub recipients: Vec<String>,
    /// The payload.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Where to write the encrypted message (DER).
    #[arg(long)]
    pub out: PathBuf,
    /// rsa-oaep (SHA-256), rsa-oaep-sha1, rsa-oaep-sha384, rsa-oaep-sha512 or rsa-pkcs1.
    #[arg(long, default_value = "rsa-oaep")]
    pub key_transport: String,
    /// aes256-cbc, aes128-cbc, aes128-gcm or aes256-gcm.
    #[arg(long, default_value = "aes256-cbc")]
    pub content_encryption: String,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The encrypted message: DER, BER, PEM or base64.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Where to write the plaintext.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// New retention in days (admin); below 90 only with --reason.
    #[arg(long)]
    pub set: Option<i64>,
    /// Why; recorded in the audit log.
    #[arg(long, requires = "set")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// A signing alias; give it several times for several signatures.
    #[arg(long = "alias", required = true)]
    pub aliases: Vec<String>,
    /// The payload.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Where to write the signed message.
    #[arg(long)]
    pub out: PathBuf,
    /// Leave the payload out of the message (a detached signature).
    #[arg(long)]
    pub detached: bool,
    /// Digest, optionally with RSA-PSS: sha256, sha384, sha512, sha256-pss, sha384-pss,
    /// sha512-pss. By default SHA-512 for Ed25519, SHA-384 for P-384, else SHA-256.
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Certificates to include: none, signer or chain.
    #[arg(long, default_value = "signer")]
    pub certs: String,
    /// Leave out the signing-time attribute.
    #[arg(long)]
    pub no_signing_time: bool,
    /// Write base64 instead of DER.
    #[arg(long)]
    pub base64: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed message: DER, BER, PEM or base64.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// The content of a detached signature.
    #[arg(long)]
    pub content: Option<PathBuf>,
    /// An alias whose certificates are trusted (several allowed); every entry by default.
    #[arg(long = "trust")]
    pub trust: Vec<String>,
    /// all: every signature must be valid; any: at least one.
    #[arg(long, default_value = "all")]
    pub require: String,
    /// Write the signed content (of an encapsulated signature) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub keystore: KeystoreArgs,
    /// Address to listen on.
    #[arg(long, env = "KEYWARD_LISTEN", default_value = "127.0.0.1:7447")]
    pub listen: SocketAddr,
    /// The id of the node the server runs (default: serve-PORT).
    #[arg(long)]
    pub node_id: Option<String>,
    /// A certificate with this many days or fewer left is critical.
    #[arg(long, env = "KEYWARD_CRITICAL_DAYS", default_value_t = 14)]
    pub critical_days: i64,
    /// Days before expiry at which alerts go out (to the log and the webhook).
    #[arg(long, env = "KEYWARD_ALERT_DAYS", value_delimiter = ',', default_value = "30,14,7,1")]
    pub alert_days: Vec<i64>,
    /// Where alerts are posted as JSON (expiry, new platform keys, automatic activations).
    #[arg(long, env = "KEYWARD_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// Activate a waiting platform key this many days before the active one expires
    /// (through the platform-key procedure); 0 switches it off.
    #[arg(long, env = "KEYWARD_AUTO_ACTIVATE_DAYS", default_value_t = 1)]
    pub auto_activate_days: i64,
    /// How often expiry is checked, in seconds.
    #[arg(long, env = "KEYWARD_EXPIRY_CHECK_SECONDS", default_value_t = 60)]
    pub expiry_check_seconds: u64,
}

/// Where a server's keystore lives.
#[derive(Debug, Args)]
pub struct KeystoreArgs {
    /// Where the SQLite database, the master key and the first admin token live.
    #[arg(long, env = "KEYWARD_DATA_DIR", default_value = "keyward-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...); without it keyward uses SQLite in the data directory.
    #[arg(long, env = "KEYWARD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token on the server itself, without the API: platform tokens, or a new admin
    /// token when all are lost. Needs the data directory (and database URL) of the server.
    Issue {
        #[command(flatten)]
        keystore: KeystoreArgs,
        /// viewer, developer, admin or platform.
        #[arg(long)]
        role: String,
        /// A name for the token.
        #[arg(long)]
        name: String,
        /// Write the token to this file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List tokens: names, roles and creation times (admin).
    List,
    /// Revoke a token by name; requests with it are refused from then on.
    Revoke {
        /// The token's name.
        name: String,
    },
    /// Create a token for a role through the API (admin: viewer, developer, admin; platform:
    /// platform). The token is printed once.
    Create {
        /// viewer, developer, admin or platform.
        #[arg(long)]
        role: String,
        /// A name for the token; it is recorded as the actor of its changes.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List entries; marks new (staged) versions and entries expiring within 30 days.
    List {
        /// Only entries expiring within this many days.
        #[arg(long, value_name = "DAYS")]
        expiring_within: Option<i64>,
        /// Only entries of this owner: tenant or platform.
        #[arg(long)]
        owner: Option<String>,
        /// Only entries of this kind: key-pair or certificate.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Show an entry with every version's certificate details.
    Show { alias: String },
    /// Generate a key pair with a self-signed certificate.
    Create {
        alias: String,
        /// rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384 or ed25519.
        #[arg(long)]
        algorithm: String,
        /// Subject, e.g. "CN=flow client, O=Example AG, C=DE".
        #[arg(long)]
        subject: String,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Add as a staged version instead of activating it.
        #[arg(long)]
        staged: bool,
    },
    /// Import a certificate, a key pair (PEM key + chain) or a PKCS#12 file.
    Import {
        alias: String,
        /// The file; give --file several times to combine PEM files (key and chain).
        #[arg(long, required = true)]
        file: Vec<PathBuf>,
        /// Password of a PKCS#12 file (or env KEYWARD_IMPORT_PASSWORD).
        #[arg(long, env = "KEYWARD_IMPORT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Add as a staged version instead of activating it.
        #[arg(long)]
        staged: bool,
    },
    /// Download a certificate, chain, root certificate or (admin) a PKCS#12 file.
    Export {
        alias: String,
        /// pem, der, chain-pem, p7b, p7b-pem, root-pem, root-der or p12.
        #[arg(long, default_value = "pem")]
        format: String,
        /// The version; the active one by default.
        #[arg(long)]
        version: Option<u32>,
        /// Password protecting a p12 export (or env KEYWARD_EXPORT_PASSWORD).
        #[arg(long, env = "KEYWARD_EXPORT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create a certificate signing request (PKCS#10) for a key pair.
    Csr {
        alias: String,
        /// The version; the newest staged one, else the active one, by default.
        #[arg(long)]
        version: Option<u32>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import the CA's signed response to a CSR as a new version with the same key.
    ImportResponse {
        alias: String,
        /// The signed certificate or chain: PEM, DER or PKCS#7 (.p7b).
        #[arg(long)]
        file: PathBuf,
        /// Keep the new version staged even if the CSR came from the active version.
        #[arg(long)]
        staged: bool,
    },
    /// Activate a staged version (the newest by default); the active one retires.
    Activate {
        alias: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Show an entry's versions with their states and active-until times.
    History { alias: String },
    /// Move a retired version back to staged, so it can be activated again.
    Restore {
        alias: String,
        #[arg(long)]
        version: u32,
    },
    /// Delete an entry with all its versions.
    Delete {
        alias: String,
        /// Override the 90-day retention of retired key pairs (admin; needs --reason).
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why; recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest audit records.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only records before this sequence number.
        #[arg(long)]
        before: Option<i64>,
    },
    /// Recompute the hash chain; exits with 1 when a record was edited or removed.
    Verify,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
