//! The OpenAPI 3.1 description: annotated routes via `utoipa-axum`; the entity routes, whose
//! handlers are generic, described here with the schemas crm-core derives for each entity
//! (feature `openapi` of crm-core: nothing here restates a core type); and the answers every
//! route shares, declared once as components and referenced by [`finish`].

use std::collections::BTreeSet;

use crm_core::{Page, Record};
use utoipa::__dev::ComposeSchema;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::PROBLEM_JSON;
use crate::routes::records::{BatchRequest, BatchResponse, MAX_BATCH, Resource};

/// Operation tags.
pub(crate) mod tags {
    /// Sign-up, sign-in, tokens.
    pub(crate) const AUTH: &str = "auth";
    /// Users of the caller's organization.
    pub(crate) const USERS: &str = "users";
    /// Organizations (super-admins).
    pub(crate) const ORGANIZATIONS: &str = "organizations";
    /// API keys (company admins).
    pub(crate) const API_KEYS: &str = "api-keys";
    /// Inbound webhooks.
    pub(crate) const WEBHOOKS: &str = "webhooks";
    /// Outbound webhooks: subscriptions and their deliveries.
    pub(crate) const WEBHOOK_SUBSCRIPTIONS: &str = "webhook-subscriptions";
    /// Pipelines and their stages.
    pub(crate) const PIPELINES: &str = "pipelines";
    /// Custom field definitions (company admins change them).
    pub(crate) const CUSTOM_FIELDS: &str = "custom-fields";
    /// The change feed.
    pub(crate) const CHANGES: &str = "changes";
    pub(crate) const SEARCH: &str = "search";
    /// Background jobs of the organization.
    pub(crate) const JOBS: &str = "jobs";
    /// Permission sets and their assignment (company admins).
    pub(crate) const PERMISSION_SETS: &str = "permission-sets";
    /// Teams and their members (company admins change them).
    pub(crate) const TEAMS: &str = "teams";
    /// Records shared with users and teams.
    pub(crate) const SHARES: &str = "shares";
}

/// The document's fixed parts: info, the server, the problem schema, the record requests.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "abetworks CRM API", description = "The REST API of abetworks CRM. Errors are RFC 9457 problem+json.", license(name = "MIT OR Apache-2.0")),
    servers((url = "/", description = "The host that mounts the API; every path includes `/api/v1`")),
    components(schemas(
        crate::error::Problem, crate::error::ProblemField, crm_core::Duplicate, crm_core::Merge,
        crate::routes::records::SearchRequest,
        // `Condition` does not recurse into its parts: the one it reaches through `exists`.
        crm_core::Related,
    )),
    tags(
        (name = "auth", description = "Sign-up, sign-in, tokens"),
        (name = "users", description = "Users of the caller's organization"),
        (name = "organizations", description = "Organizations (super-admins)"),
        (name = "api-keys", description = "API keys (company admins)"),
        (name = "webhooks", description = "Inbound webhooks (API key)"),
        (name = "webhook-subscriptions", description = "Outbound webhooks, signed as Standard Webhooks: subscriptions, delivery log, replays (company admins)"),
        (name = "pipelines", description = "Pipelines and their stages"),
        (name = "custom-fields", description = "Custom field definitions"),
        (name = "changes", description = "The change feed: every change, in commit order"),
        (name = "search", description = "Full-text search across accounts, contacts, leads and opportunities"),
        (name = "jobs", description = "The organization's background jobs (company admins)"),
        (name = "permission-sets", description = "Permission sets: the reach into each entity's records and the rules of fields; assigned to users and API keys (company admins)"),
        (name = "teams", description = "Teams and their members: `team` reach and shares with a team (company admins change them)"),
        (name = "shares", description = "One record shared with a user or a team, for reading or writing"),
    )
)]
pub(crate) struct ApiDoc;

