//! Lists compiled to one SQL statement: filters, sort and keyset pagination.
//!
//! Filters and sorts may reach linked records (`account.employee_count`, `account.name`) and
//! records that link here (`{"exists": {"relation": "opportunities", …}}`), up to
//! [`MAX_HOPS`] links away. Each is an `exists` (or, for a sort, a scalar) subquery on the
//! linked table's tenant-leading key, correlated on `organization_id` too, so every table a
//! statement reads is confined to the organization, and each level is aliased (`r1`, `r2`)
//! while the listed table keeps its own name.
//!
//! The statement always reads `where organization_id = $1` first (the tenant filter is the
//! machinery's, never an entity's), then the trash filter, the caller's filters and the cursor,
//! and orders by the sort column with the id as tie-break, so that pages never skip or repeat a
//! row even when many rows share a sort value. There is no `OFFSET`: a deep page costs what the
//! first one does.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::cursor::Cursor;
use super::entity::Entity;
use super::fields::{Column, Kind};
use super::query::{
    Condition, DEFAULT_LIMIT, Deleted, Direction, Filter, ListQuery, MAX_DEPTH, MAX_FILTERS,
    MAX_HOPS, MAX_IN_VALUES, MAX_LIMIT, Op, Related,
};
use crate::access::grants::{Grants, ReachScope};
use crate::access::rules::{FieldRule, Need, Reach};
use crate::custom_fields::{self, CustomFieldDefinition, CustomFieldType, Definitions};
use crate::entities::EntityKind;
use crate::error::{Error, FieldError, Result};
use crate::organizations::OrganizationId;
use crate::storage::{Arg, Array, Backend, FieldKey, Sql, escape_like};

/// The reach scope of a table of kind `name` with `columns`, read as `alias`.
pub(crate) fn reach_scope(
    alias: &'static str,
    table: &'static str,
    name: &'static str,
    columns: &'static [Column],
) -> ReachScope {
    ReachScope {
        alias,
        table,
        kind: name,
        owner: columns.iter().find(|c| c.owner).map(|c| c.name),
    }
}

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
    sort: SortKey,
    pub(crate) direction: Direction,
}

/// What a list sorts on: a column of the listed record, or of the record one of its links
/// names, or one of the listed record's custom fields.
#[derive(Clone)]
pub(crate) struct SortKey {
    /// The link followed (its column and the linked kind), if any.
    pub(crate) link: Option<(&'static Column, EntityKind)>,
    /// The column sorted on (the id under a custom sort).
    pub(crate) column: &'static Column,
    /// A custom field sorted on instead: its key, type and the backend that reads it.
    custom: Option<(String, CustomFieldType, Backend)>,
}

impl SortKey {
    /// The sort as callers name it (`name`, `account.name`, `custom_fields.tier`), as cursors
    /// record it.
    fn name(&self) -> String {
        if let Some((key, _, _)) = &self.custom {
            return format!("custom_fields.{key}");
        }
        match self.link {
            None => self.column.name.to_owned(),
            Some((link, _)) => format!("{}.{}", hop_name(link), self.column.name),
        }
    }

    /// The bind value of a cursor's sort value.
    fn arg(&self, v: &Value) -> Option<crate::storage::Arg> {
        use crate::storage::Arg;
        match &self.custom {
            None => self.column.kind.to_arg(v),
            Some((_, CustomFieldType::Number | CustomFieldType::Currency, _)) => match v {
                Value::Number(n) => Some(match n.as_i64() {
                    Some(i) => Arg::Int(Some(i)),
                    None => Arg::Float(n.as_f64()),
                }),
                _ => None,
            },
            Some(_) => v.as_str().map(|s| Arg::Text(Some(s.to_owned()))),
        }
    }

    /// Appends the sorted value of the listed row `table`.
    fn push(&self, sql: &mut Sql, table: &'static str) {
        if let Some((key, ty, backend)) = &self.custom {
            let Some(key) = FieldKey::new(key) else {
                sql.push("null");
                return;
            };
            match ty {
                CustomFieldType::Number | CustomFieldType::Currency => {
                    backend.push_custom_number(sql, table, key, *ty == CustomFieldType::Currency)
                }
                _ => backend.push_custom_text(sql, key),
            }
            return;
        }
        match self.link {
            None => {
                sql.push(self.column.name);
            }
            Some((link, kind)) => {
                sql.push("(select r1.").push(self.column.name);
                push_link_join(sql, kind, "r1", table, link.name);
                sql.push(")");
            }
        }
    }

    /// The field of the sorted record's kind it names (a custom field's key).
    fn field_name(&self) -> &str {
        match (&self.custom, self.link) {
            (Some((key, _, _)), _) => key,
            (None, Some((link, _))) => link.name,
            (None, None) => self.column.name,
        }
    }

