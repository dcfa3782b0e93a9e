//! The one error shape every route answers with:
//! `{"error": {"code": "...", "message": "..."}}`. Codes are stable (scripts
//! match on them); messages are for people and may name the input.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::identity::admission::Refusal;

/// An API error.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

/// What handlers return.
pub(super) type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(super) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A refused handshake, worded as the operator guide documents it.
    pub(super) fn refused(r: Refusal) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, r.code(), format!("handshake failed: {r}"))
    }

    pub(super) fn not_clustered() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_clustered", "this node runs without cluster.enabled")
    }

    pub(super) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A 200 with a JSON body.
pub(super) fn ok(body: serde_json::Value) -> ApiResult {
    Ok(Json(body).into_response())
}

/// Reads a JSON body, naming what is wrong with it.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}
