//! # crm-core
//!
//! The domain, services, storage and tenancy of abetworks CRM, an embeddable multi-tenant CRM.
//! No HTTP here: `crm-axum` builds the REST API on top of this crate.
//!
//! ## Usage
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use crm_core::{Crm, ListQuery, NewAccount, NewContact, NewOrganization, Op, TenantContext};
//!
//! // SQLite in memory here; `postgres://…` in production. Migrations run on build.
//! let crm = Crm::connect("sqlite::memory:").await?;
//! let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
//!
//! // Every tenant read and write goes through a TenantContext.
//! let t = crm.tenant(&TenantContext::system(org.id));
//! let globex = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
//! t.contacts().create(NewContact {
//!     first_name: Some("Hank".into()),
//!     email: Some("hank@globex.com".into()),
//!     account_id: Some(globex.id),
//!     ..Default::default()
//! }).await?;
//!
//! let page = t.contacts().list(&ListQuery::default().filter("account_id", Op::Eq, globex.id.to_string())).await?;
//! assert_eq!(page.data[0].first_name.as_deref(), Some("Hank"));
//!
//! t.accounts().delete(globex.id).await?;   // soft delete: into the trash
//! t.accounts().restore(globex.id).await?;  // and back
//! # Ok::<_, crm_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## The sales flow
//!
//! Leads convert into accounts, contacts and opportunities in one transaction; opportunities
//! move through pipeline stages; invoices number themselves and compute their totals.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use crm_core::sqlx::types::Json;
//! use crm_core::*;
//! # let crm = Crm::connect("sqlite::memory:").await?;
//! # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
//! let t = crm.tenant(&TenantContext::system(org.id));
//!
//! let lead = NewLead { last_name: Some("Hopper".into()), company: Some("Globex".into()), ..Default::default() };
//! let lead = t.leads().create(lead).await?;
//! let request = ConvertLead { opportunity: Some(ConvertOpportunity::default()), ..Default::default() };
//! let converted = t.leads().convert(lead.id, request).await?;
//! let deal = converted.opportunity.unwrap();
//! assert_eq!(deal.status, OpportunityStatus::Open);
//! let deal = t.opportunities().close_won(deal.id).await?;
//!
//! let invoice = t.invoices().create(NewInvoice {
//!     account_id: Some(converted.account.id),
//!     opportunity_id: Some(deal.id),
//!     currency: "EUR".into(),
//!     line_items: Json(vec![LineItem::new("Licence", 2, 4_999, 2000)]),
//!     ..Default::default()
//! }).await?;
//! assert_eq!((invoice.number.as_str(), invoice.total_minor), ("INV-000001", 11_998));
//! t.invoices().send(invoice.id).await?;
//!
//! let timeline = t.timeline(EntityKind::Opportunity, deal.id, 20, None).await?;
//! assert_eq!(timeline.data.len(), 2); // created, closed
//! # Ok::<_, crm_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Tenancy
//!
//! - **Type level**: tenant services exist only on a [`Tenant`], made from a [`TenantContext`].
//! - **Query level**: the shared record machinery filters every statement by
//!   `organization_id`; links to other records are checked within the same organization.
//! - **Database level** (PostgreSQL): row-level security on every tenant table, keyed on the
//!   `crm.org_id` setting, for the non-owner role `crm_app` that every pooled connection
//!   switches to, so even a superuser URL cannot bypass it. See `storage/postgres.rs` for how a
//!   tenant read stays one round trip.
//!
//! ## Layout
//!
//! Lower layers never import higher ones (a test checks that no module imports one that imports
//! it back); `docs/architecture.md` in the repository has the whole map.
//!
//! - `storage/` — both backends behind one small interface, [`PoolSettings`]; `error` —
//!   [`Error`]; `id` — [`Id`]; `time`, `validation`, `password`;
//! - `crm` — [`Crm`] handle and [`CrmBuilder`] (backend chosen by URL, pool, migrations);
//! - `context` — [`TenantContext`], [`Actor`]; `tenant` — [`Tenant`], the handle every
//!   tenant service hangs off (each service module adds its own accessor);
//! - `organizations/`, `users/`, `pipelines/`, `custom_fields/` — each a `model` (the types)
//!   and a `service`;
//! - `record/` — the shared record machinery: [`Records`], [`ListQuery`] and its SQL compiler,
//!   [`Record`], [`Entity`], [`record_type!`];
//! - `entities/` — one file per entity ([`Account`], [`Contact`], [`Lead`] and its conversion,
//!   [`Opportunity`], [`Invoice`], [`Activity`]) and the registry, [`EntityKind`]: the one list
//!   of entities that everything iterating them derives from;
//! - `events`, `changes`, `timeline` — the event log, the change feed ([`Changes`]: every change
//!   in commit order, by cursor), record timelines; `search` — full-text search across the
//!   kinds with `[searchable]` columns ([`Tenant::search`], [`SearchQuery`]);
//! - `auth/` — principals, refresh tokens, API keys, idempotency keys (for HTTP layers);
//! - `jobs/` — background jobs on apalis ([`Job`], [`Worker`], `crm.jobs()`).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets `record_type!` name this crate as `::crm_core` from inside it too.
extern crate self as crm_core;

