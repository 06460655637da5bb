//! [`Grants`]: what one caller may do, resolved once from their role, permission set, teams and
//! (for an API key) scopes, and consulted by the record machinery on every read and write.
//!
//! Grants name entities by table and fields by name, so this file sits below the record
//! machinery and the registry: the permission-set service checks the names when a set is
//! written.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::rules::{EntityAccess, FieldRule, FieldRules, Need, Reach};
use crate::error::{Error, Result};
use crate::storage::{Conn, ReadBinding, Sql, TableBinding, TableRead};

/// What one caller may do in their organization: the reach into each entity's records
/// ([`EntityAccess`]), the field rules, who "own" and "team" refer to, and what else an API key's
/// scopes allow.
///
/// Made by the library when a [`crate::Tenant`] first needs it (and cached for a short while:
/// see [`crate::access`]); a host reads it through [`crate::Tenant::grants`].
///
/// ```
/// use crm_core::access::{Grants, Need, Reach};
/// let g = Grants::unrestricted();
/// assert_eq!(g.reach("accounts", Need::Delete), Reach::All);
/// assert!(g.may_manage());
/// ```
#[derive(Debug, Clone)]
pub struct Grants {
    /// Access to the tables named here; every other table gets `default`.
    entities: HashMap<String, EntityAccess>,
    default: EntityAccess,
    /// Field rules by table.
    fields: HashMap<String, FieldRules>,
    /// Whose records are "own": the user acting (or the user an API key acts for).
    user: Option<Uuid>,
    /// Every member of the caller's teams, the caller included (sorted).
    teammates: Arc<[Uuid]>,
    /// The caller's user id and team ids: whom shares the caller benefits from name.
    grantees: Arc<[Uuid]>,
    /// The records shared with a restricted reader, by table: their ids, or `None` when there
    /// are more than [`MAX_LISTED_SHARES`] (then looked up record by record). A table absent
    /// has none.
    shared: HashMap<&'static str, Option<Arc<[Uuid]>>>,
    /// The settings routes: users, API keys, pipelines, custom fields, webhooks, teams and
    /// permission sets (company admins; API keys with the `all` scope).
    manage: bool,
    /// Posting web forms (API keys with `forms` or `all`).
    forms: bool,
    /// Reading the whole change feed and the organization's jobs (company admins; API keys
    /// with `changes` or `all`).
    changes: bool,
    /// Tables an API key's scopes leave out: refused outright (403 `out_of_scope`), shares
    /// or not.
    out_of_scope: Vec<String>,
    /// Tables an API key's scopes let it read but not write (`<table>:read`).
    read_scope: Vec<String>,
    /// An API key whose scopes leave out the organization's settings (users, teams,
    /// pipelines, custom fields, webhooks, jobs): every key without `all`.
    settings_out_of_scope: bool,
    /// The row-level-security binding of a restricted reader (PostgreSQL); `None` when every
    /// entity is readable in full.
    binding: Option<Arc<ReadBinding>>,
    /// Reads add no reach condition: row-level security alone screens them (tests of the
    /// policies; see [`crate::CrmBuilder::row_level_security_alone`]).
    rls_alone: bool,
}

impl Grants {
    /// Everything: company admins, super-admins and the system.
    pub fn unrestricted() -> Self {
        Self::built_in(EntityAccess::ALL, None, true)
    }

    /// The access of a user or API key without a permission set, before scopes: read and write
    /// every record, trash and restore what `user` created or owns.
    pub(crate) fn built_in(default: EntityAccess, user: Option<Uuid>, manage: bool) -> Self {
        Self {
            entities: HashMap::new(),
            default,
            fields: HashMap::new(),
            user,
            teammates: Arc::from(Vec::new()),
            grantees: Arc::from(Vec::new()),
            shared: HashMap::new(),
            manage,
            forms: manage,
            changes: manage,
            out_of_scope: Vec::new(),
            read_scope: Vec::new(),
            settings_out_of_scope: false,
            binding: None,
            rls_alone: false,
        }
    }

