//! Rate limits and cache epochs shared through Redis (the `redis` feature): two `Crm` + router
//! instances over one database, one Redis, as two servers behind a load balancer.
//!
//! The shared-Redis tests run when `CRM_TEST_REDIS_URL` is set; the outage test starts and kills
//! a `redis-server` of its own on a free port and runs when that binary is on `PATH`. With
//! `CRM_TEST_REQUIRE_REDIS` set (CI sets it) a skip fails the test; every test that reached Redis
//! notes it in the ledger (`.ci/backend-gate redis`, `.ci/redis-tests`).
//!
//! Redis keeps its counters across test runs (the CI server lives on), so every test counts
//! against client addresses and organizations of its own, drawn at random.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{Request, header};
use crm_axum::AuthConfig;
use crm_core::Crm;
use serde_json::json;

use crate::helpers::{PASSWORD, Res, Session, TestApp, config};

/// Whether Redis at `url` answers `PING` now.
async fn pings(url: &str) -> bool {
    match config().redis_url(url) {
        Ok(auth) => auth.check_redis().await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_redis_that_does_not_answer_is_told_at_start() {
    // Port 1: nothing listens there.
    let auth = config().redis_url("redis://127.0.0.1:1").unwrap();
    let told = auth.check_redis().await.unwrap_err();
    assert!(!told.is_empty());
    assert_eq!(
        config().check_redis().await,
        Ok(()),
        "no Redis, nothing to check"
    );
}

/// Notes in the ledger that the running test reached Redis at `url` (it must answer).
async fn reached(url: &str) {
    assert!(pings(url).await, "Redis at {url} does not answer");
    crate::harness::record_backend("redis");
}

/// Two instances (each its own `Crm` and router) over one SQLite file, both configured with
/// `auth`, and the admin of an organization of their own; the file lives as long as the
/// returned directory.
async fn two_instances(auth: &AuthConfig) -> (TestApp, TestApp, Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display());
    let a = TestApp::with_config(Crm::connect(&url).await.unwrap(), auth.clone());
    let b = TestApp::with_config(Crm::connect(&url).await.unwrap(), auth.clone());
    // Registered through a third instance without Redis: the test helper signs up from
    // 127.0.0.1, whose budget in Redis earlier runs may have spent.
    let admin = TestApp::with_config(Crm::connect(&url).await.unwrap(), config())
        .register("redis")
        .await;
    (a, b, admin, dir)
}

/// A client address no earlier run has counted against.
fn fresh_peer() -> [u8; 4] {
    let [a, b, c, ..] = *uuid::Uuid::new_v4().as_bytes();
    [10, a, b, c.max(1)]
}

/// A sign-in at `app` from `peer`.
async fn login(app: &TestApp, peer: [u8; 4], admin: &Session, password: &str) -> Res {
    let body = json!({
        "organization": admin.slug,
        "email": "admin@example.com",
        "password": password,
    });
    let mut req = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    app.raw(req).await
}

#[tokio::test]
async fn a_sign_in_budget_spent_on_one_instance_is_spent_on_the_other() {
    let Some(url) = crate::harness::redis_url() else {
        return;
    };
    reached(&url).await;
    let auth = config()
        .login_limits(3, 4, Duration::from_secs(600))
        .redis_url(&url)
        .unwrap();
    let (a, b, admin, _dir) = two_instances(&auth).await;

    // Failures of one account from one address, on A, back the account off on B.
    let attacker = fresh_peer();
    for _ in 0..3 {
        login(&a, attacker, &admin, "wrong password")
            .await
            .problem(401, "unauthenticated");
    }
    login(&b, attacker, &admin, PASSWORD)
        .await
        .problem(429, "rate-limited");

    // The budget of an address: two attempts on A, two on B, the fifth refused on either.
    let peer = fresh_peer();
    for app in [&a, &b, &a, &b] {
        login(app, peer, &admin, PASSWORD).await.expect(200);
    }
    for app in [&a, &b] {
        let res = login(app, peer, &admin, PASSWORD)
            .await
            .problem(429, "rate-limited");
        let wait: u64 = res.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((590..=600).contains(&wait), "Retry-After: {wait}");
    }
}

#[tokio::test]
async fn sign_ups_from_one_address_share_one_budget() {
    let Some(url) = crate::harness::redis_url() else {
        return;
    };
    reached(&url).await;
    let auth = config().signup_limit(2).redis_url(&url).unwrap();
    let (a, b, _, _dir) = two_instances(&auth).await;
    let peer = fresh_peer();
    async fn signup(app: &TestApp, peer: [u8; 4]) -> Res {
        let slug = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let body = json!({
            "organization_name": slug,
            "organization_slug": slug,
            "name": "Admin",
            "email": "admin@example.com",
            "password": PASSWORD,
        });
        app.raw(crate::helpers::post_from(
            peer,
            "/api/v1/auth/register",
            &body,
        ))
        .await
    }
    signup(&a, peer).await.expect(201);
    signup(&b, peer).await.expect(201);
    signup(&a, peer).await.problem(429, "rate-limited");
    signup(&b, peer).await.problem(429, "rate-limited");
}

/// Deactivates (or reactivates) `user` through `a` and checks that `b` refuses (or lets in)
/// their token on the very next request.
async fn switch_on_a_seen_on_b(
    a: &TestApp,
    b: &TestApp,
    admin: &Session,
    user: &Session,
    active: bool,
) {
    let path = format!("/api/v1/users/{}", user.user);
    a.patch(&path, &admin.access, json!({ "is_active": active }))
        .await
        .expect(200);
    let res = b.get("/api/v1/me", &user.access).await;
    if active {
        res.expect(200);
    } else {
        res.problem(401, "unauthenticated");
    }
}

/// A `redis-server` of the test's own on `port`, without persistence.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    /// Starts it and waits until it answers.
    async fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pings(&url).await {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child }
    }

    /// Stops it (`SIGSTOP`): connections are accepted by the kernel and never answered, as by a
    /// hung server.
    fn hang(&self) {
        let status = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status()
            .expect("kill -STOP");
        assert!(status.success());
    }

    /// Kills it and waits until it is gone.
    fn kill(mut self) {
        self.child.kill().expect("kill redis-server");
        self.child.wait().expect("reap redis-server");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `redis-server` is on `PATH`; with `CRM_TEST_REQUIRE_REDIS` set its absence fails.
fn redis_server_installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CRM_TEST_REQUIRE_REDIS").is_none(),
            "CRM_TEST_REQUIRE_REDIS is set but redis-server is not on PATH: the outage test would be skipped"
        );
        eprintln!("skipped: redis-server is not on PATH");
    }
    found
}