/// The problem answers routes share, declared once under `components/responses`: status, name,
/// description.
const PROBLEMS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Malformed request: JSON, path, query string, or an `If-Match` that is no ETag of this API",
    ),
    (
        "401",
        "Unauthorized",
        "Missing or invalid credentials (`WWW-Authenticate: Bearer`)",
    ),
    ("403", "Forbidden", "The caller may not do this"),
    ("404", "NotFound", "No such resource in your organization"),
    (
        "409",
        "Conflict",
        "The change conflicts with the current state",
    ),
    (
        "412",
        "PreconditionFailed",
        "The record changed since the ETag in `If-Match`",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the server accepts",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not of a media type this route reads",
    ),
    (
        "422",
        "UnprocessableEntity",
        "Invalid input, with one entry per field in `errors`",
    ),
    (
        "429",
        "TooManyRequests",
        "Rate limited: retry after `Retry-After` seconds",
    ),
    (
        "500",
        "InternalError",
        "The server failed; the details are logged, not sent",
    ),
];

/// A reference to a shared problem answer.
fn problem_ref(status: &str) -> RefOr<Response> {
    let name = PROBLEMS
        .iter()
        .find(|(s, ..)| *s == status)
        .map_or("InternalError", |(_, name, _)| *name);
    RefOr::Ref(Ref::from_response_name(name))
}

/// Adds the security schemes and the shared answers, then completes every operation with the
/// answers it can give besides its own: 500 always; 401 and 403 behind authentication; 400,
/// 413, 415 and 422 where a body is read; 400 and 404 with path parameters; 400 and 422 with
/// query parameters; 400 and 412 with `If-Match`. Operations of `public` paths need no
/// credentials (`security: []`). Record answers carry their `ETag`.
pub(crate) fn finish(doc: &mut OpenApi, public: &BTreeSet<String>) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in PROBLEMS {
        components
            .responses
            .insert((*name).to_owned(), RefOr::T(problem(description)));
    }
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from `POST /api/v1/auth/login`. Super-admins may add \
                     `X-Organization-Id: <id>` to act in another organization.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("crm_key_…")
                .description(Some(
                    "An API key from `POST /api/v1/api-keys`. A key reaches only what its \
                     scopes name (`forms`, `<entity>:read`, `<entity>:write`, `all`); \
                     elsewhere 403 `out_of_scope`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "api_key_header",
        SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
            utoipa::openapi::security::ApiKeyValue::with_description(
                "X-API-Key",
                "An API key with the `forms` scope, for `POST /api/v1/webhooks/forms` only.",
            ),
        )),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let is_public = public.contains(path);
        for op in operations(item) {
            complete(op, path, is_public);
            entity_param(op);
        }
    }
}

/// An `{entity}` path parameter takes the URL segment of any entity of the registry.
fn entity_param(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        if let RefOr::T(p) = p
            && p.name == "entity"
            && p.parameter_in == ParameterIn::Path
        {
            let segments = crm_core::EntityKind::ALL.iter().map(|k| k.table());
            p.schema = Some(RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(segments))
                    .build(),
            )));
        }
    }
}

/// Every operation of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds the shared answers `op` can give (see [`finish`]).
fn complete(op: &mut Operation, path: &str, public: bool) {
    let params = |place: ParameterIn| {
        op.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let if_match = op.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => p.name == "If-Match",
        RefOr::Ref(_) => false,
    });
    let mut statuses = vec!["500"];
    if public {
        op.security = Some(Vec::new());
    } else {
        statuses.extend(["401", "403"]);
    }
    if op.request_body.is_some() {
        statuses.extend(["400", "413", "415", "422"]);
    }
    if path.contains('{') || params(ParameterIn::Path) {
        statuses.extend(["400", "404"]);
    }
    if params(ParameterIn::Query) {
        statuses.extend(["400", "422"]);
    }
    if if_match {
        statuses.extend(["400", "412"]);
    }
    for status in statuses {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_ref(status));
    }
    // Every record answer carries the record's version as its `ETag`.
    for (status, response) in op.responses.responses.iter_mut() {
        if let (true, RefOr::T(r)) = (status.starts_with('2'), response) {
            let record = r.content.get("application/json").is_some_and(|c| {
                matches!(c, RefOr::T(Content { schema: Some(RefOr::Ref(s)), .. })
                    if s.ref_location.starts_with("#/components/schemas/Record_"))
            });
            if record {
                r.headers.entry("ETag".into()).or_insert_with(|| {
                    RefOr::T(header(
                        "The record's version, for `If-Match` / `If-None-Match`",
                    ))
                });
            }
        }
    }
}

