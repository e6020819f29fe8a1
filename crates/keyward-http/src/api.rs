//! The API's handlers and its OpenAPI document.
//!
//! Every handler has the same shape: authenticate the caller ([`Caller`]), parse the
//! path, query and body into domain types (a parse failure is a 400 naming the field), call
//! the [`Keystore`](keyward_keystore::Keystore), and turn the result into JSON or bytes.
//! Nothing here decides what a role may do; the domain does.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_domain::{Alias, EntryKind, KeyAlgorithm, Owner, Role, VersionId};
use keyward_cms::Require;
use keyward_keystore::{ListFilter, PublicFormat, SignerRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::problem::Problem;
use crate::server::AppState;
use crate::wire::*;

/// Default validity of generated certificates, in days.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;

/// The OpenAPI document's fixed parts; the paths are collected from the router.
#[derive(OpenApi)]
#[openapi(
    info(title = "keyward", description = "Tenant keystore and key-renewal service"),
    modifiers(&BearerAuth),
    tags(
        (name = "keys", description = "Keystore entries and their versions"),
        (name = "tokens", description = "API tokens"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "messages", description = "CMS signing, verification, encryption and decryption with keystore aliases"),
        (name = "settings", description = "Keystore-wide settings"),
        (name = "connectivity", description = "Connectivity tests to partners"),
        (name = "flows", description = "Deployed flows, runtime nodes and where aliases are used"),
        (name = "renewals", description = "Partners and renewal procedures"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes with their OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_keys))
        .routes(routes!(show_key, delete_key))
        .routes(routes!(history))
        .routes(routes!(generate))
        .routes(routes!(import))
        .routes(routes!(certificate_request))
        .routes(routes!(import_response))
        .routes(routes!(activate))
        .routes(routes!(restore))
        .routes(routes!(export_public))
        .routes(routes!(export_pkcs12))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(sign))
        .routes(routes!(verify))
        .routes(routes!(encrypt))
        .routes(routes!(decrypt))
        .routes(routes!(retention, set_retention))
        .routes(routes!(audit_list))
        .routes(routes!(audit_verify))
        .routes(routes!(tls_test))
        .merge(crate::flows::routes())
        .merge(crate::renewals::routes())
}

// ----- extractors that answer with problem JSON ---------------------------------------------

/// A JSON body whose rejections (malformed, wrong media type, too large) are problems.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    let detail = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the request body must be JSON (Content-Type: application/json)".to_owned()
        }
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the limit of {} bytes", crate::server::BODY_LIMIT)
        }
        other => format!("the request body is not valid: {}", other.body_text()),
    };
    Problem::new(rejection.status(), detail)
}

/// A query string whose rejections are problems.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|rejection: QueryRejection| {
                Problem::bad_request(format!("the query string is not valid: {}", rejection.body_text()))
            })
    }
}

/// The `{alias}` path segment, parsed.
pub struct AliasParam(pub Alias);

impl<S: Send + Sync> FromRequestParts<S> for AliasParam {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::bad_request(format!("the alias in the path is not valid: {}", e.body_text())))?;
        Ok(Self(Alias::parse(&raw)?))
    }
}

fn parse_named<T>(field: &str, value: &str) -> Result<T, Problem>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| Problem::bad_request(format!("{field}: {e}")))
}

fn decode_base64(field: &str, data: &str) -> Result<Vec<u8>, Problem> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(Problem::bad_request(format!("{field} is empty; it must hold the file's bytes in base64")));
    }
    STANDARD
        .decode(compact)
        .map_err(|e| Problem::bad_request(format!("{field} is not valid base64: {e}")))
}

fn version_param(version: Option<u32>) -> Option<VersionId> {
    version.map(VersionId)
}

// ----- keys: reads ---------------------------------------------------------------------------

/// Filters for listing entries.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only entries whose active version expires within this many days.
    pub expiring_within: Option<i64>,
    /// `tenant` or `platform`.
    pub owner: Option<String>,
    /// `key-pair` or `certificate`.
    pub kind: Option<String>,
}

