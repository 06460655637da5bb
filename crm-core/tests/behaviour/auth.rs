//! Principals, refresh-token families, API keys and idempotency keys.

use std::time::Duration;

use crm_core::auth::{ApiKeyScope, Begin, NewApiKey, StoredResponse};
use crm_core::{Crm, EntityKind, Error, OrganizationStatus, TenantContext};

use crate::harness::{self, Org};

crate::on_both_backends!(
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    principals_reflect_deactivation_and_suspension,
    api_keys_verify_until_revoked_and_stay_in_their_organization,
    api_keys_carry_their_scopes_and_their_own_prefix,
    idempotency_keys_replay_refuse_and_expire,
    idempotency_keys_belong_to_their_caller,
    expired_keys_and_tokens_are_swept,
);

const TTL: Duration = Duration::from_secs(3600);

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let auth = crm.auth();
    let p = auth.principal(org.id, org.user).await.unwrap();
    let first = auth.issue_refresh_token(&p, TTL).await.unwrap();
    let (again, second) = auth.rotate_refresh_token(&first.token, TTL).await.unwrap();
    assert_eq!(again, p);
    // Reusing the first revokes the family: the second no longer works either.
    assert!(matches!(
        auth.rotate_refresh_token(&first.token, TTL).await,
        Err(Error::Unauthenticated)
    ));
    assert!(matches!(
        auth.rotate_refresh_token(&second.token, TTL).await,
        Err(Error::Unauthenticated)
    ));
    // A token whose secret is altered is unknown.
    let other = auth.issue_refresh_token(&p, TTL).await.unwrap();
    let mut forged = other.token.clone();
    forged.pop();
    forged.push(if other.token.ends_with('A') { 'B' } else { 'A' });
    assert!(auth.rotate_refresh_token(&forged, TTL).await.is_err());
    // Sign-out revokes; an expired token is refused.
    auth.revoke_refresh_token(&other.token).await.unwrap();
    assert!(auth.rotate_refresh_token(&other.token, TTL).await.is_err());
    let short = auth.issue_refresh_token(&p, Duration::ZERO).await.unwrap();
    assert!(auth.rotate_refresh_token(&short.token, TTL).await.is_err());
}

async fn principals_reflect_deactivation_and_suspension(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let auth = crm.auth();
    assert!(auth.principal(org.id, org.user).await.is_ok());
    // Plain users may not deactivate anyone.
    assert!(matches!(
        org.user(&crm).users().deactivate(org.admin).await,
        Err(Error::Forbidden(_))
    ));
    org.admin(&crm).users().deactivate(org.user).await.unwrap();
    assert!(matches!(
        auth.principal(org.id, org.user).await,
        Err(Error::Unauthenticated)
    ));
    crm.organizations()
        .set_status(org.id, OrganizationStatus::Suspended)
        .await
        .unwrap();
    assert!(matches!(
        auth.principal(org.id, org.admin).await,
        Err(Error::Unauthenticated)
    ));
    // Another organization's user is unknown here.
    let other = Org::new(&crm, "other").await;
    assert!(auth.principal(other.id, org.admin).await.is_err());
}

async fn api_keys_verify_until_revoked_and_stay_in_their_organization(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let other = Org::new(&crm, "other").await;
    assert!(matches!(
        org.user(&crm)
            .api_keys()
            .create(NewApiKey {
                name: "k".into(),
                scopes: vec![ApiKeyScope::Forms],
            })
            .await,
        Err(Error::Forbidden(_))
    ));
    let (key, secret) = org
        .admin(&crm)
        .api_keys()
        .create(NewApiKey {
            name: "website".into(),
            scopes: vec![ApiKeyScope::Forms],
        })
        .await
        .unwrap();
    let access = crm.auth().verify_api_key(&secret).await.unwrap();
    assert_eq!(
        access.context,
        TenantContext::api_key(org.id, key.id.uuid())
    );
    harness::assert_no_api_key_secret(&format!("{key:?}"), &secret);
    let listed = org.admin(&crm).api_keys().list().await.unwrap();
    harness::assert_no_api_key_secret(&format!("{listed:?}"), &secret);
    harness::assert_no_api_key_secret(&serde_json::to_string(&listed).unwrap(), &secret);
    // Another organization can neither see nor revoke it.
    assert!(
        other
            .admin(&crm)
            .api_keys()
            .list()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        other.admin(&crm).api_keys().revoke(key.id).await,
        Err(Error::NotFound { .. })
    ));
    org.admin(&crm).api_keys().revoke(key.id).await.unwrap();
    assert!(matches!(
        crm.auth().verify_api_key(&secret).await,
        Err(Error::Unauthenticated)
    ));
}

async fn api_keys_carry_their_scopes_and_their_own_prefix(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let admin = org.admin(&crm);
    let new = |name: &str, scopes: Vec<ApiKeyScope>| NewApiKey {
        name: name.into(),
        scopes,
    };
    // A key needs a scope.
    assert!(matches!(
        admin.api_keys().create(new("none", vec![])).await,
        Err(Error::Validation(_))
    ));
    let (forms, forms_secret) = admin
        .api_keys()
        .create(new("forms", vec![ApiKeyScope::Forms, ApiKeyScope::Forms]))
        .await
        .unwrap();
    let scopes = vec![
        ApiKeyScope::Read(EntityKind::Lead),
        ApiKeyScope::Write(EntityKind::Account),
    ];
    let (sync, sync_secret) = admin
        .api_keys()
        .create(new("sync", scopes.clone()))
        .await
        .unwrap();
    assert_eq!(forms.scopes.as_slice(), [ApiKeyScope::Forms]);
    assert_eq!(sync.scopes.as_slice(), scopes.as_slice());

    // Verifying a key yields its scopes; write includes read of the same entity only.
    let access = crm.auth().verify_api_key(&sync_secret).await.unwrap();
    assert_eq!(access.scopes, sync.scopes);
    assert!(access.scopes.grant(ApiKeyScope::Read(EntityKind::Account)));
    assert!(!access.scopes.grant(ApiKeyScope::Write(EntityKind::Lead)));
    assert!(!access.scopes.grant(ApiKeyScope::Forms));

    // Each key has its own visible prefix: the start of its secret text, never the secret.
    assert_ne!(forms.prefix, sync.prefix);
    for (key, secret) in [(&forms, &forms_secret), (&sync, &sync_secret)] {
        assert!(secret.starts_with(&format!("{}_", key.prefix)), "{key:?}");
        assert!(secret.len() > key.prefix.len() + 40);
    }
    // Listed with their scopes.
    let listed = admin.api_keys().list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].scopes, sync.scopes);
    assert_eq!(listed[1].prefix, sync.prefix);
}

