//! `crm seed`: a realistic demo data set, deterministic for a given `--seed` (the content; ids
//! are UUIDv7 and so depend on time), written through the library's batched creation.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use crm_core::sqlx::types::Json;
use crm_core::{
    AccountId, ActivityKind, ContactId, Crm, CustomFieldType, EntityKind, Error, LeadSource,
    LeadStatus, LineItem, NewAccount, NewActivity, NewContact, NewCustomField, NewInvoice, NewLead,
    NewOpportunity, NewOrganization, NewUser, Role, StageKind, Tenant, TenantContext,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use crate::Output;

/// Arguments of `crm seed`.
#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// How many organizations.
    #[arg(long, default_value_t = 1)]
    orgs: u32,
    /// Contacts per organization; the other entities follow in proportion (accounts 1/10,
    /// leads 1/5, opportunities 1/20, invoices 1/50, activities 1/10).
    #[arg(long, default_value_t = 1000)]
    records: u32,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Records per batch (one transaction each).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Dennis",
    "Radia",
    "John",
    "Hedy",
    "Tim",
    "Katherine",
    "Linus",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "Ritchie",
    "Perlman",
    "Backus",
    "Lamarr",
    "Berners-Lee",
    "Johnson",
    "Torvalds",
];
const WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Wonka",
    "Aperture",
    "Massive",
    "Dynamic",
    "Oscorp",
];
const SUFFIX: &[&str] = &["Inc", "Ltd", "GmbH", "SA", "BV", "Group", "Labs", "Systems"];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Energy",
    "Retail",
    "Finance",
    "Health",
    "Logistics",
    "Media",
    "Manufacturing",
];
const CITIES: &[&str] = &[
    "Paris", "Berlin", "Lisbon", "Oslo", "Austin", "Toronto", "Osaka", "Nairobi",
];
const TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "Head of Sales",
    "Engineer",
    "Buyer",
    "Operations Manager",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP"];

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    organizations: u64,
    accounts: u64,
    contacts: u64,
    leads: u64,
    opportunities: u64,
    invoices: u64,
    activities: u64,
    seconds: f64,
}

/// Creates `items` in batches, advancing the bar.
async fn create<E: crm_core::Entity>(
    t: &Tenant,
    items: Vec<<E as crm_core::record::Fields>::New>,
    batch: usize,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<crm_core::Id<E>>> {
    let mut ids = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<_> = items.by_ref().take(batch).collect();
        let n = chunk.len() as u64;
        ids.extend(
            t.records::<E>()
                .create_many(chunk)
                .await?
                .into_iter()
                .map(|r| r.id),
        );
        bar.inc(n);
    }
    Ok(ids)
}

