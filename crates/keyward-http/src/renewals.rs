//! Partners and renewals in the API: `/api/v1/partners…` and `/api/v1/renewals…`.
//!
//! The handlers have the shape of those in [`api`](crate::api): caller, parse, call
//! [`Renewals`](keyward_runtime::renewal::Renewals), JSON. Step tables come from the domain;
//! each step in JSON carries its actor, kind, text and the seed's step numbers, so a client
//! can show a renewal next to the seed it implements.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_domain::partner::{Capabilities, parse_capabilities};
use keyward_domain::{Alias, Partner, Procedure, Renewal, StepActor, Timestamp};
use keyward_runtime::renewal::{Confirmation, Plan, RenewalError};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiJson;
use crate::auth::Caller;
use crate::problem::{Problem, status_of};
use crate::server::AppState;
use crate::wire::*;

/// The partner and renewal routes with their OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_partners, add_partner))
        .routes(routes!(show_partner, update_partner))
        .routes(routes!(plan))
        .routes(routes!(list_renewals, start))
        .routes(routes!(tasks))
        .routes(routes!(show_renewal))
        .routes(routes!(confirm))
        .routes(routes!(schedule_downtime))
        .routes(routes!(abort))
}

impl From<RenewalError> for Problem {
    fn from(error: RenewalError) -> Self {
        match error {
            RenewalError::Domain(e) => Problem::from(e),
            RenewalError::Invalid(_) => Problem::bad_request(error.to_string()),
            RenewalError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, error.to_string()),
            RenewalError::Keystore(e) => Problem::from(e),
            RenewalError::Flows(e) => Problem::from(e),
            RenewalError::Store(e) => match e.class() {
                Some(class) => Problem::new(status_of(class), e.to_string()),
                None => Problem::from(keyward_keystore::KeystoreError::from(e)),
            },
        }
    }
}

fn partner_json(p: Partner) -> PartnerJson {
    PartnerJson {
        name: p.name,
        url: p.url,
        capabilities: p.capabilities.iter().map(|c| c.as_str().to_owned()).collect(),
        description: p.description,
    }
}

fn capabilities(names: &[String]) -> Result<Capabilities, Problem> {
    parse_capabilities(&names.join(",")).map_err(Problem::bad_request)
}

/// A renewal (or a plan's would-be renewal) in JSON.
pub fn renewal_json(r: &Renewal) -> RenewalJson {
    let variant = r.variant();
    RenewalJson {
        id: r.id,
        alias: r.alias.to_string(),
        procedure: r.procedure.as_str().to_owned(),
        procedure_title: r.procedure.title().to_owned(),
        variant: r.variant.clone(),
        variant_title: variant.map_or("", |v| v.title).to_owned(),
        downtime: variant.is_some_and(|v| v.downtime),
        state: r.state.as_str().to_owned(),
        flows: r.flows.clone(),
        partners: r.partners.clone(),
        old_version: r.old_version.map(|v| v.0),
        new_version: r.new_version.map(|v| v.0),
        second_alias: r.second_alias.as_ref().map(ToString::to_string),
        window_from: r.window.map(|(f, _)| f.to_rfc3339()),
        window_to: r.window.map(|(_, t)| t.to_rfc3339()),
        created_by: r.created_by.clone(),
        created_at: r.created_at.to_rfc3339(),
        steps: r
            .steps
            .iter()
            .map(|s| {
                let def = r.def(s);
                RenewalStepJson {
                    position: s.position,
                    key: s.key.clone(),
                    actor: def.map_or("", |d| d.actor.as_str()).to_owned(),
                    kind: def.map_or("", |d| d.kind.as_str()).to_owned(),
                    text: def.map_or("", |d| d.text).to_owned(),
                    partner: s.partner.clone(),
                    in_window: def.is_some_and(|d| d.in_window),
                    seed_steps: def.map_or("", |d| d.seed_steps).to_owned(),
                    state: s.state.as_str().to_owned(),
                    by: s.by.clone(),
                    at: s.at.map(Timestamp::to_rfc3339),
                    note: s.note.clone(),
                    due: s.due.map(Timestamp::to_rfc3339),
                }
            })
            .collect(),
    }
}

fn plan_json(plan: Plan, actor: &str, now: Timestamp) -> PlanJson {
    let renewal = Renewal {
        id: 0,
        alias: plan.alias,
        procedure: plan.procedure,
        variant: plan.variant.name.to_owned(),
        state: keyward_domain::RenewalState::Running,
        flows: plan.flows,
        partners: plan.partners,
        old_version: None,
        new_version: None,
        second_alias: plan.second_alias,
        window: None,
        created_by: actor.to_owned(),
        created_at: now,
        updated_at: now,
        revision: 0,
        steps: plan.steps,
    };
    let mut json = renewal_json(&renewal);
    json.state = "planned".to_owned();
    PlanJson {
        reason: plan.reason,
        uses: plan
            .uses
            .into_iter()
            .map(|u| AliasUseJson { flow: u.flow, place: u.place, partner: u.partner, url: u.url })
            .collect(),
        undeclared_partners: plan.undeclared,
        renewal: json,
    }
}

