//! The limits of the auth routes: bounded input, budgets per address and per (account,
//! address), the real wait in `Retry-After`, forwarded addresses from trusted proxies only.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{Request, header};
use crm_core::{Crm, OrganizationId, TenantContext};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Res, TestApp, config};

crate::on_both_backends!(
    login_fields_are_bounded_before_anything_else,
    wrong_passwords_from_one_address_do_not_lock_out_the_owner_elsewhere,
    retry_after_is_the_real_remaining_wait,
    sign_ups_have_a_budget_of_their_own,
    forwarded_addresses_count_only_from_trusted_proxies,
    spellings_the_database_folds_together_share_one_counter,
    ipv6_clients_are_counted_by_their_network,
    ipv4_mapped_clients_are_counted_by_their_ipv4_address,
);

/// A request from `peer` (`[192, 0, 2, 1]`, `[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]`), with `headers`.
fn from(
    peer: impl Into<IpAddr>,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer.into(), 40000))));
    req
}

async fn login(
    app: &TestApp,
    peer: impl Into<IpAddr>,
    slug: &str,
    email: &str,
    password: &str,
) -> Res {
    let body = json!({ "organization": slug, "email": email, "password": password });
    app.raw(from(peer, "/api/v1/auth/login", body, &[])).await
}

/// The body of the `n`th sign-up of a test whose first organization is `slug`.
fn signup(n: u32, slug: &str) -> Value {
    json!({
        "organization_name": format!("Org {n}"),
        "organization_slug": format!("org-{n}-{slug}"),
        "name": "Admin",
        "email": "admin@example.com",
        "password": PASSWORD,
    })
}

