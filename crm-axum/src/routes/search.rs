//! `search`: full-text search across the searchable kinds (accounts, contacts, leads,
//! opportunities), best match first.

use crm_core::{EntityKind, Page, SearchHit, SearchQuery};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tenant;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// `?q=`, `?kinds=`, `?limit=` and `?cursor=` of a search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// The words to find (at most 200 characters, 16 words): letters and digits, each matched
    /// as the start of a word of the record, every one required (`ada lov`).
    q: String,
    /// Comma-separated kinds to search, as hits name them (`contact,lead`); every searchable
    /// kind (account, contact, lead, opportunity) when absent.
    #[serde(default)]
    kinds: Option<String>,
    /// Hits per page, 1–100 (default 20).
    #[serde(default)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// Parses `?kinds=` (comma-separated singular names); `None` for an unknown one.
pub(crate) fn parse_kinds(kinds: &str) -> Option<Vec<EntityKind>> {
    kinds
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.parse().ok())
        .collect()
}

/// Finds the organization's records that have every word of `q` as the start of one of their
/// words (names, emails and their parts, phone numbers, companies, titles, descriptions…),
/// best match first, the trash left out. A write is found at once. Keyset-paged with no cap:
/// follow `next_cursor`. API keys need `<entity>:read` of every kind searched (name them in
/// `kinds`).
#[utoipa::path(get, path = "/search", tag = tags::SEARCH, params(SearchParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The best hits first", body = Page<SearchHit>),
        (status = 403, description = "An API key without the read scope of a kind searched", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query without words or too long, an unknown or unsearchable kind, a limit out of range, a foreign cursor", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
async fn search(tenant: Tenant, Query(p): Query<SearchParams>) -> ApiResult<Json<Page<SearchHit>>> {
    let kinds = match p.kinds.as_deref() {
        None => Vec::new(),
        Some(kinds) => parse_kinds(kinds).ok_or_else(|| {
            crm_core::Error::invalid(
                "kinds",
                "unknown_kind",
                "lists kinds by their singular names: account, contact, lead, opportunity",
            )
        })?,
    };
    let query = SearchQuery {
        q: p.q,
        kinds,
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(tenant.search(&query).await?))
}
