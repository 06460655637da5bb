//! The state every handler shares.

use std::sync::Arc;

use crm_core::Crm;

use crate::auth::{AuthLayer, AuthState};

/// The router's state: the library handle and the auth machinery. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ApiState {
    pub(crate) crm: Crm,
    pub(crate) auth: Arc<AuthState>,
}

impl From<&AuthLayer> for ApiState {
    /// The API's state shares the layer's auth machinery (caches, limits, keys).
    fn from(layer: &AuthLayer) -> Self {
        ApiState {
            crm: layer.crm.clone(),
            auth: layer.auth.clone(),
        }
    }
}
