//! Lists compiled to one SQL statement: filters, sort and keyset pagination.
//!
//! The statement always reads `where organization_id = $1` first (the tenant filter is the
//! machinery's, never an entity's), then the trash filter, the caller's filters and the cursor,
//! and orders by the sort column with the id as tie-break, so that pages never skip or repeat a
//! row even when many rows share a sort value. There is no `OFFSET`: a deep page costs what the
//! first one does.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::cursor::Cursor;
use super::entity::Entity;
use super::fields::{Column, Kind};
use super::query::{
    Condition, DEFAULT_LIMIT, Deleted, Direction, Filter, ListQuery, MAX_DEPTH, MAX_FILTERS,
    MAX_IN_VALUES, MAX_LIMIT, Op,
};
use crate::custom_fields::{self, CustomFieldDefinition, CustomFieldType, Definitions};
use crate::error::{Error, FieldError, Result};
use crate::organizations::OrganizationId;
use crate::storage::{Backend, FieldKey, Sql, escape_like};

/// The columns every record has, that lists may filter (and some sort) on.
const COMMON: &[Column] = &[
    Column::of::<Uuid>("id").sortable(),
    Column::of::<DateTime<Utc>>("created_at").sortable(),
    Column::of::<DateTime<Utc>>("updated_at").sortable(),
    Column::of::<Option<Uuid>>("created_by"),
    Column::of::<Option<Uuid>>("updated_by"),
    Column::of::<i64>("version"),
    Column::of::<Option<DateTime<Utc>>>("deleted_at"),
    Column::of::<Option<Uuid>>("deleted_by"),
];

/// A list compiled for one entity.
pub(crate) struct Plan {
    pub(crate) sql: Sql,
    /// Rows to show; the statement fetches one more to learn whether a next page exists.
    pub(crate) limit: usize,
    pub(crate) sort_field: &'static str,
    pub(crate) direction: Direction,
}

/// The column of `E` (common or own) called `name`.
fn column<E: Entity>(name: &str) -> Option<&'static Column> {
    COMMON.iter().chain(E::COLUMNS).find(|c| c.name == name)
}

/// Compiles `q` for entity `E` in organization `org`.
///
/// # Errors
/// [`Error::Validation`] listing every bad filter, sort, limit or cursor.
pub(crate) fn plan<E: Entity>(
    q: &ListQuery,
    org: OrganizationId,
    backend: Backend,
    defs: &Definitions,
) -> Result<Plan> {
    let mut errors = Vec::new();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            "out_of_range",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if q.filters.len() > MAX_FILTERS {
        errors.push(FieldError::new(
            "filters",
            "too_many",
            format!("at most {MAX_FILTERS} filters"),
        ));
    }

    let (sort_col, direction) = match &q.sort {
        None => (&COMMON[0], Direction::Asc),
        Some(s) => match column::<E>(&s.field).filter(|c| c.sortable) {
            Some(c) => (c, s.direction),
            None => {
                errors.push(FieldError::new(
                    "sort",
                    "not_sortable",
                    format!(
                        "cannot sort on `{}`; sortable: {}",
                        s.field,
                        sortable_list::<E>()
                    ),
                ));
                (&COMMON[0], Direction::Asc)
            }
        },
    };

    let mut sql = Sql::new("select * from ");
    sql.push(E::TABLE)
        .push(" where organization_id = ")
        .bind(org);
    match q.deleted {
        Deleted::Exclude => sql.push(" and not is_deleted"),
        Deleted::Include => &mut sql,
        Deleted::Only => sql.push(" and is_deleted"),
    };

    let mut conditions = Conditions::<E> {
        backend,
        defs,
        nodes: q.filters.len(),
        errors: &mut errors,
        entity: PhantomData,
    };
    for (i, f) in q.filters.iter().enumerate() {
        sql.push(" and ");
        conditions.filter(&mut sql, f, &format!("filters[{i}]"), false);
    }
    if let Some(c) = &q.condition {
        sql.push(" and ");
        conditions.node(&mut sql, c, "condition", 0, false);
        if conditions.nodes > MAX_FILTERS {
            errors.push(FieldError::new(
                "condition",
                "too_many",
                format!("at most {MAX_FILTERS} filters and groups in all"),
            ));
        }
    }

    if let Some(c) = &q.cursor {
        match Cursor::decode(c) {
            Ok(cursor) if cursor.field == sort_col.name && cursor.direction == direction => {
                if push_keyset(&mut sql, sort_col, direction, &cursor).is_none() {
                    errors.push(cursor_mismatch());
                }
            }
            Ok(_) => errors.push(cursor_mismatch()),
            Err(Error::Validation(mut e)) => errors.append(&mut e),
            Err(other) => return Err(other),
        }
    }

    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }

    let (dir, nulls) = match direction {
        Direction::Asc => (" asc", " nulls last"),
        Direction::Desc => (" desc", " nulls first"),
    };
    sql.push(" order by ");
    if sort_col.name != "id" {
        sql.push(sort_col.name).push(dir);
        if sort_col.nullable {
            sql.push(nulls);
        }
        sql.push(", ");
    }
    sql.push("id")
        .push(dir)
        .push(" limit ")
        .bind(i64::from(limit) + 1);

    Ok(Plan {
        sql,
        limit: limit as usize,
        sort_field: sort_col.name,
        direction,
    })
}

