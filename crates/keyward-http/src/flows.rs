//! Flow operations, nodes and where-used in the API, and the node endpoint that senders
//! post messages to (`POST /flows/NAME`).
//!
//! The handlers have the same shape as those in [`api`](crate::api): caller, parse, call
//! [`Flows`](keyward_runtime::operations::Flows), JSON. The node endpoint is not under
//! `/api`: it takes the message as the body, runs the flow and answers with the partner's
//! answer (request-reply). A stopped flow answers 503 with `Retry-After`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_domain::Alias;
use keyward_runtime::node::FlowRunError;
use keyward_runtime::operations::{FlowsError, UsageReport};
use keyward_store::{FlowChange, FlowRecord, NodeRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiJson;
use crate::auth::Caller;
use crate::problem::{Problem, status_of};
use crate::server::AppState;
use crate::wire::*;

/// The node a flow change is for; every node when absent.
#[derive(Debug, serde::Deserialize)]
pub struct NodeTarget {
    /// The node's id.
    pub node: Option<String>,
}

/// Seconds a sender is asked to wait before retrying a stopped flow.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The flow, node and usage routes with their OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deploy, list_flows))
        .routes(routes!(show_flow, undeploy))
        .routes(routes!(change_flow))
        .routes(routes!(list_nodes))
        .routes(routes!(usage))
}

impl From<FlowsError> for Problem {
    fn from(error: FlowsError) -> Self {
        match error {
            FlowsError::Domain(e) => Problem::from(keyward_keystore::KeystoreError::from(e)),
            FlowsError::Definition(_) => Problem::bad_request(error.to_string()),
            FlowsError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, error.to_string()),
            FlowsError::Keystore(e) => Problem::from(e),
            FlowsError::Store(e) => match e.class() {
                Some(class) => Problem::new(status_of(class), e.to_string()),
                None => Problem::from(keyward_keystore::KeystoreError::from(e)),
            },
        }
    }
}

fn flow_json(record: FlowRecord) -> FlowJson {
    FlowJson {
        name: record.name,
        state: record.state.as_str().to_owned(),
        generation: record.generation,
        deployed_at: record.deployed_at.to_rfc3339(),
        deployed_by: record.deployed_by,
        updated_at: record.updated_at.to_rfc3339(),
        updated_by: record.updated_by,
        nodes: record
            .nodes
            .into_iter()
            .map(|n| FlowNodeJson { node: n.node, state: n.state.as_str().to_owned(), restarts: n.restarts })
            .collect(),
        source: record.source,
    }
}

/// Deploy a flow file (or replace the flow of the same name); every node converges to it.
#[utoipa::path(post, path = "/api/v1/flows", tag = "flows", request_body = DeployRequest, security(("bearer" = [])),
    responses((status = 200, body = FlowJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson)))]
async fn deploy(State(state): State<AppState>, Caller(actor): Caller, ApiJson(request): ApiJson<DeployRequest>) -> Result<Json<FlowJson>, Problem> {
    Ok(Json(flow_json(state.flows.deploy(&actor, &request.source).await?)))
}

/// The deployed flows.
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows", security(("bearer" = [])),
    responses((status = 200, body = [FlowJson])))]
async fn list_flows(State(state): State<AppState>, Caller(actor): Caller) -> Result<Json<Vec<FlowJson>>, Problem> {
    Ok(Json(state.flows.list(&actor).await?.into_iter().map(flow_json).collect()))
}

/// One deployed flow with its file.
#[utoipa::path(get, path = "/api/v1/flows/{name}", tag = "flows", security(("bearer" = [])),
    params(("name" = String, Path, description = "Flow name")),
    responses((status = 200, body = FlowJson), (status = 404, body = ProblemJson)))]
async fn show_flow(State(state): State<AppState>, Caller(actor): Caller, Path(name): Path<String>) -> Result<Json<FlowJson>, Problem> {
    Ok(Json(flow_json(state.flows.show(&actor, &name).await?)))
}

