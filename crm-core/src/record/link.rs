//! Links between records: a table other records may point at ([`Referable`]), and the column
//! kind of an [`Id`] that points at one.

use super::fields::{FieldType, Kind};
use crate::id::Id;

/// A table other records may point at (`account_id`, `owner_id`).
pub trait Referable {
    /// Its table.
    const TABLE: &'static str;
    /// Its singular name, for the `NotFound` a dangling link answers.
    const NAME: &'static str;
    /// Whether it has `is_deleted` (a link to a soft-deleted record is refused).
    const SOFT_DELETE: bool;
}

impl<E: Referable> FieldType for Id<E> {
    const KIND: Kind = Kind::Ref {
        table: E::TABLE,
        entity: E::NAME,
        soft_delete: E::SOFT_DELETE,
    };
    fn value(&self) -> super::fields::FieldValue<'_> {
        super::fields::FieldValue::Uuid(self.uuid())
    }
}
