//! The world of the access property test: a random organization (users, teams, permission
//! sets, records and shares), the model of what each caller may see in it, and the check of
//! every exit against that model. Shared by crm-core's behaviour tests, which drive the exits
//! through the library, and crm-axum's API tests, which drive them over HTTP: both implement
//! [`Exits`] and call [`check`].

use std::collections::{BTreeMap, BTreeSet};

use crm_core::access::{EntityAccess, FieldRule, Grantee, NewPermissionSet, NewTeam, Reach};
use crm_core::access::{PermissionSetId, ShareAccess};
use crm_core::auth::{ApiKeyScope, NewApiKey};
use crm_core::{
    AccountId, Crm, EntityKind, NewAccount, NewContact, NewOpportunity, OrganizationId, Role,
    TenantContext, UserId,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Users of the organization (besides its admin).
pub(crate) const USERS: usize = 4;
/// The kinds the world holds; a record links to an account.
pub(crate) const KINDS: [EntityKind; 3] = [
    EntityKind::Account,
    EntityKind::Contact,
    EntityKind::Opportunity,
];
/// Fields a set may hide, per kind of [`KINDS`]: nullable, some searched, some sortable.
const HIDEABLE: [[&str; 2]; 3] = [
    ["industry", "annual_revenue_minor"],
    ["phone", "title"],
    ["description", "amount_minor"],
];

/// A permission set: read reach (write alike, no delete) and at most one hidden field per kind.
#[derive(Debug, Clone)]
pub(crate) struct SetSpec {
    read: [Reach; 3],
    hidden: [Option<usize>; 3],
}

#[derive(Debug, Clone)]
pub(crate) struct TeamSpec {
    members: BTreeSet<usize>,
    manager: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct RecordSpec {
    kind: usize,
    owner: Option<usize>,
    creator: usize,
    /// A contact's or opportunity's account: the `n`th account made before it, if any.
    account: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum GranteeSpec {
    User(usize),
    Team(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct ShareSpec {
    record: usize,
    grantee: GranteeSpec,
    write: bool,
}

/// One random organization.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    sets: Vec<SetSpec>,
    /// Each user's set (an index into `sets`, modulo its length), or none: built-in access.
    user_sets: Vec<Option<usize>>,
    teams: Vec<TeamSpec>,
    records: Vec<RecordSpec>,
    shares: Vec<ShareSpec>,
}

fn reach() -> impl Strategy<Value = Reach> {
    prop_oneof![
        Just(Reach::None),
        Just(Reach::Own),
        Just(Reach::Team),
        Just(Reach::All)
    ]
}

pub(crate) fn spec() -> impl Strategy<Value = Spec> {
    let set = (
        [reach(), reach(), reach()],
        [
            proptest::option::of(0..2usize),
            proptest::option::of(0..2usize),
            proptest::option::of(0..2usize),
        ],
    )
        .prop_map(|(read, hidden)| SetSpec { read, hidden });
    let team = (
        proptest::collection::btree_set(0..USERS, 0..=3),
        proptest::option::of(0..USERS),
    )
        .prop_map(|(members, manager)| TeamSpec { members, manager });
    let record = (
        0..3usize,
        proptest::option::of(0..USERS),
        0..USERS,
        proptest::option::of(0..8usize),
    )
        .prop_map(|(kind, owner, creator, account)| RecordSpec {
            kind,
            owner,
            creator,
            account,
        });
    let grantee = prop_oneof![
        (0..USERS).prop_map(GranteeSpec::User),
        (0..2usize).prop_map(GranteeSpec::Team),
    ];
    let share =
        (0..16usize, grantee, any::<bool>()).prop_map(|(record, grantee, write)| ShareSpec {
            record,
            grantee,
            write,
        });
    (
        vec(set, 1..=2),
        vec(proptest::option::of(0..2usize), USERS),
        vec(team, 0..=2),
        vec(record, 1..=12),
        vec(share, 0..=5),
    )
        .prop_map(|(sets, user_sets, teams, records, mut shares)| {
            let n = records.len();
            shares.retain_mut(|s| {
                s.record %= n;
                match s.grantee {
                    GranteeSpec::Team(t) => t < teams.len(),
                    GranteeSpec::User(_) => true,
                }
            });
            // One share per record and grantee: a second would replace the first.
            let mut seen = BTreeSet::new();
            shares.retain(|s| seen.insert((s.record, s.grantee)));
            let user_sets = user_sets
                .into_iter()
                .map(|s| s.map(|i| i % sets.len()))
                .collect();
            Spec {
                sets,
                user_sets,
                teams,
                records,
                shares,
            }
        })
}

/// Who calls: a user, or the API key (scope `all`) that carries permission set `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    User(usize),
    Key(usize),
}

/// A record as made.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    pub(crate) kind: EntityKind,
    pub(crate) id: Uuid,
    kind_index: usize,
    owner: Option<usize>,
    creator: usize,
    /// Its account: an index into the made records.
    account: Option<usize>,
    /// The value of each hideable field of its kind, as JSON.
    values: [Value; 2],
    title: String,
}

/// The organization as made: ids of what the spec names.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) org: OrganizationId,
    pub(crate) users: Vec<UserId>,
    pub(crate) records: Vec<Made>,
    /// The key of each set: its id and its secret.
    pub(crate) keys: Vec<(Uuid, String)>,
}

impl Built {
    /// The tenant context of `caller`.
    pub(crate) fn context(&self, caller: Caller) -> TenantContext {
        match caller {
            Caller::User(u) => TenantContext::user(self.org, self.users[u], Role::User),
            Caller::Key(k) => TenantContext::api_key(self.org, self.keys[k].0),
        }
    }
}

/// A permission set's entry for `kind`: `reach` to read and to write, no trashing.
pub(crate) fn reads_and_writes(kind: EntityKind, reach: Reach) -> (String, EntityAccess) {
    let access = EntityAccess {
        read: reach,
        write: reach,
        delete: Reach::None,
    };
    (kind.table().to_owned(), access)
}

/// Makes the organization of `spec` in `org`, whose `users` exist (role `user`, no set).
/// Records are made first, by their creators, while everyone may still write everything;
/// then the sets, teams and shares narrow what each caller reaches.
pub(crate) async fn build(
    spec: &Spec,
    crm: &Crm,
    org: OrganizationId,
    users: Vec<UserId>,
) -> Built {
    assert_eq!(users.len(), USERS);
    let admin = crm.tenant(&TenantContext::system(org));
    let mut records: Vec<Made> = Vec::new();
    for (i, r) in spec.records.iter().enumerate() {
        let kind = KINDS[r.kind];
        let t = crm.tenant(&TenantContext::user(org, users[r.creator], Role::User));
        let owner = r.owner.map(|u| users[u]);
        let accounts: Vec<usize> = (0..records.len())
            .filter(|&j| records[j].kind == EntityKind::Account)
            .collect();
        let account = match r.account {
            Some(n) if !accounts.is_empty() && kind != EntityKind::Account => {
                Some(accounts[n % accounts.len()])
            }
            _ => None,
        };
        let account_id = account.map(|j| AccountId::from_uuid(records[j].id));
        let (id, values, title) = match kind {
            EntityKind::Account => {
                let title = format!("Zq A{i}");
                let made = t
                    .accounts()
                    .create(NewAccount {
                        name: title.clone(),
                        owner_id: owner,
                        industry: Some(format!("Ind{i}")),
                        annual_revenue_minor: Some(1000 + i as i64),
                        annual_revenue_currency: Some("EUR".into()),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let values = [json!(made.industry), json!(made.annual_revenue_minor)];
                (made.id.uuid(), values, title)
            }
            EntityKind::Contact => {
                let made = t
                    .contacts()
                    .create(NewContact {
                        last_name: Some(format!("Zq C{i}")),
                        phone: Some(format!("+1 555 01{i:02}")),
                        title: Some(format!("Buyer{i}")),
                        account_id,
                        owner_id: owner,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let values = [json!(made.phone), json!(made.title)];
                (made.id.uuid(), values, format!("Zq C{i}"))
            }
            _ => {
                let title = format!("Zq O{i}");
                let made = t
                    .opportunities()
                    .create(NewOpportunity {
                        name: title.clone(),
                        account_id,
                        owner_id: owner,
                        amount_minor: Some(500 + i as i64),
                        currency: Some("EUR".into()),
                        description: Some(format!("Desc{i}")),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let values = [json!(made.description), json!(made.amount_minor)];
                (made.id.uuid(), values, title)
            }
        };
        records.push(Made {
            kind,
            id,
            kind_index: r.kind,
            owner: r.owner,
            creator: r.creator,
            account,
            values,
            title,
        });
    }

    let mut sets: Vec<PermissionSetId> = Vec::new();
    for (i, s) in spec.sets.iter().enumerate() {
        let entities = KINDS
            .iter()
            .zip(s.read)
            .map(|(k, read)| reads_and_writes(*k, read))
            .collect();
        let fields = KINDS
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let field = HIDEABLE[i][s.hidden[i]?];
                Some((
                    k.table().to_owned(),
                    BTreeMap::from([(field.to_owned(), FieldRule::Hidden)]),
                ))
            })
            .collect();
        let set = admin
            .permission_sets()
            .create(NewPermissionSet {
                name: format!("Set {i}"),
                description: String::new(),
                entities,
                fields,
            })
            .await
            .unwrap();
        sets.push(set.id);
    }
    for (u, set) in spec.user_sets.iter().enumerate() {
        if let Some(s) = set {
            admin
                .permission_sets()
                .assign_to_user(users[u], Some(sets[*s]))
                .await
                .unwrap();
        }
    }
    let mut teams = Vec::new();
    for (i, team) in spec.teams.iter().enumerate() {
        let made = admin
            .teams()
            .create(NewTeam {
                name: format!("Team {i}"),
                description: String::new(),
                manager_id: team.manager.map(|u| users[u]),
            })
            .await
            .unwrap();
        for m in &team.members {
            admin.teams().add_member(made.id, users[*m]).await.unwrap();
        }
        teams.push(made.id);
    }
    for share in &spec.shares {
        let r = &records[share.record];
        let grantee = match share.grantee {
            GranteeSpec::User(u) => Grantee::User(users[u]),
            GranteeSpec::Team(t) => Grantee::Team(teams[t]),
        };
        let access = if share.write {
            ShareAccess::Write
        } else {
            ShareAccess::Read
        };
        admin
            .shares()
            .share(r.kind, r.id, grantee, access)
            .await
            .unwrap();
    }
    let mut keys = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let (key, secret) = admin
            .api_keys()
            .create(NewApiKey {
                name: format!("Key of set {i}"),
                scopes: vec![ApiKeyScope::All],
            })
            .await
            .unwrap();
        admin
            .permission_sets()
            .assign_to_api_key(key.id.uuid(), Some(*set))
            .await
            .unwrap();
        keys.push((key.id.uuid(), secret));
    }
    Built {
        org,
        users,
        records,
        keys,
    }
}

/// Why an exit answered nothing: not found, or refused with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotFound,
    Forbidden(String),
    Invalid(String),
}

pub(crate) type Answer<T> = Result<T, Refusal>;

/// The exits of records, driven through the library or over HTTP. Records, hits, field
/// changes and events come back as their JSON.
pub(crate) trait Exits {
    /// One record by id.
    async fn get(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Value>;
    /// The records (one page of up to 100) matching `condition` (all, when `None`).
    async fn list(
        &self,
        caller: Caller,
        kind: EntityKind,
        condition: Option<Value>,
    ) -> Answer<Vec<Value>>;
    /// Full-text search hits (`kind`, `id`, `title`) for `q`.
    async fn search(&self, caller: Caller, q: &str) -> Answer<Vec<Value>>;
    /// A record's field history (newest first, up to 100 entries).
    async fn history(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Vec<Value>>;
    /// The record as it was at the present moment (`as_of`).
    async fn as_of_now(&self, caller: Caller, kind: EntityKind, id: Uuid) -> Answer<Value>;
    /// The whole change feed.
    async fn changes(&self, caller: Caller) -> Answer<Vec<Value>>;
}

/// What the model says of one caller.
struct Model<'a> {
    spec: &'a Spec,
    built: &'a Built,
    caller: Caller,
}

impl Model<'_> {
    fn set(&self) -> Option<&SetSpec> {
        match self.caller {
            Caller::User(u) => self.spec.user_sets[u].map(|s| &self.spec.sets[s]),
            Caller::Key(k) => Some(&self.spec.sets[k]),
        }
    }

    fn reach(&self, kind: usize) -> Reach {
        self.set().map_or(Reach::All, |s| s.read[kind])
    }

    /// The field of `kind` hidden from the caller, if any.
    fn hidden(&self, kind: usize) -> Option<&'static str> {
        let h = self.set()?.hidden[kind]?;
        Some(HIDEABLE[kind][h])
    }

    /// Teams the caller is in (member or manager).
    fn teams(&self) -> BTreeSet<usize> {
        let Caller::User(u) = self.caller else {
            return BTreeSet::new();
        };
        (0..self.spec.teams.len())
            .filter(|&t| {
                let team = &self.spec.teams[t];
                team.members.contains(&u) || team.manager == Some(u)
            })
            .collect()
    }

    /// The caller and everyone in their teams.
    fn teammates(&self) -> BTreeSet<usize> {
        let Caller::User(u) = self.caller else {
            return BTreeSet::new();
        };
        let mut mates = BTreeSet::from([u]);
        for t in self.teams() {
            let team = &self.spec.teams[t];
            mates.extend(team.members.iter().copied());
            mates.extend(team.manager);
        }
        mates
    }

    /// Whether the caller may not touch `kind` at all (403): a key whose set reaches none.
    /// A user is never refused: records shared with them may still come.
    fn refused(&self, kind: usize) -> bool {
        matches!(self.caller, Caller::Key(_)) && self.reach(kind) == Reach::None
    }

    fn reads(&self, record: usize) -> bool {
        let r = &self.built.records[record];
        let people = [r.owner, Some(r.creator)];
        let by_reach = match (self.reach(r.kind_index), self.caller) {
            (Reach::All, _) => true,
            (Reach::None, _) | (_, Caller::Key(_)) => false,
            (Reach::Own, Caller::User(u)) => people.contains(&Some(u)),
            (Reach::Team, Caller::User(_)) => {
                let mates = self.teammates();
                people.iter().flatten().any(|p| mates.contains(p))
            }
        };
        by_reach || self.shared(record)
    }

    fn shared(&self, record: usize) -> bool {
        let Caller::User(u) = self.caller else {
            return false;
        };
        let teams = self.teams();
        self.spec.shares.iter().any(|s| {
            s.record == record
                && match s.grantee {
                    GranteeSpec::User(g) => g == u,
                    GranteeSpec::Team(t) => teams.contains(&t),
                }
        })
    }

    /// The records of `kind` the caller reads, by id.
    fn readable(&self, kind: usize, keep: impl Fn(usize) -> bool) -> BTreeSet<Uuid> {
        (0..self.built.records.len())
            .filter(|&i| self.built.records[i].kind_index == kind && self.reads(i) && keep(i))
            .map(|i| self.built.records[i].id)
            .collect()
    }

    /// Checks one record as the caller got it: its fields, without the hidden one.
    fn check_record(&self, got: &Value, what: &str) {
        let id = id_of(got);
        let (index, made) = self
            .built
            .records
            .iter()
            .enumerate()
            .find(|(_, r)| r.id == id)
            .unwrap_or_else(|| panic!("{what}: an unknown record {id}"));
        assert!(self.reads(index), "{what}: {id} is out of reach");
        let hidden = self.hidden(made.kind_index);
        for (field, value) in HIDEABLE[made.kind_index].iter().zip(&made.values) {
            let shown = got.get(*field).unwrap_or(&Value::Null);
            if Some(*field) == hidden {
                assert!(
                    shown.is_null(),
                    "{what}: hidden `{field}` of {id} shows {shown}"
                );
            } else {
                assert_eq!(shown, value, "{what}: `{field}` of {id}");
            }
        }
    }

    /// Checks that `changes` (an event's `{field: {before, after}}`) name no hidden field.
    fn check_changes(&self, kind: usize, changes: &Value, what: &str) {
        if let Some(field) = self.hidden(kind) {
            assert!(
                changes.get(field).is_none(),
                "{what}: the change of hidden `{field}` shows: {changes}"
            );
        }
    }
}

pub(crate) fn id_of(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {v}"))
}

fn ids(values: &[Value]) -> BTreeSet<Uuid> {
    values.iter().map(id_of).collect()
}

/// Every caller: each user, and the key of each set.
pub(crate) fn callers(spec: &Spec) -> Vec<Caller> {
    (0..USERS)
        .map(Caller::User)
        .chain((0..spec.sets.len()).map(Caller::Key))
        .collect()
}

/// Checks every exit, for every caller, against the model: exactly the records it allows, and
/// no field it hides.
pub(crate) async fn check(spec: &Spec, built: &Built, exits: &impl Exits) {
    for caller in callers(spec) {
        let m = Model {
            spec,
            built,
            caller,
        };
        check_records(&m, exits).await;
        check_links(&m, exits).await;
        check_search(&m, exits).await;
        if matches!(caller, Caller::Key(_)) {
            check_feed(&m, exits).await;
        }
    }
}

/// Lists, gets, history and `as_of`.
async fn check_records(m: &Model<'_>, exits: &impl Exits) {
    let caller = m.caller;
    for (k, kind) in KINDS.iter().enumerate() {
        let what = format!("{caller:?} lists {}", kind.table());
        match exits.list(caller, *kind, None).await {
            Ok(page) => {
                assert!(!m.refused(k), "{what}: answered though refused");
                assert_eq!(ids(&page), m.readable(k, |_| true), "{what}");
                for r in &page {
                    m.check_record(r, &what);
                }
            }
            Err(e) => {
                assert!(m.refused(k), "{what}: {e:?}");
                assert_eq!(e, Refusal::Forbidden("no_access".into()), "{what}");
            }
        }
    }
    for (i, r) in m.built.records.iter().enumerate() {
        let what = format!("{caller:?} reads {} {i}", r.kind.name());
        let expected = if m.refused(r.kind_index) {
            Err(Refusal::Forbidden("no_access".into()))
        } else if m.reads(i) {
            Ok(())
        } else {
            Err(Refusal::NotFound)
        };
        let read = [
            ("gets", exits.get(caller, r.kind, r.id).await),
            (
                "reads as of now",
                exits.as_of_now(caller, r.kind, r.id).await,
            ),
        ];
        for (how, got) in read {
            let what = format!("{what} ({how})");
            assert_eq!(
                got.as_ref().map(|_| ()),
                expected.as_ref().map(|_| ()),
                "{what}"
            );
            if let Ok(record) = got {
                m.check_record(&record, &what);
            }
        }
        let what = format!("{caller:?} reads the history of {} {i}", r.kind.name());
        let got = exits.history(caller, r.kind, r.id).await;
        assert_eq!(
            got.as_ref().map(|_| ()),
            expected.as_ref().map(|_| ()),
            "{what}"
        );
        for change in got.unwrap_or_default() {
            let field = change["field"].as_str().unwrap_or_default();
            assert_ne!(Some(field), m.hidden(r.kind_index), "{what}: {change}");
            m.check_changes(r.kind_index, &change["write"]["changes"], &what);
        }
    }
}

/// Filters across the link to accounts, and `exists` from accounts: no record out of reach
/// may decide what comes back, and a hidden field is no oracle.
async fn check_links(m: &Model<'_>, exits: &impl Exits) {
    let caller = m.caller;
    let records = &m.built.records;
    let account_read = |i: Option<usize>| i.is_some_and(|a| m.reads(a));
    for (k, kind) in KINDS.iter().enumerate().skip(1) {
        let what = format!("{caller:?} lists {} by account.industry", kind.table());
        let by_industry =
            json!({ "field": "account.industry", "op": "starts_with", "value": "Ind" });
        let got = exits.list(caller, *kind, Some(by_industry)).await;
        if m.refused(k) {
            assert_eq!(got, Err(Refusal::Forbidden("no_access".into())), "{what}");
        } else if m.hidden(0) == Some("industry") {
            assert_eq!(got, Err(Refusal::Invalid("hidden_field".into())), "{what}");
        } else {
            let expected = m.readable(k, |i| account_read(records[i].account));
            assert_eq!(
                ids(&got.unwrap_or_else(|e| panic!("{what}: {e:?}"))),
                expected,
                "{what}"
            );
        }
    }
    for (k, relation) in [(1, "contacts"), (2, "opportunities")] {
        let what = format!("{caller:?} lists accounts with {relation}");
        let with = json!({ "exists": { "relation": relation } });
        let got = exits.list(caller, EntityKind::Account, Some(with)).await;
        if m.refused(0) {
            assert_eq!(got, Err(Refusal::Forbidden("no_access".into())), "{what}");
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let expected = m.readable(0, |a| {
            (0..records.len())
                .any(|c| records[c].kind_index == k && records[c].account == Some(a) && m.reads(c))
        });
        assert_eq!(ids(&got), expected, "{what}");
    }
}

/// Full-text search: hits only of what the caller reads, and no kind searched by a hidden
/// field.
async fn check_search(m: &Model<'_>, exits: &impl Exits) {
    let what = format!("{:?} searches", m.caller);
    let hits = exits
        .search(m.caller, "zq")
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let searched = |k: usize| {
        // Every hideable field but the sortable numbers is searched.
        let hides_searched = m.hidden(k).is_some_and(|f| !f.ends_with("_minor"));
        !m.refused(k) && !hides_searched
    };
    let expected: BTreeSet<Uuid> = (0..KINDS.len())
        .filter(|&k| searched(k))
        .flat_map(|k| m.readable(k, |_| true))
        .collect();
    assert_eq!(ids(&hits), expected, "{what}");
    for hit in &hits {
        let id = id_of(hit);
        let made = m.built.records.iter().find(|r| r.id == id).unwrap();
        assert_eq!(hit["title"], made.title, "{what}: the title of {id}");
    }
}

/// The change feed (keys with the `all` scope read it): tombstones for records out of reach,
/// no hidden field in the others' changes.
async fn check_feed(m: &Model<'_>, exits: &impl Exits) {
    let what = format!("{:?} reads the change feed", m.caller);
    let events = exits
        .changes(m.caller)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let records = &m.built.records;
    let mut seen = BTreeSet::new();
    for event in &events {
        let Some(index) = records.iter().position(|r| {
            event["entity"] == r.kind.name() && event["record_id"] == r.id.to_string()
        }) else {
            continue;
        };
        seen.insert(index);
        let changes = &event["changes"];
        if m.reads(index) {
            m.check_changes(records[index].kind_index, changes, &what);
        } else {
            let empty = changes.as_object().is_none_or(|c| c.is_empty());
            assert!(
                empty,
                "{what}: the change of {index}, out of reach, shows {changes}"
            );
            assert!(event["actor_id"].is_null(), "{what}: {event}");
        }
    }
    assert_eq!(
        seen.len(),
        records.len(),
        "{what}: every record's creation is in the feed"
    );
}
