//! Sign-up, sign-in, tokens, and every way authentication fails.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{Method, header};
use crm_axum::AuthConfig;
use crm_core::{Crm, OrganizationId, OrganizationStatus};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{PASSWORD, SECRET, Session, TestApp, config};

crate::on_both_backends!(
    register_login_me_refresh_logout,
    reused_refresh_token_revokes_its_family,
    registration_can_be_switched_off,
    every_bad_credential_is_the_same_401,
    deactivated_users_and_suspended_organizations_are_refused,
    login_is_rate_limited_per_account,
    signing_keys_rotate_by_kid,
    login_is_rate_limited_per_address,
    deactivation_bites_within_the_principal_cache_ttl,
    sign_ups_are_rate_limited_per_address,
);

async fn register_login_me_refresh_logout(crm: Crm) {
    let app = TestApp::new(crm);
    // Arrange: an organization and its admin.
    let admin = app.register("acme").await;

    // Act / Assert: /me says who and where.
    let me = app.get("/api/v1/me", &admin.access).await.expect(200);
    assert_eq!(me.body["user"]["role"], "company_admin");
    assert_eq!(me.body["organization"]["slug"], admin.slug.as_str());
    assert!(me.body["user"].get("password_hash").is_none());

    // Sign in again; wrong passwords and unknown organizations are the same 401.
    app.login(&admin.slug, "ADMIN@example.com").await;
    for (org, pw) in [(admin.slug.as_str(), "wrong password"), ("nope", PASSWORD)] {
        app.send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "organization": org, "email": "admin@example.com", "password": pw })),
            &[],
        )
        .await
        .problem(401, "unauthenticated");
    }

    // Refresh rotates: a new pair, and the new access token works.
    let r = refresh(&app, &admin.refresh).await.expect(200);
    assert_ne!(r.body["refresh_token"], admin.refresh.as_str());
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    let access = r.body["access_token"].as_str().unwrap();
    app.get("/api/v1/me", access).await.expect(200);

    // Logout revokes the family: the refresh token just issued no longer works.
    let next = r.body["refresh_token"].as_str().unwrap();
    app.send(
        Method::POST,
        "/api/v1/auth/logout",
        None,
        Some(json!({ "refresh_token": next })),
        &[],
    )
    .await
    .expect(204);
    refresh(&app, next).await.problem(401, "unauthenticated");
}

/// `POST auth/refresh` with `token`.
pub(crate) async fn refresh(app: &TestApp, token: &str) -> crate::helpers::Res {
    app.send(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({ "refresh_token": token })),
        &[],
    )
    .await
}

async fn reused_refresh_token_revokes_its_family(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let first = refresh(&app, &admin.refresh).await.expect(200);
    let second = first.body["refresh_token"].as_str().unwrap().to_owned();

    // The old token again: refused, and the family (including `second`) is revoked.
    refresh(&app, &admin.refresh)
        .await
        .problem(401, "unauthenticated");
    refresh(&app, &second).await.problem(401, "unauthenticated");

    // Another sign-in starts a fresh family.
    let again = app.login(&admin.slug, "admin@example.com").await;
    refresh(&app, &again.refresh).await.expect(200);
    // Garbage is refused the same way.
    refresh(&app, "crm_rt_not_a_token")
        .await
        .problem(401, "unauthenticated");
}

