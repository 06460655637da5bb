//! Errors as RFC 9457 `application/problem+json`, converted in exactly one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client is asked to wait (`Retry-After`) when the database is unavailable: about
/// the time a PostgreSQL restart or a failover takes.
const UNAVAILABLE_RETRY_AFTER: &str = "2";

/// An error answered by the API: a core error, or one of the few that only HTTP knows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// An error of the library.
    #[error(transparent)]
    Core(#[from] crm_core::Error),
    /// The request could not be read: malformed JSON, a bad path id or query string. HTTP 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is not JSON (or a form, where forms are accepted). HTTP 415.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is over the size limit. HTTP 413.
    #[error("payload too large")]
    PayloadTooLarge,
    /// No route has this path. HTTP 404.
    #[error("no such route")]
    NoRoute,
    /// The route exists, the method does not. HTTP 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An `Idempotency-Key` was reused with a different request. HTTP 422.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The first request with this `Idempotency-Key` is still running. HTTP 409.
    #[error("a request with this idempotency key is in progress")]
    IdempotencyKeyInProgress,
    /// The first request with this `Idempotency-Key` wrote a record that was erased since: its
    /// response is gone, and the request is not run again. HTTP 410.
    #[error("the record this idempotency key wrote was erased")]
    IdempotencyKeyErased,
    /// A handler takes [`crate::Tenant`] on a route that is not behind [`crate::AuthLayer`]: a
    /// mistake in the app's assembly. HTTP 500, with a detail that names the layer.
    #[error("the Tenant extractor is used on a route without crm_axum::AuthLayer")]
    MissingAuthLayer,
    /// The record was merged into another one: HTTP 308 with `Location` (the same path with the
    /// survivor's id).
    #[error("moved to {location}")]
    Moved {
        /// The survivor's URL path (and the request's query).
        location: String,
        /// The core error (what moved where).
        source: crm_core::Error,
    },
    /// The request took longer than the server's time limit
    /// ([`crate::server::ServerOptions::request_timeout`]). HTTP 503.
    #[error("request timed out")]
    TimedOut,
}

/// The body of every error response (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem; match on it, not on `title`.
    #[serde(rename = "type")]
    #[schema(example = "urn:abetworks:crm:problem:validation")]
    pub type_: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why a conflict (409) or a refusal (403) happened, as a stable machine-readable code
    /// (`not_draft`, `admin_only`, `still_linked`…); match on it, not on `detail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "not_draft")]
    pub code: Option<String>,
    /// One entry per offending field (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// The likely duplicates that refused a create or import (code `duplicates`): by the index
    /// of the new record in its request, the existing record's id and the rule that matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<crm_core::Duplicate>,
}

/// One problem with one input field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field as the client named it (`email`, `custom_fields.tier`).
    pub field: String,
    /// A stable machine-readable code (`required`, `unknown_field`, `read_only`…).
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            code: e.code.to_owned(),
            message: e.message,
        }
    }
}

/// The internal error of a 5xx response, put into its extensions for the logging layer: the
/// client never sees it.
#[derive(Debug, Clone)]
pub struct InternalError(pub String);