/// A string response header.
fn header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

/// A plain schema of type `t`.
fn typed(t: Type, format: Option<KnownFormat>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(t))
        .format(format.map(SchemaFormat::KnownFormat))
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// Whether a derived property schema admits `null` (`type: [T, "null"]` or `oneOf` with null).
fn nullable(schema: &RefOr<Schema>) -> bool {
    let null = |s: &SchemaType| match s {
        SchemaType::Array(types) => types.contains(&Type::Null),
        SchemaType::Type(t) => *t == Type::Null,
        SchemaType::AnyValue => true,
    };
    match schema {
        RefOr::T(Schema::Object(o)) => null(&o.schema_type),
        RefOr::T(Schema::Array(a)) => null(&a.schema_type),
        RefOr::T(Schema::OneOf(one)) => one.items.iter().any(nullable),
        _ => false,
    }
}

/// Registers `T`'s schema under `name` and every schema it refers to.
fn register(
    doc: &mut OpenApi,
    name: String,
    schema: RefOr<Schema>,
    refs: fn(&mut Vec<(String, RefOr<Schema>)>),
) {
    let components = doc.components.get_or_insert_with(Default::default);
    let mut found = Vec::new();
    refs(&mut found);
    components.schemas.extend(found);
    components.schemas.insert(name, schema);
}

/// Registers `Page<T>` (`Page_<T>`) and `T`'s schemas; answers the page's name.
fn page_of<T: ToSchema + 'static>(doc: &mut OpenApi) -> String
where
    Page<T>: ComposeSchema,
{
    let page = format!("{}_{}", <Page<T> as ToSchema>::name(), T::name());
    register(
        doc,
        page.clone(),
        <Page<T> as ComposeSchema>::compose(vec![reference(&T::name())]),
        |found| {
            found.push((T::name().into_owned(), T::schema()));
            T::schemas(found);
        },
    );
    page
}

/// The name of `Record<E>`'s schema, as utoipa names it where a derived type refers to it
/// (`Record_Account`).
pub(crate) fn record_schema<E: ToSchema>() -> String {
    format!("{}_{}", <Record<E> as ToSchema>::name(), E::name())
}

