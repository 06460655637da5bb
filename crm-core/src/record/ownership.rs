//! Who owns a record, and what owning it permits: handing it to someone else. (Which records a
//! caller may read, change, trash and restore is their reach: [`crate::access`].)
//!
//! The owner is the column an entity declares `[owner]` in its
//! [`record_type!`](crate::record_type) ([`Entity::owner`]). The rules are written here once for
//! every entity:
//!
//! - **Changing the owner** (on any write: patches, batches, verbs): company admins, or the
//!   record's current owner. A record without an owner gets one from an admin. Otherwise a user
//!   could make themself the owner of someone else's record and then delete it.
//! - **Creating**: the owner may name any user of the organization (assigning a task or an
//!   account to a colleague is everyday work); the creator keeps the creator's rights to trash
//!   and restore the record, and nothing more.

use super::entity::Entity;
use super::row::Record;
use crate::context::TenantContext;
use crate::error::{Error, Result};
use crate::id::Id;

/// Whether the caller may write `after` over `current` as far as ownership goes: a change of
/// the owner column needs a company admin or the current owner.
///
/// # Errors
/// [`Error::Forbidden`] (`not_owner`) for anyone else.
pub(super) fn may_change_owner<E: Entity>(
    ctx: &TenantContext,
    current: &Record<E>,
    after: &E,
) -> Result<()> {
    let owner = current.fields.owner();
    if owner == after.owner() || crate::access::roles::is_admin(ctx) {
        return Ok(());
    }
    if owner.is_some() && owner.map(Id::uuid) == ctx.actor().id() {
        return Ok(());
    }
    let column = E::COLUMNS
        .iter()
        .find(|c| c.owner)
        .map_or("owner", |c| c.name);
    Err(Error::forbidden(
        "not_owner",
        format!(
            "only company admins or the current owner may change the {column} of a {}",
            E::NAME
        ),
    ))
}
