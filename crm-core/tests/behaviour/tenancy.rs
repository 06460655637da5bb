//! A property test: several organizations do random operations on each other's records. No
//! read, list, update, delete, restore, purge or link may ever reach another organization's
//! data; every cross-organization attempt is "not found", and afterwards every record is exactly
//! as its own organization left it.

use crm_core::{
    AccountId, AccountPatch, ContactId, ContactPatch, Crm, Deleted, Error, ListQuery, NewAccount,
    NewContact, Tenant,
};
use proptest::collection::vec;
use proptest::prelude::*;
use uuid::Uuid;

use crate::harness::{self, Org};

const ORGS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    Create {
        org: usize,
        contact: bool,
    },
    Get {
        actor: usize,
        target: usize,
    },
    Update {
        actor: usize,
        target: usize,
    },
    Delete {
        actor: usize,
        target: usize,
    },
    Restore {
        actor: usize,
        target: usize,
    },
    Purge {
        actor: usize,
        target: usize,
    },
    Link {
        actor: usize,
        contact: usize,
        account: usize,
    },
    List {
        actor: usize,
        deleted: Deleted,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let actor = 0..ORGS;
    let target = any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    prop_oneof![
        4 => (actor.clone(), any::<bool>()).prop_map(|(org, contact)| Step::Create { org, contact }),
        2 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::Get { actor, target }),
        2 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::Update { actor, target }),
        2 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::Delete { actor, target }),
        1 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::Restore { actor, target }),
        1 => (actor.clone(), target.clone()).prop_map(|(actor, target)| Step::Purge { actor, target }),
        2 => (actor.clone(), target.clone(), target).prop_map(|(actor, contact, account)| Step::Link { actor, contact, account }),
        1 => (actor, prop_oneof![Just(Deleted::Exclude), Just(Deleted::Include), Just(Deleted::Only)])
            .prop_map(|(actor, deleted)| Step::List { actor, deleted }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    Deleted,
    Purged,
}

#[derive(Debug, Clone)]
struct Tracked {
    contact: bool,
    id: Uuid,
    org: usize,
    state: State,
    version: i64,
    /// For contacts: the linked account's id.
    account: Option<Uuid>,
}

struct World {
    orgs: Vec<Org>,
    tenants: Vec<Tenant>,
    records: Vec<Tracked>,
    counter: u64,
}

/// Asserts the outcome of a call on record `r` by organization `actor`, given the model.
#[track_caller]
fn expect<T: std::fmt::Debug>(
    out: &Result<T, Error>,
    r: &Tracked,
    actor: usize,
    ok_states: &[State],
) {
    if r.org != actor || r.state == State::Purged || !ok_states.contains(&r.state) {
        if r.org == actor && r.state == State::Live && !ok_states.contains(&State::Live) {
            assert!(
                matches!(out, Err(Error::Conflict(_))),
                "{r:?} by org {actor}: {out:?}"
            );
        } else {
            assert!(
                matches!(out, Err(Error::NotFound { .. })),
                "{r:?} by org {actor}: {out:?}"
            );
        }
    } else {
        assert!(out.is_ok(), "{r:?} by org {actor}: {out:?}");
    }
}

