//! # abetworks CRM
//!
//! An embeddable, multi-tenant CRM library. This facade re-exports [`crm_core`] (domain,
//! services, storage, tenancy) and, with the `http` feature (on by default), the REST API
//! `crm-axum` as [`http`]; the operator CLI (`crm-cli`) builds on the same crates.
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

/// The REST API: `abetworks_crm::http::router(crm, AuthConfig)`, mountable in any axum app.
#[cfg(feature = "http")]
pub use crm_axum as http;
