//! The `computed` part of a custom field definition, as callers write it: a formula over the
//! record's own fields, or a roll-up of a related entity's records. What it must satisfy and
//! how it runs are in `computed`, `formula` and `rollup`.

use serde::{Deserialize, Serialize};

use crate::record::Condition;

/// Most computed fields (not archived) one entity may have in one organization.
pub const MAX_COMPUTED_FIELDS: usize = 20;

/// How a computed custom field gets its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Computed {
    /// An expression over the record's own fields, evaluated whenever the record is written.
    Formula(FormulaSpec),
    /// An aggregate of the live records of another entity that link to this record.
    Rollup(RollupSpec),
}

/// A formula: see the crate documentation of custom fields for the language (field references
/// by column name or as custom_fields.key, arithmetic, & for text, comparisons, and/or/not,
/// if, coalesce, concat, round, days_between, len, lower, upper, date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FormulaSpec {
    /// The expression (at most 2000 characters), e.g. `amount_minor / 100 & ' ' & currency`.
    pub expression: String,
}

crate::text_enum! {
    /// The aggregate of a roll-up.
    pub enum RollupFunction {
        /// How many records (a number; 0 when none).
        Count = "count",
        /// The sum of a number field (a number; 0 when none). Money sums its minor units,
        /// whatever the currencies.
        Sum = "sum",
        /// The smallest value of a number, date or date-time field (empty when none).
        Min = "min",
        /// The largest value of a number, date or date-time field (empty when none).
        Max = "max",
    }
}

/// A roll-up: `function` of `field` over the live records of `entity` whose `link` names this
/// record and that match `filter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollupSpec {
    /// The related entity (opportunity, contact…).
    pub entity: String,
    /// Its link column that names this record (account_id).
    pub link: String,
    /// The aggregate.
    pub function: RollupFunction,
    /// The aggregated field: a column (amount_minor) or custom_fields.key; none for count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Which related records count: the condition vocabulary of the search endpoint, on the
    /// related entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Condition>,
}
