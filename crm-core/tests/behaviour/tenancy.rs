//! A property test: several organizations do random operations on each other's records — of
//! every entity of the registry; reads, lists, updates, trash, purge, links, lead conversion,
//! activities, invoices and timelines. No operation may ever reach another
//! organization's data: every cross-organization attempt is "not found", and afterwards every
//! record is exactly as its own organization left it.

use std::future::Future;
use std::pin::Pin;

use crm_core::record::Kind;
use crm_core::{
    AccountId, ActivityKind, ContactPatch, ConvertLead, Crm, Deleted, Entity, EntityKind,
    EntityVisitor, Error, Id, ListQuery, NewAccount, NewActivity, NewContact, NewInvoice, NewLead,
    NewOpportunity, OrganizationId, Tenant, TimelineItem,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{self, Org};

const ORGS: usize = 3;

#[derive(Debug, Clone)]
pub(crate) enum Step {
    Create {
        org: usize,
        kind: EntityKind,
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

pub(crate) fn step() -> impl Strategy<Value = Step> {
    let actor = 0..ORGS;
    let target = any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    let kind = prop::sample::select(EntityKind::ALL);
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
    kind: EntityKind,
    id: Uuid,
    org: usize,
    state: State,
    version: i64,
    /// Records this one links to (a contact's account, a converted lead's account and contact,
    /// an invoice's account): they cannot be purged while this one exists.
    links: Vec<Uuid>,
    converted: bool,
}

/// What a step does to one record, through the generic [`crm_core::Records`] of its kind.
enum Verb {
    Get,
    GetIncludingDeleted,
    Update(serde_json::Value),
    Delete,
    Restore,
    Purge,
}

/// The organization, version and trash flag of the record a verb returned (`None` for purge).
type Outcome = Result<Option<(OrganizationId, i64, bool)>, Error>;

/// Applies a [`Verb`] to record `id` of whatever kind is visited.
struct Apply<'a> {
    tenant: &'a Tenant,
    id: Uuid,
    verb: Verb,
}

impl<'a> EntityVisitor for Apply<'a> {
    type Output = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move {
            let records = self.tenant.records::<E>();
            let id = Id::<E>::from(self.id);
            let r = match self.verb {
                Verb::Get => records.get(id).await?,
                Verb::GetIncludingDeleted => records.get_including_deleted(id).await?,
                Verb::Update(patch) => {
                    let patch = serde_json::from_value(patch).expect("a patch of the kind");
                    records.update(id, patch).await?
                }
                Verb::Delete => records.delete(id).await?,
                Verb::Restore => records.restore(id).await?,
                Verb::Purge => {
                    records.purge(id).await?;
                    return Ok(None);
                }
            };
            Ok(Some((r.organization_id, r.version, r.is_deleted)))
        })
    }
}

/// The ids on one page (of at most 100) of the visited kind.
struct ListIds<'a> {
    tenant: &'a Tenant,
    query: &'a ListQuery,
}

impl<'a> EntityVisitor for ListIds<'a> {
    type Output = Pin<Box<dyn Future<Output = Vec<Uuid>> + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move {
            let page = self.tenant.records::<E>().list(self.query).await.unwrap();
            page.data.iter().map(|r| r.id.uuid()).collect()
        })
    }
}

/// Applies `verb` and checks that what came back belongs to `org`.
async fn apply(t: &Tenant, kind: EntityKind, id: Uuid, verb: Verb, org: OrganizationId) -> Outcome {
    let out = kind
        .visit(Apply {
            tenant: t,
            id,
            verb,
        })
        .await;
    if let Ok(Some((owner, ..))) = &out {
        assert_eq!(*owner, org, "a record of another organization came back");
    }
    out
}

