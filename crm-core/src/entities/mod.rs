//! The CRM entities. Each file declares one entity's own columns, checks and verbs; the shared
//! machinery in [`crate::record`] does the rest.

mod accounts;
mod activities;
mod contacts;
mod invoices;
mod lead_conversion;
mod leads;
mod opportunities;

pub use accounts::{Account, AccountId, AccountPatch, NewAccount};
pub use activities::{
    Activity, ActivityId, ActivityKind, ActivityPatch, NewActivity, RelatedEntity,
};
pub use contacts::{Contact, ContactId, ContactPatch, NewContact};
pub use invoices::{
    Invoice, InvoiceId, InvoicePatch, InvoiceStatus, LineItem, MAX_LINE_ITEMS, NewInvoice,
};
pub use lead_conversion::{Conversion, ConvertLead, ConvertOpportunity, Target};
pub use leads::{Lead, LeadId, LeadPatch, LeadSource, LeadStatus, NewLead};
pub use opportunities::{
    NewOpportunity, Opportunity, OpportunityId, OpportunityPatch, OpportunityStatus,
};
