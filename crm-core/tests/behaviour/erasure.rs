//! Erasure finds the person wherever the library put them: in the records merged into the one
//! erased, in other records' history and the change feed however the value was written (letter
//! case, JSON escaping), in linked records that hold the name, and in the side tables of
//! duplicate detection and unique custom fields. Both backends agree.

use std::collections::BTreeSet;

use crm_core::record::ErasedRecord;
use crm_core::sqlx::{self, Connection as _};
use crm_core::{
    Account, Contact, Crm, CustomFieldType, Deleted, EntityKind, Error, ListQuery, Merge,
    NewCustomField, Opportunity, Tenant,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{self, Fixtures as _, Org};

/// Everything the organization's event log and change feed say, as one lower-cased text.
async fn log_text(t: &Tenant) -> String {
    let log = t.events().recent(100, None).await.unwrap();
    let feed = t.changes().after(None, 1_000).await.unwrap();
    assert!(feed.next_cursor.is_none(), "one page of the feed");
    let text = serde_json::to_string(&(log.data, feed.data)).unwrap();
    text.to_lowercase()
}

/// `value` as it shows in JSON text (quotes and backslashes escaped), lower-cased.
fn as_in_json(value: &str) -> String {
    let quoted = serde_json::to_string(&value.to_lowercase()).unwrap();
    quoted[1..quoted.len() - 1].to_owned()
}

#[track_caller]
fn assert_forgotten(text: &str, values: &[&str]) {
    for v in values {
        assert!(!text.contains(&as_in_json(v)), "{v:?} is still in: {text}");
    }
}

fn merge(absorb: Uuid) -> Merge {
    Merge {
        absorb: vec![absorb],
        fields: Default::default(),
    }
}

/// Ada twice, merged, and the survivor merged into a third record: erasing the last survivor
/// erases both records it absorbed (found through the merge redirects), and scrubs what they
/// held.
async fn erasing_a_survivor_erases_what_it_absorbed(crm: Crm) {
    let org = Org::new(&crm, "Merged").await;
    let t = org.admin(&crm);
    let x = t
        .create_json::<Contact>(json!({
            "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@secret.test", "phone": "+44 20 7946 0000",
        }))
        .await
        .unwrap();
    let y = t
        .create_json::<Contact>(json!({
            "first_name": "Ada", "last_name": "Lovelace", "email": "countess@secret.test",
        }))
        .await
        .unwrap();
    let z = t
        .create_json::<Contact>(json!({ "last_name": "King", "mobile": "+44 77 0090 0123" }))
        .await
        .unwrap();
    t.contacts().merge(y.id, merge(x.id.uuid())).await.unwrap();
    t.contacts().merge(z.id, merge(y.id.uuid())).await.unwrap();
    let text = log_text(&t).await;
    assert!(text.contains("ada@secret.test"), "{text}");

    let erased = t.contacts().erase(z.id).await.unwrap();
    let also: BTreeSet<(&str, Uuid)> = erased
        .also_erased
        .iter()
        .map(|ErasedRecord { entity, id }| (*entity, *id))
        .collect();
    assert_eq!(
        also,
        BTreeSet::from([("contact", x.id.uuid()), ("contact", y.id.uuid())])
    );
    for id in [x.id, y.id, z.id] {
        let err = t.contacts().get_including_deleted(id).await.unwrap_err();
        harness::assert_not_found(&err, "contact");
    }
    let trash = t
        .contacts()
        .list(&ListQuery::default().deleted(Deleted::Only))
        .await
        .unwrap();
    assert!(trash.data.is_empty(), "{trash:?}");
    assert_forgotten(
        &log_text(&t).await,
        &[
            "ada@secret.test",
            "+44 20 7946 0000",
            "countess@secret.test",
            "+44 77 0090 0123",
            "Ada Lovelace",
            "Lovelace",
        ],
    );
}

/// The values erasure looks for are found in other records' history and in linked records
/// however they were written: in other letter case, and with `"` or `\` in the name (which JSON
/// text escapes). Run on both backends, which must agree.
async fn erasure_finds_values_in_any_case_and_escaped(crm: Crm) {
    let org = Org::new(&crm, "Written").await;
    let t = org.admin(&crm);
    let (first, last) = (r#"Jo "JJ""#, r"Back\Slash");
    let name = format!("{first} {last}");
    let email = "Jo.Back@Secret.test";
    let account = t.account(&name.to_uppercase()).await;
    let jo = t
        .create_json::<Contact>(json!({
            "first_name": first, "last_name": last, "email": email,
            "account_id": account.id,
        }))
        .await
        .unwrap();
    // Other records' history holds her email in other letter case, and her name as written.
    let mut deals = Vec::new();
    for fields in [
        json!({ "name": format!("Deal with {}", email.to_lowercase()) }),
        json!({ "name": "Fair", "description": format!("Met {name} at the fair") }),
    ] {
        let deal = t.create_json::<Opportunity>(fields).await.unwrap();
        t.update_json(deal.id, json!({ "name": "Deal 7", "description": null }))
            .await
            .unwrap();
        deals.push(deal.id);
    }
    let text = log_text(&t).await;
    assert!(text.contains(&as_in_json(&name)), "{text}");

    // The linked account holds her name (upper-cased): refused on both backends.
    let Err(Error::Conflict(refusal)) = t.contacts().erase(jo.id).await else {
        panic!("the account still holds her name");
    };
    assert_eq!(refusal.code, "personal_data_elsewhere");
    assert!(
        refusal.message.contains(&account.id.to_string()),
        "{refusal:?}"
    );
    t.contacts().get(jo.id).await.unwrap();

    t.update_json::<Account>(account.id, json!({ "name": "Customer 42" }))
        .await
        .unwrap();
    t.contacts().erase(jo.id).await.unwrap();
    assert_forgotten(&log_text(&t).await, &[email, &name]);
    for deal in deals {
        assert_eq!(t.opportunities().get(deal).await.unwrap().name, "Deal 7");
    }
}

crate::on_both_backends!(
    erasing_a_survivor_erases_what_it_absorbed,
    erasure_finds_values_in_any_case_and_escaped,
);

/// The values in the duplicate-match keys and unique custom-field values of the organization,
/// read on a connection of the test's own to `url` (bound to organization `org`, so that
/// row-level security shows its rows).
async fn side_values(url: &str, org: Uuid) -> Vec<String> {
    let sql = "select value from record_match_keys union all select value from custom_field_unique_values";
    let rows: Vec<(String,)> = if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("select set_config('crm.org_id', $1, false)")
            .bind(org.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    };
    rows.into_iter().map(|(v,)| v).collect()
}

/// A person with unique custom values and match keys, in two records merged into one: erasure leaves no row of hers in either side table.
async fn erasure_empties_the_side_tables(crm: Crm, url: &str) {
    let org = Org::new(&crm, "Keys").await;
    let t = org.admin(&crm);
    let mut badge = NewCustomField::new("badge_email", "Badge", CustomFieldType::Email);
    badge.unique = true;
    t.custom_fields()
        .define(EntityKind::Contact, badge)
        .await
        .unwrap();
    let x = t
        .create_json::<Contact>(json!({
            "first_name": "Grace", "last_name": "Hopper", "email": "grace@secret.test",
            "custom_fields": { "badge_email": "g1@secret.test" },
        }))
        .await
        .unwrap();
    let y = t
        .create_json::<Contact>(json!({
            "first_name": "Grace", "last_name": "Hopper", "email": "hopper@secret.test",
            "custom_fields": { "badge_email": "g2@secret.test" },
        }))
        .await
        .unwrap();
    t.contacts().merge(y.id, merge(x.id.uuid())).await.unwrap();
    let held = |values: &[String]| {
        values
            .iter()
            .filter(|v| v.contains("secret.test") || v.contains("hopper"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        !held(&side_values(url, org.id.uuid()).await).is_empty(),
        "her keys are there to erase"
    );
    t.contacts().erase(y.id).await.unwrap();
    assert_eq!(
        held(&side_values(url, org.id.uuid()).await),
        Vec::<String>::new()
    );
    // Her values are free again.
    t.create_json::<Contact>(
        json!({ "last_name": "Other", "custom_fields": { "badge_email": "g2@secret.test" } }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn sqlite_erasure_empties_the_side_tables() {
    let path = std::env::temp_dir().join(format!("crm-erasure-{}.db", Uuid::now_v7().simple()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let crm = harness::connect(&url).await.expect("SQLite file");
    erasure_empties_the_side_tables(crm.clone(), &url).await;
    crm.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn postgres_erasure_empties_the_side_tables() {
    let Some((crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    erasure_empties_the_side_tables(crm, &url).await;
}