/// The field an update step writes: the kind's first free-text column that may be empty.
fn free_text(kind: EntityKind) -> &'static str {
    kind.columns()
        .iter()
        .find(|c| {
            c.kind == Kind::Text
                && c.nullable
                && !c.readonly
                && c.format.is_none()
                && c.choices.is_empty()
        })
        .map(|c| c.name)
        .unwrap_or_else(|| panic!("{kind} has no free-text column to update"))
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
    /// The record `target` picks (its index and a copy), the tenant of `actor` and its
    /// organization.
    fn acting(
        &self,
        actor: usize,
        target: usize,
    ) -> Option<(usize, Tracked, Tenant, OrganizationId)> {
        let k = self.pick(target, None)?;
        let org = self.orgs[actor].id;
        Some((k, self.records[k].clone(), self.tenants[actor].clone(), org))
    }

    fn pick(&self, i: usize, kind: Option<EntityKind>) -> Option<usize> {
        self.pick_where(i, |r| kind.is_none_or(|c| r.kind == c))
    }

    fn pick_where(&self, i: usize, keep: impl Fn(&Tracked) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.records.len())
            .filter(|&k| keep(&self.records[k]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[i % candidates.len()])
    }

    fn track(&mut self, kind: EntityKind, id: Uuid, org: usize, links: Vec<Uuid>) {
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

    /// Creates a record of `kind` in organization `org`, with what it needs (an invoice bills,
    /// and an activity attaches to, a new account). The match is exhaustive: a new entity in the
    /// registry does not compile until the test knows how to create one.
    async fn create(&mut self, org: usize, kind: EntityKind, n: u64) {
        let t = self.tenants[org].clone();
        let mut account = async || {
            let id = t
                .accounts()
                .create(NewAccount {
                    name: format!("a{n}"),
                    ..Default::default()
                })
                .await
                .unwrap()
                .id
                .uuid();
            self.track(EntityKind::Account, id, org, Vec::new());
            id
        };
        let (id, links) = match kind {
            EntityKind::Account => {
                account().await;
                return;
            }
            EntityKind::Contact => {
                let new = NewContact {
                    last_name: Some(format!("c{n}")),
                    ..Default::default()
                };
                (t.contacts().create(new).await.unwrap().id.uuid(), vec![])
            }
            EntityKind::Lead => {
                let new = NewLead {
                    last_name: Some(format!("l{n}")),
                    ..Default::default()
                };
                (t.leads().create(new).await.unwrap().id.uuid(), vec![])
            }
            EntityKind::Opportunity => {
                let new = NewOpportunity {
                    name: format!("o{n}"),
                    ..Default::default()
                };
                (
                    t.opportunities().create(new).await.unwrap().id.uuid(),
                    vec![],
                )
            }
            EntityKind::Activity => {
                let related = account().await;
                let new = NewActivity {
                    kind: ActivityKind::Note,
                    subject: format!("n{n}"),
                    related_entity: EntityKind::Account,
                    related_id: related,
                    ..Default::default()
                };
                // Activities point at their record without a foreign key: no purge waits on them.
                (t.activities().create(new).await.unwrap().id.uuid(), vec![])
            }
            EntityKind::Invoice => {
                let billed = account().await;
                let new = NewInvoice {
                    account_id: Some(AccountId::from(billed)),
                    currency: "EUR".into(),
                    ..Default::default()
                };
                (
                    t.invoices().create(new).await.unwrap().id.uuid(),
                    vec![billed],
                )
            }
        };
        self.track(kind, id, org, links);
    }

    async fn run(&mut self, step: Step) {
        self.counter += 1;
        let n = self.counter;
        match step {
            Step::Create { org, kind } => self.create(org, kind, n).await,
            Step::Get { actor, target } => {
                let Some((_, r, t, org)) = self.acting(actor, target) else {
                    return;
                };
                let t = &t;
                let out = apply(t, r.kind, r.id, Verb::Get, org).await;
                if r.org == actor && r.state == State::Live {
                    assert_eq!(out.unwrap().map(|o| o.1), Some(r.version), "{r:?}");
                } else {
                    not_found(&out, &r);
                }
            }
            Step::Update { actor, target } => {
                let Some((k, r, t, org)) = self.acting(actor, target) else {
                    return;
                };
                let t = &t;
                let patch = json!({ free_text(r.kind): format!("v{n}") });
                let out = apply(t, r.kind, r.id, Verb::Update(patch), org).await;
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
                let Some((k, r, t, org)) = self.acting(actor, target) else {
                    return;
                };
                let t = &t;
                let verb = if delete { Verb::Delete } else { Verb::Restore };
                let out = apply(t, r.kind, r.id, verb, org).await;
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
                let Some((k, r, t, org)) = self.acting(actor, target) else {
                    return;
                };
                let out = apply(&t, r.kind, r.id, Verb::Purge, org).await;
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
                    self.pick(contact, Some(EntityKind::Contact)),
                    self.pick(account, Some(EntityKind::Account)),
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
                for &kind in EntityKind::ALL {
                    let mut got = kind
                        .visit(ListIds {
                            tenant: t,
                            query: &q,
                        })
                        .await;
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
                let Some(k) = self.pick(target, Some(EntityKind::Lead)) else {
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
                    self.track(EntityKind::Account, account, actor, Vec::new());
                    self.track(EntityKind::Contact, contact, actor, vec![account]);
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
                    related_entity: r.kind,
                    related_id: r.id,
                    ..Default::default()
                };
                let out = self.tenants[actor].activities().create(new).await;
                if !r.kind.has_timeline() {
                    assert!(
                        matches!(&out, Err(Error::Validation(e)) if e[0].field == "related_entity"),
                        "nothing attaches to a {}: {out:?}",
                        r.kind
                    );
                } else if r.org == actor && r.state == State::Live {
                    let activity = out.unwrap();
                    assert_eq!(activity.organization_id, self.orgs[actor].id);
                    self.track(EntityKind::Activity, activity.id.uuid(), actor, Vec::new());
                } else {
                    not_found(&out, &r);
                }
            }
            Step::Bill { actor, target } => {
                let Some(k) = self.pick(target, Some(EntityKind::Account)) else {
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
                    self.track(EntityKind::Invoice, id, actor, vec![a.id]);
                } else {
                    not_found(&out, &a);
                }
            }
            Step::Timeline { actor, target } => {
                let Some(k) = self.pick_where(target, |r| r.kind.has_timeline()) else {
                    return;
                };
                let r = self.records[k].clone();
                let out = self.tenants[actor].timeline(r.kind, r.id, 100, None).await;
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
            let got = apply(t, r.kind, r.id, Verb::GetIncludingDeleted, org).await;
            match r.state {
                State::Purged => not_found(&got, r),
                state => assert_eq!(
                    got.unwrap().map(|o| (o.1, o.2)),
                    Some((r.version, state == State::Deleted)),
                    "{r:?}"
                ),
            }
        }
    }
}

pub(crate) async fn run_case(crm: Crm, steps: Vec<Step>) {
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

pub(crate) fn runtime() -> tokio::runtime::Runtime {
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
