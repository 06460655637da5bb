//! [`Organizations`]: the installation-level service that creates, reads and suspends tenants.

use super::model::{NewOrganization, Organization, OrganizationId, OrganizationStatus};
use crate::context::TenantContext;
use crate::crm::Crm;
use crate::error::{Error, Result, ResultExt as _};
use crate::pipelines;
use crate::storage::{Arg, Sql, Tx};
use crate::time::now;
use crate::users::Role;
use crate::users::{NewUser, PreparedUser, User};
use crate::validation::Validator;

impl Crm {
    /// Installation-level administration of organizations, for the host itself (an operator's
    /// tool, a set-up script): no caller is checked. For a caller, [`Crm::organizations_for`].
    pub fn organizations(&self) -> Organizations<'_> {
        Organizations::new(self)
    }

    /// [`Crm::organizations`] for `caller`, once found to be a super-admin signed in as a
    /// user (what `crm-axum`'s `/organizations` routes call).
    ///
    /// # Errors
    /// [`Error::Forbidden`] `super_admin_only` for anyone else.
    pub fn organizations_for(&self, caller: &TenantContext) -> Result<Organizations<'_>> {
        crate::access::roles::require_super_admin(caller, "administer organizations")?;
        Ok(self.organizations())
    }

    /// `caller`, a super-admin signed in as a user, acting in `organization`: the context
    /// their calls there run in, attributed to them in that organization's event log.
    ///
    /// # Errors
    /// [`Error::Forbidden`] `super_admin_only` for anyone else; [`Error::NotFound`] when
    /// there is no such organization.
    pub async fn act_in(
        &self,
        caller: &TenantContext,
        organization: OrganizationId,
    ) -> Result<TenantContext> {
        let user =
            crate::access::roles::require_super_admin(caller, "act in another organization")?;
        let org = self.organizations().get(organization).await?;
        Ok(TenantContext::user(org.id, user, caller.role()))
    }
}

/// Creates, reads and suspends organizations. Reached through [`Crm::organizations`] (the host
/// decides who may call it) or [`Crm::organizations_for`] (super-admins only).
#[derive(Debug, Clone, Copy)]
pub struct Organizations<'c> {
    crm: &'c Crm,
}

/// The longest trash retention an organization may have, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The columns of an [`Organization`].
const COLUMNS: &str = "id, name, slug, status, trash_retention_days, created_at, updated_at";
/// `select <COLUMNS> from organizations`, for the caller to go on.
fn select() -> Sql {
    let mut q = Sql::new("select ");
    q.push(COLUMNS).push(" from organizations");
    q
}

impl<'c> Organizations<'c> {
    pub(crate) fn new(crm: &'c Crm) -> Self {
        Self { crm }
    }

    /// Creates an organization.
    ///
    /// # Errors
    /// [`Error::Validation`] for a blank name or a malformed slug, [`Error::Conflict`] when the
    /// slug is taken.
    pub async fn create(&self, new: NewOrganization) -> Result<Organization> {
        let id = OrganizationId::new();
        let mut s = self.crm.pool().global().await?;
        let mut tx = s.begin().await?;
        let out = insert_in(&mut tx, id, new).await;
        tx.settle(out).await
    }

