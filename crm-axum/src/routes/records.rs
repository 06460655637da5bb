//! The REST resource of any entity, written once: list, search, create (idempotent), batch,
//! get, patch, delete (soft or permanent), restore. Every entity of crm-core's registry gets
//! them (`crate::router` visits each `EntityKind`); nothing here names an entity.

use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crm_core::record::Kind;
use crm_core::{
    Deleted, Direction, Entity, FieldError, Filter, Id, ListQuery, Op, Record, Sort, TimelineItem,
};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, relocate};
use crate::extract::{self, Json, JsonBody, Path, RecordsJson};
use crate::idempotency;
use crate::state::ApiState;

/// Most items in one batch request.
pub const MAX_BATCH: usize = 100;

/// Columns every record has and no client may set.
pub(crate) use crm_core::record::COMMON_FIELDS as SERVER_OWNED;

/// What an entity needs to be served: its inputs must deserialize, and it and its inputs
/// describe themselves (crm-core's feature `openapi` derives that for every entity).
pub trait Resource:
    Entity<New: DeserializeOwned + ToSchema, Patch: DeserializeOwned + ToSchema> + ToSchema
{
}
impl<E> Resource for E where
    E: Entity<New: DeserializeOwned + ToSchema, Patch: DeserializeOwned + ToSchema> + ToSchema
{
}

/// The routes of entity `E` under `/{its table}` (`crate::openapi::describe_entity` documents
/// them).
pub(crate) fn routes<E: Resource>() -> OpenApiRouter<ApiState> {
    let plural = E::TABLE;
    let mut r = OpenApiRouter::new()
        .route(&format!("/{plural}"), get(list::<E>).post(create::<E>))
        .route(&format!("/{plural}/search"), post(search::<E>))
        .route(&format!("/{plural}/batch"), post(batch::<E>))
        .route(
            &format!("/{plural}/{{id}}"),
            get(read::<E>).patch(update::<E>).delete(delete::<E>),
        )
        .route(&format!("/{plural}/{{id}}/restore"), post(restore::<E>))
        .route(&format!("/{plural}/{{id}}/merge"), post(merge::<E>))
        .route(&format!("/{plural}/{{id}}/history"), get(history::<E>));
    // Activities have no timeline of their own: they are what timelines show.
    if E::KIND.has_timeline() {
        r = r.route(&format!("/{plural}/{{id}}/timeline"), get(timeline::<E>));
    }
    r
}

/// A record answered with status 200 and its `ETag`: the answer of the entity verbs.
pub(crate) fn record_ok<E: Entity>(record: crm_core::Result<Record<E>>) -> ApiResult<Response> {
    record_response(StatusCode::OK, &record?)
}

/// A record as answered: JSON with its version as `ETag`.
fn record_response<E: Entity>(status: StatusCode, record: &Record<E>) -> ApiResult<Response> {
    let mut res = (status, RecordsJson(record)).into_response();
    res.headers_mut().insert(ETAG, etag(record.version));
    Ok(res)
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The version named by `If-Match` (`"3"`, `W/"3"`); `None` when absent or `*`.
///
/// A well-formed entity tag that is no version of this API (`"nope"`) matches no
/// representation: the write is refused with 412, as RFC 9110 §13.1.1 asks, through the same
/// version check as a stale tag. Only a value that is no entity tag at all is a 400.
pub(crate) fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    /// A version no record ever has (versions start at 1).
    const MATCHES_NOTHING: i64 = -1;
    let Some(v) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or_default().trim();
    if s == "*" {
        return Ok(None);
    }
    let tag = s.strip_prefix("W/").unwrap_or(s);
    let opaque = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|o| !o.contains('"'))
        .ok_or_else(|| {
            ApiError::BadRequest("If-Match must be an ETag of this API, e.g. \"3\"".into())
        })?;
    Ok(Some(opaque.parse().unwrap_or(MATCHES_NOTHING)))
}

/// Whether a client may never assign field `name` of `E`: the common server-owned columns and
/// the entity's read-only ones (statuses, numbers, totals, conversion links), which only the
/// library and the entity verbs write.
pub(crate) fn server_owned<E: Entity>(name: &str) -> bool {
    SERVER_OWNED.contains(&name) || E::COLUMNS.iter().any(|c| c.readonly && c.name == name)
}

