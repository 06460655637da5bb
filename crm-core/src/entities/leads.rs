//! Leads: people or companies that might become customers, with a status lifecycle.
//! Conversion into an account, a contact and an opportunity is in `lead_conversion.rs`.

use chrono::{DateTime, Utc};

use crate::entities::EntityKind;
use crate::entities::{AccountId, ContactId, OpportunityId};
use crate::error::{Error, Result};
use crate::events::Action;
use crate::id::Id;
use crate::record::{Entity, MatchOn, MatchRule, Operation, WriteContext};
use crate::users::UserId;
use crate::validation::Validator;

/// The id of a lead.
pub type LeadId = Id<Lead>;

crate::text_enum! {
    /// Where a lead came from.
    pub enum LeadSource {
        /// Entered by a user.
        Manual = "manual",
        /// Posted by a web form.
        WebForm = "web_form",
        /// Imported from a file.
        Import = "import",
        /// Created through the API.
        Api = "api",
        /// Referred by someone.
        Referral = "referral",
        /// Met at an event.
        Event = "event",
        /// Anything else.
        Other = "other",
    }
}

crate::text_enum! {
    /// Where a lead stands: `new → contacted → qualified → converted`, or `unqualified`.
    pub enum LeadStatus {
        /// Not worked yet.
        New = "new",
        /// Someone reached out.
        Contacted = "contacted",
        /// Worth pursuing.
        Qualified = "qualified",
        /// Not worth pursuing (may be re-engaged: back to contacted).
        Unqualified = "unqualified",
        /// Converted into an account and contact (set only by conversion; then read-only).
        Converted = "converted",
    }
}

impl LeadStatus {
    /// Whether a patch may move a lead from `self` to `next`. Forward moves may skip a step,
    /// any open lead may be disqualified, a disqualified lead may be re-engaged, and only
    /// conversion sets `converted`.
    pub fn can_become(self, next: LeadStatus) -> bool {
        use LeadStatus::*;
        self == next
            || matches!(
                (self, next),
                (New, Contacted | Qualified | Unqualified)
                    | (Contacted, Qualified | Unqualified)
                    | (Qualified, Unqualified)
                    | (Unqualified, Contacted)
            )
    }
}

crate::record_type! {
    /// A prospective customer, before it is qualified and converted.
    pub struct Lead / NewLead / LeadPatch {
        /// Given name.
        first_name: Option<String> [sortable, max_length(200), personal, title],
        /// Family name.
        last_name: Option<String> [sortable, max_length(200), personal, title],
        /// Email address.
        email: Option<String> [sortable, email, personal, title],
        /// Phone number.
        phone: Option<String> [max_length(200), personal, searchable],
        /// Company name; becomes the account's name on conversion.
        company: Option<String> [sortable, max_length(200), searchable],
        /// Job title.
        title: Option<String> [max_length(200), searchable],
        /// Where it came from (default `manual`).
        source: LeadSource,
        /// Lifecycle status (default `new`); see [`LeadStatus::can_become`].
        status: LeadStatus [sortable],
        /// The user working the lead.
        owner_id: Option<UserId> [owner],
    }
    readonly {
        /// When it was converted.
        converted_at: Option<DateTime<Utc>>,
        /// The account conversion created or linked.
        converted_account_id: Option<AccountId>,
        /// The contact conversion created or linked.
        converted_contact_id: Option<ContactId> [same_person],
        /// The opportunity conversion created, if any.
        converted_opportunity_id: Option<OpportunityId>,
    }
}

impl Lead {
    /// `"First Last"`, or whichever part exists.
    pub fn full_name(&self) -> Option<String> {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }
}

impl Entity for Lead {
    const KIND: EntityKind = EntityKind::Lead;
    const MATCH_ON: &'static [MatchOn] = &[
        MatchOn::new(MatchRule::Email, &["email"]),
        MatchOn::new(MatchRule::Name, &["first_name", "last_name"]),
    ];
    const MERGEABLE: bool = true;

    fn validate(&self, v: &mut Validator) {
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        if blank(&self.last_name) && blank(&self.company) && blank(&self.email) {
            v.push(
                "last_name",
                "required",
                "a lead needs a last name, a company or an email",
            );
        }
    }

    async fn before_write(
        &mut self,
        w: &mut WriteContext<'_, '_>,
        before: Option<&Self>,
    ) -> Result<()> {
        match (w.operation(), before) {
            (Operation::Create, _) if self.status == LeadStatus::Converted => Err(Error::invalid(
                "status",
                "invalid_transition",
                "a lead becomes converted only by converting it",
            )),
            (Operation::Update, Some(b)) if b.status == LeadStatus::Converted => Err(
                Error::conflict("converted_read_only", "a converted lead is read-only"),
            ),
            (Operation::Update, Some(b)) if !b.status.can_become(self.status) => {
                Err(Error::invalid(
                    "status",
                    "invalid_transition",
                    format!("a lead cannot go from {} to {}", b.status, self.status),
                ))
            }
            (Operation::Verb(Action::Converted), _) => Ok(()),
            _ => Ok(()),
        }
    }
}

impl crate::record::Records<'_, Lead> {
    /// Creates the lead a web form posted (its `source` set to [`LeadSource::WebForm`]):
    /// allowed to API keys with the `forms` scope, whatever their reach into leads.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`out_of_scope`) for a caller without the `forms` grant; as
    /// [`crate::record::Records::create`].
    pub async fn create_from_web_form(
        &self,
        mut new: NewLead,
    ) -> crate::Result<crate::record::Record<Lead>> {
        let grants = self.tenant().grants().await?.for_web_form()?;
        new.source = LeadSource::WebForm;
        let t = self.tenant().acting_with(std::sync::Arc::new(grants));
        t.leads().create(new).await
    }

    /// Erases a lead for good (GDPR): removes its activities, blanks what the event log
    /// recorded about it, and leaves an `erased` tombstone event. Company admins only.
    pub async fn erase(&self, id: LeadId) -> crate::Result<crate::record::Erasure> {
        self.erase_with(id).await
    }
}
