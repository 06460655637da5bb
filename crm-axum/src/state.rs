//! The state every handler shares.

use std::sync::Arc;

use crm_core::Crm;

use crate::auth::{AuthLayerState, AuthState};

/// The router's state: the library handle and the auth machinery. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ApiState {
    pub(crate) crm: Crm,
    pub(crate) auth: Arc<AuthState>,
}

impl From<&ApiState> for AuthLayerState {
    fn from(s: &ApiState) -> Self {
        AuthLayerState {
            crm: s.crm.clone(),
            auth: s.auth.clone(),
        }
    }
}