impl Plan {
    /// The cursor that continues after `last` (a serialized record).
    pub(crate) fn cursor_after(&self, last: &serde_json::Map<String, Value>, id: Uuid) -> String {
        Cursor {
            field: self.sort_field.to_owned(),
            direction: self.direction,
            value: last.get(self.sort_field).cloned().unwrap_or(Value::Null),
            id,
        }
        .encode()
    }
}

fn cursor_mismatch() -> FieldError {
    FieldError::new(
        "cursor",
        "invalid_cursor",
        "was made for another sort order; start again without it",
    )
}

fn sortable_list<E: Entity>() -> String {
    COMMON
        .iter()
        .chain(E::COLUMNS)
        .filter(|c| c.sortable)
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Appends the keyset condition "after the cursor's row". Empty (NULL) sort values count as
/// larger than any other value: last in ascending order, first in descending order.
fn push_keyset(sql: &mut Sql, col: &Column, dir: Direction, cursor: &Cursor) -> Option<()> {
    let (gt, op) = match dir {
        Direction::Asc => (true, " > "),
        Direction::Desc => (false, " < "),
    };
    if col.name == "id" {
        sql.push(" and id").push(op).bind(cursor.id);
        return Some(());
    }
    let value = col.kind.to_arg(&cursor.value)?;
    let name = col.name;
    match (&cursor.value, col.nullable) {
        (Value::Null, false) => return None,
        (_, false) => {
            sql.push(" and (")
                .push(name)
                .push(", id)")
                .push(op)
                .push("(");
            sql.bind(value).push(", ").bind(cursor.id).push(")");
        }
        (Value::Null, true) => {
            sql.push(" and (")
                .push(name)
                .push(" is null and id")
                .push(op)
                .bind(cursor.id);
            if !gt {
                sql.push(" or ").push(name).push(" is not null");
            }
            sql.push(")");
        }
        (_, true) => {
            sql.push(" and (").push(name).push(op).bind(value.clone());
            sql.push(" or (").push(name).push(" = ").bind(value);
            sql.push(" and id").push(op).bind(cursor.id).push(")");
            if gt {
                sql.push(" or ").push(name).push(" is null");
            }
            sql.push(")");
        }
    }
    Some(())
}

/// The field a filter names.
enum Target<'d> {
    Column(&'static Column),
    Custom(&'d CustomFieldDefinition),
}

/// Compiles filters and condition trees of `E`; every problem goes to `errors`, named by its
/// path in the query.
struct Conditions<'q, E> {
    backend: Backend,
    defs: &'q Definitions,
    /// Filters and groups compiled so far (with the plain filters), against `MAX_FILTERS`.
    nodes: usize,
    errors: &'q mut Vec<FieldError>,
    entity: PhantomData<E>,
}

impl<E: Entity> Conditions<'_, E> {
    /// Appends one filter; under a `not` (`negated`) it reads as false when its field is empty
    /// (`coalesce(…, false)`), so that `not (vip = true)` includes records without `vip` on both
    /// backends instead of following SQL's three-valued logic. Elsewhere filters stay bare, so
    /// indexes serve them.
    fn filter(&mut self, sql: &mut Sql, f: &Filter, path: &str, negated: bool) {
        if negated {
            sql.push("coalesce((");
        }
        if let Err(e) = push_filter::<E>(sql, f, self.backend, self.defs) {
            self.errors.push(FieldError {
                field: format!("{path}.{}", e.field),
                ..e
            });
        }
        if negated {
            sql.push("), false)");
        }
    }

    /// Appends a condition tree.
    fn node(&mut self, sql: &mut Sql, c: &Condition, path: &str, depth: usize, negated: bool) {
        // Every node counts (empty groups too), and past the cap nothing more is compiled: the
        // caller reports it once.
        self.nodes += 1;
        if self.nodes > MAX_FILTERS {
            return;
        }
        if depth > MAX_DEPTH {
            self.errors.push(FieldError::new(
                path,
                "too_deep",
                format!("conditions nest at most {MAX_DEPTH} deep"),
            ));
            return;
        }
        let (items, joiner, empty, key) = match c {
            Condition::Filter(f) => return self.filter(sql, f, path, negated),
            Condition::Not { not } => {
                sql.push("not (");
                self.node(sql, not, &format!("{path}.not"), depth + 1, true);
                sql.push(")");
                return;
            }
            Condition::And { and } => (and, " and ", "1 = 1", "and"),
            Condition::Or { or } => (or, " or ", "1 = 0", "or"),
        };
        if items.is_empty() {
            sql.push(empty);
            return;
        }
        sql.push("(");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                sql.push(joiner);
            }
            let here = format!("{path}.{key}[{i}]");
            self.node(sql, item, &here, depth + 1, negated);
        }
        sql.push(")");
    }
}

