//! `webhook-subscriptions`: where the organization's changes are posted, signed as Standard
//! Webhooks do it; the delivery log and replays (company admins, and API keys with `all`).

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use crm_core::{
    DeliveryStatus, NewWebhookSubscription, Page, ReplayFrom, WebhookDelivery, WebhookDeliveryId,
    WebhookSubscription, WebhookSubscriptionId, WebhookSubscriptionPatch,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_subscriptions, create_subscription))
        .routes(routes!(
            get_subscription,
            update_subscription,
            delete_subscription
        ))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
        .routes(routes!(replay))
}

/// The organization's subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriptionList {
    /// Oldest first.
    data: Vec<WebhookSubscription>,
}

/// A subscription with its signing secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriptionWithSecret {
    /// The subscription.
    subscription: WebhookSubscription,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it (any Standard Webhooks
    /// library does). Store it now: it is never shown again.
    secret: String,
}

impl From<(WebhookSubscription, String)> for SubscriptionWithSecret {
    fn from((subscription, secret): (WebhookSubscription, String)) -> Self {
        Self {
            subscription,
            secret,
        }
    }
}

/// Lists the organization's webhook subscriptions (never their secrets). Company admins, and
/// API keys with the `all` scope.
#[utoipa::path(get, path = "/webhook-subscriptions", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionList),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_subscriptions(tenant: Tenant) -> ApiResult<Json<SubscriptionList>> {
    let data = tenant.webhooks().list().await?;
    Ok(Json(SubscriptionList { data }))
}

/// Subscribes a URL to the organization's changes from now on, and returns its signing secret
/// (shown this once).
///
/// Each change is posted as JSON `{"type": "contact.updated", "timestamp": …, "data": <the
/// change as GET /changes lists it>}` with the Standard Webhooks headers `webhook-id` (the
/// change's id: the same on every attempt, de-duplicate on it), `webhook-timestamp` and
/// `webhook-signature`. Delivery is at least once; a record's changes arrive in order; a
/// failing endpoint is retried with backoff for 24 hours; `410 Gone` or 24 hours without a
/// success disables the subscription, with the reason, and its changes wait for it. URLs must
/// be `https` to a public address unless the operator allows otherwise.
#[utoipa::path(post, path = "/webhook-subscriptions", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    request_body = NewWebhookSubscription, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created, with its secret", body = SubscriptionWithSecret),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_subscriptions`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A URL the policy refuses (not https, a private address…) or an unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_subscription(
    tenant: Tenant,
    Json(new): Json<NewWebhookSubscription>,
) -> ApiResult<(StatusCode, Json<SubscriptionWithSecret>)> {
    let made = tenant.webhooks().create(new).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

/// One subscription: whether it is active, and why the worker disabled it if it did.
#[utoipa::path(get, path = "/webhook-subscriptions/{id}", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The subscription", body = WebhookSubscription),
        (status = 404, description = "No such subscription in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_subscription(
    tenant: Tenant,
    Path(id): Path<WebhookSubscriptionId>,
) -> ApiResult<Json<WebhookSubscription>> {
    Ok(Json(tenant.webhooks().get(id).await?))
}

/// Changes a subscription's URL, description or event types, or pauses (`active: false`) and
/// resumes it (`active: true`, which also re-enables one the worker disabled: the changes that
/// waited are sent).
#[utoipa::path(patch, path = "/webhook-subscriptions/{id}", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id")),
    request_body = WebhookSubscriptionPatch, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Changed", body = WebhookSubscription),
        (status = 404, description = "No such subscription in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A URL the policy refuses or an unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_subscription(
    tenant: Tenant,
    Path(id): Path<WebhookSubscriptionId>,
    Json(patch): Json<WebhookSubscriptionPatch>,
) -> ApiResult<Json<WebhookSubscription>> {
    Ok(Json(tenant.webhooks().update(id, patch).await?))
}

/// Deletes a subscription and its delivery log.
#[utoipa::path(delete, path = "/webhook-subscriptions/{id}", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_subscription(
    tenant: Tenant,
    Path(id): Path<WebhookSubscriptionId>,
) -> ApiResult<StatusCode> {
    tenant.webhooks().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Options of a secret rotation (`{}` for the defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSecretRequest {
    /// How long the old secret keeps signing too, in seconds (0 to 604800; default 86400).
    #[serde(default)]
    overlap_seconds: Option<i64>,
}

/// Replaces the signing secret and returns the new one (shown this once). During the overlap
/// each delivery carries both signatures, so receivers switch secrets without refusing any.
#[utoipa::path(post, path = "/webhook-subscriptions/{id}/rotate-secret", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id")),
    request_body = RotateSecretRequest, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The new secret", body = SubscriptionWithSecret),
        (status = 404, description = "No such subscription in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An overlap out of range", body = Problem, content_type = "application/problem+json"),
    ))]
