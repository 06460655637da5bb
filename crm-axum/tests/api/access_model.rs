//! The access property test over HTTP: the random organizations of crm-core's
//! `access_world.rs`, and for every caller (users signed in, API keys carrying a permission
//! set) every exit of the API — `GET /{entity}/{id}`, lists, `POST /{entity}/search` across
//! links and with `exists`, `GET /search`, history, `as_of`, `GET /changes` — answers exactly
//! what the model allows, records and fields.

use crm_core::{EntityKind, OrganizationId, Role, UserId};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::access_world::{self, Answer, Built, Caller, Exits, Refusal, Spec, USERS};
use crate::helpers::{Res, Session, TestApp, config};

/// The exits of the API, for the callers of one built organization.
struct Api<'a> {
    app: &'a TestApp,
    users: &'a [Session],
    built: &'a Built,
}

impl Api<'_> {
    fn token(&self, caller: Caller) -> &str {
        match caller {
            Caller::User(u) => &self.users[u].access,
            Caller::Key(k) => &self.built.keys[k].1,
        }
    }
}

/// The body of a 200, or the refusal of a 403, 404 or 422.
fn answer(res: Res) -> Answer<Value> {
    let code = || res.body["code"].as_str().unwrap_or_default().to_owned();
    match res.status.as_u16() {
        200 => Ok(res.body),
        404 => Err(Refusal::NotFound),
        403 => Err(Refusal::Forbidden(code())),
        422 => {
            let first = res.body["errors"][0]["code"].as_str().unwrap_or_default();
            Err(Refusal::Invalid(first.to_owned()))
        }
        other => panic!("an exit answered {other}: {}", res.body),
    }
}

fn data(page: Value) -> Vec<Value> {
    match page["data"].clone() {
        Value::Array(items) => items,
        other => panic!("not a page: {other}"),
    }
}

impl Exits for Api<'_> {
    async fn get(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Value> {
        let path = format!("/api/v1/{}/{id}", kind.table());
        answer(self.app.get(&path, self.token(caller)).await)
    }

    async fn list(
        &self,
        caller: Caller,
        kind: EntityKind,
        condition: Option<Value>,
    ) -> Answer<Vec<Value>> {
        let token = self.token(caller);
        let res = match condition {
            None => {
                let path = format!("/api/v1/{}?limit=100", kind.table());
                self.app.get(&path, token).await
            }
            Some(condition) => {
                let path = format!("/api/v1/{}/search", kind.table());
                let body = json!({ "condition": condition, "limit": 100 });
                self.app.post(&path, token, body).await
            }
        };
        answer(res).map(data)
    }

    async fn search(&self, caller: Caller, q: &str) -> Answer<Vec<Value>> {
        let path = format!("/api/v1/search?q={q}&limit=100");
        answer(self.app.get(&path, self.token(caller)).await).map(data)
    }

    async fn history(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Vec<Value>> {
        let path = format!("/api/v1/{}/{id}/history?limit=100", kind.table());
        answer(self.app.get(&path, self.token(caller)).await).map(data)
    }

    async fn as_of_now(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Value> {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let path = format!("/api/v1/{}/{id}?as_of={now}", kind.table());
        answer(self.app.get(&path, self.token(caller)).await)
    }

    async fn changes(&self, caller: Caller) -> Answer<Vec<Value>> {
        let mut events = Vec::new();
        let mut path = "/api/v1/changes?limit=500".to_owned();
        loop {
            let page = answer(self.app.get(&path, self.token(caller)).await)?;
            let next = page["next_cursor"].as_str().map(str::to_owned);
            events.extend(data(page));
            match next {
                Some(cursor) => path = format!("/api/v1/changes?limit=500&after={cursor}"),
                None => return Ok(events),
            }
        }
    }
}

/// Builds `spec` in a newly registered organization and checks its exits over HTTP.
async fn run_case(app: &TestApp, spec: Spec) {
    let admin = app.register("access").await;
    let mut users = Vec::new();
    for i in 0..USERS {
        let email = format!("rep{i}@example.com");
        users.push(app.user(&admin, &email, Role::User).await);
    }
    let ids: Vec<UserId> = users.iter().map(|u| UserId::from_uuid(u.user)).collect();
    let org = OrganizationId::from_uuid(admin.org);
    let built = access_world::build(&spec, &app.crm, org, ids).await;
    let api = Api {
        app,
        users: &users,
        built: &built,
    };
    access_world::check(&spec, &built, &api).await;
}

/// A test app whose sign-in limits let a property test sign in its callers, case after case,
/// from one address.
fn app(crm: crm_core::Crm) -> TestApp {
    let auth = config()
        .login_limits(10_000, 10_000, std::time::Duration::from_secs(60))
        .signup_limit(10_000);
    TestApp::with_config(crm, auth)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sqlite_every_exit_of_the_api_answers_what_the_access_model_allows() {
    let rt = runtime();
    let app = app(rt.block_on(crate::harness::sqlite()));
    proptest!(ProptestConfig::with_cases(12), |(spec in access_world::spec())| {
        rt.block_on(run_case(&app, spec));
    });
}

#[test]
fn postgres_every_exit_of_the_api_answers_what_the_access_model_allows() {
    let rt = runtime();
    let Some(crm) = rt.block_on(crate::harness::postgres()) else {
        return;
    };
    let app = app(crm);
    proptest!(ProptestConfig::with_cases(8), |(spec in access_world::spec())| {
        rt.block_on(run_case(&app, spec));
    });
}
