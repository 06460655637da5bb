//! People's accounts: reading a user, changing one's own password (other sessions end), an
//! admin setting someone's password.

use axum::http::Method;
use crm_core::{Crm, Role};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, config};

crate::on_both_backends!(
    a_user_changes_their_password_and_other_sessions_end,
    admins_set_passwords_and_read_users,
    names_and_emails_change,
    wrong_current_passwords_are_limited,
);

/// Signs in with `password`; the status it answers.
async fn sign_in(app: &TestApp, slug: &str, email: &str, password: &str) -> u16 {
    app.send(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({ "organization": slug, "email": email, "password": password })),
        &[],
    )
    .await
    .status
    .as_u16()
}

/// Refreshes `token` (the helper of the auth tests); the status it answers.
async fn refresh(app: &TestApp, token: &str) -> u16 {
    crate::auth::refresh(app, token).await.status.as_u16()
}

async fn a_user_changes_their_password_and_other_sessions_end(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let here = app.user(&admin, "ada@example.com", Role::User).await;
    let elsewhere = app.login(&admin.slug, "ada@example.com").await;
    let change = |current: &str, new: &str| json!({ "current_password": current, "new_password": new, "refresh_token": here.refresh });

    app.post(
        "/api/v1/me/password",
        &here.access,
        change("wrong password", "a new passphrase"),
    )
    .await
    .problem(401, "unauthenticated");
    app.post(
        "/api/v1/me/password",
        &here.access,
        change(PASSWORD, "short"),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/me/password",
        &here.access,
        change(PASSWORD, "a new passphrase"),
    )
    .await
    .expect(204);

    assert_eq!(
        sign_in(&app, &admin.slug, "ada@example.com", PASSWORD).await,
        401
    );
    assert_eq!(
        sign_in(&app, &admin.slug, "ada@example.com", "a new passphrase").await,
        200
    );
    assert_eq!(
        refresh(&app, &here.refresh).await,
        200,
        "this session goes on"
    );
    assert_eq!(
        refresh(&app, &elsewhere.refresh).await,
        401,
        "the other one ended"
    );
}

async fn admins_set_passwords_and_read_users(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "bob@example.com", Role::User).await;
    let path = format!("/api/v1/users/{}", user.user);

    let read = app.get(&path, &user.access).await.expect(200);
    assert_eq!(read.body["email"], "bob@example.com");
    let other = app.register("globex").await;
    app.get(&path, &other.access)
        .await
        .problem(404, "not-found");

    // A plain user sets nobody's password; an admin does, and Bob's sessions end.
    let set = |password: &str| json!({ "password": password });
    let admin_path = format!("/api/v1/users/{}/password", admin.user);
    app.send(
        Method::PUT,
        &admin_path,
        Some(&user.access),
        Some(set("taken over!")),
        &[],
    )
    .await
    .problem(403, "forbidden")
    .code("admin_only");
    app.send(
        Method::PUT,
        &format!("{path}/password"),
        Some(&admin.access),
        Some(set("reset by admin")),
        &[],
    )
    .await
    .expect(204);
    assert_eq!(refresh(&app, &user.refresh).await, 401);
    assert_eq!(
        sign_in(&app, &admin.slug, "bob@example.com", "reset by admin").await,
        200
    );
    assert_eq!(
        sign_in(&app, &admin.slug, "bob@example.com", PASSWORD).await,
        401
    );
}

/// A user changes their own name and email, an admin anyone's (emails stay unique per
/// organization, ignoring case); a plain user changes nobody else's.
async fn names_and_emails_change(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let ada = app.user(&admin, "ada@example.com", Role::User).await;
    let bob = app.user(&admin, "bob@example.com", Role::User).await;
    let path = |id: uuid::Uuid| format!("/api/v1/users/{id}");

    let me = app
        .patch(&path(ada.user), &ada.access, json!({ "name": "Ada L." }))
        .await
        .expect(200);
    assert_eq!(me.body["name"], "Ada L.");
    app.patch(&path(bob.user), &ada.access, json!({ "name": "Not Bob" }))
        .await
        .problem(403, "forbidden")
        .code("admin_only");
    app.patch(
        &path(bob.user),
        &admin.access,
        json!({ "email": "ADA@example.com" }),
    )
    .await
    .problem(409, "conflict")
    .code("duplicate");
    app.patch(
        &path(bob.user),
        &admin.access,
        json!({ "email": "not an email" }),
    )
    .await
    .problem(422, "validation");
    let renamed = app
        .patch(
            &path(bob.user),
            &admin.access,
            json!({ "email": "robert@example.com" }),
        )
        .await
        .expect(200);
    assert_eq!(renamed.body["email"], "robert@example.com");
    assert_eq!(
        sign_in(&app, &admin.slug, "robert@example.com", PASSWORD).await,
        200,
        "the new email signs in"
    );
}

/// Guessing the current password with a stolen access token is slowed like guessing at sign-in.
async fn wrong_current_passwords_are_limited(crm: Crm) {
    let app = TestApp::with_config(
        crm,
        config().login_limits(2, 100, std::time::Duration::from_secs(60)),
    );
    let admin = app.register("acme").await;
    let ada = app.user(&admin, "ada@example.com", Role::User).await;
    let change =
        |current: &str| json!({ "current_password": current, "new_password": "a new passphrase" });
    for guess in ["guess one", "guess two"] {
        app.post("/api/v1/me/password", &ada.access, change(guess))
            .await
            .problem(401, "unauthenticated");
    }
    let limited = app
        .post("/api/v1/me/password", &ada.access, change(PASSWORD))
        .await
        .problem(429, "rate-limited");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(
        sign_in(&app, &admin.slug, "ada@example.com", PASSWORD).await,
        200,
        "nothing changed"
    );
}