fn alias(input: &str) -> Result<Alias, Problem> {
    Alias::parse(input).map_err(Problem::from)
}

fn procedure(input: Option<&str>) -> Result<Option<Procedure>, Problem> {
    input.map(|p| p.parse::<Procedure>().map_err(Problem::bad_request)).transpose()
}

/// The partners.
#[utoipa::path(get, path = "/api/v1/partners", tag = "renewals", security(("bearer" = [])),
    responses((status = 200, body = [PartnerJson])))]
async fn list_partners(State(state): State<AppState>, Caller(actor): Caller) -> Result<Json<Vec<PartnerJson>>, Problem> {
    Ok(Json(state.renewals.partners(&actor).await?.into_iter().map(partner_json).collect()))
}

/// Declare a partner (admin).
#[utoipa::path(post, path = "/api/v1/partners", tag = "renewals", request_body = PartnerJson, security(("bearer" = [])),
    responses((status = 200, body = PartnerJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn add_partner(State(state): State<AppState>, Caller(actor): Caller, ApiJson(request): ApiJson<PartnerJson>) -> Result<Json<PartnerJson>, Problem> {
    let partner = Partner {
        name: request.name,
        url: request.url.filter(|u| !u.is_empty()),
        capabilities: capabilities(&request.capabilities)?,
        description: request.description.filter(|d| !d.is_empty()),
    };
    Ok(Json(partner_json(state.renewals.add_partner(&actor, partner).await?)))
}

/// One partner.
#[utoipa::path(get, path = "/api/v1/partners/{name}", tag = "renewals", security(("bearer" = [])),
    params(("name" = String, Path, description = "Partner name")),
    responses((status = 200, body = PartnerJson), (status = 404, body = ProblemJson)))]
async fn show_partner(State(state): State<AppState>, Caller(actor): Caller, Path(name): Path<String>) -> Result<Json<PartnerJson>, Problem> {
    Ok(Json(partner_json(state.renewals.partner(&actor, &name).await?)))
}

/// Change a partner's URL, capabilities or description (admin).
#[utoipa::path(patch, path = "/api/v1/partners/{name}", tag = "renewals", request_body = PartnerUpdate, security(("bearer" = [])),
    params(("name" = String, Path, description = "Partner name")),
    responses((status = 200, body = PartnerJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn update_partner(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PartnerUpdate>,
) -> Result<Json<PartnerJson>, Problem> {
    let caps = request.capabilities.as_deref().map(capabilities).transpose()?;
    let partner = state.renewals.update_partner(&actor, &name, request.url, caps, request.description).await?;
    Ok(Json(partner_json(partner)))
}

/// Which procedure and variant a renewal takes.
#[derive(Debug, serde::Deserialize, IntoParams)]
pub struct PlanQuery {
    /// A procedure instead of the one keyward picks.
    pub procedure: Option<String>,
    /// A variant instead of the one the partners decide.
    pub variant: Option<String>,
}

/// Plan a renewal of an alias without changing anything: procedure, variant, affected flows and partners, steps.
#[utoipa::path(get, path = "/api/v1/renewals/plan/{alias}", tag = "renewals", security(("bearer" = [])),
    params(("alias" = String, Path, description = "Alias"), PlanQuery),
    responses((status = 200, body = PlanJson), (status = 400, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn plan(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    Query(query): Query<PlanQuery>,
) -> Result<Json<PlanJson>, Problem> {
    let alias = alias(&name)?;
    let plan = state.renewals.plan(&actor, &alias, procedure(query.procedure.as_deref())?, query.variant.as_deref()).await?;
    Ok(Json(plan_json(plan, &actor.name, state.keystore.now())))
}

/// The renewals, oldest first.
#[utoipa::path(get, path = "/api/v1/renewals", tag = "renewals", security(("bearer" = [])),
    responses((status = 200, body = [RenewalJson])))]
async fn list_renewals(State(state): State<AppState>, Caller(actor): Caller) -> Result<Json<Vec<RenewalJson>>, Problem> {
    Ok(Json(state.renewals.list(&actor).await?.iter().map(renewal_json).collect()))
}

/// Start a renewal (admin); keyward runs its first automated steps at once.
#[utoipa::path(post, path = "/api/v1/renewals", tag = "renewals", request_body = RenewalStart, security(("bearer" = [])),
    responses((status = 200, body = RenewalJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn start(State(state): State<AppState>, Caller(actor): Caller, ApiJson(request): ApiJson<RenewalStart>) -> Result<Json<RenewalJson>, Problem> {
    let alias = alias(&request.alias)?;
    let renewal = state
        .renewals
        .start(&actor, &alias, procedure(request.procedure.as_deref())?, request.variant.as_deref())
        .await?;
    Ok(Json(renewal_json(&renewal)))
}

/// Whose steps to list.
#[derive(Debug, serde::Deserialize, IntoParams)]
pub struct TasksQuery {
    /// admin, developer or partner.
    pub role: Option<String>,
    /// Only this partner's steps.
    pub partner: Option<String>,
}

/// What is waiting for whom: open steps that a person or a partner must do.
#[utoipa::path(get, path = "/api/v1/renewals/tasks", tag = "renewals", security(("bearer" = [])),
    params(TasksQuery),
    responses((status = 200, body = [RenewalTaskJson]), (status = 400, body = ProblemJson)))]
async fn tasks(State(state): State<AppState>, Caller(actor): Caller, Query(query): Query<TasksQuery>) -> Result<Json<Vec<RenewalTaskJson>>, Problem> {
    let role = match query.role.as_deref() {
        None => None,
        Some("admin") => Some(StepActor::Admin),
        Some("developer") => Some(StepActor::Developer),
        Some("partner") => Some(StepActor::Partner),
        Some(other) => return Err(Problem::bad_request(format!("{other:?} is not a step actor; use admin, developer or partner"))),
    };
    let partner = query.partner.map(|p| p.to_ascii_lowercase());
    let tasks = state.renewals.tasks(&actor, role, partner.as_deref()).await?;
    Ok(Json(
        tasks
            .into_iter()
            .map(|t| RenewalTaskJson {
                renewal: t.renewal,
                alias: t.alias.to_string(),
                position: t.step.position,
                key: t.step.key,
                actor: t.actor.as_str().to_owned(),
                partner: t.step.partner,
                state: t.step.state.as_str().to_owned(),
                text: t.text.to_owned(),
            })
            .collect(),
    ))
}

/// One renewal with every step's who, when and result.
#[utoipa::path(get, path = "/api/v1/renewals/{id}", tag = "renewals", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Renewal number")),
    responses((status = 200, body = RenewalJson), (status = 404, body = ProblemJson)))]
