//! The access property test through crm-core: random organizations (users, teams, permission
//! sets, records, shares; see `access_world.rs`), and for every caller every exit — get, list,
//! filters across links, `exists`, full-text search, history, `as_of`, the change feed —
//! answers exactly what the model allows, records and fields. On PostgreSQL it runs again with
//! the library's own reach conditions left out: row-level security alone must still let
//! through nothing more.

use std::future::Future;
use std::pin::Pin;

use crm_core::{Crm, Entity, EntityKind, EntityVisitor, Error, Id, ListQuery, TenantContext};
use crm_core::{NewUser, Role, UserId};
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::access_world::{self, Answer, Built, Caller, Exits, Refusal, Spec, USERS};
use crate::harness::{self, Org};
use crate::tenancy::runtime;

/// The exits of crm-core, for the callers of one built organization.
struct Library<'a> {
    crm: &'a Crm,
    built: &'a Built,
}

fn refusal(e: Error) -> Refusal {
    match e {
        Error::NotFound { .. } => Refusal::NotFound,
        Error::Forbidden(r) => Refusal::Forbidden(r.code.to_owned()),
        Error::Validation(errors) => Refusal::Invalid(errors[0].code.to_owned()),
        other => panic!("an exit failed: {other}"),
    }
}

enum Op {
    Get,
    AsOfNow,
    History,
    List(Option<Value>),
}

/// Runs `op` on the records of the visited kind, answering JSON.
struct Run<'a> {
    crm: &'a Crm,
    ctx: TenantContext,
    id: Uuid,
    op: Op,
}

impl<'a> EntityVisitor for Run<'a> {
    type Output = Pin<Box<dyn Future<Output = Answer<Value>> + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move {
            let t = self.crm.tenant(&self.ctx);
            let records = t.records::<E>();
            let id = Id::<E>::from(self.id);
            match self.op {
                Op::Get => records.get(id).await.map(json),
                Op::AsOfNow => records.as_of(id, chrono::Utc::now()).await.map(json),
                Op::History => records
                    .history(id, None, 100, None)
                    .await
                    .map(|p| json(p.data)),
                Op::List(condition) => {
                    let query = ListQuery {
                        condition: condition.map(|c| serde_json::from_value(c).unwrap()),
                        limit: Some(100),
                        ..Default::default()
                    };
                    records.list(&query).await.map(|p| json(p.data))
                }
            }
            .map_err(refusal)
        })
    }
}

impl Library<'_> {
    async fn run(&self, caller: Caller, kind: EntityKind, id: Uuid, op: Op) -> Answer<Value> {
        kind.visit(Run {
            crm: self.crm,
            ctx: self.built.context(caller),
            id,
            op,
        })
        .await
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

impl Exits for Library<'_> {
    async fn get(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Value> {
        self.run(caller, kind, id, Op::Get).await
    }

    async fn list(
        &self,
        caller: Caller,
        kind: EntityKind,
        condition: Option<Value>,
    ) -> Answer<Vec<Value>> {
        let op = Op::List(condition);
        self.run(caller, kind, Uuid::nil(), op).await.map(array)
    }

    async fn search(&self, caller: Caller, q: &str) -> Answer<Vec<Value>> {
        let query = crm_core::SearchQuery {
            q: q.into(),
            limit: Some(100),
            ..Default::default()
        };
        let t = self.crm.tenant(&self.built.context(caller));
        let page = t.search(&query).await.map_err(refusal)?;
        Ok(array(serde_json::to_value(page.data).unwrap()))
    }

    async fn history(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Vec<Value>> {
        self.run(caller, kind, id, Op::History).await.map(array)
    }

    async fn as_of_now(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Value> {
        self.run(caller, kind, id, Op::AsOfNow).await
    }

    async fn changes(&self, caller: Caller) -> Answer<Vec<Value>> {
        let t = self.crm.tenant(&self.built.context(caller));
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = t
                .changes()
                .after(after.as_deref(), 500)
                .await
                .map_err(refusal)?;
            events.extend(page.data.iter().map(|c| serde_json::to_value(c).unwrap()));
            match page.next_cursor {
                Some(next) => after = Some(next),
                None => return Ok(events),
            }
        }
    }
}

/// Makes the users of a world in a new organization.
async fn users(crm: &Crm, org: &Org) -> Vec<UserId> {
    let system = crm.tenant(&TenantContext::system(org.id));
    let mut users = Vec::new();
    for i in 0..USERS {
        let u = system
            .users()
            .create(NewUser {
                email: format!("rep{i}@example.com"),
                name: format!("Rep {i}"),
                password: None,
                role: Role::User,
            })
            .await
            .unwrap();
        users.push(u.id);
    }
    users
}

/// Builds `spec` with `crm` and checks the exits of `reader` (the same library, or one
/// that leaves reads to row-level security alone) against the model.
async fn run_case(crm: &Crm, reader: &Crm, spec: Spec) {
    let org = Org::new(crm, "Access").await;
    let users = users(crm, &org).await;
    let built = access_world::build(&spec, crm, org.id, users).await;
    let exits = Library {
        crm: reader,
        built: &built,
    };
    access_world::check(&spec, &built, &exits).await;
}

#[test]
fn sqlite_every_exit_answers_what_the_access_model_allows() {
    let rt = runtime();
    let crm = rt.block_on(harness::sqlite());
    proptest!(ProptestConfig::with_cases(24), |(spec in access_world::spec())| {
        rt.block_on(run_case(&crm, &crm, spec));
    });
}

#[test]
fn postgres_every_exit_answers_what_the_access_model_allows() {
    let rt = runtime();
    let Some(crm) = rt.block_on(harness::postgres()) else {
        return;
    };
    proptest!(ProptestConfig::with_cases(12), |(spec in access_world::spec())| {
        rt.block_on(run_case(&crm, &crm, spec));
    });
}

/// The same property with the library's reach conditions left out of every read: what comes
/// back is screened by the policies of migration `0018_record_visibility` alone.
#[test]
fn postgres_row_level_security_alone_lets_through_only_what_the_model_allows() {
    let rt = runtime();
    let Some((crm, url)) = rt.block_on(harness::postgres_with_url()) else {
        return;
    };
    let rls_alone = rt
        .block_on(
            Crm::builder()
                .database_url(&url)
                .migrate(false)
                .row_level_security_alone()
                .build(),
        )
        .unwrap();
    proptest!(ProptestConfig::with_cases(12), |(spec in access_world::spec())| {
        rt.block_on(run_case(&crm, &rls_alone, spec));
    });
}

fn json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}