pub mod access;
pub mod auth;
mod changes;
mod context;
mod crm;
mod custom_fields;
mod entities;
mod error;
mod events;
mod id;
mod jobs;
mod money;
#[cfg(feature = "openapi")]
mod openapi;
mod organizations;
mod password;
mod pipelines;
pub mod record;
mod search;
mod storage;
mod tenant;
mod time;
mod timeline;
mod users;
mod validation;
mod webhooks;

pub use auth::{Auth, Principal};
pub use changes::{Change, Changes, ExpiredChanges, MAX_CHANGES_PAGE};
pub use context::{Actor, TenantContext};
pub use crm::{Crm, CrmBuilder, DEFAULT_JOB_QUEUE, MigrationStatus};
pub use custom_fields::{
    Computed, CustomFieldDefinition, CustomFieldId, CustomFieldPatch, CustomFieldType,
    CustomFields, FormulaSpec, MAX_COMPUTED_FIELDS, MAX_FORMULA_DEPTH, MAX_FORMULA_LENGTH,
    NewCustomField, RollupFunction, RollupSpec,
};
pub use entities::*;
pub use error::{Error, FieldError, Refusal, Result};
pub use events::{Action, Event, EventId, Events};
pub use id::Id;
pub use jobs::{
    DEFAULT_MAX_ATTEMPTS, Job, JobInfo, JobStatus, Jobs, MAX_JOBS_PAGE, OrganizationJobs, Worker,
};
pub use money::{Currency, MAX_MINOR, Money};
#[cfg(feature = "openapi")]
pub use openapi::{api_key_scopes, document_columns};
pub use organizations::{
    MAX_RETENTION_DAYS, NewOrganization, Organization, OrganizationId, OrganizationStatus,
    Organizations,
};
pub use password::Password;
pub use pipelines::{
    NewPipeline, NewStage, Pipeline, PipelineId, PipelineSummary, Pipelines, Stage, StageAmount,
    StageId, StageKind, StageSummary, default_pipeline,
};
pub use record::{
    Condition, Created, Deleted, Direction, Duplicate, DuplicatePolicy, Entity, Erasure,
    FieldChange, Filter, Imported, ListQuery, MAX_HISTORY_PAGE, MAX_MERGE, MatchOn, MatchRule,
    Merge, Op, Page, PurgeReport, Record, Records, Related, Sort,
};
pub use search::{
    DEFAULT_SEARCH_PAGE, MAX_SEARCH_PAGE, MAX_SEARCH_QUERY, MAX_SEARCH_TERMS, SearchHit,
    SearchQuery,
};
pub use storage::Backend;
#[doc(hidden)]
#[cfg(feature = "postgres")]
pub use storage::explain_statements;
pub use storage::{MAX_CONNECTIONS_ENV, PoolSettings, PoolStats, STATEMENT_TIMEOUT_ENV};
pub use tenant::Tenant;
pub use timeline::TimelineItem;
pub use users::{
    MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, NewUser, PasswordKind, Role, User, UserId, Users,
};
pub use validation::Validator;
pub use webhooks::{
    Answer, DEFAULT_ROTATION_OVERLAP, DELIVERY_LOG_RETENTION, DeliveryStatus, EventTypes,
    MAX_DELIVERIES_PAGE, MAX_ROTATION_OVERLAP, MAX_SUBSCRIPTIONS, NewWebhookSubscription, Outgoing,
    ReplayFrom, WebhookDelivery, WebhookDeliveryId, WebhookPolicy, WebhookSettings,
    WebhookSubscription, WebhookSubscriptionId, WebhookSubscriptionPatch, WebhookSubscriptions,
    WebhookTransport,
};

/// The sqlx crate this library is built on, for hosts that share its types.
pub use sqlx;
