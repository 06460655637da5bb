//! The library embedded in a program, no HTTP: an organization, accounts and contacts, a list
//! paged through, a record soft-deleted and restored, and the audit trail.
//!
//! ```sh
//! cargo run --example embedded                                  # SQLite in memory
//! DATABASE_URL=postgres://postgres@127.0.0.1/crm cargo run --example embedded
//! ```

use abetworks_crm::{
    AccountPatch, Crm, Direction, ListQuery, NewAccount, NewContact, NewOrganization, NewUser, Op,
    Role, TenantContext,
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
    let events = t
        .events()
        .for_record("account", globex.id, 10, None)
        .await?;
    for e in events.data {
        println!(
            "  {} {} by {:?}: {}",
            e.occurred_at.format("%H:%M:%S%.3f"),
            e.action,
            e.actor_id,
            serde_json::Value::Object(e.changes)
        );
    }
    crm.close().await;
    Ok(())
}
