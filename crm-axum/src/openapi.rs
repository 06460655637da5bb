//! The OpenAPI 3.1 description: annotated routes via `utoipa-axum`, and the entity routes, whose
//! handlers are generic, described here from each entity's column list.

use crm_core::Entity;
use crm_core::record::{Column, Kind};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder, Schema,
};

use crate::error::PROBLEM_JSON;
use crate::routes::records::{MAX_BATCH, SERVER_OWNED};

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
    /// Pipelines and their stages.
    pub(crate) const PIPELINES: &str = "pipelines";
    /// Custom field definitions (company admins change them).
    pub(crate) const CUSTOM_FIELDS: &str = "custom-fields";
}

/// The document's fixed parts: info, security schemes, the problem schema.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "abetworks CRM API", description = "The REST API of abetworks CRM. Errors are RFC 9457 problem+json.", license(name = "MIT OR Apache-2.0")),
    components(schemas(
        crate::error::Problem, crate::error::ProblemField,
        crate::routes::records::SearchRequest, crate::routes::records::BatchRequest,
        crate::routes::records::BatchResponse,
        crate::schemas::ConvertLead, crate::schemas::ConvertOpportunity, crate::schemas::Target,
        crate::schemas::CloseOpportunity, crate::schemas::Outcome,
        crate::schemas::Timeline, crate::schemas::TimelineItem, crate::schemas::TimelineItemType,
        crate::schemas::Erasure,
    )),
    tags(
        (name = "auth", description = "Sign-up, sign-in, tokens"),
        (name = "users", description = "Users of the caller's organization"),
        (name = "organizations", description = "Organizations (super-admins)"),
        (name = "api-keys", description = "API keys (company admins)"),
        (name = "webhooks", description = "Inbound webhooks (API key)"),
        (name = "pipelines", description = "Pipelines and their stages"),
        (name = "custom-fields", description = "Custom field definitions"),
    )
)]
pub(crate) struct ApiDoc;

/// Adds the security schemes (a JWT bearer and an API key bearer) and the schemas that refer
/// to entity schemas.
pub(crate) fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let conversion = ObjectBuilder::new()
        .description(Some("A converted lead and the records it made or linked"))
        .property("lead", reference("Lead"))
        .required("lead")
        .property("account", reference("Account"))
        .required("account")
        .property("contact", reference("Contact"))
        .required("contact")
        .property(
            "opportunity",
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(reference("Opportunity"))
                .item(typed(Type::Null, None, false)),
        )
        .required("opportunity");
    components
        .schemas
        .insert("Conversion".into(), conversion.into());
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
                .description(Some("An API key from `POST /api/v1/api-keys`."))
                .build(),
        ),
    );
}

fn typed(t: Type, format: Option<KnownFormat>, nullable: bool) -> ObjectBuilder {
    let ty = if nullable {
        SchemaType::from_iter([t, Type::Null])
    } else {
        SchemaType::new(t)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .format(format.map(SchemaFormat::KnownFormat))
}

/// The schema of an entity column; read-only columns are marked `readOnly`.
fn column_schema(c: &Column) -> Schema {
    let (t, f) = match c.kind {
        Kind::Text => (Type::String, None),
        Kind::Integer => (Type::Integer, Some(KnownFormat::Int64)),
        Kind::Bool => (Type::Boolean, None),
        Kind::Uuid | Kind::Ref { .. } => (Type::String, Some(KnownFormat::Uuid)),
        Kind::Timestamp => (Type::String, Some(KnownFormat::DateTime)),
        Kind::Date => (Type::String, Some(KnownFormat::Date)),
        // A JSON document: the only one is an invoice's line items, an array of objects.
        Kind::Json => {
            return ArrayBuilder::new()
                .items(free_object())
                .description(Some("A JSON array of objects"))
                .build()
                .into();
        }
    };
    let mut o = typed(t, f, c.nullable);
    if !c.choices.is_empty() {
        o = o.enum_values(Some(c.choices.iter().copied()));
    }
    if c.readonly {
        o = o
            .read_only(true)
            .description(Some("Read-only: set by the server and the entity's verbs"));
    }
    o.build().into()
}

fn free_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
}