async fn rotate_secret(
    tenant: Tenant,
    Path(id): Path<WebhookSubscriptionId>,
    Json(req): Json<RotateSecretRequest>,
) -> ApiResult<Json<SubscriptionWithSecret>> {
    let overlap = req
        .overlap_seconds
        .map(|s| TimeDelta::try_seconds(s).unwrap_or(TimeDelta::MAX));
    let rotated = tenant.webhooks().rotate_secret(id, overlap).await?;
    Ok(Json(rotated.into()))
}

/// `?status=`, `?after=` and `?limit=` of the delivery log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveriesParams {
    /// Only deliveries in this state.
    #[serde(default)]
    status: Option<DeliveryStatus>,
    /// A page's `next_cursor`.
    #[serde(default)]
    after: Option<String>,
    /// Deliveries per page, 1–1000 (default 100).
    #[serde(default)]
    limit: Option<u32>,
}

/// The subscription's delivery log, newest first: each change sent, its status, attempts, the
/// last HTTP status and error.
#[utoipa::path(get, path = "/webhook-subscriptions/{id}/deliveries", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id"), DeliveriesParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The deliveries, newest first", body = Page<WebhookDelivery>),
        (status = 404, description = "No such subscription in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_deliveries(
    tenant: Tenant,
    Path(id): Path<WebhookSubscriptionId>,
    Query(p): Query<DeliveriesParams>,
) -> ApiResult<Json<Page<WebhookDelivery>>> {
    let (after, limit) = (p.after.as_deref(), p.limit.unwrap_or(100));
    let webhooks = tenant.webhooks();
    Ok(Json(webhooks.deliveries(id, p.status, after, limit).await?))
}

/// Sends one delivery again, whatever its status, with the same `webhook-id` and a new retry
/// window.
#[utoipa::path(post, path = "/webhook-subscriptions/{id}/deliveries/{delivery_id}/redeliver", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id"), ("delivery_id" = Uuid, Path, description = "Delivery id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued to be sent again", body = WebhookDelivery),
        (status = 404, description = "No such delivery of this subscription in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn redeliver(
    tenant: Tenant,
    Path((id, delivery)): Path<(WebhookSubscriptionId, WebhookDeliveryId)>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    let d = tenant.webhooks().redeliver(id, delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// Where a replay starts: exactly one of `since` and `after`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    /// Every change committed at or after this time (years 1 to 9999).
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    /// Every change after this change-feed cursor (a delivered change's `data.cursor`).
    #[serde(default)]
    after: Option<String>,
}

/// Where the subscription reads the feed from now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayStarted {
    /// The feed cursor after which changes are sent again.
    cursor: String,
}

/// Sends again every change since a point that the subscription's event types select, with
/// their original `webhook-id`s (changes from before the subscription existed too). The worker
/// sends them in the background, each record's in order.
#[utoipa::path(post, path = "/webhook-subscriptions/{id}/replay", tag = tags::WEBHOOK_SUBSCRIPTIONS,
    params(("id" = Uuid, Path, description = "Subscription id")),
    request_body = ReplayRequest, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "The replay is under way", body = ReplayStarted),
        (status = 404, description = "No such subscription in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`cursor_expired`: the feed no longer holds changes that old", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of `since` and `after`, a `since` outside the years 1 to 9999 (`out_of_range`), or a cursor the feed did not return", body = Problem, content_type = "application/problem+json"),
    ))]
async fn replay(
    tenant: Tenant,
    Path(id): Path<WebhookSubscriptionId>,
    Json(req): Json<ReplayRequest>,
) -> ApiResult<(StatusCode, Json<ReplayStarted>)> {
    let from = match (req.since, req.after) {
        (Some(t), None) => ReplayFrom::Time(t),
        (None, Some(c)) => ReplayFrom::Cursor(c),
        _ => {
            return Err(crm_core::Error::invalid(
                "since",
                "one_of",
                "give exactly one of `since` (a time) and `after` (a feed cursor)",
            )
            .into());
        }
    };
    let cursor = tenant.webhooks().replay(id, from).await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayStarted { cursor })))
}
