//! The seam between deciding what to deliver (here) and carrying it (a host's HTTP client):
//! crm-core speaks no HTTP, so the [`crate::Worker`] posts through a [`WebhookTransport`]
//! (`crm_axum::WebhookSender` is the ready one).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// One delivery to post: a JSON body with its Standard Webhooks headers, to a destination the
/// [`crate::WebhookPolicy`] approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `https` (TLS, verified against `host`) or plain `http`.
    pub tls: bool,
    /// The host name (or address) of the URL: the TLS server name.
    pub host: String,
    /// `host[:port]` as the URL wrote it: the `Host` header.
    pub authority: String,
    /// The path and query of the URL: the request target.
    pub target: String,
    /// The addresses the host resolved to, each checked against the policy. Connect to one of
    /// these and nothing else: resolving the name again could reach an address never checked.
    pub addresses: Vec<SocketAddr>,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
    /// The whole exchange (connect, TLS, request, the answer's status line) must fit in it.
    pub timeout: Duration,
}

/// What a post came to: the receiver's HTTP status, or why none came.
pub type Answer = Result<u16, String>;

/// Carries deliveries to receivers: a `POST` of [`Outgoing::body`] with its headers and
/// `content-type: application/json`, redirects not followed (a 3xx is an answer like any
/// other, and counts as a failure).
///
/// ```
/// use crm_core::{Answer, Outgoing, WebhookTransport};
/// use std::{future::Future, pin::Pin};
///
/// /// Accepts every delivery without sending it (a dry run).
/// #[derive(Debug)]
/// struct DryRun;
///
/// impl WebhookTransport for DryRun {
///     fn post(&self, out: Outgoing) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
///         Box::pin(async move {
///             println!("would post {} bytes to {}", out.body.len(), out.authority);
///             Ok(204)
///         })
///     }
/// }
/// ```
pub trait WebhookTransport: Send + Sync + std::fmt::Debug + 'static {
    /// Posts `out` and answers the status of the receiver's answer.
    fn post(&self, out: Outgoing) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>>;
}