fn push_filter<E: Entity>(
    sql: &mut Sql,
    f: &Filter,
    backend: Backend,
    defs: &Definitions,
) -> std::result::Result<(), FieldError> {
    if crate::validation::holds_nul(&f.value) {
        return Err(FieldError::new(
            "value",
            "invalid_format",
            "must not contain NUL characters",
        ));
    }
    // `exists` and `between` are spelled with the other operators.
    match (f.op, &f.value) {
        (Op::Exists, Value::Bool(exists)) => {
            let f = Filter {
                op: Op::IsNull,
                value: Value::Bool(!exists),
                ..f.clone()
            };
            return push_filter::<E>(sql, &f, backend, defs);
        }
        (Op::Exists, _) => return Err(value_error("a boolean")),
        (Op::Between, Value::Array(bounds))
            if bounds.len() == 2 && bounds.iter().all(|b| !b.is_null()) =>
        {
            let bound = |op, value: &Value| Filter {
                op,
                value: value.clone(),
                ..f.clone()
            };
            sql.push("(");
            push_filter::<E>(sql, &bound(Op::Gte, &bounds[0]), backend, defs)?;
            sql.push(" and ");
            push_filter::<E>(sql, &bound(Op::Lte, &bounds[1]), backend, defs)?;
            sql.push(")");
            return Ok(());
        }
        (Op::Between, _) => return Err(value_error("an array of two values [low, high]")),
        _ => {}
    }
    let target = if let Some(key) = f.field.strip_prefix("custom_fields.") {
        match defs.get(key) {
            Some(d) => Target::Custom(d),
            None => {
                return Err(FieldError::new(
                    "field",
                    "unknown_field",
                    format!("`{key}` is not a custom field of {}", E::NAME),
                ));
            }
        }
    } else {
        match column::<E>(&f.field) {
            Some(c) => Target::Column(c),
            None => {
                return Err(FieldError::new(
                    "field",
                    "unknown_field",
                    format!("`{}` is not a field of {}", f.field, E::NAME),
                ));
            }
        }
    };
    match target {
        Target::Column(c) => push_column_filter(sql, c, f),
        Target::Custom(d) => push_custom_filter(sql, d, f, backend),
    }
}

