//! The [`Entity`] trait: what a CRM entity tells the shared machinery about itself.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fields::Fields;
use crate::storage::FromDbRow;
use crate::users::UserId;
use crate::validation::Validator;

/// A CRM entity stored by the shared record machinery.
///
/// The type itself holds the entity's own columns (declared with [`crate::record_type!`],
/// which also implements [`Fields`]); the common columns (id, organization, audit, version,
/// soft delete, custom fields) live in [`super::Record`].
pub trait Entity:
    Fields + FromDbRow + Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
    /// The table (a fixed identifier, never user input).
    const TABLE: &'static str;
    /// The singular name used in errors and the event log (`"account"`).
    const NAME: &'static str;

    /// Checks a complete record before it is written (on create, and after a patch is merged).
    fn validate(&self, v: &mut Validator) {
        let _ = v;
    }

    /// The user who owns the record, if the entity has owners. Users may soft-delete and restore
    /// records they own or created.
    fn owner(&self) -> Option<UserId> {
        None
    }
}

/// A table other records may point at (`account_id`, `owner_id`).
pub trait Referable {
    /// Its table.
    const TABLE: &'static str;
    /// Its singular name, for the `NotFound` a dangling link answers.
    const NAME: &'static str;
    /// Whether it has `is_deleted` (a link to a soft-deleted record is refused).
    const SOFT_DELETE: bool;
}

impl<E: Entity> Referable for E {
    const TABLE: &'static str = E::TABLE;
    const NAME: &'static str = E::NAME;
    const SOFT_DELETE: bool = true;
}
