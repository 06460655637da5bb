//! [`PermissionSets`]: the permission sets of an organization, and assigning them to users and
//! API keys.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::rules::{EntityAccess, FieldRule, FieldRules};
use crate::entities::EntityKind;
use crate::error::{Error, Result, ResultExt};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::record::{COMMON_FIELDS, Referable};
use crate::storage::{Conn, Sql};
use crate::tenant::Tenant;
use crate::time::now;
use crate::users::UserId;
use crate::validation::Validator;

/// The id of a permission set.
pub type PermissionSetId = Id<PermissionSet>;

/// What its holders may do: their reach into each entity's records and the rules of fields.
/// Assigned to users (of the `user` role: company admins have every access) and to API keys; a
/// user or key without one has the built-in access of the `user` role
/// ([`EntityAccess::USER`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionSet {
    /// Its id.
    pub id: PermissionSetId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Its name, unique in the organization ignoring case.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The access to each entity, by table (`accounts`); an entity not named is not reached
    /// at all.
    pub entities: BTreeMap<String, EntityAccess>,
    /// Field rules, by table then field (a column or a custom field's key).
    pub fields: BTreeMap<String, FieldRules>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Referable for PermissionSet {
    const TABLE: &'static str = "permission_sets";
    const NAME: &'static str = "permission_set";
    const SOFT_DELETE: bool = false;
}

/// Input of [`PermissionSets::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPermissionSet {
    /// Its name (1–100 characters).
    pub name: String,
    /// What it is for (up to 1,000 characters).
    #[serde(default)]
    pub description: String,
    /// The access to each entity, by table.
    #[serde(default)]
    pub entities: BTreeMap<String, EntityAccess>,
    /// Field rules, by table then field.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRules>,
}

/// Input of [`PermissionSets::update`]: what is given replaces what was.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PermissionSetPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// The access to each entity (all of it: entities left out are no longer reached).
    pub entities: Option<BTreeMap<String, EntityAccess>>,
    /// The field rules (all of them).
    pub fields: Option<BTreeMap<String, FieldRules>>,
}

/// The most field rules a permission set holds in all.
pub const MAX_FIELD_RULES: usize = 500;

/// A set's rules as stored, read for resolving grants.
pub(crate) struct StoredRules {
    pub(crate) entities: HashMap<String, EntityAccess>,
    pub(crate) fields: HashMap<String, FieldRules>,
}

impl StoredRules {
    /// The rules of set `id` of the tenant's organization.
    pub(crate) async fn read(conn: &mut Conn<'_>, tenant: &Tenant, id: Uuid) -> Result<Self> {
        let mut q =
            Sql::new("select entities, fields from permission_sets where organization_id = ");
        q.bind(tenant.context().organization_id())
            .push(" and id = ")
            .bind(id);
        let (entities, fields): (String, String) = conn
            .fetch_optional(&q)
            .await?
            .ok_or_else(|| Error::not_found(PermissionSet::NAME, id))?;
        let mut fields: HashMap<String, FieldRules> = parse(&fields)?;
        hide_formulas_over_hidden(conn, tenant, &mut fields).await?;
        Ok(Self {
            entities: parse(&entities)?,
            fields,
        })
    }
}

