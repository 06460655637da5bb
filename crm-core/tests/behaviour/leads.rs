//! Leads: the status lifecycle and conversion.

use crm_core::{
    AccountId, Conversion, ConvertLead, ConvertOpportunity, CustomFieldType, EntityKind, Error,
    LeadId, LeadPatch, LeadSource, LeadStatus, NewAccount, NewContact, NewLead, Target,
};
use serde_json::json;

use crate::harness::{Fixtures as _, Org, assert_not_found};

fn lead(last: &str) -> NewLead {
    NewLead {
        first_name: Some("Ada".into()),
        last_name: Some(last.into()),
        email: Some(format!("ada@{}.test", last.to_lowercase())),
        phone: Some("+44 20 7946 0000".into()),
        company: Some(format!("{last} Ltd")),
        title: Some("CTO".into()),
        source: LeadSource::WebForm,
        ..Default::default()
    }
}

/// Converts lead `id` with a `ConvertLead` given as JSON, as a client sends it.
async fn convert_json(
    t: &crm_core::Tenant,
    id: LeadId,
    body: serde_json::Value,
) -> crm_core::Result<Conversion> {
    let body = serde_json::from_value(body).expect("a ConvertLead");
    t.leads().convert(id, body).await
}

async fn status_lifecycle(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    let l = t.leads().create(lead("Byron")).await.unwrap();
    assert_eq!((l.status, l.source), (LeadStatus::New, LeadSource::WebForm));
    let status = |s| LeadPatch {
        status: Some(s),
        ..Default::default()
    };

    // Forward, with a skip; disqualify; re-engage.
    let l = t
        .leads()
        .update(l.id, status(LeadStatus::Qualified))
        .await
        .unwrap();
    assert_eq!(l.status, LeadStatus::Qualified);
    let l = t
        .leads()
        .update(l.id, status(LeadStatus::Unqualified))
        .await
        .unwrap();
    let l = t
        .leads()
        .update(l.id, status(LeadStatus::Contacted))
        .await
        .unwrap();
    assert_eq!(l.status, LeadStatus::Contacted);

    // Invalid transitions.
    for bad in [LeadStatus::New, LeadStatus::Converted] {
        let err = t.leads().update(l.id, status(bad)).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e[0].code == "invalid_transition"),
            "{bad}: {err:?}"
        );
    }
    let err = t
        .leads()
        .create(NewLead {
            status: LeadStatus::Converted,
            ..lead("X")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "status"),
        "{err:?}"
    );
    // A lead needs something to call it by.
    let err = t.leads().create(NewLead::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "last_name"),
        "{err:?}"
    );
}

async fn conversion_creates_account_contact_and_opportunity(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    // A custom field that both leads and contacts define carries over; one only leads define
    // does not.
    let lead_fields = [
        ("linkedin", CustomFieldType::Url),
        ("campaign", CustomFieldType::Text),
    ];
    org.define_fields(&crm, EntityKind::Lead, &lead_fields)
        .await;
    org.define_fields(
        &crm,
        EntityKind::Contact,
        &[("linkedin", CustomFieldType::Url)],
    )
    .await;
    let t = org.user(&crm);
    let mut new = lead("Lovelace");
    new.owner_id = Some(org.user);
    new.custom_fields = json!({"linkedin": "https://linkedin.test/ada", "campaign": "spring"})
        .as_object()
        .cloned()
        .unwrap();
    let l = t.leads().create(new).await.unwrap();

    let c = t
        .leads()
        .convert(l.id, with_opportunity(500_000, "GBP"))
        .await
        .unwrap();
    assert_eq!(c.account.name, "Lovelace Ltd");
    assert_eq!(c.account.owner_id, Some(org.user));
    assert_eq!(c.contact.account_id, Some(c.account.id));
    assert_eq!(c.contact.email.as_deref(), Some("ada@lovelace.test"));
    assert_eq!(
        json!(c.contact.custom_fields),
        json!({"linkedin": "https://linkedin.test/ada"})
    );
    let o = c.opportunity.as_ref().unwrap();
    assert_eq!(
        (o.account_id, o.primary_contact_id),
        (Some(c.account.id), Some(c.contact.id))
    );
    assert_eq!(
        (o.amount_minor, o.currency.as_deref()),
        (Some(500_000), Some("GBP"))
    );
    assert_eq!(o.name, "Lovelace Ltd deal");
    assert_eq!(c.lead.status, LeadStatus::Converted);
    assert!(c.lead.converted_at.is_some());
    assert_eq!(c.lead.converted_account_id, Some(c.account.id));
    assert_eq!(c.lead.converted_contact_id, Some(c.contact.id));
    assert_eq!(c.lead.converted_opportunity_id, Some(o.id));

    // Twice is a conflict that names what the first conversion produced.
    let err = t
        .leads()
        .convert(l.id, ConvertLead::default())
        .await
        .unwrap_err();
    let Error::Conflict(refusal) = err else {
        panic!("{err:?}")
    };
    assert_eq!(refusal.code, "already_converted");
    let message = &refusal.message;
    assert!(
        message.contains(&c.account.id.to_string()) && message.contains(&o.id.to_string()),
        "{message}"
    );
    // A converted lead is read-only.
    let err = t
        .update_json(l.id, json!({ "title": "CEO" }))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    // The conversion is in the event log.
    let events = t.events().for_record(l.id, 10, None).await.unwrap();
    assert_eq!(events.data[0].action, crm_core::Action::Converted);
}