/// Checks the keys of a create or patch body: server-owned fields and unknown fields are
/// reported all at once, one field error each.
pub(crate) fn check_fields<E: Entity>(body: &Map<String, Value>) -> ApiResult<()> {
    let errors: Vec<FieldError> = body
        .keys()
        .filter_map(|k| {
            if server_owned::<E>(k) {
                Some(FieldError::new(k, "read_only", "is set by the server"))
            } else if k != "custom_fields" && !E::COLUMNS.iter().any(|c| c.name == k) {
                Some(FieldError::new(
                    k,
                    "unknown_field",
                    "is not a field of this resource",
                ))
            } else {
                None
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(crm_core::Error::Validation(errors).into())
    }
}

/// A JSON object body checked against `E`'s fields, then deserialized as `T`.
pub(crate) fn input<E: Entity, T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    let Value::Object(map) = value else {
        return Err(
            crm_core::Error::invalid("body", "invalid_type", "must be a JSON object").into(),
        );
    };
    check_fields::<E>(&map)?;
    extract::from_value(Value::Object(map))
}

/// Query parameters of a list: `limit`, `cursor`, `sort` (`name` or `-name`),
/// `include_deleted` (`true`, `false` or `only`) and filters `filter[field][op]=value`
/// (`filter[field]=value` means `eq`; `in` takes comma-separated values).
pub(crate) fn list_query<E: Entity>(raw: Option<&str>) -> ApiResult<ListQuery> {
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(raw.unwrap_or_default())?;
    let mut q = ListQuery::default();
    let bad = |field: &str, msg: &str| -> ApiError {
        crm_core::Error::invalid(field.to_owned(), "invalid_value", msg.to_owned()).into()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => q.limit = Some(v.parse().map_err(|_| bad("limit", "must be 1-100"))?),
            "cursor" => q.cursor = Some(v),
            "sort" => {
                let (field, direction) = match v.strip_prefix('-') {
                    Some(f) => (f, Direction::Desc),
                    None => (v.as_str(), Direction::Asc),
                };
                q.sort = Some(Sort {
                    field: field.to_owned(),
                    direction,
                });
            }
            "include_deleted" => {
                q.deleted = match v.as_str() {
                    "true" => Deleted::Include,
                    "false" => Deleted::Exclude,
                    "only" => Deleted::Only,
                    _ => return Err(bad("include_deleted", "must be true, false or only")),
                }
            }
            _ => {
                let Some(spec) = k.strip_prefix("filter[").and_then(|s| s.strip_suffix(']')) else {
                    return Err(crm_core::Error::invalid(
                        k,
                        "unknown_parameter",
                        "is not a parameter of this list",
                    )
                    .into());
                };
                let (field, op) = match spec.split_once("][") {
                    Some((f, op)) => (f, op),
                    None => (spec, "eq"),
                };
                let op: Op = serde_json::from_value(Value::String(op.to_owned()))
                    .map_err(|_| bad(&k, "unknown operator"))?;
                let value = match op {
                    Op::In | Op::Between => {
                        Value::Array(v.split(',').map(|s| typed::<E>(field, s)).collect())
                    }
                    Op::IsNull | Op::Exists => Value::Bool(v != "false"),
                    _ => typed::<E>(field, &v),
                };
                q.filters.push(Filter {
                    field: field.to_owned(),
                    op,
                    value,
                });
            }
        }
    }
    Ok(q)
}

/// A query-string value typed for its column, a linked record's too (numbers and booleans);
/// text otherwise. Custom fields stay text: use `POST …/search` for typed custom-field values.
fn typed<E: Entity>(field: &str, v: &str) -> Value {
    match E::KIND.column_at(field).map(|c| c.kind) {
        Some(Kind::Integer) => v.parse::<i64>().map_or_else(|_| v.into(), Value::from),
        Some(Kind::Bool) => v.parse::<bool>().map_or_else(|_| v.into(), Value::from),
        _ => Value::String(v.to_owned()),
    }
}

fn serde_urlencoded_pairs(raw: &str) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
}

/// Lists records.
async fn list<E: Resource>(
    tenant: Tenant,
    RawQuery(raw): RawQuery,
) -> ApiResult<RecordsJson<crm_core::Page<Record<E>>>> {
    let q = list_query::<E>(raw.as_deref())?;
    Ok(RecordsJson(tenant.records::<E>().list(&q).await?))
}

