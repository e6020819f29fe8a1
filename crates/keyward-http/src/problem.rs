//! Errors as problem details (RFC 9457).
//!
//! Every error response of the API is `application/problem+json` with a `type` naming the
//! class of problem, a `title`, the `status` and a `detail` that says what was wrong. Internal
//! errors are logged in full and answered with a generic detail, so stored data never leaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_domain::{DomainError, ErrorClass};
use keyward_keystore::KeystoreError;

use crate::wire::ProblemJson;

/// Media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the user.
    pub detail: String,
}

impl Problem {
    /// A problem with a status and a detail message.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into() }
    }

    /// 400 Bad Request.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    fn type_uri(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "urn:keyward:problem:invalid-request",
            StatusCode::UNAUTHORIZED => "urn:keyward:problem:unauthenticated",
            StatusCode::FORBIDDEN => "urn:keyward:problem:forbidden",
            StatusCode::NOT_FOUND => "urn:keyward:problem:not-found",
            StatusCode::CONFLICT => "urn:keyward:problem:conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "urn:keyward:problem:too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "urn:keyward:problem:unsupported-media-type",
            s if s.is_server_error() => "urn:keyward:problem:internal",
            _ => "about:blank",
        }
    }
}

/// The HTTP status of an error class.
pub fn status_of(class: ErrorClass) -> StatusCode {
    {
        match class {
            ErrorClass::Invalid => StatusCode::BAD_REQUEST,
            ErrorClass::Forbidden => StatusCode::FORBIDDEN,
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::Conflict => StatusCode::CONFLICT,
        }
    }
}

impl From<KeystoreError> for Problem {
    fn from(error: KeystoreError) -> Self {
        match error.class() {
            Some(class) => Self::new(status_of(class), error.to_string()),
            None => {
                tracing::error!(%error, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "keyward failed to complete the request; the server log has the details",
                )
            }
        }
    }
}

impl From<DomainError> for Problem {
    fn from(error: DomainError) -> Self {
        Self::new(status_of(error.class()), error.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemJson {
            problem_type: self.type_uri().to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"keyward\""));
        }
        response
    }
}
