//! `GET /jobs`, `POST /jobs/{id}/retry|cancel`: an organization's background jobs for its
//! company admins, and nobody else's.

use crm_core::{Crm, Job, OrganizationId, Role};
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(admins_see_and_steer_their_organizations_jobs);

async fn admins_see_and_steer_their_organizations_jobs(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let org = OrganizationId::from_uuid(admin.org);
    let id = app
        .crm
        .jobs()
        .enqueue(Job::SweepExpired {
            organization_id: org,
        })
        .await
        .unwrap();
    let globex = app.register("globex").await;
    let theirs = app
        .crm
        .jobs()
        .enqueue(Job::PurgeTrash {
            organization_id: OrganizationId::from_uuid(globex.org),
        })
        .await
        .unwrap();

    let list = app.get("/api/v1/jobs", t).await.expect(200);
    let jobs = list.body["data"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "only this organization's: {}", list.body);
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["status"], "pending");
    assert_eq!(jobs[0]["job"]["kind"], "sweep_expired");
    assert_eq!(jobs[0]["job"]["organization_id"], json!(admin.org));
    assert_eq!(
        (
            jobs[0]["attempts"].as_u64(),
            jobs[0]["max_attempts"].as_u64()
        ),
        (Some(0), Some(10))
    );
    let dead = app.get("/api/v1/jobs?status=dead", t).await.expect(200);
    assert_eq!(dead.body["data"], json!([]));
    for (query, status, kind) in [
        ("status=asleep", 400, "bad-request"),
        ("limit=0", 422, "validation"),
    ] {
        let answer = app.get(&format!("/api/v1/jobs?{query}"), t).await;
        answer.problem(status, kind);
    }

    // Cancel, then retry; each answers 404 when the job is not in a state for it.
    let job = format!("/api/v1/jobs/{id}");
    app.post(&format!("{job}/cancel"), t, json!({}))
        .await
        .expect(204);
    let list = app
        .get("/api/v1/jobs?status=cancelled", t)
        .await
        .expect(200);
    assert_eq!(list.body["data"][0]["id"], id.as_str());
    app.post(&format!("{job}/cancel"), t, json!({}))
        .await
        .problem(404, "not-found");
    app.post(&format!("{job}/retry"), t, json!({}))
        .await
        .expect(204);
    let list = app.get("/api/v1/jobs?status=pending", t).await.expect(200);
    assert_eq!(list.body["data"][0]["id"], id.as_str());

    app.post(&format!("{job}/wake"), t, json!({}))
        .await
        .problem(400, "bad-request");

    // Another organization's job is not there for this admin, whatever the verb.
    for verb in ["cancel", "retry"] {
        app.post(&format!("/api/v1/jobs/{theirs}/{verb}"), t, json!({}))
            .await
            .problem(404, "not-found");
    }
    let mine = app.get("/api/v1/jobs", &globex.access).await.expect(200);
    assert_eq!(mine.body["data"][0]["id"], theirs.as_str());
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);

    // Users are refused; API keys need the `all` scope.
    let user = app.user(&admin, "u@example.com", Role::User).await;
    app.get("/api/v1/jobs", &user.access)
        .await
        .problem(403, "forbidden")
        .code("admin_only");
    let key = app.api_key(t, &["all"]).await;
    app.get("/api/v1/jobs", &key).await.expect(200);
    let narrow = app.api_key(t, &["accounts:read"]).await;
    app.get("/api/v1/jobs", &narrow)
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
}