/// Whether `app` refuses the next sign-in from `peer` for its address budget.
async fn refused(app: &TestApp, peer: [u8; 4], admin: &Session) -> bool {
    let started = Instant::now();
    let res = login(app, peer, admin, PASSWORD).await;
    // Never held up by a Redis that is away or hung (a few 250 ms timeouts at most; the rest is
    // the password hash of a debug build on a busy machine).
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "a sign-in took {:?}",
        started.elapsed()
    );
    match res.status.as_u16() {
        200 => false,
        429 => true,
        other => panic!("unexpected {other}: {}", res.body),
    }
}

#[tokio::test]
async fn while_redis_is_away_limits_count_per_process_and_caches_go_to_the_database() {
    if !redis_server_installed() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let redis = OwnRedis::start(port).await;
    reached(&url).await;
    let auth = config()
        .login_limits(100, 2, Duration::from_secs(600))
        .principal_cache_ttl(Duration::from_secs(30))
        .redis_url(&url)
        .unwrap();
    let (a, b, admin, _dir) = two_instances(&auth).await;
    let user = a.user(&admin, "u@example.com", crm_core::Role::User).await;

    // Shared: one attempt on each instance spends the address's budget of two.
    let peer = fresh_peer();
    assert!(!refused(&a, peer, &admin).await);
    assert!(!refused(&b, peer, &admin).await);
    assert!(refused(&a, peer, &admin).await);
    assert!(refused(&b, peer, &admin).await);

    // Redis hangs: requests still succeed, each instance counts on its own.
    redis.hang();
    let peer = fresh_peer();
    assert!(!refused(&a, peer, &admin).await);
    assert!(!refused(&a, peer, &admin).await);
    assert!(refused(&a, peer, &admin).await, "A still limits");
    assert!(!refused(&b, peer, &admin).await, "B counts on its own");

    // Redis is gone: the same, and signing in and using the API works throughout.
    redis.kill();
    let peer = fresh_peer();
    assert!(!refused(&b, peer, &admin).await);
    assert!(!refused(&b, peer, &admin).await);
    assert!(refused(&b, peer, &admin).await, "B still limits");
    let res = login(&a, peer, &admin, PASSWORD).await.expect(200);
    let token = res.body["access_token"].as_str().unwrap().to_owned();
    b.get("/api/v1/me", &token).await.expect(200);
    // The caches go to the database: a user deactivated on A is refused on B at once.
    b.get("/api/v1/me", &user.access).await.expect(200);
    switch_on_a_seen_on_b(&a, &b, &admin, &user, false).await;

    // Redis is back (empty) on the same port: the instances share one budget again.
    let _redis = OwnRedis::start(port).await;
    // An instance tries Redis again at most a second after its last failure.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let peer = fresh_peer();
    assert!(!refused(&a, peer, &admin).await);
    assert!(!refused(&b, peer, &admin).await);
    assert!(refused(&b, peer, &admin).await);
    assert!(refused(&a, peer, &admin).await);
    // And the cache epoch: reactivated on A, let back on B at once (B cached the refusal).
    b.get("/api/v1/me", &user.access)
        .await
        .problem(401, "unauthenticated");
    switch_on_a_seen_on_b(&a, &b, &admin, &user, true).await;
}