fn value_error(expected: &str) -> FieldError {
    FieldError::new("value", "invalid_type", format!("must be {expected}"))
}

fn comparison(op: Op) -> Option<&'static str> {
    Some(match op {
        Op::Eq => " = ",
        Op::Lt => " < ",
        Op::Lte => " <= ",
        Op::Gt => " > ",
        Op::Gte => " >= ",
        _ => return None,
    })
}

/// `%text%` (or `text%`) with LIKE's wildcards escaped, lower-cased.
fn like_pattern(text: &str, contains: bool) -> String {
    let escaped = escape_like(&text.to_lowercase());
    if contains {
        format!("%{escaped}%")
    } else {
        format!("{escaped}%")
    }
}

/// The operands of an `in`: 1 to `MAX_IN_VALUES` values, each checked by `operand`.
fn in_values<T>(
    v: &Value,
    operand: impl Fn(&Value) -> std::result::Result<T, FieldError>,
) -> std::result::Result<Vec<T>, FieldError> {
    match v {
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_IN_VALUES => {
            items.iter().map(operand).collect()
        }
        _ => Err(value_error(&format!(
            "an array of 1 to {MAX_IN_VALUES} values"
        ))),
    }
}

fn push_column_filter(
    sql: &mut Sql,
    c: &Column,
    f: &Filter,
) -> std::result::Result<(), FieldError> {
    let name = c.name;
    let arg = |v: &Value| match v {
        Value::Null => Err(FieldError::new(
            "value",
            "invalid_type",
            "must not be null (use is_null)",
        )),
        v => c
            .kind
            .to_arg(v)
            .ok_or_else(|| value_error(c.kind.expected())),
    };
    match f.op {
        Op::Eq | Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            let a = arg(&f.value)?;
            sql.push(name)
                .push(comparison(f.op).unwrap_or(" = "))
                .bind(a);
        }
        Op::Ne => {
            let a = arg(&f.value)?;
            sql.push("(")
                .push(name)
                .push(" <> ")
                .bind(a)
                .push(" or ")
                .push(name)
                .push(" is null)");
        }
        Op::In => {
            let args = in_values(&f.value, arg)?;
            sql.push(name).push(" in (").bind_list(args).push(")");
        }
        Op::Contains | Op::StartsWith | Op::IsNull | Op::Exists | Op::Between => {
            let expr = |sql: &mut Sql| {
                sql.push(name);
            };
            push_any_type_filter(sql, f, c.kind == Kind::Text, expr, expr)?;
        }
    }
    Ok(())
}

/// The operators every field answers alike, given how to write its value (`expr`) and its
/// text (`text`): `contains` / `starts_with` (text fields only, case-insensitive, wildcards
/// escaped) and `is_null`.
fn push_any_type_filter(
    sql: &mut Sql,
    f: &Filter,
    textual: bool,
    expr: impl Fn(&mut Sql),
    text: impl Fn(&mut Sql),
) -> std::result::Result<(), FieldError> {
    match (f.op, &f.value) {
        (Op::Contains | Op::StartsWith, Value::String(s)) if textual => {
            sql.push("lower(");
            text(sql);
            sql.push(") like ")
                .bind(like_pattern(s, f.op == Op::Contains))
                .push(" escape '\\'");
        }
        (Op::Contains | Op::StartsWith, _) => {
            return Err(FieldError::new(
                "op",
                "invalid_operator",
                format!(
                    "`{}` applies to text fields with a string value",
                    op_name(f.op)
                ),
            ));
        }
        (Op::IsNull, Value::Bool(is_null)) => {
            expr(sql);
            sql.push(if *is_null { " is null" } else { " is not null" });
        }
        (Op::IsNull, _) => return Err(value_error("a boolean")),
        _ => return Err(value_error("a value this operator takes")),
    }
    Ok(())
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Contains => "contains",
        Op::StartsWith => "starts_with",
        _ => "operator",
    }
}