async fn show_renewal(State(state): State<AppState>, Caller(actor): Caller, Path(id): Path<i64>) -> Result<Json<RenewalJson>, Problem> {
    Ok(Json(renewal_json(&state.renewals.show(&actor, id).await?)))
}

/// Confirm a step (by its number or key), bring an input step's file, run a failed probe again, or override it (admin, with a note).
#[utoipa::path(post, path = "/api/v1/renewals/{id}/steps/{step}/confirm", tag = "renewals", request_body = ConfirmRequest, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Renewal number"), ("step" = String, Path, description = "Step number or key")),
    responses((status = 200, body = RenewalJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn confirm(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((id, step)): Path<(i64, String)>,
    ApiJson(request): ApiJson<ConfirmRequest>,
) -> Result<Json<RenewalJson>, Problem> {
    let input = request
        .data
        .as_deref()
        .map(|d| STANDARD.decode(d).map_err(|e| Problem::bad_request(format!("data is not base64: {e}"))))
        .transpose()?;
    let confirmation = Confirmation {
        partner: request.partner.map(|p| p.to_ascii_lowercase()),
        note: request.note,
        input,
        override_probe: request.override_probe,
    };
    Ok(Json(renewal_json(&state.renewals.confirm(&actor, id, &step, confirmation).await?)))
}

/// Agree the downtime window (admin); steps inside it wait until it opens.
#[utoipa::path(post, path = "/api/v1/renewals/{id}/downtime", tag = "renewals", request_body = DowntimeRequest, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Renewal number")),
    responses((status = 200, body = RenewalJson), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn schedule_downtime(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<i64>,
    ApiJson(request): ApiJson<DowntimeRequest>,
) -> Result<Json<RenewalJson>, Problem> {
    let time = |field: &str, value: &str| {
        Timestamp::parse_rfc3339(value).map_err(|e| Problem::bad_request(format!("{field}: {e}")))
    };
    let (from, to) = (time("from", &request.from)?, time("to", &request.to)?);
    Ok(Json(renewal_json(&state.renewals.schedule_downtime(&actor, id, from, to).await?)))
}

/// Abort a renewal (admin), reverting what it changed.
#[utoipa::path(post, path = "/api/v1/renewals/{id}/abort", tag = "renewals", request_body = AbortRequest, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Renewal number")),
    responses((status = 200, body = RenewalJson), (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn abort(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<i64>,
    ApiJson(request): ApiJson<AbortRequest>,
) -> Result<Json<RenewalJson>, Problem> {
    Ok(Json(renewal_json(&state.renewals.abort(&actor, id, request.reason.as_deref()).await?)))
}
