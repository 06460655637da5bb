//! Which [`ApiKeyScope`]s a request of the API needs: the auth layer refuses an API key whose
//! scopes do not grant them all (403 `out_of_scope`).
//!
//! - `POST webhooks/forms`: `forms`.
//! - `GET changes` (and `changes/head`): `changes`.
//! - `GET search`: `{entity}:read` of each kind its `kinds` names (of every searchable kind
//!   when absent).
//! - The record routes of every entity of the registry (`{entity}`, `{entity}/{id}`…): reads
//!   (`GET`, and `POST {entity}/search`) need `{entity}:read`; everything else (create, batch,
//!   patch, delete, restore, the entity's verbs) needs `{entity}:write`. A timeline also shows
//!   activities, so it needs `activities:read` too; converting a lead writes the account,
//!   contact and opportunity it makes, so it needs their `write` too.
//! - Every other route (`me`, users, API keys, pipelines, custom fields…), and a host's own
//!   routes behind [`super::AuthLayer`]: only `all`.

use axum::http::Method;
use crm_core::EntityKind;
use crm_core::auth::ApiKeyScope;

/// The scopes a request needs, all of them; `None` when only [`ApiKeyScope::All`] will do.
/// `api` says whether `path` is a route of the API (relative to `/api/v1`, or under it).
/// `query` is the request's query string (`kinds` of a search names what it reads).
pub(crate) fn needed(
    method: &Method,
    path: &str,
    query: Option<&str>,
    api: bool,
) -> Option<Vec<ApiKeyScope>> {
    if !api {
        return None;
    }
    let path = path.strip_prefix(crate::API_PREFIX).unwrap_or(path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if is_forms(method, path) {
        return Some(vec![ApiKeyScope::Forms]);
    }
    if segments.first() == Some(&"changes") && *method == Method::GET {
        return Some(vec![ApiKeyScope::Changes]);
    }
    if segments == ["search"] && *method == Method::GET {
        return searched(query);
    }
    let kind = EntityKind::from_table(segments.first()?)?;
    let reading = *method == Method::GET || *method == Method::HEAD;
    let scopes = match (segments.as_slice(), reading) {
        ([_, _, "timeline"], true) => vec![
            ApiKeyScope::Read(kind),
            ApiKeyScope::Read(EntityKind::Activity),
        ],
        (_, true) => vec![ApiKeyScope::Read(kind)],
        ([_, "search"], false) if *method == Method::POST => vec![ApiKeyScope::Read(kind)],
        ([_, _, "convert"], false) if kind == EntityKind::Lead => vec![
            ApiKeyScope::Write(kind),
            ApiKeyScope::Write(EntityKind::Account),
            ApiKeyScope::Write(EntityKind::Contact),
            ApiKeyScope::Write(EntityKind::Opportunity),
        ],
        (_, false) => vec![ApiKeyScope::Write(kind)],
    };
    Some(scopes)
}

/// The read scopes of the kinds a search (`GET search`) names in `kinds` (each searchable kind
/// when absent); `None` (only `all`) when `kinds` names something else: the search refuses it.
fn searched(query: Option<&str>) -> Option<Vec<ApiKeyScope>> {
    let named = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("kinds="))
        .next_back();
    let kinds = match named {
        Some(kinds) => crate::routes::search::parse_kinds(&kinds.replace("%2C", ","))?,
        None => Vec::new(),
    };
    let kinds = if kinds.is_empty() {
        EntityKind::ALL
            .iter()
            .copied()
            .filter(|k| k.searchable())
            .collect()
    } else {
        kinds
    };
    Some(kinds.into_iter().map(ApiKeyScope::Read).collect())
}

/// Whether the request is the web-form post (which also takes its key as `X-API-Key`).
pub(crate) fn is_forms(method: &Method, path: &str) -> bool {
    let path = path.strip_prefix(crate::API_PREFIX).unwrap_or(path);
    *method == Method::POST && path.trim_end_matches('/') == "/webhooks/forms"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_their_entity_scopes() {
        let read = |k| Some(vec![ApiKeyScope::Read(k)]);
        let write = |k| Some(vec![ApiKeyScope::Write(k)]);
        assert_eq!(
            needed(&Method::POST, "/webhooks/forms", None, true),
            Some(vec![ApiKeyScope::Forms])
        );
        assert_eq!(
            needed(&Method::GET, "/api/v1/accounts/x", None, true),
            read(EntityKind::Account)
        );
        assert_eq!(
            needed(&Method::POST, "/leads/search", None, true),
            read(EntityKind::Lead)
        );
        assert_eq!(
            needed(&Method::POST, "/invoices/x/void", None, true),
            write(EntityKind::Invoice)
        );
        assert_eq!(
            needed(&Method::DELETE, "/contacts/x", None, true),
            write(EntityKind::Contact)
        );
        assert_eq!(
            needed(&Method::POST, "/leads/x/convert", None, true).map(|n| n.len()),
            Some(4)
        );
        assert_eq!(
            needed(&Method::GET, "/accounts/x/timeline", None, true),
            Some(vec![
                ApiKeyScope::Read(EntityKind::Account),
                ApiKeyScope::Read(EntityKind::Activity)
            ])
        );
        assert_eq!(
            needed(
                &Method::GET,
                "/search",
                Some("q=ada&kinds=contact%2Clead"),
                true
            ),
            Some(vec![
                ApiKeyScope::Read(EntityKind::Contact),
                ApiKeyScope::Read(EntityKind::Lead)
            ])
        );
        assert_eq!(
            needed(&Method::GET, "/search", Some("q=ada"), true).map(|n| n.len()),
            Some(4)
        );
        assert_eq!(
            needed(&Method::GET, "/search", Some("q=ada&kinds=nope"), true),
            None
        );
        assert_eq!(needed(&Method::GET, "/users", None, true), None);
        assert_eq!(needed(&Method::GET, "/accounts", None, false), None);
    }
}
