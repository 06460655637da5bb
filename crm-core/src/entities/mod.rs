//! The CRM entities. Each file declares one entity's own columns and checks; the shared
//! machinery in [`crate::record`] does the rest.

mod accounts;
mod contacts;

pub use accounts::{Account, AccountId, AccountPatch, NewAccount};
pub use contacts::{Contact, ContactId, ContactPatch, NewContact};
