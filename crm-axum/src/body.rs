//! Request bodies are read to their end before a handler runs.
//!
//! A handler may refuse a request from its head alone (a bad id, a missing credential). If the
//! body were then left unread, the server could not tell where the next request on a keep-alive
//! connection begins: hyper closes such a connection, and a client that already sent its next
//! request sees it dropped without an answer. Reading every body first (they are JSON of at most
//! the body limit, read whole by the handlers anyway) keeps the connection usable; a body over
//! the limit is refused with `Connection: close` instead, without reading it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Reads the body of `req` (at most `limit` bytes) before passing it on.
pub(crate) async fn read_whole(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return closing(ApiError::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // Over the limit (a chunked body), or the client stopped sending: the rest of the
        // connection cannot be trusted.
        Err(_) => closing(ApiError::PayloadTooLarge),
    }
}

/// `error`, answered with `Connection: close`.
fn closing(error: ApiError) -> Response {
    let mut res = error.into_response();
    res.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    res
}