/// `Account` from `account`.
fn schema_name<E: Entity>() -> String {
    let mut c = E::NAME.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The schemas and paths of entity `E` under `/{plural}`.
pub(crate) fn describe_entity<E: Entity>(doc: &mut OpenApi, plural: &str, timeline: bool) {
    let name = schema_name::<E>();
    let (new_name, patch_name, list_name) = (
        format!("New{name}"),
        format!("{name}Patch"),
        format!("{name}List"),
    );

    // The record: common columns, the entity's own, custom fields.
    let uuid = |n| typed(Type::String, Some(KnownFormat::Uuid), n);
    let time = |n| typed(Type::String, Some(KnownFormat::DateTime), n);
    let mut record = ObjectBuilder::new()
        .property("id", uuid(false))
        .property("organization_id", uuid(false))
        .property("created_at", time(false))
        .property("updated_at", time(false))
        .property("created_by", uuid(true))
        .property("updated_by", uuid(true))
        .property(
            "version",
            typed(Type::Integer, Some(KnownFormat::Int64), false),
        )
        .property("is_deleted", typed(Type::Boolean, None, false))
        .property("deleted_at", time(true))
        .property("deleted_by", uuid(true))
        .property("custom_fields", free_object());
    for r in SERVER_OWNED.iter().chain(&["custom_fields"]) {
        record = record.required(*r);
    }
    let mut new = ObjectBuilder::new()
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(format!(
            "Input to create a {}. Unknown, server-owned and read-only fields are rejected (422).",
            E::NAME
        )));
    let mut patch = ObjectBuilder::new()
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(
            "Absent fields are kept; `null` clears an optional field; custom fields merge key by key. Read-only fields are rejected (422).",
        ));
    for c in E::COLUMNS {
        record = record.property(c.name, column_schema(c)).required(c.name);
        if c.readonly {
            continue;
        }
        new = new.property(c.name, column_schema(c));
        if !c.nullable && !c.defaulted {
            new = new.required(c.name);
        }
        patch = patch.property(c.name, column_schema(c));
    }
    new = new.property("custom_fields", free_object());
    patch = patch.property("custom_fields", typed(Type::Object, None, true));
    let list = ObjectBuilder::new()
        .property("data", ArrayBuilder::new().items(reference(&name)))
        .required("data")
        .property("next_cursor", typed(Type::String, None, true))
        .required("next_cursor");

    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(name.clone(), record.into());
    components.schemas.insert(new_name.clone(), new.into());
    components.schemas.insert(patch_name.clone(), patch.into());
    components.schemas.insert(list_name.clone(), list.into());

    let op = |id: &str, summary: String| operation(plural, id, summary);
    let query = |n: &str, desc: &str, t: Type| {
        ParameterBuilder::new()
            .name(n)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(desc))
            .schema(Some(typed(t, None, false)))
            .build()
    };
    let header = |n: &str, desc: &str| {
        ParameterBuilder::new()
            .name(n)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(desc))
            .schema(Some(typed(Type::String, None, false)))
            .build()
    };
    let one = || ok("The record (its version is the `ETag`)", &name);

    let list_op = errors(op("list", format!("List {plural}")))
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
    let create_op = errors(op("create", format!("Create a {}", E::NAME)))
        .parameter(header(
            "Idempotency-Key",
            "Makes the create safe to retry: a repeat replays the first response",
        ))
        .request_body(body(&new_name))
        .response("201", one())
        .response(
            "409",
            problem("The same Idempotency-Key is still being processed"),
        );
    let search_op = errors(op("search", format!("Search {plural}")))
        .description(Some(
            "All filters must hold. Same operators as the list's `filter[…]`.",
        ))
        .request_body(body("SearchRequest"))
        .response("200", ok("One page", &list_name));
    let batch_op = errors(op(
        "batch",
        format!("Create and update up to {MAX_BATCH} {plural}"),
    ))
    .description(Some(
        "Each item succeeds or fails on its own (not one transaction).",
    ))
    .request_body(body("BatchRequest"))
    .response("200", ok("One result per item", "BatchResponse"));
    let get_op = errors(op("get", format!("Read a {}", E::NAME)))
        .parameter(id_param())
        .parameter(query(
            "include_deleted",
            "Also find it in the trash",
            Type::Boolean,
        ))
        .parameter(header(
            "If-None-Match",
            "The ETag you hold; 304 while it is current",
        ))
        .response("200", one())
        .response(
            "304",
            ResponseBuilder::new().description("Not modified").build(),
        )
        .response("404", problem("No such record in your organization"));
    let patch_op = errors(op("update", format!("Patch a {}", E::NAME)))
        .parameter(id_param())
        .parameter(header(
            "If-Match",
            "The ETag read; 412 when the record changed since",
        ))
        .request_body(body(&patch_name))
        .response("200", one())
        .response("404", problem("No such record in your organization"))
        .response(
            "412",
            problem("The record changed since the ETag in If-Match"),
        );
    let delete_op = errors(op("delete", format!("Delete a {}", E::NAME)))
        .parameter(id_param())
        .parameter(query(
            "permanent",
            "Remove for good (company admins) instead of moving to the trash",
            Type::Boolean,
        ))
        .parameter(header(
            "If-Match",
            "The ETag read; 412 when the record changed since",
        ))
        .response("204", ResponseBuilder::new().description("Deleted").build())
        .response("404", problem("No such record in your organization"))
        .response(
            "409",
            problem("Other records still link to it (permanent delete)"),
        )
        .response(
            "412",
            problem("The record changed since the ETag in If-Match"),
        );
    let restore_op = errors(op(
        "restore",
        format!("Restore a {} from the trash", E::NAME),
    ))
    .parameter(id_param())
    .response("200", one())
    .response("404", problem("No such record in your organization"));

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
    if timeline {
        let timeline_op = errors(op("timeline", format!("The timeline of a {}", E::NAME)))
            .description(Some(
                "Its activities and event-log entries, newest first (trashed records keep theirs).",
            ))
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
            .response("200", ok("One page", "Timeline"))
            .response("404", problem("No such record in your organization"));
        paths.insert(
            format!("/{plural}/{{id}}/timeline"),
            PathItem::new(HttpMethod::Get, timeline_op),
        );
    }
}