    /// Whether rows may have no value to sort on.
    fn nullable(&self) -> bool {
        self.custom.is_some() || self.link.is_some() || self.column.nullable
    }
}

/// Where conditions are compiled: the records of one kind, named `alias` in the statement
/// (the listed table by its own name, linked ones `r1`, `r2`), `hops` links from the listed
/// one.
#[derive(Clone, Copy)]
struct Scope<'d> {
    name: &'static str,
    table: &'static str,
    columns: &'static [Column],
    alias: &'static str,
    hops: usize,
    /// Custom-field definitions: only the listed kind's are loaded.
    defs: Option<&'d Definitions>,
    /// The caller's grants: which records of each kind a condition may look at, and which
    /// fields it may not name. `None` for the library's own conditions (roll-up filters), which
    /// see every record.
    grants: Option<&'d Grants>,
}

/// The aliases of linked tables by depth (`ALIASES[0]` is the first link's).
const ALIASES: [&str; MAX_HOPS] = ["r1", "r2"];

impl<'d> Scope<'d> {
    fn of(kind: EntityKind, alias: &'static str, hops: usize) -> Self {
        Scope {
            name: kind.name(),
            table: kind.table(),
            columns: kind.columns(),
            alias,
            hops,
            defs: None,
            grants: None,
        }
    }

    /// Appends the caller's reach into this scope's records, when not all.
    fn push_reach(&self, sql: &mut Sql) {
        if let Some(g) = self.grants {
            g.push_reach(
                sql,
                reach_scope(self.alias, self.table, self.name, self.columns),
                Need::Read,
            );
        }
    }

    /// An error when the caller may not see field `name` of this scope.
    fn check_visible(&self, name: &str, path: &str) -> std::result::Result<(), FieldError> {
        match self.grants.and_then(|g| g.field_rule(self.table, name)) {
            Some(FieldRule::Hidden) => Err(FieldError::new(
                "field",
                "hidden_field",
                format!("`{path}` is hidden from this caller"),
            )),
            _ => Ok(()),
        }
    }

    /// The column (common or own) called `name`.
    fn column(&self, name: &str) -> Option<&'static Column> {
        COMMON.iter().chain(self.columns).find(|c| c.name == name)
    }

    /// The link column `{hop}_id` to a kind of the registry, and that kind.
    fn link(&self, hop: &str) -> Option<(&'static Column, EntityKind)> {
        self.columns.iter().find_map(|c| match c.kind {
            Kind::Ref { table, .. } if hop_name(c) == hop => {
                Some((c, EntityKind::from_table(table)?))
            }
            _ => None,
        })
    }

    /// The scope one link further, or why not.
    fn next(&self, kind: EntityKind, path: &str) -> std::result::Result<Scope<'d>, FieldError> {
        match ALIASES.get(self.hops) {
            Some(alias) => Ok(Scope {
                grants: self.grants,
                ..Scope::of(kind, alias, self.hops + 1)
            }),
            None => Err(FieldError::new(
                "field",
                "too_deep",
                format!("`{path}` follows more than {MAX_HOPS} links"),
            )),
        }
    }
}

/// The name a link column goes by in paths: `account` for `account_id`.
fn hop_name(link: &Column) -> &'static str {
    link.name.strip_suffix("_id").unwrap_or(link.name)
}

