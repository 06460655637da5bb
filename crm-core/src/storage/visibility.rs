//! [`ReadBinding`]: what the row-level-security policies let a restricted reader see.
// PLACEHOLDER: replaced by the acc-rls branch.

use uuid::Uuid;

/// What the row-level-security policies of entity tables let a restricted reader see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadBinding {
    pub(crate) user: Option<Uuid>,
    pub(crate) teammates: Vec<Uuid>,
    pub(crate) grantees: Vec<Uuid>,
    pub(crate) reach: Vec<(&'static str, &'static str)>,
}

impl ReadBinding {
    pub(crate) fn new(
        user: Option<Uuid>,
        teammates: Vec<Uuid>,
        grantees: Vec<Uuid>,
        reach: Vec<(&'static str, &'static str)>,
    ) -> Self {
        Self {
            user,
            teammates,
            grantees,
            reach,
        }
    }
}
