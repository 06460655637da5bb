//! The list query vocabulary: [`ListQuery`] with its filters ([`Filter`], [`Condition`],
//! [`Op`]), sort ([`Sort`], [`Direction`]), trash handling ([`Deleted`]) and limits. `compile`
//! turns one into SQL.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;
/// Most values in one `in` filter.
pub const MAX_IN_VALUES: usize = 100;
/// Most filters in one query, counting every node of a [`Condition`] (its groups and `not`s
/// too) with the flat filters.
pub const MAX_FILTERS: usize = 50;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (rows where the field is empty match too).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Equal to one of a list (at most [`MAX_IN_VALUES`]).
    In,
    /// Contains the text, ignoring case.
    Contains,
    /// Starts with the text, ignoring case.
    StartsWith,
    /// `true`: the field is empty; `false`: it has a value.
    IsNull,
    /// `true`: the field has a value; `false`: it is empty.
    Exists,
    /// Between two values, both included: `[low, high]`.
    Between,
}

/// One condition: `field op value`. `field` is a standard field (`name`, `created_at`…), a
/// custom field as `custom_fields.<key>`, or a field of a linked record through its link, up to
/// [`MAX_HOPS`] links away: `account.employee_count` (a contact's account),
/// `primary_contact.account.name`. A missing or trashed linked record has no fields: the
/// filter does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Filter {
    /// The field.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The operand: a JSON scalar; an array for [`Op::In`]; a boolean for [`Op::IsNull`].
    pub value: Value,
}

/// A tree of conditions, for searches beyond "all of these": `{"and": […]}`, `{"or": […]}`,
/// `{"not": …}`, or a single [`Filter`].
///
/// ```
/// use crm_core::{Condition, ListQuery, Op};
/// let q = ListQuery::default().condition(Condition::or(vec![
///     Condition::filter("industry", Op::Eq, "Energy"),
///     !Condition::filter("employee_count", Op::Between, serde_json::json!([10, 100])),
/// ]));
/// let json = serde_json::to_value(&q.condition).unwrap();
/// assert_eq!(json["or"][1]["not"]["op"], "between");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(no_recursion))]
#[serde(untagged)]
pub enum Condition {
    /// All of these hold.
    And {
        /// The conditions.
        and: Vec<Condition>,
    },
    /// At least one of these holds.
    Or {
        /// The conditions.
        or: Vec<Condition>,
    },
    /// This does not hold.
    Not {
        /// The condition.
        not: Box<Condition>,
    },
    /// At least one live record of another kind links to this one (and matches its condition):
    /// accounts with an open opportunity. `{"not": {"exists": …}}` asks for none.
    Exists {
        /// The linking records.
        exists: Related,
    },
    /// One filter.
    Filter(Filter),
}

/// The records of another kind that link to the one a [`Condition::Exists`] tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(no_recursion))]
#[serde(deny_unknown_fields)]
pub struct Related {
    /// Their kind's table (`opportunities`), with the link column after a dot when the kind
    /// links here more than one way (`opportunities.primary_contact_id`).
    pub relation: String,
    /// What one of them must match (any of them when absent). Its fields are the linking
    /// kind's (custom fields of linked records are not filterable).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "where")]
    pub condition: Option<Box<Condition>>,
}

impl Condition {
    /// All of `conditions`.
    pub fn and(conditions: Vec<Condition>) -> Self {
        Condition::And { and: conditions }
    }

    /// Any of `conditions`.
    pub fn or(conditions: Vec<Condition>) -> Self {
        Condition::Or { or: conditions }
    }

    /// At least one record of `relation` (see [`Related::relation`]) links here and matches
    /// `condition` (any, when `None`).
    pub fn exists(relation: impl Into<String>, condition: Option<Condition>) -> Self {
        Condition::Exists {
            exists: Related {
                relation: relation.into(),
                condition: condition.map(Box::new),
            },
        }
    }

    /// `field op value`.
    pub fn filter(field: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        Condition::Filter(Filter {
            field: field.into(),
            op,
            value: value.into(),
        })
    }
}

/// `!condition`: it does not hold.
impl std::ops::Not for Condition {
    type Output = Condition;
    fn not(self) -> Condition {
        Condition::Not {
            not: Box::new(self),
        }
    }
}

/// Deepest nesting of a [`Condition`].
pub const MAX_DEPTH: usize = 8;

/// Most links a filter, sort or [`Condition::Exists`] may follow from the listed record
/// (`primary_contact.account.name` follows two).
pub const MAX_HOPS: usize = 2;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smallest first; empty values last.
    #[default]
    Asc,
    /// Largest first; empty values first.
    Desc,
}

/// Sort order: one sortable field, then the id in the same direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sort {
    /// A sortable field (`id`, `created_at`, `updated_at`, or one the entity marks sortable),
    /// or a sortable field of a linked record (`account.name`; records without one come as
    /// if it were empty).
    pub field: String,
    /// Its direction.
    #[serde(default)]
    pub direction: Direction,
}

/// Which rows a list sees with respect to the trash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Deleted {
    /// Live rows only.
    #[default]
    Exclude,
    /// Live and soft-deleted rows.
    Include,
    /// Soft-deleted rows only (the trash view).
    Only,
}

/// What to list.
///
/// ```
/// use crm_core::{Direction, ListQuery, Op};
/// let q = ListQuery::default()
///     .filter("email", Op::Eq, "a@b.co")
///     .filter("custom_fields.tier", Op::In, serde_json::json!(["gold", "silver"]))
///     .sort("last_name", Direction::Asc)
///     .limit(20);
/// assert_eq!(q.filters.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Conditions, all of which must hold.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// A condition tree that must hold too (and/or/not groups).
    #[serde(default)]
    pub condition: Option<Condition>,
    /// Sort order; by id (creation order) when absent.
    #[serde(default)]
    pub sort: Option<Sort>,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Where to continue: the `next_cursor` of the previous page (with the same sort).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Trash handling.
    #[serde(default)]
    pub deleted: Deleted,
}

impl ListQuery {
    /// Adds a condition.
    pub fn filter(mut self, field: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        self.filters.push(Filter {
            field: field.into(),
            op,
            value: value.into(),
        });
        self
    }

    /// Whether any filter (flat or in the tree) is on a custom field.
    pub(crate) fn mentions_custom_fields(&self) -> bool {
        fn tree(c: &Condition) -> bool {
            match c {
                Condition::And { and: items } | Condition::Or { or: items } => {
                    items.iter().any(tree)
                }
                Condition::Not { not } => tree(not),
                // What linked records match is compiled without custom fields.
                Condition::Exists { .. } => false,
                Condition::Filter(f) => f.field.starts_with("custom_fields."),
            }
        }
        self.filters
            .iter()
            .any(|f| f.field.starts_with("custom_fields."))
            || self.condition.as_ref().is_some_and(tree)
            || self
                .sort
                .as_ref()
                .is_some_and(|s| s.field.starts_with("custom_fields."))
    }

    /// Adds a condition tree (it must hold besides the filters).
    pub fn condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Sets the sort order.
    pub fn sort(mut self, field: impl Into<String>, direction: Direction) -> Self {
        self.sort = Some(Sort {
            field: field.into(),
            direction,
        });
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after a previous page.
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Sets trash handling.
    pub fn deleted(mut self, deleted: Deleted) -> Self {
        self.deleted = deleted;
        self
    }
}
