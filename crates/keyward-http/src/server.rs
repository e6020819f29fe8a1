//! The HTTP server.
//!
//! [`serve`] takes a bound listener and a shutdown future, so tests start servers on
//! `127.0.0.1:0` and stop them cleanly, and the binary decides where to listen.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use keyward_keystore::Keystore;
use keyward_runtime::node::Node;
use keyward_runtime::operations::Flows;
use keyward_runtime::expiry::ExpirySettings;
use keyward_runtime::renewal::Renewals;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::problem::Problem;

/// Largest request body accepted, in bytes. Keystore files are a few kilobytes; 1 MiB
/// leaves room for long chains while refusing accidental uploads early.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The keystore service.
    pub keystore: Keystore,
    /// Flow operations.
    pub flows: Flows,
    /// Partners and renewals.
    pub renewals: Renewals,
    /// How expiry is judged (the critical period).
    pub expiry: ExpirySettings,
    /// The node this server runs, if any.
    pub node: Option<Arc<Node>>,
    openapi: Arc<utoipa::openapi::OpenApi>,
}

/// The complete application without a node: API routes, the OpenAPI document and health
/// check.
pub fn router(keystore: Keystore) -> Router {
    router_with_node(keystore, None)
}

/// The complete application; with a node, also `POST /flows/{name}`.
pub fn router_with_node(keystore: Keystore, node: Option<Arc<Node>>) -> Router {
    router_with(keystore, node, ExpirySettings::default())
}

/// The complete application with expiry settings.
pub fn router_with(keystore: Keystore, node: Option<Arc<Node>>, expiry: ExpirySettings) -> Router {
    let (api, openapi) = crate::api::routes().split_for_parts();
    let state = AppState {
        flows: Flows::new(keystore.clone()),
        renewals: Renewals::new(keystore.clone()),
        expiry,
        keystore,
        node,
        openapi: Arc::new(openapi),
    };
    Router::new()
        .merge(api)
        .route("/flows/{name}", axum::routing::post(crate::flows::run_flow))
        .route("/api/openapi.json", get(openapi_document))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// What an extra node serves: `POST /flows/{name}` and `/healthz`; no API.
pub fn node_router(keystore: Keystore, node: Arc<Node>) -> Router {
    let (_, openapi) = crate::api::routes().split_for_parts();
    let state = AppState {
        flows: Flows::new(keystore.clone()),
        renewals: Renewals::new(keystore.clone()),
        expiry: ExpirySettings::default(),
        keystore,
        node: Some(node),
        openapi: Arc::new(openapi),
    };
    Router::new()
        .route("/flows/{name}", axum::routing::post(crate::flows::run_flow))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "a node serves only /flows/NAME") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn openapi_document(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<utoipa::openapi::OpenApi> {
    Json((*state.openapi).clone())
}

/// The OpenAPI document as JSON, without starting a server.
pub fn openapi_json() -> String {
    let (_, openapi) = crate::api::routes().split_for_parts();
    openapi.to_pretty_json().unwrap_or_default()
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    keystore: Keystore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(keystore), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes in-flight
/// requests.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
