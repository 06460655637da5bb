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
