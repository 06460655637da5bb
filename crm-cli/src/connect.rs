//! Connecting to the database and finding organizations.

use anyhow::Context as _;
use crm_core::{Crm, Organization, OrganizationId, Tenant, TenantContext, User, UserId};

/// Connects to `url`; applies pending migrations when `migrate`; keeps the URL's role on
/// PostgreSQL when `no_rls`; enqueues to and works the job queue `job_queue`; sends webhooks
/// where `webhooks` allows.
pub(crate) async fn connect(
    url: &str,
    migrate: bool,
    no_rls: bool,
    job_queue: &str,
    webhooks: crm_core::WebhookPolicy,
) -> anyhow::Result<Crm> {
    // CRM_STATEMENT_TIMEOUT_MS bounds each PostgreSQL statement (default 30 s).
    let settings = crm_core::PoolSettings::from_env()?;
    let builder = Crm::builder()
        .database_url(url)
        .pool(settings)
        .migrate(migrate)
        .job_queue(job_queue)
        .webhook_policy(webhooks);
    let builder = if no_rls {
        builder.postgres_role(None)
    } else {
        builder
    };
    builder
        .build()
        .await
        .with_context(|| format!("cannot open the database at {}", redact(url)))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The organization named by `key`: its id or its slug.
pub(crate) async fn organization(crm: &Crm, key: &str) -> anyhow::Result<Organization> {
    let found = match key.parse::<OrganizationId>() {
        Ok(id) => crm.organizations().get(id).await,
        Err(_) => crm.organizations().get_by_slug(key).await,
    };
    found.with_context(|| format!("unknown organization `{key}` (give its slug or id)"))
}

/// Every organization (or the first `limit`), in creation order, page by page.
pub(crate) async fn organizations(
    crm: &Crm,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Organization>> {
    let mut all: Vec<Organization> = Vec::new();
    loop {
        let page = crm
            .organizations()
            .list(all.last().map(|o| o.id), 100)
            .await?;
        let done = page.len() < 100;
        all.extend(page);
        if done || limit.is_some_and(|l| all.len() >= l) {
            all.truncate(limit.unwrap_or(usize::MAX));
            return Ok(all);
        }
    }
}

/// The system acting inside organization `key`.
pub(crate) async fn system(crm: &Crm, key: &str) -> anyhow::Result<Tenant> {
    let org = organization(crm, key).await?;
    Ok(crm.tenant(&TenantContext::system(org.id)))
}

/// The user named by `key` (an email or an id) in the organization of `t`.
pub(crate) async fn user(t: &Tenant, key: &str) -> anyhow::Result<User> {
    let found = match key.parse::<UserId>() {
        Ok(id) => t.users().get(id).await,
        Err(_) => t.users().get_by_email(key).await,
    };
    found.with_context(|| format!("unknown user `{key}` (give an email or id)"))
}

/// The tenant a records command acts as in organization `org`: the system, which reaches
/// everything, or with `as_user` (an email or id) that active user, with their role, permission
/// set, teams and shares, exactly as the API would serve them.
pub(crate) async fn acting(crm: &Crm, org: &str, as_user: Option<&str>) -> anyhow::Result<Tenant> {
    let t = system(crm, org).await?;
    let Some(key) = as_user else {
        return Ok(t);
    };
    let u = user(&t, key).await?;
    anyhow::ensure!(u.is_active, "user `{key}` is deactivated");
    Ok(crm.tenant(&TenantContext::user(u.organization_id, u.id, u.role)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://crm.db"), "sqlite://crm.db");
    }
}
