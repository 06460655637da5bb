//! `crm seed`: a realistic demo data set, deterministic for a given `--seed` (the content; ids
//! are UUIDv7 and so depend on time), written through the library's batched import
//! ([`crm_core::Records::import`]: every record checked and evented as by `create`).
//!
//! It runs entity by entity (accounts of every organization, then contacts…), with `--jobs`
//! organizations written at once, so that the time of each entity is its own
//! (`seconds_by_entity` in `--json`).

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use crm_core::sqlx::types::Json;
use crm_core::{
    AccountId, ActivityKind, ContactId, Crm, CustomFieldType, Entity, EntityKind, Error,
    LeadSource, LeadStatus, LineItem, NewAccount, NewActivity, NewContact, NewCustomField,
    NewInvoice, NewLead, NewOpportunity, NewOrganization, NewUser, Role, StageKind, Tenant,
    TenantContext, UserId,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;

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
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    batch: u32,
    /// Organizations written at once (each on a connection of its own).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
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
    /// Wall-clock seconds of each entity over all organizations (`organizations` includes
    /// their admin user and custom-field definitions).
    seconds_by_entity: BTreeMap<&'static str, f64>,
}

/// One organization being seeded: what later entities link to, and its own generator.
struct OrgSeed {
    n: u32,
    tenant: Tenant,
    rng: fastrand::Rng,
    admin: UserId,
    accounts: Vec<AccountId>,
    contacts: Vec<ContactId>,
}

/// What every step of one organization needs.
#[derive(Clone)]
struct Job {
    bar: ProgressBar,
    batch: usize,
    /// Contacts per organization.
    m: u64,
}

impl Job {
    /// Imports `items` in batches, advancing the bar.
    async fn import<E: Entity>(
        &self,
        t: &Tenant,
        items: Vec<<E as crm_core::record::Fields>::New>,
    ) -> anyhow::Result<Vec<crm_core::Id<E>>> {
        let mut ids = Vec::with_capacity(items.len());
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<_> = items.by_ref().take(self.batch).collect();
            let n = chunk.len() as u64;
            ids.extend(t.records::<E>().import(chunk).await?);
            self.bar.inc(n);
        }
        Ok(ids)
    }

    /// Imports `items` for `o`, and hands `o` back with the number written.
    async fn write<E: Entity>(
        &self,
        o: OrgSeed,
        items: Vec<<E as crm_core::record::Fields>::New>,
    ) -> anyhow::Result<(OrgSeed, u64)> {
        let n = self.import::<E>(&o.tenant, items).await?.len() as u64;
        Ok((o, n))
    }
}

/// Runs `step` on every organization, `jobs` at a time, and how many records it wrote; the
/// organizations come back in their order.
async fn each<F, Fut>(
    orgs: Vec<OrgSeed>,
    jobs: usize,
    step: F,
) -> anyhow::Result<(Vec<OrgSeed>, u64)>
where
    F: Fn(OrgSeed) -> Fut,
    Fut: Future<Output = anyhow::Result<(OrgSeed, u64)>> + Send + 'static,
{
    let mut running = JoinSet::new();
    let mut done = Vec::with_capacity(orgs.len());
    let mut written = 0;
    let mut waiting = orgs.into_iter();
    loop {
        while running.len() < jobs {
            let Some(org) = waiting.next() else { break };
            running.spawn(step(org));
        }
        let Some(finished) = running.join_next().await else {
            break;
        };
        let (org, n) = finished??;
        written += n;
        done.push(org);
    }
    done.sort_by_key(|o| o.n);
    Ok((done, written))
}

/// The organization `n` with its admin and custom-field definitions.
async fn organization(crm: &Crm, seed: u64, n: u32) -> anyhow::Result<OrgSeed> {
    let rng = fastrand::Rng::with_seed(seed.wrapping_mul(1_000_003).wrapping_add(u64::from(n)));
    let slug = format!("seed-{seed}-{n}");
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
    Ok(OrgSeed {
        n,
        tenant: t,
        rng,
        admin: admin.id,
        accounts: Vec::new(),
        contacts: Vec::new(),
    })
}

async fn accounts(job: Job, mut o: OrgSeed) -> anyhow::Result<(OrgSeed, u64)> {
    let rng = &mut o.rng;
    let accounts: Vec<_> = (0..(job.m / 10).max(1))
        .map(|_| {
            let name = format!(
                "{} {} {}",
                pick(rng, WORDS),
                pick(rng, WORDS),
                pick(rng, SUFFIX)
            );
            let mut a = NewAccount {
                domain: Some(format!("{}.test", name.to_lowercase().replace(' ', "-"))),
                name,
                industry: Some(pick(rng, INDUSTRIES).into()),
                city: Some(pick(rng, CITIES).into()),
                employee_count: Some(rng.i64(1..50_000)),
                owner_id: Some(o.admin),
                ..Default::default()
            };
            a.custom_fields.insert(
                "tier".into(),
                json!(pick(rng, &["gold", "silver", "bronze"])),
            );
            a
        })
        .collect();
    o.accounts = job.import(&o.tenant, accounts).await?;
    let n = o.accounts.len() as u64;
    Ok((o, n))
}