pub(crate) async fn run(crm: &Crm, args: SeedArgs, out: Output) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let m = u64::from(args.records);
    let per_org = m + m / 10 * 2 + m / 5 + m / 20 + m / 50 + 1;
    let bar = ProgressBar::new(per_org * u64::from(args.orgs));
    bar.set_style(ProgressStyle::with_template(
        "{spinner} {pos}/{len} records {wide_bar} {per_sec} eta {eta}",
    )?);
    let batch = args.batch as usize;
    let mut counts = Counts::default();

    for n in 1..=args.orgs {
        let mut rng =
            fastrand::Rng::with_seed(args.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(n)));
        let slug = format!("seed-{}-{n}", args.seed);
        let org = match crm
            .organizations()
            .create(NewOrganization {
                name: format!("Seed {n}"),
                slug: Some(slug.clone()),
            })
            .await
        {
            Err(Error::Conflict(_)) => anyhow::bail!(
                "organization `{slug}` exists: this seed was loaded already; pick another --seed"
            ),
            other => other?,
        };
        counts.organizations += 1;
        let t = crm.tenant(&TenantContext::system(org.id));
        let admin = t
            .users()
            .create(NewUser {
                email: format!("admin@{slug}.test"),
                name: "Seed admin".into(),
                password: None,
                role: Role::CompanyAdmin,
            })
            .await?;
        let mut tier = NewCustomField::new("tier", "Tier", CustomFieldType::Select);
        tier.options = vec!["gold".into(), "silver".into(), "bronze".into()];
        t.custom_fields().define(EntityKind::Account, tier).await?;
        t.custom_fields()
            .define(
                EntityKind::Contact,
                NewCustomField::new("score", "Lead score", CustomFieldType::Number),
            )
            .await?;

        let accounts: Vec<_> = (0..(m / 10).max(1))
            .map(|_| {
                let name = format!(
                    "{} {} {}",
                    pick(&mut rng, WORDS),
                    pick(&mut rng, WORDS),
                    pick(&mut rng, SUFFIX)
                );
                let mut a = NewAccount {
                    domain: Some(format!("{}.test", name.to_lowercase().replace(' ', "-"))),
                    name,
                    industry: Some(pick(&mut rng, INDUSTRIES).into()),
                    city: Some(pick(&mut rng, CITIES).into()),
                    employee_count: Some(rng.i64(1..50_000)),
                    owner_id: Some(admin.id),
                    ..Default::default()
                };
                a.custom_fields.insert(
                    "tier".into(),
                    json!(pick(&mut rng, &["gold", "silver", "bronze"])),
                );
                a
            })
            .collect();
        let account_ids: Vec<AccountId> = create(&t, accounts, batch, &bar).await?;
        counts.accounts += account_ids.len() as u64;

        let contacts: Vec<_> = (0..m)
            .map(|i| {
                let (first, last) = (pick(&mut rng, FIRST), pick(&mut rng, LAST));
                let mut c = NewContact {
                    first_name: Some(first.into()),
                    last_name: Some(last.into()),
                    email: Some(format!(
                        "{}.{}.{i}@example.test",
                        first.to_lowercase(),
                        last.to_lowercase()
                    )),
                    title: Some(pick(&mut rng, TITLES).into()),
                    account_id: Some(account_ids[rng.usize(..account_ids.len())]),
                    ..Default::default()
                };
                c.custom_fields
                    .insert("score".into(), json!(rng.u32(0..100)));
                c
            })
            .collect();
        let contact_ids: Vec<ContactId> = create(&t, contacts, batch, &bar).await?;
        counts.contacts += contact_ids.len() as u64;

        let statuses = [
            LeadStatus::New,
            LeadStatus::Contacted,
            LeadStatus::Qualified,
            LeadStatus::Unqualified,
        ];
        let leads: Vec<_> = (0..m / 5)
            .map(|i| NewLead {
                first_name: Some(pick(&mut rng, FIRST).into()),
                last_name: Some(pick(&mut rng, LAST).into()),
                email: Some(format!("lead{i}@prospect.test")),
                company: Some(format!(
                    "{} {}",
                    pick(&mut rng, WORDS),
                    pick(&mut rng, SUFFIX)
                )),
                source: [
                    LeadSource::WebForm,
                    LeadSource::Manual,
                    LeadSource::Referral,
                    LeadSource::Event,
                ][rng.usize(..4)],
                status: statuses[rng.usize(..statuses.len())],
                ..Default::default()
            })
            .collect();
        counts.leads += create::<crm_core::Lead>(&t, leads, batch, &bar)
            .await?
            .len() as u64;

        let pipeline = t
            .pipelines()
            .list()
            .await?
            .into_iter()
            .next()
            .context("no default pipeline")?;
        let stages: Vec<_> = pipeline
            .stages
            .iter()
            .filter(|s| s.kind == StageKind::Open)
            .map(|s| s.id)
            .collect();
        let opportunities: Vec<_> = (0..m / 20)
            .map(|i| NewOpportunity {
                name: format!("Deal {i}"),
                account_id: Some(account_ids[rng.usize(..account_ids.len())]),
                pipeline_id: Some(pipeline.id),
                stage_id: Some(stages[rng.usize(..stages.len())]),
                amount_minor: Some(rng.i64(1_000..10_000_000)),
                currency: Some(pick(&mut rng, CURRENCIES).into()),
                ..Default::default()
            })
            .collect();
        counts.opportunities += create::<crm_core::Opportunity>(&t, opportunities, batch, &bar)
            .await?
            .len() as u64;

        let invoices: Vec<_> = (0..m / 50)
            .map(|_| NewInvoice {
                account_id: Some(account_ids[rng.usize(..account_ids.len())]),
                currency: pick(&mut rng, CURRENCIES).into(),
                line_items: Json(
                    (0..rng.usize(1..4))
                        .map(|l| {
                            LineItem::new(
                                &format!("Item {l}"),
                                rng.i64(1..10),
                                rng.i64(100..100_000),
                                2000,
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            })
            .collect();
        counts.invoices += create::<crm_core::Invoice>(&t, invoices, batch, &bar)
            .await?
            .len() as u64;

        let activities: Vec<_> = (0..m / 10)
            .map(|i| NewActivity {
                kind: [
                    ActivityKind::Note,
                    ActivityKind::Call,
                    ActivityKind::Meeting,
                ][rng.usize(..3)],
                subject: format!("Follow-up {i}"),
                related_entity: EntityKind::Contact,
                related_id: contact_ids[rng.usize(..contact_ids.len())].uuid(),
                ..Default::default()
            })
            .collect();
        counts.activities += create::<crm_core::Activity>(&t, activities, batch, &bar)
            .await?
            .len() as u64;
    }
    bar.finish_and_clear();
    counts.seconds = started.elapsed().as_secs_f64();
    out.show(&counts, || {
        let total = counts.accounts + counts.contacts + counts.leads + counts.opportunities + counts.invoices + counts.activities;
        format!(
            "seeded {} organizations: {} accounts, {} contacts, {} leads, {} opportunities, {} invoices, {} activities \
             ({total} records in {:.1} s, {:.0}/s)",
            counts.organizations, counts.accounts, counts.contacts, counts.leads, counts.opportunities, counts.invoices,
            counts.activities, counts.seconds, total as f64 / counts.seconds.max(0.001)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
