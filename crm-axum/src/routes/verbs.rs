//! The entity verbs: `POST /{entity}/{id}/{verb}` for lead conversion, opportunity close,
//! invoice send/pay/void, activity complete/reopen and the erasure of contacts and leads. Each is one call of crm-core, which
//! owns the rules (what may move where, who may do it); the answer is the record changed.

use axum::response::Response;
use axum::routing::post;
use crm_core::{Id, OpportunityStatus};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::openapi::{self, Verb};
use crate::routes::records::record_ok;
use crate::state::ApiState;

/// The verbs, described once for the routes and the OpenAPI document.
const VERBS: &[Verb] = &[
    Verb {
        plural: "leads",
        verb: "convert",
        summary: "Convert a lead into an account, a contact and optionally an opportunity",
        request: Some("ConvertLead"),
        response: "Conversion",
        conflict: "The lead is already converted",
    },
    Verb {
        plural: "opportunities",
        verb: "close",
        summary: "Close an opportunity as won or lost",
        request: Some("CloseOpportunity"),
        response: "Opportunity",
        conflict: "The opportunity is already closed",
    },
    Verb {
        plural: "invoices",
        verb: "send",
        summary: "Send a draft invoice (it becomes read-only)",
        request: None,
        response: "Invoice",
        conflict: "The invoice is not a draft",
    },
    Verb {
        plural: "invoices",
        verb: "pay",
        summary: "Mark a sent invoice paid",
        request: None,
        response: "Invoice",
        conflict: "The invoice is not sent or overdue",
    },
    Verb {
        plural: "invoices",
        verb: "void",
        summary: "Void an unpaid invoice",
        request: None,
        response: "Invoice",
        conflict: "The invoice is paid or already void",
    },
    Verb {
        plural: "contacts",
        verb: "erase",
        summary: "Erase a contact for good (GDPR): unlinks what points at it, removes its activities, blanks the event log about it, leaves a tombstone (company admins)",
        request: None,
        response: "Erasure",
        conflict: "Never",
    },
    Verb {
        plural: "leads",
        verb: "erase",
        summary: "Erase a lead for good (GDPR): removes its activities, blanks the event log about it, leaves a tombstone (company admins)",
        request: None,
        response: "Erasure",
        conflict: "Never",
    },
    Verb {
        plural: "activities",
        verb: "complete",
        summary: "Complete a task",
        request: None,
        response: "Activity",
        conflict: "The activity is not an open task",
    },
    Verb {
        plural: "activities",
        verb: "reopen",
        summary: "Reopen a completed task",
        request: None,
        response: "Activity",
        conflict: "The activity is not a completed task",
    },
];

/// The verb routes with their OpenAPI description.
pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    let mut r = OpenApiRouter::new()
        .route("/leads/{id}/convert", post(convert))
        .route("/opportunities/{id}/close", post(close))
        .route("/invoices/{id}/send", post(send))
        .route("/invoices/{id}/pay", post(pay))
        .route("/invoices/{id}/void", post(void))
        .route("/contacts/{id}/erase", post(erase_contact))
        .route("/leads/{id}/erase", post(erase_lead))
        .route("/activities/{id}/complete", post(complete))
        .route("/activities/{id}/reopen", post(reopen));
    for v in VERBS {
        openapi::describe_verb(r.get_openapi_mut(), v);
    }
    r
}

/// Converts a lead in one transaction; answers the lead and the records made or linked.
async fn convert(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<crm_core::ConvertLead>,
) -> ApiResult<Json<crm_core::Conversion>> {
    Ok(Json(tenant.leads().convert(Id::from_uuid(id), req).await?))
}

/// Won or lost.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Won,
    Lost,
}

/// The body of `POST /opportunities/{id}/close`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRequest {
    outcome: Outcome,
    #[serde(default)]
    reason: Option<String>,
}

/// Closes an opportunity as won, or as lost with an optional reason.
async fn close(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<CloseRequest>,
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
async fn send(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.invoices().send(Id::from_uuid(id)).await)
}

/// Marks an invoice paid.
async fn pay(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.invoices().mark_paid(Id::from_uuid(id)).await)
}

/// Voids an invoice.
async fn void(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.invoices().void(Id::from_uuid(id)).await)
}

/// Erases a contact for good.
async fn erase_contact(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Json<crm_core::Erasure>> {
    Ok(Json(tenant.contacts().erase(Id::from_uuid(id)).await?))
}

/// Erases a lead for good.
async fn erase_lead(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Json<crm_core::Erasure>> {
    Ok(Json(tenant.leads().erase(Id::from_uuid(id)).await?))
}

/// Completes a task.
async fn complete(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.activities().complete(Id::from_uuid(id)).await)
}

/// Reopens a completed task.
async fn reopen(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.activities().reopen(Id::from_uuid(id)).await)
}
