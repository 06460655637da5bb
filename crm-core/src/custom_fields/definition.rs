//! A custom field definition: its key, type, options and default, and the inputs that define
//! and change one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::computation::Computed;
use crate::error::Result;
use crate::id::Id;
use crate::organizations::OrganizationId;

/// Longest text a `text` custom field holds, in characters (and the longest text a formula
/// builds).
pub(crate) const MAX_TEXT_CHARS: usize = 10_000;

crate::text_enum! {
    /// The type of a custom field, which decides how values are checked and compared.
    pub enum CustomFieldType {
        /// Text up to 10,000 characters.
        Text = "text",
        /// A JSON number; filters compare numerically.
        Number = "number",
        /// `true` or `false`.
        Boolean = "boolean",
        /// A calendar date, `YYYY-MM-DD`.
        Date = "date",
        /// An RFC 3339 date-time, stored in UTC.
        Datetime = "datetime",
        /// One of the definition's options.
        Select = "select",
        /// Several distinct options; `eq` / `in` filters match records having any of them.
        MultiSelect = "multi_select",
        /// An email address.
        Email = "email",
        /// An `http(s)` URL.
        Url = "url",
        /// Money: `{"amount_minor": 12345, "currency": "EUR"}`; filters compare the amount.
        Currency = "currency",
    }
}

impl CustomFieldType {
    /// Whether `contains` / `starts_with` apply.
    pub fn is_textual(self) -> bool {
        matches!(self, Self::Text | Self::Select | Self::Email | Self::Url)
    }
}

/// The id of a custom field definition.
pub type CustomFieldId = Id<CustomFieldDefinition>;

/// A custom field of one entity in one organization.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomFieldDefinition {
    /// Its id.
    pub id: CustomFieldId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// The entity it belongs to (`"account"`…).
    pub entity: String,
    /// The key in `custom_fields` (`[a-z][a-z0-9_]*`, at most 63 characters).
    pub key: String,
    /// Human label.
    pub label: String,
    /// Type; fixed once defined.
    pub field_type: CustomFieldType,
    /// Whether every record must have a value.
    pub required: bool,
    /// Choices of `select` / `multi_select`.
    #[sqlx(json)]
    pub options: Vec<String>,
    /// Value given to new records that have none.
    #[sqlx(json(nullable))]
    pub default_value: Option<Value>,
    /// Archived fields keep their values but take no new ones.
    pub archived: bool,
    /// Whether no two records of the entity may hold the same value (absent values never
    /// collide; emails compare case-insensitively, numbers by value).
    #[sqlx(rename = "is_unique")]
    #[serde(default)]
    pub unique: bool,
    /// How the value is computed (a formula or a roll-up); none for a stored field.
    #[sqlx(json(nullable))]
    pub computed: Option<Computed>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Input of `CustomFields::define`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCustomField {
    /// The key.
    pub key: String,
    /// Human label.
    pub label: String,
    /// Type.
    pub field_type: CustomFieldType,
    /// Whether a value is required.
    #[serde(default)]
    pub required: bool,
    /// Choices for `select` / `multi_select` (required for them, refused for other types).
    #[serde(default)]
    pub options: Vec<String>,
    /// Default for new records.
    #[serde(default)]
    pub default_value: Option<Value>,
    /// Whether values must be unique among the entity's records (text, number, date, datetime,
    /// select, email and url fields).
    #[serde(default)]
    pub unique: bool,
    /// Makes it a computed field: a formula or a roll-up (its values are never written).
    #[serde(default)]
    pub computed: Option<Computed>,
}

impl NewCustomField {
    /// A field of `field_type` called `key`, labelled `label`, optional, with no options.
    pub fn new(key: &str, label: &str, field_type: CustomFieldType) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            field_type,
            required: false,
            options: Vec::new(),
            default_value: None,
            unique: false,
            computed: None,
        }
    }
}

/// Changes to a definition (its key and type are fixed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomFieldPatch {
    /// New label.
    #[serde(default)]
    pub label: Option<String>,
    /// New required flag.
    #[serde(default)]
    pub required: Option<bool>,
    /// New options.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// New default (`Some(None)` removes it).
    #[serde(default, deserialize_with = "crate::record::present")]
    pub default_value: Option<Option<Value>>,
    /// Archive or unarchive.
    #[serde(default)]
    pub archived: Option<bool>,
    /// Make values unique (existing values must not collide) or not.
    #[serde(default)]
    pub unique: Option<bool>,
    /// A new formula or roll-up for a computed field (a stored field stays stored).
    #[serde(default)]
    pub computed: Option<Computed>,
}
