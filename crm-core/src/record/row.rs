//! [`Record`]: an entity's own fields plus the columns every record shares.

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::id::Id;
use crate::organizations::OrganizationId;

/// The columns every record has besides `custom_fields`, in [`Record`]'s order (the order
/// [`Fields::SELECT`](crate::record::Fields::SELECT) lists them in and rows decode them by). Only the
/// library writes them: APIs refuse them in inputs, imports skip them, exports lead with them.
pub const COMMON_FIELDS: &[&str] = &[
    "id",
    "organization_id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "version",
    "is_deleted",
    "deleted_at",
    "deleted_by",
];

/// A stored record of entity `E`.
///
/// It dereferences to `E`, so `account.name` reads the entity's own field. It serializes flat:
/// the common columns and the entity's fields side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record<E> {
    /// Its id (UUIDv7).
    pub id: Id<E>,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// When it was created.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// Who created it (a user's or API key's id; `None` for the system).
    pub created_by: Option<Uuid>,
    /// Who last changed it.
    pub updated_by: Option<Uuid>,
    /// Optimistic-concurrency version: 1 on create, +1 on every write.
    pub version: i64,
    /// Whether it is in the trash (soft-deleted).
    pub is_deleted: bool,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Who soft-deleted it.
    pub deleted_by: Option<Uuid>,
    /// Values of the organization's custom fields.
    pub custom_fields: Map<String, Value>,
    /// The entity's own fields.
    #[serde(flatten)]
    pub fields: E,
}

/// Decodes an entity's own fields by position, from column `at` on, in
/// [`Fields::COLUMNS`](crate::record::Fields::COLUMNS) order; `record_type!` implements it.
#[doc(hidden)]
pub trait DecodeAt<'r, R>: Sized {
    /// The fields, read from columns `at`, `at + 1`, …
    ///
    /// # Errors
    /// The driver's, for a column missing or of another type.
    fn decode_at(row: &'r R, at: usize) -> Result<Self, sqlx::Error>;
}

/// Column `at` of `row`, decoded as `T`: for [`Record`]'s columns and [`DecodeAt`]'s.
///
/// Builds with debug assertions (the tests) check the column's type against `T` first, as
/// `Row::try_get` does; release builds decode without that check (`try_get_unchecked`). The
/// columns come from [`Fields::SELECT`](crate::record::Fields::SELECT), in an order a unit test
/// holds to the decoding order, and every entity's rows are decoded on both backends by the
/// test suite; the check built a list of candidate types per text column per row, a few percent
/// of the server's CPU on a list page (docs/benchmarks.md, "Decoding without the type check").
/// A mismatch still fails in release where the bytes cannot be decoded (a uuid's length, a
/// timestamp's, UTF-8), only without the type names in the error.
#[doc(hidden)]
#[inline]
pub fn decode_column<'r, R, T>(row: &'r R, at: usize) -> Result<T, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    if cfg!(debug_assertions) {
        row.try_get(at)
    } else {
        row.try_get_unchecked(at)
    }
}

/// Fields that decode by position from the rows of every compiled-in backend.
#[cfg(all(feature = "postgres", feature = "sqlite"))]
#[doc(hidden)]
pub trait DecodeFields:
    for<'r> DecodeAt<'r, sqlx::postgres::PgRow> + for<'r> DecodeAt<'r, sqlx::sqlite::SqliteRow>
{
}
#[cfg(all(feature = "postgres", feature = "sqlite"))]
impl<T> DecodeFields for T where
    T: for<'r> DecodeAt<'r, sqlx::postgres::PgRow> + for<'r> DecodeAt<'r, sqlx::sqlite::SqliteRow>
{
}

/// Fields that decode by position from the rows of every compiled-in backend.
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
#[doc(hidden)]
pub trait DecodeFields: for<'r> DecodeAt<'r, sqlx::postgres::PgRow> {}
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
impl<T> DecodeFields for T where T: for<'r> DecodeAt<'r, sqlx::postgres::PgRow> {}

/// Fields that decode by position from the rows of every compiled-in backend.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
#[doc(hidden)]
pub trait DecodeFields: for<'r> DecodeAt<'r, sqlx::sqlite::SqliteRow> {}
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
impl<T> DecodeFields for T where T: for<'r> DecodeAt<'r, sqlx::sqlite::SqliteRow> {}

/// By position, from a row read with [`Fields::SELECT`](crate::record::Fields::SELECT): sqlx's
/// derive looks every column up by name: a hash and a compare per column per row, about 4.5 %
/// of the server's CPU on a list page
/// (docs/benchmarks.md).
impl<'r, R, E> sqlx::FromRow<'r, R> for Record<E>
where
    R: sqlx::Row,
    E: DecodeAt<'r, R>,
    usize: sqlx::ColumnIndex<R>,
    Id<E>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    OrganizationId: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    sqlx::types::Json<Map<String, Value>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let custom: sqlx::types::Json<Map<String, Value>> = decode_column(row, 10)?;
        Ok(Self {
            id: decode_column(row, 0)?,
            organization_id: decode_column(row, 1)?,
            created_at: decode_column(row, 2)?,
            updated_at: decode_column(row, 3)?,
            created_by: decode_column(row, 4)?,
            updated_by: decode_column(row, 5)?,
            version: decode_column(row, 6)?,
            is_deleted: decode_column(row, 7)?,
            deleted_at: decode_column(row, 8)?,
            deleted_by: decode_column(row, 9)?,
            custom_fields: custom.0,
            fields: E::decode_at(row, 11)?,
        })
    }
}

impl<E> Deref for Record<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.fields
    }
}

impl<E> DerefMut for Record<E> {
    fn deref_mut(&mut self) -> &mut E {
        &mut self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Entity, Fields};
    use crate::{EntityKind, EntityVisitor};

    /// `SELECT` lists the columns in the order `Record::from_row` and `decode_at` read them.
    #[test]
    fn every_entity_selects_its_columns_in_decoding_order() {
        struct Select;
        impl EntityVisitor for Select {
            type Output = (&'static str, String);
            fn visit<E: Entity>(self) -> Self::Output {
                let mut expected: Vec<&str> = COMMON_FIELDS.to_vec();
                expected.push("custom_fields");
                expected.extend(<E as Fields>::COLUMNS.iter().map(|c| c.name));
                (<E as Fields>::SELECT, expected.join(", "))
            }
        }
        for kind in EntityKind::ALL {
            let (select, expected) = kind.visit(Select);
            assert_eq!(select, expected, "{kind:?}");
        }
    }
}