/// The schemas and paths of entity `E` under `/{its table}`: its own fields (`Account`), its
/// record (`Record_Account`), create and patch inputs and list page, as crm-core derives them.
pub(crate) fn describe_entity<E: Resource>(doc: &mut OpenApi) {
    let plural = E::TABLE;
    let name = record_schema::<E>();
    let new_name = <E::New as ToSchema>::name().into_owned();
    let patch_name = <E::Patch as ToSchema>::name().into_owned();
    let list_name = format!("{}_{name}", <Page<Record<E>> as ToSchema>::name());

    // The declared constraints, on every schema that carries the entity's fields.
    let constrained = |mut schema: RefOr<Schema>| {
        crm_core::document_columns(E::COLUMNS, &mut schema);
        schema
    };
    // A create needs the fields that are neither nullable nor defaulted (validation, not
    // serde, refuses their absence: the derive cannot see it).
    let mut new = constrained(<E::New as PartialSchema>::schema());
    if let RefOr::T(Schema::Object(o)) = &mut new {
        for c in E::COLUMNS.iter().filter(|c| !c.readonly && !c.defaulted) {
            if o.properties.get(c.name).is_some_and(|p| !nullable(p))
                && !o.required.iter().any(|r| r == c.name)
            {
                o.required.push(c.name.to_owned());
            }
        }
    }
    register(
        doc,
        E::name().into_owned(),
        constrained(E::schema()),
        E::schemas,
    );
    register(
        doc,
        name.clone(),
        constrained(<Record<E> as PartialSchema>::schema()),
        <Record<E> as ToSchema>::schemas,
    );
    register(doc, new_name.clone(), new, <E::New as ToSchema>::schemas);
    register(
        doc,
        patch_name.clone(),
        constrained(<E::Patch as PartialSchema>::schema()),
        <E::Patch as ToSchema>::schemas,
    );
    register(
        doc,
        list_name.clone(),
        <Page<Record<E>> as ComposeSchema>::compose(vec![reference(&name)]),
        |_| {},
    );
    let batch_request = format!("BatchRequest_{}", E::name());
    register(
        doc,
        batch_request.clone(),
        <BatchRequest<E::New, E::Patch> as ComposeSchema>::compose(vec![
            reference(&new_name),
            reference(&patch_name),
        ]),
        |_| {},
    );
    let batch_response = format!("BatchResponse_{}", E::name());
    register(
        doc,
        batch_response.clone(),
        <BatchResponse<Record<E>> as ComposeSchema>::compose(vec![reference(&name)]),
        |_| {},
    );

    let op = |id: &str, summary: String| operation(plural, id, summary);
    let query_format = |n: &str, desc: &str, t: Type, format: Option<KnownFormat>| {
        ParameterBuilder::new()
            .name(n)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(desc))
            .schema(Some(typed(t, format)))
            .build()
    };
    let query = |n: &str, desc: &str, t: Type| query_format(n, desc, t, None);
    let header_param = |n: &str, desc: &str| {
        ParameterBuilder::new()
            .name(n)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(desc))
            .schema(Some(typed(Type::String, None)))
            .build()
    };
    let if_match = || {
        header_param(
            "If-Match",
            "The ETag read; 412 when the record changed since",
        )
    };
    let one = || ok("The record (its version is the `ETag`)", &name);
    let no_record = || problem("No such record in your organization");

    let list_op = op("list", format!("List {plural}"))
        .parameter(query("limit", "Page size, 1-100 (default 50)", Type::Integer))
        .parameter(query("cursor", "`next_cursor` of the previous page", Type::String))
        .parameter(query("sort", "A sortable field; `-field` for descending", Type::String))
        .parameter(query("include_deleted", "`true`, `false` (default) or `only` (the trash)", Type::String))
        .parameter(query(
            "filter[{field}][{op}]",
            "A filter; ops: eq, ne, lt, lte, gt, gte, in and between (comma-separated), contains, starts_with, is_null, exists. `filter[field]=v` means eq.",
            Type::String,
        ))
        .response("200", ok("One page", &list_name));
    let mut created = one();
    created.description = "Created (its version is the `ETag`)".into();
    created.headers.insert(
        "Location".into(),
        RefOr::T(header("The path of the new record")),
    );
    // `Crm-Duplicates` is sent only when there are likely duplicates: described on the
    // parameter, not as a header every 201 carries.
    let duplicates_param = || {
        query(
            "duplicates",
            "What to do about likely duplicates (same email, domain or normalized name as a live record): `warn` (default: create, and list them in the response header `Crm-Duplicates` as `rule:id` comma-separated, sent only when there are any), `reject` (409 listing them in `matches`) or `ignore`",
            Type::String,
        )
    };
    // A link in the body that names no live record of the organization answers 404, as the
    // record itself would: every entity whose columns (or activity link) name other records.
    let links = E::ANY_LINK.is_some()
        || E::COLUMNS
            .iter()
            .any(|c| matches!(c.kind, crm_core::record::Kind::Ref { .. }));
    let mut create_op = op("create", format!("Create a {}", E::NAME))
        .parameter(header_param(
            "Idempotency-Key",
            "Makes the create safe to retry: a repeat replays the first response",
        ))
        .parameter(duplicates_param())
        .request_body(body(&new_name))
        .response("201", created)
        .response(
            "409",
            problem("The same Idempotency-Key is still being processed; a unique custom field's value is taken (`duplicate`); or, with `?duplicates=reject`, likely duplicates (`duplicates`, listed in `matches`)"),
        )
        .response(
            "422",
            problem("Invalid input (one entry per field in `errors`), or an Idempotency-Key reused with another body"),
        );
    if links {
        create_op = create_op.response(
            "404",
            problem("A link in the body (such as `account_id`) names no live record of your organization"),
        );
    }
    let search_op = op("search", format!("Search {plural}"))
        .description(Some(
            "All filters must hold. Same operators as the list's `filter[…]`.",
        ))
        .request_body(body("SearchRequest"))
        .response("200", ok("One page", &list_name));
    let batch_op = op(
        "batch",
        format!("Create and update up to {MAX_BATCH} {plural}"),
    )
    .description(Some(
        "Each item succeeds or fails on its own (not one transaction).",
    ))
    .parameter(duplicates_param())
    .request_body(body(&batch_request))
    .response("200", ok("One result per item", &batch_response));
    let get_op = op("get", format!("Read a {}", E::NAME))
        .parameter(id_param())
        .parameter(query(
            "include_deleted",
            "Also find it in the trash",
            Type::Boolean,
        ))
        .parameter(query_format(
            "as_of",
            "Read it as it was at this time (RFC 3339, years 1 to 9999: 422 `out_of_range` outside them), rebuilt from its history, its ETag the version it had then (404 if it did not exist yet; 308 for a merged record, as without it)",
            Type::String,
            Some(KnownFormat::DateTime),
        ))
        .parameter(header_param(
            "If-None-Match",
            "The ETag you hold; 304 while it is current",
        ))
        .response("200", one())
        .response(
            "304",
            ResponseBuilder::new()
                .description("Not modified")
                .header("ETag", header("The record's version"))
                .build(),
        )
        .response("404", no_record());
    let patch_op = op("update", format!("Patch a {}", E::NAME))
        .parameter(id_param())
        .parameter(if_match())
        .request_body(body(&patch_name))
        .response("200", one())
        .response("404", no_record());
    let delete_op = op("delete", format!("Delete a {}", E::NAME))
        .parameter(id_param())
        .parameter(query(
            "permanent",
            "Remove for good (company admins) instead of moving to the trash",
            Type::Boolean,
        ))
        .parameter(if_match())
        .response("204", ResponseBuilder::new().description("Deleted").build())
        .response("404", no_record())
        .response(
            "409",
            problem(
                "Other records still link to it (permanent delete), or the record is kept (`not_draft`: an invoice once sent is voided, never deleted)",
            ),
        );
    let restore_op = op("restore", format!("Restore a {} from the trash", E::NAME))
        .parameter(id_param())
        .response("200", one())
        .response("404", no_record())
        .response(
            "409",
            problem("Not in the trash, or merged into another record (`merged`)"),
        );
    let merge_op = op("merge", format!("Merge other {plural} into this one"))
        .description(Some(
            "One transaction: the survivor takes the chosen field values, every record, activity and link pointing at an absorbed record is re-pointed at the survivor (each logged as `updated`), the absorbed records go to the trash with a `merged` event, their ids answer 308 to the survivor from then on, and the survivor's history includes theirs. Accounts, contacts and leads are mergeable; other entities answer 422 `not_mergeable`.",
        ))
        .parameter(id_param())
        .parameter(if_match())
        .request_body(body("Merge"))
        .response("200", one())
        .response("404", no_record())
        .response("422", problem("Not mergeable, or a bad `absorb` list or field choice"));
    let moved = || {
        ResponseBuilder::new()
            .description("Merged into another record: `Location` is the survivor's path")
            .header("Location", header("The survivor's path"))
            .content(PROBLEM_JSON, json("Problem"))
            .build()
    };
    let get_op = get_op.response("308", moved());
    let patch_op = patch_op.response("308", moved());
    let delete_op = delete_op.response("308", moved());

    let paths = &mut doc.paths.paths;
    let mut collection = PathItem::new(HttpMethod::Get, list_op);
    collection.post = Some(create_op.build());
    paths.insert(format!("/{plural}"), collection);
    paths.insert(
        format!("/{plural}/search"),
        PathItem::new(HttpMethod::Post, search_op),
    );
    paths.insert(
        format!("/{plural}/batch"),
        PathItem::new(HttpMethod::Post, batch_op),
    );
    let mut item = PathItem::new(HttpMethod::Get, get_op);
    item.patch = Some(patch_op.build());
    item.delete = Some(delete_op.build());
    paths.insert(format!("/{plural}/{{id}}"), item);
    paths.insert(
        format!("/{plural}/{{id}}/restore"),
        PathItem::new(HttpMethod::Post, restore_op),
    );
    paths.insert(
        format!("/{plural}/{{id}}/merge"),
        PathItem::new(HttpMethod::Post, merge_op),
    );
    // A record's paged sub-lists, newest first: `limit` and `cursor`, one page, 404.
    let sub_list = |doc: &mut OpenApi, path: &str, op: OperationBuilder, page: String| {
        let op = op
            .parameter(id_param())
            .parameter(query(
                "limit",
                "Page size, 1-100 (default 50)",
                Type::Integer,
            ))
            .parameter(query(
                "cursor",
                "`next_cursor` of the previous page",
                Type::String,
            ))
            .response("200", ok("One page", &page))
            .response("404", no_record());
        doc.paths.paths.insert(
            format!("/{plural}/{{id}}/{path}"),
            PathItem::new(HttpMethod::Get, op),
        );
    };
    let history_page = page_of::<crm_core::FieldChange>(doc);
    let history_op = op("history", format!("The field history of a {}", E::NAME))
        .description(Some(
            "Each field's before and after at every write, newest first, with the actor and the request (`x-request-id`) that made it. A trashed record keeps its history; a purged or erased one has none.",
        ))
        .parameter(query(
            "field",
            "Only this field's changes: a column, `is_deleted`, or `custom_fields.<key>`",
            Type::String,
        ));
    sub_list(doc, "history", history_op, history_page);
    if E::KIND.has_timeline() {
        let page = page_of::<crm_core::TimelineItem>(doc);
        let timeline_op =
            op("timeline", format!("The timeline of a {}", E::NAME)).description(Some(
                "Its activities and event-log entries, newest first (trashed records keep theirs).",
            ));
        sub_list(doc, "timeline", timeline_op, page);
    }
}

/// An operation `{id}_{plural}` tagged `plural`, for a JWT or an API key.
fn operation(plural: &str, id: &str, summary: String) -> OperationBuilder {
    OperationBuilder::new()
        .tag(plural)
        .operation_id(Some(format!("{id}_{plural}")))
        .summary(Some(summary))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
}

/// JSON content of a named schema.
fn json(schema: &str) -> Content {
    Content::new(Some(reference(schema)))
}

/// A success answering a named schema.
fn ok(desc: &str, schema: &str) -> Response {
    ResponseBuilder::new()
        .description(desc)
        .content("application/json", json(schema))
        .build()
}

/// An error answering problem+json.
fn problem(desc: &str) -> Response {
    ResponseBuilder::new()
        .description(desc)
        .content(PROBLEM_JSON, json("Problem"))
        .build()
}

/// A required JSON request body of a named schema.
fn body(schema: &str) -> Option<RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content("application/json", json(schema))
            .build(),
    )
}

/// The `{id}` path parameter, a UUID.
fn id_param() -> Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(typed(Type::String, Some(KnownFormat::Uuid))))
        .build()
}