async fn registration_can_be_switched_off(crm: Crm) {
    let app = TestApp::with_config(crm, config().registration(false));
    app.send(
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(json!({
            "organization_name": "Acme", "name": "A", "email": "a@example.com", "password": PASSWORD
        })),
        &[],
    )
    .await
    .problem(403, "forbidden");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `s` with `claims` changed, signed with `alg` and `secret`.
fn forge(
    s: &Session,
    alg: Algorithm,
    secret: &[u8],
    change: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut claims = json!({
        "sub": s.user, "org": s.org, "role": "company_admin",
        "exp": now() + 600, "iat": now(), "nbf": now(), "jti": Uuid::now_v7(),
        "iss": "abetworks-crm", "aud": "abetworks-crm",
    });
    change(&mut claims);
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn every_bad_credential_is_the_same_401(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    // The control: a well-formed token of our own works.
    let good = forge(&s, Algorithm::HS256, SECRET, |_| {});
    app.get("/api/v1/me", &good).await.expect(200);

    let b64 = |v: serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        good.split('.').nth(1).unwrap()
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("not.a.jwt".into())),
        (
            "expired",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c["exp"] = json!(now() - 3600);
                c["iat"] = json!(now() - 7200);
                c["nbf"] = json!(now() - 7200);
            })),
        ),
        (
            "not yet valid",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c["nbf"] = json!(now() + 3600)
            })),
        ),
        (
            "forged",
            Some(forge(
                &s,
                Algorithm::HS256,
                b"another secret that is long enough!!",
                |_| {},
            )),
        ),
        (
            "wrong algorithm",
            Some(forge(&s, Algorithm::HS512, SECRET, |_| {})),
        ),
        ("alg none", Some(unsigned)),
        (
            "other issuer",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c["iss"] = json!("evil")
            })),
        ),
        (
            "other audience",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c["aud"] = json!("evil")
            })),
        ),
        (
            "unknown user",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c["sub"] = json!(Uuid::now_v7())
            })),
        ),
        (
            "user of another org",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c["org"] = json!(Uuid::now_v7())
            })),
        ),
        (
            "no exp",
            Some(forge(&s, Algorithm::HS256, SECRET, |c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "unknown API key",
            Some(format!(
                "crm_key_{}_{}_{}",
                s.org.simple(),
                Uuid::now_v7().simple(),
                "x".repeat(43)
            )),
        ),
    ];
    let mut bodies = Vec::new();
    for (what, token) in cases {
        let res = app
            .send(Method::GET, "/api/v1/contacts", token.as_deref(), None, &[])
            .await;
        assert_eq!(res.status, 401, "{what}: {}", res.body);
        assert!(
            res.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        bodies.push(res.body);
    }
    // One uniform body: nothing tells the cases apart.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // A non-Bearer scheme too.
    app.send(
        Method::GET,
        "/api/v1/me",
        None,
        None,
        &[("authorization", "Basic YTpi")],
    )
    .await
    .problem(401, "unauthenticated");
}

async fn deactivated_users_and_suspended_organizations_are_refused(crm: Crm) {
    let app = TestApp::new(crm.clone());
    let admin = app.register("acme").await;
    let user = app
        .user(&admin, "u@example.com", crm_core::Role::User)
        .await;
    app.get("/api/v1/me", &user.access).await.expect(200);

    // Deactivate: the still-valid token and the refresh token stop working.
    app.patch(
        &format!("/api/v1/users/{}", user.user),
        &admin.access,
        json!({ "is_active": false }),
    )
    .await
    .expect(200);
    app.get("/api/v1/me", &user.access)
        .await
        .problem(401, "unauthenticated");
    refresh(&app, &user.refresh)
        .await
        .problem(401, "unauthenticated");
    app.send(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({ "organization": admin.slug, "email": "u@example.com", "password": PASSWORD })),
        &[],
    )
    .await
    .problem(401, "unauthenticated");

    // Suspend the organization: its admin is refused too.
    crm.organizations()
        .set_status(
            OrganizationId::from_uuid(admin.org),
            OrganizationStatus::Suspended,
        )
        .await
        .unwrap();
    app.get("/api/v1/me", &admin.access)
        .await
        .problem(401, "unauthenticated");
    refresh(&app, &admin.refresh)
        .await
        .problem(401, "unauthenticated");
}

async fn login_is_rate_limited_per_account(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let attempt = |pw: &'static str| {
        let slug = admin.slug.clone();
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({ "organization": slug, "email": "admin@example.com", "password": pw })),
                &[],
            )
            .await
        }
    };
    for _ in 0..5 {
        attempt("wrong password")
            .await
            .problem(401, "unauthenticated");
    }
    // Now even the right password waits.
    let res = attempt(PASSWORD).await.problem(429, "rate-limited");
    assert!(res.headers.contains_key(header::RETRY_AFTER));
}

