//! Behaviour tests of crm-core, each run on SQLite and PostgreSQL (see `harness.rs`).

// Tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod harness;

mod access;
mod access_model;
mod access_world;
mod activities;
mod auth;
mod catalog;
mod changes;
mod computed_fields;
mod constraints;
mod contention;
mod custom_field_types;
mod duplicates;
mod erasure;
mod events;
mod history;
mod index_proof;
mod invoices;
mod jobs;
mod layers;
mod leads;
mod links_and_permissions;
mod lists;
mod merge;
mod opportunities;
mod organizations_and_users;
mod pooler;
mod records;
mod relations;
mod rls;
mod rollup_concurrency;
mod search;
mod sign_in_floods;
mod teams_and_shares;
mod tenancy;
#[cfg(feature = "tls")]
mod tls;
mod transactions;
mod upgrade;
mod user_management;
mod webhooks;
