//! `Idempotency-Key` on creates (IETF httpapi idempotency-key draft).
//!
//! The first request with a key runs and its response (2xx or 4xx) is stored; a repeat with the
//! same method, path, body and `?duplicates=` policy gets that response again, its headers
//! (`ETag`, `Location`, `Crm-Duplicates`) included, with `Idempotent-Replayed: true`; a repeat
//! with a different request 422, a repeat while the first still runs 409, a repeat after the
//! record it wrote was erased 410. A 5xx is not stored, so the client may retry. Keys belong to
//! the caller (the user or API key): another caller's same key is another request. They expire
//! after [`crate::AuthConfig::idempotency_ttl`]; `crm sweep` deletes expired ones.

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

/// Headers of a response worth replaying: a replay answers what the first request answered,
/// its duplicate warnings included.
const KEPT: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ETAG,
    header::LOCATION,
    HeaderName::from_static(crate::routes::records::DUPLICATES_HEADER),
];

/// Runs `work` at most once per `Idempotency-Key` (or simply runs it without one).
///
/// `work` gets the tenant handle to write through: with a key, a unit of work
/// ([`crm_core::Tenant::transaction`]) in which the response is also stored, so that the write
/// and its remembered response commit together. A failure between the two cannot leave a
/// record that a retry would create again.
pub(crate) async fn run<F, Fut>(
    state: &ApiState,
    tenant: &Tenant,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    work: F,
) -> axum::response::Response
where
    F: FnOnce(crm_core::Tenant) -> Fut,
    Fut: Future<Output = ApiResult<axum::response::Response>>,
{
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        return work(tenant.0.clone()).await.into_response();
    };
    let Ok(key) = key.to_str() else {
        return ApiError::BadRequest("Idempotency-Key must be visible ASCII".into())
            .into_response();
    };
    let fingerprint = fingerprint(path, body);
    match tenant
        .idempotency()
        .begin(key, &fingerprint, state.auth.config.idempotency_ttl)
        .await
    {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Begin::Mismatch) => ApiError::IdempotencyKeyReused.into_response(),
        Ok(Begin::InProgress) => ApiError::IdempotencyKeyInProgress.into_response(),
        Ok(Begin::Erased) => ApiError::IdempotencyKeyErased.into_response(),
        Ok(Begin::Replay(stored)) => replay(&stored),
        Ok(Begin::Started) => run_once(tenant, key, work).await,
    }
}

/// Runs the first request with `key` and stores its response, in one unit of work.
async fn run_once<F, Fut>(tenant: &Tenant, key: &str, work: F) -> axum::response::Response
where
    F: FnOnce(crm_core::Tenant) -> Fut,
    Fut: Future<Output = ApiResult<axum::response::Response>>,
{
    // A 5xx is not remembered: the unit rolls back (whatever the work wrote goes with it) and
    // the key is released so that the client may retry.
    let mut failed = None;
    let mut committing = false;
    let out = tenant
        .transaction(|t| {
            let (failed, committing) = (&mut failed, &mut committing);
            async move {
                let res = work(t.clone()).await.into_response();
                if res.status().is_server_error() {
                    *failed = Some(res);
                    return Err(crm_core::Error::Internal("the request failed".into()));
                }
                let (parts, body) = res.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .map_err(|e| crm_core::Error::Internal(format!("response body: {e}")))?;
                t.idempotency()
                    .complete(key, &stored(&parts, &bytes))
                    .await?;
                *committing = true;
                Ok(Response::from_parts(parts, Body::from(bytes)))
            }
        })
        .await;
    match out {
        Ok(res) => res,
        Err(e) => {
            if committing {
                // The commit itself failed: whether it landed is unknown. The key stays pending,
                // so a retry waits (409) until it is abandoned, or replays if it did land.
                tracing::warn!(error = %e, "committing an idempotent request failed");
            } else if let Err(e) = tenant.idempotency().release(key).await {
                tracing::warn!(error = %e, "releasing an idempotency key failed");
            }
            failed.unwrap_or_else(|| ApiError::from(e).into_response())
        }
    }
}

/// What is kept of a response to replay it.
fn stored(parts: &axum::http::response::Parts, body: &[u8]) -> StoredResponse {
    let kept: serde_json::Map<String, serde_json::Value> = KEPT
        .iter()
        .filter_map(|h| {
            let v = parts.headers.get(h)?.to_str().ok()?;
            Some((h.as_str().to_owned(), v.into()))
        })
        .collect();
    StoredResponse {
        status: parts.status.as_u16(),
        headers: serde_json::Value::Object(kept).to_string(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

/// SHA-256 of the path (with the parameters that change what the request does) and body: what
/// "the same request" means.
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