impl World {
    fn pick(&self, i: usize, contact: Option<bool>) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.records.len())
            .filter(|&k| contact.is_none_or(|c| self.records[k].contact == c))
            .collect();
        (!candidates.is_empty()).then(|| candidates[i % candidates.len()])
    }

    async fn run(&mut self, step: Step) {
        self.counter += 1;
        let n = self.counter;
        match step {
            Step::Create { org, contact } => {
                let t = &self.tenants[org];
                let (id, version) = if contact {
                    let c = t
                        .contacts()
                        .create(NewContact {
                            last_name: Some(format!("c{n}")),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    (c.id.uuid(), c.version)
                } else {
                    let a = t
                        .accounts()
                        .create(NewAccount {
                            name: format!("a{n}"),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    (a.id.uuid(), a.version)
                };
                self.records.push(Tracked {
                    contact,
                    id,
                    org,
                    state: State::Live,
                    version,
                    account: None,
                });
            }
            Step::Get { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                if r.contact {
                    let out = t.contacts().get(ContactId::from(r.id)).await;
                    expect(&out, &r, actor, &[State::Live]);
                    if let Ok(c) = out {
                        assert_eq!(c.organization_id, self.orgs[actor].id);
                    }
                } else {
                    let out = t.accounts().get(AccountId::from(r.id)).await;
                    expect(&out, &r, actor, &[State::Live]);
                    if let Ok(a) = out {
                        assert_eq!(a.organization_id, self.orgs[actor].id);
                    }
                }
            }
            Step::Update { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let ok = if r.contact {
                    let patch = ContactPatch {
                        title: Some(Some(format!("t{n}"))),
                        ..Default::default()
                    };
                    let out = t.contacts().update(ContactId::from(r.id), patch).await;
                    expect(&out, &r, actor, &[State::Live]);
                    out.is_ok()
                } else {
                    let patch = AccountPatch {
                        city: Some(Some(format!("c{n}"))),
                        ..Default::default()
                    };
                    let out = t.accounts().update(AccountId::from(r.id), patch).await;
                    expect(&out, &r, actor, &[State::Live]);
                    out.is_ok()
                };
                if ok {
                    self.records[k].version += 1;
                }
            }
            Step::Delete { actor, target } | Step::Restore { actor, target } => {
                let restore = matches!(step, Step::Restore { .. });
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let want = if restore { State::Deleted } else { State::Live };
                let ok = match (r.contact, restore) {
                    (true, false) => {
                        let out = t.contacts().delete(ContactId::from(r.id)).await;
                        expect_delete(&out, &r, actor);
                        out.is_ok()
                    }
                    (true, true) => {
                        let out = t.contacts().restore(ContactId::from(r.id)).await;
                        expect(&out, &r, actor, &[want]);
                        out.is_ok()
                    }
                    (false, false) => {
                        let out = t.accounts().delete(AccountId::from(r.id)).await;
                        expect_delete(&out, &r, actor);
                        out.is_ok()
                    }
                    (false, true) => {
                        let out = t.accounts().restore(AccountId::from(r.id)).await;
                        expect(&out, &r, actor, &[want]);
                        out.is_ok()
                    }
                };
                if ok {
                    self.records[k].version += 1;
                    self.records[k].state = if restore { State::Live } else { State::Deleted };
                }
            }
            Step::Purge { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let linked = !r.contact
                    && self
                        .records
                        .iter()
                        .any(|c| c.contact && c.state != State::Purged && c.account == Some(r.id));
                let out = if r.contact {
                    t.contacts().purge(ContactId::from(r.id)).await
                } else {
                    t.accounts().purge(AccountId::from(r.id)).await
                };
                if r.org == actor && r.state != State::Purged && linked {
                    assert!(matches!(out, Err(Error::Conflict(_))), "{r:?}: {out:?}");
                } else {
                    expect(&out, &r, actor, &[State::Live, State::Deleted]);
                }
                if out.is_ok() {
                    self.records[k].state = State::Purged;
                }
            }
            Step::Link {
                actor,
                contact,
                account,
            } => {
                let (Some(ck), Some(ak)) = (
                    self.pick(contact, Some(true)),
                    self.pick(account, Some(false)),
                ) else {
                    return;
                };
                let (c, a) = (self.records[ck].clone(), self.records[ak].clone());
                let patch = ContactPatch {
                    account_id: Some(Some(AccountId::from(a.id))),
                    ..Default::default()
                };
                let out = self.tenants[actor]
                    .contacts()
                    .update(ContactId::from(c.id), patch)
                    .await;
                if c.org != actor || c.state != State::Live {
                    assert!(
                        matches!(
                            out,
                            Err(Error::NotFound {
                                entity: "contact",
                                ..
                            })
                        ),
                        "{c:?}: {out:?}"
                    );
                } else if a.org != actor || a.state != State::Live {
                    assert!(
                        matches!(
                            out,
                            Err(Error::NotFound {
                                entity: "account",
                                ..
                            })
                        ),
                        "{a:?}: {out:?}"
                    );
                } else {
                    let linked = out.unwrap();
                    assert_eq!(linked.account_id.map(AccountId::uuid), Some(a.id));
                    if c.account != Some(a.id) {
                        self.records[ck].version += 1;
                        self.records[ck].account = Some(a.id);
                    }
                }
            }
            Step::List { actor, deleted } => {
                let q = ListQuery::default().deleted(deleted).limit(100);
                let t = &self.tenants[actor];
                let mut accounts: Vec<Uuid> = t
                    .accounts()
                    .list(&q)
                    .await
                    .unwrap()
                    .data
                    .iter()
                    .map(|a| a.id.uuid())
                    .collect();
                let mut contacts: Vec<Uuid> = t
                    .contacts()
                    .list(&q)
                    .await
                    .unwrap()
                    .data
                    .iter()
                    .map(|c| c.id.uuid())
                    .collect();
                for contact in [false, true] {
                    let mut want: Vec<Uuid> = self
                        .records
                        .iter()
                        .filter(|r| r.contact == contact && r.org == actor)
                        .filter(|r| match deleted {
                            Deleted::Exclude => r.state == State::Live,
                            Deleted::Include => r.state != State::Purged,
                            Deleted::Only => r.state == State::Deleted,
                        })
                        .map(|r| r.id)
                        .collect();
                    want.sort();
                    let got = if contact {
                        &mut contacts
                    } else {
                        &mut accounts
                    };
                    got.sort();
                    assert_eq!(
                        *got, want,
                        "org {actor} lists exactly its own records ({deleted:?})"
                    );
                }
            }
        }
    }

    /// Every record is exactly as its own organization left it.
    async fn verify(&self) {
        for r in &self.records {
            let t = &self.tenants[r.org];
            let got = if r.contact {
                t.contacts()
                    .get_including_deleted(ContactId::from(r.id))
                    .await
                    .map(|c| (c.version, c.is_deleted))
            } else {
                t.accounts()
                    .get_including_deleted(AccountId::from(r.id))
                    .await
                    .map(|a| (a.version, a.is_deleted))
            };
            match r.state {
                State::Purged => {
                    assert!(matches!(got, Err(Error::NotFound { .. })), "{r:?}: {got:?}")
                }
                state => assert_eq!(got.unwrap(), (r.version, state == State::Deleted), "{r:?}"),
            }
        }
    }
}

#[track_caller]
fn expect_delete<T: std::fmt::Debug>(out: &Result<T, Error>, r: &Tracked, actor: usize) {
    if r.org == actor && r.state == State::Live {
        assert!(out.is_ok(), "{r:?}: {out:?}");
    } else {
        assert!(
            matches!(out, Err(Error::NotFound { .. })),
            "{r:?} by org {actor}: {out:?}"
        );
    }
}

async fn run_case(crm: Crm, steps: Vec<Step>) {
    let mut orgs = Vec::new();
    for i in 0..ORGS {
        orgs.push(Org::new(&crm, &format!("Org{i}")).await);
    }
    let tenants = orgs.iter().map(|o| o.admin(&crm)).collect();
    let mut world = World {
        orgs,
        tenants,
        records: Vec::new(),
        counter: 0,
    };
    for step in steps {
        world.run(step).await;
    }
    world.verify().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sqlite_no_operation_crosses_organizations() {
    let rt = runtime();
    proptest!(ProptestConfig::with_cases(24), |(steps in vec(step(), 1..60))| {
        rt.block_on(async { run_case(harness::sqlite().await, steps).await });
    });
}

#[test]
fn postgres_no_operation_crosses_organizations() {
    if harness::postgres_url().is_none() {
        return;
    }
    let rt = runtime();
    proptest!(ProptestConfig::with_cases(12), |(steps in vec(step(), 1..60))| {
        rt.block_on(async {
            let crm = harness::postgres().await.expect("PostgreSQL configured");
            run_case(crm, steps).await;
        });
    });
}
