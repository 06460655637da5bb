//! Column metadata derived from Rust types, and the [`record_type!`] macro that declares an
//! entity's columns once and derives its create and patch inputs from them.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::storage::Arg;
use crate::time::YEARS;

/// How a column's values are stored, compared and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// A 64-bit integer (counts, money in minor units).
    Integer,
    /// A boolean.
    Bool,
    /// A UUID that is not a link.
    Uuid,
    /// A point in time (UTC).
    Timestamp,
    /// A calendar date (`YYYY-MM-DD`).
    Date,
    /// A JSON document (line items); not filterable.
    Json,
    /// A link to a record of the same organization.
    Ref {
        /// The target table.
        table: &'static str,
        /// The target's singular name.
        entity: &'static str,
        /// Whether the target can be soft-deleted.
        soft_delete: bool,
    },
}

impl Kind {
    /// Whether `contains` / `starts_with` apply.
    pub fn is_text(self) -> bool {
        matches!(self, Kind::Text)
    }

    /// What a JSON value must look like for this kind, for error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Integer => "an integer",
            Kind::Bool => "a boolean",
            Kind::Uuid | Kind::Ref { .. } => "a UUID string",
            Kind::Timestamp => "an RFC 3339 date-time string (years 1 to 9999)",
            Kind::Date => "a date string (YYYY-MM-DD, years 1 to 9999)",
            Kind::Json => "a JSON value",
        }
    }

    /// The bind value for a JSON value of this kind (`null` binds a typed NULL); `None` when
    /// the value does not fit.
    pub(crate) fn to_arg(self, v: &Value) -> Option<Arg> {
        Some(match (self, v) {
            (Kind::Text, Value::Null) => Arg::Text(None),
            (Kind::Text, Value::String(s)) => Arg::Text(Some(s.clone())),
            (Kind::Integer, Value::Null) => Arg::Int(None),
            (Kind::Integer, Value::Number(n)) => Arg::Int(Some(n.as_i64()?)),
            (Kind::Bool, Value::Null) => Arg::Bool(None),
            (Kind::Bool, Value::Bool(b)) => Arg::Bool(Some(*b)),
            (Kind::Uuid | Kind::Ref { .. }, Value::Null) => Arg::Uuid(None),
            (Kind::Uuid | Kind::Ref { .. }, Value::String(s)) => Arg::Uuid(Some(s.parse().ok()?)),
            (Kind::Timestamp, Value::Null) => Arg::Time(None),
            (Kind::Timestamp, Value::String(s)) => {
                let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
                YEARS.contains(&t.year()).then_some(Arg::Time(Some(t)))?
            }
            (Kind::Date, Value::Null) => Arg::Date(None),
            (Kind::Date, Value::String(s)) => {
                let d: chrono::NaiveDate = s.parse().ok()?;
                YEARS.contains(&d.year()).then_some(Arg::Date(Some(d)))?
            }
            (Kind::Json, Value::Null) => Arg::Json(None),
            (Kind::Json, v) => Arg::Json(Some(v.clone())),
            _ => return None,
        })
    }
}

/// A column of an entity: a whitelisted identifier plus how to treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column (and JSON field) name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// Whether lists may sort on it (only indexed columns are).
    pub sortable: bool,
    /// Whether only the library writes it (statuses, numbers, totals): it is not part of the
    /// entity's create and patch inputs.
    pub readonly: bool,
    /// Whether a create may leave it out and get a default (enums start at their first value,
    /// JSON documents empty).
    pub defaulted: bool,
    /// The allowed values of a text enum (empty for free text).
    pub choices: &'static [&'static str],
    /// Whether [`Column::only`] narrowed `choices` below what the type allows: the record
    /// machinery then checks the value on every write.
    pub narrowed: bool,
    /// The longest text allowed, in characters ([`Column::max_length`]).
    pub max_length: Option<usize>,
    /// The format text values must have ([`Column::email`], [`Column::currency`]).
    pub format: Option<Format>,
    /// The smallest and largest integer allowed ([`Column::range`]).
    pub range: Option<(i64, i64)>,
    /// Whether it names the record's owner ([`Column::owner`]).
    pub owner: bool,
    /// Whether its values identify a person ([`Column::personal`]).
    pub personal: bool,
    /// Whether it links to the same person in another entity ([`Column::same_person`]).
    pub same_person: bool,
    /// Whether full-text search reads it ([`Column::searchable`]).
    pub searchable: bool,
    /// Whether it is part of the title a search hit shows ([`Column::title`]).
    pub title: bool,
}

