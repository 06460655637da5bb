//! Index proof (PostgreSQL): every list and lookup path the library generates is planned
//! without a sequential scan of a tenant table, on a seeded and analyzed schema.
//!
//! The statements are not copied here: the test drives the library's own calls inside
//! [`crm_core::explain_statements`], which records `EXPLAIN (format json)` of every statement the
//! library sends, on the library's own connection (role `crm_app`, tenant bound, row-level
//! security in force). So a change to the SQL the library generates is checked as it is.

use crm_core::record::{Column, Entity, Kind};
use crm_core::sqlx::{self, Connection as _, Executor as _};
use crm_core::{
    CustomFieldType, Deleted, Direction, EntityKind, EntityVisitor, ListQuery, NewCustomField,
    NewOrganization, Op, Record, Tenant, TenantContext,
};
use serde_json::Value;

use crate::harness;

/// Organizations seeded, and rows of each entity per organization: the planner sees 2 % of
/// each table per tenant, as it would in production, so that a missing index shows.
const ORGS: usize = 50;
const ROWS: i32 = 400;

/// The tables seeded large enough for the planner's choice to mean something. The small
/// per-tenant configuration tables (pipelines, stages, custom field definitions, users) hold a
/// few rows per organization; a sequential scan of those is the planner's right choice.
const TENANT_TABLES: &[&str] = &[
    "accounts",
    "contacts",
    "leads",
    "opportunities",
    "invoices",
    "activities",
    "events",
    "record_match_keys",
];

/// The seed, one statement per table. `$1` is the rows per organization. Every nullable
/// sortable column is empty on one row in ten, so that every keyset form occurs.
const SEED: &[&str] = &[
    "insert into accounts (organization_id, id, created_at, updated_at, custom_fields, name, domain, industry, employee_count)
     select o.id, gen_random_uuid(), now() - i * interval '1 minute', now() - i * interval '1 minute',
            jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + i % 3]),
            'Account ' || i, case when i % 10 <> 0 then 'a' || i || '.example' end, 'Industry ' || i % 20, i
     from organizations o cross join generate_series(1, $1) i",
    "insert into contacts (organization_id, id, created_at, updated_at, custom_fields, first_name, last_name, email, phone, title, account_id)
     select o.id, gen_random_uuid(), now() - i * interval '1 minute', now() - i * interval '1 minute',
            jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + i % 3]),
            case when i % 10 <> 1 then 'First' || i end, case when i % 10 <> 2 then 'Last' || i % 100 end,
            case when i % 10 <> 3 then 'c' || i || '@example.com' end, '+1555' || i, 'Title ' || i % 7,
            (select a.id from accounts a where a.organization_id = o.id and not a.is_deleted and a.name = 'Account ' || (1 + i % 50))
     from organizations o cross join generate_series(1, $1) i",
    "insert into leads (organization_id, id, created_at, updated_at, custom_fields, first_name, last_name, email, company, source, status)
     select o.id, gen_random_uuid(), now() - i * interval '1 minute', now() - i * interval '1 minute',
            jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + i % 3]),
            case when i % 10 <> 1 then 'First' || i end, case when i % 10 <> 2 then 'Last' || i % 100 end,
            case when i % 10 <> 3 then 'l' || i || '@example.com' end, case when i % 10 <> 4 then 'Company ' || i % 40 end,
            'manual', (array['new', 'contacted', 'qualified', 'unqualified'])[1 + i % 4]
     from organizations o cross join generate_series(1, $1) i",
    "insert into opportunities (organization_id, id, created_at, updated_at, custom_fields, name, account_id, primary_contact_id, pipeline_id, stage_id, amount_minor, currency, expected_close_date, status)
     select o.id, gen_random_uuid(), now() - i * interval '1 minute', now() - i * interval '1 minute',
            jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + i % 3]),
            'Deal ' || i,
            (select a.id from accounts a where a.organization_id = o.id and not a.is_deleted and a.name = 'Account ' || (1 + i % 50)),
            (select c.id from contacts c where c.organization_id = o.id and not c.is_deleted and c.first_name = 'First' || (1 + i % 50)),
            p.id,
            (select s.id from pipeline_stages s where s.organization_id = o.id and s.pipeline_id = p.id order by s.position limit 1),
            case when i % 10 <> 5 then i * 1000 end, 'EUR', case when i % 10 <> 6 then current_date + i end, 'open'
     from organizations o
     join pipelines p on p.organization_id = o.id and p.is_default
     cross join generate_series(1, $1) i",
    "insert into invoices (organization_id, id, created_at, updated_at, custom_fields, account_id, currency, issue_date, due_date, number, status, subtotal_minor, tax_minor, total_minor)
     select o.id, gen_random_uuid(), now() - i * interval '1 minute', now() - i * interval '1 minute',
            jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + i % 3]),
            (select a.id from accounts a where a.organization_id = o.id and not a.is_deleted and a.name = 'Account ' || (1 + i % 50)),
            'EUR', current_date, case when i % 10 <> 7 then current_date + i end, 'INV-' || lpad(i::text, 6, '0'),
            (array['draft', 'sent', 'paid'])[1 + i % 3], i * 100, i * 20, i * 120
     from organizations o cross join generate_series(1, $1) i",
    "insert into activities (organization_id, id, created_at, updated_at, custom_fields, kind, subject, related_entity, related_id, due_at)
     select c.organization_id, gen_random_uuid(), c.created_at, c.created_at,
            jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + length(c.phone) % 3]),
            (array['note', 'task', 'call', 'meeting'])[1 + length(c.phone) % 4], 'About ' || c.phone, 'contact', c.id,
            case when c.phone not like '%8' then c.created_at + interval '7 days' end
     from contacts c where $1 > 0",
    "insert into events (organization_id, id, entity, record_id, action, actor_kind, changes, occurred_at)
     select c.organization_id, gen_random_uuid(), 'contact', c.id, (array['created', 'updated'])[n], 'system', '{}', c.created_at + n * interval '1 second'
     from contacts c cross join generate_series(1, 2) n where $1 > 0",
    // The duplicate match keys of the contacts, as the write path keeps them.
    "insert into record_match_keys (organization_id, entity, rule, value, record_id)
     select organization_id, 'contact', 'email', lower(email), id from contacts where email is not null and $1 > 0
     union all
     select organization_id, 'contact', 'name', lower(trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))), id
     from contacts where coalesce(first_name, last_name) is not null",
];

