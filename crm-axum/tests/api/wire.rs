//! Real responses of every route family held against the document of `crm_axum::openapi()`:
//! status, content type, promised headers and body schema. A schema that drifts from what is
//! serialized fails here; so does a checker that would let drift through.

use axum::body::Body;
use axum::http::{Method, Request, header};
use crm_core::{Crm, Role};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Res, TestApp, expect_uuid};
use crate::schema_check::Checker;

crate::on_both_backends!(
    every_route_family_answers_as_described,
    a_create_naming_a_missing_record_answers_as_described
);

/// Calls routes with one token and checks each answer against the document.
struct Api<'a> {
    app: &'a TestApp,
    checker: &'a Checker,
    token: Option<String>,
}

impl Api<'_> {
    /// Sends `method path` (described as `template`, relative to `/api/v1`), asserts the
    /// status, and checks the answer against its description.
    async fn call(
        &self,
        method: Method,
        template: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Res {
        let res = self
            .app
            .send(
                method.clone(),
                &format!("/api/v1{path}"),
                self.token.as_deref(),
                body,
                &[],
            )
            .await
            .expect(status);
        self.checker
            .response(method.as_str(), &format!("/api/v1{template}"), &res);
        res
    }

    /// [`Api::call`] of a path without parameters: the path is its own template.
    async fn at(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Res {
        self.call(method, path, path, body, status).await
    }

    /// The same checks with another token.
    fn with(&self, token: Option<String>) -> Self {
        Self {
            app: self.app,
            checker: self.checker,
            token,
        }
    }

    /// The id of the record `POST /{plural}` creates from `body`, checking every record route
    /// of the entity on the way: create, read, list, search, patch, history, a past read, batch,
    /// delete, restore.
    async fn record_routes(&self, plural: &str, body: Value, patch: Value) -> String {
        let coll = format!("/{plural}");
        let item = format!("/{plural}/{{id}}");
        let created = self
            .call(Method::POST, &coll, &coll, Some(body.clone()), 201)
            .await;
        let id = expect_uuid(&created.body["id"]).to_string();
        let one = format!("{coll}/{id}");
        self.call(Method::GET, &item, &one, None, 200).await;
        self.call(Method::GET, &coll, &format!("{coll}?limit=2"), None, 200)
            .await;
        self.call(
            Method::POST,
            &format!("{coll}/search"),
            &format!("{coll}/search"),
            Some(json!({ "filters": [{ "field": "id", "op": "eq", "value": id }] })),
            200,
        )
        .await;
        self.call(Method::PATCH, &item, &one, Some(patch.clone()), 200)
            .await;
        let history = self
            .call(
                Method::GET,
                &format!("{item}/history"),
                &format!("{one}/history"),
                None,
                200,
            )
            .await;
        let created_at = created.body["created_at"].as_str().unwrap();
        let as_of = format!("{one}?as_of={}", created_at.replace('+', "%2B"));
        self.call(Method::GET, &item, &as_of, None, 200).await;
        assert!(
            history.body["data"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
            "{}",
            history.body
        );
        self.call(
            Method::POST,
            &format!("{coll}/batch"),
            &format!("{coll}/batch"),
            Some(json!({ "create": [body], "update": [{ "id": id, "patch": patch }] })),
            200,
        )
        .await;
        self.call(Method::DELETE, &item, &one, None, 204).await;
        self.call(
            Method::POST,
            &format!("{item}/restore"),
            &format!("{one}/restore"),
            None,
            200,
        )
        .await;
        id
    }

    /// `POST /{plural}/{id}/{verb}`.
    async fn verb(&self, plural: &str, id: &str, verb: &str, body: Value, status: u16) -> Res {
        self.call(
            Method::POST,
            &format!("/{plural}/{{id}}/{verb}"),
            &format!("/{plural}/{id}/{verb}"),
            Some(body),
            status,
        )
        .await
    }
}

/// A create whose body links to a record that does not exist answers 404, whatever the entity,
/// and the document lists that answer for the operation.
async fn a_create_naming_a_missing_record_answers_as_described(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let checker = Checker::new();
    let api = Api {
        app: &app,
        checker: &checker,
        token: Some(admin.access.clone()),
    };
    let nobody = uuid::Uuid::now_v7();
    let cases = [
        ("accounts", json!({ "name": "Globex", "owner_id": nobody })),
        (
            "contacts",
            json!({ "last_name": "Ada", "account_id": nobody }),
        ),
        (
            "leads",
            json!({ "last_name": "Hopper", "owner_id": nobody }),
        ),
        (
            "opportunities",
            json!({ "name": "Deal", "account_id": nobody }),
        ),
        (
            "invoices",
            json!({ "account_id": nobody, "currency": "EUR", "due_date": "2030-01-31", "line_items": [] }),
        ),
        (
            "activities",
            json!({ "subject": "Call", "kind": "task", "related_entity": "account", "related_id": nobody }),
        ),
    ];
    for kind in crm_core::EntityKind::ALL {
        let covered = cases.iter().any(|(plural, _)| *plural == kind.table());
        assert!(covered, "no dangling-link case for {}", kind.table());
    }
    for (plural, body) in cases {
        let path = format!("/{plural}");
        api.at(Method::POST, &path, Some(body), 404).await;
    }
}

async fn every_route_family_answers_as_described(crm: Crm) {
    let app = TestApp::new(crm);
    let checker = Checker::new();
    let mut api = Api {
        app: &app,
        checker: &checker,
        token: None,
    };

    // Auth: register, login, refresh, me, logout.
    let slug = format!("acme-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let registered = api
        .at(
            Method::POST,
            "/auth/register",
            Some(json!({
                "organization_name": "Acme",
                "organization_slug": slug,
                "name": "Admin",
                "email": "admin@example.com",
                "password": PASSWORD,
            })),
            201,
        )
        .await;
    let login = json!({ "organization": slug, "email": "admin@example.com", "password": PASSWORD });
    let tokens = api.at(Method::POST, "/auth/login", Some(login), 200).await;
    let refresh = |r: &Res| json!({ "refresh_token": r.body["refresh_token"] });
    api.at(
        Method::POST,
        "/auth/refresh",
        Some(refresh(&registered)),
        200,
    )
    .await;
    api.token = tokens.body["access_token"].as_str().map(str::to_owned);
    api.at(Method::GET, "/me", None, 200).await;
    api.at(Method::POST, "/auth/logout", Some(refresh(&tokens)), 204)
        .await;

    // Every entity's record routes.
    let account = api
        .record_routes(
            "accounts",
            json!({ "name": "Globex" }),
            json!({ "name": "Globex AG" }),
        )
        .await;
    let contact = api
        .record_routes(
            "contacts",
            json!({ "first_name": "Ada", "email": "ada@example.com", "account_id": account }),
            json!({ "last_name": "Lovelace" }),
        )
        .await;
    let lead = api
        .record_routes(
            "leads",
            json!({ "last_name": "Hopper", "company": "Initech" }),
            json!({ "first_name": "Grace" }),
        )
        .await;
    let deal = api
        .record_routes(
            "opportunities",
            json!({ "name": "Deal", "amount_minor": 1000, "currency": "EUR", "account_id": account }),
            json!({ "name": "Big deal" }),
        )
        .await;
    let invoice_body = json!({
        "account_id": account,
        "currency": "EUR",
        "due_date": "2030-01-31",
        "line_items": [{ "description": "Licence", "quantity": 2, "unit_price_minor": 5000, "tax_rate_bp": 2000 }],
    });
    let invoice = api
        .record_routes(
            "invoices",
            invoice_body.clone(),
            json!({ "notes": "Thanks" }),
        )
        .await;
    let task = api
        .record_routes(
            "activities",
            json!({ "subject": "Call", "kind": "task", "related_entity": "account", "related_id": account }),
            json!({ "subject": "Call back" }),
        )
        .await;

    // The verbs.
    api.verb("leads", &lead, "convert", json!({ "opportunity": {} }), 200)
        .await;
    api.verb("leads", &lead, "convert", json!({}), 409).await;
    api.verb(
        "opportunities",
        &deal,
        "close",
        json!({ "outcome": "lost", "reason": "price" }),
        200,
    )
    .await;
    api.verb("invoices", &invoice, "send", json!({}), 200).await;
    api.verb("invoices", &invoice, "pay", json!({}), 200).await;
    let second = api
        .at(Method::POST, "/invoices", Some(invoice_body), 201)
        .await;
    let second = second.body["id"].as_str().unwrap_or_default().to_owned();
    api.verb("invoices", &second, "void", json!({}), 200).await;
    api.verb("activities", &task, "complete", json!({}), 200)
        .await;
    api.verb("activities", &task, "reopen", json!({}), 200)
        .await;

    // Timelines: an activity and events.
    for (plural, id) in [("accounts", &account), ("invoices", &invoice)] {
        let t = api
            .call(
                Method::GET,
                &format!("/{plural}/{{id}}/timeline"),
                &format!("/{plural}/{id}/timeline"),
                None,
                200,
            )
            .await;
        assert!(!t.body["data"].as_array().unwrap().is_empty());
    }

    // Erasure.
    api.verb("contacts", &contact, "erase", json!({}), 200)
        .await;
    let other_lead = api
        .at(
            Method::POST,
            "/leads",
            Some(json!({ "last_name": "Doe" })),
            201,
        )
        .await;
    let other_lead = other_lead.body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.verb("leads", &other_lead, "erase", json!({}), 200)
        .await;

    // Pipelines.
    let stages = json!([
        { "name": "Open", "probability": 10, "kind": "open" },
        { "name": "Won", "probability": 100, "kind": "won" },
        { "name": "Lost", "probability": 0, "kind": "lost" },
    ]);
    api.at(Method::GET, "/pipelines", None, 200).await;
    // The change feed, from the beginning and from its head.
    api.at(Method::GET, "/changes", None, 200).await;
    api.at(Method::GET, "/changes/head", None, 200).await;
    // Full-text search over what the record routes made, and a refused query.
    let hits = api
        .call(Method::GET, "/search", "/search?q=a&limit=1", None, 200)
        .await;
    assert!(
        !hits.body["data"].as_array().unwrap().is_empty(),
        "{}",
        hits.body
    );
    api.call(Method::GET, "/search", "/search?q=%3F%3F", None, 422)
        .await;
    let p = api
        .at(
            Method::POST,
            "/pipelines",
            Some(json!({ "name": "Renewals", "stages": stages })),
            201,
        )
        .await;
    let p = p.body["id"].as_str().unwrap_or_default().to_owned();
    api.call(
        Method::GET,
        "/pipelines/{id}",
        &format!("/pipelines/{p}"),
        None,
        200,
    )
    .await;
    api.call(
        Method::GET,
        "/pipelines/{id}/summary",
        &format!("/pipelines/{p}/summary"),
        None,
        200,
    )
    .await;

    // Custom fields.
    let defs = "/custom-fields/{entity}";
    let def = "/custom-fields/{entity}/{key}";
    api.call(
        Method::POST,
        defs,
        "/custom-fields/accounts",
        Some(json!({ "key": "tier", "label": "Tier", "field_type": "select", "options": ["gold", "silver"] })),
        201,
    )
    .await;
    api.call(Method::GET, defs, "/custom-fields/accounts", None, 200)
        .await;
    api.call(
        Method::PATCH,
        def,
        "/custom-fields/accounts/tier",
        Some(json!({ "label": "Level", "default_value": "gold" })),
        200,
    )
    .await;
    api.call(
        Method::DELETE,
        def,
        "/custom-fields/accounts/tier",
        None,
        200,
    )
    .await;

    // Users.
    api.at(Method::GET, "/users", None, 200).await;
    let u = api
        .at(Method::POST, "/users", Some(json!({ "email": "u@example.com", "name": "U", "password": PASSWORD, "role": "user" })),
            201,
        )
        .await;
    let u = u.body["id"].as_str().unwrap_or_default().to_owned();
    api.call(
        Method::PATCH,
        "/users/{id}",
        &format!("/users/{u}"),
        Some(json!({ "role": "company_admin" })),
        200,
    )
    .await;

    // API keys and the web-form webhook.
    let created = api
        .at(
            Method::POST,
            "/api-keys",
            Some(json!({ "name": "web" })),
            201,
        )
        .await;
    api.at(Method::GET, "/api-keys", None, 200).await;
    let key_api = api.with(created.body["key"].as_str().map(str::to_owned));
    key_api
        .at(
            Method::POST,
            "/webhooks/forms",
            Some(json!({ "name": "Ada Lovelace", "email": "ada@example.com", "utm": "x" })),
            201,
        )
        .await;
    let key_id = created.body["api_key"]["id"].as_str().unwrap_or_default();
    api.call(
        Method::DELETE,
        "/api-keys/{id}",
        &format!("/api-keys/{key_id}"),
        None,
        204,
    )
    .await;

    // Organizations (a super-admin).
    let home = app.register("home").await;
    let root = app.user(&home, "root@example.com", Role::SuperAdmin).await;
    let root_api = api.with(Some(root.access.clone()));
    root_api.at(Method::GET, "/organizations", None, 200).await;
    let org = root_api
        .at(
            Method::POST,
            "/organizations",
            Some(json!({ "name": "Initech" })),
            201,
        )
        .await;
    let org = org.body["id"].as_str().unwrap_or_default().to_owned();
    root_api
        .call(
            Method::PATCH,
            "/organizations/{id}",
            &format!("/organizations/{org}"),
            Some(json!({ "status": "suspended" })),
            200,
        )
        .await;

    // Problems: each documented where it is answered.
    let one = format!("/accounts/{account}");
    api.call(
        Method::GET,
        "/accounts/{id}",
        &format!("/accounts/{}", uuid::Uuid::now_v7()),
        None,
        404,
    )
    .await;
    api.call(
        Method::GET,
        "/accounts/{id}",
        "/accounts/not-a-uuid",
        None,
        400,
    )
    .await;
    api.at(Method::POST, "/accounts", Some(json!({ "name": "" })), 422)
        .await;
    api.call(Method::GET, "/accounts", "/accounts?limit=1000", None, 422)
        .await;
    let anonymous = api.with(None);
    anonymous.at(Method::GET, "/accounts", None, 401).await;
    let user = app.user(&home, "plain@example.com", Role::User).await;
    let user_api = api.with(Some(user.access.clone()));
    user_api.at(Method::GET, "/api-keys", None, 403).await;
    // Raw bodies and headers: malformed JSON, a wrong content type, a stale If-Match.
    let token = api.token.clone().unwrap_or_default();
    let raw = |method: Method, path: &str, ct: &str, body: &str, extra: Option<(&str, &str)>| {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, ct);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.body(Body::from(body.to_owned())).unwrap()
    };
    for (req, template, status) in [
        (
            raw(Method::POST, "/accounts", "application/json", "{", None),
            "/accounts",
            400,
        ),
        (
            raw(Method::POST, "/accounts", "text/plain", "name", None),
            "/accounts",
            415,
        ),
        (
            raw(
                Method::PATCH,
                &one,
                "application/json",
                r#"{"name":"X"}"#,
                Some(("if-match", "\"1\"")),
            ),
            "/accounts/{id}",
            412,
        ),
        (
            raw(
                Method::PATCH,
                &one,
                "application/json",
                r#"{"name":"X"}"#,
                Some(("if-match", "nope")),
            ),
            "/accounts/{id}",
            400,
        ),
    ] {
        let method = req.method().clone();
        let res = app.raw(req).await.expect(status);
        checker.response(method.as_str(), &format!("/api/v1{template}"), &res);
    }
}

/// The checker itself fails on drift: a missing required field, a wrong type, an undeclared
/// property where `additionalProperties` is false, and a null where none is allowed.
#[tokio::test]
async fn the_checker_catches_drift() {
    let app = TestApp::new(crate::harness::sqlite().await);
    let s = app.register("acme").await;
    let t = s.access.as_str();
    let checker = Checker::new();
    let account = app
        .post("/api/v1/accounts", t, json!({ "name": "Globex" }))
        .await
        .expect(201)
        .body;
    assert_eq!(
        checker.errors("Record_Account", &account),
        Vec::<String>::new()
    );

    let drifted = |f: &dyn Fn(&mut Value)| {
        let mut v = account.clone();
        f(&mut v);
        checker.errors("Record_Account", &v)
    };
    let missing = drifted(&|v| {
        v.as_object_mut().unwrap().remove("name");
    });
    assert!(
        missing.iter().any(|e| e.contains("`name` is missing")),
        "{missing:?}"
    );
    let wrong = drifted(&|v| v["version"] = json!("1"));
    assert!(wrong.iter().any(|e| e.contains("version")), "{wrong:?}");
    let null = drifted(&|v| v["organization_id"] = Value::Null);
    assert!(
        null.iter().any(|e| e.contains("organization_id")),
        "{null:?}"
    );
    let bad_uuid = drifted(&|v| v["id"] = json!("not-a-uuid"));
    assert!(bad_uuid.iter().any(|e| e.contains("uuid")), "{bad_uuid:?}");
    let bad_enum = checker.errors("Record_Lead", &{
        let mut l = app
            .post("/api/v1/leads", t, json!({ "last_name": "Hopper" }))
            .await
            .expect(201)
            .body;
        l["status"] = json!("bogus");
        l
    });
    assert!(
        bad_enum.iter().any(|e| e.contains("status")),
        "{bad_enum:?}"
    );
    // Inputs deny unknown fields: their schemas say so, and the checker holds them to it.
    let extra = checker.errors("NewAccount", &json!({ "name": "A", "nickname": "B" }));
    assert!(extra.iter().any(|e| e.contains("nickname")), "{extra:?}");
    // An invoice's account is never null.
    let null_account = checker.errors(
        "NewInvoice",
        &json!({ "currency": "EUR", "account_id": null }),
    );
    assert!(
        null_account.iter().any(|e| e.contains("account_id")),
        "{null_account:?}"
    );
}