    /// Grants from their parts; `finish` computes what is derived (the read binding).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        entities: HashMap<String, EntityAccess>,
        default: EntityAccess,
        fields: HashMap<String, FieldRules>,
        user: Option<Uuid>,
        mut teammates: Vec<Uuid>,
        grantees: Vec<Uuid>,
        (manage, forms, changes): (bool, bool, bool),
    ) -> Self {
        teammates.sort_unstable();
        teammates.dedup();
        Self {
            entities,
            default,
            fields,
            user,
            teammates: Arc::from(teammates),
            grantees: Arc::from(grantees),
            shared: HashMap::new(),
            manage,
            forms,
            changes,
            out_of_scope: Vec::new(),
            read_scope: Vec::new(),
            settings_out_of_scope: false,
            binding: None,
            rls_alone: false,
        }
    }

    /// These grants, narrowed by an API key's scopes: the records of `out` out of them, those
    /// of `read_only` readable only, and the settings out of them unless `settings`.
    pub(crate) fn scoped(
        mut self,
        out: Vec<String>,
        read_only: Vec<String>,
        settings: bool,
    ) -> Self {
        for t in &out {
            self.entities.insert(t.clone(), EntityAccess::NONE);
        }
        self.out_of_scope = out;
        self.read_scope = read_only;
        self.settings_out_of_scope = !settings;
        self
    }

    /// These grants with the records shared with the caller, by table (see
    /// [`shared_with`]).
    pub(crate) fn with_shared(
        mut self,
        shared: HashMap<&'static str, Option<Arc<[Uuid]>>>,
    ) -> Self {
        self.shared = shared;
        self
    }

    /// The records shared with the caller, by table, as [`Grants::with_shared`] takes them.
    pub(crate) fn shares(&self) -> HashMap<&'static str, Option<Arc<[Uuid]>>> {
        self.shared.clone()
    }

    /// Whether some entity of `tables` is read narrowly (not `all`): the grants of a
    /// restricted reader, who needs the records shared with them listed.
    pub(crate) fn reads_narrowly(&self, tables: &[&'static str]) -> bool {
        tables.iter().any(|t| self.access(t).read != Reach::All)
    }

    /// Computes the read binding for the entity `tables` (every table of the registry).
    pub(crate) fn finish(mut self, tables: &[&'static str]) -> Self {
        self.binding = self.reads_narrowly(tables).then(|| {
            let tables = tables
                .iter()
                .map(|t| {
                    let (read, shared) = match self.shared_reads(t) {
                        _ if self.reach(t, Need::Read) == Reach::All => (TableRead::All, &[][..]),
                        Some(None) => (TableRead::IdsAndShares, &[][..]),
                        Some(Some(ids)) => (TableRead::Ids, ids),
                        None => (TableRead::Ids, &[][..]),
                    };
                    TableBinding {
                        table: t,
                        read,
                        people: self.people(t, Need::Read).into_owned(),
                        shared: shared.to_vec(),
                    }
                })
                .collect();
            Arc::new(ReadBinding {
                grantees: self.grantees.to_vec(),
                tables,
            })
        });
        self
    }

    /// Leaves the screening of reads to row-level security alone: see
    /// [`crate::CrmBuilder::row_level_security_alone`].
    pub(crate) fn leave_reads_to_row_level_security(&mut self) {
        self.rls_alone = true;
    }

    /// Whether reads add no reach condition of the library's (row-level security alone
    /// screens them: [`crate::CrmBuilder::row_level_security_alone`]).
    pub(crate) fn leaves_reads_to_row_level_security(&self) -> bool {
        self.rls_alone && self.binding.is_some()
    }

    /// The access to the records of `table`.
    pub fn access(&self, table: &str) -> EntityAccess {
        self.entities.get(table).copied().unwrap_or(self.default)
    }

    /// The reach into the records of `table` for `need`.
    pub fn reach(&self, table: &str, need: Need) -> Reach {
        self.access(table).reach(need)
    }

    /// The rule of `field` of `table`, if any.
    pub fn field_rule(&self, table: &str, field: &str) -> Option<FieldRule> {
        self.fields.get(table).and_then(|f| f.get(field)).copied()
    }

    /// The field rules of `table` (empty for most callers).
    pub fn field_rules(&self, table: &str) -> impl Iterator<Item = (&str, FieldRule)> {
        self.fields
            .get(table)
            .into_iter()
            .flat_map(|f| f.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Whether these grants read every record of every entity and hide no field (company
    /// admins, the system, users and keys without a set or scopes): exits need not screen
    /// what they hand out.
    pub fn sees_everything(&self) -> bool {
        self.binding.is_none()
            && self
                .fields
                .values()
                .all(|rules| rules.values().all(|r| *r != FieldRule::Hidden))
    }

    /// Whether `table` has hidden fields for this caller.
    pub fn hides_fields_of(&self, table: &str) -> bool {
        self.field_rules(table).any(|(_, r)| r == FieldRule::Hidden)
    }

    /// Whose records are "own".
    pub fn user(&self) -> Option<Uuid> {
        self.user
    }

    /// Every member of the caller's teams, the caller included.
    pub fn teammates(&self) -> &[Uuid] {
        &self.teammates
    }

    /// The caller's user id and team ids.
    pub fn grantees(&self) -> &[Uuid] {
        &self.grantees
    }

    /// The people whose records of `table` the caller reaches for `need` by ownership or
    /// creation: the caller for `own`, their teammates for `team`, nobody for `none` (and for
    /// `all`, which needs no list). Borrowed unless a team list lacks the caller (read on every
    /// request: no allocation in the common case).
    pub(crate) fn people(&self, table: &str, need: Need) -> Cow<'_, [Uuid]> {
        match self.reach(table, need) {
            Reach::None | Reach::All => Cow::Borrowed(&[]),
            Reach::Own => Cow::Borrowed(self.user.as_slice()),
            Reach::Team => match self.user {
                Some(u) if self.teammates.binary_search(&u).is_err() => {
                    let mut people = self.teammates.to_vec();
                    people.push(u);
                    Cow::Owned(people)
                }
                _ => Cow::Borrowed(&self.teammates),
            },
        }
    }

    /// The records of `table` shared with the caller for reading: `None` when none are,
    /// `Some(None)` when too many to list (look each up), else their ids. Nothing for a table
    /// an API key's scopes leave out.
    pub(crate) fn shared_reads(&self, table: &str) -> Option<Option<&[Uuid]>> {
        if self.out_of_scope.iter().any(|t| t == table) {
            return None;
        }
        self.shared.get(table).map(|ids| ids.as_deref())
    }

    /// Whether the caller may manage the organization's settings.
    pub fn may_manage(&self) -> bool {
        self.manage
    }

    /// Whether the caller may post web forms.
    pub fn may_post_forms(&self) -> bool {
        self.forms
    }

    /// Whether the caller may read the organization's whole change feed and its jobs.
    pub fn may_read_changes(&self) -> bool {
        self.changes
    }

    /// The binding row-level security reads for this caller's reads, when restricted.
    pub(crate) fn read_binding(&self) -> Option<&Arc<ReadBinding>> {
        self.binding.as_ref()
    }

    /// `Ok` when the caller may manage settings, else 403 `admin_only` saying `message`.
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub fn require_manage(&self, message: &'static str) -> Result<()> {
        self.require_settings()?;
        if self.manage {
            Ok(())
        } else {
            Err(Error::forbidden("admin_only", message))
        }
    }

    /// `Ok` unless the caller is an API key whose scopes leave out the organization's settings
    /// (users, teams, pipelines, custom fields, webhooks, jobs): every key without `all`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`out_of_scope`).
    pub fn require_settings(&self) -> Result<()> {
        if self.settings_out_of_scope {
            Err(Error::forbidden(
                "out_of_scope",
                "this API key's scopes do not include the organization's settings (only `all` does)",
            ))
        } else {
            Ok(())
        }
    }

    /// `Ok` unless `table` is out of an API key's scopes altogether (a query that reaches it
    /// through links, a timeline that shows activities).
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`out_of_scope`).
    pub fn require_in_scope(&self, table: &str) -> Result<()> {
        if self.out_of_scope.iter().any(|t| t == table) {
            Err(Error::forbidden(
                "out_of_scope",
                format!("this API key's scopes do not include {table}"),
            ))
        } else {
            Ok(())
        }
    }

    /// `Ok` when the caller reaches some records of `table` for `need`, else 403
    /// `no_access`: an entity the caller may not read at all is refused, not answered empty.
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub fn require_some(&self, table: &str, need: Need) -> Result<()> {
        self.require_in_scope(table)?;
        if need != Need::Read && self.read_scope.iter().any(|t| t == table) {
            return Err(Error::forbidden(
                "out_of_scope",
                format!("this API key's scopes let it read {table}, not change them"),
            ));
        }
        // Shares may still give records of an entity out of reach.
        if self.reach(table, need) != Reach::None || !self.grantees.is_empty() {
            return Ok(());
        }
        let verb = match need {
            Need::Read => "read",
            Need::Write => "write",
            Need::Delete => "delete",
        };
        Err(Error::forbidden(
            "no_access",
            format!("this caller may not {verb} {table}"),
        ))
    }

    /// `Ok` when the caller may create records of `table`: shares give records, not the right
    /// to make new ones.
    ///
    /// # Errors
    /// [`Error::Forbidden`]: `out_of_scope` for an API key whose scopes leave `table` out,
    /// `no_access` for a caller whose write reach into `table` is `none`.
    pub fn require_create(&self, table: &str) -> Result<()> {
        self.require_some(table, Need::Write)?;
        if self.reach(table, Need::Write) == Reach::None {
            return Err(Error::forbidden(
                "no_access",
                format!("this caller may not create {table}"),
            ));
        }
        Ok(())
    }

    /// The grants a web form's post creates its lead with: the caller's, and writing leads
    /// whatever their reach.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`out_of_scope`) unless the caller may post web forms (an API key
    /// with the `forms` or `all` scope).
    pub(crate) fn for_web_form(&self) -> Result<Self> {
        if !self.forms {
            return Err(Error::forbidden(
                "out_of_scope",
                "this API key's scopes do not include web forms",
            ));
        }
        let mut grants = self.clone();
        grants.out_of_scope.retain(|t| t != "leads");
        grants.entities.insert(
            "leads".to_owned(),
            EntityAccess {
                read: Reach::All,
                write: Reach::All,
                delete: Reach::None,
            },
        );
        Ok(grants)
    }

    /// Whether a record of `table` with `owner` and `creator` is within the caller's reach for
    /// `need`, shares aside (they are looked up separately, in the statement that reads the record).
    pub fn reaches(
        &self,
        table: &str,
        need: Need,
        owner: Option<Uuid>,
        creator: Option<Uuid>,
    ) -> bool {
        match self.reach(table, need) {
            Reach::All => true,
            Reach::None => false,
            Reach::Own => self.user.is_some() && (owner == self.user || creator == self.user),
            Reach::Team => [owner, creator]
                .into_iter()
                .flatten()
                .any(|u| self.teammates.binary_search(&u).is_ok() || Some(u) == self.user),
        }
    }

    /// Appends ` and (<the records of `alias` within reach for `need`>)`, or nothing when the
    /// caller reaches them all. `alias` is the table's name or alias in the statement, `table`
    /// the entity's table, `kind` its singular name (as shares store it), `owner` its `[owner]`
    /// column. The statement the library runs reads exactly what row-level security lets
    /// through on PostgreSQL (migration `0020_visibility_by_ids`).
    pub(crate) fn push_reach(&self, sql: &mut Sql, scope: ReachScope, need: Need) {
        self.push_reach_among(sql, scope, need, None);
    }

    /// [`Grants::push_reach`] for a statement that reads only the records `among` (a GET, a
    /// batch): the records shared with the caller are named only where they are among them,
    /// so that a reader with many shares does not send them all with every read.
    pub(crate) fn push_reach_among(
        &self,
        sql: &mut Sql,
        scope: ReachScope,
        need: Need,
        among: Option<&[Uuid]>,
    ) {
        let reach = self.reach(scope.table, need);
        if reach == Reach::All || (need == Need::Read && self.leaves_reads_to_row_level_security())
        {
            return;
        }
        sql.push(" and (");
        self.push_people(sql, scope, &self.people(scope.table, need));
        if need == Need::Read {
            match self.shared_reads(scope.table) {
                None => {}
                Some(Some(shared)) => {
                    let listed = |id: &&Uuid| among.is_none_or(|a| a.contains(id));
                    if shared.iter().any(|id| listed(&id)) {
                        sql.push(" or ").push(scope.alias).push(".id in (");
                        let ids = shared.iter().filter(listed).map(|id| (*id).into());
                        sql.bind_list(ids).push(")");
                    }
                }
                Some(None) => {
                    sql.push(" or ");
                    self.push_shared(sql, scope, need);
                }
            }
        } else if !self.grantees.is_empty() && !self.out_of_scope.iter().any(|t| t == scope.table) {
            sql.push(" or ");
            self.push_shared(sql, scope, need);
        }
        sql.push(")");
    }

    /// `owner in (people) or created_by in (people)`; `1 = 0` for nobody.
    pub(crate) fn push_people(&self, sql: &mut Sql, scope: ReachScope, people: &[Uuid]) {
        if people.is_empty() {
            sql.push("1 = 0");
            return;
        }
        let list = || people.iter().map(|u| (*u).into());
        sql.push("(");
        if let Some(owner) = scope.owner {
            sql.push(scope.alias).push(".").push(owner).push(" in (");
            sql.bind_list(list()).push(") or ");
        }
        sql.push(scope.alias).push(".created_by in (");
        sql.bind_list(list()).push("))");
    }

    /// `exists (a share of the record with the caller or one of their teams)`, for writing when
    /// `need` is not reading.
    pub(crate) fn push_shared(&self, sql: &mut Sql, scope: ReachScope, need: Need) {
        if self.grantees.is_empty() {
            sql.push("1 = 0");
            return;
        }
        sql.push("exists (select 1 from record_shares s where s.organization_id = ");
        sql.push(scope.alias)
            .push(".organization_id and s.entity = ");
        sql.bind(scope.kind).push(" and s.record_id = ");
        sql.push(scope.alias).push(".id and s.grantee_id in (");
        sql.bind_list(self.grantees.iter().map(|u| (*u).into()));
        sql.push(")");
        if need != Need::Read {
            sql.push(" and s.access = 'write'");
        }
        sql.push(")");
    }
}

/// The most records of one table shared with a reader that the library lists in their grants
/// (and row-level security in their binding); past it, each record is looked up in
/// `record_shares`, at the cost of a subquery per row read.
pub(crate) const MAX_LISTED_SHARES: usize = 200;

/// The records shared with any of `grantees` (a user and their teams), by table: their ids, or
/// `None` for a table with more than [`MAX_LISTED_SHARES`]. One statement, served by
/// `record_shares_grantee_idx`.
pub(crate) async fn shared_with(
    conn: &mut Conn<'_>,
    org: crate::organizations::OrganizationId,
    grantees: &[Uuid],
) -> Result<HashMap<&'static str, Option<Arc<[Uuid]>>>> {
    let mut out = HashMap::new();
    if grantees.is_empty() {
        return Ok(out);
    }
    let mut q = Sql::new(
        "select entity, record_id from (select entity, record_id, row_number() over (partition by entity order by record_id) n from (select distinct entity, record_id from record_shares where organization_id = ",
    );
    q.bind(org).push(" and grantee_id in (");
    q.bind_list(grantees.iter().map(|g| (*g).into()));
    q.push(")) s) x where n <= ")
        .bind(MAX_LISTED_SHARES as i64 + 1)
        .push(" order by entity, record_id");
    let rows: Vec<(String, Uuid)> = conn.fetch_all(&q).await?;
    let mut by_kind: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (kind, id) in rows {
        by_kind.entry(kind).or_default().push(id);
    }
    for (kind, ids) in by_kind {
        // Shares of a kind the registry no longer has give nothing.
        let Some(kind) = crate::entities::EntityKind::ALL
            .iter()
            .find(|k| k.name() == kind)
        else {
            continue;
        };
        let listed = (ids.len() <= MAX_LISTED_SHARES).then(|| Arc::from(ids));
        out.insert(kind.table(), listed);
    }
    Ok(out)
}

/// Deletes the shares of the records `ids` of entity `entity` (singular name), inside the
/// caller's transaction: a purged or erased record keeps no share.
pub(crate) async fn forget_shares(
    conn: &mut Conn<'_>,
    org: crate::organizations::OrganizationId,
    entity: &str,
    ids: &[Uuid],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new("delete from record_shares where organization_id = ");
    q.bind(org).push(" and entity = ").bind(entity);
    q.push(" and record_id in (")
        .bind_list(ids.iter().map(|id| (*id).into()))
        .push(")");
    conn.execute(&q).await?;
    Ok(())
}

/// The process-wide cache of resolved grants, by organization and actor: 30 seconds, like
/// the definitions cache; every change to access made through this process empties the
/// organization's entries.
pub(crate) type GrantsCache =
    moka::sync::Cache<(crate::organizations::OrganizationId, crate::context::Actor), Arc<Grants>>;

pub(crate) fn new_cache() -> GrantsCache {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(std::time::Duration::from_secs(30))
        .support_invalidation_closures()
        .build()
}

/// The entity table a reach condition is written for: see [`Grants::push_reach`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReachScope {
    /// The table's name or alias in the statement.
    pub(crate) alias: &'static str,
    /// The entity's table.
    pub(crate) table: &'static str,
    /// The entity's singular name.
    pub(crate) kind: &'static str,
    /// Its `[owner]` column.
    pub(crate) owner: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep() -> Grants {
        let mut entities = HashMap::new();
        entities.insert(
            "accounts".to_owned(),
            EntityAccess {
                read: Reach::Team,
                write: Reach::Own,
                delete: Reach::None,
            },
        );
        let (me, mate, team) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        Grants::new(
            entities,
            EntityAccess::NONE,
            HashMap::new(),
            Some(me),
            vec![me, mate],
            vec![me, team],
            (false, false, false),
        )
        .finish(&["accounts", "contacts"])
    }

    #[test]
    fn reach_follows_owner_creator_and_teams() {
        let g = rep();
        let me = g.user();
        let mate = g.teammates().iter().copied().find(|u| Some(*u) != me);
        let stranger = Some(Uuid::now_v7());
        assert!(g.reaches("accounts", Need::Read, mate, None));
        assert!(g.reaches("accounts", Need::Read, None, me));
        assert!(!g.reaches("accounts", Need::Read, stranger, stranger));
        assert!(g.reaches("accounts", Need::Write, me, None));
        assert!(!g.reaches("accounts", Need::Write, mate, None));
        assert!(!g.reaches("accounts", Need::Delete, me, me));
        assert!(!g.reaches("contacts", Need::Read, me, me));
        assert!(g.read_binding().is_some());
        assert!(
            Grants::unrestricted()
                .finish(&["accounts"])
                .read_binding()
                .is_none()
        );
    }

    #[test]
    fn the_reach_condition_names_owner_creator_and_shares() {
        let g = rep();
        let mut sql = Sql::new("select 1 from accounts where organization_id = 1");
        let scope = ReachScope {
            alias: "accounts",
            table: "accounts",
            kind: "account",
            owner: Some("owner_id"),
        };
        g.push_reach(&mut sql, scope, Need::Write);
        let text = sql.text();
        assert!(text.contains("accounts.owner_id in ($1)"), "{text}");
        assert!(text.contains("accounts.created_by in ($2)"), "{text}");
        assert!(text.contains("s.access = 'write'"), "{text}");
        let mut all = Sql::new("select 1");
        Grants::unrestricted().push_reach(&mut all, scope, Need::Read);
        assert_eq!(all.text(), "select 1");
    }
}
