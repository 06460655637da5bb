//! Typed custom fields: per organization and entity, which keys exist, of what type, required
//! or not, with which options and default.
//!
//! Every custom field value written to a record is checked against these definitions (unknown
//! keys are refused) and normalized (dates as `YYYY-MM-DD`, date-times as UTC with microseconds),
//! and list filters compare by the definition's type. Definitions are read through an
//! in-process cache (30 s; a write in this process refreshes it at once; other processes see
//! the change within the TTL).
//!
//! - `definition` — the definitions themselves (types, inputs);
//! - `values` — the rules every stored value follows (keys, sizes, merging);
//! - `typed` — the checks a definition brings to a value, and the cache of definitions;
//! - `service` — [`CustomFields`], which defines, changes and archives them;
//! - `computation`, `computed`, `formula`, `rollup`, `backfill` — computed fields: formulas evaluated in the write path,
//!   roll-ups refreshed in the transaction of every write to the records they count.

mod backfill;
mod computation;
mod computed;
mod definition;
mod formula;
mod rollup;
mod service;
mod typed;
mod values;

pub use computation::{Computed, FormulaSpec, MAX_COMPUTED_FIELDS, RollupFunction, RollupSpec};
pub use definition::{
    CustomFieldDefinition, CustomFieldId, CustomFieldPatch, CustomFieldType, NewCustomField,
};
pub use formula::{MAX_FORMULA_DEPTH, MAX_FORMULA_LENGTH};
pub(crate) use rollup::{linked_before_removal, refresh_for};
pub use service::CustomFields;
pub(crate) use typed::{DefinitionCache, Definitions, load, new_cache, normalize};
pub(crate) use values::CustomValues;
