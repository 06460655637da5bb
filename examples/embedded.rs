//! The library embedded in a program, no HTTP: an organization, a typed custom field, accounts
//! and contacts, a list paged through, a record soft-deleted and restored, the audit trail, a
//! lead converted into an account, contact and opportunity, the deal won and an invoice issued.
//!
//! ```sh
//! cargo run --example embedded                                  # SQLite in memory
//! DATABASE_URL=postgres://postgres@127.0.0.1/crm cargo run --example embedded
//! ```

use abetworks_crm::sqlx::types::Json;
use abetworks_crm::{
    AccountPatch, ConvertLead, ConvertOpportunity, Crm, CustomFieldType, Direction, EntityKind,
    LeadSource, LineItem, ListQuery, NewAccount, NewContact, NewCustomField, NewInvoice, NewLead,
    NewOrganization, NewUser, Op, Role, TenantContext, TimelineItem,
};
use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let crm = Crm::connect(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    println!("connected to {:?} and migrated", crm.backend());

    // An organization (tenant) and its first admin, created by the system.
    let org = crm
        .organizations()
        .create(NewOrganization {
            name: format!("Acme {}", std::process::id()),
            slug: None,
        })
        .await?;
    let admin = crm
        .tenant(&TenantContext::system(org.id))
        .users()
        .create(NewUser {
            email: "ada@acme.test".into(),
            name: "Ada".into(),
            password: None,
            role: Role::CompanyAdmin,
        })
        .await?;
    println!(
        "organization {} ({}) with admin {}",
        org.name, org.slug, admin.email
    );

    // From here on, everything happens as Ada, inside her organization.
    let t = crm.tenant(&TenantContext::user(org.id, admin.id, Role::CompanyAdmin));

    // A typed custom field: values are checked against it, and filters compare by its type.
    let mut tier = NewCustomField::new("tier", "Customer tier", CustomFieldType::Select);
    tier.options = vec!["gold".into(), "silver".into()];
    t.custom_fields().define(EntityKind::Account, tier).await?;
    println!("defined the custom field account.tier (gold | silver)");
    let mut accounts = Vec::new();
    for (name, industry) in [
        ("Globex", "Energy"),
        ("Initech", "Software"),
        ("Umbrella", "Pharma"),
        ("Hooli", "Software"),
    ] {
        let mut new = NewAccount {
            name: name.into(),
            industry: Some(industry.into()),
            ..Default::default()
        };
        new.custom_fields.insert(
            "tier".into(),
            serde_json::json!(if name.len() > 5 { "gold" } else { "silver" }),
        );
        accounts.push(t.accounts().create(new).await?);
    }
    println!("created {} accounts", accounts.len());

    for (i, account) in accounts.iter().enumerate() {
        for j in 0..3 {
            t.contacts()
                .create(NewContact {
                    first_name: Some(["Hank", "Peter", "Alice"][j].into()),
                    last_name: Some(format!("{}-{i}", account.name)),
                    email: Some(format!(
                        "{}.{j}@{}.test",
                        ["hank", "peter", "alice"][j],
                        account.name.to_lowercase()
                    )),
                    account_id: Some(account.id),
                    ..Default::default()
                })
                .await?;
        }
    }
    println!("created 12 contacts");

    // Page through contacts, 5 at a time, sorted by last name.
    let mut query = ListQuery::default()
        .sort("last_name", Direction::Asc)
        .limit(5);
    let mut page_no = 1;
    loop {
        let page = t.contacts().list(&query).await?;
        let names: Vec<_> = page
            .data
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.first_name.as_deref().unwrap_or(""),
                    c.last_name.as_deref().unwrap_or("")
                )
            })
            .collect();
        println!("page {page_no}: {}", names.join(", "));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        page_no += 1;
    }

    // Filters on standard and custom fields.
    let software = t
        .accounts()
        .list(&ListQuery::default().filter("industry", Op::Eq, "Software"))
        .await?;
    let gold = t
        .accounts()
        .list(&ListQuery::default().filter("custom_fields.tier", Op::Eq, "gold"))
        .await?;
    println!(
        "software accounts: {}; gold tier: {}",
        software
            .data
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        gold.data
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // An update with an optimistic version check, then soft delete and restore.
    let globex = &accounts[0];
    let globex = t
        .accounts()
        .update_if_version(
            globex.id,
            globex.version,
            AccountPatch {
                city: Some(Some("Springfield".into())),
                ..Default::default()
            },
        )
        .await?;
    println!(
        "updated {} to version {} (city {:?})",
        globex.name, globex.version, globex.city
    );
    t.accounts().delete(globex.id).await?;
    let live = t.accounts().list(&ListQuery::default()).await?.data.len();
    println!("soft-deleted {}: {live} live accounts remain", globex.name);
    let restored = t.accounts().restore(globex.id).await?;
    println!("restored {} (version {})", restored.name, restored.version);

    // The audit trail of that account, newest first.
    let events = t.events().for_record(globex.id, 10, None).await?;
    for e in events.data {
        println!(
            "  {} {} by {:?}: {}",
            e.occurred_at.format("%H:%M:%S%.3f"),
            e.action,
            e.actor_id,
            serde_json::Value::Object(e.changes)
        );
    }

    // A lead from a web form, converted in one transaction into an account, a contact and an
    // opportunity; the deal is won and invoiced.
    let lead = t
        .leads()
        .create(NewLead {
            first_name: Some("Grace".into()),
            last_name: Some("Hopper".into()),
            email: Some("grace@cobol.test".into()),
            company: Some("Cobol Systems".into()),
            source: LeadSource::WebForm,
            ..Default::default()
        })
        .await?;
    let request = ConvertLead {
        opportunity: Some(ConvertOpportunity {
            amount_minor: Some(1_200_000),
            currency: Some("EUR".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let converted = t.leads().convert(lead.id, request).await?;
    let deal = converted
        .opportunity
        .context("the conversion was asked for an opportunity")?;
    println!(
        "converted lead {} into account {:?}, contact {:?} and opportunity {:?}",
        lead.full_name().unwrap_or_default(),
        converted.account.name,
        converted.contact.email.as_deref().unwrap_or(""),
        deal.name
    );
    let won = t.opportunities().close_won(deal.id).await?;
    println!(
        "opportunity {:?} is {} (closed at {:?})",
        won.name, won.status, won.closed_at
    );

    let invoice = t
        .invoices()
        .create(NewInvoice {
            account_id: Some(converted.account.id),
            opportunity_id: Some(won.id),
            currency: "EUR".into(),
            due_date: Some(chrono::Utc::now().date_naive() + chrono::Days::new(30)),
            line_items: Json(vec![
                LineItem::new("Compiler licence", 1, 1_000_000, 2000),
                LineItem::new("Onboarding days", 2, 100_000, 2000),
            ]),
            ..Default::default()
        })
        .await?;
    let invoice = t.invoices().send(invoice.id).await?;
    println!(
        "invoice {} {}: subtotal {} + tax {} = total {} (minor units of {})",
        invoice.number,
        invoice.status,
        invoice.subtotal_minor,
        invoice.tax_minor,
        invoice.total_minor,
        invoice.currency
    );

    let summary = t
        .pipelines()
        .summary(
            won.pipeline_id
                .context("every opportunity has a pipeline")?,
        )
        .await?;
    for stage in summary.stages.iter().filter(|s| s.count > 0) {
        println!(
            "pipeline {:?}, stage {:?}: {} opportunity(ies)",
            summary.pipeline.name, stage.stage.name, stage.count
        );
    }
    let timeline = t
        .timeline(EntityKind::Opportunity, won.id, 10, None)
        .await?;
    for item in timeline.data {
        if let TimelineItem::Event(e) = item {
            println!(
                "  opportunity {} at {}",
                e.action,
                e.occurred_at.format("%H:%M:%S%.3f")
            );
        }
    }

    crm.close().await;
    Ok(())
}
