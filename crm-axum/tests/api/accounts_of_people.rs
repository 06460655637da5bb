//! People's accounts: reading a user, changing one's own password (other sessions end), an
//! admin setting someone's password (temporary: it must be changed before anything else).

use axum::http::Method;
use crm_core::{Crm, Role};
use serde_json::json;

use crate::helpers::{PASSWORD, Res, TestApp, config};

crate::on_both_backends!(
    a_user_changes_their_password_and_other_sessions_end,
    admins_set_passwords_and_read_users,
    a_password_set_by_an_admin_must_be_changed_first,
    names_and_emails_change,
    wrong_current_passwords_are_limited,
);

/// Signs in with `password`; the status it answers.
async fn sign_in(app: &TestApp, slug: &str, email: &str, password: &str) -> u16 {
    login(app, slug, email, password).await.status.as_u16()
}

/// Signs in with `password`; the answer.
async fn login(app: &TestApp, slug: &str, email: &str, password: &str) -> Res {
    app.send(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({ "organization": slug, "email": email, "password": password })),
        &[],
    )
    .await
}

/// Sets user `id`'s password as the bearer of `token` (204 expected).
async fn set_password(app: &TestApp, id: uuid::Uuid, token: &str, password: &str) {
    app.send(
        Method::PUT,
        &format!("/api/v1/users/{id}/password"),
        Some(token),
        Some(json!({ "password": password })),
        &[],
    )
    .await
    .expect(204);
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

    let change_here =
        |current, new| app.post("/api/v1/me/password", &here.access, change(current, new));
    change_here("wrong password", "a new passphrase")
        .await
        .problem(401, "unauthenticated");
    change_here(PASSWORD, "short")
        .await
        .problem(422, "validation");
    change_here(PASSWORD, "a new passphrase").await.expect(204);

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

/// An admin's reset is a temporary password: signing in with it works, but the tokens reach only
/// `POST me/password` and `GET me` (old tokens too, at once, whatever the principal cache) until
/// the user chooses their own; the user's sessions end; API keys go on; an admin setting their
/// own password keeps it.
async fn a_password_set_by_an_admin_must_be_changed_first(crm: Crm) {
    let app = TestApp::with_config(
        crm,
        config().principal_cache_ttl(std::time::Duration::from_secs(60)),
    );
    let admin = app.register("acme").await;
    let bob = app.user(&admin, "bob@example.com", Role::User).await;
    let key = app
        .post(
            "/api/v1/api-keys",
            &admin.access,
            json!({ "name": "sync", "scopes": ["all"] }),
        )
        .await
        .expect(201)
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/api/v1/accounts", &bob.access).await.expect(200);
    let user_path = format!("/api/v1/users/{}", bob.user);
    set_password(&app, bob.user, &admin.access, "temporary one").await;
    assert_eq!(refresh(&app, &bob.refresh).await, 401, "Bob's sessions end");
    let read = app.get(&user_path, &admin.access).await.expect(200);
    assert_eq!(read.body["must_change_password"], true);

    // Bob's token of before the reset, and the tokens of signing in with the temporary password,
    // reach only the password change and `me`.
    let signed_in = login(&app, &admin.slug, "bob@example.com", "temporary one")
        .await
        .expect(200);
    assert_eq!(signed_in.body["password_change_required"], true);
    let access = signed_in.body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = signed_in.body["refresh_token"].as_str().unwrap().to_owned();
    for token in [bob.access.as_str(), access.as_str()] {
        app.get("/api/v1/accounts", token)
            .await
            .problem(403, "forbidden")
            .code("password_change_required");
        app.patch(&user_path, token, json!({ "name": "Robert" }))
            .await
            .problem(403, "forbidden")
            .code("password_change_required");
    }
    app.post("/api/v1/accounts", &access, json!({ "name": "Initech" }))
        .await
        .problem(403, "forbidden")
        .code("password_change_required");
    let me = app.get("/api/v1/me", &access).await.expect(200);
    assert_eq!(me.body["user"]["must_change_password"], true);
    let rotated = crate::auth::refresh(&app, &refresh_token).await.expect(200);
    assert_eq!(rotated.body["password_change_required"], true);
    let refresh_token = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    // The key of the organization is not affected.
    app.get("/api/v1/accounts", &key).await.expect(200);

    // Keeping the temporary password is no change; choosing one's own lifts the restriction at
    // once, for the session the change came from.
    let change = |new: &str| json!({ "current_password": "temporary one", "new_password": new, "refresh_token": refresh_token });
    app.post("/api/v1/me/password", &access, change("temporary one"))
        .await
        .problem(422, "validation");
    app.post(
        "/api/v1/me/password",
        &access,
        change("bob's own passphrase"),
    )
    .await
    .expect(204);
    app.get("/api/v1/accounts", &access).await.expect(200);
    let rotated = crate::auth::refresh(&app, &refresh_token).await.expect(200);
    assert_eq!(rotated.body["password_change_required"], false);
    let signed_in = login(&app, &admin.slug, "bob@example.com", "bob's own passphrase")
        .await
        .expect(200);
    assert_eq!(signed_in.body["password_change_required"], false);
    let read = app.get(&user_path, &admin.access).await.expect(200);
    assert_eq!(read.body["must_change_password"], false);

    // An admin who sets their own password keeps it.
    set_password(&app, admin.user, &admin.access, "the admin's new one").await;
    let signed_in = login(
        &app,
        &admin.slug,
        "admin@example.com",
        "the admin's new one",
    )
    .await
    .expect(200);
    assert_eq!(signed_in.body["password_change_required"], false);
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
    let bobs = path(bob.user);
    let bobs_email =
        |email: &'static str| app.patch(&bobs, &admin.access, json!({ "email": email }));
    // Emails are unique per organization whatever their case, and must be emails.
    bobs_email("ADA@example.com")
        .await
        .problem(409, "conflict")
        .code("duplicate");
    bobs_email("not an email").await.problem(422, "validation");
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