/// A format text values must have: checked on every write, documented in OpenAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An email address (see [`Validator::email`](crate::Validator::email)).
    Email,
    /// An ISO 4217 currency code: three upper-case letters.
    Currency,
}

impl Column {
    /// A column of Rust type `T`.
    pub const fn of<T: FieldType>(name: &'static str) -> Self {
        Self {
            name,
            kind: T::KIND,
            nullable: T::NULLABLE,
            sortable: false,
            readonly: false,
            defaulted: T::DEFAULTED,
            choices: T::CHOICES,
            narrowed: false,
            max_length: None,
            format: None,
            range: None,
            owner: false,
            personal: false,
            same_person: false,
            searchable: false,
            title: false,
        }
    }

    /// Marks it written by the library only.
    pub const fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }

    /// Marks it sortable.
    pub const fn sortable(mut self) -> Self {
        self.sortable = true;
        self
    }

    /// Narrows the allowed values of a text enum to `choices` (a subset of its type's); the
    /// record machinery refuses any other value on create and update (422 `invalid_choice`).
    pub const fn only(mut self, choices: &'static [&'static str]) -> Self {
        self.choices = choices;
        self.narrowed = true;
        self
    }

    /// Caps a text at `chars` characters (422 `too_long`; `maxLength` in OpenAPI).
    pub const fn max_length(mut self, chars: usize) -> Self {
        self.max_length = Some(chars);
        self
    }

    /// Requires an email address (422 `invalid_format`; `format: email` in OpenAPI).
    pub const fn email(mut self) -> Self {
        self.format = Some(Format::Email);
        self
    }

    /// Requires an ISO 4217 currency code (422 `invalid_format`; a pattern in OpenAPI).
    pub const fn currency(mut self) -> Self {
        self.format = Some(Format::Currency);
        self
    }

    /// Bounds an integer to `min..=max` (422 `out_of_range`; `minimum`/`maximum` in OpenAPI).
    pub const fn range(mut self, min: i64, max: i64) -> Self {
        self.range = Some((min, max));
        self
    }

    /// Marks text that identifies a person (names, email, phone numbers): erasing the person
    /// also blanks the event-log entries and stored responses elsewhere that hold it, and
    /// refuses while a linked record still holds their name.
    pub const fn personal(mut self) -> Self {
        self.personal = true;
        self
    }

    /// Marks text full-text search reads ([`Tenant::search`](crate::Tenant::search)). The
    /// search index is built by the migrations from these columns (a test compares them): a
    /// column newly marked needs a migration that rebuilds its entity's index.
    pub const fn searchable(mut self) -> Self {
        self.searchable = true;
        self
    }

    /// Marks text that names the record in a search hit (its [`SearchHit::title`](crate::SearchHit::title)
    /// joins the record's title columns, in order); implies [`Column::searchable`].
    pub const fn title(mut self) -> Self {
        self.title = true;
        self.searchable = true;
        self
    }

    /// Marks a link to the same person in another entity (a converted lead's contact): erasing
    /// either record erases both.
    pub const fn same_person(mut self) -> Self {
        self.same_person = true;
        self
    }

    /// Marks the link to the user who owns the record: [`Entity::owner`](crate::Entity::owner)
    /// reads it, and owners may soft-delete and restore their records.
    pub const fn owner(mut self) -> Self {
        self.owner = true;
        self
    }
}

/// A field's value as the record machinery checks it, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// No value.
    Null,
    /// Text (also a text enum's name).
    Text(&'a str),
    /// An integer.
    Integer(i64),
    /// A UUID (also a link).
    Uuid(uuid::Uuid),
    /// A calendar date.
    Date(chrono::NaiveDate),
    /// A point in time.
    Timestamp(DateTime<Utc>),
    /// Anything the column checks do not look at (booleans, JSON).
    Other,
}