/// Appends ` from {kind} {alias} where` the live `alias` record that `outer.link` names, in
/// the organization of `outer` (its primary key, which leads with the organization).
fn push_link_join(
    sql: &mut Sql,
    kind: EntityKind,
    alias: &'static str,
    outer: &'static str,
    link: &'static str,
) {
    sql.push(" from ").push(kind.table()).push(" ").push(alias);
    sql.push(" where ").push(alias).push(".organization_id = ");
    sql.push(outer).push(".organization_id and ").push(alias);
    sql.push(".id = ").push(outer).push(".").push(link);
    // Every kind of the registry has a trash; a record in it is no link target.
    sql.push(" and not ").push(alias).push(".is_deleted");
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
    grants: &Grants,
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

    let top = Scope {
        name: E::NAME,
        table: E::TABLE,
        columns: E::COLUMNS,
        alias: E::TABLE,
        hops: 0,
        defs: Some(defs),
        grants: Some(grants),
    };
    let by_id = SortKey {
        link: None,
        column: &COMMON[0],
        custom: None,
    };
    let (sort, direction) = match &q.sort {
        None => (by_id, Direction::Asc),
        Some(s) => match sort_key(&top, &s.field, backend).filter(|key| {
            top.check_visible(key.field_name(), &s.field).is_ok()
                && key.link.is_none_or(|(_, kind)| {
                    grants.reach(kind.table(), Need::Read) == Reach::All
                        && grants.field_rule(kind.table(), key.column.name)
                            != Some(FieldRule::Hidden)
                })
        }) {
            Some(key) => (key, s.direction),
            None => {
                errors.push(FieldError::new(
                    "sort",
                    "not_sortable",
                    format!(
                        "cannot sort on `{}`; sortable: {}, a sortable field of a linked record (`account.name`), or a custom field that is not a boolean or multi_select",
                        s.field,
                        sortable_list(top.columns)
                    ),
                ));
                (by_id, Direction::Asc)
            }
        },
    };

    // The cursor is decoded once; its problems are reported after the filters'.
    let mut cursor_errors = Vec::new();
    let cursor = match &q.cursor {
        None => None,
        Some(c) => match Cursor::decode(c) {
            Ok(cursor) if cursor.field == sort.name() && cursor.direction == direction => {
                Some(cursor)
            }
            Ok(_) => {
                cursor_errors.push(cursor_mismatch());
                None
            }
            Err(Error::Validation(mut e)) => {
                cursor_errors.append(&mut e);
                None
            }
            Err(other) => return Err(other),
        },
    };
    // The caller's filters, condition and cursor: after the tenant, trash and reach
    // conditions, once per branch of a narrow reader's list.
    let push_rest = |sql: &mut Sql, errors: &mut Vec<FieldError>| {
        let mut conditions = Conditions {
            backend,
            nodes: q.filters.len(),
            errors,
        };
        for (i, f) in q.filters.iter().enumerate() {
            sql.push(" and ");
            conditions.filter(sql, &top, f, &format!("filters[{i}]"), false);
        }
        if let Some(c) = &q.condition {
            sql.push(" and ");
            conditions.node(sql, &top, c, "condition", 0, false);
            if conditions.nodes > MAX_FILTERS {
                conditions.errors.push(FieldError::new(
                    "condition",
                    "too_many",
                    format!("at most {MAX_FILTERS} filters and groups in all"),
                ));
            }
        }
        if let Some(cursor) = &cursor
            && push_keyset(sql, &sort, E::TABLE, direction, cursor).is_none()
        {
            errors.push(cursor_mismatch());
        }
    };

    let (dir, nulls) = match direction {
        Direction::Asc => (" asc", " nulls last"),
        Direction::Desc => (" desc", " nulls first"),
    };
    let by_id = sort.custom.is_none() && sort.link.is_none() && sort.column.name == "id";
    let scope = reach_scope(E::TABLE, E::TABLE, E::NAME, E::COLUMNS);
    let branches = (by_id && backend == Backend::Postgres && q.deleted == Deleted::Exclude)
        .then(|| ReachBranches::of(grants, scope))
        .flatten();
    // `select <columns> from <table> where <tenant and trash>`: the one pass, or each branch.
    let push_head = |sql: &mut Sql| {
        sql.push("select ")
            .push(E::SELECT)
            .push(" from ")
            .push(E::TABLE)
            .push(" where organization_id = ")
            .bind(org);
        match q.deleted {
            Deleted::Exclude => sql.push(" and not is_deleted"),
            Deleted::Include => sql,
            Deleted::Only => sql.push(" and is_deleted"),
        };
    };
    let mut sql;
    match &branches {
        None => {
            sql = Sql::new("");
            push_head(&mut sql);
            top.push_reach(&mut sql);
            push_rest(&mut sql, &mut errors);
        }
        Some(branches) => {
            sql = Sql::new("select * from (");
            for (i, branch) in branches.branches.iter().enumerate() {
                sql.push(if i > 0 { " union all (" } else { "(" });
                branches.push_open(&mut sql, branch, E::SELECT, dir);
                push_head(&mut sql);
                sql.push(" and ");
                branches.push(&mut sql, scope, branch);
                // Every branch compiles the same filters: their problems are told once.
                let mut again = Vec::new();
                push_rest(&mut sql, if i == 0 { &mut errors } else { &mut again });
                branches.push_close(&mut sql, branch, E::TABLE);
                sql.push(" order by id")
                    .push(dir)
                    .limit(limit.saturating_add(1))
                    .push(")");
            }
            sql.push(") listed");
        }
    }
    errors.append(&mut cursor_errors);

    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }

    sql.push(" order by ");
    if !by_id {
        sort.push(&mut sql, E::TABLE);
        sql.push(dir);
        if sort.nullable() {
            sql.push(nulls);
        }
        sql.push(", ");
    }
    sql.push("id").push(dir).limit(limit.saturating_add(1));

    Ok(Plan {
        sql,
        limit: limit as usize,
        sort,
        direction,
    })
}

/// The most people whose records a narrow reader's list reads as branches of their own; a
/// wider team is read in one pass over the organization's records.
const MAX_BRANCH_PEOPLE: usize = 8;

/// A narrow reader's list (reach `own` or `team`, sorted by id, PostgreSQL) read as a union of
/// ordered branches, each served by an index in id order: each person's owned records
/// (`<table>_live_owner_idx`), each person's created records that no listed person owns
/// (`<table>_live_created_by_idx`) and the records shared with the reader that neither list
/// holds (the primary key). The branches are disjoint; PostgreSQL merges them (`Merge Append`)
/// and stops at the page's end, so a page reads about what it shows, where a single pass
/// over the organization's id index would read every record until enough of the reader's
/// came by (ten times the page for a reader who owns a tenth). Measured in
/// docs/benchmarks.md ("Record visibility at a million contacts").
struct ReachBranches<'g> {
    people: std::borrow::Cow<'g, [Uuid]>,
    shared: Option<&'g [Uuid]>,
    branches: Vec<Branch>,
}

