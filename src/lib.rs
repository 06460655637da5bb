//! # abetworks CRM
//!
//! An embeddable, multi-tenant CRM library. This facade re-exports [`crm_core`] (domain,
//! services, storage, tenancy); the REST router (`crm-axum`) and the operator CLI (`crm-cli`)
//! build on the same crate.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use abetworks_crm::{Crm, NewAccount, NewOrganization, TenantContext};
//!
//! let crm = Crm::connect("sqlite::memory:").await?;
//! let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
//! let t = crm.tenant(&TenantContext::system(org.id));
//! let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
//! assert_eq!(t.accounts().get(a.id).await?.name, "Globex");
//! # Ok::<_, abetworks_crm::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

pub use crm_core::*;

/// The core crate itself, for paths like `abetworks_crm::core::record::Entity`.
pub use crm_core as core;