/// Two instances sharing the test run's Redis, with the principal and API-key cache on (30 s,
/// the default), so that only the shared epoch can make B see a change made on A; `None` when
/// the Redis suite is skipped.
async fn two_caching_instances() -> Option<(TestApp, TestApp, Session, tempfile::TempDir)> {
    let url = crate::harness::redis_url()?;
    reached(&url).await;
    let auth = config()
        .principal_cache_ttl(Duration::from_secs(30))
        .redis_url(&url)
        .unwrap();
    Some(two_instances(&auth).await)
}

#[tokio::test]
async fn a_user_deactivated_on_one_instance_is_refused_on_the_other_at_once() {
    let Some((a, b, admin, _dir)) = two_caching_instances().await else {
        return;
    };
    let user = b.user(&admin, "u@example.com", crm_core::Role::User).await;
    // B has the user cached as active.
    b.get("/api/v1/me", &user.access).await.expect(200);
    switch_on_a_seen_on_b(&a, &b, &admin, &user, false).await;
    // Reactivated on A: B lets them back at once (it cached the refusal).
    b.get("/api/v1/me", &user.access)
        .await
        .problem(401, "unauthenticated");
    switch_on_a_seen_on_b(&a, &b, &admin, &user, true).await;
}

#[tokio::test]
async fn an_api_key_revoked_on_one_instance_is_refused_on_the_other_at_once() {
    let Some((a, b, admin, _dir)) = two_caching_instances().await else {
        return;
    };
    let created = a
        .post("/api/v1/api-keys", &admin.access, json!({ "name": "site" }))
        .await
        .expect(201);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["api_key"]["id"].as_str().unwrap().to_owned();
    // B has the key cached (a web-form key: the default scope).
    let form =
        |n: u32| json!({ "name": format!("Lead {n}"), "email": format!("l{n}@example.com") });
    b.post("/api/v1/webhooks/forms", &key, form(1))
        .await
        .expect(201);
    a.delete(&format!("/api/v1/api-keys/{id}"), &admin.access)
        .await
        .expect(204);
    b.post("/api/v1/webhooks/forms", &key, form(2))
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn a_custom_field_defined_on_one_instance_is_known_to_the_other_at_once() {
    let Some((a, b, admin, _dir)) = two_caching_instances().await else {
        return;
    };
    let t = admin.access.as_str();
    let contact =
        json!({ "first_name": "Ada", "last_name": "L", "custom_fields": { "tier": "gold" } });
    // B reads (and caches) the contacts' definitions: there is no `tier`.
    b.post("/api/v1/contacts", t, contact.clone())
        .await
        .problem(422, "validation");
    let def = json!({ "key": "tier", "label": "Tier", "field_type": "select", "options": ["gold", "silver"] });
    a.post("/api/v1/custom-fields/contacts", t, def)
        .await
        .expect(201);
    b.post("/api/v1/contacts", t, contact.clone())
        .await
        .expect(201);
    // Narrowed on A: B refuses the value at once.
    a.patch(
        "/api/v1/custom-fields/contacts/tier",
        t,
        json!({ "options": ["silver"] }),
    )
    .await
    .expect(200);
    b.post("/api/v1/contacts", t, contact)
        .await
        .problem(422, "validation");
}