/// An entity verb, `POST /{plural}/{id}/{verb}`, for its OpenAPI description.
pub(crate) struct Verb {
    /// The entity's path segment.
    pub(crate) plural: &'static str,
    /// The verb's path segment.
    pub(crate) verb: &'static str,
    /// One line on what it does.
    pub(crate) summary: &'static str,
    /// The request body's schema, if it takes one.
    pub(crate) request: Option<&'static str>,
    /// The response's schema.
    pub(crate) response: &'static str,
    /// When it answers 409.
    pub(crate) conflict: &'static str,
}

/// Describes an entity verb: its operation, its body and its answers.
pub(crate) fn describe_verb(doc: &mut OpenApi, v: &Verb) {
    let mut op = errors(operation(v.plural, v.verb, v.summary.to_owned()))
        .parameter(id_param())
        .response("200", ok("Done", v.response))
        .response("404", problem("No such record in your organization"))
        .response("409", problem(v.conflict));
    if let Some(schema) = v.request {
        op = op.request_body(body(schema));
    }
    doc.paths.paths.insert(
        format!("/{}/{{id}}/{}", v.plural, v.verb),
        PathItem::new(HttpMethod::Post, op),
    );
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

/// The errors every entity operation may answer.
fn errors(o: OperationBuilder) -> OperationBuilder {
    o.response("401", problem("Missing or invalid credentials"))
        .response("403", problem("The caller's role may not do this"))
        .response(
            "422",
            problem("Invalid input, with one entry per field in `errors`"),
        )
}

/// JSON content of a named schema.
fn json(schema: &str) -> Content {
    ContentBuilder::new()
        .schema(Some(reference(schema)))
        .build()
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
        .schema(Some(typed(Type::String, Some(KnownFormat::Uuid), false)))
        .build()
}
