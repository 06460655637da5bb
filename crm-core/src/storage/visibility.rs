//! [`ReadBinding`]: what the row-level-security policies let a restricted reader see.
//!
//! On PostgreSQL a connection that serves a read for a restricted caller (one whose permission
//! set narrows what they read) is bound to this, as session settings the policies of migration
//! `0018_record_visibility` read; a connection bound to none lets every row of its tenant
//! through. SQLite has no policies: there the library's own conditions are the only ones.

use uuid::Uuid;

/// The setting that says a reader is restricted (`on`).
pub(crate) const RESTRICTED: &str = "crm.restricted";

/// What the row-level-security policies of entity tables let a restricted reader see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadBinding {
    /// The reader's user: their own records.
    pub(crate) user: Option<Uuid>,
    /// The members of the reader's teams, the reader included.
    pub(crate) teammates: Vec<Uuid>,
    /// The reader and their teams: whom the shares they benefit from name.
    pub(crate) grantees: Vec<Uuid>,
    /// The reader's read reach by table (`none`, `own`, `team`, `all`), for every entity table.
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

    /// The session settings that bind a connection to this reader, by name, the tenant's
    /// aside.
    pub(crate) fn settings(&self) -> Vec<(String, String)> {
        let list = |ids: &[Uuid]| {
            let inner: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            format!("{{{}}}", inner.join(","))
        };
        let mut out = vec![
            (RESTRICTED.to_owned(), "on".to_owned()),
            (
                "crm.user_id".to_owned(),
                self.user.map(|u| u.to_string()).unwrap_or_default(),
            ),
            ("crm.teammates".to_owned(), list(&self.teammates)),
            ("crm.grantees".to_owned(), list(&self.grantees)),
        ];
        out.extend(
            self.reach
                .iter()
                .map(|(table, reach)| (format!("crm.reach.{table}"), (*reach).to_owned())),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_every_table_and_list_ids_as_arrays() {
        let (me, team) = (Uuid::now_v7(), Uuid::now_v7());
        let b = ReadBinding::new(
            Some(me),
            vec![me],
            vec![me, team],
            vec![("accounts", "own"), ("contacts", "none")],
        );
        let s = b.settings();
        assert_eq!(s[0], (RESTRICTED.to_owned(), "on".to_owned()));
        assert_eq!(s[2].1, format!("{{{me}}}"));
        assert_eq!(s[3].1, format!("{{{me},{team}}}"));
        assert!(s.contains(&("crm.reach.contacts".to_owned(), "none".to_owned())));
    }
}
