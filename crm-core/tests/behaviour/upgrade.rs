//! Upgrading to the access model: a database made before it (migrations up to 0016, the
//! previous release) takes migrations 0017 and 0018, and every caller keeps what they had —
//! users read and change every record and trash what they own, admins everything, API keys
//! their scopes.

use std::path::Path;

use crm_core::auth::{ApiKeyScope, NewApiKey};
use crm_core::sqlx;
use crm_core::{
    AccountPatch, Crm, EntityKind, Error, ListQuery, NewAccount, NewOrganization, NewUser, Role,
    TenantContext,
};
use uuid::Uuid;

use crate::harness;

/// The first migration of the access model: what the previous release did not have.
const FIRST_NEW: i64 = 17;

/// Applies to `url` the migrations of `backend` (`sqlite`, `postgres`) the previous release
/// had, recorded where the library records them.
async fn at_previous_release(url: &str, backend: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut m = sqlx::migrate::Migrator::new(dir).await.unwrap();
    m.dangerous_set_table_name("_crm_migrations");
    let old: Vec<_> = m
        .migrations
        .iter()
        .filter(|m| m.version < FIRST_NEW)
        .cloned()
        .collect();
    assert!(old.len() >= 16, "{} migrations", old.len());
    m.migrations = old.into();
    match backend {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            m.run(&pool).await.unwrap();
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            m.run(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// What the previous release's database held: an organization, an admin-made account owned by
/// a user, another nobody owns, and an API key that reads accounts only.
struct Before {
    org: crm_core::OrganizationId,
    user: crm_core::UserId,
    users_account: crm_core::AccountId,
    others_account: crm_core::AccountId,
    key: Uuid,
}

/// Fills the database at `url` (at the previous release's schema) through calls that touch
/// only what that schema has.
async fn fill(url: &str) -> Before {
    let crm = Crm::builder()
        .database_url(url)
        .migrate(false)
        .build()
        .await
        .unwrap();
    let org = crm
        .organizations()
        .create(NewOrganization {
            name: "Before".into(),
            slug: None,
        })
        .await
        .unwrap();
    let system = crm.tenant(&TenantContext::system(org.id));
    let user = system
        .users()
        .create(NewUser {
            email: "rep@example.com".into(),
            name: "Rep".into(),
            password: None,
            role: Role::User,
        })
        .await
        .unwrap()
        .id;
    let account = |name: &str, owner| NewAccount {
        name: name.into(),
        owner_id: owner,
        annual_revenue_minor: Some(7),
        annual_revenue_currency: Some("EUR".into()),
        ..Default::default()
    };
    let users_account = system
        .accounts()
        .create(account("The rep's", Some(user)))
        .await
        .unwrap()
        .id;
    let others_account = system
        .accounts()
        .create(account("Nobody's", None))
        .await
        .unwrap()
        .id;
    let (key, _) = system
        .api_keys()
        .create(NewApiKey {
            name: "reader".into(),
            scopes: vec![ApiKeyScope::Read(EntityKind::Account)],
        })
        .await
        .unwrap();
    Before {
        org: org.id,
        user,
        users_account,
        others_account,
        key: key.id.uuid(),
    }
}

/// Upgrades the database at `url` filled by [`fill`] and checks the old expectations.
async fn upgrade_keeps_every_callers_access(url: &str) {
    let before = fill(url).await;
    let crm = harness::connect(url).await.unwrap();
    let status = crm.migration_status().await.unwrap();
    assert!(status.iter().all(|m| m.applied), "{status:?}");
    assert!(status.iter().any(|m| m.version == FIRST_NEW + 1));

    // A user reads every account (fields and all), changes one they do not own, trashes only
    // what they own, as before.
    let user = crm.tenant(&TenantContext::user(before.org, before.user, Role::User));
    let page = user.accounts().list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.data.len(), 2);
    assert!(page.data.iter().all(|a| a.annual_revenue_minor == Some(7)));
    user.accounts()
        .update(
            before.others_account,
            AccountPatch {
                city: Some(Some("Oslo".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        user.accounts().delete(before.others_account).await,
        Err(Error::Forbidden(r)) if r.code == "not_owner"
    ));
    user.accounts().delete(before.users_account).await.unwrap();
    // The admin (the system here) still reaches everything, the trash included.
    let admin = crm.tenant(&TenantContext::system(before.org));
    admin
        .accounts()
        .restore(before.users_account)
        .await
        .unwrap();
    // The key reads accounts and nothing else, and writes nothing.
    let key = crm.tenant(&TenantContext::api_key(before.org, before.key));
    assert_eq!(
        key.accounts()
            .list(&ListQuery::default())
            .await
            .unwrap()
            .data
            .len(),
        2
    );
    assert!(matches!(
        key.accounts()
            .update(
                before.others_account,
                AccountPatch {
                    city: None,
                    name: Some("X".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        key.contacts().list(&ListQuery::default()).await,
        Err(Error::Forbidden(r)) if r.code == "out_of_scope"
    ));
}

#[tokio::test]
async fn a_database_of_the_previous_release_upgrades_with_unchanged_access() {
    let dir = std::env::temp_dir().join(format!("crm-upgrade-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("crm.db").display());
    at_previous_release(&url, "sqlite").await;
    upgrade_keeps_every_callers_access(&url).await;
    std::fs::remove_dir_all(&dir).ok();

    if let Some(url) = harness::postgres_schema_url().await {
        at_previous_release(&url, "postgres").await;
        upgrade_keeps_every_callers_access(&url).await;
    }
}
