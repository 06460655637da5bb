//! `Idempotency-Key` on creates (IETF httpapi idempotency-key draft).
//!
//! The first request with a key runs and its response (2xx or 4xx) is stored; a repeat with the
//! same method, path and body gets that response again (with `Idempotent-Replayed: true`), a
//! repeat with a different request 422, a repeat while the first still runs 409. A 5xx is not
//! stored, so the client may retry. Keys are scoped per organization and expire after
//! [`crate::AuthConfig::idempotency_ttl`].

use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use crm_core::auth::{Begin, StoredResponse};

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on replayed responses.
pub const REPLAYED: &str = "idempotent-replayed";

/// Headers of a response worth replaying.
const KEPT: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// Runs `work` at most once per `Idempotency-Key` (or simply runs it without one).
pub(crate) async fn run<F, Fut>(
    state: &ApiState,
    tenant: &Tenant,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    work: F,
) -> axum::response::Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<axum::response::Response>>,
{
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        return work().await.into_response();
    };
    let Ok(key) = key.to_str() else {
        return ApiError::BadRequest("Idempotency-Key must be visible ASCII".into())
            .into_response();
    };
    let fingerprint = fingerprint(path, body);
    let store = tenant.idempotency();
    match store
        .begin(key, &fingerprint, state.auth.config.idempotency_ttl)
        .await
    {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Begin::Mismatch) => ApiError::IdempotencyKeyReused.into_response(),
        Ok(Begin::InProgress) => ApiError::IdempotencyKeyInProgress.into_response(),
        Ok(Begin::Replay(stored)) => replay(&stored),
        Ok(Begin::Started) => {
            let res = work().await.into_response();
            if res.status().is_server_error() {
                if let Err(e) = store.release(key).await {
                    tracing::warn!(error = %e, "releasing an idempotency key failed");
                }
                return res;
            }
            let (parts, body) = res.into_parts();
            let bytes = match axum::body::to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(_) => {
                    let _ = store.release(key).await;
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            };
            let kept: serde_json::Map<String, serde_json::Value> = KEPT
                .iter()
                .filter_map(|h| {
                    let v = parts.headers.get(h)?.to_str().ok()?;
                    Some((h.as_str().to_owned(), v.into()))
                })
                .collect();
            let stored = StoredResponse {
                status: parts.status.as_u16(),
                headers: serde_json::Value::Object(kept).to_string(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            };
            if let Err(e) = store.complete(key, &stored).await {
                tracing::warn!(error = %e, "storing an idempotent response failed");
                let _ = store.release(key).await;
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

/// SHA-256 of the path and body: what "the same request" means.
fn fingerprint(path: &str, body: &[u8]) -> String {
    crate::sha256_hex(&[path.as_bytes(), b"\n", body])
}

fn replay(stored: &StoredResponse) -> axum::response::Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = (status, stored.body.clone()).into_response();
    let headers: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&stored.headers).unwrap_or_default();
    for (k, v) in headers {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::try_from(k.as_str()),
            v.as_str().map(HeaderValue::from_str),
        ) {
            res.headers_mut().insert(name, value);
        }
    }
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    res
}