impl ApiError {
    /// The status and body this error answers.
    pub fn problem(&self) -> (StatusCode, Problem) {
        use crm_core::Error as E;
        let (status, kind, title, detail, errors): (_, _, _, Option<String>, Vec<FieldError>) =
            match self {
                ApiError::Core(e) => match e {
                    E::NotFound { entity, .. } => (
                        StatusCode::NOT_FOUND,
                        "not-found",
                        "Not found",
                        Some(format!("no such {entity}")),
                        vec![],
                    ),
                    E::Validation(errors) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation",
                        "Invalid input",
                        Some("one or more fields are invalid".into()),
                        errors.clone(),
                    ),
                    E::Conflict(refusal) | E::Forbidden(refusal) | E::Gone(refusal) => {
                        let (status, kind, title) = match e {
                            E::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
                            E::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
                            _ => (StatusCode::GONE, "gone", "Gone"),
                        };
                        (status, kind, title, Some(refusal.message.clone()), vec![])
                    }
                    E::Duplicates { entity, matches } => (
                        StatusCode::CONFLICT,
                        "conflict",
                        "Conflict",
                        Some(format!(
                            "{} likely duplicate(s) of existing {entity} records",
                            matches.len()
                        )),
                        vec![],
                    ),
                    // A merged record named where no redirect applies (a verb, an `absorb`
                    // list): a conflict. The record routes answer 308 (`ApiError::Moved`).
                    E::Moved { entity, id, to } => (
                        StatusCode::CONFLICT,
                        "conflict",
                        "Conflict",
                        Some(format!("{entity} {id} was merged into {to}")),
                        vec![],
                    ),
                    E::VersionMismatch { .. } => (
                        StatusCode::PRECONDITION_FAILED,
                        "version-mismatch",
                        "Precondition failed",
                        Some("the record changed since you read it (If-Match)".into()),
                        vec![],
                    ),

                    E::Unauthenticated => (
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        "Unauthenticated",
                        Some("missing, invalid or expired credentials".into()),
                        vec![],
                    ),
                    E::RateLimited { .. } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        "Too many requests",
                        Some("slow down and retry later".into()),
                        vec![],
                    ),
                    e @ E::Unavailable(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Service unavailable",
                        Some(if e.is_contention() {
                            "concurrent writes to the same records kept colliding; retry shortly"
                                .into()
                        } else {
                            "the database is unavailable for a moment; retry shortly".into()
                        }),
                        vec![],
                    ),
                    E::Overloaded(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "Service unavailable",
                        Some("the server is too busy for this right now; retry shortly".into()),
                        vec![],
                    ),
                    _ => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Internal server error",
                        None,
                        vec![],
                    ),
                },
                ApiError::Moved { source, .. } => (
                    StatusCode::PERMANENT_REDIRECT,
                    "moved",
                    "Permanent redirect",
                    Some(source.to_string()),
                    vec![],
                ),
                ApiError::BadRequest(msg) => (
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "Bad request",
                    Some(msg.clone()),
                    vec![],
                ),
                ApiError::UnsupportedMediaType => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Unsupported media type",
                    Some("send `Content-Type: application/json`".into()),
                    vec![],
                ),
                ApiError::PayloadTooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "Payload too large",
                    None,
                    vec![],
                ),
                ApiError::NoRoute => (
                    StatusCode::NOT_FOUND,
                    "no-route",
                    "Not found",
                    Some("no such route".into()),
                    vec![],
                ),
                ApiError::MethodNotAllowed => (
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    "Method not allowed",
                    None,
                    vec![],
                ),
                ApiError::IdempotencyKeyReused => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    Some("this Idempotency-Key was used with a different request".into()),
                    vec![],
                ),
                ApiError::IdempotencyKeyInProgress => (
                    StatusCode::CONFLICT,
                    "idempotency-key-in-progress",
                    "Request in progress",
                    Some("a request with this Idempotency-Key is still being processed".into()),
                    vec![],
                ),
                ApiError::IdempotencyKeyErased => (
                    StatusCode::GONE,
                    "erased",
                    "Erased",
                    Some(
                        "the record the first request with this Idempotency-Key wrote was erased"
                            .into(),
                    ),
                    vec![],
                ),
                ApiError::MissingAuthLayer => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal server error",
                    Some(
                        "this route takes crm_axum::Tenant but is not behind crm_axum::AuthLayer"
                            .into(),
                    ),
                    vec![],
                ),
                ApiError::TimedOut => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "Request timed out",
                    Some("the request took longer than the server allows; retry later".into()),
                    vec![],
                ),
            };
        let code = match self {
            ApiError::Core(E::Conflict(r) | E::Forbidden(r) | E::Gone(r)) => {
                Some(r.code.to_owned())
            }
            ApiError::Core(E::Duplicates { .. }) => Some("duplicates".to_owned()),
            ApiError::Core(E::Moved { .. }) | ApiError::Moved { .. } => Some("merged".to_owned()),
            _ => None,
        };
        let matches = match self {
            ApiError::Core(E::Duplicates { matches, .. }) => matches.clone(),
            _ => Vec::new(),
        };
        (
            status,
            Problem {
                type_: format!("urn:abetworks:crm:problem:{kind}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail,
                code,
                errors: errors.into_iter().map(ProblemField::from).collect(),
                matches,
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, problem) = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"crm\""),
                );
            }
            StatusCode::TOO_MANY_REQUESTS => {
                if let ApiError::Core(crm_core::Error::RateLimited { retry_after }) = &self {
                    // Whole seconds, rounded up: never invite a retry that is still refused.
                    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                }
            }
            StatusCode::PERMANENT_REDIRECT => {
                if let ApiError::Moved { location, .. } = &self
                    && let Ok(v) = HeaderValue::from_str(location)
                {
                    headers.insert(header::LOCATION, v);
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER),
                );
            }
            _ => {}
        }
        if status.is_server_error() {
            res.extensions_mut()
                .insert(InternalError(format!("{:#}", DisplayChain(&self))));
        }
        res
    }
}

/// Turns a merged record's [`crm_core::Error::Moved`] into a redirect to the survivor at the
/// same path as the request (`uri`), wherever the host mounted the router; other errors pass.
pub(crate) fn relocate(uri: &axum::http::Uri) -> impl Fn(ApiError) -> ApiError + '_ {
    move |e| match e {
        ApiError::Core(crm_core::Error::Moved { entity, id, to })
            if uri
                .path()
                .split('/')
                .any(|s| uuid::Uuid::try_parse(s).is_ok_and(|s| s == id)) =>
        {
            let mut location = uri
                .path()
                .split('/')
                .map(|segment| match uuid::Uuid::try_parse(segment) {
                    Ok(s) if s == id => to.to_string(),
                    _ => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            if let Some(q) = uri.query() {
                location.push('?');
                location.push_str(q);
            }
            ApiError::Moved {
                location,
                source: crm_core::Error::Moved { entity, id, to },
            }
        }
        other => other,
    }
}

/// `error: cause: cause…`, for logs.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
