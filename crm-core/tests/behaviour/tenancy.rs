//! A property test: several organizations do random operations on each other's records —
//! accounts, contacts, leads and invoices; reads, lists, updates, trash, purge, links, lead
//! conversion, activities, invoices and timelines. No operation may ever reach another
//! organization's data: every cross-organization attempt is "not found", and afterwards every
//! record is exactly as its own organization left it.

use crm_core::{
    AccountId, ActivityKind, ContactPatch, ConvertLead, Crm, Deleted, EntityKind, Error, Id,
    ListQuery, NewAccount, NewActivity, NewContact, NewInvoice, NewLead, Record, Tenant,
    TimelineItem,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{self, Org};

const ORGS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Account,
    Contact,
    Lead,
    Invoice,
}

impl Kind {
    fn related(self) -> EntityKind {
        match self {
            Kind::Account => EntityKind::Account,
            Kind::Contact => EntityKind::Contact,
            Kind::Lead => EntityKind::Lead,
            Kind::Invoice => EntityKind::Invoice,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        org: usize,
        kind: Kind,
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
    Convert {
        actor: usize,
        target: usize,
    },
    Attach {
        actor: usize,
        target: usize,
    },
    Bill {
        actor: usize,
        target: usize,
    },
    Timeline {
        actor: usize,
        target: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let actor = 0..ORGS;
    let target = any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    let kind = prop_oneof![Just(Kind::Account), Just(Kind::Contact), Just(Kind::Lead)];
    let pair = (actor.clone(), target.clone());
    prop_oneof![
        4 => (actor.clone(), kind).prop_map(|(org, kind)| Step::Create { org, kind }),
        2 => pair.clone().prop_map(|(actor, target)| Step::Get { actor, target }),
        2 => pair.clone().prop_map(|(actor, target)| Step::Update { actor, target }),
        2 => pair.clone().prop_map(|(actor, target)| Step::Delete { actor, target }),
        1 => pair.clone().prop_map(|(actor, target)| Step::Restore { actor, target }),
        1 => pair.clone().prop_map(|(actor, target)| Step::Purge { actor, target }),
        2 => (actor.clone(), target.clone(), target).prop_map(|(actor, contact, account)| Step::Link { actor, contact, account }),
        1 => (actor, prop_oneof![Just(Deleted::Exclude), Just(Deleted::Include), Just(Deleted::Only)])
            .prop_map(|(actor, deleted)| Step::List { actor, deleted }),
        2 => pair.clone().prop_map(|(actor, target)| Step::Convert { actor, target }),
        2 => pair.clone().prop_map(|(actor, target)| Step::Attach { actor, target }),
        1 => pair.clone().prop_map(|(actor, target)| Step::Bill { actor, target }),
        1 => pair.prop_map(|(actor, target)| Step::Timeline { actor, target }),
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
    kind: Kind,
    id: Uuid,
    org: usize,
    state: State,
    version: i64,
    /// Records this one links to (a contact's account, a converted lead's account and contact,
    /// an invoice's account): they cannot be purged while this one exists.
    links: Vec<Uuid>,
    converted: bool,
}

/// Runs `$body` with `$records` bound to the tenant's service for `$kind`'s entity and `$id` to
/// the typed id.
macro_rules! on_kind {
    ($kind:expr, $t:expr, $uuid:expr, |$records:ident, $id:ident| $body:expr) => {
        match $kind {
            Kind::Account => {
                let $records = $t.accounts();
                let $id: Id<crm_core::Account> = Id::from($uuid);
                $body
            }
            Kind::Contact => {
                let $records = $t.contacts();
                let $id: Id<crm_core::Contact> = Id::from($uuid);
                $body
            }
            Kind::Lead => {
                let $records = $t.leads();
                let $id: Id<crm_core::Lead> = Id::from($uuid);
                $body
            }
            Kind::Invoice => {
                let $records = $t.invoices();
                let $id: Id<crm_core::Invoice> = Id::from($uuid);
                $body
            }
        }
    };
}

fn summary<E>(
    r: Result<Record<E>, Error>,
    org: crm_core::OrganizationId,
) -> Result<(i64, bool), Error> {
    r.map(|r| {
        assert_eq!(
            r.organization_id, org,
            "a record of another organization came back"
        );
        (r.version, r.is_deleted)
    })
}

struct World {
    orgs: Vec<Org>,
    tenants: Vec<Tenant>,
    records: Vec<Tracked>,
    counter: u64,
}

#[track_caller]
fn not_found<T: std::fmt::Debug>(out: &Result<T, Error>, what: &dyn std::fmt::Debug) {
    assert!(
        matches!(out, Err(Error::NotFound { .. })),
        "{what:?}: {out:?}"
    );
}

impl World {
    fn pick(&self, i: usize, kind: Option<Kind>) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.records.len())
            .filter(|&k| kind.is_none_or(|c| self.records[k].kind == c))
            .collect();
        (!candidates.is_empty()).then(|| candidates[i % candidates.len()])
    }

    fn track(&mut self, kind: Kind, id: Uuid, org: usize, links: Vec<Uuid>) {
        self.records.push(Tracked {
            kind,
            id,
            org,
            state: State::Live,
            version: 1,
            links,
            converted: false,
        });
    }

    fn linked(&self, id: Uuid) -> bool {
        self.records
            .iter()
            .any(|r| r.state != State::Purged && r.links.contains(&id))
    }

    async fn run(&mut self, step: Step) {
        self.counter += 1;
        let n = self.counter;
        match step {
            Step::Create { org, kind } => {
                let t = &self.tenants[org];
                let id = match kind {
                    Kind::Account => t
                        .accounts()
                        .create(NewAccount {
                            name: format!("a{n}"),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .id
                        .uuid(),
                    Kind::Contact => t
                        .contacts()
                        .create(NewContact {
                            last_name: Some(format!("c{n}")),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .id
                        .uuid(),
                    Kind::Lead | Kind::Invoice => t
                        .leads()
                        .create(NewLead {
                            last_name: Some(format!("l{n}")),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .id
                        .uuid(),
                };
                let kind = if kind == Kind::Invoice {
                    Kind::Lead
                } else {
                    kind
                };
                self.track(kind, id, org, Vec::new());
            }
            Step::Get { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let org = self.orgs[actor].id;
                let out = on_kind!(r.kind, t, r.id, |records, id| summary(
                    records.get(id).await,
                    org
                ));
                if r.org == actor && r.state == State::Live {
                    assert_eq!(out.unwrap().0, r.version, "{r:?}");
                } else {
                    not_found(&out, &r);
                }
            }
            Step::Update { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let org = self.orgs[actor].id;
                let field = match r.kind {
                    Kind::Account => "city",
                    Kind::Contact | Kind::Lead => "title",
                    Kind::Invoice => "notes",
                };
                let patch = json!({ field: format!("v{n}") });
                let out = on_kind!(r.kind, t, r.id, |records, id| {
                    summary(
                        records
                            .update(id, serde_json::from_value(patch).unwrap())
                            .await,
                        org,
                    )
                });
                if r.org != actor || r.state != State::Live {
                    not_found(&out, &r);
                } else if r.converted {
                    assert!(
                        matches!(out, Err(Error::Conflict(_))),
                        "converted leads are read-only: {out:?}"
                    );
                } else {
                    out.unwrap();
                    self.records[k].version += 1;
                }
            }
            Step::Delete { actor, target } | Step::Restore { actor, target } => {
                let delete = matches!(step, Step::Delete { .. });
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let org = self.orgs[actor].id;
                let out = on_kind!(r.kind, t, r.id, |records, id| {
                    summary(
                        if delete {
                            records.delete(id).await
                        } else {
                            records.restore(id).await
                        },
                        org,
                    )
                });
                let (from, to) = if delete {
                    (State::Live, State::Deleted)
                } else {
                    (State::Deleted, State::Live)
                };
                if r.org != actor || r.state == State::Purged || (delete && r.state != State::Live)
                {
                    not_found(&out, &r);
                } else if r.state != from {
                    assert!(matches!(out, Err(Error::Conflict(_))), "{r:?}: {out:?}");
                } else {
                    out.unwrap();
                    self.records[k].version += 1;
                    self.records[k].state = to;
                }
            }
            Step::Purge { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let t = &self.tenants[actor];
                let out = on_kind!(r.kind, t, r.id, |records, id| records.purge(id).await);
                if r.org != actor || r.state == State::Purged {
                    not_found(&out, &r);
                } else if self.linked(r.id) {
                    assert!(matches!(out, Err(Error::Conflict(_))), "{r:?}: {out:?}");
                } else {
                    out.unwrap();
                    self.records[k].state = State::Purged;
                }
            }
            Step::Link {
                actor,
                contact,
                account,
            } => {
                let (Some(ck), Some(ak)) = (
                    self.pick(contact, Some(Kind::Contact)),
                    self.pick(account, Some(Kind::Account)),
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
                    .update(Id::from(c.id), patch)
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
                } else if c.links == [a.id] {
                    // Already linked: the patch changes nothing, so nothing is written or
                    // checked, whatever has become of the account since.
                    assert_eq!(
                        out.unwrap().version,
                        c.version,
                        "a no-op patch writes nothing"
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
                    assert_eq!(out.unwrap().account_id.map(AccountId::uuid), Some(a.id));
                    if c.links != [a.id] {
                        self.records[ck].version += 1;
                        self.records[ck].links = vec![a.id];
                    }
                }
            }
            Step::List { actor, deleted } => {
                let q = ListQuery::default().deleted(deleted).limit(100);
                let t = &self.tenants[actor];
                for kind in [Kind::Account, Kind::Contact, Kind::Lead, Kind::Invoice] {
                    let mut got: Vec<Uuid> = on_kind!(kind, t, Uuid::nil(), |records, _id| {
                        records
                            .list(&q)
                            .await
                            .unwrap()
                            .data
                            .iter()
                            .map(|r| r.id.uuid())
                            .collect()
                    });
                    let mut want: Vec<Uuid> = self
                        .records
                        .iter()
                        .filter(|r| r.kind == kind && r.org == actor)
                        .filter(|r| match deleted {
                            Deleted::Exclude => r.state == State::Live,
                            Deleted::Include => r.state != State::Purged,
                            Deleted::Only => r.state == State::Deleted,
                        })
                        .map(|r| r.id)
                        .collect();
                    got.sort();
                    want.sort();
                    assert_eq!(
                        got, want,
                        "org {actor} lists exactly its own {kind:?} records ({deleted:?})"
                    );
                }
            }
            Step::Convert { actor, target } => {
                let Some(k) = self.pick(target, Some(Kind::Lead)) else {
                    return;
                };
                let r = self.records[k].clone();
                let out = self.tenants[actor]
                    .leads()
                    .convert(Id::from(r.id), ConvertLead::default())
                    .await;
                if r.org != actor || r.state != State::Live {
                    not_found(&out, &r);
                } else if r.converted {
                    assert!(matches!(out, Err(Error::Conflict(_))), "{r:?}: {out:?}");
                } else {
                    let c = out.unwrap();
                    assert_eq!(
                        (c.account.organization_id, c.contact.organization_id),
                        (self.orgs[actor].id, self.orgs[actor].id)
                    );
                    let (account, contact) = (c.account.id.uuid(), c.contact.id.uuid());
                    self.track(Kind::Account, account, actor, Vec::new());
                    self.track(Kind::Contact, contact, actor, vec![account]);
                    let lead = &mut self.records[k];
                    lead.version += 1;
                    lead.converted = true;
                    lead.links = vec![account, contact];
                }
            }
            Step::Attach { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let new = NewActivity {
                    kind: ActivityKind::Note,
                    subject: format!("n{n}"),
                    related_entity: r.kind.related(),
                    related_id: r.id,
                    ..Default::default()
                };
                let out = self.tenants[actor].activities().create(new).await;
                if r.org == actor && r.state == State::Live {
                    assert_eq!(out.unwrap().organization_id, self.orgs[actor].id);
                } else {
                    not_found(&out, &r);
                }
            }
            Step::Bill { actor, target } => {
                let Some(k) = self.pick(target, Some(Kind::Account)) else {
                    return;
                };
                let a = self.records[k].clone();
                let new = NewInvoice {
                    account_id: Some(AccountId::from(a.id)),
                    currency: "EUR".into(),
                    ..Default::default()
                };
                let out = self.tenants[actor].invoices().create(new).await;
                if a.org == actor && a.state == State::Live {
                    let id = out.unwrap().id.uuid();
                    self.track(Kind::Invoice, id, actor, vec![a.id]);
                } else {
                    not_found(&out, &a);
                }
            }
            Step::Timeline { actor, target } => {
                let Some(k) = self.pick(target, None) else {
                    return;
                };
                let r = self.records[k].clone();
                let out = self.tenants[actor]
                    .timeline(r.kind.related(), r.id, 100, None)
                    .await;
                if r.org == actor && r.state != State::Purged {
                    for item in out.unwrap().data {
                        let org = match &item {
                            TimelineItem::Activity(a) => a.organization_id,
                            TimelineItem::Event(e) => e.organization_id,
                        };
                        assert_eq!(
                            org, self.orgs[actor].id,
                            "a timeline shows only its organization"
                        );
                    }
                } else {
                    not_found(&out, &r);
                }
            }
        }
    }

    /// Every record is exactly as its own organization left it.
    async fn verify(&self) {
        for r in &self.records {
            let t = &self.tenants[r.org];
            let org = self.orgs[r.org].id;
            let got = on_kind!(r.kind, t, r.id, |records, id| summary(
                records.get_including_deleted(id).await,
                org
            ));
            match r.state {
                State::Purged => not_found(&got, r),
                state => assert_eq!(got.unwrap(), (r.version, state == State::Deleted), "{r:?}"),
            }
        }
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
    proptest!(ProptestConfig::with_cases(24), |(steps in vec(step(), 1..80))| {
        rt.block_on(async { run_case(harness::sqlite().await, steps).await });
    });
}

#[test]
fn postgres_no_operation_crosses_organizations() {
    if harness::postgres_url().is_none() {
        return;
    }
    let rt = runtime();
    proptest!(ProptestConfig::with_cases(12), |(steps in vec(step(), 1..80))| {
        rt.block_on(async {
            let crm = harness::postgres().await.expect("PostgreSQL configured");
            run_case(crm, steps).await;
        });
    });
}
