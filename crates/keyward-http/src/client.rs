//! A typed client for the keyward API, used by the command line.
//!
//! Errors from the server arrive as problem JSON and become [`ClientError::Problem`] with the
//! server's own message, so the CLI can print exactly what the server said.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::*;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{detail} (HTTP {status})")]
    Problem {
        /// HTTP status.
        status: u16,
        /// The server's message.
        detail: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the keyward server at {url}: {cause} (is `keyward serve` running? set --server or KEYWARD_SERVER)")]
    Unreachable {
        /// The server URL.
        url: String,
        /// The innermost cause, e.g. "Connection refused (os error 111)".
        cause: String,
    },
    /// The server URL is not a valid base URL.
    #[error("the server URL {0:?} is not valid: expected something like http://127.0.0.1:7447")]
    BadUrl(String),
    /// The response could not be read.
    #[error("unexpected response from the server: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The HTTP status of a server-side error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The innermost error of a chain: for a refused connection the OS's message, not the
/// four layers of HTTP client wrapping around it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Filters for [`Client::list`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListParams {
    /// Only entries expiring within this many days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiring_within: Option<i64>,
    /// `tenant` or `platform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `key-pair` or `certificate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A connection to one keyward server.
#[derive(Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base.as_str()).field("token", &"<redacted>").finish()
    }
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:7447`), authenticating with `token`.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] for a URL that cannot be a base.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let base = Url::parse(base).map_err(|_| ClientError::BadUrl(base.to_owned()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl(base.to_string()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("keyward-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok(Self { base, token, http })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::BadUrl(self.base.to_string()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder, ClientError> {
        let builder = self.http.request(method, self.url(segments)?);
        Ok(match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        })
    }

    async fn send(&self, builder: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response = builder
            .send()
            .await
            .map_err(|error| ClientError::Unreachable { url: self.base.to_string(), cause: root_cause(&error) })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<ProblemJson>(&body)
            .map(|p| p.detail)
            .unwrap_or_else(|_| if body.is_empty() { status.to_string() } else { body });
        Err(ClientError::Problem { status: status.as_u16(), detail })
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        self.send(builder)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    async fn bytes(&self, builder: RequestBuilder) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .send(builder)
            .await?
            .bytes()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?
            .to_vec())
    }

    /// Lists entries.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn list(&self, params: &ListParams) -> Result<Vec<EntrySummaryJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "keys"])?.query(params)).await
    }

    /// Shows one entry.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn show(&self, alias: &str) -> Result<EntryJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "keys", alias])?).await
    }

    /// An entry's versions, newest first.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn history(&self, alias: &str) -> Result<Vec<VersionJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "keys", alias, "versions"])?).await
    }

    /// Generates a key pair.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn generate(&self, alias: &str, request: &GenerateRequest) -> Result<VersionCreated, ClientError> {
        self.json(self.request(Method::POST, &["api", "v1", "keys", alias, "generate"])?.json(request)).await
    }

    /// Imports a file's bytes.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn import(
        &self,
        alias: &str,
        bytes: &[u8],
        password: Option<String>,
        staged: bool,
    ) -> Result<VersionCreated, ClientError> {
        let request = ImportRequest { data: STANDARD.encode(bytes), password, staged };
        self.json(self.request(Method::POST, &["api", "v1", "keys", alias, "import"])?.json(&request)).await
    }

    /// Imports a CA's response to a CSR.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn import_response(&self, alias: &str, bytes: &[u8], staged: bool) -> Result<VersionCreated, ClientError> {
        let request = ResponseImportRequest { data: STANDARD.encode(bytes), staged };
        self.json(self.request(Method::POST, &["api", "v1", "keys", alias, "response"])?.json(&request)).await
    }

    /// Creates a CSR (PEM).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn certificate_request(&self, alias: &str, version: Option<u32>) -> Result<String, ClientError> {
        let builder = self.request(Method::GET, &["api", "v1", "keys", alias, "csr"])?.query(&[("version", version)]);
        let bytes = self.bytes(builder).await?;
        String::from_utf8(bytes).map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    /// Activates a staged version.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn activate(&self, alias: &str, version: Option<u32>) -> Result<TransitionsJson, ClientError> {
        let request = ActivateRequest { version };
        self.json(self.request(Method::POST, &["api", "v1", "keys", alias, "activate"])?.json(&request)).await
    }

    /// Restores a retired version to staged.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn restore(&self, alias: &str, version: u32) -> Result<TransitionsJson, ClientError> {
        let request = RestoreRequest { version };
        self.json(self.request(Method::POST, &["api", "v1", "keys", alias, "restore"])?.json(&request)).await
    }

    /// Deletes an entry.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn delete(&self, alias: &str, force: bool, reason: Option<&str>) -> Result<(), ClientError> {
        let mut builder = self.request(Method::DELETE, &["api", "v1", "keys", alias])?;
        if force {
            builder = builder.query(&[("force", "true")]);
        }
        if let Some(reason) = reason {
            builder = builder.query(&[("reason", reason)]);
        }
        self.send(builder).await.map(drop)
    }

    /// Downloads public material in `format` (see the API's export formats).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn export(&self, alias: &str, format: &str, version: Option<u32>) -> Result<Vec<u8>, ClientError> {
        let builder = self
            .request(Method::GET, &["api", "v1", "keys", alias, "export"])?
            .query(&[("format", Some(format.to_owned())), ("version", version.map(|v| v.to_string()))]);
        self.bytes(builder).await
    }

    /// Exports a key pair as PKCS#12.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn export_pkcs12(&self, alias: &str, password: &str, version: Option<u32>) -> Result<Vec<u8>, ClientError> {
        let request = Pkcs12Request { password: password.to_owned(), version };
        self.bytes(self.request(Method::POST, &["api", "v1", "keys", alias, "export", "pkcs12"])?.json(&request))
            .await
    }

    /// Creates an API token.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn create_token(&self, name: &str, role: &str) -> Result<TokenCreated, ClientError> {
        let request = TokenRequest { name: name.to_owned(), role: role.to_owned() };
        self.json(self.request(Method::POST, &["api", "v1", "tokens"])?.json(&request)).await
    }

    /// Signs a payload; returns the CMS SignedData (DER).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn sign(&self, signers: Vec<SignerJson>, payload: &[u8], detached: bool) -> Result<Vec<u8>, ClientError> {
        let request = SignRequest { signers, data: STANDARD.encode(payload), detached };
        self.bytes(self.request(Method::POST, &["api", "v1", "messages", "sign"])?.json(&request)).await
    }

    /// Verifies a CMS SignedData.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn verify(
        &self,
        message: &[u8],
        content: Option<&[u8]>,
        trust: Vec<String>,
        require: Option<String>,
    ) -> Result<VerifyResponse, ClientError> {
        let request = VerifyRequest {
            message: STANDARD.encode(message),
            content: content.map(|c| STANDARD.encode(c)),
            trust,
            require,
        };
        self.json(self.request(Method::POST, &["api", "v1", "messages", "verify"])?.json(&request)).await
    }

    /// Encrypts a payload; returns the CMS EnvelopedData (DER).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn encrypt(&self, request: &EncryptRequest) -> Result<Vec<u8>, ClientError> {
        self.bytes(self.request(Method::POST, &["api", "v1", "messages", "encrypt"])?.json(request)).await
    }

    /// Decrypts a CMS EnvelopedData with any valid key.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn decrypt(&self, message: &[u8]) -> Result<DecryptResponse, ClientError> {
        let request = DecryptRequest { message: STANDARD.encode(message) };
        self.json(self.request(Method::POST, &["api", "v1", "messages", "decrypt"])?.json(&request)).await
    }

    /// The retention of retired key pairs.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn retention(&self) -> Result<RetentionJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "settings", "retention"])?).await
    }

    /// Changes the retention of retired key pairs.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn set_retention(&self, days: i64, reason: Option<String>) -> Result<RetentionJson, ClientError> {
        let request = RetentionRequest { days, reason };
        self.json(self.request(Method::PUT, &["api", "v1", "settings", "retention"])?.json(&request)).await
    }

    /// Lists tokens.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn list_tokens(&self) -> Result<Vec<TokenJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "tokens"])?).await
    }

    /// Revokes a token by name.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn revoke_token(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.request(Method::DELETE, &["api", "v1", "tokens", name])?).await.map(drop)
    }

    /// The newest audit records.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn audit_list(&self, limit: Option<i64>, before: Option<i64>) -> Result<Vec<AuditRecordJson>, ClientError> {
        let builder = self.request(Method::GET, &["api", "v1", "audit"])?.query(&[("limit", limit), ("before", before)]);
        self.json(builder).await
    }

    /// Deploys a flow file.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn deploy_flow(&self, source: &str) -> Result<FlowJson, ClientError> {
        let request = DeployRequest { source: source.to_owned() };
        self.json(self.request(Method::POST, &["api", "v1", "flows"])?.json(&request)).await
    }

    /// The deployed flows.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn flows(&self) -> Result<Vec<FlowJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "flows"])?).await
    }

    /// One deployed flow.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn flow(&self, name: &str) -> Result<FlowJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "flows", name])?).await
    }

    /// Stops, starts or restarts a flow (`operation`: stop, start, restart) on every node,
    /// or on `node` alone.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn change_flow(&self, name: &str, operation: &str, node: Option<&str>) -> Result<FlowJson, ClientError> {
        let mut builder = self.request(Method::POST, &["api", "v1", "flows", name, operation])?;
        if let Some(node) = node {
            builder = builder.query(&[("node", node)]);
        }
        self.json(builder).await
    }

    /// Undeploys a flow.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn undeploy_flow(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.request(Method::DELETE, &["api", "v1", "flows", name])?).await.map(drop)
    }

    /// The runtime nodes.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn nodes(&self) -> Result<Vec<NodeJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "nodes"])?).await
    }

    /// Where an alias is used.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn usage(&self, alias: &str) -> Result<UsageJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "usage", alias])?).await
    }

    /// Runs a TLS connectivity test on the server.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn tls_test(&self, request: &TlsTestRequest) -> Result<TlsTestResponse, ClientError> {
        self.json(self.request(Method::POST, &["api", "v1", "connectivity", "tls"])?.json(request)).await
    }

    /// Verifies the audit log.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn audit_verify(&self) -> Result<AuditVerifyJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "audit", "verify"])?).await
    }

    /// Whether the server answers its health check.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn health(&self) -> Result<(), ClientError> {
        let builder = self.http.get(self.url(&["healthz"])?);
        let response = self.send(builder).await?;
        if response.status() == StatusCode::OK { Ok(()) } else { Err(ClientError::Unexpected(response.status().to_string())) }
    }

    /// The partners.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn partners(&self) -> Result<Vec<PartnerJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "partners"])?).await
    }

    /// One partner.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn partner(&self, name: &str) -> Result<PartnerJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "partners", name])?).await
    }

    /// Declares a partner.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn add_partner(&self, partner: &PartnerJson) -> Result<PartnerJson, ClientError> {
        self.json(self.request(Method::POST, &["api", "v1", "partners"])?.json(partner)).await
    }

    /// Changes a partner.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn update_partner(&self, name: &str, update: &PartnerUpdate) -> Result<PartnerJson, ClientError> {
        self.json(self.request(Method::PATCH, &["api", "v1", "partners", name])?.json(update)).await
    }

    /// Plans a renewal without changing anything.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal_plan(&self, alias: &str, procedure: Option<&str>, variant: Option<&str>) -> Result<PlanJson, ClientError> {
        let builder = self
            .request(Method::GET, &["api", "v1", "renewals", "plan", alias])?
            .query(&[("procedure", procedure), ("variant", variant)]);
        self.json(builder).await
    }

    /// Starts a renewal.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal_start(&self, request: &RenewalStart) -> Result<RenewalJson, ClientError> {
        self.json(self.request(Method::POST, &["api", "v1", "renewals"])?.json(request)).await
    }

    /// Every renewal.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewals(&self) -> Result<Vec<RenewalJson>, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "renewals"])?).await
    }

    /// One renewal.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal(&self, id: i64) -> Result<RenewalJson, ClientError> {
        self.json(self.request(Method::GET, &["api", "v1", "renewals", &id.to_string()])?).await
    }

    /// Steps waiting for someone.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal_tasks(&self, role: Option<&str>, partner: Option<&str>) -> Result<Vec<RenewalTaskJson>, ClientError> {
        let builder = self
            .request(Method::GET, &["api", "v1", "renewals", "tasks"])?
            .query(&[("role", role), ("partner", partner)]);
        self.json(builder).await
    }

    /// Confirms a step.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal_confirm(&self, id: i64, step: &str, request: &ConfirmRequest) -> Result<RenewalJson, ClientError> {
        let path = ["api", "v1", "renewals", &id.to_string(), "steps", step, "confirm"];
        self.json(self.request(Method::POST, &path)?.json(request)).await
    }

    /// Agrees a downtime window.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal_downtime(&self, id: i64, request: &DowntimeRequest) -> Result<RenewalJson, ClientError> {
        self.json(self.request(Method::POST, &["api", "v1", "renewals", &id.to_string(), "downtime"])?.json(request)).await
    }

    /// Aborts a renewal.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn renewal_abort(&self, id: i64, request: &AbortRequest) -> Result<RenewalJson, ClientError> {
        self.json(self.request(Method::POST, &["api", "v1", "renewals", &id.to_string(), "abort"])?.json(request)).await
    }
}
