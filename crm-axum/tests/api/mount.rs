//! The router mounts into a host app with its own state, under its own prefix.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, header};
use axum::routing::get;
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;

use crate::helpers::config;

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
