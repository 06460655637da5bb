//! What a permission set says: how far a caller reaches into each entity's records
//! ([`Reach`], [`EntityAccess`]) and what it may do with each field ([`FieldRule`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// Which records of an entity a caller reaches, from none to all. Ordered: `None < Own <
    /// Team < All`.
    ///
    /// - `own`: the records the caller owns (the entity's `[owner]` column: `owner_id`, an
    ///   activity's `assignee_id`) or created;
    /// - `team`: those owned or created by anyone in a team the caller is in (the caller
    ///   included);
    /// - `all`: every record of the organization.
    ///
    /// A record shared with the caller, or with one of the caller's teams, is reached whatever
    /// the reach (for reading; for writing too when shared for writing).
    pub enum Reach {
        /// No record.
        None = "none",
        /// The caller's own records.
        Own = "own",
        /// The records of the caller's teams.
        Team = "team",
        /// Every record.
        All = "all",
    }
}

/// What a caller may do with the records of one entity.
///
/// ```
/// use crm_core::access::{EntityAccess, Reach};
/// let rep = EntityAccess { read: Reach::Team, write: Reach::Own, delete: Reach::None };
/// assert!(rep.read > rep.write);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EntityAccess {
    /// Which records it may read (get, list, search, timelines, history, the change feed).
    pub read: Reach,
    /// Which records it may create and change (a create needs more than `none`).
    pub write: Reach,
    /// Which records it may move to the trash, restore and purge.
    pub delete: Reach,
}

impl EntityAccess {
    /// Every record, every verb: company admins and the system.
    pub const ALL: EntityAccess = EntityAccess {
        read: Reach::All,
        write: Reach::All,
        delete: Reach::All,
    };

    /// Nothing at all: an entity a permission set does not name.
    pub const NONE: EntityAccess = EntityAccess {
        read: Reach::None,
        write: Reach::None,
        delete: Reach::None,
    };

    /// The built-in access of the `user` role, and of API keys without a permission set: read
    /// and write everything, trash and restore what one created or owns (the behaviour from
    /// before permission sets existed).
    pub const USER: EntityAccess = EntityAccess {
        read: Reach::All,
        write: Reach::All,
        delete: Reach::Own,
    };

    /// The reach for `need`.
    pub fn reach(self, need: Need) -> Reach {
        match need {
            Need::Read => self.read,
            Need::Write => self.write,
            Need::Delete => self.delete,
        }
    }
}

/// What a call needs of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// To read it.
    Read,
    /// To create or change it.
    Write,
    /// To trash, restore or purge it.
    Delete,
}

crate::text_enum! {
    /// What a permission set says of one field of one entity (a column or a custom field).
    pub enum FieldRule {
        /// Absent from every answer to the caller; the caller may not write, filter, sort or
        /// search on it.
        Hidden = "hidden",
        /// Shown, but a write naming it is refused (422 `read_only`).
        ReadOnly = "read_only",
    }
}

/// The field rules of one entity: field name → rule.
pub type FieldRules = BTreeMap<String, FieldRule>;
