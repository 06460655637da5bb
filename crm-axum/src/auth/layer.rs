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

use super::{AuthConfig, AuthState, Tenant, resolve};

/// A tower layer that accepts CRM credentials (`Authorization: Bearer` with an access token
/// from `POST /api/v1/auth/login`, or an API key `crm_key_…`) and puts the caller's [`Tenant`]
/// into the request, where handlers take it as an extractor. A request without valid
/// credentials never reaches the handler: it answers the API's 401 problem.
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
}

impl AuthLayer {
    /// A layer that authenticates against `crm` with the keys and settings of `config`.
    pub fn new(crm: Crm, config: AuthConfig) -> Self {
        Self {
            crm,
            auth: Arc::new(AuthState::new(config)),
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
            match resolve(&layer, req.headers()).await {
                Ok(ctx) => {
                    // The request's log lines name the organization (never the caller).
                    tracing::Span::current()
                        .record("org", tracing::field::display(ctx.organization_id()));
                    req.extensions_mut().insert(Tenant(layer.crm.tenant(&ctx)));
                    Ok(inner.call(req).await?.into_response())
                }
                Err(e) => Ok(e.into_response()),
            }
        })
    }
}