/// The body of `POST …/search`: flat conditions that must all hold and/or a condition tree
/// (`{"and": […]}`, `{"or": […]}`, `{"not": …}` over the same filters), a sort, a page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
    /// Conditions, all of which must hold.
    #[serde(default)]
    filters: Vec<Filter>,
    /// A tree of conditions that must hold too: `{"and": [..]}`, `{"or": [..]}`,
    /// `{"not": ..}` or a filter, nested up to 8 deep (50 filters in all).
    #[serde(default)]
    condition: Option<crm_core::Condition>,
    /// Sort order; creation order when absent.
    #[serde(default)]
    sort: Option<Sort>,
    /// Page size, 1-100 (default 50).
    #[serde(default)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (with the same sort and filters).
    #[serde(default)]
    cursor: Option<String>,
    /// Trash handling: `exclude` (default), `include` or `only`.
    #[serde(default)]
    include_deleted: Deleted,
}

/// Searches records with a JSON filter list and/or condition tree.
async fn search<E: Resource>(
    tenant: Tenant,
    Json(req): Json<SearchRequest>,
) -> ApiResult<RecordsJson<crm_core::Page<Record<E>>>> {
    let q = ListQuery {
        filters: req.filters,
        condition: req.condition,
        sort: req.sort,
        limit: req.limit,
        cursor: req.cursor,
        deleted: req.include_deleted,
    };
    Ok(RecordsJson(tenant.records::<E>().list(&q).await?))
}

/// The header that lists a new record's likely duplicates, `rule:id` comma-separated.
pub(crate) const DUPLICATES_HEADER: &str = "crm-duplicates";

/// `?duplicates=warn|reject|ignore` on a create or batch (default `warn`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateParams {
    #[serde(default = "warn")]
    duplicates: crm_core::DuplicatePolicy,
}

fn warn() -> crm_core::DuplicatePolicy {
    crm_core::DuplicatePolicy::Warn
}

/// The `Crm-Duplicates` value of `duplicates`: `rule:id, rule:id`.
fn duplicates_header(duplicates: &[crm_core::Duplicate]) -> Option<HeaderValue> {
    if duplicates.is_empty() {
        return None;
    }
    let text: Vec<String> = duplicates
        .iter()
        .map(|d| format!("{}:{}", d.rule, d.id))
        .collect();
    HeaderValue::from_str(&text.join(", ")).ok()
}

/// Creates a record; honours `Idempotency-Key`; looks for likely duplicates as `?duplicates=`
/// asks (warnings in the `Crm-Duplicates` header, or a 409 listing them).
async fn create<E: Resource>(
    State(state): State<ApiState>,
    tenant: Tenant,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    extract::Query(p): extract::Query<CreateParams>,
    JsonBody(body): JsonBody,
) -> Response {
    // The path as the client sent it (wherever the host mounted us): the fingerprint's scope
    // and the base of `Location`.
    let path = uri.path().trim_end_matches('/').to_owned();
    // A policy other than the default is part of "the same request": a retry that changes it
    // is another request (422), not a replay of the first answer. The default keeps the bare
    // path, the fingerprint of keys stored before the policy existed.
    let scope = match p.duplicates {
        crm_core::DuplicatePolicy::Warn => path.clone(),
        crm_core::DuplicatePolicy::Ignore => format!("{path}?duplicates=ignore"),
        crm_core::DuplicatePolicy::Reject => format!("{path}?duplicates=reject"),
    };
    idempotency::run(&state, &tenant, &headers, &scope, &body, async |t| {
        let new: E::New = input::<E, _>(extract::parse(&body)?)?;
        let created = t.records::<E>().create_with(new, p.duplicates).await?;
        let record = created.record;
        let mut res = record_response(StatusCode::CREATED, &record)?;
        if let Ok(v) = HeaderValue::from_str(&format!("{path}/{}", record.id)) {
            res.headers_mut().insert(LOCATION, v);
        }
        if let Some(v) = duplicates_header(&created.duplicates) {
            res.headers_mut().insert(DUPLICATES_HEADER, v);
        }
        Ok(res)
    })
    .await
}