/// A Rust type that maps to a column kind.
pub trait FieldType {
    /// Its kind.
    const KIND: Kind;
    /// Whether it is an `Option`.
    const NULLABLE: bool = false;
    /// Whether a missing value takes a meaningful default.
    const DEFAULTED: bool = false;
    /// The allowed values, for text enums.
    const CHOICES: &'static [&'static str] = &[];

    /// The value, for the column checks.
    fn value(&self) -> FieldValue<'_>;
}

impl FieldType for String {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }
}
impl FieldType for i64 {
    const KIND: Kind = Kind::Integer;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Integer(*self)
    }
}
impl FieldType for bool {
    const KIND: Kind = Kind::Bool;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Other
    }
}
impl FieldType for uuid::Uuid {
    const KIND: Kind = Kind::Uuid;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Uuid(*self)
    }
}
impl FieldType for chrono::DateTime<chrono::Utc> {
    const KIND: Kind = Kind::Timestamp;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Timestamp(*self)
    }
}
impl FieldType for chrono::NaiveDate {
    const KIND: Kind = Kind::Date;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Date(*self)
    }
}
impl<T> FieldType for sqlx::types::Json<T> {
    const KIND: Kind = Kind::Json;
    const DEFAULTED: bool = true;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Other
    }
}
impl<T: FieldType> FieldType for Option<T> {
    const KIND: Kind = T::KIND;
    const NULLABLE: bool = true;
    const CHOICES: &'static [&'static str] = T::CHOICES;
    fn value(&self) -> FieldValue<'_> {
        self.as_ref().map_or(FieldValue::Null, T::value)
    }
}

/// A wire type that describes itself: `utoipa::ToSchema` with feature `openapi`, any type
/// without it. Entities and their inputs are `Described`, so that code generic over any entity
/// (an [`EntityVisitor`](crate::EntityVisitor)) can document them.
#[cfg(feature = "openapi")]
pub trait Described: utoipa::ToSchema {}
#[cfg(feature = "openapi")]
impl<T: utoipa::ToSchema> Described for T {}
/// A wire type that describes itself: `utoipa::ToSchema` with feature `openapi`, any type
/// without it.
#[cfg(not(feature = "openapi"))]
pub trait Described {}
#[cfg(not(feature = "openapi"))]
impl<T> Described for T {}

/// The columns of an entity and its input types; implemented by [`record_type!`](crate::record_type).
pub trait Fields: Described {
    /// The entity's own columns, in declaration order.
    const COLUMNS: &'static [Column];
    /// The column list a [`Record`](crate::Record) of this entity is read with, in the order
    /// it decodes them by position: [`COMMON_FIELDS`](crate::record::COMMON_FIELDS),
    /// `custom_fields`, then [`Fields::COLUMNS`]. Statements name it instead of `*`, so that
    /// rows decode by index, not by looking each column's name up.
    const SELECT: &'static str;
    /// The input of `create`: the same fields plus `custom_fields`.
    type New: serde::Serialize + serde::de::DeserializeOwned + Described + Clone + Send + Sync;
    /// The input of `update`: every field optional; `Some(None)` clears a nullable field.
    type Patch: serde::Serialize + serde::de::DeserializeOwned + Described + Clone + Send + Sync;

    /// Calls `f` with each column and this record's value of it, in [`Fields::COLUMNS`] order
    /// (no allocation: the column checks run on every write).
    fn for_each_value<'a>(&'a self, f: impl FnMut(&'static Column, FieldValue<'a>));
}

/// The value of the column marked [`Column::owner`], if any.
pub(crate) fn owner<F: Fields>(record: &F) -> Option<uuid::Uuid> {
    let mut owner = None;
    record.for_each_value(|c, value| {
        if c.owner
            && let FieldValue::Uuid(id) = value
        {
            owner = Some(id);
        }
    });
    owner
}

