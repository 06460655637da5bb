//! Converting a lead, as Salesforce's `convertLead`: in one transaction, create or link an
//! account and a contact, optionally create an opportunity, and mark the lead converted.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::custom_fields;
use crate::entities::{
    Account, AccountId, Contact, ContactId, Lead, LeadId, LeadStatus, NewAccount, NewContact,
    NewOpportunity, Opportunity,
};
use crate::error::{Error, Result};
use crate::events::Action;
use crate::pipelines::{PipelineId, StageId};
use crate::record::{Entity, Operation, Record, Records};
use crate::storage::Tx;
use crate::tenant::Tenant;
use crate::time::now;

/// Create a new record, or link an existing one (whose empty fields the lead then fills; nothing
/// is overwritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Target<I> {
    /// Create it from the lead.
    #[default]
    Create,
    /// Link this existing record (live, same organization).
    Existing(I),
}

/// The opportunity a conversion creates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConvertOpportunity {
    /// Name; `"<company or lead name> deal"` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Amount in minor units.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// ISO 4217 currency of the amount.
    #[serde(default)]
    pub currency: Option<String>,
    /// Expected close date.
    #[serde(default)]
    pub expected_close_date: Option<NaiveDate>,
    /// Pipeline (default pipeline when absent).
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
    /// Stage (first stage when absent).
    #[serde(default)]
    pub stage_id: Option<StageId>,
}

/// What a conversion should produce.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConvertLead {
    /// The account.
    #[serde(default)]
    pub account: Target<AccountId>,
    /// The contact.
    #[serde(default)]
    pub contact: Target<ContactId>,
    /// The opportunity, if one should be created.
    #[serde(default)]
    pub opportunity: Option<ConvertOpportunity>,
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversion {
    /// The lead, now `converted`.
    pub lead: Record<Lead>,
    /// The account created or linked.
    pub account: Record<Account>,
    /// The contact created or linked.
    pub contact: Record<Contact>,
    /// The opportunity created, if asked for.
    pub opportunity: Option<Record<Opportunity>>,
}

impl Records<'_, Lead> {
    /// Converts lead `id`. All or nothing: if any step fails, nothing was created or changed.
    ///
    /// Custom fields carry over to each target where that entity defines the same key with the
    /// same type.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the lead was already converted (naming what it produced) or is
    /// unqualified; [`Error::NotFound`] for a linked record that is not a live record of this
    /// organization; [`Error::Validation`] for an invalid opportunity.
    pub async fn convert(&self, id: LeadId, request: ConvertLead) -> Result<Conversion> {
        let tenant = self.tenant();
        let request = &request;
        tenant
            .retrying(|| async move {
                let mut s = tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = convert_in(tenant, &mut tx, id, request.clone()).await;
                tx.settle(out).await
            })
            .await
    }
}