/// The body of `POST …/batch`: creates and updates, at most 100 in all.
// `N` and `P` (the entity's create and patch inputs) only name the items' schemas: items are
// read one by one, as JSON values, so that one bad item fails alone.
#[derive(Debug, Deserialize, ToSchema)]
// The inputs are only named for the document: deserializing needs nothing of them.
#[serde(deny_unknown_fields, bound = "")]
pub(crate) struct BatchRequest<N, P> {
    /// Records to create: each like the body of `POST /{entity}`.
    #[serde(default)]
    #[schema(value_type = Vec<N>)]
    create: Vec<Value>,
    /// Records to patch.
    #[serde(default)]
    #[schema(inline)]
    update: Vec<BatchUpdate<P>>,
    #[serde(skip)]
    #[schema(ignore)]
    new: PhantomData<N>,
    #[serde(skip)]
    #[schema(ignore)]
    patch: PhantomData<P>,
}

/// One patch of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, bound = "")]
pub(crate) struct BatchUpdate<P> {
    /// The record.
    id: Uuid,
    /// When given, the patch applies only to this version (412 otherwise), like `If-Match`.
    #[serde(default)]
    version: Option<i64>,
    /// Like the body of `PATCH /{entity}/{id}`.
    #[schema(value_type = P)]
    patch: Value,
    #[serde(skip)]
    #[schema(ignore)]
    input: PhantomData<P>,
}

/// The outcome of one batch item.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchItemResult<R> {
    /// 200 on success, else the status the item alone would have answered.
    status: u16,
    /// The record, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<R>,
    /// The problem, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<crate::error::Problem>,
    /// A created record's likely duplicates (`?duplicates=warn`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    duplicates: Vec<crm_core::Duplicate>,
}

/// The body answered by `POST …/batch`: one result per item, creates first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchResponse<R> {
    /// Results in request order (creates, then updates).
    #[schema(inline)]
    results: Vec<BatchItemResult<R>>,
}

/// Creates and updates up to [`MAX_BATCH`] records; each item succeeds or fails on its own.
async fn batch<E: Resource>(
    tenant: Tenant,
    extract::Query(p): extract::Query<CreateParams>,
    Json(req): Json<BatchRequest<E::New, E::Patch>>,
) -> ApiResult<Json<BatchResponse<Record<E>>>> {
    if req.create.len() + req.update.len() > MAX_BATCH {
        return Err(crm_core::Error::invalid(
            "body",
            "too_many_items",
            format!("at most {MAX_BATCH} items per batch"),
        )
        .into());
    }
    let records = tenant.records::<E>();
    let mut results = Vec::with_capacity(req.create.len() + req.update.len());
    for item in req.create {
        let out = async {
            let new: E::New = input::<E, _>(item)?;
            Ok::<_, ApiError>(records.create_with(new, p.duplicates).await?)
        }
        .await;
        let (out, duplicates) = match out {
            Ok(c) => (Ok(c.record), c.duplicates),
            Err(e) => (Err(e), Vec::new()),
        };
        let mut result = batch_result(out);
        result.duplicates = duplicates;
        results.push(result);
    }
    for item in req.update {
        let out = async {
            let patch: E::Patch = input::<E, _>(item.patch)?;
            let id = Id::<E>::from_uuid(item.id);
            Ok::<_, ApiError>(match item.version {
                Some(v) => records.update_if_version(id, v, patch).await?,
                None => records.update(id, patch).await?,
            })
        }
        .await;
        results.push(batch_result(out));
    }
    Ok(Json(BatchResponse { results }))
}

fn batch_result<E: Entity>(out: ApiResult<Record<E>>) -> BatchItemResult<Record<E>> {
    match out {
        Ok(r) => BatchItemResult {
            status: 200,
            data: Some(r),
            error: None,
            duplicates: Vec::new(),
        },
        Err(e) => {
            let (status, problem) = e.problem();
            BatchItemResult {
                status: status.as_u16(),
                data: None,
                error: Some(problem),
                duplicates: Vec::new(),
            }
        }
    }
}

/// `?include_deleted=true` or `?as_of=<time>` on a read; `?permanent=true` on a delete.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordParams {
    #[serde(default)]
    include_deleted: bool,
    #[serde(default)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    permanent: bool,
}

/// Reads one record.
async fn read<E: Resource>(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    extract::Query(p): extract::Query<RecordParams>,
) -> ApiResult<Response> {
    read_one::<E>(tenant, id, headers, p)
        .await
        .map_err(relocate(&uri))
}

