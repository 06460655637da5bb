//! [`AuthLayer`]: the auth machinery as a tower layer, for the API's routes and a host's own.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use crm_core::Crm;
use tower::{Layer, Service};

use super::{AuthConfig, AuthState, Tenant, authorize};

/// A tower layer that accepts CRM credentials (`Authorization: Bearer` with an access token
/// from `POST /api/v1/auth/login`, or an API key `crm_key_…`) and puts the caller's [`Tenant`]
/// into the request, where handlers take it as an extractor. A request without valid
/// credentials never reaches the handler: it answers the API's 401 problem.
///
/// API keys carry scopes: on a host's own routes this layer admits only keys with the `all`
/// scope (it cannot know what those routes do); others answer 403 `out_of_scope`.
///
/// Put it on a host router of any state with `Router::route_layer` (only the routes added
/// before it; unknown paths keep answering 404) or `Router::layer`. Build the API from the
/// same layer with [`crate::router_with_auth`] so that both share one principal cache: a user
/// deactivated or an API key revoked through the API is then refused at once on the host's
/// routes too (with separate layers, after at most [`AuthConfig::principal_cache_ttl`]).
///
/// Cheap to clone: clones share their state.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    pub(crate) crm: Crm,
    pub(crate) auth: Arc<AuthState>,
    /// Whether it guards the API's own routes (whose scopes it knows) rather than a host's.
    pub(crate) api: bool,
}

impl AuthLayer {
    /// A layer that authenticates against `crm` with the keys and settings of `config`.
    pub fn new(crm: Crm, config: AuthConfig) -> Self {
        Self {
            crm,
            auth: Arc::new(AuthState::new(config)),
            api: false,
        }
    }

    /// The same layer (one shared state) guarding the API's own routes.
    pub(crate) fn for_api(&self) -> Self {
        Self {
            api: true,
            ..self.clone()
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`AuthLayer`] around `S`.
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone that was driven to readiness serves this request; a fresh one stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let authorized = authorize(&layer, req.method(), req.uri(), req.headers()).await;
            match authorized {
                Ok(ctx) => {
                    // The request's log lines name the organization (never the caller).
                    tracing::Span::current()
                        .record("org", tracing::field::display(ctx.organization_id()));
                    // The events its writes log name the request (`x-request-id`, as
                    // `server::app` sets it: a UUID; other values a client sent are not kept).
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| uuid::Uuid::try_parse(v).ok());
                    let ctx = ctx.with_request_id(request_id);
                    req.extensions_mut().insert(Tenant(layer.crm.tenant(&ctx)));
                    Ok(inner.call(req).await?.into_response())
                }
                Err(e) => Ok(e.into_response()),
            }
        })
    }
}