async fn signing_keys_rotate_by_kid(crm: Crm) {
    const NEW: &[u8] = b"the new secret, also at least 32 bytes long";
    let old_app = TestApp::with_config(crm.clone(), config().kid("2026-10"));
    let s = old_app.register("acme").await;
    // The next deployment signs with a new key and still accepts the old one by its kid.
    let rotated = TestApp::with_config(
        crm.clone(),
        AuthConfig::hs256(NEW)
            .unwrap()
            .kid("2026-11")
            .principal_cache_ttl(std::time::Duration::ZERO)
            .accept_previous_key("2026-10", SECRET),
    );
    rotated.get("/api/v1/me", &s.access).await.expect(200);
    let fresh = rotated.login(&s.slug, "admin@example.com").await;
    rotated.get("/api/v1/me", &fresh.access).await.expect(200);
    // Once the old key is dropped, its tokens stop working; unknown kids never did.
    let done = TestApp::with_config(crm, AuthConfig::hs256(NEW).unwrap().kid("2026-11"));
    done.get("/api/v1/me", &s.access)
        .await
        .problem(401, "unauthenticated");
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("nope".into());
    let claims = json!({ "sub": s.user, "org": s.org, "role": "company_admin", "exp": now() + 60,
        "iat": now(), "nbf": now(), "jti": Uuid::now_v7(), "iss": "abetworks-crm", "aud": "abetworks-crm" });
    let t = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(NEW)).unwrap();
    done.get("/api/v1/me", &t)
        .await
        .problem(401, "unauthenticated");
}

async fn login_is_rate_limited_per_address(crm: Crm) {
    let app = TestApp::with_config(
        crm,
        config().login_limits(100, 3, std::time::Duration::from_secs(60)),
    );
    let admin = app.register("acme").await;
    let from = |ip: [u8; 4], email: &str| {
        let mut req = axum::http::Request::post("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(
                json!({ "organization": admin.slug, "email": email, "password": "wrong password" })
                    .to_string(),
            ))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::connect_info::ConnectInfo(
                std::net::SocketAddr::from((ip, 1234)),
            ));
        req
    };
    // Three accounts tried from one address: the fourth attempt waits, whatever the account.
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.raw(from([10, 0, 0, 1], email))
            .await
            .problem(401, "unauthenticated");
    }
    app.raw(from([10, 0, 0, 1], "d@example.com"))
        .await
        .problem(429, "rate-limited");
    // Another address is not affected.
    app.raw(from([10, 0, 0, 2], "d@example.com"))
        .await
        .problem(401, "unauthenticated");
}

async fn deactivation_bites_within_the_principal_cache_ttl(crm: Crm) {
    use std::time::{Duration, Instant};
    // A wide TTL: the stale answer below must come within it, from when signing in cached the
    // principal, on a loaded machine too (the cache's clock cannot be set from a test).
    let ttl = Duration::from_secs(4);
    let app = TestApp::with_config(crm.clone(), config().principal_cache_ttl(ttl));
    let admin = app.register("acme").await;
    let user = app
        .user(&admin, "u@example.com", crm_core::Role::User)
        .await;
    app.get("/api/v1/contacts", &user.access).await.expect(200);
    // The principal was cached by now (at the latest by the request above).
    let cached_by = Instant::now();
    // Deactivated behind the API's back (another process, the CLI): the cached check holds
    // until its TTL, then the token is refused.
    let org = crm.tenant(&crm_core::TenantContext::user(
        OrganizationId::from_uuid(admin.org),
        crm_core::UserId::from_uuid(admin.user),
        crm_core::Role::CompanyAdmin,
    ));
    org.users()
        .deactivate(crm_core::UserId::from_uuid(user.user))
        .await
        .unwrap();
    app.get("/api/v1/contacts", &user.access).await.expect(200);
    tokio::time::sleep_until((cached_by + ttl + Duration::from_millis(250)).into()).await;
    app.get("/api/v1/contacts", &user.access)
        .await
        .problem(401, "unauthenticated");
}

