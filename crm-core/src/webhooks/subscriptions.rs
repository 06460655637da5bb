//! [`WebhookSubscriptions`]: where an organization's changes are sent, managed by its company
//! admins.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::destination::Destination;
use super::signature;
use crate::error::{Error, Result};
use crate::events::Action;
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{FromDbRow, Sql};
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::Validator;

/// The id of a webhook subscription.
pub type WebhookSubscriptionId = Id<WebhookSubscription>;

/// The most subscriptions an organization may have.
pub const MAX_SUBSCRIPTIONS: i64 = 50;

/// How long a rotated-out secret still signs, by default: receivers have a day to switch.
pub const DEFAULT_ROTATION_OVERLAP: TimeDelta = TimeDelta::hours(24);

/// The longest overlap of a secret rotation.
pub const MAX_ROTATION_OVERLAP: TimeDelta = TimeDelta::days(7);

/// A subscription as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookSubscription {
    /// Its id.
    pub id: WebhookSubscriptionId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Where deliveries are posted.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The event types sent (`contact.created`, `contact.*`, `*`); empty: every event.
    #[sqlx(try_from = "String")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub event_types: EventTypes,
    /// Whether deliveries are sent. A subscription the worker disabled says why in
    /// `disabled_reason`; while inactive, changes wait and are sent once it is active again.
    pub active: bool,
    /// Why the worker disabled it (`410 Gone`, sustained failure), when it did.
    pub disabled_reason: Option<String>,
    /// When it was disabled by the worker.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when deliveries have failed without a success in between.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs too.
    #[sqlx(rename = "previous_secret_until")]
    pub rotation_ends_at: Option<DateTime<Utc>>,
    /// Who created it: the user's id, or the API key's. The subscription outlives them: it
    /// keeps delivering after the user is deactivated or the key revoked.
    pub created_by: Option<Uuid>,
    /// The permission set its deliveries are seen with (records out of its reach arrive as
    /// tombstones, hidden fields are removed); `None`: everything, as an admin sees it. Set
    /// with [`crate::access::PermissionSets::assign_to_webhook_subscription`].
    pub permission_set_id: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, organization_id, url, description, event_types, active, disabled_reason, disabled_at, failing_since, previous_secret_until, created_by, permission_set_id, created_at, updated_at";

/// The event types a subscription receives: `{entity}.{action}` (`contact.created`),
/// `{entity}.*`, or `*`; none means every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTypes(Vec<String>);

/// The most event types a subscription may list.
const MAX_EVENT_TYPES: usize = 100;

impl EventTypes {
    /// The types, as given.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether an event of `entity` with `action` is sent.
    pub fn matches(&self, entity: &str, action: Action) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|t| {
                t == "*"
                    || t.split_once('.')
                        .is_some_and(|(e, a)| e == entity && (a == "*" || a == action.as_str()))
            })
    }

    fn validate(types: Vec<String>, v: &mut Validator) -> Self {
        let mut out: Vec<String> = Vec::with_capacity(types.len());
        v.check(
            types.len() <= MAX_EVENT_TYPES,
            "event_types",
            "too_many",
            &format!("at most {MAX_EVENT_TYPES} event types"),
        );
        for t in types {
            let t = t.trim().to_owned();
            let ok = t == "*"
                || t.split_once('.').is_some_and(|(e, a)| {
                    crate::events::is_logged_entity(e)
                        && (a == "*" || Action::ALL.iter().any(|x| x.as_str() == a))
                });
            if !ok {
                v.push(
                    "event_types",
                    "invalid_event_type",
                    format!("`{t}` is not `entity.action`, `entity.*` or `*`, with an entity in the singular (`contact`, `user`…) and an action the feed logs (`created`, `updated`, `deleted`…)"),
                );
            } else if !out.contains(&t) {
                out.push(t);
            }
        }
        Self(out)
    }
}

impl TryFrom<String> for EventTypes {
    type Error = serde_json::Error;
    fn try_from(text: String) -> std::result::Result<Self, Self::Error> {
        serde_json::from_str(&text).map(Self)
    }
}

/// Input of `WebhookSubscriptions::create`: a new subscription.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhookSubscription {
    /// Where to post: `https://…` (an operator may allow `http` and private addresses for
    /// development).
    pub url: String,
    /// What it is for (up to 500 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// The event types to send (`contact.created`, `contact.*`, `*`); none: every event.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// Changes of `WebhookSubscriptions::update`; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookSubscriptionPatch {
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// A new description.
    #[serde(default)]
    pub description: Option<String>,
    /// New event types (replacing the old ones).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Pause (`false`) or resume (`true`) deliveries. Resuming a subscription the worker
    /// disabled clears its reason; the changes that waited are sent.
    #[serde(default)]
    pub active: Option<bool>,
}

