//! `webhooks/forms`: a web form posts here with an API key and becomes a lead with source
//! `web_form`.

use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use crm_core::{Actor, Lead, NewLead, Record};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::limits::limit_key;
use crate::auth::{Tenant, forbidden};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{self, read_body};
use crate::idempotency;
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(form))
}

/// Form field names accepted for each lead field (lowercase; `-` and ` ` read as `_`).
const MAPPING: &[(&str, &[&str])] = &[
    (
        "first_name",
        &["first_name", "firstname", "given_name", "fname"],
    ),
    (
        "last_name",
        &["last_name", "lastname", "family_name", "surname", "lname"],
    ),
    ("email", &["email", "e_mail", "email_address"]),
    // Leads have one phone number: a mobile number is taken when no phone comes first.
    (
        "phone",
        &[
            "phone",
            "telephone",
            "tel",
            "phone_number",
            "mobile",
            "mobile_phone",
            "cell",
        ],
    ),
    (
        "company",
        &["company", "company_name", "organization", "organisation"],
    ),
    ("title", &["title", "job_title", "position"]),
];

/// The body of a form post: JSON or `application/x-www-form-urlencoded`, as flat strings.
struct FormFields(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = extract::is_json(req.headers());
        let form = extract::media_type(req.headers()).as_deref()
            == Some("application/x-www-form-urlencoded");
        if !json && !form {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req, state).await?;
        let fields = if json {
            let map: Map<String, Value> = extract::parse(&bytes)?;
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        } else {
            serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("malformed form body: {e}")))?
        };
        Ok(FormFields(fields))
    }
}

/// Maps form fields to a lead; a single `name` is split into first and last name.
/// Returns the lead input and the names of the fields that were not used.
fn map_fields(fields: &[(String, String)]) -> (Map<String, Value>, Vec<String>) {
    let mut out = Map::new();
    let mut ignored = Vec::new();
    for (k, v) in fields {
        let norm = k.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let v = v.trim();
        if let Some((target, _)) = MAPPING
            .iter()
            .find(|(_, names)| names.contains(&norm.as_str()))
        {
            if !v.is_empty() {
                out.entry(*target)
                    .or_insert_with(|| Value::String(v.to_owned()));
            }
        } else if norm == "name" || norm == "full_name" {
            let mut parts = v.rsplitn(2, ' ');
            let last = parts.next().unwrap_or_default();
            match parts.next() {
                Some(first) => {
                    out.entry("first_name").or_insert(first.trim().into());
                    out.entry("last_name").or_insert(last.into());
                }
                None if !last.is_empty() => {
                    out.entry("last_name").or_insert(last.into());
                }
                None => {}
            }
        } else {
            ignored.push(k.clone());
        }
    }
    (out, ignored)
}

/// What a form post made: the lead and the form fields not used.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FormLead {
    /// The lead created (source `web_form`).
    data: Record<Lead>,
    /// Names of the posted fields that map to no lead field, as posted.
    ignored_fields: Vec<String>,
}

/// Receives a web form post (API key only) and creates a lead (source `web_form`) from it.
///
/// The key (scope `forms` or `all`) comes as `Authorization: Bearer <key>` or as
/// `X-API-Key: <key>`.
///
/// Fields are mapped by name (`first_name`/`firstname`, `last_name`/`surname`, `name`,
/// `email`, `phone`/`mobile`, `company`, `title`…); others are listed in `ignored_fields`. Honours
/// `Idempotency-Key`; rate limited per key.
#[utoipa::path(post, path = "/webhooks/forms", tag = tags::WEBHOOKS, security(("api_key" = []), ("api_key_header" = [])),
    request_body(content(
        (Object = "application/json"),
        (Object = "application/x-www-form-urlencoded"),
    )),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the post safe to retry")),
    responses(
        (status = 201, description = "The lead created (`data`) and the fields not used (`ignored_fields`)", body = FormLead),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an API key, or a key without the `forms` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing usable in the form", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many posts with this key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn form(
    State(state): State<ApiState>,
    tenant: Tenant,
    headers: HeaderMap,
    FormFields(fields): FormFields,
) -> ApiResult<Response> {
    let Actor::ApiKey(key_id) = tenant.context().actor() else {
        return Err(forbidden("api_key_only", "web forms post with an API key"));
    };
    let limiter = &state.auth.webhook_posts;
    let key = limit_key(&[b"webhook", key_id.as_bytes()]);
    limiter.spend(key).await?;
    // The fingerprint is over the normalized fields, whatever the content type.
    let canonical = serde_json::to_vec(&fields).unwrap_or_default();
    let path = "/api/v1/webhooks/forms";
    Ok(
        idempotency::run(&state, &tenant, &headers, path, &canonical, async |t| {
            let (input, ignored) = map_fields(&fields);
            let new: NewLead = extract::from_value(Value::Object(input))?;
            let lead = t.leads().create_from_web_form(new).await?;
            let body = FormLead {
                data: lead,
                ignored_fields: ignored,
            };
            Ok(axum::response::IntoResponse::into_response((
                axum::http::StatusCode::CREATED,
                axum::Json(body),
            )))
        })
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_map_to_lead_fields() {
        let f = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let (m, ignored) = map_fields(&[
            f("Name", "Ada King Lovelace"),
            f("E-Mail", "ada@example.com"),
            f("utm_source", "x"),
        ]);
        assert_eq!(m["first_name"], "Ada King");
        assert_eq!(m["last_name"], "Lovelace");
        assert_eq!(m["email"], "ada@example.com");
        assert_eq!(ignored, vec!["utm_source".to_owned()]);
    }
}
