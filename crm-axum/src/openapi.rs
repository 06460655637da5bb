//! The OpenAPI 3.1 description: annotated routes via `utoipa-axum`, and the entity routes, whose
//! handlers are generic, described here from each entity's column list.

use crm_core::Entity;
use crm_core::record::{Column, Kind};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder, Schema};

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
}

/// The document's fixed parts: info, security schemes, the problem schema.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "abetworks CRM API", description = "The REST API of abetworks CRM. Errors are RFC 9457 problem+json.", license(name = "MIT OR Apache-2.0")),
    components(schemas(
        crate::error::Problem, crate::error::ProblemField,
        crate::routes::records::SearchRequest, crate::routes::records::BatchRequest,
        crate::routes::records::BatchResponse,
    )),
    tags(
        (name = "auth", description = "Sign-up, sign-in, tokens"),
        (name = "users", description = "Users of the caller's organization"),
        (name = "organizations", description = "Organizations (super-admins)"),
        (name = "api-keys", description = "API keys (company admins)"),
        (name = "webhooks", description = "Inbound webhooks (API key)"),
    )
)]
pub(crate) struct ApiDoc;

/// Adds the security schemes: a JWT bearer and an API key bearer.
pub(crate) fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
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

fn column_schema(c: &Column, nullable: bool) -> ObjectBuilder {
    let (t, f) = match c.kind {
        Kind::Text => (Type::String, None),
        Kind::Integer => (Type::Integer, Some(KnownFormat::Int64)),
        Kind::Bool => (Type::Boolean, None),
        Kind::Uuid | Kind::Ref { .. } => (Type::String, Some(KnownFormat::Uuid)),
        Kind::Timestamp => (Type::String, Some(KnownFormat::DateTime)),
        Kind::Date => (Type::String, Some(KnownFormat::Date)),
        // A JSON document (an invoice's line items): any JSON value.
        Kind::Json => return ObjectBuilder::new(),
    };
    typed(t, f, nullable)
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
pub(crate) fn describe_entity<E: Entity>(doc: &mut OpenApi, plural: &str) {
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
            "Input to create a {}. Unknown and server-owned fields are rejected (422).",
            E::NAME
        )));
    let mut patch = ObjectBuilder::new()
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(
            "Absent fields are kept; `null` clears an optional field; custom fields merge key by key.",
        ));
    for c in E::COLUMNS {
        record = record
            .property(c.name, column_schema(c, c.nullable))
            .required(c.name);
        new = new.property(c.name, column_schema(c, c.nullable));
        if !c.nullable {
            new = new.required(c.name);
        }
        patch = patch.property(c.name, column_schema(c, c.nullable));
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

    let tag = plural.to_owned();
    let op = |id: &str, summary: String| {
        OperationBuilder::new()
            .tag(tag.clone())
            .operation_id(Some(format!("{id}_{plural}")))
            .summary(Some(summary))
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
    };
    let json = |schema: &str| {
        ContentBuilder::new()
            .schema(Some(reference(schema)))
            .build()
    };
    let ok = |desc: &str, schema: &str| {
        ResponseBuilder::new()
            .description(desc)
            .content("application/json", json(schema))
            .build()
    };
    let problem = |desc: &str| {
        ResponseBuilder::new()
            .description(desc)
            .content(PROBLEM_JSON, json("Problem"))
            .build()
    };
    let body = |schema: &str| {
        Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json(schema))
                .build(),
        )
    };
    let id_param = || {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(uuid(false)))
            .build()
    };
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
    let errors = |o: OperationBuilder| {
        o.response("401", problem("Missing or invalid credentials"))
            .response("403", problem("The caller's role may not do this"))
            .response(
                "422",
                problem("Invalid input, with one entry per field in `errors`"),
            )
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
}