/// `LeadStatus` → `lead_status`: the field name of a [`text_enum!`](crate::text_enum) type in
/// its parse errors.
#[doc(hidden)]
pub fn snake_case(type_name: &str) -> String {
    let mut out = String::with_capacity(type_name.len() + 4);
    for (i, c) in type_name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Deserializes a patch field that is present: `"x": null` becomes `Some(None)` for a nullable
/// field (clear it) and an error for a required one; an absent field stays `None` (keep it).
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Declares an entity's own columns once and derives from them:
///
/// - the entity struct (decoded from rows, serialized in responses);
/// - its create input `New…` (the editable fields plus `custom_fields`; unknown fields
///   rejected);
/// - its patch input `…Patch` (each editable field optional; for nullable fields `Some(None)`
///   clears);
/// - [`Fields`], with column metadata taken from the field types.
///
/// Flags after a field are [`Column`]'s builder methods, and the one place a field's constraints
/// are declared: the record machinery checks them on every write and OpenAPI documents them.
/// `[sortable]` for a field lists may sort on (give it an index), `[only(LIST)]` to narrow a text
/// enum's allowed values, `[max_length(N)]`, `[email]`, `[currency]`, `[range(MIN, MAX)]`,
/// `[owner]` for the user who owns the record, `[personal]` for text that identifies a person and
/// `[same_person]` for a link to the same person elsewhere (both for erasure), `[searchable]`
/// for text full-text search reads and `[title]` for text that names a search hit. Every text field needs a `max_length` (a test
/// holds every entity to it); a required (non-`Option`) free-text field must not be blank, and
/// no text may hold a NUL character or a date a year outside 1–9999. Fields in the
/// optional `readonly { … }` block are written by the library only (statuses, numbers, totals):
/// they are in the entity but not in its inputs, and start at their `Default`.
///
/// Attributes on an editable field (doc comments, `#[cfg_attr(feature = "openapi",
/// schema(…))]`) go on that field in all three structs.
///
/// With feature `openapi` the three structs derive `utoipa::ToSchema` (read-only fields are
/// marked `readOnly`; a patch field is described as the field's own type, so it takes `null`
/// only where the field is nullable). `cfg_attr(feature = "openapi")` in an exported macro is
/// evaluated in the crate that invokes it: every invocation is inside crm-core, whose feature
/// it is; a crate invoking it elsewhere needs a feature of that name (and `utoipa`) too.
///
/// ```ignore
/// crm_core::record_type! {
///     /// A company.
///     pub struct Account / NewAccount / AccountPatch {
///         /// Its name.
///         name: String [sortable],
///         domain: Option<String>,
///     }
///     readonly {
///         /// Set by the library.
///         score: i64,
///     }
/// }
/// ```
#[macro_export]
macro_rules! record_type {
    (
        $(#[doc = $doc:expr])*
        pub struct $name:ident / $new:ident / $patch:ident {
            $(
                $(#[$fattr:meta])*
                $field:ident : $ty:ty $([$($flag:ident $(($($arg:expr),*))?),*])?
            ),* $(,)?
        }
        $(
            readonly {
                $(
                    $(#[doc = $rdoc:expr])*
                    $rfield:ident : $rty:ty $([$($rflag:ident $(($($rarg:expr),*))?),*])?
                ),* $(,)?
            }
        )?
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name {
            $(
                $(#[$fattr])*
                pub $field: $ty,
            )*
            $($(
                $(#[doc = $rdoc])*
                #[serde(default)]
                #[cfg_attr(feature = "openapi", schema(read_only))]
                pub $rfield: $rty,
            )*)?
        }

        #[doc = concat!("Input to create a [`", stringify!($name), "`]: its fields plus custom fields.")]
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $new {
            $(
                $(#[$fattr])*
                #[serde(default)]
                pub $field: $ty,
            )*
            /// Values of the organization's custom fields, by key.
            #[serde(default)]
            pub custom_fields: serde_json::Map<String, serde_json::Value>,
        }

        #[doc = concat!(
            "A partial update of a [`", stringify!($name), "`]: absent fields are kept; for ",
            "optional fields `Some(None)` clears the value. In `custom_fields`, a key set to ",
            "`null` is removed and other keys are merged."
        )]
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $patch {
            $(
                $(#[$fattr])*
                // Described as the field itself: `null` only where the field is nullable.
                #[cfg_attr(feature = "openapi", schema(value_type = $ty))]
                #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "::crm_core::record::present")]
                pub $field: Option<$ty>,
            )*
            /// Custom field values to merge (`null` removes a key).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
        }

        impl $crate::record::Fields for $name {
            const COLUMNS: &'static [$crate::record::Column] = &[
                $(
                    $crate::record::Column::of::<$ty>(stringify!($field)) $($(.$flag($($($arg),*)?))*)?,
                )*
                $($(
                    $crate::record::Column::of::<$rty>(stringify!($rfield)).readonly() $($(.$rflag($($($rarg),*)?))*)?,
                )*)?
            ];
            const SELECT: &'static str = concat!(
                "id, organization_id, created_at, updated_at, created_by, updated_by, version, ",
                "is_deleted, deleted_at, deleted_by, custom_fields"
                $(, ", ", stringify!($field))*
                $($(, ", ", stringify!($rfield))*)?
            );
            type New = $new;
            type Patch = $patch;

            fn for_each_value<'a>(
                &'a self,
                mut f: impl FnMut(&'static $crate::record::Column, $crate::record::FieldValue<'a>),
            ) {
                let mut columns = <Self as $crate::record::Fields>::COLUMNS.iter();
                $(
                    if let Some(c) = columns.next() {
                        f(c, $crate::record::FieldType::value(&self.$field));
                    }
                )*
                $($(
                    if let Some(c) = columns.next() {
                        f(c, $crate::record::FieldType::value(&self.$rfield));
                    }
                )*)?
            }
        }

        impl $crate::record::WriteFields for $name {
            fn write_fields(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
                $(
                    $crate::record::write_entry(
                        out,
                        concat!(",\"", stringify!($field), "\":"),
                        &self.$field,
                    )?;
                )*
                $($(
                    $crate::record::write_entry(
                        out,
                        concat!(",\"", stringify!($rfield), "\":"),
                        &self.$rfield,
                    )?;
                )*)?
                Ok(())
            }
        }

        impl<'r, R: sqlx::Row> $crate::record::DecodeAt<'r, R> for $name
        where
            usize: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
            $($($rty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*)?
        {
            #[allow(unused_assignments, reason = "the last column's index is not read")]
            fn decode_at(row: &'r R, mut at: usize) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    $($field: {
                        let v = $crate::record::decode_column(row, at)?;
                        at += 1;
                        v
                    },)*
                    $($($rfield: {
                        let v = $crate::record::decode_column(row, at)?;
                        at += 1;
                        v
                    },)*)?
                })
            }
        }
    };
}

