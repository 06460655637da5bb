//! Outbound webhooks, what crm-core decides alone: which URLs the default policy refuses.
//! Delivery needs an HTTP transport, so it is tested where one is, against a real receiver:
//! crm-axum's `tests/api/webhook_delivery.rs`.

use crm_core::{Crm, Error, NewWebhookSubscription};

use crate::harness::Org;

/// The default policy: `https` only, and no address of this machine or a private network.
#[tokio::test]
async fn the_default_policy_refuses_plain_http_and_private_addresses() {
    let crm = Crm::connect("sqlite::memory:").await.unwrap();
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let mut refused = std::collections::HashMap::new();
    for url in [
        "http://hooks.example.com/in",
        "https://127.0.0.1/in",
        "https://localhost:8443/in",
        "https://[::1]/in",
        "https://169.254.169.254/latest",
        "https://10.0.0.7/in",
        "not a url",
    ] {
        let err = t
            .webhooks()
            .create(NewWebhookSubscription {
                url: url.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        refused.insert(url, matches!(err, Error::Validation(_)));
    }
    assert!(refused.values().all(|v| *v), "{refused:?}");
    let (sub, secret) = t
        .webhooks()
        .create(NewWebhookSubscription {
            url: "https://hooks.example.com/in".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sub.active && secret.starts_with("whsec_"));
}
