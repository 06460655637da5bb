//! Who sees and changes what: the one home of authorization.
//!
//! A caller's [`Grants`] are resolved from their role, their [`PermissionSet`] (if an admin gave
//! them one), their teams and, for an API key, its scopes ([`crate::Tenant::grants`]); the record
//! machinery consults them in its one read path and its one write path, so an application that
//! embeds the library gets exactly what the HTTP API gets.
//!
//! - **Reach** ([`Reach`]): per entity, separately for reading, writing and deleting, a caller
//!   reaches `none`, `own` (records they own or created), `team` (records owned or created by a
//!   member of one of their teams) or `all` records. A record shared with the caller or one of
//!   their teams is reached too (for writing when shared for writing).
//! - **Built-in access**: company admins, super-admins and the system reach everything. A user
//!   without a permission set, and an API key without one, reads and writes everything and
//!   trashes what they created or own: what every installation did before permission sets.
//! - **Field rules** ([`FieldRule`]): a hidden field is absent from every record the caller
//!   gets and may not be written, filtered, sorted or searched on; a read-only field may not be
//!   written.
//! - **API keys**: their scopes narrow whatever else they hold (`<entity>:read` reads,
//!   `<entity>:write` writes; an entity out of scope answers 403 `out_of_scope`); a key may
//!   carry a permission set, or act for a user with that user's access.
//! - **The database agrees** (PostgreSQL): a restricted reader's connection is bound to their
//!   reach, and the row-level-security policies of migration `0020_visibility_by_ids` let
//!   through only the rows the library's own conditions select.
//!
//! - **Teams** ([`Teams`]) group users for `team` reach; **shares** ([`Shares`]) give one
//!   record to a user or a team beyond their reach (kept when the record's owner changes).
//!
//! Grants, the records shared with the caller included, are cached per caller for up to 30
//! seconds; a change of access made through a [`crate::Crm`] (a share, a team, a set) is seen
//! by it at once, by other instances within the 30 seconds.

pub(crate) mod grants;
mod permission_sets;
pub(crate) mod resolve;
pub(crate) mod roles;
pub(crate) mod rules;
mod shares;
mod teams;

pub use grants::Grants;
pub use permission_sets::{
    MAX_FIELD_RULES, NewPermissionSet, PermissionSet, PermissionSetId, PermissionSetPatch,
    PermissionSets,
};
pub use rules::{EntityAccess, FieldRule, FieldRules, Need, Reach};
pub use shares::{Grantee, GranteeKind, NewShare, Share, ShareAccess, Shares};
pub use teams::{NewTeam, Team, TeamId, TeamMember, TeamPatch, Teams};