impl Tenant {
    /// The organization's webhook subscriptions (company admins and API keys).
    pub fn webhooks(&self) -> WebhookSubscriptions<'_> {
        WebhookSubscriptions { tenant: self }
    }
}

/// The webhook subscriptions of one organization: create, list, change, rotate secrets,
/// read the delivery log, replay. Reached through [`Tenant::webhooks`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, NewOrganization, NewWebhookSubscription, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let (sub, secret) = t.webhooks().create(NewWebhookSubscription {
///     url: "https://hooks.example.com/crm".into(),
///     event_types: vec!["contact.*".into()],
///     ..Default::default()
/// }).await?;
/// assert!(secret.starts_with("whsec_"));   // shown this once: the receiver verifies with it
/// assert!(sub.active);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WebhookSubscriptions<'t> {
    pub(super) tenant: &'t Tenant,
}

impl WebhookSubscriptions<'_> {
    pub(super) async fn org(&self) -> Result<OrganizationId> {
        self.tenant
            .require_manage("only company admins and API keys may manage webhooks")
            .await?;
        Ok(self.tenant.context().organization_id())
    }

    /// The row `q` answers, or [`Error::NotFound`] of `entity` `id`.
    pub(super) async fn found<T: FromDbRow>(
        &self,
        q: &Sql,
        entity: &'static str,
        id: impl Into<Uuid>,
    ) -> Result<T> {
        let mut s = self.tenant.session().await?;
        s.conn()
            .fetch_optional(q)
            .await?
            .ok_or(Error::not_found(entity, id))
    }

    fn check_url(&self, url: &str, v: &mut Validator) {
        let policy = self.tenant.crm().webhook_policy();
        if let Err(why) = Destination::parse(url.trim(), &policy) {
            v.push("url", "invalid_url", why);
        }
    }

    /// Creates a subscription that receives the changes committed from now on, and returns it
    /// with its secret, which is never shown again ([`Self::rotate_secret`] makes a new one).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for users below company admin; [`Error::Validation`] for a URL the
    /// policy refuses or unknown event types; [`Error::Conflict`] (`too_many_subscriptions`)
    /// past [`MAX_SUBSCRIPTIONS`].
    pub async fn create(
        &self,
        new: NewWebhookSubscription,
    ) -> Result<(WebhookSubscription, String)> {
        let org = self.org().await?;
        let mut v = Validator::new();
        self.check_url(&new.url, &mut v);
        v.opt_text("description", new.description.as_deref(), 500);
        let types = EventTypes::validate(new.event_types, &mut v);
        v.finish()?;
        // Only what commits after this: the head is read before the subscription exists.
        let cursor = self.tenant.changes().head().await?;
        let secret = signature::new_secret();
        let at = now();
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let mut conn = tx.conn();
            let mut count = Sql::new(
                "update organizations set webhook_subscriptions = webhook_subscriptions + 1 where id = ",
            );
            count.bind(org).push(" and webhook_subscriptions < ").bind(MAX_SUBSCRIPTIONS);
            if conn.execute(&count).await? == 0 {
                return Err(Error::conflict(
                    "too_many_subscriptions",
                    format!("an organization may have at most {MAX_SUBSCRIPTIONS} webhook subscriptions"),
                ));
            }
            let mut q = Sql::new(
                "insert into webhook_subscriptions (organization_id, id, url, description, event_types, secret, feed_cursor, created_by, created_at, updated_at) values (",
            );
            q.bind(org).push(", ").bind(WebhookSubscriptionId::new());
            q.push(", ").bind(new.url.trim()).push(", ");
            q.bind(new.description.as_deref().map_or("", str::trim));
            q.push(", ").bind(json_text(&types)).push(", ").bind(secret.as_str());
            q.push(", ").bind(cursor).push(", ");
            q.bind(self.tenant.context().actor().id());
            q.push(", ").bind(at).push(", ").bind(at).push(") returning ").push(COLUMNS);
            conn.fetch_one::<WebhookSubscription>(&q).await
        }
        .await;
        let sub = tx.settle(out).await?;
        Ok((sub, secret))
    }

    /// The organization's subscriptions, oldest first.
    pub async fn list(&self) -> Result<Vec<WebhookSubscription>> {
        let org = self.org().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(" from webhook_subscriptions where organization_id = ");
        q.bind(org).push(" order by id");
        let mut s = self.tenant.session().await?;
        s.conn().fetch_all(&q).await
    }

    /// One subscription.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a subscription of no (or another) organization.
    pub async fn get(&self, id: WebhookSubscriptionId) -> Result<WebhookSubscription> {
        let org = self.org().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(" from webhook_subscriptions where organization_id = ");
        q.bind(org).push(" and id = ").bind(id);
        self.found(&q, "webhook subscription", id).await
    }

    /// Changes a subscription: its URL, description, event types, or whether it is active.
    ///
    /// # Errors
    /// As [`Self::create`], and [`Error::NotFound`].
    pub async fn update(
        &self,
        id: WebhookSubscriptionId,
        patch: WebhookSubscriptionPatch,
    ) -> Result<WebhookSubscription> {
        let org = self.org().await?;
        let mut v = Validator::new();
        if let Some(url) = &patch.url {
            self.check_url(url, &mut v);
        }
        v.opt_text("description", patch.description.as_deref(), 500);
        let types = patch.event_types.map(|t| EventTypes::validate(t, &mut v));
        v.finish()?;
        let mut q = Sql::new("update webhook_subscriptions set updated_at = ");
        q.bind(now());
        if let Some(url) = &patch.url {
            q.push(", url = ").bind(url.trim());
        }
        if let Some(d) = &patch.description {
            q.push(", description = ").bind(d.trim());
        }
        if let Some(t) = &types {
            q.push(", event_types = ").bind(json_text(t));
        }
        match patch.active {
            Some(true) => {
                q.push(", active = ").bind(true);
                q.push(", disabled_reason = null, disabled_at = null, failing_since = null");
            }
            Some(false) => {
                q.push(", active = ").bind(false);
            }
            None => {}
        }
        q.push(" where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(id);
        q.push(" returning ").push(COLUMNS);
        self.found(&q, "webhook subscription", id).await
    }

    /// Deletes a subscription and its delivery log; what was not delivered is not.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn delete(&self, id: WebhookSubscriptionId) -> Result<()> {
        let org = self.org().await?;
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let mut conn = tx.conn();
            let mut q = Sql::new("delete from webhook_subscriptions where organization_id = ");
            q.bind(org).push(" and id = ").bind(id);
            if conn.execute(&q).await? == 0 {
                return Err(Error::not_found("webhook subscription", id));
            }
            let mut count = Sql::new(
                "update organizations set webhook_subscriptions = webhook_subscriptions - 1 where id = ",
            );
            count.bind(org).push(" and webhook_subscriptions > 0");
            conn.execute(&count).await?;
            Ok(())
        }
        .await;
        tx.settle(out).await
    }

    /// Replaces the signing secret and returns the new one, shown this once. For `overlap`
    /// (by default [`DEFAULT_ROTATION_OVERLAP`], at most [`MAX_ROTATION_OVERLAP`]) deliveries
    /// carry both signatures, so receivers switch without refusing any.
    ///
    /// # Errors
    /// [`Error::Validation`] for an overlap out of range; [`Error::NotFound`].
    pub async fn rotate_secret(
        &self,
        id: WebhookSubscriptionId,
        overlap: Option<TimeDelta>,
    ) -> Result<(WebhookSubscription, String)> {
        let org = self.org().await?;
        let overlap = overlap.unwrap_or(DEFAULT_ROTATION_OVERLAP);
        let mut v = Validator::new();
        v.check(
            overlap >= TimeDelta::zero() && overlap <= MAX_ROTATION_OVERLAP,
            "overlap_seconds",
            "out_of_range",
            "the overlap is 0 to 7 days",
        );
        v.finish()?;
        let secret = signature::new_secret();
        let at = now();
        let mut q = Sql::new(
            "update webhook_subscriptions set previous_secret = secret, previous_secret_until = ",
        );
        q.bind(at + overlap)
            .push(", secret = ")
            .bind(secret.as_str());
        q.push(", updated_at = ").bind(at);
        q.push(" where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(id);
        q.push(" returning ").push(COLUMNS);
        Ok((self.found(&q, "webhook subscription", id).await?, secret))
    }
}

fn json_text(types: &EventTypes) -> String {
    serde_json::to_string(types).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_checked_and_matched() {
        let mut v = Validator::new();
        let t = EventTypes::validate(
            vec![
                "contact.*".into(),
                "account.deleted".into(),
                "contact.*".into(),
            ],
            &mut v,
        );
        assert!(v.finish().is_ok());
        assert_eq!(t.as_slice().len(), 2);
        assert!(t.matches("contact", Action::Updated));
        assert!(t.matches("account", Action::Deleted));
        assert!(!t.matches("account", Action::Created));
        assert!(EventTypes::default().matches("lead", Action::Converted));
        for bad in [
            "contact",
            "contact.exploded",
            "contacts.created",
            "Contact.created",
            ".created",
            "a.b.c",
        ] {
            let mut v = Validator::new();
            EventTypes::validate(vec![bad.into()], &mut v);
            assert!(v.finish().is_err(), "{bad}");
        }
    }
}
