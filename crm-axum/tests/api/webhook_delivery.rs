//! Outbound webhooks delivered by a `crm_core::Worker` through `crm_axum::WebhookSender` to a
//! real HTTP receiver on this machine: Standard Webhooks
//! signatures checked with that specification's own library, retries after 500s, per-record
//! order, replays, secret rotation, disabling on 410 and sustained failure, the feed as the
//! outbox, and subscriptions confined to their organization.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use crm_axum::WebhookSender;
use crm_core::auth::{ApiKeyScope, NewApiKey};
use crm_core::{
    Crm, DeliveryStatus, Error, NewUser, NewWebhookSubscription, ReplayFrom, Role, Tenant,
    TenantContext, WebhookSettings, WebhookSubscription, WebhookSubscriptionId,
    WebhookSubscriptionPatch, Worker,
};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::harness::{Fixtures as _, Org, assert_not_found};
use crate::test_ca::TestCa;

/// One request the receiver got, and the status it answered.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    headers: hyper::HeaderMap,
    body: Bytes,
    json: Value,
    status: u16,
}

type Answer = Box<dyn FnMut(&Value, usize) -> u16 + Send>;

/// An HTTP receiver on 127.0.0.1: logs every request and answers what `answer` says, given the
/// body and how many times this `webhook-id` came before.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Receiver {
    async fn start(answer: impl FnMut(&Value, usize) -> u16 + Send + 'static) -> Self {
        Self::serve(None, answer).await
    }

    /// The same over TLS, with the certificate of `tls`.
    async fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        answer: impl FnMut(&Value, usize) -> u16 + Send + 'static,
    ) -> Self {
        Self::serve(Some(tokio_rustls::TlsAcceptor::from(tls)), answer).await
    }

    async fn serve(
        tls: Option<tokio_rustls::TlsAcceptor>,
        answer: impl FnMut(&Value, usize) -> u16 + Send + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            hits: Arc::default(),
            answer: Arc::new(Mutex::new(Box::new(answer))),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, tls) = (r.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| r.clone().handle(req));
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            // A client that refused the certificate: no request came.
                            Err(_) => return,
                        },
                    };
                });
            }
        });
        receiver
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let headers = req.headers().clone();
        let body = req.into_body().collect().await?.to_bytes();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut hits = self.hits.lock().unwrap();
        let before = hits.iter().filter(|h| h.id == id).count();
        let status = (self.answer.lock().unwrap())(&json, before);
        hits.push(Hit {
            id,
            headers,
            body,
            json,
            status,
        });
        let mut out = Response::new(Full::new(Bytes::new()));
        *out.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        Ok(out)
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn https_url(&self) -> String {
        format!("https://{}/hooks", self.addr)
    }

    fn answer(&self, answer: impl FnMut(&Value, usize) -> u16 + Send + 'static) {
        *self.answer.lock().unwrap() = Box::new(answer);
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the hits so far, or fails after 30 s.
    async fn until(&self, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        for _ in 0..600 {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}: {:#?}", summary(&self.hits()));
    }
}

/// `(webhook-id, type, status)` of each hit, for failure messages.
fn summary(hits: &[Hit]) -> Vec<(String, Value, u16)> {
    hits.iter()
        .map(|h| (h.id.clone(), h.json["type"].clone(), h.status))
        .collect()
}

/// How many distinct webhook-ids were answered 2xx.
fn delivered(hits: &[Hit]) -> usize {
    let mut ids: Vec<&str> = hits
        .iter()
        .filter(|h| h.status < 300)
        .map(|h| h.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Settings for tests: quick polls and retries.
fn quick() -> WebhookSettings {
    WebhookSettings {
        poll: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        first_retry: Duration::from_millis(100),
        longest_retry: Duration::from_millis(300),
        ..WebhookSettings::default()
    }
}

/// A running worker: send (or drop) to stop it, then await its end.
type Running = (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<crm_core::Result<()>>,
);

/// Starts a worker that delivers with `settings` and plans nothing.
fn start(crm: &Crm, settings: WebhookSettings) -> Running {
    start_with(crm, WebhookSender::default(), settings)
}

/// [`start`], posting through `sender`.
fn start_with(crm: &Crm, sender: WebhookSender, settings: WebhookSettings) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new(crm)
        .plan_every(None)
        .grace(Duration::from_secs(5))
        .webhooks(sender, settings);
    let handle = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

async fn subscribe(t: &Tenant, url: String, types: &[&str]) -> (WebhookSubscription, String) {
    t.webhooks()
        .create(NewWebhookSubscription {
            url,
            description: Some("test receiver".into()),
            event_types: types.iter().map(|s| (*s).to_owned()).collect(),
        })
        .await
        .unwrap()
}

/// Checks `hit` with the Standard Webhooks reference library and `secret`.
#[track_caller]
fn verify(secret: &str, hit: &Hit) {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&hit.body, &hit.headers)
        .unwrap_or_else(|e| panic!("signature of {} does not verify: {e:?}", hit.id));
}

async fn deliveries_are_signed_retried_in_record_order_and_replayed(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Globex").await;
    let t = org.admin(&crm);
    // The contact's creation is refused twice before it is taken.
    let receiver = Receiver::start(|body, before| {
        if body["type"] == "contact.created" && before < 2 {
            500
        } else {
            200
        }
    })
    .await;
    let (sub, secret) = subscribe(&t, receiver.url(), &[]).await;
    let t0 = Utc::now();

    other.admin(&crm).contact("Not for Acme").await;
    let ada = t.contact("Ada").await;
    for last_name in ["Lovelace", "King"] {
        t.update_json(ada.id, json!({ "last_name": last_name }))
            .await
            .unwrap();
    }
    let initech = t.account("Initech").await;

    let (stop, worker) = start(&crm, quick());
    let hits = receiver
        .until("four changes delivered", |h| delivered(h) == 4)
        .await;

    for hit in &hits {
        verify(&secret, hit);
        assert_eq!(
            hit.json["data"]["organization_id"],
            json!(org.id),
            "{hit:?}"
        );
        assert_eq!(hit.json["data"]["id"], json!(hit.id));
        assert!(hit.json["timestamp"].is_string() && hit.json["data"]["cursor"].is_string());
    }
    // The contact's changes arrived in their order: none before the previous one was taken.
    let contact: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.json["data"]["record_id"] == json!(ada.id))
        .collect();
    let statuses: Vec<(&str, u16)> = contact
        .iter()
        .map(|h| (h.json["type"].as_str().unwrap(), h.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("contact.created", 500),
            ("contact.created", 500),
            ("contact.created", 200),
            ("contact.updated", 200),
            ("contact.updated", 200),
        ],
        "{:#?}",
        summary(&hits)
    );
    // Every attempt of one change carries the same webhook-id.
    assert!(contact[..3].iter().all(|h| h.id == contact[0].id));
    let last_names: Vec<&Value> = contact[3..]
        .iter()
        .map(|h| &h.json["data"]["changes"]["last_name"]["after"])
        .collect();
    assert_eq!(last_names, [&json!("Lovelace"), &json!("King")]);

    // The delivery log says the same, once the worker has recorded the last answer (it does
    // so after the receiver answered: a loaded machine may read the log in between).
    let mut log = None;
    for _ in 0..200 {
        let page = t
            .webhooks()
            .deliveries(sub.id, None, None, 10)
            .await
            .unwrap();
        let done = page.data.len() == 4
            && page
                .data
                .iter()
                .all(|d| d.status == DeliveryStatus::Delivered);
        if done {
            log = Some(page);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log.expect("the four deliveries recorded as delivered within 10 s");
    let created = log
        .data
        .iter()
        .find(|d| d.event_type == "contact.created")
        .unwrap();
    assert_eq!((created.attempts, created.response_status), (3, Some(200)));
    assert_eq!(created.last_error, None);
    let page = t
        .webhooks()
        .deliveries(sub.id, None, None, 3)
        .await
        .unwrap();
    let rest = t
        .webhooks()
        .deliveries(sub.id, None, page.next_cursor.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!((page.data.len(), rest.data.len()), (3, 1));
    assert!(rest.next_cursor.is_none());
    assert_eq!(
        t.webhooks()
            .deliveries(sub.id, Some(DeliveryStatus::Failed), None, 10)
            .await
            .unwrap()
            .data,
        []
    );

    // One delivery sent again: same webhook-id.
    let account = log
        .data
        .iter()
        .find(|d| d.record_id == initech.id.uuid())
        .unwrap();
    t.webhooks().redeliver(sub.id, account.id).await.unwrap();
    let account_id = account.event_id.to_string();
    receiver
        .until("the account's change again", |h| {
            h.iter().filter(|h| h.id == account_id).count() == 2
        })
        .await;

    // A rotated secret: both signatures for a while, each verifies.
    let (rotated, new_secret) = t.webhooks().rotate_secret(sub.id, None).await.unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated.rotation_ends_at.unwrap() > Utc::now() + TimeDelta::hours(23));
    t.account("Hooli").await;
    let hits = receiver
        .until("the change after the rotation", |h| delivered(h) == 5)
        .await;
    let last = hits.last().unwrap();
    let signature = last.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    verify(&new_secret, last);
    verify(&secret, last);

    // Everything since t0 again: each change once more, same ids, in record order.
    let before = receiver.hits().len();
    let cursor = t
        .webhooks()
        .replay(sub.id, ReplayFrom::Time(t0))
        .await
        .unwrap();
    assert!(!cursor.is_empty());
    let hits = receiver
        .until("the replay", |h| {
            h[before..].iter().filter(|h| h.status == 200).count() == 5
        })
        .await;
    let replayed: Vec<&str> = hits[before..]
        .iter()
        .filter(|h| h.json["data"]["record_id"] == json!(ada.id))
        .map(|h| h.id.as_str())
        .collect();
    let first: Vec<&str> = contact[2..].iter().map(|h| h.id.as_str()).collect();
    assert_eq!(replayed, first);

    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert!(
        receiver
            .hits()
            .iter()
            .all(|h| h.json["data"]["organization_id"] == json!(org.id))
    );
}

async fn endpoints_that_are_gone_or_keep_failing_are_disabled(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let gone = Receiver::start(|_, _| 410).await;
    let failing = Receiver::start(|_, _| 503).await;
    let (a, _) = subscribe(&t, gone.url(), &["contact.*"]).await;
    let (b, _) = subscribe(&t, failing.url(), &["account.*"]).await;
    t.contact("Ada").await;
    t.account("Initech").await;

    let settings = WebhookSettings {
        give_up_after: TimeDelta::seconds(1),
        ..quick()
    };
    let (stop, worker) = start(&crm, settings);
    let subs = until_subs(&t, "both disabled", |s| s.iter().all(|s| !s.active)).await;
    let reason = |id| {
        subs.iter()
            .find(|s| s.id == id)
            .and_then(|s| s.disabled_reason.clone())
            .unwrap()
    };
    assert!(reason(a.id).contains("410"), "{}", reason(a.id));
    assert!(
        reason(b.id).contains("no delivery succeeded"),
        "{}",
        reason(b.id)
    );
    assert!(reason(b.id).contains("503"), "{}", reason(b.id));
    assert_eq!(gone.hits().len(), 1, "a 410 is not retried");
    assert!(failing.hits().len() >= 2, "a 503 is retried");

    // The 410's change waits; the failing endpoint's delivery was given up.
    let waiting = t.webhooks().deliveries(a.id, None, None, 10).await.unwrap();
    assert_eq!(waiting.data[0].status, DeliveryStatus::Pending);
    assert_eq!(waiting.data[0].response_status, Some(410));
    let failed = t.webhooks().deliveries(b.id, None, None, 10).await.unwrap();
    assert_eq!(failed.data[0].status, DeliveryStatus::Failed);
    assert!(failed.data[0].attempts >= 2);

    // While disabled nothing is sent; resumed, what waited goes out.
    t.contact("Grace").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone.hits().len(), 1);
    gone.answer(|_, _| 204);
    let resumed = resume(&t, a.id).await;
    assert!(resumed.active && resumed.disabled_reason.is_none());
    let hits = gone
        .until("the waiting changes", |h| delivered(h) == 2)
        .await;
    // Two records: sent side by side, in either order.
    let mut names: Vec<&str> = hits
        .iter()
        .filter(|h| h.status == 204)
        .filter_map(|h| h.json["data"]["changes"]["last_name"]["after"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Ada", "Grace"]);

    // A failed delivery replayed to a mended endpoint is taken.
    failing.answer(|_, _| 200);
    resume(&t, b.id).await;
    t.webhooks()
        .redeliver(b.id, failed.data[0].id)
        .await
        .unwrap();
    failing
        .until("the replayed delivery", |h| delivered(h) == 1)
        .await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
}

/// Resumes a subscription (as `PATCH {"active": true}`).
async fn resume(t: &Tenant, id: WebhookSubscriptionId) -> WebhookSubscription {
    let patch = WebhookSubscriptionPatch {
        active: Some(true),
        ..Default::default()
    };
    t.webhooks().update(id, patch).await.unwrap()
}

/// Waits until `done` holds for the organization's subscriptions, or fails after 30 s.
async fn until_subs(
    t: &Tenant,
    what: &str,
    done: impl Fn(&[WebhookSubscription]) -> bool,
) -> Vec<WebhookSubscription> {
    for _ in 0..600 {
        let subs = t.webhooks().list().await.unwrap();
        if done(&subs) {
            return subs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}: {:#?}",
        t.webhooks().list().await
    );
}

async fn the_feed_is_the_outbox_and_subscriptions_stay_in_their_organization(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Globex").await;
    let t = org.admin(&crm);
    let receiver = Receiver::start(|_, _| 200).await;
    let (sub, _) = subscribe(&t, receiver.url(), &["account.*"]).await;

    // Committed while no worker runs: nothing is lost, the feed holds it.
    let ada = t.contact("Ada").await;
    let initech = t.account("Initech").await;
    t.accounts().delete(initech.id).await.unwrap();
    let (stop, worker) = start(&crm, quick());
    let hits = receiver
        .until("the account's changes", |h| delivered(h) == 2)
        .await;
    let types: Vec<&Value> = hits.iter().map(|h| &h.json["type"]).collect();
    assert_eq!(
        types,
        [&json!("account.created"), &json!("account.deleted")]
    );
    assert!(
        hits.iter()
            .all(|h| h.json["data"]["record_id"] != json!(ada.id))
    );
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();

    // Managing subscriptions: listed without secrets, changed, checked.
    let listed = t.webhooks().list().await.unwrap();
    assert_eq!(listed, [t.webhooks().get(sub.id).await.unwrap()]);
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains("whsec_"), "{text}");
    let changed = t
        .webhooks()
        .update(
            sub.id,
            WebhookSubscriptionPatch {
                event_types: Some(vec!["contact.created".into(), "*".into()]),
                description: Some("everything".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.event_types.as_slice(), ["contact.created", "*"]);
    let bad = t
        .webhooks()
        .update(
            sub.id,
            WebhookSubscriptionPatch {
                url: Some("ftp://example.com/".into()),
                event_types: Some(vec!["contact.exploded".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    match bad {
        Error::Validation(fields) => {
            let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(names, ["url", "event_types"]);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }

    // Users below company admin may not; other organizations see nothing.
    let refused = org.user(&crm).webhooks().list().await.unwrap_err();
    assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
    let theirs = other.admin(&crm);
    assert!(theirs.webhooks().list().await.unwrap().is_empty());
    assert_not_found(
        &theirs.webhooks().get(sub.id).await.unwrap_err(),
        "webhook subscription",
    );
    assert_not_found(
        &theirs.webhooks().delete(sub.id).await.unwrap_err(),
        "webhook subscription",
    );
    assert_not_found(
        &theirs
            .webhooks()
            .deliveries(sub.id, None, None, 10)
            .await
            .unwrap_err(),
        "webhook subscription",
    );
    assert!(theirs.webhooks().rotate_secret(sub.id, None).await.is_err());
    let log = t
        .webhooks()
        .deliveries(sub.id, None, None, 10)
        .await
        .unwrap();
    assert_not_found(
        &theirs
            .webhooks()
            .redeliver(sub.id, log.data[0].id)
            .await
            .unwrap_err(),
        "webhook delivery",
    );
    // Rotation overlaps are bounded.
    assert!(matches!(
        t.webhooks()
            .rotate_secret(sub.id, Some(TimeDelta::days(8)))
            .await,
        Err(Error::Validation(_))
    ));

    // Deleted, with its log; the organization may subscribe again.
    t.webhooks().delete(sub.id).await.unwrap();
    assert!(t.webhooks().list().await.unwrap().is_empty());
    assert_not_found(
        &t.webhooks().delete(sub.id).await.unwrap_err(),
        "webhook subscription",
    );
    subscribe(&t, receiver.url(), &[]).await;
}

/// The `last_error` of the subscription's newest delivery, once there is one (30 s at most).
async fn until_error(t: &Tenant, id: WebhookSubscriptionId) -> String {
    for _ in 0..600 {
        let log = t.webhooks().deliveries(id, None, None, 1).await.unwrap();
        if let Some(error) = log.data.first().and_then(|d| d.last_error.clone()) {
            return error;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no failed attempt of {id} within 30 s");
}

/// An `https` URL gets TLS or nothing: a receiver that speaks plain HTTP gets no request in the
/// clear, and the log says why.
async fn https_deliveries_speak_tls_or_nothing(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let plain = Receiver::start(|_, _| 200).await;
    let (sub, _) = subscribe(&t, plain.https_url(), &[]).await;
    t.contact("Ada").await;
    let (stop, worker) = start(&crm, quick());
    let error = until_error(&t, sub.id).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert!(error.contains("TLS handshake failed"), "{error}");
    assert!(plain.hits().is_empty(), "nothing was sent in the clear");
}

/// A delivery over TLS completes when the receiver's certificate comes from a root the sender
/// trusts (here a test CA added with `trust_root_certificate`, as a private CA would be); a
/// receiver whose certificate comes from another CA gets nothing, and the log says that its
/// certificate is not trusted.
async fn https_deliveries_trust_the_given_roots_and_no_other(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let ours = TestCa::new("ours");
    let theirs = TestCa::new("theirs");
    let trusted = Receiver::start_tls(ours.server_config(), |_, _| 200).await;
    let untrusted = Receiver::start_tls(theirs.server_config(), |_, _| 200).await;
    let (good, secret) = subscribe(&t, trusted.https_url(), &[]).await;
    let (bad, _) = subscribe(&t, untrusted.https_url(), &[]).await;
    t.contact("Ada").await;

    let sender = WebhookSender::default()
        .trust_root_certificate(ours.root_der())
        .unwrap();
    let (stop, worker) = start_with(&crm, sender, quick());
    let hits = trusted
        .until("the delivery over TLS", |h| delivered(h) == 1)
        .await;
    verify(&secret, &hits[0]);
    assert_eq!(hits[0].json["type"], "contact.created");
    let error = until_error(&t, bad.id).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert!(
        error.starts_with("TLS handshake failed: the receiver's certificate is not trusted"),
        "{error}"
    );
    assert!(untrusted.hits().is_empty(), "nothing was sent to it");
    let log = t
        .webhooks()
        .deliveries(good.id, None, None, 10)
        .await
        .unwrap();
    assert_eq!(log.data[0].status, DeliveryStatus::Delivered);
    assert!(matches!(
        WebhookSender::default().trust_root_certificate(b"not a certificate".to_vec()),
        Err(crm_axum::WebhookRootError { .. })
    ));
}

/// A subscription belongs to its organization (as with Stripe's and GitHub's webhooks), not to
/// whoever made it: deactivating the admin who created one, or revoking the API key that did,
/// neither stops nor pauses it, and it still says who created it.
async fn subscriptions_outlive_their_creators(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let system = crm.tenant(&TenantContext::system(org.id));
    let receiver = Receiver::start(|_, _| 200).await;
    let (by_admin, _) = subscribe(&admin, receiver.url(), &["contact.*"]).await;
    let (key, _) = admin
        .api_keys()
        .create(NewApiKey {
            name: "integration".into(),
            scopes: vec![ApiKeyScope::All],
        })
        .await
        .unwrap();
    let as_key = crm.tenant(&TenantContext::api_key(org.id, key.id.uuid()));
    let (by_key, _) = subscribe(&as_key, receiver.url(), &["account.*"]).await;
    assert_eq!(by_admin.created_by, Some(org.admin.uuid()));
    assert_eq!(by_key.created_by, Some(key.id.uuid()));

    // Another admin takes over: the creators go.
    system
        .users()
        .create(NewUser {
            email: "successor@example.com".into(),
            name: "Successor".into(),
            password: None,
            role: Role::CompanyAdmin,
        })
        .await
        .unwrap();
    admin.api_keys().revoke(key.id).await.unwrap();
    system.users().deactivate(org.admin).await.unwrap();

    system.contact("Ada").await;
    system.account("Initech").await;
    let (stop, worker) = start(&crm, quick());
    let hits = receiver
        .until("a change to each subscription", |h| delivered(h) == 2)
        .await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let mut types: Vec<&str> = hits
        .iter()
        .filter_map(|h| h.json["type"].as_str())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["account.created", "contact.created"]);
    let listed = system.webhooks().list().await.unwrap();
    let creators: Vec<(bool, Option<uuid::Uuid>)> =
        listed.iter().map(|s| (s.active, s.created_by)).collect();
    assert_eq!(
        creators,
        [(true, Some(org.admin.uuid())), (true, Some(key.id.uuid()))]
    );
}

/// Three workers, each with a connection pool of its own, deliver from one PostgreSQL database
/// while eight writers commit changes: each change reaches each subscription exactly once (one
/// attempt, answered 2xx), and each record's changes arrive in their order.
#[tokio::test]
async fn concurrent_workers_deliver_each_change_once_in_record_order() {
    let Some((crm, url)) = crate::harness::postgres_with_url().await else {
        return;
    };
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let receivers = [
        Receiver::start(|_, _| 200).await,
        Receiver::start(|_, _| 200).await,
    ];
    let mut subs = Vec::new();
    for r in &receivers {
        subs.push(subscribe(&t, r.url(), &["contact.*"]).await.0);
    }
    let mut crms = vec![crm.clone()];
    for _ in 0..2 {
        crms.push(crate::harness::connect(&url).await.unwrap());
    }
    let workers: Vec<Running> = crms.iter().map(|c| start(c, quick())).collect();

    const WRITERS: usize = 8;
    const UPDATES: usize = 5;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let t = t.clone();
        writers.spawn(async move {
            let contact = t.contact(&format!("w{w}")).await;
            for i in 1..=UPDATES {
                t.update_json(contact.id, json!({ "last_name": format!("w{w}-{i}") }))
                    .await
                    .unwrap();
            }
            (w, contact.id)
        });
    }
    let contacts = writers.join_all().await;
    let expected = WRITERS * (UPDATES + 1);
    for r in &receivers {
        r.until("every change", |h| delivered(h) == expected).await;
    }
    // Longer than a few passes: a change sent twice would show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (stop, worker) in workers {
        stop.send(()).unwrap();
        worker.await.unwrap().unwrap();
    }

    for r in &receivers {
        let hits = r.hits();
        assert_eq!(hits.len(), expected, "{:#?}", summary(&hits));
        for (w, id) in &contacts {
            let names: Vec<&str> = hits
                .iter()
                .filter(|h| h.json["data"]["record_id"] == json!(id))
                .filter_map(|h| h.json["data"]["changes"]["last_name"]["after"].as_str())
                .collect();
            let mut want = vec![format!("w{w}")];
            want.extend((1..=UPDATES).map(|i| format!("w{w}-{i}")));
            assert_eq!(names, want, "{:#?}", summary(&hits));
        }
    }
    for sub in &subs {
        let log = t
            .webhooks()
            .deliveries(sub.id, None, None, 1_000)
            .await
            .unwrap();
        assert_eq!(log.data.len(), expected);
        for d in &log.data {
            assert_eq!(
                (d.status, d.attempts),
                (DeliveryStatus::Delivered, 1),
                "{d:?}"
            );
        }
    }
    for c in crms.into_iter().skip(1) {
        c.close().await;
    }
}

/// A subscription that names a permission set delivers what a holder of the set may see: an
/// account with the field the set hides removed, a contact (out of its reach) as a tombstone.
async fn a_subscription_with_a_permission_set_delivers_what_the_set_sees(crm: Crm) {
    use crm_core::access::{EntityAccess, FieldRule, NewPermissionSet};
    use std::collections::BTreeMap;

    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let receiver = Receiver::start(|_, _| 200).await;
    let (sub, _) = subscribe(&admin, receiver.url(), &["account.*", "contact.*"]).await;
    assert_eq!(sub.permission_set_id, None);
    let set = admin
        .permission_sets()
        .create(NewPermissionSet {
            name: "Partner".into(),
            description: "accounts without revenue".into(),
            entities: BTreeMap::from([("accounts".to_owned(), EntityAccess::ALL)]),
            fields: BTreeMap::from([(
                "accounts".to_owned(),
                BTreeMap::from([("annual_revenue_minor".to_owned(), FieldRule::Hidden)]),
            )]),
        })
        .await
        .unwrap();
    admin
        .permission_sets()
        .assign_to_webhook_subscription(sub.id.uuid(), Some(set.id))
        .await
        .unwrap();
    assert_eq!(
        admin
            .webhooks()
            .get(sub.id)
            .await
            .unwrap()
            .permission_set_id,
        Some(set.id.uuid())
    );
    // The set is in use: it may not go.
    assert!(matches!(
        admin.permission_sets().delete(set.id).await,
        Err(Error::Conflict(_))
    ));

    admin
        .accounts()
        .create(crm_core::NewAccount {
            name: "Initech".into(),
            annual_revenue_minor: Some(500),
            annual_revenue_currency: Some("EUR".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    admin.contact("Ada").await;
    let (stop, worker) = start(&crm, quick());
    let hits = receiver
        .until("the account and the contact", |h| delivered(h) == 2)
        .await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let of = |t: &str| {
        hits.iter()
            .find(|h| h.json["type"] == t)
            .unwrap_or_else(|| panic!("no {t}: {:?}", summary(&hits)))
            .json["data"]
            .clone()
    };
    let account = of("account.created");
    assert_eq!(account["changes"]["name"]["after"], "Initech");
    assert!(
        account["changes"].get("annual_revenue_minor").is_none(),
        "{account}"
    );
    let contact = of("contact.created");
    assert_eq!(contact["changes"], json!({}), "a tombstone: {contact}");
    assert_eq!(contact["actor_id"], Value::Null);
}

crate::on_both_backends!(
    a_subscription_with_a_permission_set_delivers_what_the_set_sees,
    https_deliveries_speak_tls_or_nothing,
    https_deliveries_trust_the_given_roots_and_no_other,
    subscriptions_outlive_their_creators,
    deliveries_are_signed_retried_in_record_order_and_replayed,
    endpoints_that_are_gone_or_keep_failing_are_disabled,
    the_feed_is_the_outbox_and_subscriptions_stay_in_their_organization
);
