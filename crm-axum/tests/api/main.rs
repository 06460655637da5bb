//! HTTP tests of crm-axum through the real router (`tower::ServiceExt::oneshot`), each run on
//! SQLite and, when `CRM_TEST_DATABASE_URL` is set, on PostgreSQL.

// Tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

// The same per-backend harness as crm-core's behaviour tests (a fresh database or schema per
// test; `CRM_TEST_REQUIRE_POSTGRES` turns a skipped PostgreSQL run into a failure).
#[path = "../../../crm-core/tests/behaviour/harness.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

// The random organizations and the model of the access property test, shared with crm-core.
#[path = "../../../crm-core/tests/behaviour/access_world.rs"]
#[allow(
    dead_code,
    reason = "callers are reached by token here, not by tenant context"
)]
mod access_world;
mod helpers;
mod limits;
mod schema_check;
mod test_ca;
mod throwaway;

mod access;
mod access_model;
mod accounts_of_people;
mod admin;
mod auth;
mod changes;
mod computed_fields;
mod conditional;
mod duplicates;
mod entities;
mod errors;
mod history;
mod jobs;
mod keepalive;
mod merge;
mod metrics;
mod mount;
mod openapi;
mod outage;
mod races;
mod records;
#[cfg(feature = "redis")]
mod redis;
mod relations;
mod search;
mod server;
mod settings;
mod tenancy;
mod tokens;
mod webhook_delivery;
mod webhook_subscriptions;
mod wire;