/// List entries.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [EntrySummaryJson]), (status = 400, body = ProblemJson), (status = 401, body = ProblemJson)))]
async fn list_keys(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<EntrySummaryJson>>, Problem> {
    let filter = ListFilter {
        expiring_within_days: match query.expiring_within {
            Some(days) if days < 0 => return Err(Problem::bad_request("expiring_within must not be negative")),
            other => other,
        },
        owner: query.owner.as_deref().map(|o| parse_named::<Owner>("owner", o)).transpose()?,
        kind: query.kind.as_deref().map(|k| parse_named::<EntryKind>("kind", k)).transpose()?,
    };
    let entries = state.keystore.list(&actor, &filter).await?;
    let now = state.keystore.now();
    Ok(Json(
        entries
            .iter()
            .map(|entry| EntrySummaryJson {
                expiry_state: entry.not_after.map(|not_after| {
                    keyward_domain::ExpiryState::of(not_after, now, state.expiry.critical_days).as_str().to_owned()
                }),
                ..EntrySummaryJson::from(entry)
            })
            .collect(),
    ))
}

/// Show an entry with every version's details.
#[utoipa::path(get, path = "/api/v1/keys/{alias}", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), security(("bearer" = [])),
    responses((status = 200, body = EntryJson), (status = 404, body = ProblemJson)))]
async fn show_key(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
) -> Result<Json<EntryJson>, Problem> {
    let view = state.keystore.show(&actor, &alias).await?;
    Ok(Json(EntryJson::from(&view)))
}

/// Versions of an entry, newest first.
#[utoipa::path(get, path = "/api/v1/keys/{alias}/versions", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), security(("bearer" = [])),
    responses((status = 200, body = [VersionJson]), (status = 404, body = ProblemJson)))]
async fn history(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
) -> Result<Json<Vec<VersionJson>>, Problem> {
    let view = state.keystore.show(&actor, &alias).await?;
    Ok(Json(view.versions.iter().rev().map(VersionJson::from).collect()))
}

/// Query of a public export.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `pem`, `der`, `chain-pem`, `p7b`, `p7b-pem`, `root-pem` or `root-der` (default `pem`).
    pub format: Option<String>,
    /// The version; the active one when absent.
    pub version: Option<u32>,
}

/// Download public material: certificate, chain or root.
#[utoipa::path(get, path = "/api/v1/keys/{alias}/export", tag = "keys",
    params(("alias" = String, Path, description = "The alias"), ExportQuery), security(("bearer" = [])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 404, body = ProblemJson)))]
async fn export_public(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, Problem> {
    let format = PublicFormat::parse(query.format.as_deref().unwrap_or("pem")).map_err(Problem::bad_request)?;
    let bytes = state.keystore.export_public(&actor, &alias, version_param(query.version), format).await?;
    let (content_type, extension) = match format {
        PublicFormat::CertificatePem | PublicFormat::ChainPem | PublicFormat::RootPem => ("application/x-pem-file", "pem"),
        PublicFormat::CertificateDer | PublicFormat::RootDer => ("application/pkix-cert", "cer"),
        PublicFormat::P7bDer => ("application/pkcs7-mime", "p7b"),
        PublicFormat::P7bPem => ("application/x-pem-file", "p7b"),
    };
    Ok(file_response(bytes, content_type, &format!("{alias}.{extension}")))
}

fn file_response(bytes: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Aliases are restricted to [a-z0-9._-], so the file name needs no quoting rules.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Query naming a version.
#[derive(Debug, Deserialize, IntoParams)]
pub struct VersionQuery {
    /// The version; see the operation for the default.
    pub version: Option<u32>,
}

/// Create a PKCS#10 certificate signing request (newest staged version, else active).
#[utoipa::path(get, path = "/api/v1/keys/{alias}/csr", tag = "keys",
    params(("alias" = String, Path, description = "The alias"), VersionQuery), security(("bearer" = [])),
    responses((status = 200, description = "PEM CSR", content_type = "application/pkcs10"), (status = 403, body = ProblemJson)))]
