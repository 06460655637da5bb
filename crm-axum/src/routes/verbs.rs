//! The entity verbs: `POST /{entity}/{id}/{verb}` for lead conversion, opportunity close,
//! invoice send/pay/void, activity complete/reopen and the erasure of contacts and leads. Each is one call of crm-core, which
//! owns the rules (what may move where, who may do it); the answer is the record changed.

use axum::response::Response;
use crm_core::{Activity, Id, Invoice, Opportunity, OpportunityStatus, Record};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::records::record_ok;
use crate::state::ApiState;

/// The verb routes with their OpenAPI description. The answers common to every route (401,
/// 403, 404, 400, 415, 422, 500) are added by [`crate::openapi::finish`].
pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(convert))
        .routes(routes!(close))
        .routes(routes!(send))
        .routes(routes!(pay))
        .routes(routes!(void))
        .routes(routes!(erase_contact))
        .routes(routes!(erase_lead))
        .routes(routes!(complete))
        .routes(routes!(reopen))
}

/// Converts a lead in one transaction; answers the lead and the records made or linked.
#[utoipa::path(post, path = "/leads/{id}/convert", tag = "leads", summary = "Convert a lead into an account, a contact and optionally an opportunity", request_body = crm_core::ConvertLead,
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = crm_core::Conversion),
        (status = 409, description = "The lead is already converted, or unqualified", body = Problem, content_type = "application/problem+json"),
    ))]
async fn convert(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<crm_core::ConvertLead>,
) -> ApiResult<Json<crm_core::Conversion>> {
    Ok(Json(tenant.leads().convert(Id::from_uuid(id), req).await?))
}

/// Whether the opportunity was won or lost.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Moves it to its pipeline's won stage.
    Won,
    /// Moves it to its pipeline's lost stage.
    Lost,
}

/// How an opportunity closed: the body of `POST /opportunities/{id}/close`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseOpportunity {
    /// Won or lost.
    outcome: Outcome,
    /// Why it was lost (only with `lost`; up to 1,000 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// The record a verb acts on (for the document; handlers read it with `Path<Uuid>`).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct RecordPath {
    /// The record's id.
    id: Uuid,
}

/// Closes an opportunity as won, or as lost with an optional reason.
#[utoipa::path(post, path = "/opportunities/{id}/close", tag = "opportunities", summary = "Close an opportunity as won or lost", request_body = CloseOpportunity,
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = Record<Opportunity>),
        (status = 409, description = "The opportunity is already closed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn close(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<CloseOpportunity>,
) -> ApiResult<Response> {
    let opportunities = tenant.opportunities();
    let id = Id::from_uuid(id);
    record_ok(match (req.outcome, req.reason) {
        (Outcome::Won, None) => opportunities.close_won(id).await,
        (Outcome::Won, Some(_)) => Err(crm_core::Error::invalid(
            "reason",
            "not_allowed",
            format!(
                "only a {} opportunity has a reason",
                OpportunityStatus::Lost
            ),
        )),
        (Outcome::Lost, reason) => opportunities.close_lost(id, reason).await,
    })
}

/// Sends a draft invoice.
#[utoipa::path(post, path = "/invoices/{id}/send", tag = "invoices", summary = "Send a draft invoice (it becomes read-only)",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = Record<Invoice>),
        (status = 409, description = "The invoice is not a draft", body = Problem, content_type = "application/problem+json"),
    ))]
async fn send(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.invoices().send(Id::from_uuid(id)).await)
}

/// Marks an invoice paid.
#[utoipa::path(post, path = "/invoices/{id}/pay", tag = "invoices", summary = "Mark a sent invoice paid (company admins)",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = Record<Invoice>),
        (status = 409, description = "The invoice is not sent or overdue", body = Problem, content_type = "application/problem+json"),
    ))]
async fn pay(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.invoices().mark_paid(Id::from_uuid(id)).await)
}

/// Voids an invoice.
#[utoipa::path(post, path = "/invoices/{id}/void", tag = "invoices", summary = "Void an unpaid invoice (company admins)",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = Record<Invoice>),
        (status = 409, description = "The invoice is paid or already void", body = Problem, content_type = "application/problem+json"),
    ))]
async fn void(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.invoices().void(Id::from_uuid(id)).await)
}

/// Erases a contact for good.
#[utoipa::path(post, path = "/contacts/{id}/erase", tag = "contacts", summary = "Erase a contact for good (GDPR; company admins)",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = crm_core::Erasure),
        (status = 409, description = "A record that cannot lose its link still points at it (`still_required`), or a linked record still holds the person's name (`personal_data_elsewhere`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn erase_contact(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Json<crm_core::Erasure>> {
    Ok(Json(tenant.contacts().erase(Id::from_uuid(id)).await?))
}

/// Erases a lead for good.
#[utoipa::path(post, path = "/leads/{id}/erase", tag = "leads", summary = "Erase a lead for good (GDPR; company admins)",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = crm_core::Erasure),
        (status = 409, description = "A record that cannot lose its link still points at it (`still_required`), or a linked record still holds the person's name (`personal_data_elsewhere`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn erase_lead(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Json<crm_core::Erasure>> {
    Ok(Json(tenant.leads().erase(Id::from_uuid(id)).await?))
}

/// Completes a task.
#[utoipa::path(post, path = "/activities/{id}/complete", tag = "activities", summary = "Complete a task",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = Record<Activity>),
        (status = 409, description = "The activity is not an open task", body = Problem, content_type = "application/problem+json"),
    ))]
async fn complete(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.activities().complete(Id::from_uuid(id)).await)
}

/// Reopens a completed task.
#[utoipa::path(post, path = "/activities/{id}/reopen", tag = "activities", summary = "Reopen a completed task",
    params(RecordPath), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Done", body = Record<Activity>),
        (status = 409, description = "The activity is not a completed task", body = Problem, content_type = "application/problem+json"),
    ))]
async fn reopen(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.activities().reopen(Id::from_uuid(id)).await)
}