    /// Creates an organization and its first company admin in one transaction: either both
    /// exist afterwards or neither (self-service sign-up).
    ///
    /// # Errors
    /// As [`Organizations::create`] and [`crate::Users::create`]; the admin's role is always
    /// `company_admin`.
    pub async fn create_with_admin(
        &self,
        new: NewOrganization,
        admin: NewUser,
    ) -> Result<(Organization, User)> {
        let id = OrganizationId::new();
        let ctx = TenantContext::system(id);
        let admin = NewUser {
            role: Role::CompanyAdmin,
            ..admin
        };
        // Checks and hashing first: a bad admin leaves nothing behind, and no lock is held while
        // argon2 runs.
        let prepared = PreparedUser::new(self.crm, &ctx, admin).await?;
        let mut s = self.crm.pool().global().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let org = insert_in(&mut tx, id, new).await?;
            let user = prepared.insert_in(&mut tx, &ctx).await?;
            Ok((org, user))
        }
        .await;
        tx.settle(out).await
    }

    /// The organization with `id`.
    pub async fn get(&self, id: OrganizationId) -> Result<Organization> {
        let mut q = select();
        q.push(" where id = ").bind(id);
        self.one(id, &q).await
    }

    /// The organization `q` reads or writes back, or `NotFound` for `id`.
    async fn one(&self, id: OrganizationId, q: &Sql) -> Result<Organization> {
        let mut s = self.crm.pool().global().await?;
        s.conn()
            .fetch_optional(q)
            .await?
            .ok_or(Error::not_found("organization", id))
    }

    /// The organization with `slug`.
    pub async fn get_by_slug(&self, slug: &str) -> Result<Organization> {
        let mut q = select();
        q.push(" where slug = ").bind(slug);
        let mut s = self.crm.pool().global().await?;
        s.conn().fetch_optional(&q).await?.ok_or(Error::NotFound {
            entity: "organization",
            id: None,
        })
    }

    /// Up to `limit` (≤ 100) organizations in creation order, after `after` when given.
    pub async fn list(
        &self,
        after: Option<OrganizationId>,
        limit: u32,
    ) -> Result<Vec<Organization>> {
        let mut q = select();
        if let Some(after) = after {
            q.push(" where id > ").bind(after);
        }
        q.push(" order by id").limit(limit.clamp(1, 100));
        let mut s = self.crm.pool().global().await?;
        s.conn().fetch_all(&q).await
    }

    /// Sets how many days the organization keeps trashed records before the daily purge job
    /// removes them (1 to 36,500).
    ///
    /// # Errors
    /// [`Error::Validation`] for a number of days out of range; [`Error::NotFound`].
    pub async fn set_trash_retention(&self, id: OrganizationId, days: u32) -> Result<Organization> {
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(Error::invalid(
                "trash_retention_days",
                "out_of_range",
                format!("must be between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        self.update(id, "trash_retention_days", i64::from(days))
            .await
    }

    /// Sets the organization's status (suspend or resume it).
    pub async fn set_status(
        &self,
        id: OrganizationId,
        status: OrganizationStatus,
    ) -> Result<Organization> {
        self.update(id, "status", status.as_str()).await
    }

    /// Sets one column of the organization, and `updated_at`.
    async fn update(
        &self,
        id: OrganizationId,
        column: &'static str,
        value: impl Into<Arg>,
    ) -> Result<Organization> {
        let mut q = Sql::new("update organizations set ");
        q.push(column).push(" = ").bind(value);
        q.push(", updated_at = ").bind(now());
        q.push(" where id = ").bind(id);
        q.push(" returning ").push(COLUMNS);
        self.one(id, &q).await
    }
}

/// Inserts organization `id` with its default pipeline inside the caller's transaction, and
/// binds the transaction to it (PostgreSQL) so that its own rows can be written next.
async fn insert_in(
    tx: &mut Tx<'_>,
    id: OrganizationId,
    new: NewOrganization,
) -> Result<Organization> {
    let mut v = Validator::new();
    v.text("name", &new.name, true, 200);
    let slug = match &new.slug {
        Some(s) => {
            v.check(
                is_slug(s),
                "slug",
                "invalid_format",
                "must be 1-63 characters of a-z, 0-9 and '-'",
            );
            s.clone()
        }
        None => slugify(&new.name),
    };
    v.finish()?;
    let at = now();
    let mut q = Sql::new(
        "insert into organizations (id, name, slug, status, created_at, updated_at) values (",
    );
    q.bind(id)
        .push(", ")
        .bind(new.name.trim())
        .push(", ")
        .bind(slug.clone());
    q.push(", 'active', ").bind(at).push(", ").bind(at);
    q.push(") returning ").push(COLUMNS);
    let org: Organization = tx
        .conn()
        .fetch_one(&q)
        .await
        .on_unique(|| format!("an organization with slug `{slug}` already exists"))?;
    // The new tenant's own rows are written under its id, set for this transaction only (the
    // connection's own binding comes back at commit).
    if tx.conn().backend().binds_tenants() {
        let mut bind = Sql::new("select set_config('crm.org_id', ");
        bind.bind(org.id.to_string()).push(", true)");
        tx.conn().execute(&bind).await?;
    }
    pipelines::insert(&mut tx.conn(), org.id, &pipelines::default_pipeline(), true).await?;
    Ok(org)
}

fn is_slug(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `"Acme Corp!"` → `"acme-corp"`; falls back to `org` for names with no ASCII letters.
fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 50 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "org".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Corp!"), "acme-corp");
        assert_eq!(slugify("  Ünïcode  "), "n-code");
        assert_eq!(slugify("!!!"), "org");
        assert!(is_slug("acme-corp") && !is_slug("Acme") && !is_slug("-a") && !is_slug(""));
    }
}