async fn certificate_request(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiQuery(query): ApiQuery<VersionQuery>,
) -> Result<Response, Problem> {
    let pem = state.keystore.certificate_request(&actor, &alias, version_param(query.version)).await?;
    Ok(file_response(pem.into_bytes(), "application/pkcs10", &format!("{alias}.csr")))
}

/// Export a key pair with its chain as PKCS#12 (admin only; audited).
#[utoipa::path(post, path = "/api/v1/keys/{alias}/export/pkcs12", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), request_body = Pkcs12Request, security(("bearer" = [])),
    responses((status = 200, description = "PKCS#12 file", content_type = "application/x-pkcs12"), (status = 403, body = ProblemJson)))]
async fn export_pkcs12(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiJson(request): ApiJson<Pkcs12Request>,
) -> Result<Response, Problem> {
    let bytes = state
        .keystore
        .export_pkcs12(&actor, &alias, version_param(request.version), &request.password)
        .await?;
    Ok(file_response(bytes, "application/x-pkcs12", &format!("{alias}.p12")))
}

// ----- keys: writes --------------------------------------------------------------------------

/// Generate a key pair with a self-signed certificate as a new version.
#[utoipa::path(post, path = "/api/v1/keys/{alias}/generate", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), request_body = GenerateRequest, security(("bearer" = [])),
    responses((status = 201, body = VersionCreated), (status = 400, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn generate(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<(StatusCode, Json<VersionCreated>), Problem> {
    let algorithm: KeyAlgorithm = parse_named("algorithm", &request.algorithm)?;
    let days = request.days.unwrap_or(DEFAULT_VALIDITY_DAYS);
    let version = state
        .keystore
        .generate(&actor, &alias, algorithm, &request.subject, days, request.staged)
        .await?;
    Ok(created(&alias, version))
}

fn created(alias: &Alias, version: VersionId) -> (StatusCode, Json<VersionCreated>) {
    (StatusCode::CREATED, Json(VersionCreated { alias: alias.to_string(), version: version.0 }))
}

/// Import a certificate, a key pair (PEM key with its chain) or a PKCS#12 file as a new version.
#[utoipa::path(post, path = "/api/v1/keys/{alias}/import", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), request_body = ImportRequest, security(("bearer" = [])),
    responses((status = 201, body = VersionCreated), (status = 400, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn import(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiJson(request): ApiJson<ImportRequest>,
) -> Result<(StatusCode, Json<VersionCreated>), Problem> {
    let bytes = decode_base64("data", &request.data)?;
    let version = state
        .keystore
        .import(&actor, &alias, &bytes, request.password.as_deref(), request.staged)
        .await?;
    Ok(created(&alias, version))
}

/// Import a CA's signed response to a CSR as a new version with the same private key.
#[utoipa::path(post, path = "/api/v1/keys/{alias}/response", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), request_body = ResponseImportRequest, security(("bearer" = [])),
    responses((status = 201, body = VersionCreated), (status = 400, body = ProblemJson)))]
async fn import_response(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiJson(request): ApiJson<ResponseImportRequest>,
) -> Result<(StatusCode, Json<VersionCreated>), Problem> {
    let bytes = decode_base64("data", &request.data)?;
    let version = state.keystore.import_response(&actor, &alias, &bytes, request.staged).await?;
    Ok(created(&alias, version))
}

/// Activate a staged version (the newest when none is named); the active one retires.
#[utoipa::path(post, path = "/api/v1/keys/{alias}/activate", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), request_body = ActivateRequest, security(("bearer" = [])),
    responses((status = 200, body = TransitionsJson), (status = 409, body = ProblemJson)))]
async fn activate(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiJson(request): ApiJson<ActivateRequest>,
) -> Result<Json<TransitionsJson>, Problem> {
    let transitions = state.keystore.activate(&actor, &alias, version_param(request.version)).await?;
    Ok(Json(TransitionsJson {
        alias: alias.to_string(),
        transitions: transitions.iter().map(TransitionJson::from).collect(),
    }))
}

/// Move a retired version back to staged.
#[utoipa::path(post, path = "/api/v1/keys/{alias}/restore", tag = "keys",
    params(("alias" = String, Path, description = "The alias")), request_body = RestoreRequest, security(("bearer" = [])),
    responses((status = 200, body = TransitionsJson), (status = 409, body = ProblemJson)))]
