//! Computed custom fields: the `computed` part of a definition (a formula over the record's own
//! fields, or a roll-up of a related entity's records), and the checks a definition with one
//! must pass.
//!
//! Computed values are materialized into the record's `custom_fields`, so reading, filtering,
//! the change feed and the API treat them as stored fields: formulas are evaluated in the write
//! path (`formula`), roll-ups refreshed in the transaction of every write to a record they
//! count (`rollup`). Callers never write them (422 `computed_field`).

use super::computation::{Computed, MAX_COMPUTED_FIELDS, RollupFunction, RollupSpec};
use super::definition::{CustomFieldDefinition, CustomFieldType};
use super::formula::{self, Schema};
use crate::entities::EntityKind;
use crate::error::FieldError;
use crate::record::Kind;

/// The aggregated field of a roll-up, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Aggregated {
    /// A column of the related entity, of this kind.
    Column(&'static str, Kind),
    /// A custom field of the related entity, of this type.
    Custom(String, CustomFieldType),
}

impl RollupSpec {
    /// The related kind and the link column, when they name one of this `parent`.
    pub(crate) fn child(&self, parent: EntityKind) -> Result<EntityKind, FieldError> {
        let child: EntityKind = self.entity.parse().map_err(|_| {
            FieldError::new(
                "computed.rollup.entity",
                "unknown_entity",
                format!("`{}` is not an entity", self.entity),
            )
        })?;
        let links_here = child.columns().iter().any(|c| {
            c.name == self.link
                && matches!(c.kind, Kind::Ref { table, .. } if table == parent.table())
        });
        if !links_here {
            let choices: Vec<_> = child
                .columns()
                .iter()
                .filter(|c| matches!(c.kind, Kind::Ref { table, .. } if table == parent.table()))
                .map(|c| c.name)
                .collect();
            return Err(FieldError::new(
                "computed.rollup.link",
                "invalid_link",
                format!(
                    "`{}` is not a link of {} to {}; its links here: {}",
                    self.link,
                    child.name(),
                    parent.name(),
                    if choices.is_empty() {
                        "none".to_owned()
                    } else {
                        choices.join(", ")
                    }
                ),
            ));
        }
        Ok(child)
    }

    /// The aggregated field and the type of the result, checked against the related kind and
    /// its definitions.
    pub(crate) fn resolve(
        &self,
        child: EntityKind,
        child_defs: &[CustomFieldDefinition],
    ) -> Result<(Option<Aggregated>, CustomFieldType), FieldError> {
        let bad = |code: &'static str, message: String| {
            FieldError::new("computed.rollup.field", code, message)
        };
        let Some(field) = &self.field else {
            return match self.function {
                RollupFunction::Count => Ok((None, CustomFieldType::Number)),
                f => Err(bad("required", format!("`{f}` needs a field"))),
            };
        };
        if self.function == RollupFunction::Count {
            return Err(bad("not_allowed", "`count` takes no field".into()));
        }
        let aggregated = if let Some(key) = field.strip_prefix("custom_fields.") {
            let d = child_defs.iter().find(|d| d.key == key).ok_or_else(|| {
                bad(
                    "unknown_field",
                    format!("`{key}` is not a custom field of {}", child.name()),
                )
            })?;
            if d.computed.is_some() {
                return Err(bad(
                    "computed_field",
                    format!("`{key}` is computed; roll-ups aggregate stored fields"),
                ));
            }
            Aggregated::Custom(key.to_owned(), d.field_type)
        } else {
            let c = child
                .columns()
                .iter()
                .find(|c| c.name == field)
                .ok_or_else(|| {
                    bad(
                        "unknown_field",
                        format!("`{field}` is not a field of {}", child.name()),
                    )
                })?;
            Aggregated::Column(c.name, c.kind)
        };
        use CustomFieldType as T;
        let ty = match (&aggregated, self.function) {
            (Aggregated::Column(_, Kind::Integer), _) => T::Number,
            (Aggregated::Custom(_, T::Number | T::Currency), _) => T::Number,
            (Aggregated::Column(_, Kind::Date), RollupFunction::Min | RollupFunction::Max) => {
                T::Date
            }
            (Aggregated::Custom(_, T::Date), RollupFunction::Min | RollupFunction::Max) => T::Date,
            (Aggregated::Column(_, Kind::Timestamp), RollupFunction::Min | RollupFunction::Max) => {
                T::Datetime
            }
            (Aggregated::Custom(_, T::Datetime), RollupFunction::Min | RollupFunction::Max) => {
                T::Datetime
            }
            _ => {
                return Err(bad(
                    "invalid_type",
                    format!(
                        "`{}` cannot take a `{field}`: sum takes numbers, min and max numbers, dates and date-times",
                        self.function
                    ),
                ));
            }
        };
        Ok((Some(aggregated), ty))
    }
}

/// The checks a computed definition must pass that need no database: no required flag,
/// options or default; the number of computed fields; a formula that parses and type-checks
/// against `entity` and its other definitions (`siblings`) and yields the declared type. (A
/// roll-up's related entity, field and filter are checked by the service, which loads the
/// related entity's definitions.)
pub(crate) fn check(
    def: &CustomFieldDefinition,
    entity: EntityKind,
    siblings: &[CustomFieldDefinition],
) -> Vec<FieldError> {
    let Some(computed) = &def.computed else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    let not_allowed = |field: &str, what: &str| {
        FieldError::new(field, "not_allowed", format!("computed fields {what}"))
    };
    if def.required {
        errors.push(not_allowed("required", "cannot be required"));
    }
    if def.default_value.is_some() {
        errors.push(not_allowed("default_value", "have no default"));
    }
    if !def.options.is_empty() {
        errors.push(not_allowed("options", "have no options"));
    }
    let others = siblings
        .iter()
        .filter(|d| d.key != def.key && d.computed.is_some() && !d.archived)
        .count();
    if !def.archived && others >= MAX_COMPUTED_FIELDS {
        errors.push(FieldError::new(
            "computed",
            "too_many",
            format!("at most {MAX_COMPUTED_FIELDS} computed fields per entity"),
        ));
    }
    if let Computed::Formula(f) = computed {
        let others: Vec<_> = siblings
            .iter()
            .filter(|d| d.key != def.key)
            .cloned()
            .collect();
        let schema = Schema {
            columns: entity.columns(),
            defs: &others,
        };
        match formula::parse(&f.expression, &schema) {
            Err(message) => errors.push(FieldError::new(
                "computed.formula.expression",
                "invalid_formula",
                message,
            )),
            Ok(parsed) if parsed.ty().field_type() != def.field_type => {
                errors.push(FieldError::new(
                    "field_type",
                    "type_mismatch",
                    format!(
                        "the formula yields a {}; declare field_type `{}`",
                        parsed.ty().field_type(),
                        parsed.ty().field_type()
                    ),
                ))
            }
            Ok(_) => {}
        }
    }
    errors
}