async fn convert_in(
    t: &Tenant,
    tx: &mut Tx<'_>,
    id: LeadId,
    request: ConvertLead,
) -> Result<Conversion> {
    let leads = t.records::<Lead>();
    let lead = leads
        .lock_in(
            tx,
            id,
            crate::Deleted::Exclude,
            None,
            crate::access::Need::Write,
        )
        .await?;
    match lead.status {
        LeadStatus::Converted => {
            let mut produced = vec![
                format!("account {}", opt(lead.converted_account_id)),
                format!("contact {}", opt(lead.converted_contact_id)),
            ];
            if let Some(o) = lead.converted_opportunity_id {
                produced.push(format!("opportunity {o}"));
            }
            return Err(Error::conflict(
                "already_converted",
                format!(
                    "lead {id} was already converted into {}",
                    produced.join(", ")
                ),
            ));
        }
        LeadStatus::Unqualified => {
            return Err(Error::conflict(
                "unqualified",
                format!("lead {id} is unqualified; re-engage it before converting"),
            ));
        }
        _ => {}
    }
    let op = Operation::Verb(Action::Converted);
    // Only company admins give an unowned record an owner (record/ownership.rs): for anyone
    // else, linking keeps the existing record's owner as it is.
    let may_assign = crate::access::roles::is_admin(t.context());
    let name = lead.full_name();
    let company = lead
        .company
        .clone()
        .or_else(|| name.clone())
        .unwrap_or_else(|| "Unnamed".into());

    // The account.
    let custom = carried::<Account>(t, tx, &lead.custom_fields).await?;
    let account = match request.account {
        Target::Create => {
            let new = NewAccount {
                name: company.clone(),
                phone: lead.phone.clone(),
                owner_id: lead.owner_id,
                custom_fields: custom,
                ..Default::default()
            };
            t.accounts().create_in(tx, new).await?
        }
        Target::Existing(account_id) => {
            t.accounts()
                .change_in(tx, account_id, None, op, Action::Updated, |a| {
                    let mut f = a.fields.clone();
                    fill(&mut f.phone, &lead.phone);
                    if may_assign {
                        fill(&mut f.owner_id, &lead.owner_id);
                    }
                    Ok((f, fill_custom(&a.custom_fields, custom)))
                })
                .await?
        }
    };

    // The contact, working at the account.
    let custom = carried::<Contact>(t, tx, &lead.custom_fields).await?;
    let contact = match request.contact {
        Target::Create if name.is_none() && lead.email.is_none() => {
            return Err(Error::invalid(
                "contact",
                "required",
                "the lead has no name or email to create a contact from; link an existing contact instead",
            ));
        }
        Target::Create => {
            let new = NewContact {
                first_name: lead.first_name.clone(),
                last_name: lead.last_name.clone(),
                email: lead.email.clone(),
                phone: lead.phone.clone(),
                title: lead.title.clone(),
                account_id: Some(account.id),
                owner_id: lead.owner_id,
                custom_fields: custom,
                ..Default::default()
            };
            t.contacts().create_in(tx, new).await?
        }
        Target::Existing(contact_id) => {
            t.contacts()
                .change_in(tx, contact_id, None, op, Action::Updated, |c| {
                    let mut f = c.fields.clone();
                    fill(&mut f.first_name, &lead.first_name);
                    fill(&mut f.last_name, &lead.last_name);
                    fill(&mut f.email, &lead.email);
                    fill(&mut f.phone, &lead.phone);
                    fill(&mut f.title, &lead.title);
                    fill(&mut f.account_id, &Some(account.id));
                    if may_assign {
                        fill(&mut f.owner_id, &lead.owner_id);
                    }
                    Ok((f, fill_custom(&c.custom_fields, custom)))
                })
                .await?
        }
    };

    // The opportunity.
    let opportunity = match request.opportunity {
        None => None,
        Some(o) => {
            let new = NewOpportunity {
                name: o.name.unwrap_or_else(|| format!("{company} deal")),
                account_id: Some(account.id),
                primary_contact_id: Some(contact.id),
                owner_id: lead.owner_id,
                pipeline_id: o.pipeline_id,
                stage_id: o.stage_id,
                amount_minor: o.amount_minor,
                currency: o.currency,
                expected_close_date: o.expected_close_date,
                description: None,
                custom_fields: carried::<Opportunity>(t, tx, &lead.custom_fields).await?,
            };
            Some(t.opportunities().create_in(tx, new).await?)
        }
    };

    // The lead itself.
    let lead = leads
        .change_in(tx, id, None, op, Action::Converted, |l| {
            let mut f = l.fields.clone();
            f.status = LeadStatus::Converted;
            f.converted_at = Some(now());
            f.converted_account_id = Some(account.id);
            f.converted_contact_id = Some(contact.id);
            f.converted_opportunity_id = opportunity.as_ref().map(|o| o.id);
            Ok((f, l.custom_fields.clone()))
        })
        .await?;
    Ok(Conversion {
        lead,
        account,
        contact,
        opportunity,
    })
}

fn opt(id: Option<impl std::fmt::Display>) -> String {
    id.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
}

/// Sets `target` from `source` only when `target` is empty.
fn fill<T: Clone>(target: &mut Option<T>, source: &Option<T>) {
    if target.is_none() {
        target.clone_from(source);
    }
}

/// `current` plus the carried keys it does not have yet.
fn fill_custom(current: &Map<String, Value>, carried: Map<String, Value>) -> Map<String, Value> {
    let mut out = current.clone();
    for (k, v) in carried {
        out.entry(k).or_insert(v);
    }
    out
}

/// The lead's custom fields that entity `E` defines with the same key and type (and not
/// archived).
async fn carried<E: Entity>(
    t: &Tenant,
    tx: &mut Tx<'_>,
    values: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    if values.is_empty() {
        return Ok(Map::new());
    }
    let from = custom_fields::load(t, Lead::NAME, &mut tx.conn()).await?;
    let to = custom_fields::load(t, E::NAME, &mut tx.conn()).await?;
    Ok(values
        .iter()
        .filter(|(k, v)| match (from.get(k), to.get(k)) {
            (Some(a), Some(b)) => {
                a.field_type == b.field_type
                    && !b.archived
                    && custom_fields::normalize(b, v).is_ok()
            }
            _ => false,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}