/// Keys made before scopes existed keep the access they had: migration 0005 gives them `all`.
/// (SQLite: the migration is the same statement on PostgreSQL.)
#[tokio::test]
async fn keys_made_before_scopes_keep_full_access() {
    use crm_core::sqlx::{self, migrate::Migrator};
    use sha2::Digest as _;

    let path = std::env::temp_dir().join(format!("crm-scopes-{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    // The schema as it was before 0005, with a key in it.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut before = Migrator::new(dir).await.unwrap();
    before.dangerous_set_table_name("_crm_migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    before.run(&pool).await.unwrap();
    let (org, key) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let secret = "a".repeat(43);
    let hash: String = sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sqlx::query("insert into organizations (id, name, slug, created_at, updated_at) values (?, 'Old', 'old', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
        .bind(org)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("insert into api_keys (organization_id, id, name, prefix, secret_hash, created_at) values (?, ?, 'old', 'crm_key_x', ?, '2026-01-01T00:00:00Z')")
        .bind(org)
        .bind(key)
        .bind(hash)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // The library migrates the rest; the key verifies with every scope.
    let crm = Crm::connect(&url).await.unwrap();
    let token = format!("crm_key_{}_{}_{secret}", org.simple(), key.simple());
    let access = crm.auth().verify_api_key(&token).await.unwrap();
    assert!(access.scopes.is_all());
    for scope in ApiKeyScope::every() {
        assert!(access.scopes.grant(scope), "{scope}");
    }
    drop(crm);
    let _ = std::fs::remove_file(&path);
}

async fn idempotency_keys_replay_refuse_and_expire(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let other = Org::new(&crm, "other").await;
    let t = org.user(&crm);
    let keys = t.idempotency();
    assert_eq!(keys.begin("k", "fp1", TTL).await.unwrap(), Begin::Started);
    assert_eq!(
        keys.begin("k", "fp1", TTL).await.unwrap(),
        Begin::InProgress
    );
    let stored = StoredResponse {
        status: 201,
        headers: "{}".into(),
        body: "{\"id\":1}".into(),
    };
    keys.complete("k", &stored).await.unwrap();
    assert_eq!(
        keys.begin("k", "fp1", TTL).await.unwrap(),
        Begin::Replay(stored)
    );
    assert_eq!(keys.begin("k", "fp2", TTL).await.unwrap(), Begin::Mismatch);
    // Per organization.
    let o = other.user(&crm);
    assert_eq!(
        o.idempotency().begin("k", "fp2", TTL).await.unwrap(),
        Begin::Started
    );
    // Released or expired keys start over.
    keys.release("k").await.unwrap();
    assert_eq!(
        keys.begin("k", "fp2", Duration::ZERO).await.unwrap(),
        Begin::Started
    );
    assert_eq!(keys.begin("k", "fp3", TTL).await.unwrap(), Begin::Started);
    assert!(matches!(
        keys.begin("", "fp", TTL).await,
        Err(Error::Validation(_))
    ));
}

/// Another caller of the same organization repeating a key makes its own request: it neither
/// gets the first caller's response nor has its write silently skipped.
async fn idempotency_keys_belong_to_their_caller(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let (user, admin) = (org.user(&crm), org.admin(&crm));
    let stored = StoredResponse {
        status: 201,
        headers: "{}".into(),
        body: "{\"id\":1}".into(),
    };
    assert_eq!(
        user.idempotency().begin("k", "fp", TTL).await.unwrap(),
        Begin::Started
    );
    user.idempotency().complete("k", &stored).await.unwrap();
    assert_eq!(
        admin.idempotency().begin("k", "fp", TTL).await.unwrap(),
        Begin::Started
    );
    let key = crm.tenant(&crm_core::TenantContext::api_key(
        org.id,
        uuid::Uuid::now_v7(),
    ));
    assert_eq!(
        key.idempotency().begin("k", "fp", TTL).await.unwrap(),
        Begin::Started
    );
    assert_eq!(
        user.idempotency().begin("k", "fp", TTL).await.unwrap(),
        Begin::Replay(stored),
        "the first caller still replays"
    );
}

async fn expired_keys_and_tokens_are_swept(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let t = org.user(&crm);
    t.idempotency()
        .begin("old", "fp", Duration::ZERO)
        .await
        .unwrap();
    t.idempotency().begin("new", "fp", TTL).await.unwrap();
    let report = org.admin(&crm).sweep_expired().await.unwrap();
    assert_eq!(report.idempotency_keys, 1, "{report:?}");
    assert_eq!(
        t.idempotency().begin("new", "fp", TTL).await.unwrap(),
        Begin::InProgress,
        "a live key stays"
    );
    let again = org.admin(&crm).sweep_expired().await.unwrap();
    assert_eq!(again.idempotency_keys, 0);
}