/// Custom fields compare by their definition's type: numbers numerically, dates and
/// date-times as their normalized text (which orders like the time), money by its amount;
/// `eq` / `in` on a multi-select match records having any of the values. On PostgreSQL,
/// equality uses containment (`@>`), which the GIN index on `custom_fields` serves.
fn push_custom_filter(
    sql: &mut Sql,
    d: &CustomFieldDefinition,
    f: &Filter,
    backend: Backend,
) -> std::result::Result<(), FieldError> {
    use CustomFieldType as T;
    // Only a checked key reaches the SQL text (stored definitions always pass).
    let Some(key) = FieldKey::new(&d.key) else {
        return Err(FieldError::new(
            "field",
            "unknown_field",
            "not a custom field",
        ));
    };
    let money = d.field_type == T::Currency;
    let json_expr = |sql: &mut Sql| backend.push_custom_value(sql, key, money);
    let text_expr = |sql: &mut Sql| backend.push_custom_text(sql, key);
    // The operand, checked and normalized for the field's type.
    let operand = |v: &Value| -> std::result::Result<Value, FieldError> {
        let ok = match d.field_type {
            T::Number | T::Currency => v.is_number(),
            T::Boolean => v.is_boolean(),
            T::Date | T::Datetime => {
                return custom_fields::normalize(d, v)
                    .map_err(|m| FieldError::new("value", "invalid_type", m));
            }
            T::Text | T::Select | T::MultiSelect | T::Email | T::Url => v.is_string(),
        };
        if ok {
            Ok(v.clone())
        } else {
            Err(value_error(&format!("a value of a {} field", d.field_type)))
        }
    };
    let dated = matches!(d.field_type, T::Date | T::Datetime) && backend.dates_compare_as_text();
    let bind = |v: Value| backend.custom_operand(v, dated);
    let compare_expr = |sql: &mut Sql| {
        if dated {
            text_expr(sql)
        } else {
            json_expr(sql)
        }
    };
    let multi = d.field_type == T::MultiSelect;
    let contains_one = |sql: &mut Sql, v: Value| backend.push_custom_contains(sql, key, v, multi);
    match f.op {
        Op::Eq if multi || (backend.equality_is_containment() && !money) => {
            let v = operand(&f.value)?;
            contains_one(sql, v);
        }
        Op::In if d.field_type == T::MultiSelect => {
            let values = in_values(&f.value, operand)?;
            sql.push("(");
            for (i, v) in values.into_iter().enumerate() {
                if i > 0 {
                    sql.push(" or ");
                }
                contains_one(sql, v);
            }
            sql.push(")");
        }
        Op::Eq | Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            if d.field_type == T::MultiSelect {
                return Err(FieldError::new(
                    "op",
                    "invalid_operator",
                    "multi_select fields take eq, in and is_null",
                ));
            }
            let v = operand(&f.value)?;
            compare_expr(sql);
            sql.push(comparison(f.op).unwrap_or(" = ")).bind(bind(v));
        }
        Op::Ne => {
            let v = operand(&f.value)?;
            if d.field_type == T::MultiSelect {
                sql.push("not ");
                contains_one(sql, v);
            } else {
                sql.push("(");
                compare_expr(sql);
                sql.push(" <> ").bind(bind(v)).push(" or ");
                json_expr(sql);
                sql.push(" is null)");
            }
        }
        Op::In => {
            let values = in_values(&f.value, operand)?;
            compare_expr(sql);
            sql.push(" in (")
                .bind_list(values.into_iter().map(bind))
                .push(")");
        }
        Op::Contains | Op::StartsWith | Op::IsNull | Op::Exists | Op::Between => {
            // Case folding needs the text in its own collation, not `text_expr`'s "C".
            let text = |sql: &mut Sql| {
                sql.push("custom_fields->>'").push_key(key).push("'");
            };
            let textual = !money && d.field_type.is_textual();
            push_any_type_filter(sql, f, textual, json_expr, text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\", true), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("AbC", false), "abc%");
    }
}