async fn read_one<E: Resource>(
    tenant: Tenant,
    id: Uuid,
    headers: HeaderMap,
    p: RecordParams,
) -> ApiResult<Response> {
    let records = tenant.records::<E>();
    let id = Id::<E>::from_uuid(id);
    if let Some(at) = p.as_of {
        // A past state, tagged with its version then: a write conditional on it answers 412.
        return record_response(StatusCode::OK, &records.as_of(id, at).await?);
    }
    let record = if p.include_deleted {
        records.get_including_deleted(id).await?
    } else {
        records.get(id).await?
    };
    // `If-None-Match` with the current ETag: the client's copy is fresh.
    let tag = etag(record.version);
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == tag)
        });
    if fresh {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        res.headers_mut().insert(ETAG, tag);
        return Ok(res);
    }
    record_response(StatusCode::OK, &record)
}

/// Patches one record; `If-Match` makes it conditional (412 on a version mismatch).
async fn update<E: Resource>(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let version = if_match(&headers)?;
    let patch: E::Patch = input::<E, _>(extract::parse(&body)?)?;
    let records = tenant.records::<E>();
    let id = Id::<E>::from_uuid(id);
    let record = match version {
        Some(v) => records.update_if_version(id, v, patch).await,
        None => records.update(id, patch).await,
    };
    record_response(
        StatusCode::OK,
        &record.map_err(|e| relocate(&uri)(e.into()))?,
    )
}

/// The body of `POST …/{id}/merge`: the records to absorb and which record's value each field
/// keeps.
pub(crate) type MergeRequest = crm_core::Merge;

/// Merges records into this one (the survivor); `If-Match` makes it conditional on the
/// survivor's version.
async fn merge<E: Resource>(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Json(req): Json<MergeRequest>,
) -> ApiResult<Response> {
    let version = if_match(&headers)?;
    let records = tenant.records::<E>();
    let id = Id::<E>::from_uuid(id);
    let record = match version {
        Some(v) => records.merge_if_version(id, v, req).await,
        None => records.merge(id, req).await,
    };
    record_response(
        StatusCode::OK,
        &record.map_err(|e| relocate(&uri)(e.into()))?,
    )
}

/// Moves a record to the trash, or with `?permanent=true` removes it for good (admins).
async fn delete<E: Resource>(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    extract::Query(p): extract::Query<RecordParams>,
) -> ApiResult<StatusCode> {
    delete_one::<E>(tenant, id, headers, p)
        .await
        .map_err(relocate(&uri))
}

async fn delete_one<E: Resource>(
    tenant: Tenant,
    id: Uuid,
    headers: HeaderMap,
    p: RecordParams,
) -> ApiResult<StatusCode> {
    let version = if_match(&headers)?;
    let records = tenant.records::<E>();
    let id = Id::<E>::from_uuid(id);
    if p.permanent {
        match version {
            Some(v) => records.purge_if_version(id, v).await?,
            None => records.purge(id).await?,
        }
    } else {
        match version {
            Some(v) => records.delete_if_version(id, v).await?,
            None => records.delete(id).await?,
        };
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `?limit=` (1-100, default 50) and `?cursor=` of a record's timeline or history, and the
/// history's `?field=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SubListParams {
    field: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The timeline of one record: its activities and event-log entries, newest first.
async fn timeline<E: Resource>(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    extract::Query(p): extract::Query<SubListParams>,
) -> ApiResult<Json<crm_core::Page<TimelineItem>>> {
    if p.field.is_some() {
        return Err(ApiError::BadRequest(
            "`field` narrows a history, not a timeline".into(),
        ));
    }
    let page = tenant
        .timeline(E::KIND, id, p.limit.unwrap_or(50), p.cursor.as_deref())
        .await?;
    Ok(Json(page))
}

/// The field changes of one record, newest first.
async fn history<E: Resource>(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    extract::Query(p): extract::Query<SubListParams>,
) -> ApiResult<Json<crm_core::Page<crm_core::FieldChange>>> {
    let page = tenant
        .records::<E>()
        .history(
            Id::from_uuid(id),
            p.field.as_deref(),
            p.limit.unwrap_or(50),
            p.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page))
}

/// Takes a record out of the trash.
async fn restore<E: Resource>(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Response> {
    record_ok(tenant.records::<E>().restore(Id::<E>::from_uuid(id)).await)
}
