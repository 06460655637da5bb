//! OpenAPI schemas of the types that cannot derive `utoipa::ToSchema` (feature `openapi`): typed
//! ids, [`Record`] (its entity's fields flattened beside the common columns) and invoice line
//! items (stored as [`sqlx::types::Json`], a foreign type).
//!
//! This describes data only; HTTP layers decide where it is sent.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::{__dev::ComposeSchema, PartialSchema, ToSchema};

use crate::entities::LineItem;
use crate::id::Id;
use crate::record::{Column, Format, Record};

/// A string of the given format, for the common columns.
fn string(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
}

/// `T` or `null`.
fn nullable(t: Type, format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([t, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(format)))
}

/// `Id<E>` is sent as the plain UUID string; its schema is named `{E}Id` (`AccountId`).
impl<E: ToSchema> ComposeSchema for Id<E> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        string(KnownFormat::Uuid)
            .description(Some(format!("{} id (a UUID)", E::name())))
            .into()
    }
}

impl<E: ToSchema> ToSchema for Id<E> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("{}Id", E::name()))
    }
}

/// A stored record: the columns every record has, then the entity's own fields, in one flat
/// object (as it serializes). Every property is always present. Named `Record_{E}` wherever it is
/// referenced, as utoipa names generic schemas.
impl<E: ToSchema> ComposeSchema for Record<E> {
    fn compose(mut generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        let fields = if generics.is_empty() {
            E::schema()
        } else {
            generics.swap_remove(0)
        };
        let uuid = || string(KnownFormat::Uuid);
        let time = || string(KnownFormat::DateTime);
        let mut record = ObjectBuilder::new()
            .description(Some(format!(
                "A stored {}: the common columns, its own fields and its custom fields",
                E::name()
            )))
            .property("id", uuid().description(Some("Its id (UUIDv7)")))
            .property("organization_id", uuid())
            .property("created_at", time())
            .property("updated_at", time())
            .property("created_by", nullable(Type::String, KnownFormat::Uuid))
            .property("updated_by", nullable(Type::String, KnownFormat::Uuid))
            .property(
                "version",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .description(Some("1 on create, +1 on every write; the `ETag`")),
            )
            .property(
                "is_deleted",
                ObjectBuilder::new().schema_type(Type::Boolean),
            )
            .property("deleted_at", nullable(Type::String, KnownFormat::DateTime))
            .property("deleted_by", nullable(Type::String, KnownFormat::Uuid))
            .property(
                "custom_fields",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("Values of the organization's custom fields, by key")),
            );
        match fields {
            RefOr::T(Schema::Object(own)) => {
                for (name, schema) in own.properties {
                    record = record.property(name, schema);
                }
            }
            // Not an object of its own (never, for `record_type!` entities): keep it whole.
            other => {
                return AllOfBuilder::new()
                    .item(required_all(record.build()))
                    .item(other)
                    .into();
            }
        }
        required_all(record.build()).into()
    }
}

/// Marks every property required: a record serializes all of them, `null` or not.
fn required_all(mut o: utoipa::openapi::schema::Object) -> utoipa::openapi::schema::Object {
    o.required = o.properties.keys().cloned().collect();
    o
}

impl<E: ToSchema> ToSchema for Record<E> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Record")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        E::schemas(schemas);
    }
}

/// The schema of an invoice's `line_items`: an array of [`LineItem`] (each line inline, so the
/// invoice schemas stand alone).
pub(crate) fn line_items() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(LineItem::schema())
        .description(Some(
            "The lines, in order (at most 500); the library computes their amounts",
        ))
}

/// What activities attach to: the kinds of the registry with a timeline, as a string enum.
/// The schema of [`ApiKeyScopes`](crate::auth::ApiKeyScopes): an array of scope names, every
/// one derived from the registry (`all`, `forms`, `<entity>:read`, `<entity>:write`).
pub fn api_key_scopes() -> Schema {
    let names = crate::auth::ApiKeyScope::every()
        .into_iter()
        .map(|s| s.to_string());
    Schema::Array(
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names)),
            )
            .build(),
    )
}

pub(crate) fn attachable_kinds() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                crate::entities::EntityKind::WITH_TIMELINE.iter().copied(),
            ))
            .build(),
    )
}

/// Documents on an entity's object schema (the entity, its record, its create or patch input)
/// the constraints its [`record_type!`](crate::record_type) declares: `maxLength`,
/// `format: email`, the currency `pattern`, `minimum`/`maximum`. The same [`Column`] flags the
/// record machinery checks on every write, so the document cannot promise other limits.
pub fn document_columns(columns: &[Column], schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    for c in columns {
        let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(c.name) else {
            continue;
        };
        if c.max_length.is_some() {
            p.max_length = c.max_length;
        }
        match c.format {
            Some(Format::Email) => {
                p.format = Some(SchemaFormat::KnownFormat(KnownFormat::Email));
            }
            Some(Format::Currency) => p.pattern = Some("^[A-Z]{3}$".to_owned()),
            None => {}
        }
        if let Some((min, max)) = c.range {
            let number = |n: i64| isize::try_from(n).ok().map(utoipa::Number::Int);
            p.minimum = number(min);
            p.maximum = if max == i64::MAX { None } else { number(max) };
        }
    }
}
