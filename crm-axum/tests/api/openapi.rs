//! The OpenAPI description: served, complete, and the same as the committed `docs/openapi.yaml`.

use axum::http::Method;

use crate::helpers::TestApp;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");

#[test]
fn committed_openapi_matches_the_code() {
    let generated = crm_axum::openapi().to_yaml().unwrap();
    let update = may_update(
        std::env::var("CRM_UPDATE_OPENAPI").ok().as_deref(),
        std::env::var("CI").ok().as_deref(),
    )
    .unwrap_or_else(|refusal| panic!("{refusal}"));
    if update {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.yaml is out of date with the routes. Regenerate it with\n\n    \
         CRM_UPDATE_OPENAPI=1 cargo test -p crm-axum --test api openapi\n\nand commit the result."
    );
}

/// Whether the drift check may rewrite `docs/openapi.yaml`, from `CRM_UPDATE_OPENAPI` and `CI`:
/// only when asked, and never in CI, where a stray variable would turn the check into a rewrite
/// that always passes.
fn may_update(update: Option<&str>, ci: Option<&str>) -> Result<bool, String> {
    let set = |v: Option<&str>| v.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    match (set(update), set(ci)) {
        (false, _) => Ok(false),
        (true, false) => Ok(true),
        (true, true) => Err(format!(
            "CRM_UPDATE_OPENAPI is set in CI (CI={}): CI checks docs/openapi.yaml, it does not \
             rewrite it. Regenerate it locally and commit the result.",
            ci.unwrap_or_default()
        )),
    }
}

#[test]
fn ci_refuses_to_rewrite_the_committed_openapi() {
    assert_eq!(may_update(None, None), Ok(false));
    assert_eq!(may_update(None, Some("true")), Ok(false));
    assert_eq!(may_update(Some("1"), None), Ok(true));
    assert_eq!(may_update(Some("1"), Some("false")), Ok(true));
    assert_eq!(may_update(Some(""), Some("true")), Ok(false));
    for ci in ["true", "1", "yes"] {
        assert!(may_update(Some("1"), Some(ci)).is_err(), "CI={ci}");
    }
    // The drift check itself refuses: run it in this test binary with both variables set.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["openapi::committed_openapi_matches_the_code", "--exact"])
        .env("CRM_UPDATE_OPENAPI", "1")
        .env("CI", "true")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("1 failed"), "{text}");
    assert!(text.contains("CRM_UPDATE_OPENAPI is set in CI"), "{text}");
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
        "/api/v1/leads",
        "/api/v1/leads/{id}",
        "/api/v1/leads/{id}/convert",
        "/api/v1/leads/{id}/timeline",
        "/api/v1/opportunities",
        "/api/v1/opportunities/{id}/close",
        "/api/v1/invoices",
        "/api/v1/invoices/{id}/send",
        "/api/v1/invoices/{id}/pay",
        "/api/v1/invoices/{id}/void",
        "/api/v1/activities",
        "/api/v1/activities/{id}/complete",
        "/api/v1/activities/{id}/reopen",
        "/api/v1/accounts/{id}/timeline",
        "/api/v1/pipelines",
        "/api/v1/pipelines/{id}",
        "/api/v1/pipelines/{id}/summary",
        "/api/v1/custom-fields/{entity}",
        "/api/v1/custom-fields/{entity}/{key}",
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
        "User",
        "Record_Account",
        "Page_Record_Account",
        "Lead",
        "NewInvoice",
        "Conversion",
        "ConvertLead",
        "CloseOpportunity",
        "Pipeline",
        "PipelineSummary",
        "CustomFieldDefinition",
        "Page_TimelineItem",
        "TimelineItem",
        "FormLead",
    ] {
        assert!(doc["components"]["schemas"].get(s).is_some(), "schema {s}");
    }
    // Every `$ref` points at a schema that exists.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
    // Invoices: line items are an array of objects, dates are dates, read-only fields are
    // marked in the record and absent from the inputs.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["NewInvoice"]["properties"]["line_items"]["type"],
        "array"
    );
    assert_eq!(
        schemas["NewInvoice"]["properties"]["line_items"]["items"]["type"],
        "object"
    );
    assert_eq!(
        schemas["Invoice"]["properties"]["due_date"]["format"],
        "date"
    );
    assert_eq!(schemas["Invoice"]["properties"]["status"]["readOnly"], true);
    for input in ["NewInvoice", "InvoicePatch"] {
        for f in ["status", "number", "total_minor", "paid_at"] {
            assert!(schemas[input]["properties"].get(f).is_none(), "{input}.{f}");
        }
    }
    assert!(
        schemas["NewLead"]["properties"]
            .get("converted_at")
            .is_none()
    );
    assert!(
        schemas["ActivityPatch"]["properties"]
            .get("completed_at")
            .is_none()
    );
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