/// Adds to `fields` (rules by table) a hidden rule for every formula that reads a hidden field:
/// its value would show what the rule hides. The formulas are the definitions cache's, parsed.
async fn hide_formulas_over_hidden(
    conn: &mut Conn<'_>,
    tenant: &Tenant,
    fields: &mut HashMap<String, FieldRules>,
) -> Result<()> {
    for kind in EntityKind::ALL {
        let Some(rules) = fields.get_mut(kind.table()) else {
            continue;
        };
        let hidden: Vec<&str> = rules
            .iter()
            .filter(|(_, r)| **r == FieldRule::Hidden)
            .map(|(f, _)| f.as_str())
            .collect();
        if hidden.is_empty() {
            continue;
        }
        let derived = crate::custom_fields::load(tenant, kind.name(), conn)
            .await?
            .formulas_reading(&hidden);
        for key in derived {
            rules.insert(key, FieldRule::Hidden);
        }
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(stored: &str) -> Result<T> {
    serde_json::from_str(stored)
        .map_err(|e| Error::Internal(format!("a stored permission set does not parse: {e}")))
}

fn stored<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

const COLUMNS: &str =
    "id, organization_id, name, description, entities, fields, version, created_at, updated_at";

type Row = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    String,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn from_row(row: Row) -> Result<PermissionSet> {
    let (id, org, name, description, entities, fields, version, created_at, updated_at) = row;
    Ok(PermissionSet {
        id: Id::from_uuid(id),
        organization_id: OrganizationId::from_uuid(org),
        name,
        description,
        entities: parse(&entities)?,
        fields: parse(&fields)?,
        version,
        created_at,
        updated_at,
    })
}

/// Checks a set's entities and field rules against the registry: known tables, known columns
/// (or well-formed custom-field keys), `hidden` only on fields an answer can go without
/// (columns that may be empty, and custom fields), nothing on the common columns.
fn check_rules(
    entities: &BTreeMap<String, EntityAccess>,
    fields: &BTreeMap<String, FieldRules>,
    v: &mut Validator,
) {
    let known = || {
        EntityKind::ALL
            .iter()
            .map(|k| k.table())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for table in entities.keys() {
        if EntityKind::from_table(table).is_none() {
            v.push(
                format!("entities.{table}"),
                "unknown_entity",
                format!("unknown entity `{table}`; entities are {}", known()),
            );
        }
    }
    let mut count = 0;
    for (table, rules) in fields {
        let Some(kind) = EntityKind::from_table(table) else {
            v.push(
                format!("fields.{table}"),
                "unknown_entity",
                format!("unknown entity `{table}`; entities are {}", known()),
            );
            continue;
        };
        count += rules.len();
        for (field, rule) in rules {
            let path = format!("fields.{table}.{field}");
            if COMMON_FIELDS.contains(&field.as_str()) || field == "custom_fields" {
                v.push(
                    &path,
                    "not_ruled",
                    format!("`{field}` is common to every record and cannot be ruled"),
                );
                continue;
            }
            match kind.columns().iter().find(|c| c.name == field) {
                Some(c) if *rule == FieldRule::Hidden && !c.nullable => v.push(
                    &path,
                    "not_hideable",
                    format!(
                        "`{field}` is required on every {}: it may be read_only, not hidden",
                        kind.name()
                    ),
                ),
                Some(_) => {}
                None if crate::storage::FieldKey::new(field).is_some() => {}
                None => v.push(
                    &path,
                    "unknown_field",
                    format!("`{field}` is neither a column of {table} nor a custom field key"),
                ),
            }
        }
    }
    v.check(
        count <= MAX_FIELD_RULES,
        "fields",
        "too_many",
        &format!("at most {MAX_FIELD_RULES} field rules"),
    );
}

fn check_name(name: &str, v: &mut Validator) {
    v.text("name", name, true, 100);
}

impl Tenant {
    /// The organization's permission sets (company admins and API keys with every scope
    /// manage them).
    pub fn permission_sets(&self) -> PermissionSets<'_> {
        PermissionSets { tenant: self }
    }
}

/// The permission sets of one organization. Reached through [`Tenant::permission_sets`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::access::{EntityAccess, NewPermissionSet, Reach};
/// use crm_core::{Crm, NewOrganization, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let rep = EntityAccess { read: Reach::Team, write: Reach::Own, delete: Reach::None };
/// let set = t.permission_sets().create(NewPermissionSet {
///     name: "Sales rep".into(),
///     entities: [("opportunities".to_owned(), rep)].into(),
///     ..Default::default()
/// }).await?;
/// assert_eq!(set.entities["opportunities"].read, Reach::Team);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PermissionSets<'t> {
    tenant: &'t Tenant,
}

impl PermissionSets<'_> {
    fn org(&self) -> OrganizationId {
        self.tenant.context().organization_id()
    }

    async fn require_manage(&self) -> Result<()> {
        self.tenant
            .grants()
            .await?
            .require_manage("only company admins may manage permission sets")
    }

    /// Every permission set, by name.
    pub async fn list(&self) -> Result<Vec<PermissionSet>> {
        self.require_manage().await?;
        let mut s = self.tenant.session().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(" from permission_sets where organization_id = ")
            .bind(self.org())
            .push(" order by lower(name), id");
        let rows: Vec<Row> = s.conn().fetch_all(&q).await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The permission set `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get(&self, id: PermissionSetId) -> Result<PermissionSet> {
        self.require_manage().await?;
        let mut s = self.tenant.session().await?;
        read(&mut s.conn(), self.org(), id, false).await
    }

    /// Creates a permission set.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad name, an unknown entity or field, `hidden` on a required
    /// column; [`Error::Conflict`] (`duplicate`) for a name taken.
    pub async fn create(&self, new: NewPermissionSet) -> Result<PermissionSet> {
        self.require_manage().await?;
        let name = new.name.trim().to_owned();
        let mut v = Validator::new();
        check_name(&name, &mut v);
        v.text("description", &new.description, false, 1000);
        check_rules(&new.entities, &new.fields, &mut v);
        v.finish()?;
        let (id, at) = (PermissionSetId::new(), now());
        let ctx = *self.tenant.context();
        let org = self.org();
        let set = self
            .tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                let mut q = Sql::new(
                    "insert into permission_sets (organization_id, id, name, description, entities, fields, created_at, updated_at) values (",
                );
                q.bind(org).push(", ").bind(id).push(", ").bind(name.clone());
                q.push(", ").bind(new.description.clone()).push(", ");
                q.bind(stored(&new.entities)).push(", ").bind(stored(&new.fields));
                q.push(", ").bind(at).push(", ").bind(at).push(")");
                tx.conn().execute(&q).await.on_unique(|| TAKEN.to_owned())?;
                let changes = json!({ "name": name, "entities": new.entities, "fields": new.fields });
                events::append(
                    &mut tx.conn(),
                    &ctx,
                    events::PERMISSION_SET,
                    id.uuid(),
                    Action::Created,
                    object(changes),
                )
                .await?;
                read(&mut tx.conn(), org, id, false).await
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        Ok(set)
    }

    /// Changes permission set `id` (at `expected_version`, when given). Its holders act with
    /// the new rules at once in this process, within 30 seconds in others.
    ///
    /// # Errors
    /// As [`PermissionSets::create`]; [`Error::NotFound`]; [`Error::VersionMismatch`].
    pub async fn update(
        &self,
        id: PermissionSetId,
        expected_version: Option<i64>,
        patch: PermissionSetPatch,
    ) -> Result<PermissionSet> {
        self.require_manage().await?;
        let name = patch.name.as_deref().map(|n| n.trim().to_owned());
        let mut v = Validator::new();
        if let Some(n) = &name {
            check_name(n, &mut v);
        }
        if let Some(d) = &patch.description {
            v.text("description", d, false, 1000);
        }
        let empty_entities = BTreeMap::new();
        let empty_fields = BTreeMap::new();
        check_rules(
            patch.entities.as_ref().unwrap_or(&empty_entities),
            patch.fields.as_ref().unwrap_or(&empty_fields),
            &mut v,
        );
        v.finish()?;
        let ctx = *self.tenant.context();
        let org = self.org();
        let set = self
            .tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let current = read(&mut tx.conn(), org, id, true).await?;
                    if let Some(expected) = expected_version
                        && expected != current.version
                    {
                        return Err(Error::VersionMismatch {
                            expected,
                            actual: current.version,
                        });
                    }
                    let mut changes = Map::new();
                    let mut q =
                        Sql::new("update permission_sets set version = version + 1, updated_at = ");
                    q.bind(now());
                    if let Some(n) = &name
                        && *n != current.name
                    {
                        q.push(", name = ").bind(n.clone());
                        changes.insert("name".into(), json!([current.name, n]));
                    }
                    if let Some(d) = &patch.description
                        && *d != current.description
                    {
                        q.push(", description = ").bind(d.clone());
                        changes.insert("description".into(), json!([current.description, d]));
                    }
                    if let Some(e) = &patch.entities
                        && *e != current.entities
                    {
                        q.push(", entities = ").bind(stored(e));
                        changes.insert("entities".into(), json!([current.entities, e]));
                    }
                    if let Some(f) = &patch.fields
                        && *f != current.fields
                    {
                        q.push(", fields = ").bind(stored(f));
                        changes.insert("fields".into(), json!([current.fields, f]));
                    }
                    if changes.is_empty() {
                        return Ok(current);
                    }
                    q.push(" where organization_id = ")
                        .bind(org)
                        .push(" and id = ")
                        .bind(id);
                    tx.conn().execute(&q).await.on_unique(|| TAKEN.to_owned())?;
                    events::append(
                        &mut tx.conn(),
                        &ctx,
                        events::PERMISSION_SET,
                        id.uuid(),
                        Action::Updated,
                        changes,
                    )
                    .await?;
                    read(&mut tx.conn(), org, id, false).await
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        Ok(set)
    }

    /// Deletes permission set `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Conflict`] (`in_use`) while a user or an API key holds it.
    pub async fn delete(&self, id: PermissionSetId) -> Result<()> {
        self.require_manage().await?;
        let ctx = *self.tenant.context();
        let org = self.org();
        self.tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                let current = read(&mut tx.conn(), org, id, true).await?;
                let mut q = Sql::new("select (select count(*) from users where organization_id = ");
                q.bind(org).push(" and permission_set_id = ").bind(id);
                q.push(") + (select count(*) from api_keys where organization_id = ")
                    .bind(org)
                    .push(" and revoked_at is null and permission_set_id = ")
                    .bind(id)
                    .push(") + (select count(*) from webhook_subscriptions where organization_id = ")
                    .bind(org)
                    .push(" and permission_set_id = ")
                    .bind(id)
                    .push(")");
                let (holders,): (i64,) = tx.conn().fetch_one(&q).await?;
                if holders > 0 {
                    return Err(Error::conflict(
                        "in_use",
                        format!(
                            "permission set `{}` is held by {holders} users, API keys or webhook subscriptions; assign them another first",
                            current.name
                        ),
                    ));
                }
                // Revoked keys keep no set.
                let mut q = Sql::new("update api_keys set permission_set_id = null where organization_id = ");
                q.bind(org).push(" and permission_set_id = ").bind(id);
                tx.conn().execute(&q).await?;
                let mut q = Sql::new("delete from permission_sets where organization_id = ");
                q.bind(org).push(" and id = ").bind(id);
                tx.conn().execute(&q).await?;
                let changes = object(json!({ "name": current.name }));
                events::append(&mut tx.conn(), &ctx, events::PERMISSION_SET, id.uuid(), Action::Purged, changes)
                    .await?;
                Ok(())
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        Ok(())
    }

    /// Gives user `user` the permission set `set` (`None`: back to their role's built-in
    /// access). A company admin's set takes effect only if they become a `user` again.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user or set.
    pub async fn assign_to_user(
        &self,
        user: UserId,
        set: Option<PermissionSetId>,
    ) -> Result<crate::users::User> {
        self.assign("users", "user", user.uuid(), set).await?;
        self.tenant.users().get(user).await
    }

    /// Gives API key `key` the permission set `set` (`None`: the built-in access of the `user`
    /// role); its scopes still narrow it.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or revoked key, or an unknown set.
    pub async fn assign_to_api_key(&self, key: Uuid, set: Option<PermissionSetId>) -> Result<()> {
        self.assign("api_keys", "api_key", key, set).await
    }

    /// Makes webhook subscription `subscription` deliver with the permission set `set`: records
    /// out of the set's reach arrive as tombstones, fields it hides are removed (`None`: every
    /// record and field, as before).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown subscription or set.
    pub async fn assign_to_webhook_subscription(
        &self,
        subscription: Uuid,
        set: Option<PermissionSetId>,
    ) -> Result<()> {
        self.assign(
            "webhook_subscriptions",
            "webhook subscription",
            subscription,
            set,
        )
        .await
    }

    async fn assign(
        &self,
        table: &'static str,
        name: &'static str,
        holder: Uuid,
        set: Option<PermissionSetId>,
    ) -> Result<()> {
        self.require_manage().await?;
        let ctx = *self.tenant.context();
        let org = self.org();
        self.tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    if let Some(set) = set {
                        read(&mut tx.conn(), org, set, false).await?;
                    }
                    let mut q = Sql::new("update ");
                    q.push(table).push(" set permission_set_id = ").bind(set);
                    q.push(" where organization_id = ")
                        .bind(org)
                        .push(" and id = ")
                        .bind(holder);
                    if table == "api_keys" {
                        q.push(" and revoked_at is null");
                    }
                    if tx.conn().execute(&q).await? == 0 {
                        return Err(Error::not_found(name, holder));
                    }
                    let changes = object(json!({ "holder": name, "permission_set_id": set }));
                    let event_entity = if table == "users" {
                        events::USER
                    } else {
                        events::PERMISSION_SET
                    };
                    events::append(
                        &mut tx.conn(),
                        &ctx,
                        event_entity,
                        holder,
                        Action::Updated,
                        changes,
                    )
                    .await?;
                    Ok(())
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        Ok(())
    }
}

/// Set `id`, locked for update when `lock`.
async fn read(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    id: PermissionSetId,
    lock: bool,
) -> Result<PermissionSet> {
    let mut q = Sql::new("select ");
    q.push(COLUMNS)
        .push(" from permission_sets where organization_id = ")
        .bind(org)
        .push(" and id = ")
        .bind(id);
    if lock {
        q.push(conn.backend().lock_rows());
    }
    let row: Row = conn
        .fetch_optional(&q)
        .await?
        .ok_or_else(|| Error::not_found(PermissionSet::NAME, id))?;
    from_row(row)
}

/// What a unique-name violation means.
const TAKEN: &str = "a permission set of this name exists";

/// The map of a JSON object (`{}` for anything else): an event's changes.
pub(super) fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
