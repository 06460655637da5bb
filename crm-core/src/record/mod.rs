//! The record machinery, written once for every CRM entity.
//!
//! An entity declares only what is its own: its columns (with [`record_type!`](crate::record_type)), its checks and
//! its verbs ([`Entity`]). Everything else is here and shared:
//!
//! - [`Records`]: create, get, patch-style update, soft delete, restore, purge, with optimistic
//!   versions, audit columns, permission checks and an event in the same transaction;
//! - [`ListQuery`]: filters on standard and custom fields, sorting with the id as tie-break, and
//!   keyset (cursor) pagination;
//! - custom fields stored as JSON, merged key by key on update.

mod cursor;
mod custom_fields;
mod entity;
mod erasure;
mod fields;
mod list;
mod row;
mod service;

pub use entity::{Entity, Operation, Referable, WriteContext};
pub use erasure::Erasure;
pub(crate) use erasure::Referrer;
pub use fields::{Column, FieldType, Fields, Kind, present};
pub use list::{
    Condition, DEFAULT_LIMIT, Deleted, Direction, Filter, ListQuery, MAX_DEPTH, MAX_FILTERS,
    MAX_IN_VALUES, MAX_LIMIT, Op, Page, Sort,
};
pub use row::{COMMON_FIELDS, Record};
pub use service::{PurgeReport, Records};

/// Whether `key` is a valid custom field key (`[a-z][a-z0-9_]{0,62}`).
pub(crate) fn is_custom_field_key(key: &str) -> bool {
    custom_fields::CustomValues::is_valid_key(key)
}
