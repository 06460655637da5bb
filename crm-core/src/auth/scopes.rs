//! [`ApiKeyScope`]: what an API key may do, chosen when it is made.
//!
//! A scope is written as text: `forms` (post web forms: `POST /api/v1/webhooks/forms`),
//! `changes` (read the change feed: `GET /api/v1/changes`), `<entity>:read` and `<entity>:write` for every entity of the registry (`accounts:read`,
//! `invoices:write`…; write implies read of the same entity), or `all` (everything an API key
//! may do: every entity read and write, web forms, the settings routes). Keys made before
//! scopes existed have `all`, so they keep the access they had. The HTTP layer (crm-axum)
//! decides which scopes a request needs and refuses the rest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::entities::EntityKind;
use crate::error::{Error, Result};

/// One thing an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKeyScope {
    /// Everything an API key may do (keys made before scopes existed).
    All,
    /// Post web forms (`POST /api/v1/webhooks/forms`), which create leads.
    Forms,
    /// Read the change feed (`GET /api/v1/changes`): every change of every entity and user of
    /// the organization, so it reveals as much as reading them all.
    Changes,
    /// Read records of one entity (`accounts:read`).
    Read(EntityKind),
    /// Create, change, trash and restore records of one entity, and read them
    /// (`accounts:write`).
    Write(EntityKind),
}

impl ApiKeyScope {
    /// Every scope there is, derived from the entity registry: `all`, `forms`, `changes`, then
    /// read and write of each entity.
    pub fn every() -> Vec<ApiKeyScope> {
        let mut out = vec![ApiKeyScope::All, ApiKeyScope::Forms, ApiKeyScope::Changes];
        for kind in EntityKind::ALL {
            out.push(ApiKeyScope::Read(*kind));
            out.push(ApiKeyScope::Write(*kind));
        }
        out
    }

    /// Whether holding this scope grants `needed`.
    pub fn grants(self, needed: ApiKeyScope) -> bool {
        match (self, needed) {
            (ApiKeyScope::All, _) => true,
            (ApiKeyScope::Write(a), ApiKeyScope::Read(b) | ApiKeyScope::Write(b)) => a == b,
            (held, needed) => held == needed,
        }
    }
}

impl fmt::Display for ApiKeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKeyScope::All => f.write_str("all"),
            ApiKeyScope::Forms => f.write_str("forms"),
            ApiKeyScope::Changes => f.write_str("changes"),
            ApiKeyScope::Read(kind) => write!(f, "{}:read", kind.table()),
            ApiKeyScope::Write(kind) => write!(f, "{}:write", kind.table()),
        }
    }
}

impl FromStr for ApiKeyScope {
    type Err = Error;

    /// Parses `all`, `forms`, `changes`, `<entity>:read` or `<entity>:write`.
    ///
    /// # Errors
    /// [`Error::Validation`] (`scopes`, `unknown_scope`) for anything else.
    fn from_str(s: &str) -> Result<Self> {
        let parsed = match s {
            "all" => Some(ApiKeyScope::All),
            "forms" => Some(ApiKeyScope::Forms),
            "changes" => Some(ApiKeyScope::Changes),
            _ => s.split_once(':').and_then(|(table, access)| {
                let kind = EntityKind::from_table(table)?;
                match access {
                    "read" => Some(ApiKeyScope::Read(kind)),
                    "write" => Some(ApiKeyScope::Write(kind)),
                    _ => None,
                }
            }),
        };
        parsed.ok_or_else(|| {
            Error::invalid(
                "scopes",
                "unknown_scope",
                format!(
                    "unknown scope {s:?}; scopes are {}",
                    ApiKeyScope::every()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }
}

impl Serialize for ApiKeyScope {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiKeyScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The scopes of one key. Stored as one text column, space-separated (`forms leads:read`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ApiKeyScopes(Vec<ApiKeyScope>);

impl ApiKeyScopes {
    /// These scopes, without repeats, in the given order.
    pub fn new(scopes: impl IntoIterator<Item = ApiKeyScope>) -> Self {
        let mut out = Vec::new();
        for s in scopes {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Self(out)
    }

    /// Whether these scopes grant `needed`.
    pub fn grant(&self, needed: ApiKeyScope) -> bool {
        self.0.iter().any(|held| held.grants(needed))
    }

    /// Whether they include [`ApiKeyScope::All`].
    pub fn is_all(&self) -> bool {
        self.0.contains(&ApiKeyScope::All)
    }

    /// The scopes, in order.
    pub fn as_slice(&self) -> &[ApiKeyScope] {
        &self.0
    }

    /// The stored form: space-separated.
    pub(crate) fn stored(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl From<String> for ApiKeyScopes {
    /// Reads the stored form. A stored scope this version does not know (an entity removed
    /// since) grants nothing: it is left out rather than failing the key.
    fn from(stored: String) -> Self {
        Self::new(stored.split_whitespace().filter_map(|s| s.parse().ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_grant() {
        for scope in ApiKeyScope::every() {
            assert_eq!(scope.to_string().parse::<ApiKeyScope>().unwrap(), scope);
        }
        let s = ApiKeyScopes::from("forms leads:write nope:read".to_owned());
        assert_eq!(s.stored(), "forms leads:write");
        assert!(s.grant(ApiKeyScope::Read(EntityKind::Lead)));
        assert!(!s.grant(ApiKeyScope::Read(EntityKind::Account)));
        assert!(!s.grant(ApiKeyScope::All));
        assert!(ApiKeyScopes::from("all".to_owned()).grant(ApiKeyScope::Forms));
        assert!("accounts:admin".parse::<ApiKeyScope>().is_err());
    }
}
