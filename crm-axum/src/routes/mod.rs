//! The route handlers, one module per resource.

pub(crate) mod access;
pub(crate) mod api_keys;
pub(crate) mod auth;
pub(crate) mod changes;
pub(crate) mod custom_fields;
pub(crate) mod jobs;
pub(crate) mod organizations;
pub(crate) mod pipelines;
pub(crate) mod records;
pub(crate) mod search;
pub(crate) mod users;
pub(crate) mod verbs;
pub(crate) mod webhook_subscriptions;
pub(crate) mod webhooks;