async fn contacts(job: Job, mut o: OrgSeed) -> anyhow::Result<(OrgSeed, u64)> {
    let (rng, accounts) = (&mut o.rng, &o.accounts);
    let contacts: Vec<_> = (0..job.m)
        .map(|i| {
            let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
            let mut c = NewContact {
                first_name: Some(first.into()),
                last_name: Some(last.into()),
                email: Some(format!(
                    "{}.{}.{i}@example.test",
                    first.to_lowercase(),
                    last.to_lowercase()
                )),
                title: Some(pick(rng, TITLES).into()),
                account_id: Some(accounts[rng.usize(..accounts.len())]),
                ..Default::default()
            };
            c.custom_fields
                .insert("score".into(), json!(rng.u32(0..100)));
            c
        })
        .collect();
    o.contacts = job.import(&o.tenant, contacts).await?;
    let n = o.contacts.len() as u64;
    Ok((o, n))
}

async fn leads(job: Job, mut o: OrgSeed) -> anyhow::Result<(OrgSeed, u64)> {
    let rng = &mut o.rng;
    let statuses = [
        LeadStatus::New,
        LeadStatus::Contacted,
        LeadStatus::Qualified,
        LeadStatus::Unqualified,
    ];
    let sources = [
        LeadSource::WebForm,
        LeadSource::Manual,
        LeadSource::Referral,
        LeadSource::Event,
    ];
    let leads: Vec<_> = (0..job.m / 5)
        .map(|i| NewLead {
            first_name: Some(pick(rng, FIRST).into()),
            last_name: Some(pick(rng, LAST).into()),
            email: Some(format!("lead{i}@prospect.test")),
            company: Some(format!("{} {}", pick(rng, WORDS), pick(rng, SUFFIX))),
            source: sources[rng.usize(..sources.len())],
            status: statuses[rng.usize(..statuses.len())],
            ..Default::default()
        })
        .collect();
    job.write::<crm_core::Lead>(o, leads).await
}

async fn opportunities(job: Job, mut o: OrgSeed) -> anyhow::Result<(OrgSeed, u64)> {
    let pipeline = o
        .tenant
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
    let (rng, accounts) = (&mut o.rng, &o.accounts);
    let opportunities: Vec<_> = (0..job.m / 20)
        .map(|i| NewOpportunity {
            name: format!("Deal {i}"),
            account_id: Some(accounts[rng.usize(..accounts.len())]),
            pipeline_id: Some(pipeline.id),
            stage_id: Some(stages[rng.usize(..stages.len())]),
            amount_minor: Some(rng.i64(1_000..10_000_000)),
            currency: Some(pick(rng, CURRENCIES).into()),
            ..Default::default()
        })
        .collect();
    job.write::<crm_core::Opportunity>(o, opportunities).await
}

async fn invoices(job: Job, mut o: OrgSeed) -> anyhow::Result<(OrgSeed, u64)> {
    let (rng, accounts) = (&mut o.rng, &o.accounts);
    let invoices: Vec<_> = (0..job.m / 50)
        .map(|_| NewInvoice {
            account_id: Some(accounts[rng.usize(..accounts.len())]),
            currency: pick(rng, CURRENCIES).into(),
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
    job.write::<crm_core::Invoice>(o, invoices).await
}

async fn activities(job: Job, mut o: OrgSeed) -> anyhow::Result<(OrgSeed, u64)> {
    let (rng, contacts) = (&mut o.rng, &o.contacts);
    let kinds = [
        ActivityKind::Note,
        ActivityKind::Call,
        ActivityKind::Meeting,
    ];
    let activities: Vec<_> = (0..job.m / 10)
        .map(|i| NewActivity {
            kind: kinds[rng.usize(..kinds.len())],
            subject: format!("Follow-up {i}"),
            related_entity: EntityKind::Contact,
            related_id: contacts[rng.usize(..contacts.len())].uuid(),
            ..Default::default()
        })
        .collect();
    job.write::<crm_core::Activity>(o, activities).await
}

pub(crate) async fn run(crm: &Crm, args: SeedArgs, out: Output) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let m = u64::from(args.records);
    let per_org = m + m / 10 * 2 + m / 5 + m / 20 + m / 50 + 1;
    let bar = ProgressBar::new(per_org * u64::from(args.orgs));
    bar.set_style(ProgressStyle::with_template(
        "{spinner} {pos}/{len} records {wide_bar} {per_sec} eta {eta}",
    )?);
    let job = Job {
        bar: bar.clone(),
        batch: args.batch as usize,
        m,
    };
    let jobs = args.jobs as usize;
    let mut counts = Counts::default();

    let mut orgs = Vec::with_capacity(args.orgs as usize);
    for n in 1..=args.orgs {
        orgs.push(organization(crm, args.seed, n).await?);
        bar.inc(1);
    }
    counts.organizations = orgs.len() as u64;
    counts
        .seconds_by_entity
        .insert("organizations", started.elapsed().as_secs_f64());

    macro_rules! phase {
        ($entity:literal, $step:ident) => {{
            let at = Instant::now();
            let (next, written) = each(orgs, jobs, |o| $step(job.clone(), o)).await?;
            orgs = next;
            counts.$step = written;
            counts
                .seconds_by_entity
                .insert($entity, at.elapsed().as_secs_f64());
        }};
    }
    phase!("accounts", accounts);
    phase!("contacts", contacts);
    phase!("leads", leads);
    phase!("opportunities", opportunities);
    phase!("invoices", invoices);
    phase!("activities", activities);
    drop(orgs);

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
