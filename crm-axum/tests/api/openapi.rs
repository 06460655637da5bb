//! The OpenAPI description: served, complete, and the same as the committed `docs/openapi.yaml`.

use axum::http::Method;

use crate::helpers::TestApp;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");

#[test]
fn committed_openapi_matches_the_code() {
    let generated = crm_axum::openapi().to_yaml().unwrap();
    if std::env::var_os("CRM_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.yaml is out of date with the routes. Regenerate it with\n\n    \
         CRM_UPDATE_OPENAPI=1 cargo test -p crm-axum --test api openapi\n\nand commit the result."
    );
}

#[test]
fn every_route_is_described_with_its_errors() {
    let doc = serde_json::to_value(crm_axum::openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/accounts",
        "/api/v1/accounts/search",
        "/api/v1/accounts/batch",
        "/api/v1/accounts/{id}",
        "/api/v1/accounts/{id}/restore",
        "/api/v1/contacts",
        "/api/v1/contacts/{id}",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/organizations",
        "/api/v1/organizations/{id}",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/webhooks/forms",
    ] {
        assert!(paths.contains_key(p), "{p} is not described");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("api_key"));
    for s in [
        "Problem",
        "Account",
        "NewAccount",
        "AccountPatch",
        "Contact",
        "UserView",
    ] {
        assert!(doc["components"]["schemas"].get(s).is_some(), "schema {s}");
    }
}

#[tokio::test]
async fn the_document_and_swagger_ui_are_served() {
    let app = TestApp::new(crate::harness::sqlite().await);
    let res = app
        .send(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await
        .expect(200);
    assert_eq!(res.body, serde_json::to_value(crm_axum::openapi()).unwrap());
    let ui = app
        .send(Method::GET, "/docs/", None, None, &[])
        .await
        .expect(200);
    assert!(ui.body.as_str().unwrap().contains("swagger"));
}