async fn sign_ups_are_rate_limited_per_address(crm: Crm) {
    // Sign-ups have a budget of their own, apart from sign-ins.
    let app = TestApp::with_config(
        crm,
        config()
            .login_limits(100, 100, std::time::Duration::from_secs(60))
            .signup_limit(2),
    );
    let from = |ip: [u8; 4]| {
        let slug = format!("org-{}", Uuid::now_v7().simple());
        crate::helpers::post_from(
            ip,
            "/api/v1/auth/register",
            &json!({ "organization_name": "Org", "organization_slug": slug, "name": "A",
                "email": "a@example.com", "password": PASSWORD }),
        )
    };
    // Two sign-ups from one address; the third waits. Another address is not affected.
    for _ in 0..2 {
        app.raw(from([10, 0, 0, 1])).await.expect(201);
    }
    app.raw(from([10, 0, 0, 1]))
        .await
        .problem(429, "rate-limited");
    app.raw(from([10, 0, 0, 2])).await.expect(201);
}

/// RS256 and EdDSA: tokens name their key, verify with its public key, and keep working through
/// a rotation while the old public key is accepted (test keys in `keys/`).
#[tokio::test]
async fn rs256_and_eddsa_keys_sign_and_rotate() {
    macro_rules! key {
        ($file:literal) => {
            include_bytes!(concat!("keys/", $file)).as_slice()
        };
    }
    type Make = fn(&[u8], &[u8], &str) -> AuthConfig;
    let cases: [(Algorithm, Make, [&[u8]; 4]); 2] = [
        (
            Algorithm::RS256,
            AuthConfig::rs256_der,
            [
                key!("rsa-old-private.der"),
                key!("rsa-old-public.der"),
                key!("rsa-new-private.der"),
                key!("rsa-new-public.der"),
            ],
        ),
        (
            Algorithm::EdDSA,
            AuthConfig::eddsa_der,
            [
                key!("ed25519-old-private.der"),
                key!("ed25519-old-public.raw"),
                key!("ed25519-new-private.der"),
                key!("ed25519-new-public.raw"),
            ],
        ),
    ];
    let crm = crate::harness::sqlite().await;
    let cached = |c: AuthConfig| c.principal_cache_ttl(std::time::Duration::ZERO);
    for (alg, make, [old_private, old_public, new_private, new_public]) in cases {
        let old = TestApp::with_config(crm.clone(), cached(make(old_private, old_public, "old")));
        let s = old.register("keys").await;
        let header = jsonwebtoken::decode_header(&s.access).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (alg, Some("old")));
        let by_public_key = |public: &[u8]| {
            let key = match alg {
                Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_der(public),
                _ => jsonwebtoken::DecodingKey::from_ed_der(public),
            };
            let mut rules = jsonwebtoken::Validation::new(alg);
            rules.set_audience(&["abetworks-crm"]);
            move |token: &str| jsonwebtoken::decode::<serde_json::Value>(token, &key, &rules)
        };
        assert!(by_public_key(old_public)(&s.access).is_ok(), "{alg:?}");
        assert!(by_public_key(new_public)(&s.access).is_err(), "{alg:?}");
        // The public key used as an HS256 secret (algorithm confusion) is refused.
        let confused = forge(&s, Algorithm::HS256, old_public, |_| {});
        old.get("/api/v1/me", &confused)
            .await
            .problem(401, "unauthenticated");

        // The next deployment signs with the new key and accepts the old one by its kid.
        let rotated = TestApp::with_config(
            crm.clone(),
            cached(make(new_private, new_public, "new")).accept_previous_key("old", old_public),
        );
        rotated.get("/api/v1/me", &s.access).await.expect(200);
        let fresh = rotated.login(&s.slug, "admin@example.com").await;
        let header = jsonwebtoken::decode_header(&fresh.access).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (alg, Some("new")));
        assert!(by_public_key(new_public)(&fresh.access).is_ok(), "{alg:?}");
        // Once the old key is dropped, its tokens stop working.
        let done = TestApp::with_config(crm.clone(), cached(make(new_private, new_public, "new")));
        done.get("/api/v1/me", &fresh.access).await.expect(200);
        done.get("/api/v1/me", &s.access)
            .await
            .problem(401, "unauthenticated");
    }
}
