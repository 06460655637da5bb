//! Leads, opportunities, invoices and activities: their record routes, read-only fields, the
//! entity verbs and timelines.

use axum::http::Method;
use crm_core::{Crm, Role};
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(
    read_only_fields_are_refused,
    leads_convert,
    opportunities_close,
    invoices_send_pay_and_void,
    only_admins_and_owners_reassign_records,
    tasks_complete_and_reopen,
    timelines_page_newest_first,
    verbs_and_timelines_of_another_organization_answer_404,
    contacts_and_leads_are_erased_by_admins,
);

async fn contacts_and_leads_are_erased_by_admins(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let other = app.register("globex").await;
    let a = admin.access.as_str();
    let contact = app
        .create(
            a,
            "contacts",
            json!({ "first_name": "Ada", "email": "ada@secret.test" }),
        )
        .await;
    let lead_body = json!({ "last_name": "Hopper", "email": "grace@secret.test" });
    let create_lead = || {
        app.send(
            Method::POST,
            "/api/v1/leads",
            Some(a),
            Some(lead_body.clone()),
            &[("idempotency-key", "lead-1")],
        )
    };
    let lead = create_lead().await.expect(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let erase = |plural: &str, id: &str| format!("/api/v1/{plural}/{id}/erase");

    app.post(
        &erase("contacts", &contact),
        user.access.as_str(),
        json!({}),
    )
    .await
    .problem(403, "forbidden")
    .code("admin_only");
    app.post(
        &erase("contacts", &contact),
        other.access.as_str(),
        json!({}),
    )
    .await
    .problem(404, "not-found");
    let r = app
        .post(&erase("contacts", &contact), a, json!({}))
        .await
        .expect(200);
    assert_eq!(
        (r.body["entity"].as_str(), r.body["id"].as_str()),
        (Some("contact"), Some(contact.as_str()))
    );
    app.get(&format!("/api/v1/contacts/{contact}"), a)
        .await
        .problem(404, "not-found");
    app.post(&erase("leads", &lead), a, json!({}))
        .await
        .expect(200);
    app.post(&erase("leads", &lead), a, json!({}))
        .await
        .problem(404, "not-found");
    // The stored response of the request that created her is gone: repeating it neither
    // replays her nor creates her again.
    let r = create_lead().await.problem(410, "erased");
    assert!(!r.body.to_string().contains("grace@secret.test"));
    let leads = app.get("/api/v1/leads", a).await.expect(200);
    assert_eq!(leads.body["data"].as_array().unwrap().len(), 0);
}

fn invoice_body(account: &str) -> Value {
    json!({
        "account_id": account,
        "currency": "EUR",
        "due_date": "2030-01-31",
        "line_items": [{ "description": "Licence", "quantity": 2, "unit_price_minor": 5000, "tax_rate_bp": 2000 }],
    })
}

async fn read_only_fields_are_refused(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let account = app.create(t, "accounts", json!({ "name": "Globex" })).await;

    // Create: each read-only column is one `read_only` field error.
    for (plural, body, fields) in [
        (
            "invoices",
            {
                let mut b = invoice_body(&account);
                b["status"] = json!("paid");
                b["number"] = json!("INV-999999");
                b["total_minor"] = json!(1);
                b
            },
            vec!["number", "status", "total_minor"],
        ),
        (
            "leads",
            json!({ "last_name": "Hopper", "converted_at": "2030-01-01T00:00:00Z", "converted_account_id": account }),
            vec!["converted_account_id", "converted_at"],
        ),
        (
            "opportunities",
            json!({ "name": "Deal", "status": "won", "closed_at": "2030-01-01T00:00:00Z" }),
            vec!["closed_at", "status"],
        ),
        (
            "activities",
            json!({ "subject": "Call", "kind": "task", "related_entity": "account", "related_id": account, "completed_at": "2030-01-01T00:00:00Z" }),
            vec!["completed_at"],
        ),
    ] {
        let r = app
            .post(&format!("/api/v1/{plural}"), t, body)
            .await
            .problem(422, "validation");
        let mut got = r.field_errors();
        got.sort();
        let want: Vec<(String, String)> = fields
            .iter()
            .map(|f| ((*f).to_owned(), "read_only".to_owned()))
            .collect();
        assert_eq!(got, want, "{plural}");
    }

    // Patch and batch too; the server's values stay.
    let invoice = app
        .post("/api/v1/invoices", t, invoice_body(&account))
        .await
        .expect(201);
    assert_eq!(invoice.body["number"], "INV-000001");
    assert_eq!(invoice.body["total_minor"], 12_000);
    assert_eq!(invoice.body["issue_date"], Value::Null);
    assert_eq!(invoice.body["due_date"], "2030-01-31");
    let id = invoice.body["id"].as_str().unwrap();
    let path = format!("/api/v1/invoices/{id}");
    let r = app
        .patch(&path, t, json!({ "status": "paid", "notes": "x" }))
        .await
        .problem(422, "validation");
    assert_eq!(
        r.field_errors(),
        vec![("status".to_owned(), "read_only".to_owned())]
    );
    let r = app
        .post(
            "/api/v1/invoices/batch",
            t,
            json!({ "update": [{ "id": id, "patch": { "subtotal_minor": 0 } }] }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["results"][0]["status"], 422);
    assert_eq!(app.get(&path, t).await.expect(200).body["status"], "draft");
    // Bad values are typed field errors, not 500s.
    app.post(
        "/api/v1/invoices",
        t,
        json!({ "account_id": account, "currency": "EUR", "due_date": "tomorrow" }),
    )
    .await
    .problem(422, "validation");
}

async fn leads_convert(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    // Plain users convert.
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let t = user.access.as_str();
    let lead = app.create(t,
        "leads",
        json!({ "first_name": "Grace", "last_name": "Hopper", "company": "Navy", "email": "grace@example.com" }),
    )
    .await;
    let path = format!("/api/v1/leads/{lead}/convert");
    // Unknown fields and malformed bodies are problems.
    app.post(&path, t, json!({ "opportunity": { "bogus": 1 } }))
        .await
        .problem(422, "validation");
    app.post(&path, t, json!({ "account": { "existing": "not-a-uuid" } }))
        .await
        .problem(422, "validation");
    let c = app
        .post(
            &path,
            t,
            json!({ "opportunity": { "amount_minor": 100000, "currency": "EUR" } }),
        )
        .await
        .expect(200);
    assert_eq!(c.body["lead"]["status"], "converted");
    assert_eq!(c.body["account"]["name"], "Navy");
    assert_eq!(c.body["contact"]["email"], "grace@example.com");
    assert_eq!(c.body["opportunity"]["status"], "open");
    assert_eq!(
        c.body["lead"]["converted_account_id"],
        c.body["account"]["id"]
    );
    // Twice: 409. Converted leads are read-only.
    app.post(&path, t, json!({}))
        .await
        .problem(409, "conflict")
        .code("already_converted");
    app.patch(&format!("/api/v1/leads/{lead}"), t, json!({ "title": "x" }))
        .await
        .problem(409, "conflict")
        .code("converted_read_only");
    // Linking an existing account.
    let account = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let lead = app
        .create(t, "leads", json!({ "last_name": "Lovelace" }))
        .await;
    let c = app
        .post(
            &format!("/api/v1/leads/{lead}/convert"),
            t,
            json!({ "account": { "existing": account } }),
        )
        .await
        .expect(200);
    assert_eq!(c.body["account"]["id"], account.as_str());
    assert_eq!(c.body["opportunity"], Value::Null);
}

async fn opportunities_close(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let t = user.access.as_str();
    let won = app
        .create(t, "opportunities", json!({ "name": "Big deal" }))
        .await;
    let lost = app
        .create(t, "opportunities", json!({ "name": "Small deal" }))
        .await;
    let close = |id: &str| format!("/api/v1/opportunities/{id}/close");

    // Bad bodies: 422 (unknown outcome, unknown field, a reason for a win); no body: 415.
    for body in [
        json!({ "outcome": "maybe" }),
        json!({ "outcome": "won", "extra": 1 }),
        json!({}),
    ] {
        app.post(&close(&won), t, body)
            .await
            .problem(422, "validation");
    }
    let r = app
        .post(&close(&won), t, json!({ "outcome": "won", "reason": "x" }))
        .await
        .problem(422, "validation");
    assert_eq!(
        r.field_errors(),
        vec![("reason".to_owned(), "not_allowed".to_owned())]
    );
    app.send(axum::http::Method::POST, &close(&won), Some(t), None, &[])
        .await
        .problem(415, "unsupported-media-type");

    let r = app
        .post(&close(&won), t, json!({ "outcome": "won" }))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "won");
    assert_eq!(r.body["probability"], 100);
    assert!(r.body["closed_at"].is_string());
    assert_eq!(r.headers[axum::http::header::ETAG], "\"2\"");
    let r = app
        .post(
            &close(&lost),
            t,
            json!({ "outcome": "lost", "reason": "Budget" }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "lost");
    assert_eq!(r.body["lost_reason"], "Budget");
    // Closed already: 409.
    app.post(&close(&won), t, json!({ "outcome": "lost" }))
        .await
        .problem(409, "conflict");
}

async fn invoices_send_pay_and_void(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let (t, ad) = (user.access.as_str(), admin.access.as_str());
    let account = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let a = app.create(t, "invoices", invoice_body(&account)).await;
    let b = app.create(t, "invoices", invoice_body(&account)).await;
    let verb = |id: &str, v: &str| format!("/api/v1/invoices/{id}/{v}");
    let one = |id: &str| format!("/api/v1/invoices/{id}");

    // A draft cannot be paid.
    app.post(&verb(&a, "pay"), ad, json!({}))
        .await
        .problem(409, "conflict")
        .code("wrong_state");
    let r = app.post(&verb(&a, "send"), t, json!({})).await.expect(200);
    assert_eq!(r.body["status"], "sent");
    assert!(r.body["issue_date"].is_string());
    // Sent invoices are read-only to patches.
    app.patch(&one(&a), t, json!({ "notes": "late change" }))
        .await
        .problem(409, "conflict");
    // Financial records: a sent invoice is neither trashed (by its creator or an admin) nor
    // purged; voiding is the way.
    for (token, path) in [
        (t, one(&a)),
        (ad, one(&a)),
        (ad, format!("{}?permanent=true", one(&a))),
    ] {
        app.delete(&path, token)
            .await
            .problem(409, "conflict")
            .code("not_draft");
    }
    // Paying and voiding are for company admins.
    app.post(&verb(&a, "pay"), t, json!({}))
        .await
        .problem(403, "forbidden")
        .code("admin_only");
    let r = app.post(&verb(&a, "pay"), ad, json!({})).await.expect(200);
    assert_eq!(r.body["status"], "paid");
    assert!(r.body["paid_at"].is_string());
    // Paid: cannot be voided.
    app.post(&verb(&a, "void"), ad, json!({}))
        .await
        .problem(409, "conflict");
    app.post(&verb(&b, "void"), t, json!({}))
        .await
        .problem(403, "forbidden")
        .code("admin_only");
    let r = app.post(&verb(&b, "void"), ad, json!({})).await.expect(200);
    assert_eq!(r.body["status"], "void");
    app.delete(&format!("{}?permanent=true", one(&b)), ad)
        .await
        .problem(409, "conflict")
        .code("not_draft");
    // Drafts go to the trash as any record.
    let c = app.create(t, "invoices", invoice_body(&account)).await;
    app.delete(&one(&c), t).await.expect(204);
    // Lists filter on the read-only status.
    let l = app
        .get("/api/v1/invoices?filter[status]=void", t)
        .await
        .expect(200);
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
}

async fn only_admins_and_owners_reassign_records(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let (t, ad) = (user.access.as_str(), admin.access.as_str());
    let account = app
        .create(ad, "accounts", json!({ "name": "Admin's" }))
        .await;
    let path = format!("/api/v1/accounts/{account}");

    // Claiming someone else's record, to delete it next: refused, and so is the delete.
    app.patch(&path, t, json!({ "owner_id": user.user }))
        .await
        .problem(403, "forbidden")
        .code("not_owner");
    app.post(
        "/api/v1/accounts/batch",
        t,
        json!({ "update": [{ "id": account, "patch": { "owner_id": user.user } }] }),
    )
    .await
    .expect(200)
    .body["results"][0]["status"]
        .as_u64()
        .filter(|s| *s == 403)
        .expect("the batch item is refused");
    app.delete(&path, t)
        .await
        .problem(403, "forbidden")
        .code("not_owner");
    // An activity's assignee is its owner column.
    let task = app
        .create(
            ad,
            "activities",
            json!({ "kind": "task", "subject": "Call", "related_entity": "account",
                    "related_id": account, "assignee_id": admin.user }),
        )
        .await;
    app.patch(
        &format!("/api/v1/activities/{task}"),
        t,
        json!({ "assignee_id": user.user }),
    )
    .await
    .problem(403, "forbidden")
    .code("not_owner");

    // An admin assigns it; the new owner may hand it back (and delete it meanwhile).
    let r = app
        .patch(&path, ad, json!({ "owner_id": user.user }))
        .await
        .expect(200);
    assert_eq!(r.body["owner_id"], user.user.to_string());
    app.patch(&path, t, json!({ "owner_id": admin.user }))
        .await
        .expect(200);
    // A create may assign a record to anyone of the organization.
    app.create(
        t,
        "contacts",
        json!({ "first_name": "Ada", "owner_id": admin.user }),
    )
    .await;
}

async fn tasks_complete_and_reopen(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let t = user.access.as_str();
    let account = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let task = app.create(t,
        "activities",
        json!({ "kind": "task", "subject": "Call back", "related_entity": "account", "related_id": account, "due_at": "2030-01-01T09:00:00Z" }),
    )
    .await;
    let note = app
        .create(
            t,
            "activities",
            json!({ "subject": "Met", "related_entity": "account", "related_id": account }),
        )
        .await;
    let r = app
        .post(&format!("/api/v1/activities/{task}/complete"), t, json!({}))
        .await
        .expect(200);
    assert!(r.body["completed_at"].is_string());
    app.post(&format!("/api/v1/activities/{task}/complete"), t, json!({}))
        .await
        .problem(409, "conflict");
    let r = app
        .post(&format!("/api/v1/activities/{task}/reopen"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(r.body["completed_at"], Value::Null);
    // A note is no task.
    app.post(&format!("/api/v1/activities/{note}/complete"), t, json!({}))
        .await
        .problem(409, "conflict");
    // Activities have no timeline of their own.
    app.get(&format!("/api/v1/activities/{note}/timeline"), t)
        .await
        .problem(404, "no-route");
}

async fn timelines_page_newest_first(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let account = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    app.patch(
        &format!("/api/v1/accounts/{account}"),
        t,
        json!({ "industry": "Energy" }),
    )
    .await
    .expect(200);
    app.create(
        t,
        "activities",
        json!({ "subject": "Kickoff", "related_entity": "account", "related_id": account }),
    )
    .await;
    let path = format!("/api/v1/accounts/{account}/timeline");
    let all = app.get(&path, t).await.expect(200);
    let items = all.body["data"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", all.body);
    assert_eq!(items[0]["type"], "activity");
    assert_eq!(items[0]["subject"], "Kickoff");
    assert_eq!(items[2]["type"], "event");
    assert_eq!(items[2]["action"], "created");
    // Pages of one.
    let p1 = app.get(&format!("{path}?limit=1"), t).await.expect(200);
    let cursor = p1.body["next_cursor"].as_str().unwrap().to_owned();
    let p2 = app
        .get(&format!("{path}?limit=1&cursor={cursor}"), t)
        .await
        .expect(200);
    assert_eq!(p2.body["data"][0], items[1]);
    // Bad parameters: problems.
    app.get(&format!("{path}?limit=0"), t)
        .await
        .problem(422, "validation");
    app.get(&format!("{path}?limit=x"), t)
        .await
        .problem(400, "bad-request");
    app.get(&format!("{path}?bogus=1"), t)
        .await
        .problem(400, "bad-request");
    // Every entity but activities has one.
    for plural in ["contacts", "leads", "opportunities", "invoices"] {
        let body = match plural {
            "contacts" => json!({ "first_name": "Ada" }),
            "leads" => json!({ "last_name": "Ada" }),
            "opportunities" => json!({ "name": "Deal" }),
            _ => invoice_body(&account),
        };
        let id = app.create(t, plural, body).await;
        let r = app
            .get(&format!("/api/v1/{plural}/{id}/timeline"), t)
            .await
            .expect(200);
        assert_eq!(r.body["data"][0]["action"], "created", "{plural}");
    }
}

async fn verbs_and_timelines_of_another_organization_answer_404(crm: Crm) {
    let app = TestApp::new(crm);
    let victim = app.register("victim").await;
    let v = victim.access.as_str();
    let account = app.create(v, "accounts", json!({ "name": "Secret" })).await;
    let lead = app
        .create(v, "leads", json!({ "last_name": "Secret" }))
        .await;
    let opp = app
        .create(v, "opportunities", json!({ "name": "Secret" }))
        .await;
    let invoice = app.create(v, "invoices", invoice_body(&account)).await;
    let task = app.create(v,
        "activities",
        json!({ "kind": "task", "subject": "Secret", "related_entity": "account", "related_id": account }),
    )
    .await;
    let attacker = app.register("attacker").await;
    let a = attacker.access.as_str();
    for (path, body) in [
        (format!("/api/v1/leads/{lead}/convert"), json!({})),
        (
            format!("/api/v1/opportunities/{opp}/close"),
            json!({ "outcome": "won" }),
        ),
        (format!("/api/v1/invoices/{invoice}/send"), json!({})),
        (format!("/api/v1/invoices/{invoice}/pay"), json!({})),
        (format!("/api/v1/invoices/{invoice}/void"), json!({})),
        (format!("/api/v1/activities/{task}/complete"), json!({})),
        (format!("/api/v1/activities/{task}/reopen"), json!({})),
    ] {
        let r = app.post(&path, a, body).await.problem(404, "not-found");
        assert!(!r.body.to_string().contains("Secret"), "{path}");
    }
    for (plural, id) in [
        ("accounts", &account),
        ("leads", &lead),
        ("opportunities", &opp),
        ("invoices", &invoice),
    ] {
        app.get(&format!("/api/v1/{plural}/{id}/timeline"), a)
            .await
            .problem(404, "not-found");
    }
    // Converting their lead into an account of ours, or ours into their account: 404.
    let mine = app.create(a, "leads", json!({ "last_name": "Mine" })).await;
    app.post(
        &format!("/api/v1/leads/{mine}/convert"),
        a,
        json!({ "account": { "existing": account } }),
    )
    .await
    .problem(404, "not-found");
    // Nothing of theirs changed.
    let r = app
        .get(&format!("/api/v1/opportunities/{opp}"), v)
        .await
        .expect(200);
    assert_eq!(r.body["status"], "open");
    let r = app
        .get(&format!("/api/v1/invoices/{invoice}"), v)
        .await
        .expect(200);
    assert_eq!(r.body["status"], "draft");
}
