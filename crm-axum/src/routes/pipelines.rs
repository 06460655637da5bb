//! `pipelines`: the organization's sales processes and their stages.

use axum::http::StatusCode;
use crm_core::{NewPipeline, Page, Pipeline, PipelineId, PipelineSummary};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines, create_pipeline))
        .routes(routes!(get_pipeline))
        .routes(routes!(pipeline_summary))
}

/// Lists the pipelines with their stages, the default first.
#[utoipa::path(get, path = "/pipelines", tag = tags::PIPELINES, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every pipeline (not paged)", body = Page<Pipeline>),
    ))]
async fn list_pipelines(tenant: Tenant) -> ApiResult<Json<Page<Pipeline>>> {
    Ok(Json(Page {
        data: tenant.pipelines().list().await?,
        next_cursor: None,
    }))
}

/// Creates a pipeline with its stages (company admins).
#[utoipa::path(post, path = "/pipelines", tag = tags::PIPELINES, request_body = NewPipeline,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Pipeline),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_pipeline(
    tenant: Tenant,
    Json(new): Json<NewPipeline>,
) -> ApiResult<(StatusCode, Json<Pipeline>)> {
    let pipeline = tenant.pipelines().create(new).await?;
    Ok((StatusCode::CREATED, Json(pipeline)))
}

/// Reads one pipeline with its stages.
#[utoipa::path(get, path = "/pipelines/{id}", tag = tags::PIPELINES,
    params(("id" = Uuid, Path, description = "Pipeline id")), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The pipeline", body = Pipeline),
        (status = 404, description = "No such pipeline in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_pipeline(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Json<Pipeline>> {
    Ok(Json(
        tenant.pipelines().get(PipelineId::from_uuid(id)).await?,
    ))
}

/// Count and amount of live opportunities per stage of a pipeline.
#[utoipa::path(get, path = "/pipelines/{id}/summary", tag = tags::PIPELINES,
    params(("id" = Uuid, Path, description = "Pipeline id")), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One entry per stage, in order", body = PipelineSummary),
        (status = 404, description = "No such pipeline in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn pipeline_summary(
    tenant: Tenant,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PipelineSummary>> {
    Ok(Json(
        tenant
            .pipelines()
            .summary(PipelineId::from_uuid(id))
            .await?,
    ))
}
