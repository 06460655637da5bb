//! [`Tenant`]: the services of one organization, bound to one [`TenantContext`].

use crate::auth::{ApiKeys, Idempotency};
use crate::context::TenantContext;
use crate::crm::Crm;
use crate::entities::{Account, Activity, Contact, Invoice, Lead, Opportunity, RelatedEntity};
use crate::error::Result;
use crate::events::Events;
use crate::field_definitions::CustomFields;
use crate::pipelines::Pipelines;
use crate::record::{Entity, Page, Records};
use crate::storage::Session;
use crate::timeline::TimelineItem;
use crate::users::Users;

/// The services of one organization, acting as one actor. Made by [`Crm::tenant`]; cheap to
/// make and to clone.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, ListQuery, NewContact, NewOrganization, Op, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// t.contacts().create(NewContact { email: Some("ada@example.com".into()), ..Default::default() }).await?;
/// let page = t.contacts().list(&ListQuery::default().filter("email", Op::Eq, "ada@example.com")).await?;
/// assert_eq!(page.data.len(), 1);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Tenant {
    crm: Crm,
    ctx: TenantContext,
}

impl Tenant {
    pub(crate) fn new(crm: Crm, ctx: TenantContext) -> Self {
        Self { crm, ctx }
    }

    /// The context every call of this handle runs with.
    pub fn context(&self) -> &TenantContext {
        &self.ctx
    }

    /// Accounts (companies).
    pub fn accounts(&self) -> Records<'_, Account> {
        self.records()
    }

    /// Contacts (people).
    pub fn contacts(&self) -> Records<'_, Contact> {
        self.records()
    }

    /// Leads, with conversion.
    pub fn leads(&self) -> Records<'_, Lead> {
        self.records()
    }

    /// Opportunities, with closing.
    pub fn opportunities(&self) -> Records<'_, Opportunity> {
        self.records()
    }

    /// Invoices, with sending, payment and voiding.
    pub fn invoices(&self) -> Records<'_, Invoice> {
        self.records()
    }

    /// Activities: notes, tasks, calls and meetings.
    pub fn activities(&self) -> Records<'_, Activity> {
        self.records()
    }

    /// Pipelines and their stages.
    pub fn pipelines(&self) -> Pipelines<'_> {
        Pipelines::new(self)
    }

    /// The timeline of one record: its activities and event-log entries, newest first, `limit`
    /// (≤ 100) per page; pass the previous page's `next_cursor` to continue.
    pub async fn timeline(
        &self,
        entity: RelatedEntity,
        id: impl Into<uuid::Uuid>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<TimelineItem>> {
        crate::timeline::timeline(self, entity, id.into(), limit, cursor).await
    }

    /// The records of any entity.
    pub fn records<E: Entity>(&self) -> Records<'_, E> {
        Records::new(self)
    }

    /// Custom field definitions.
    pub fn custom_fields(&self) -> CustomFields<'_> {
        CustomFields::new(self)
    }

    /// Users of the organization.
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }

    /// The event log (audit trail).
    pub fn events(&self) -> Events<'_> {
        Events::new(self)
    }

    /// API keys of the organization (company admins).
    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys::new(self)
    }

    /// `Idempotency-Key` records of the organization.
    pub fn idempotency(&self) -> Idempotency<'_> {
        Idempotency::new(self)
    }

    pub(crate) fn crm(&self) -> &Crm {
        &self.crm
    }

    /// A connection bound to this tenant.
    pub(crate) async fn session(&self) -> Result<Session> {
        self.crm.pool().tenant(self.ctx.organization_id()).await
    }
}
