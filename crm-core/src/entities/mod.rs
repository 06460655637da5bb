//! The CRM entities. Each file declares one entity's own columns, checks and verbs; the shared
//! machinery in [`crate::record`] does the rest, and the registry below lists them once.

mod order;
mod registry;

mod accounts;
mod activities;
mod contacts;
mod invoices;
mod lead_conversion;
mod leads;
mod opportunities;

pub use accounts::{Account, AccountId, AccountPatch, NewAccount};
pub use activities::{Activity, ActivityId, ActivityKind, ActivityPatch, NewActivity};
pub use contacts::{Contact, ContactId, ContactPatch, NewContact};
pub use invoices::{
    Invoice, InvoiceId, InvoicePatch, InvoiceStatus, LineItem, MAX_LINE_ITEMS, NewInvoice,
};
pub use lead_conversion::{Conversion, ConvertLead, ConvertOpportunity, Target};
pub use leads::{Lead, LeadId, LeadPatch, LeadSource, LeadStatus, NewLead};
pub use opportunities::{
    NewOpportunity, Opportunity, OpportunityId, OpportunityPatch, OpportunityStatus,
};
pub use registry::EntityVisitor;

// The entity registry: one line per entity. See `registry.rs`.
registry::registry! {
    /// Companies: customers, prospects, partners.
    Account(accounts) = "account", timeline: true;
    /// People, usually working at an account.
    Contact(contacts) = "contact", timeline: true;
    /// Prospects not yet qualified, converted into accounts, contacts and opportunities.
    Lead(leads) = "lead", timeline: true;
    /// Deals moving through a pipeline.
    Opportunity(opportunities) = "opportunity", timeline: true;
    /// Bills with line items and gap-free numbers.
    Invoice(invoices) = "invoice", timeline: true;
    /// Notes, tasks, calls and meetings: what timelines show, so they have none of their own.
    Activity(activities) = "activity", timeline: false;
}
