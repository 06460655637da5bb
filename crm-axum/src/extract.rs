//! Our extractors: axum's, with rejections answered as problem+json.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use crm_core::FieldError;
use crm_core::record::WriteJson;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body (`Content-Type: application/json`), deserialized into `T`; as a response, a
/// JSON body.
///
/// Malformed JSON is a 400; JSON of the wrong shape (unknown or mistyped fields) a 422 naming
/// the field; another content type a 415; an oversized body a 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = JsonBody::from_request(req, state).await?;
        Ok(Json(parse(&body.0)?))
    }
}

/// Where a JSON answer's buffer starts: a record is about 1 KiB, a page of them tens. (axum's
/// `Json` starts at 128 bytes and doubles: four copies for one record, nine for a page of 50.)
const ANSWER_CAPACITY: usize = 4096;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(ANSWER_CAPACITY);
        let written = serde_json::to_writer(&mut body, &self.0);
        json_answer(written, body)
    }
}

/// Records, one or a page of them, as a JSON answer: the bytes [`Json`] answers, written by
/// [`WriteJson`] into a buffer sized for them (docs/benchmarks.md, "Writing records as JSON").
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordsJson<T>(pub T);

impl<T: WriteJson> IntoResponse for RecordsJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(self.0.json_size_hint().max(ANSWER_CAPACITY));
        let written = self.0.write_json(&mut body);
        json_answer(written, body)
    }
}

/// `body` answered as JSON once written, or a 500 if it could not be.
fn json_answer(written: serde_json::Result<()>, body: Vec<u8>) -> Response {
    match written {
        Ok(()) => (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(e) => ApiError::Core(crm_core::Error::Internal(format!(
            "the answer did not serialize: {e}"
        )))
        .into_response(),
    }
}

/// The raw bytes of a JSON body, checked for content type and size but not parsed; for
/// handlers that fingerprint the body (idempotency) or check its keys before parsing.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(JsonBody(read_body(req, state).await?))
    }
}

/// Reads a body within the router's size limit.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("the request body could not be read".into())
        }
    })
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    })
}

/// The media type of the body, lowercased, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Parses JSON bytes into `T`, mapping serde's error to a 400 (syntax) or 422 (shape).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(json_error)
}

/// Parses a JSON value into `T` (the value is known to be well-formed JSON).
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(json_error)
}

fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
        Category::Data => ApiError::Core(crm_core::Error::Validation(vec![field_error(&e)])),
    }
}

/// Turns serde's message into a field error: `unknown field `x`…` → field `x`, code
/// `unknown_field`; `missing field `x`` → `required`; otherwise `invalid` on the body.
fn field_error(e: &serde_json::Error) -> FieldError {
    let msg = e.to_string();
    let quoted = |s: &str| s.split('`').nth(1).map(str::to_owned);
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let field = quoted(rest).unwrap_or_else(|| "body".into());
        return FieldError::new(field, "unknown_field", "is not a field of this resource");
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        let field = quoted(rest).unwrap_or_else(|| "body".into());
        return FieldError::new(field, "required", "is required");
    }
    // serde_json appends " at line L column C"; the message before it names the problem.
    let text = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    FieldError::new("body", "invalid", text)
}

/// Path parameters; a malformed one (e.g. not a UUID) is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))
    }
}

/// A query string; a malformed one is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", e.body_text())))
    }
}