/// One branch of [`ReachBranches`].
enum Branch {
    Owner(Uuid),
    Creator(Uuid),
    Shared,
}

impl<'g> ReachBranches<'g> {
    /// The branches of `grants`' reach into `scope`, if reading them so applies: a reach of
    /// `own` or `team` over at most [`MAX_BRANCH_PEOPLE`] people, shares listed (not too many
    /// to list), and the library's condition in force.
    fn of(grants: &'g Grants, scope: ReachScope) -> Option<Self> {
        if grants.leaves_reads_to_row_level_security()
            || !matches!(
                grants.reach(scope.table, Need::Read),
                Reach::Own | Reach::Team
            )
        {
            return None;
        }
        let people = grants.people(scope.table, Need::Read);
        if people.is_empty() || people.len() > MAX_BRANCH_PEOPLE {
            return None;
        }
        let shared = match grants.shared_reads(scope.table) {
            None => None,
            Some(Some(ids)) => Some(ids),
            Some(None) => return None,
        };
        let mut branches = Vec::with_capacity(2 * people.len() + 1);
        if scope.owner.is_some() {
            branches.extend(people.iter().map(|p| Branch::Owner(*p)));
        }
        branches.extend(people.iter().map(|p| Branch::Creator(*p)));
        if shared.is_some() {
            branches.push(Branch::Shared);
        }
        Some(Self {
            people,
            shared,
            branches,
        })
    }

    /// Appends what comes before `branch`'s head (`select … from <table> where …`): for the
    /// shared records, their sorted list, walked through a lateral join so that each is read
    /// in id order as the merge asks for it (a page reads the few that fall within it), not
    /// all fetched and sorted first. `select` is the entity's column list, `dir` the order.
    fn push_open(&self, sql: &mut Sql, branch: &Branch, select: &'static str, dir: &'static str) {
        if let Branch::Shared = branch {
            let ids = self.shared.unwrap_or_default();
            sql.push("select ")
                .push(select)
                .push(" from (select shared_id from unnest(")
                .bind(Arg::Array(Array::Uuid(
                    ids.iter().map(|id| Some(*id)).collect(),
                )))
                .push("::uuid[]) shared_id order by shared_id")
                .push(dir)
                .push(") shared cross join lateral (");
        }
    }

    /// Closes what [`ReachBranches::push_open`] opened for `branch`, naming the joined rows as
    /// `table`, before the branch's own order and limit.
    fn push_close(&self, sql: &mut Sql, branch: &Branch, table: &'static str) {
        if let Branch::Shared = branch {
            sql.push(") ").push(table);
        }
    }

    /// Appends the reach condition of `branch`.
    fn push(&self, sql: &mut Sql, scope: ReachScope, branch: &Branch) {
        let t = scope.alias;
        let not_listed = |sql: &mut Sql, column: &'static str| {
            sql.push(" and (").push(t).push(".").push(column);
            sql.push(" is null or ").push(t).push(".").push(column);
            sql.push(" not in (")
                .bind_list(self.people.iter().map(|p| (*p).into()))
                .push("))");
        };
        match branch {
            Branch::Owner(p) => {
                if let Some(owner) = scope.owner {
                    sql.push(t).push(".").push(owner).push(" = ").bind(*p);
                }
            }
            Branch::Creator(p) => {
                sql.push(t).push(".created_by = ").bind(*p);
                if let Some(owner) = scope.owner {
                    not_listed(sql, owner);
                }
            }
            Branch::Shared => {
                // `shared` is the sorted list the branch's lateral join walks.
                sql.push(t).push(".id = shared.shared_id");
                if let Some(owner) = scope.owner {
                    not_listed(sql, owner);
                }
                not_listed(sql, "created_by");
            }
        }
    }
}