/// Declares an enum stored as text (`status`, `source`, `kind`, roles, event actions…): serde
/// and SQL use the given names, it parses from them, orders by declaration, and it is a text
/// column for filters.
///
/// With feature `openapi` it derives `utoipa::ToSchema` (a string enum of the given names; see
/// [`record_type!`](crate::record_type) on where that feature is evaluated).
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $vdoc:expr])*
                $variant:ident = $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
            serde::Deserialize,
        )]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                #[serde(rename = $text)]
                // utoipa does not read serde's rename through the macro's literal.
                #[cfg_attr(feature = "openapi", schema(rename = $text))]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialized name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl Default for $name {
            /// The first value declared.
            fn default() -> Self {
                Self::ALL[0]
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> Result<Self, $crate::Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => {
                        let field = $crate::record::snake_case(stringify!($name));
                        let message = format!(
                            "unknown {} `{other}`; expected one of: {}",
                            field.replace('_', " "),
                            [$($text),+].join(", ")
                        );
                        Err($crate::Error::invalid(field, "invalid_choice", message))
                    }
                }
            }
        }

        impl $crate::record::FieldType for $name {
            const KIND: $crate::record::Kind = $crate::record::Kind::Text;
            const DEFAULTED: bool = true;
            const CHOICES: &'static [&'static str] = &[$($text),+];
            fn value(&self) -> $crate::record::FieldValue<'_> {
                $crate::record::FieldValue::Text(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                self.as_str().to_owned().encode_by_ref(buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, DB>>::decode(value)?.parse::<$name>()?)
            }
        }
    };
}
