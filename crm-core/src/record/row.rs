//! [`Record`]: an entity's own fields plus the columns every record shares.

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::id::Id;
use crate::organizations::OrganizationId;

/// The columns every record has besides `custom_fields`, in [`Record`]'s order. Only the
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
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
    #[sqlx(json)]
    pub custom_fields: Map<String, Value>,
    /// The entity's own fields.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub fields: E,
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
