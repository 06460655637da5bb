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

//!
//! Files: `entity` (the [`Entity`] trait and the write hook's context), `fields` (column
//! metadata and [`record_type!`](crate::record_type)), `checks` (the declared column constraints,
//! checked on every write), `link` (links between records, and checking that they resolve),
//! `row` ([`Record`]: the common columns), `json` ([`WriteJson`]: records written as JSON), `values` (a record as column values), `query` (the
//! list vocabulary), `compile` (a list as SQL), `cursor` (keyset cursors), `page` ([`Page`]),
//! `service` ([`Records`] and its reads), `create`, `update` (patches, verbs' changes and the one
//! write path), `trash` (soft delete, restore, purge), `ownership` (what owning a record
//! permits), `erasure`, `history` (field history and `as_of`), `keys` (unique custom field
//! values and duplicate match keys), `rebuild_keys` (match keys of records older than them),
//! `merge` (merging duplicates), `redirect` (merged ids).

mod checks;
mod compile;
mod create;
mod cursor;
mod entity;
mod erasure;
mod fields;
mod history;
mod json;
mod keys;
mod link;
mod merge;
mod ownership;
mod page;
mod projection;
mod query;
mod rebuild_keys;
mod redirect;
mod row;
mod service;
mod trash;
mod update;
mod values;
mod visible;

pub(crate) use compile::{push_condition, reach_scope};
pub use create::{Created, Imported};
pub use entity::{Entity, Operation, WriteContext};
pub use erasure::{ErasedRecord, Erasure};
pub use fields::{
    Column, Described, FieldType, FieldValue, Fields, Format, Kind, present, snake_case,
};
pub use history::{FieldChange, MAX_HISTORY_PAGE};
pub use json::{WriteFields, WriteJson, write_entry};
pub use keys::{Duplicate, DuplicatePolicy, MatchOn, MatchRule};
pub(crate) use keys::{backfill_unique, drop_unique, may_be_unique};
pub use link::Referable;
pub use merge::{MAX_MERGE, Merge};
pub use page::Page;
pub(crate) use projection::redact;
pub use query::{
    Condition, DEFAULT_LIMIT, Deleted, Direction, Filter, ListQuery, MAX_DEPTH, MAX_FILTERS,
    MAX_HOPS, MAX_IN_VALUES, MAX_LIMIT, Op, Related, Sort,
};
pub use row::{COMMON_FIELDS, DecodeAt, DecodeFields, Record, decode_column};
pub use service::Records;
pub use trash::PurgeReport;
pub(crate) use visible::{activity_scope, readable, screen_events};