#[tokio::test]
async fn no_tenant_list_or_lookup_path_scans_a_whole_table() {
    let Some((crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    let mut orgs = Vec::new();
    for i in 0..ORGS {
        let org = crm
            .organizations()
            .create(NewOrganization {
                name: format!("Index proof {i}"),
                slug: None,
            })
            .await
            .unwrap();
        orgs.push(org.id);
    }
    // The URL's own (superuser) role: the seed bypasses row-level security.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    for statement in SEED {
        sqlx::query(*statement)
            .bind(ROWS)
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.execute("analyze").await.unwrap();

    let t = crm.tenant(&TenantContext::system(orgs[ORGS / 2]));
    for &entity in EntityKind::ALL {
        let mut tier = NewCustomField::new("tier", "Tier", CustomFieldType::Select);
        tier.options = vec!["gold".into(), "silver".into(), "bronze".into()];
        t.custom_fields().define(entity, tier).await.unwrap();
    }

    let rep = restricted_reader(&crm, &mut admin, orgs[ORGS / 2]).await;

    let (checked, plans) = crm_core::explain_statements(async {
        let mut paths = 0;
        for kind in EntityKind::ALL {
            paths += kind.visit(Paths(&t)).await;
        }
        paths += record_paths(&t).await;
        // The same lists for a reader whose permission set narrows them (own or team reach,
        // a share), as the library filters them and as row-level security does.
        for kind in EntityKind::ALL {
            paths += kind.visit(Paths(&rep)).await;
        }
        paths
    })
    .await;

    let mut scans = Vec::new();
    for (sql, plan) in &plans {
        for table in seq_scans(plan) {
            scans.push(format!("{table}: {sql}\n{plan:#}"));
        }
    }
    assert!(
        scans.is_empty(),
        "sequential scans of tenant tables:\n{}",
        scans.join("\n\n")
    );
    eprintln!(
        "index proof: {checked} library calls, {} statements explained, no sequential scan",
        plans.len()
    );
    assert!(checked > 100 && plans.len() >= checked);
}

/// A user of `org` whose permission set reads every other entity's own records and the
/// others' team records (a teammate's too), holding a share; a third of each table's rows
/// of the organization made by them (through `seed`, the superuser's connection).
async fn restricted_reader(
    crm: &crm_core::Crm,
    seed: &mut sqlx::PgConnection,
    org: crm_core::OrganizationId,
) -> Tenant {
    use crm_core::access::{NewPermissionSet, NewTeam, Reach};
    let system = crm.tenant(&TenantContext::system(org));
    let mut users = Vec::new();
    for name in ["rep", "mate"] {
        let u = system
            .users()
            .create(crm_core::NewUser {
                email: format!("{name}@example.com"),
                name: name.into(),
                password: None,
                role: crm_core::Role::User,
            })
            .await
            .unwrap();
        users.push(u.id);
    }
    let team = system
        .teams()
        .create(NewTeam {
            name: "Reps".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for u in &users {
        system.teams().add_member(team.id, *u).await.unwrap();
    }
    let entities = EntityKind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let reach = if i % 2 == 0 { Reach::Own } else { Reach::Team };
            crate::access_world::reads_and_writes(*k, reach)
        })
        .collect();
    let set = system
        .permission_sets()
        .create(NewPermissionSet {
            name: "Narrow".into(),
            description: String::new(),
            entities,
            fields: Default::default(),
        })
        .await
        .unwrap();
    system
        .permission_sets()
        .assign_to_user(users[0], Some(set.id))
        .await
        .unwrap();
    for (i, kind) in EntityKind::ALL.iter().enumerate() {
        let by = users[i % 2];
        let sql = format!(
            "update {} set created_by = $1 where organization_id = $2 and abs(hashtext(id::text)) % 3 = 0",
            kind.table()
        );
        // The table name comes from the registry.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(by.uuid())
            .bind(org.uuid())
            .execute(&mut *seed)
            .await
            .unwrap();
    }
    seed.execute("analyze").await.unwrap();
    let contact = system
        .contacts()
        .list(&ListQuery::default().limit(1))
        .await
        .unwrap();
    system
        .shares()
        .share(
            EntityKind::Contact,
            contact.data[0].id.uuid(),
            crm_core::access::Grantee::User(users[0]),
            crm_core::access::ShareAccess::Read,
        )
        .await
        .unwrap();
    crm.tenant(&TenantContext::user(org, users[0], crm_core::Role::User))
}

/// The relations a plan reads with a sequential scan, among [`TENANT_TABLES`].
fn seq_scans(plan: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![plan];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                let relation = m.get("Relation Name").and_then(Value::as_str);
                if m.get("Node Type").and_then(Value::as_str) == Some("Seq Scan")
                    && let Some(r) = relation.filter(|r| TENANT_TABLES.contains(r))
                {
                    out.push(r.to_owned());
                }
                stack.extend(m.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// The sortable columns every entity shares, then the entity's own.
fn sortable<E: Entity>() -> Vec<(&'static str, bool)> {
    let common = [("id", false), ("created_at", false), ("updated_at", false)];
    common
        .into_iter()
        .chain(
            E::COLUMNS
                .iter()
                .filter(|c| c.sortable)
                .map(|c| (c.name, c.nullable)),
        )
        .collect()
}

/// Every list and lookup of entity `E` the library can generate; returns how many calls ran.
/// Runs [`entity_paths`] for the entity type of a kind.
struct Paths<'a>(&'a Tenant);

impl<'a> EntityVisitor for Paths<'a> {
    type Output = std::pin::Pin<Box<dyn std::future::Future<Output = usize> + 'a>>;
    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(entity_paths::<E>(self.0))
    }
}

async fn entity_paths<E: Entity>(t: &Tenant) -> usize {
    let r = t.records::<E>();
    let mut calls = 0;
    let page = |q: ListQuery| q.limit(10);

    // Get by id, and the default list with its next page.
    let first = r.list(&page(ListQuery::default())).await.unwrap();
    let sample: &Record<E> = &first.data[3];
    r.get(sample.id).await.unwrap();
    r.list(&page(ListQuery::default()).cursor(first.next_cursor.clone()))
        .await
        .unwrap();
    calls += 3;

    // Each sortable column, both directions: the first page and the keyset after it; for
    // nullable columns also the keyset after an empty value.
    for (field, nullable) in sortable::<E>() {
        for dir in [Direction::Asc, Direction::Desc] {
            let sorted = || page(ListQuery::default()).sort(field, dir);
            let p = r.list(&sorted()).await.unwrap();
            assert!(p.next_cursor.is_some(), "{} by {field}", E::NAME);
            r.list(&sorted().cursor(p.next_cursor)).await.unwrap();
            calls += 2;
            if nullable {
                let empty = r
                    .list(&sorted().filter(field, Op::IsNull, true).limit(2))
                    .await
                    .unwrap();
                assert!(empty.next_cursor.is_some(), "{} empty {field}", E::NAME);
                r.list(&sorted().cursor(empty.next_cursor)).await.unwrap();
                calls += 2;
            }
        }
    }

    // Equality on every filterable standard column (emptiness where the sample has none).
    let values = serde_json::to_value(sample).unwrap();
    for Column { name, kind, .. } in E::COLUMNS {
        if matches!(kind, Kind::Json) {
            continue;
        }
        let q = match &values[name] {
            Value::Null => page(ListQuery::default()).filter(*name, Op::IsNull, true),
            v => page(ListQuery::default()).filter(*name, Op::Eq, v.clone()),
        };
        r.list(&q).await.unwrap();
        calls += 1;
    }

    // Custom field equality (the GIN index), and the trash.
    r.list(&page(ListQuery::default()).filter("custom_fields.tier", Op::Eq, "gold"))
        .await
        .unwrap();
    r.list(&page(ListQuery::default()).deleted(Deleted::Only))
        .await
        .unwrap();
    calls + 2
}

/// The lookups around one record: its events, its timeline (activities and events), the
/// pipeline summary, and the change feed.
async fn record_paths(t: &Tenant) -> usize {
    let contacts = t
        .contacts()
        .list(&ListQuery::default().limit(5))
        .await
        .unwrap();
    let contact = contacts.data[2].id;
    let events = t.events().for_record(contact, 1, None).await.unwrap();
    t.events()
        .for_record(contact, 1, events.next_cursor.as_deref())
        .await
        .unwrap();
    let timeline = t
        .timeline(EntityKind::Contact, contact, 1, None)
        .await
        .unwrap();
    t.timeline(
        EntityKind::Contact,
        contact,
        1,
        timeline.next_cursor.as_deref(),
    )
    .await
    .unwrap();
    let pipelines = t.pipelines().list().await.unwrap();
    let default = pipelines.iter().find(|p| p.is_default).unwrap();
    t.pipelines().summary(default.id).await.unwrap();
    // The change feed, from the beginning and from a cursor.
    let changes = t.changes().after(None, 1).await.unwrap();
    t.changes()
        .after(changes.next_cursor.as_deref(), 1)
        .await
        .unwrap();
    t.changes().head().await.unwrap();
    // Across links: a linked record's field, a sort by one (and its next page), and records
    // that link here with a condition.
    let big = ListQuery::default()
        .filter("account.employee_count", Op::Gt, 500)
        .limit(5);
    t.contacts().list(&big).await.unwrap();
    let mut by_account = ListQuery::default().limit(5);
    by_account.sort = Some(crm_core::Sort {
        field: "account.name".into(),
        direction: Direction::Asc,
    });
    let first = t.contacts().list(&by_account).await.unwrap();
    by_account.cursor = first.next_cursor;
    t.contacts().list(&by_account).await.unwrap();
    let open = crm_core::Condition::exists(
        "opportunities",
        Some(crm_core::Condition::filter("status", Op::Eq, "open")),
    );
    let with_open = ListQuery::default().condition(open).limit(5);
    t.accounts().list(&with_open).await.unwrap();
    let two_hops = ListQuery::default()
        .filter("primary_contact.account.name", Op::Eq, "Account 7")
        .limit(5);
    t.opportunities().list(&two_hops).await.unwrap();
    // Full-text search over every searchable kind, a first page and the next.
    let query = crm_core::SearchQuery {
        q: "account 1".into(),
        limit: Some(2),
        ..Default::default()
    };
    let hits = t.search(&query).await.unwrap();
    let next = crm_core::SearchQuery {
        cursor: hits.next_cursor,
        ..query
    };
    t.search(&next).await.unwrap();
    // The duplicate lookup of a create (by email and name).
    let new = crm_core::NewContact {
        first_name: Some("First7".into()),
        last_name: Some("Last7".into()),
        email: Some("C7@example.com".into()),
        ..Default::default()
    };
    let created = t
        .contacts()
        .create_with(new, crm_core::DuplicatePolicy::Warn)
        .await
        .unwrap();
    assert!(!created.duplicates.is_empty());
    17
}

#[test]
fn a_sequential_scan_of_a_tenant_table_is_found_at_any_depth() {
    let plan = serde_json::json!([{ "Plan": {
        "Node Type": "Limit",
        "Plans": [
            { "Node Type": "Seq Scan", "Relation Name": "pipelines" },
            { "Node Type": "Sort", "Plans": [{ "Node Type": "Seq Scan", "Relation Name": "contacts" }] },
            { "Node Type": "Index Scan", "Relation Name": "events" }
        ]
    }}]);
    assert_eq!(seq_scans(&plan), ["contacts"]);
}