async fn restore(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiJson(request): ApiJson<RestoreRequest>,
) -> Result<Json<TransitionsJson>, Problem> {
    let transition = state.keystore.restore(&actor, &alias, VersionId(request.version)).await?;
    Ok(Json(TransitionsJson { alias: alias.to_string(), transitions: vec![TransitionJson::from(&transition)] }))
}

/// Options of a deletion.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Override the retention of key pairs retired less than 90 days ago (admin, with reason).
    #[serde(default)]
    pub force: bool,
    /// Why; required with `force`, recorded in the audit log.
    pub reason: Option<String>,
}

/// Delete an entry with all its versions.
#[utoipa::path(delete, path = "/api/v1/keys/{alias}", tag = "keys",
    params(("alias" = String, Path, description = "The alias"), DeleteQuery), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 409, body = ProblemJson)))]
async fn delete_key(
    State(state): State<AppState>,
    Caller(actor): Caller,
    AliasParam(alias): AliasParam,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, Problem> {
    state.keystore.delete(&actor, &alias, query.force, query.reason.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- tokens and audit ----------------------------------------------------------------------

/// Create an API token (admin).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenRequest, security(("bearer" = [])),
    responses((status = 201, body = TokenCreated), (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn create_token(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), Problem> {
    let role: Role = parse_named("role", &request.role)?;
    let token = state.keystore.create_token(&actor, &request.name, role).await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { name: request.name.trim().to_owned(), role: role.to_string(), token })))
}

/// List tokens: names, roles, creation times (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = [TokenJson]), (status = 403, body = ProblemJson)))]
async fn list_tokens(State(state): State<AppState>, Caller(actor): Caller) -> Result<Json<Vec<TokenJson>>, Problem> {
    let tokens = state.keystore.list_tokens(&actor).await?;
    Ok(Json(tokens.iter().map(TokenJson::from).collect()))
}

/// Revoke a token (admin: viewer, developer and admin tokens; platform: platform tokens).
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name")), security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn revoke_token(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    state.keystore.revoke_token(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- messages ------------------------------------------------------------------------------

/// Sign a payload with the active versions of one or more aliases: one CMS SignedData with a
/// SignerInfo per alias (developer or admin).
#[utoipa::path(post, path = "/api/v1/messages/sign", tag = "messages", request_body = SignRequest, security(("bearer" = [])),
    responses((status = 200, description = "CMS SignedData, DER", content_type = "application/pkcs7-mime"),
        (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn sign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<SignRequest>,
) -> Result<Response, Problem> {
    let payload = decode_base64("data", &request.data)?;
    let signers = request
        .signers
        .iter()
        .enumerate()
        .map(|(index, signer)| signer_request(index, signer))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = state.keystore.sign(&actor, &signers, payload, request.detached).await?;
    Ok(file_response(signed, "application/pkcs7-mime", "signed.p7m"))
}

fn signer_request(index: usize, signer: &SignerJson) -> Result<SignerRequest, Problem> {
    let field = |name: &str| format!("signers[{index}].{name}");
    Ok(SignerRequest {
        alias: Alias::parse(&signer.alias)?,
        digest: signer.digest.as_deref().map(|d| parse_named(&field("digest"), d)).transpose()?,
        scheme: signer.scheme.as_deref().map(|d| parse_named(&field("scheme"), d)).transpose()?,
        include: parse_named(&field("certs"), signer.certs.as_deref().unwrap_or("signer"))?,
        signing_time: signer.signing_time,
    })
}

/// Verify a CMS SignedData against trusted entries; one verdict per signature.
#[utoipa::path(post, path = "/api/v1/messages/verify", tag = "messages", request_body = VerifyRequest, security(("bearer" = [])),
    responses((status = 200, body = VerifyResponse), (status = 400, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn verify(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResponse>, Problem> {
    let message = decode_base64("message", &request.message)?;
    let content = request.content.as_deref().map(|c| decode_base64("content", c)).transpose()?;
    let detached = content.is_some();
    let trust = request.trust.iter().map(|a| Alias::parse(a)).collect::<Result<Vec<_>, _>>()?;
    let require = match request.require.as_deref().unwrap_or("all") {
        "all" => Require::All,
        "any" => Require::Any,
        other => return Err(Problem::bad_request(format!("require: {other:?} is neither \"all\" nor \"any\""))),
    };
    let (verification, verified) = state.keystore.verify(&actor, message, content, &trust, require).await?;
    Ok(Json(VerifyResponse {
        verified,
        require: request.require.unwrap_or_else(|| "all".into()),
        signers: verification
            .signers
            .iter()
            .map(|r| SignerReportJson {
                subject: r.subject.clone(),
                issuer: r.issuer.clone(),
                serial: r.serial.clone(),
                digest: r.digest.clone(),
                signature_algorithm: r.signature_algorithm.clone(),
                signing_time: r.signing_time.map(keyward_domain::Timestamp::to_rfc3339),
                valid: r.problem.is_none(),
                problem: r.problem.clone(),
            })
            .collect(),
        content: (!detached).then(|| STANDARD.encode(&verification.content)),
    }))
}

/// Encrypt a payload to the active certificates of one or more aliases (CMS EnvelopedData;
/// AuthEnvelopedData for AES-GCM).
#[utoipa::path(post, path = "/api/v1/messages/encrypt", tag = "messages", request_body = EncryptRequest, security(("bearer" = [])),
    responses((status = 200, description = "CMS EnvelopedData, DER", content_type = "application/pkcs7-mime"),
        (status = 400, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn encrypt(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<EncryptRequest>,
) -> Result<Response, Problem> {
    let payload = decode_base64("data", &request.data)?;
    let recipients = request.recipients.iter().map(|a| Alias::parse(a)).collect::<Result<Vec<_>, _>>()?;
    let transport = parse_named("key_transport", request.key_transport.as_deref().unwrap_or("rsa-oaep"))?;
    let content = parse_named("content_encryption", request.content_encryption.as_deref().unwrap_or("aes256-cbc"))?;
    let encrypted = state.keystore.encrypt(&actor, &recipients, payload, transport, content).await?;
    Ok(file_response(encrypted, "application/pkcs7-mime", "encrypted.p7m"))
}

/// Decrypt a CMS EnvelopedData with any valid key: active versions, and retired versions
/// within the retention period (developer or admin).
#[utoipa::path(post, path = "/api/v1/messages/decrypt", tag = "messages", request_body = DecryptRequest, security(("bearer" = [])),
    responses((status = 200, body = DecryptResponse), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson)))]
async fn decrypt(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<DecryptRequest>,
) -> Result<Json<DecryptResponse>, Problem> {
    let message = decode_base64("message", &request.message)?;
    let decrypted = state.keystore.decrypt(&actor, message).await?;
    Ok(Json(DecryptResponse {
        content: STANDARD.encode(&decrypted.content),
        alias: decrypted.alias.to_string(),
        version: decrypted.version.0,
        state: decrypted.state.to_string(),
    }))
}

/// How long retired key pairs stay usable for decryption.
#[utoipa::path(get, path = "/api/v1/settings/retention", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = RetentionJson)))]
async fn retention(State(state): State<AppState>, Caller(_actor): Caller) -> Result<Json<RetentionJson>, Problem> {
    Ok(Json(RetentionJson { days: state.keystore.retention().await?.decrypt_days }))
}

/// Change the retention of retired key pairs (admin; below 90 days only with a reason, audited).
#[utoipa::path(put, path = "/api/v1/settings/retention", tag = "settings", request_body = RetentionRequest, security(("bearer" = [])),
    responses((status = 200, body = RetentionJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson)))]
async fn set_retention(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<RetentionRequest>,
) -> Result<Json<RetentionJson>, Problem> {
    let retention = state.keystore.set_retention(&actor, request.days, request.reason.as_deref()).await?;
    Ok(Json(RetentionJson { days: retention.decrypt_days }))
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// How many records (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Only records before this sequence number.
    pub before: Option<i64>,
}

/// The newest audit records, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = [AuditRecordJson]), (status = 403, body = ProblemJson)))]
async fn audit_list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditRecordJson>>, Problem> {
    let records = state.keystore.audit_list(&actor, query.limit.unwrap_or(100), query.before).await?;
    Ok(Json(records.iter().map(AuditRecordJson::from).collect()))
}

/// Recompute the audit log's hash chain (admin).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerifyJson), (status = 403, body = ProblemJson)))]
async fn audit_verify(State(state): State<AppState>, Caller(actor): Caller) -> Result<Json<AuditVerifyJson>, Problem> {
    let verification = state.keystore.audit_verify(&actor).await?;
    Ok(Json(AuditVerifyJson::from(&verification)))
}

/// Most time a connectivity test may wait at each stage.
const MAX_TEST_TIMEOUT_MS: u64 = 60_000;

/// Test a TLS connection to a partner, optionally presenting a client certificate from an
/// alias (a staged version too). Needs `developer` or `admin`: the server connects out and
/// may use a private key.
#[utoipa::path(post, path = "/api/v1/connectivity/tls", tag = "connectivity", request_body = TlsTestRequest, security(("bearer" = [])),
    responses((status = 200, body = TlsTestResponse), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn tls_test(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(request): ApiJson<TlsTestRequest>,
) -> Result<Json<TlsTestResponse>, Problem> {
    use keyward_keystore::VersionChoice;
    use keyward_runtime::probe::{ProbeOptions, Target, probe};
    let target = Target::parse(&request.url).map_err(|e| Problem::bad_request(format!("url: {e}")))?;
    let timeout_ms = request.timeout_ms.unwrap_or(10_000);
    if timeout_ms == 0 || timeout_ms > MAX_TEST_TIMEOUT_MS {
        return Err(Problem::bad_request(format!("timeout_ms: {timeout_ms} is outside 1..={MAX_TEST_TIMEOUT_MS}")));
    }
    let choice = match request.version.as_deref().unwrap_or("active") {
        "active" => VersionChoice::Active,
        "staged" => VersionChoice::Staged,
        number => VersionChoice::Number(VersionId(number.parse().map_err(|_| {
            Problem::bad_request(format!("version: {number:?} is neither \"active\", \"staged\" nor a version number"))
        })?)),
    };
    if request.alias.is_none() && request.version.is_some() {
        return Err(Problem::bad_request("version: a version needs an alias"));
    }
    let alias = request.alias.as_deref().map(Alias::parse).transpose()?;
    let trust_aliases = request.trust.iter().map(|a| Alias::parse(a)).collect::<Result<Vec<_>, _>>()?;
    let (client, trust) = state
        .keystore
        .connectivity_test_material(&actor, alias.as_ref().map(|alias| (alias, choice)), &trust_aliases)
        .await?;
    let options = ProbeOptions { client, trust, timeout: std::time::Duration::from_millis(timeout_ms) };
    let report = probe(&target, &options, state.keystore.now()).await;
    Ok(Json(TlsTestResponse {
        url: report.target.to_string(),
        ok: report.outcome.is_ok(),
        cause: report.outcome.as_ref().err().map(|f| f.code().to_owned()),
        failure: report.outcome.as_ref().err().map(ToString::to_string),
        protocol: report.protocol,
        cipher_suite: report.cipher_suite,
        server_chain: report
            .server_chain
            .into_iter()
            .map(|c| ChainCertificateJson {
                subject: c.subject,
                issuer: c.issuer,
                not_before: c.not_before.to_rfc3339(),
                not_after: c.not_after.to_rfc3339(),
                valid_now: c.valid_now,
            })
            .collect(),
        server_trusted: report.server_trusted,
        acceptable_client_cas: report.acceptable_client_cas,
        presented: report.presented.map(|p| PresentedJson { alias: p.alias.to_string(), version: p.version.0, subject: p.subject }),
        http_status: report.http_status,
        elapsed_ms: u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
    }))
}