/// Undeploy a flow from every node.
#[utoipa::path(delete, path = "/api/v1/flows/{name}", tag = "flows", security(("bearer" = [])),
    params(("name" = String, Path, description = "Flow name")),
    responses((status = 204), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn undeploy(State(state): State<AppState>, Caller(actor): Caller, Path(name): Path<String>) -> Result<StatusCode, Problem> {
    state.flows.undeploy(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop, start or restart a flow on every node, or with `?node=ID` on that node alone.
#[utoipa::path(post, path = "/api/v1/flows/{name}/{operation}", tag = "flows", security(("bearer" = [])),
    params(("name" = String, Path, description = "Flow name"), ("operation" = String, Path, description = "stop, start or restart"),
        ("node" = Option<String>, Query, description = "Only on this node")),
    responses((status = 200, body = FlowJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn change_flow(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((name, operation)): Path<(String, String)>,
    Query(target): Query<NodeTarget>,
) -> Result<Json<FlowJson>, Problem> {
    let change = match operation.as_str() {
        "stop" => FlowChange::Stop,
        "start" => FlowChange::Start,
        "restart" => FlowChange::Restart,
        other => return Err(Problem::bad_request(format!("{other:?} is not an operation; use stop, start or restart"))),
    };
    Ok(Json(flow_json(state.flows.change(&actor, &name, change, target.node.as_deref()).await?)))
}

/// The runtime nodes with their last heartbeat, the keystore change they applied and their flows.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "flows", security(("bearer" = [])),
    responses((status = 200, body = [NodeJson])))]
async fn list_nodes(State(state): State<AppState>, Caller(actor): Caller) -> Result<Json<Vec<NodeJson>>, Problem> {
    let marker = state.keystore.change_marker().await?;
    let now = state.keystore.now();
    Ok(Json(
        state
            .flows
            .nodes(&actor)
            .await?
            .into_iter()
            .map(|node: NodeRecord| NodeJson {
                seconds_since_heartbeat: (now.millis() - node.heartbeat_at.millis()).max(0) / 1000,
                in_sync: node.applied_marker == marker,
                id: node.id,
                address: node.address,
                started_at: node.started_at.to_rfc3339(),
                heartbeat_at: node.heartbeat_at.to_rfc3339(),
                applied_marker: node.applied_marker,
                flows: node.flows,
            })
            .collect(),
    ))
}

/// Where an alias is used: flows that name it, flows that use any valid key, and what nodes observed.
#[utoipa::path(get, path = "/api/v1/usage/{alias}", tag = "flows", security(("bearer" = [])),
    params(("alias" = String, Path, description = "Alias")),
    responses((status = 200, body = UsageJson), (status = 404, body = ProblemJson)))]
async fn usage(State(state): State<AppState>, Caller(actor): Caller, Path(alias): Path<String>) -> Result<Json<UsageJson>, Problem> {
    let alias = Alias::parse(&alias).map_err(keyward_keystore::KeystoreError::from)?;
    let report: UsageReport = state.flows.usage(&actor, &alias).await?;
    Ok(Json(UsageJson {
        alias: report.alias.to_string(),
        declared: report
            .declared
            .into_iter()
            .map(|d| DeclaredUseJson { flow: d.flow, step: d.step, place: d.place, partner: d.partner, any_valid_key: d.any_valid_key })
            .collect(),
        observed: report
            .observed
            .into_iter()
            .map(|o| ObservedUseJson {
                flow: o.flow,
                alias: o.alias,
                version: o.version,
                partner: o.partner,
                count: o.count,
                last_used: o.last_used.to_rfc3339(),
            })
            .collect(),
    }))
}

/// `POST /flows/{name}`: runs a message through a flow on this node and answers with the
/// partner's answer.
pub async fn run_flow(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(node) = &state.node else {
        return Problem::new(StatusCode::NOT_FOUND, "this server runs no node").into_response();
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match node.handle(&name, body.to_vec(), content_type).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, answer.body).into_response();
            if let Some(value) = answer.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        Err(error) => {
            let status = match &error {
                FlowRunError::NotDeployed(_) => StatusCode::NOT_FOUND,
                FlowRunError::Stopped(_) => StatusCode::SERVICE_UNAVAILABLE,
                FlowRunError::Broken { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                FlowRunError::Step { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                FlowRunError::ResponseStep { .. } => StatusCode::BAD_GATEWAY,
                FlowRunError::Receiver(keyward_runtime::channel::ChannelError::Unreachable { timed_out: true, .. }) => {
                    StatusCode::GATEWAY_TIMEOUT
                }
                FlowRunError::Receiver(_) => StatusCode::BAD_GATEWAY,
            };
            tracing::info!(flow = %name, %status, %error, "message failed");
            let mut response = Problem::new(status, error.to_string()).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            response
        }
    }
}
