//! Outbound webhooks: an organization's changes, signed and posted to its subscribers.
//!
//! Company admins (and API keys) manage subscriptions through [`Tenant::webhooks`]: a URL,
//! the event types to send, a secret shown once and rotated with an overlap. The
//! [`crate::Worker`] delivers through a [`WebhookTransport`] (crm-core speaks no HTTP;
//! `crm_axum::WebhookSender` is the ready transport): it reads the change feed after each subscription's cursor (the
//! feed is the outbox, so nothing committed is lost), and posts each change as Standard
//! Webhooks do it (`webhook-id`, `webhook-timestamp`, `webhook-signature`), so receivers verify
//! with that specification's libraries.
//!
//! Guarantees:
//! - **At least once**, with the same `webhook-id` (the event's id) on every attempt, so a
//!   receiver de-duplicates. A worker killed mid-delivery leaves a lease that runs out; the
//!   next worker sends it again.
//! - **Per-record order**: a change of a record is sent only after the earlier ones of the
//!   same record were delivered or given up on.
//! - **Retries** with jittered exponential backoff for 24 hours ([`WebhookSettings`]), then the
//!   delivery is `failed` (replayable). An endpoint that answers `410 Gone`, or fails with no
//!   success for 24 hours, is disabled with the reason shown; its changes wait for it.
//! - **SSRF**: only `https` to public addresses unless the operator's [`WebhookPolicy`] allows
//!   more, checked on save and on every delivery against the addresses used.
//! - **Owned by the organization**, not by its creator: a subscription keeps delivering after
//!   the user who created it is deactivated or the API key that did is revoked (as Stripe's and
//!   GitHub's webhooks do: an integration must not stop, unseen, when a person leaves). It lists
//!   who created it ([`WebhookSubscription::created_by`]); an admin pauses or deletes it.
//!
//! [`Tenant::webhooks`]: crate::Tenant::webhooks

mod deliveries;
mod destination;
pub(crate) mod dispatcher;
mod signature;
mod subscriptions;
mod transport;

pub use deliveries::{
    DELIVERY_LOG_RETENTION, DeliveryStatus, MAX_DELIVERIES_PAGE, ReplayFrom, WebhookDelivery,
    WebhookDeliveryId,
};
pub use destination::WebhookPolicy;
pub use dispatcher::WebhookSettings;
pub use subscriptions::{
    DEFAULT_ROTATION_OVERLAP, EventTypes, MAX_ROTATION_OVERLAP, MAX_SUBSCRIPTIONS,
    NewWebhookSubscription, WebhookSubscription, WebhookSubscriptionId, WebhookSubscriptionPatch,
    WebhookSubscriptions,
};
pub use transport::{Answer, Outgoing, WebhookTransport};
