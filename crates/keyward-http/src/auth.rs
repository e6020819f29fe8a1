//! Bearer tokens to callers.
//!
//! [`Caller`] is an extractor: a handler that takes one only runs for a request with a known
//! token. A missing, malformed or unknown token is answered with 401 before the handler runs;
//! what the caller's role may do is decided later, by the domain.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use keyward_domain::Actor;

use crate::problem::Problem;
use crate::server::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            Problem::unauthorized("this request needs a bearer token (Authorization: Bearer <token>; the CLI takes --token or KEYWARD_TOKEN)")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Problem::unauthorized("the Authorization header must be \"Bearer <token>\""))?;
        match state.keystore.authenticate(token).await? {
            Some(actor) => Ok(Caller(actor)),
            None => Err(Problem::unauthorized("the bearer token is not known to this keyward server")),
        }
    }
}
