//! The router mounts into a host app with its own state, under its own prefix, next to the
//! host's fallback; the host's own routes accept CRM credentials through `AuthLayer`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::get;
use crm_axum::{AuthLayer, Tenant};
use crm_core::Role;
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;

use crate::helpers::{TestApp, config};

#[derive(Clone)]
struct HostState(&'static str);

#[tokio::test]
async fn mounts_under_a_host_prefix_with_host_state() {
    let crm = crate::harness::sqlite().await;
    let app: Router = Router::new()
        .route(
            "/hello",
            get(|State(s): State<HostState>| async move { s.0 }),
        )
        .nest("/crm", crm_axum::router::<HostState>(crm, config()))
        .with_state(HostState("host"));

    let send = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, headers, body)
        }
    };
    let (status, _, body) = send(Request::get("/hello").body(Body::empty()).unwrap()).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"host"[..]));

    let register = json!({
        "organization_name": "Acme", "name": "A", "email": "a@example.com",
        "password": crate::helpers::PASSWORD
    });
    let (status, _, body) = send(
        Request::post("/crm/api/v1/auth/register")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(register.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (status, headers, _) = send(
        Request::post("/crm/api/v1/accounts")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", token["access_token"].as_str().unwrap()),
            )
            .body(Body::from(json!({ "name": "Globex" }).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    // Location names the record where the host mounted the API.
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/crm/api/v1/accounts/")
    );
}

/// A host handler that reads the caller's organization through the CRM's extractor.
async fn whoami(State(s): State<HostState>, tenant: Tenant) -> String {
    format!("{} {}", s.0, tenant.context().organization_id())
}

#[tokio::test]
async fn host_routes_behind_the_auth_layer_know_the_caller() {
    let crm = crate::harness::sqlite().await;
    let auth = AuthLayer::new(crm.clone(), config());
    let router: Router = Router::new()
        .route("/whoami", get(whoami))
        .route_layer(auth.clone())
        .merge(crm_axum::router_with_auth(&auth))
        .with_state(HostState("host"));
    let app = TestApp { crm, router };
    let acme = app.register("acme").await;
    let globex = app.register("globex").await;

    app.send(Method::GET, "/whoami", None, None, &[])
        .await
        .problem(401, "unauthenticated");
    app.get("/whoami", "not-a-token")
        .await
        .problem(401, "unauthenticated");
    // A token from POST /api/v1/auth/login; each organization sees itself.
    for s in [&acme, &globex] {
        let login = app.login(&s.slug, "admin@example.com").await;
        let r = app.get("/whoami", &login.access).await.expect(200);
        assert_eq!(r.body, format!("host {}", s.org));
    }
    // API keys work there too, scoped or not: the layer only authenticates, and what a key
    // may do is decided by crm-core in the calls the host route makes.
    let key = |scopes| {
        app.post(
            "/api/v1/api-keys",
            &acme.access,
            json!({ "name": "k", "scopes": scopes }),
        )
    };
    let all = key(json!(["all"])).await.expect(201);
    let r = app
        .get("/whoami", all.body["key"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(r.body, format!("host {}", acme.org));
    let scoped = key(json!(["accounts:read"])).await.expect(201);
    let r = app
        .get("/whoami", scoped.body["key"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(r.body, format!("host {}", acme.org));

    // A user whose password an admin set reaches no host route until they change it.
    let bob = app.user(&acme, "bob@example.com", Role::User).await;
    app.send(
        Method::PUT,
        &format!("/api/v1/users/{}/password", bob.user),
        Some(&acme.access),
        Some(json!({ "password": "temporary one" })),
        &[],
    )
    .await
    .expect(204);
    app.get("/whoami", &bob.access)
        .await
        .problem(403, "forbidden")
        .code("password_change_required");
    let change = json!({ "current_password": "temporary one", "new_password": "bob's own one" });
    app.post("/api/v1/me/password", &bob.access, change)
        .await
        .expect(204);
    app.get("/whoami", &bob.access).await.expect(200);
}

#[tokio::test]
async fn merges_into_a_host_router_with_its_own_fallback() {
    let crm = crate::harness::sqlite().await;
    let router: Router = Router::new()
        .fallback(|| async { (StatusCode::IM_A_TEAPOT, "host fallback") })
        .merge(crm_axum::router(crm.clone(), config()));
    let app = TestApp { crm, router };
    let r = app.send(Method::GET, "/elsewhere", None, None, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (418, Some("host fallback"))
    );
    // Unknown API routes stay the API's problem+json 404.
    app.send(Method::GET, "/api/v1/nope", None, None, &[])
        .await
        .problem(404, "no-route");
    app.send(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await
        .expect(200);
}

#[tokio::test]
async fn the_tenant_extractor_without_the_layer_names_it() {
    let crm = crate::harness::sqlite().await;
    let router: Router = Router::new()
        .route(
            "/naked",
            get(|t: Tenant| async move { t.context().organization_id().to_string() }),
        )
        .merge(crm_axum::router(crm.clone(), config()));
    let app = TestApp { crm, router };
    let s = app.register("acme").await;
    let r = app.get("/naked", &s.access).await.problem(500, "internal");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("crm_axum::AuthLayer"), "{detail}");
}