async fn conversion_links_existing_records_and_only_fills_empty_fields(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let account = t
        .accounts()
        .create(NewAccount {
            name: "Existing Inc".into(),
            phone: Some("+1 555".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let contact = t
        .contacts()
        .create(NewContact {
            last_name: Some("Keep".into()),
            email: Some("keep@x.test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let l = t.leads().create(lead("Overwrite")).await.unwrap();
    let c = t
        .leads()
        .convert(
            l.id,
            ConvertLead {
                account: Target::Existing(account.id),
                contact: Target::Existing(contact.id),
                opportunity: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(c.account.id, account.id);
    assert_eq!(c.account.name, "Existing Inc", "never overwritten");
    assert_eq!(
        c.account.phone.as_deref(),
        Some("+1 555"),
        "never overwritten"
    );
    assert_eq!(c.contact.last_name.as_deref(), Some("Keep"));
    assert_eq!(c.contact.email.as_deref(), Some("keep@x.test"));
    assert_eq!(
        c.contact.first_name.as_deref(),
        Some("Ada"),
        "empty fields are filled"
    );
    assert_eq!(c.contact.title.as_deref(), Some("CTO"));
    assert_eq!(c.contact.account_id, Some(account.id));
    assert!(c.opportunity.is_none());

    // A plain user linking an owned lead to an unowned account converts it, and the account
    // stays unowned: only company admins give a record an owner.
    let u = org.user(&crm);
    let unowned = t.account("Unowned Inc").await;
    let owned = u
        .leads()
        .create(NewLead {
            owner_id: Some(org.user),
            ..lead("Owned")
        })
        .await
        .unwrap();
    let target = ConvertLead {
        account: Target::Existing(unowned.id),
        ..Default::default()
    };
    let c = u.leads().convert(owned.id, target).await.unwrap();
    assert_eq!(c.account.owner_id, None);
    assert_eq!(
        c.contact.owner_id,
        Some(org.user),
        "a new contact takes the lead's owner"
    );
}

async fn failed_conversion_leaves_nothing_behind(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Other").await;
    let t = org.admin(&crm);
    let l = t.leads().create(lead("Rollback")).await.unwrap();
    let accounts_before = t
        .accounts()
        .list(&Default::default())
        .await
        .unwrap()
        .data
        .len();

    // The opportunity step fails (bad currency) after account and contact were created.
    let bad = with_opportunity(1, "euro");
    let err = t.leads().convert(l.id, bad).await.unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "currency"),
        "{err:?}"
    );
    // Another organization's account is not found, and nothing is created either.
    let theirs = other.admin(&crm).account("T").await;
    let err = convert_json(&t, l.id, json!({ "account": { "existing": theirs.id } }))
        .await
        .unwrap_err();
    assert_not_found(&err, "account");
    let err = convert_json(
        &t,
        l.id,
        json!({ "account": { "existing": AccountId::new() } }),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    assert_eq!(
        t.accounts()
            .list(&Default::default())
            .await
            .unwrap()
            .data
            .len(),
        accounts_before
    );
    assert!(
        t.contacts()
            .list(&Default::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert!(
        t.opportunities()
            .list(&Default::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let l = t.leads().get(l.id).await.unwrap();
    assert_eq!((l.status, l.version), (LeadStatus::New, 1));
    // A lead with only a company cannot make a contact, but can be linked to an existing one.
    let company_only = t
        .leads()
        .create(NewLead {
            company: Some("Only Co".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = t
        .leads()
        .convert(company_only.id, ConvertLead::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "contact"),
        "{err:?}"
    );
    let existing = t.contact("Known").await;
    let c = convert_json(
        &t,
        company_only.id,
        json!({ "contact": { "existing": existing.id } }),
    )
    .await
    .unwrap();
    assert_eq!(
        (c.account.name.as_str(), c.contact.account_id),
        ("Only Co", Some(c.account.id))
    );
    // Unqualified leads are not converted.
    let l = t
        .update_json(l.id, json!({ "status": LeadStatus::Unqualified }))
        .await
        .unwrap();
    assert!(matches!(
        t.leads().convert(l.id, ConvertLead::default()).await,
        Err(Error::Conflict(_))
    ));
}

crate::on_both_backends!(
    status_lifecycle,
    conversion_creates_account_contact_and_opportunity,
    conversion_links_existing_records_and_only_fills_empty_fields,
    failed_conversion_leaves_nothing_behind,
);

mod erasure {
    use crm_core::record::ErasedRecord;
    use crm_core::{
        Action, ActivityKind, Conversion, ConvertLead, EntityKind, Error, Lead, NewActivity,
        NewContact, NewLead, NewOpportunity, Record,
    };

    use crate::harness::Org;

    async fn erase_removes_the_person_and_what_the_log_said(crm: crm_core::Crm) {
        let org = Org::new(&crm, "Acme").await;
        let t = org.admin(&crm);
        let ada = t
            .contacts()
            .create(NewContact {
                first_name: Some("Ada".into()),
                email: Some("ada@secret.test".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        t.contacts()
            .update(
                ada.id,
                crm_core::ContactPatch {
                    phone: Some(Some("+1 555".into())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let deal = t
            .opportunities()
            .create(NewOpportunity {
                name: "Deal".into(),
                primary_contact_id: Some(ada.id),
                ..Default::default()
            })
            .await
            .unwrap();
        let note = NewActivity {
            kind: ActivityKind::Note,
            subject: "Ada's private phone is +1 555".into(),
            related_entity: EntityKind::Contact,
            related_id: ada.id.uuid(),
            ..Default::default()
        };
        let note = t.activities().create(note).await.unwrap();

        // Plain users may not erase; another organization's admin finds nothing.
        assert!(matches!(
            org.user(&crm).contacts().erase(ada.id).await,
            Err(Error::Forbidden(_))
        ));
        let other = Org::new(&crm, "Other").await;
        assert!(matches!(
            other.admin(&crm).contacts().erase(ada.id).await,
            Err(Error::NotFound { .. })
        ));

        let erased = t.contacts().erase(ada.id).await.unwrap();
        assert_eq!((erased.unlinked, erased.activities_removed), (1, 1));
        assert!(erased.events_scrubbed >= 3, "{erased:?}");
        assert!(matches!(
            t.contacts().get_including_deleted(ada.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            t.activities().get_including_deleted(note.id).await,
            Err(Error::NotFound { .. })
        ));
        let deal = t.opportunities().get(deal.id).await.unwrap();
        assert_eq!(
            (deal.primary_contact_id, deal.version),
            (None, 2),
            "unlinked, as a logged update"
        );

        // Nothing in the log says who Ada was; a tombstone says she was erased.
        let log = t.events().recent(100, None).await.unwrap();
        let text = serde_json::to_string(&log.data).unwrap();
        assert!(
            !text.contains("ada@secret.test") && !text.contains("+1 555") && !text.contains("Ada"),
            "{text}"
        );
        let about: Vec<_> = log
            .data
            .iter()
            .filter(|e| e.record_id == ada.id.uuid())
            .map(|e| e.action)
            .collect();
        assert_eq!(about, [Action::Erased, Action::Updated, Action::Created]);
        assert!(matches!(
            t.contacts().erase(ada.id).await,
            Err(Error::NotFound { .. })
        ));
    }

    async fn erase_a_converted_lead_and_its_contact(crm: crm_core::Crm) {
        let org = Org::new(&crm, "Acme").await;
        let t = org.admin(&crm);
        let (lead, c) = converted(
            &t,
            NewLead {
                company: Some("Cobol Corp".into()),
                ..grace()
            },
        )
        .await;
        // The lead and the contact it became are the same person: erasing either erases both.
        let erased = t.contacts().erase(c.contact.id).await.unwrap();
        assert_eq!(
            erased.also_erased,
            [ErasedRecord {
                entity: "lead",
                id: lead.id.uuid()
            }]
        );
        assert!(matches!(
            t.leads().get_including_deleted(lead.id).await,
            Err(Error::NotFound { .. })
        ));
        t.accounts().get(c.account.id).await.unwrap();
        let text = log_text(&t).await;
        assert!(
            !text.contains("grace@secret.test") && !text.contains("Hopper"),
            "{text}"
        );
    }

    fn grace() -> NewLead {
        NewLead {
            first_name: Some("Grace".into()),
            last_name: Some("Hopper".into()),
            email: Some("grace@secret.test".into()),
            ..Default::default()
        }
    }

    async fn converted(t: &crm_core::Tenant, new: NewLead) -> (Record<Lead>, Conversion) {
        let lead = t.leads().create(new).await.unwrap();
        let c = t
            .leads()
            .convert(lead.id, ConvertLead::default())
            .await
            .unwrap();
        (lead, c)
    }

    /// Everything the organization's event log says, as one text.
    async fn log_text(t: &crm_core::Tenant) -> String {
        serde_json::to_string(&t.events().recent(100, None).await.unwrap().data).unwrap()
    }

    /// A lead without a company converts into an account named after the person: erasure
    /// refuses while it holds the name, and once renamed, blanks what the log said about it.
    async fn erase_refuses_while_a_copy_holds_the_name(crm: crm_core::Crm) {
        let org = Org::new(&crm, "Acme").await;
        let t = org.admin(&crm);
        let (lead, c) = converted(&t, grace()).await;
        assert_eq!(c.account.name, "Grace Hopper");
        let Err(Error::Conflict(refusal)) = t.leads().erase(lead.id).await else {
            panic!("an account still holds her name");
        };
        assert_eq!(refusal.code, "personal_data_elsewhere");
        assert!(
            refusal.message.contains(&c.account.id.to_string()),
            "{refusal:?}"
        );
        t.leads().get(lead.id).await.unwrap();

        t.accounts()
            .update(
                c.account.id,
                crm_core::AccountPatch {
                    name: Some("Customer 42".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let erased = t.leads().erase(lead.id).await.unwrap();
        assert_eq!(erased.also_erased.len(), 1, "and her contact");
        let text = log_text(&t).await;
        assert!(
            !text.contains("Grace Hopper") && !text.contains("grace@secret.test"),
            "the account's own events named her: {text}"
        );
    }

    /// A stored `Idempotency-Key` response that named the person is dropped: a repeat neither
    /// replays her nor creates her again.
    async fn erase_drops_stored_responses(crm: crm_core::Crm) {
        use crm_core::auth::{Begin, StoredResponse};
        let org = Org::new(&crm, "Acme").await;
        let t = org.admin(&crm);
        let ttl = std::time::Duration::from_secs(60);
        assert_eq!(
            t.idempotency().begin("k", "fp", ttl).await.unwrap(),
            Begin::Started
        );
        let ada = t
            .contacts()
            .create(NewContact {
                first_name: Some("Ada".into()),
                email: Some("ada@secret.test".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let body = serde_json::to_string(&ada).unwrap();
        let stored = StoredResponse {
            status: 201,
            headers: "{}".into(),
            body,
        };
        t.idempotency().complete("k", &stored).await.unwrap();
        let erased = t.contacts().erase(ada.id).await.unwrap();
        assert_eq!(erased.responses_scrubbed, 1);
        assert_eq!(
            t.idempotency().begin("k", "fp", ttl).await.unwrap(),
            Begin::Erased
        );
    }

    crate::on_both_backends!(
        erase_removes_the_person_and_what_the_log_said,
        erase_a_converted_lead_and_its_contact,
        erase_refuses_while_a_copy_holds_the_name,
        erase_drops_stored_responses,
    );
}

/// A conversion that also makes an opportunity of `amount_minor` in `currency`.
fn with_opportunity(amount_minor: i64, currency: &str) -> ConvertLead {
    ConvertLead {
        opportunity: Some(ConvertOpportunity {
            amount_minor: Some(amount_minor),
            currency: Some(currency.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