/// Appends `condition` on the live records of `kind`, read by their table name without an
/// alias (a roll-up's filter, in its aggregate's subquery): the vocabulary and limits of a
/// list's condition.
///
/// # Errors
/// [`Error::Validation`] listing every bad filter, named from `filter`.
pub(crate) fn push_condition(
    sql: &mut Sql,
    kind: EntityKind,
    defs: &Definitions,
    condition: &Condition,
    backend: Backend,
) -> Result<()> {
    let scope = Scope {
        name: kind.name(),
        table: kind.table(),
        columns: kind.columns(),
        alias: kind.table(),
        hops: 0,
        defs: Some(defs),
        grants: None,
    };
    let mut errors = Vec::new();
    let mut conditions = Conditions {
        backend,
        nodes: 0,
        errors: &mut errors,
    };
    conditions.node(sql, &scope, condition, "filter", 0, false);
    if conditions.nodes > MAX_FILTERS {
        errors.push(FieldError::new(
            "filter",
            "too_many",
            format!("at most {MAX_FILTERS} filters and groups in all"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// The sort key `field` names in `top`: a sortable column, `{link}.{column}` with a
/// sortable column of the linked kind, or `custom_fields.{key}` of a custom field that orders
/// (numbers and money by amount, text, dates and date-times by their normalized text; not
/// booleans or multi-selects). A custom sort is not served by an index: it reads every row of
/// the organization that the filters leave.
fn sort_key(top: &Scope<'_>, field: &str, backend: Backend) -> Option<SortKey> {
    let sortable = |scope: &Scope<'_>, name| scope.column(name).filter(|c| c.sortable);
    if let Some(key) = field.strip_prefix("custom_fields.") {
        let d = top.defs?.get(key)?;
        if matches!(
            d.field_type,
            CustomFieldType::Boolean | CustomFieldType::MultiSelect
        ) {
            return None;
        }
        return Some(SortKey {
            link: None,
            column: &COMMON[0],
            custom: Some((d.key.clone(), d.field_type, backend)),
        });
    }
    match field.split_once('.') {
        None => Some(SortKey {
            link: None,
            column: sortable(top, field)?,
            custom: None,
        }),
        Some((hop, rest)) => {
            let (link, kind) = top.link(hop)?;
            Some(SortKey {
                link: Some((link, kind)),
                column: sortable(&Scope::of(kind, ALIASES[0], 1), rest)?,
                custom: None,
            })
        }
    }
}

impl Plan {
    /// The link a related sort follows: its column's name and the kind it names, whose sorted
    /// value [`Plan::cursor_after`] then needs.
    pub(crate) fn related_sort(&self) -> Option<(&'static str, EntityKind, &'static str)> {
        self.sort
            .link
            .map(|(link, kind)| (link.name, kind, self.sort.column.name))
    }

    /// The cursor that continues after `last` (a serialized record); `related` is the sorted
    /// value of its linked record when the sort follows a link.
    pub(crate) fn cursor_after(
        &self,
        last: &serde_json::Map<String, Value>,
        id: Uuid,
        related: Option<Value>,
    ) -> String {
        let value = match (&self.sort.custom, self.sort.link) {
            (Some((key, ty, _)), _) => last
                .get("custom_fields")
                .and_then(|c| c.get(key))
                .and_then(|v| match ty {
                    CustomFieldType::Currency => v.get("amount_minor"),
                    _ => Some(v),
                })
                .cloned(),
            (None, None) => last.get(self.sort.column.name).cloned(),
            (None, Some(_)) => related,
        };
        Cursor {
            field: self.sort.name(),
            direction: self.direction,
            value: value.unwrap_or(Value::Null),
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

fn sortable_list(columns: &'static [Column]) -> String {
    COMMON
        .iter()
        .chain(columns)
        .filter(|c| c.sortable)
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Appends the keyset condition "after the cursor's row" of the listed `table`. Empty (NULL)
/// sort values count as larger than any other value: last in ascending order, first in
/// descending order.
fn push_keyset(
    sql: &mut Sql,
    sort: &SortKey,
    table: &'static str,
    dir: Direction,
    cursor: &Cursor,
) -> Option<()> {
    let (gt, op) = match dir {
        Direction::Asc => (true, " > "),
        Direction::Desc => (false, " < "),
    };
    if sort.custom.is_none() && sort.link.is_none() && sort.column.name == "id" {
        sql.push(" and id").push(op).bind(cursor.id);
        return Some(());
    }
    let value = match &cursor.value {
        Value::Null => crate::storage::Arg::Text(None),
        v => sort.arg(v)?,
    };
    let key = |sql: &mut Sql| sort.push(sql, table);
    match (&cursor.value, sort.nullable()) {
        (Value::Null, false) => return None,
        (_, false) => {
            sql.push(" and (");
            key(sql);
            sql.push(", id)").push(op).push("(");
            sql.bind(value).push(", ").bind(cursor.id).push(")");
        }
        (Value::Null, true) => {
            sql.push(" and (");
            key(sql);
            sql.push(" is null and id").push(op).bind(cursor.id);
            if !gt {
                sql.push(" or ");
                key(sql);
                sql.push(" is not null");
            }
            sql.push(")");
        }
        (_, true) => {
            sql.push(" and (");
            key(sql);
            sql.push(op).bind(value.clone()).push(" or (");
            key(sql);
            sql.push(" = ").bind(value);
            sql.push(" and id").push(op).bind(cursor.id).push(")");
            if gt {
                sql.push(" or ");
                key(sql);
                sql.push(" is null");
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

/// Compiles filters and condition trees; every problem goes to `errors`, named by its path in
/// the query.
struct Conditions<'q> {
    backend: Backend,
    /// Filters and groups compiled so far (with the plain filters), against `MAX_FILTERS`.
    nodes: usize,
    errors: &'q mut Vec<FieldError>,
}

impl Conditions<'_> {
    /// Appends one filter on `scope`; under a `not` (`negated`) it reads as false when its field
    /// is empty (`coalesce(…, false)`), so that `not (vip = true)` includes records without
    /// `vip` on both backends instead of following SQL's three-valued logic. Elsewhere filters
    /// stay bare, so indexes serve them.
    fn filter(&mut self, sql: &mut Sql, scope: &Scope<'_>, f: &Filter, path: &str, negated: bool) {
        if negated {
            sql.push("coalesce((");
        }
        if let Err(e) = push_filter(sql, scope, f, self.backend) {
            self.errors.push(FieldError {
                field: format!("{path}.{}", e.field),
                ..e
            });
        }
        if negated {
            sql.push("), false)");
        }
    }

    /// Appends a condition tree on `scope`.
    fn node(
        &mut self,
        sql: &mut Sql,
        scope: &Scope<'_>,
        c: &Condition,
        path: &str,
        depth: usize,
        negated: bool,
    ) {
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
            Condition::Filter(f) => return self.filter(sql, scope, f, path, negated),
            Condition::Not { not } => {
                sql.push("not (");
                self.node(sql, scope, not, &format!("{path}.not"), depth + 1, true);
                sql.push(")");
                return;
            }
            Condition::Exists { exists } => {
                let path = format!("{path}.exists");
                return self.exists(sql, scope, exists, &path, depth);
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
            self.node(sql, scope, item, &here, depth + 1, negated);
        }
        sql.push(")");
    }

    /// Appends `exists` a live record of `r.relation` linking to the `scope` row and matching
    /// `r.condition` (compiled on the linking kind). `exists` is never empty, so a `not` needs
    /// no `coalesce`.
    fn exists(&mut self, sql: &mut Sql, scope: &Scope<'_>, r: &Related, path: &str, depth: usize) {
        let linking = related_link(scope, &r.relation)
            .and_then(|(kind, link)| Ok((scope.next(kind, &r.relation)?, link)));
        let (inner, link) = match linking {
            Ok(found) => found,
            Err(e) => {
                self.errors.push(FieldError {
                    field: format!("{path}.relation"),
                    ..e
                });
                sql.push("1 = 0");
                return;
            }
        };
        let alias = inner.alias;
        sql.push("exists (select 1 from ")
            .push(inner.table)
            .push(" ")
            .push(alias);
        sql.push(" where ").push(alias).push(".organization_id = ");
        sql.push(scope.alias)
            .push(".organization_id and ")
            .push(alias)
            .push(".");
        sql.push(link)
            .push(" = ")
            .push(scope.alias)
            .push(".id and not ");
        sql.push(alias).push(".is_deleted");
        inner.push_reach(sql);
        if let Some(c) = &r.condition {
            sql.push(" and ");
            let here = format!("{path}.where");
            self.node(sql, &inner, c, &here, depth + 1, false);
        }
        sql.push(")");
    }
}

/// The kinds other than `kind` whose records `q` reads through links: linked records of its
/// filters and sort, records that link here in its `exists` conditions (and what those reach).
/// Paths that do not resolve are left out (compiling the query refuses them).
pub(crate) fn linked_kinds(q: &ListQuery, kind: EntityKind) -> Vec<EntityKind> {
    fn path(kind: EntityKind, field: &str, out: &mut Vec<EntityKind>) {
        let mut at = Scope::of(kind, "", 0);
        let mut hops = field.split('.').peekable();
        while let Some(hop) = hops.next() {
            if hops.peek().is_none() || hop == "custom_fields" {
                break;
            }
            let Some((_, next)) = at.link(hop) else {
                break;
            };
            out.push(next);
            at = Scope::of(next, "", 0);
        }
    }
    fn tree(kind: EntityKind, c: &Condition, out: &mut Vec<EntityKind>) {
        match c {
            Condition::And { and: items } | Condition::Or { or: items } => {
                items.iter().for_each(|c| tree(kind, c, out));
            }
            Condition::Not { not } => tree(kind, not, out),
            Condition::Filter(f) => path(kind, &f.field, out),
            Condition::Exists { exists } => {
                if let Ok((linking, _)) = related_link(&Scope::of(kind, "", 0), &exists.relation) {
                    out.push(linking);
                    if let Some(c) = &exists.condition {
                        tree(linking, c, out);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    q.filters
        .iter()
        .for_each(|f| path(kind, &f.field, &mut out));
    if let Some(c) = &q.condition {
        tree(kind, c, &mut out);
    }
    if let Some(s) = &q.sort {
        path(kind, &s.field, &mut out);
    }
    out.retain(|k| *k != kind);
    out.sort_by_key(|k| k.table());
    out.dedup();
    out
}

impl EntityKind {
    /// The column a filter or sort path names from this kind: its own (`name`, `created_at`),
    /// or a linked record's (`account.employee_count`), up to [`MAX_HOPS`] links away; `None`
    /// for anything else (custom fields included).
    ///
    /// ```
    /// use crm_core::EntityKind;
    /// use crm_core::record::Kind;
    /// let c = EntityKind::Opportunity.column_at("primary_contact.account.employee_count");
    /// assert_eq!(c.map(|c| c.kind), Some(Kind::Integer));
    /// assert!(EntityKind::Contact.column_at("account.custom_fields.tier").is_none());
    /// ```
    pub fn column_at(self, path: &str) -> Option<&'static Column> {
        let mut scope = Scope::of(self, "", 0);
        let mut rest = path;
        while let Some((hop, tail)) = rest.split_once('.') {
            let (_, kind) = scope.link(hop)?;
            scope = scope.next(kind, path).ok()?;
            rest = tail;
        }
        scope.column(rest)
    }
}

impl ListQuery {
    /// The kinds other than `kind` (the listed one) whose records this query reads through
    /// links: those of linked-record filters and sorts (`account.name`) and of `exists`
    /// conditions. For callers that grant reading per kind, such as API-key scopes.
    ///
    /// ```
    /// use crm_core::{Condition, EntityKind, ListQuery, Op};
    /// let q = ListQuery::default()
    ///     .filter("account.employee_count", Op::Gt, 500)
    ///     .condition(Condition::exists("opportunities.primary_contact_id", None));
    /// assert_eq!(
    ///     q.linked_kinds(EntityKind::Contact),
    ///     [EntityKind::Account, EntityKind::Opportunity]
    /// );
    /// ```
    pub fn linked_kinds(&self, kind: EntityKind) -> Vec<EntityKind> {
        linked_kinds(self, kind)
    }
}

/// The kind a relation (`opportunities`, `opportunities.primary_contact_id`) names and its link
/// column to `scope`'s kind: the one there is, or the one named.
fn related_link(
    scope: &Scope<'_>,
    relation: &str,
) -> std::result::Result<(EntityKind, &'static str), FieldError> {
    let (table, column) = match relation.split_once('.') {
        Some((table, column)) => (table, Some(column)),
        None => (relation, None),
    };
    let unknown = |msg: String| FieldError::new("", "unknown_relation", msg);
    let kind = EntityKind::from_table(table)
        .ok_or_else(|| unknown(format!("`{table}` is not a kind of record")))?;
    let links: Vec<&'static str> = kind
        .columns()
        .iter()
        .filter(|c| matches!(c.kind, Kind::Ref { table, .. } if table == scope.table))
        .filter(|c| column.is_none_or(|name| c.name == name))
        .map(|c| c.name)
        .collect();
    match links.as_slice() {
        [link] => Ok((kind, link)),
        [] => Err(unknown(format!(
            "no {} links to {} that way",
            kind.name(),
            scope.name
        ))),
        several => Err(unknown(format!(
            "{} links to {} by {}: name one, as `{table}.{}`",
            kind.name(),
            scope.name,
            several.join(", "),
            several[0]
        ))),
    }
}

fn push_filter(
    sql: &mut Sql,
    scope: &Scope<'_>,
    f: &Filter,
    backend: Backend,
) -> std::result::Result<(), FieldError> {
    if crate::validation::holds_nul(&f.value) {
        return Err(FieldError::new(
            "value",
            "invalid_format",
            "must not contain NUL characters",
        ));
    }
    // A field of a linked record: its live record exists and has it.
    if let Some((hop, rest)) = f.field.split_once('.')
        && hop != "custom_fields"
    {
        let Some((link, kind)) = scope.link(hop) else {
            return Err(FieldError::new(
                "field",
                "unknown_field",
                format!("`{hop}` is not a link of {} (in `{}`)", scope.name, f.field),
            ));
        };
        let inner = scope.next(kind, &f.field)?;
        sql.push("exists (select 1");
        push_link_join(sql, kind, inner.alias, scope.alias, link.name);
        inner.push_reach(sql);
        sql.push(" and ");
        let rest = Filter {
            field: rest.to_owned(),
            ..f.clone()
        };
        push_filter(sql, &inner, &rest, backend)?;
        sql.push(")");
        return Ok(());
    }
    // `exists` and `between` are spelled with the other operators.
    match (f.op, &f.value) {
        (Op::Exists, Value::Bool(exists)) => {
            let f = Filter {
                op: Op::IsNull,
                value: Value::Bool(!exists),
                ..f.clone()
            };
            return push_filter(sql, scope, &f, backend);
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
            push_filter(sql, scope, &bound(Op::Gte, &bounds[0]), backend)?;
            sql.push(" and ");
            push_filter(sql, scope, &bound(Op::Lte, &bounds[1]), backend)?;
            sql.push(")");
            return Ok(());
        }
        (Op::Between, _) => return Err(value_error("an array of two values [low, high]")),
        _ => {}
    }
    let named = f.field.strip_prefix("custom_fields.").unwrap_or(&f.field);
    scope.check_visible(named, &f.field)?;
    let target = if let Some(key) = f.field.strip_prefix("custom_fields.") {
        match scope.defs.map(|defs| defs.get(key)) {
            Some(Some(d)) => Target::Custom(d),
            Some(None) => {
                return Err(FieldError::new(
                    "field",
                    "unknown_field",
                    format!("`{key}` is not a custom field of {}", scope.name),
                ));
            }
            None => {
                return Err(FieldError::new(
                    "field",
                    "unknown_field",
                    format!(
                        "custom fields of linked records ({}) are not filterable",
                        scope.name
                    ),
                ));
            }
        }
    } else {
        match scope.column(&f.field) {
            Some(c) => Target::Column(c),
            None => {
                return Err(FieldError::new(
                    "field",
                    "unknown_field",
                    format!("`{}` is not a field of {}", f.field, scope.name),
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

    /// A rep who reads the contacts they own, with one contact shared with them.
    fn rep(shared: Uuid) -> (Uuid, Grants) {
        use crate::access::rules::EntityAccess;
        use std::collections::HashMap;
        let me = Uuid::now_v7();
        let mut entities = HashMap::new();
        entities.insert(
            "contacts".to_owned(),
            EntityAccess {
                read: Reach::Own,
                write: Reach::Own,
                delete: Reach::None,
            },
        );
        let mut shares = HashMap::new();
        shares.insert("contacts", Some(std::sync::Arc::from(vec![shared])));
        let grants = Grants::new(
            entities,
            EntityAccess::ALL,
            HashMap::new(),
            Some(me),
            vec![me],
            vec![me],
            (false, false, false),
        )
        .with_shared(shares)
        .finish(&["accounts", "contacts"]);
        (me, grants)
    }

    #[test]
    fn a_narrow_readers_list_is_a_union_of_ordered_branches_on_postgres() {
        use crate::entities::Contact;
        let shared = Uuid::now_v7();
        let (me, grants) = rep(shared);
        let org = OrganizationId::new();
        let defs = Definitions::default();
        let q = ListQuery::default().filter("last_name", Op::Eq, "Lovelace");
        let union = plan::<Contact>(&q, org, Backend::Postgres, &defs, &grants).unwrap();
        let text = union.sql.text();
        // Owned, created (not owned by the reader), shared (neither): three branches, each
        // ordered and limited, each with the caller's filter.
        assert_eq!(text.matches(" union all ").count(), 2, "{text}");
        assert_eq!(text.matches("order by id asc limit").count(), 4, "{text}");
        assert_eq!(text.matches(" and last_name = ").count(), 3, "{text}");
        assert!(text.contains("contacts.owner_id = $2"), "{text}");
        assert!(text.contains("contacts.created_by = "), "{text}");
        assert!(
            text.contains("contacts.owner_id is null or contacts.owner_id not in ("),
            "{text}"
        );
        // The shared records: their sorted list, joined one by one as the merge asks.
        assert!(
            text.contains("from (select shared_id from unnest($")
                && text.contains(
                    "::uuid[]) shared_id order by shared_id asc) shared cross join lateral ("
                ),
            "{text}"
        );
        assert!(text.contains("contacts.id = shared.shared_id"), "{text}");
        // Page sizes are text, so that PostgreSQL keeps a generic plan.
        assert!(
            text.ends_with(") listed order by id asc limit 51"),
            "{text}"
        );
        assert!(
            union
                .sql
                .args()
                .iter()
                .any(|a| format!("{a:?}").contains(&me.to_string()))
        );
        assert!(
            union
                .sql
                .args()
                .iter()
                .any(|a| format!("{a:?}").contains(&shared.to_string()))
        );

        // A sort other than the id, the trash, or SQLite: one pass with the reach condition.
        for (q, backend) in [
            (
                ListQuery::default().sort("last_name", Direction::Asc),
                Backend::Postgres,
            ),
            (
                ListQuery::default().deleted(Deleted::Include),
                Backend::Postgres,
            ),
            (ListQuery::default(), Backend::Sqlite),
        ] {
            let text = plan::<Contact>(&q, org, backend, &defs, &grants)
                .unwrap()
                .sql
                .text()
                .to_owned();
            assert!(!text.contains("union"), "{text}");
            assert!(text.contains("contacts.owner_id in ("), "{text}");
            assert!(text.contains("contacts.id in ("), "{text}");
        }
        // Bad filters are told once, not once per branch.
        let bad = ListQuery::default().filter("nope", Op::Eq, "x");
        match plan::<Contact>(&bad, org, Backend::Postgres, &defs, &grants) {
            Err(Error::Validation(errors)) => assert_eq!(errors.len(), 1, "{errors:?}"),
            other => panic!("{:?}", other.map(|p| p.sql.text().to_owned())),
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\", true), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("AbC", false), "abc%");
    }
}
