//! The [`Entity`] trait: what a CRM entity tells the shared machinery about itself.

use std::fmt;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fields::Fields;
use super::link::Referable;
use crate::context::TenantContext;
use crate::entities::EntityKind;
use crate::error::Result;
use crate::events::Action;
use crate::record::{DecodeFields, WriteFields};
use crate::storage::{Conn, Tx};
use crate::tenant::Tenant;
use crate::users::UserId;
use crate::validation::Validator;

/// A CRM entity stored by the shared record machinery.
///
/// The type itself holds the entity's own columns (declared with [`crate::record_type!`],
/// which also implements [`Fields`]); the common columns (id, organization, audit, version,
/// soft delete, custom fields) live in [`super::Record`].
pub trait Entity:
    Fields
    + DecodeFields
    + WriteFields
    + Send
    + Unpin
    + Serialize
    + DeserializeOwned
    + Clone
    + fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Its entry in the entity registry ([`EntityKind`]): an entity cannot exist without one.
    const KIND: EntityKind;
    /// The table (a fixed identifier from the registry, never user input).
    const TABLE: &'static str = Self::KIND.table();
    /// The singular name used in errors and the event log (`"account"`).
    const NAME: &'static str = Self::KIND.name();

    /// The rules by which duplicate detection matches its records (email, domain, name): none
    /// by default. See [`Records::create_with`](super::Records::create_with).
    const MATCH_ON: &'static [super::MatchOn] = &[];

    /// Whether its records may be merged ([`Records::merge`](super::Records::merge)); not by
    /// default.
    const MERGEABLE: bool = false;

    /// The `(kind column, id column)` of a link to a record of any kind that no `Ref` column
    /// declares (an activity's `related_entity` / `related_id`): a merge re-points it too.
    const ANY_LINK: Option<(&'static str, &'static str)> = None;

    /// Which of its records a merge of a record they link to may re-point at the survivor, as
    /// a condition on its own columns (fixed SQL text, the same on both backends); `None`: every
    /// record. A record outside it keeps its link to the absorbed record (which answers with the
    /// survivor from then on), because its own rules forbid the change: an invoice once sent
    /// keeps the account, contact and opportunity it was issued to, as a `PATCH` of them would
    /// be refused (`not_draft`).
    const REPOINTABLE: Option<&'static str> = None;

    /// Checks a complete record before it is written (on create, and after a patch is merged).
    fn validate(&self, v: &mut Validator) {
        let _ = v;
    }

    /// The user who owns the record: the column declared `[owner]` in its
    /// [`record_type!`](crate::record_type), if any. Users may soft-delete and restore records
    /// they own or created.
    fn owner(&self) -> Option<UserId> {
        super::fields::owner(self).map(UserId::from_uuid)
    }

    /// Whether the record may leave the live set: be moved to the trash
    /// ([`Records::delete`](super::Records::delete)) or removed for good
    /// ([`Records::purge`](super::Records::purge)). Runs on the stored record, under its row
    /// lock, after the caller's own permission was checked. By default every record may; an
    /// entity whose records must stay (an invoice once sent: financial records are voided,
    /// never deleted) refuses with an [`Error::Conflict`](crate::Error::Conflict).
    fn may_trash(&self) -> Result<()> {
        Ok(())
    }

    /// Links to other records that no column declares (an activity's `related_entity` +
    /// `related_id`), as `Kind::Ref` targets: they are checked like link columns (a live record
    /// of the same organization, or `NotFound`), in one query per table for a batch.
    fn links(&self) -> Vec<(super::fields::Kind, uuid::Uuid)> {
        Vec::new()
    }

    /// Runs inside the write's transaction after [`Entity::validate`] passed, with the stored
    /// record as `before` (`None` on create): checks that need the database (a stage belongs to
    /// its pipeline), state rules (only drafts are editable), and fields the library derives
    /// (numbers, totals). It may change the event's action with [`WriteContext::set_action`].
    fn before_write(
        &mut self,
        write: &mut WriteContext<'_, '_>,
        before: Option<&Self>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (write, before);
        async { Ok(()) }
    }
}

/// What kind of write an [`Entity::before_write`] hook is looking at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create from the entity's input.
    Create,
    /// A patch from the entity's input.
    Update,
    /// An entity verb (convert, close, send…), which may write read-only fields.
    Verb(Action),
}

/// The transaction and context a write runs in, as seen by [`Entity::before_write`].
pub struct WriteContext<'a, 'c> {
    tx: &'a mut Tx<'c>,
    tenant: &'a Tenant,
    operation: Operation,
    action: Action,
}

impl fmt::Debug for WriteContext<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteContext")
            .field("operation", &self.operation)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl<'a, 'c> WriteContext<'a, 'c> {
    pub(crate) fn new(
        tx: &'a mut Tx<'c>,
        tenant: &'a Tenant,
        operation: Operation,
        action: Action,
    ) -> Self {
        Self {
            tx,
            tenant,
            operation,
            action,
        }
    }

    /// The kind of write.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Who writes, for which organization.
    pub fn context(&self) -> &TenantContext {
        self.tenant.context()
    }

    /// Records the write in the event log under `action` instead of the default.
    pub fn set_action(&mut self, action: Action) {
        self.action = action;
    }

    pub(crate) fn action(&self) -> Action {
        self.action
    }

    pub(crate) fn tenant(&self) -> &'a Tenant {
        self.tenant
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        self.tx.conn()
    }
}

impl<E: Entity> Referable for E {
    const TABLE: &'static str = E::TABLE;
    const NAME: &'static str = E::NAME;
    const SOFT_DELETE: bool = true;
}