fn retry_after(res: &Res) -> u64 {
    res.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn login_fields_are_bounded_before_anything_else(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let huge = "x".repeat(1_000_000);
    let long_email = format!("{}@example.com", "a".repeat(250));
    for (org, email, field) in [
        (huge.as_str(), "admin@example.com", "organization"),
        (&"a".repeat(64), "admin@example.com", "organization"),
        (admin.slug.as_str(), long_email.as_str(), "email"),
        (admin.slug.as_str(), huge.as_str(), "email"),
    ] {
        let res = login(&app, [10, 0, 0, 1], org, email, "wrong password")
            .await
            .problem(422, "validation");
        assert_eq!(res.field_errors()[0].0, field);
    }
    // The longest allowed still reaches the password check.
    login(
        &app,
        [10, 0, 0, 1],
        &"a".repeat(63),
        "admin@example.com",
        PASSWORD,
    )
    .await
    .problem(401, "unauthenticated");
}

async fn wrong_passwords_from_one_address_do_not_lock_out_the_owner_elsewhere(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let as_admin = |peer, password| login(&app, peer, &admin.slug, "admin@example.com", password);
    let attacker = [203, 0, 113, 9];
    let wrong = || async {
        let res = as_admin(attacker, "wrong password").await;
        res.problem(401, "unauthenticated");
    };
    // Even the right password waits while the attacker's address backs off.
    let waits = |seconds| async move {
        let res = as_admin(attacker, PASSWORD).await;
        assert_eq!(retry_after(&res.problem(429, "rate-limited")), seconds);
    };
    for _ in 0..5 {
        wrong().await;
    }
    // The attacker's address backs off (1 s after the fifth failure, then 2 s, 4 s…)…
    waits(1).await;
    // …the owner, from their own address, signs in.
    as_admin([198, 51, 100, 1], PASSWORD).await.expect(200);
    // After the wait the attacker may try again, and the next failure doubles the wait.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    wrong().await;
    waits(2).await;
}

async fn retry_after_is_the_real_remaining_wait(crm: Crm) {
    let app = TestApp::with_config(crm, config().login_limits(100, 2, Duration::from_secs(600)));
    let admin = app.register("acme").await;
    let wrong = |email| login(&app, [10, 0, 0, 7], &admin.slug, email, "wrong password");
    for _ in 0..2 {
        wrong("a@example.com").await.problem(401, "unauthenticated");
    }
    let res = wrong("b@example.com").await.problem(429, "rate-limited");
    let wait = retry_after(&res);
    assert!((590..=600).contains(&wait), "Retry-After: {wait}");
}

async fn sign_ups_have_a_budget_of_their_own(crm: Crm) {
    let app = TestApp::with_config(crm, config().signup_limit(2));
    let admin = app.register("acme").await;
    let peer = [192, 0, 2, 44];
    let signup = |n: u32| signup(n, &admin.slug);
    for n in 0..2 {
        app.raw(from(peer, "/api/v1/auth/register", signup(n), &[]))
            .await
            .expect(201);
    }
    let res = app
        .raw(from(peer, "/api/v1/auth/register", signup(2), &[]))
        .await
        .problem(429, "rate-limited");
    assert!(retry_after(&res) > 800);
    // Signing in from that address is still possible.
    login(&app, peer, &admin.slug, "admin@example.com", PASSWORD)
        .await
        .expect(200);
}

async fn forwarded_addresses_count_only_from_trusted_proxies(crm: Crm) {
    let app = TestApp::with_config(
        crm,
        config()
            .login_limits(100, 2, Duration::from_secs(60))
            .trusted_proxies(["10.0.0.0/8".parse().unwrap()]),
    );
    let admin = app.register("acme").await;
    let attempt = |peer: [u8; 4], forwarded: (&'static str, &'static str)| {
        let body = json!({ "organization": admin.slug, "email": "x@example.com", "password": "wrong password" });
        app.raw(from(peer, "/api/v1/auth/login", body, &[forwarded]))
    };
    let proxy = [10, 0, 0, 1];
    // Behind the proxy, each client has its own budget.
    for _ in 0..2 {
        attempt(proxy, ("x-forwarded-for", "203.0.113.5"))
            .await
            .problem(401, "unauthenticated");
    }
    attempt(proxy, ("x-forwarded-for", "203.0.113.5"))
        .await
        .problem(429, "rate-limited");
    attempt(proxy, ("forwarded", "for=\"203.0.113.6:5000\""))
        .await
        .problem(401, "unauthenticated");
    // A client that is no trusted proxy cannot pick its address with the header.
    for forged in ["198.51.100.1", "198.51.100.2"] {
        attempt([192, 0, 2, 1], ("x-forwarded-for", forged))
            .await
            .problem(401, "unauthenticated");
    }
    attempt([192, 0, 2, 1], ("x-forwarded-for", "198.51.100.3"))
        .await
        .problem(429, "rate-limited");
}

async fn spellings_the_database_folds_together_share_one_counter(crm: Crm) {
    let app = TestApp::new(crm.clone());
    let admin = app.register("acme").await;
    // `İ` (U+0130): PostgreSQL's lower() folds it to `i`; Rust's to_lowercase() to `i̇`.
    let variant = "admİn@example.com";
    let same_user = crm
        .tenant(&TenantContext::system(OrganizationId::from_uuid(admin.org)))
        .users()
        .get_by_email(variant)
        .await
        .is_ok();
    let peer = [203, 0, 113, 77];
    for email in [
        "admin@example.com",
        "ADMIN@example.com",
        variant,
        variant,
        variant,
    ] {
        login(&app, peer, &admin.slug, email, "wrong password")
            .await
            .problem(401, "unauthenticated");
    }
    let res = login(&app, peer, &admin.slug, "admin@example.com", PASSWORD).await;
    if same_user {
        // Five failures at one user, however spelled: the next attempt waits.
        res.problem(429, "rate-limited");
    } else {
        // The database tells the spellings apart (SQLite's ASCII lower()): two failures only.
        res.expect(200);
    }
}

/// An address of the IPv6 network `2001:db8:<net>::/64`.
fn v6(net: u16, host: u16) -> [u16; 8] {
    [0x2001, 0xdb8, net, 0, 0, 0, 0, host]
}

async fn ipv6_clients_are_counted_by_their_network(crm: Crm) {
    let app = TestApp::with_config(crm.clone(), config().signup_limit(2));
    let admin = app.register("acme").await;
    let wrong = |peer| {
        login(
            &app,
            peer,
            &admin.slug,
            "admin@example.com",
            "wrong password",
        )
    };
    // Five failures at one account, each from another address of one /64: the /64 backs off,
    // whichever of its addresses it tries from next.
    for host in 1..=5 {
        wrong(v6(1, host)).await.problem(401, "unauthenticated");
    }
    wrong(v6(1, 6)).await.problem(429, "rate-limited");
    login(&app, v6(1, 7), &admin.slug, "admin@example.com", PASSWORD)
        .await
        .problem(429, "rate-limited");
    // Another /64 is another client.
    login(&app, v6(2, 1), &admin.slug, "admin@example.com", PASSWORD)
        .await
        .expect(200);

    // Sign-ups: one budget for the /64.
    let signup = |n: u32| signup(n, &admin.slug);
    for n in 0..2 {
        let peer = v6(3, 0x100 + n as u16);
        app.raw(from(peer, "/api/v1/auth/register", signup(n), &[]))
            .await
            .expect(201);
    }
    app.raw(from(v6(3, 0x200), "/api/v1/auth/register", signup(2), &[]))
        .await
        .problem(429, "rate-limited");
    app.raw(from(v6(4, 1), "/api/v1/auth/register", signup(3), &[]))
        .await
        .expect(201);

    // The prefix length is the operator's: /128 counts every address apart.
    let app = TestApp::with_config(crm, config().ipv6_limit_prefix(128));
    let admin = app.register("globex").await;
    for host in 1..=6 {
        login(
            &app,
            v6(5, host),
            &admin.slug,
            "admin@example.com",
            "wrong password",
        )
        .await
        .problem(401, "unauthenticated");
    }
}

async fn ipv4_mapped_clients_are_counted_by_their_ipv4_address(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    // What a dual-stack listener sees of 203.0.113.9: ::ffff:203.0.113.9.
    let mapped = IpAddr::from(std::net::Ipv4Addr::new(203, 0, 113, 9).to_ipv6_mapped());
    for _ in 0..5 {
        login(
            &app,
            mapped,
            &admin.slug,
            "admin@example.com",
            "wrong password",
        )
        .await
        .problem(401, "unauthenticated");
    }
    login(
        &app,
        [203, 0, 113, 9],
        &admin.slug,
        "admin@example.com",
        PASSWORD,
    )
    .await
    .problem(429, "rate-limited");
}
