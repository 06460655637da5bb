//! [`ReadBinding`]: what the row-level-security policies let a restricted reader see.
//!
//! On PostgreSQL a connection that serves a read for a restricted caller (one whose permission
//! set narrows what they read) is bound to this, as session settings the policies of migration
//! `0020_visibility_by_ids` read; a connection bound to none lets every row of its tenant
//! through. SQLite has no policies: there the library's own conditions are the only ones.

use uuid::Uuid;

/// How the policy of one table screens a restricted reader's rows (`crm.read.<table>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TableRead {
    /// Every row of the tenant.
    All,
    /// The rows whose owner or creator is one of the table's people, and the records listed
    /// as shared.
    Ids,
    /// The rows of the table's people, and the rows shared with the reader, looked up one by
    /// one (a reader with more shares on the table than the library lists).
    IdsAndShares,
}

impl TableRead {
    fn as_str(self) -> &'static str {
        match self {
            TableRead::All => "all",
            TableRead::Ids => "ids",
            TableRead::IdsAndShares => "ids+shares",
        }
    }
}

/// What the row-level-security policies of entity tables let a restricted reader see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadBinding {
    /// The reader and their teams: whom the shares they benefit from name.
    pub(crate) grantees: Vec<Uuid>,
    /// For every entity table: its mode, the people whose records the reader sees there, and
    /// the records of it shared with the reader.
    pub(crate) tables: Vec<TableBinding>,
}

/// The binding of one entity table: see [`ReadBinding::tables`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TableBinding {
    pub(crate) table: &'static str,
    pub(crate) read: TableRead,
    pub(crate) people: Vec<Uuid>,
    pub(crate) shared: Vec<Uuid>,
}

impl ReadBinding {
    /// The session settings that bind a connection to this reader, by name, the tenant's
    /// aside. (The plan cache's own choice serves: with page sizes written into the text, it
    /// keeps a generic plan for a restricted reader's list as for anyone's; docs/benchmarks.md,
    /// "Page sizes in the text".)
    pub(crate) fn settings(&self) -> Vec<(String, String)> {
        let mut out = vec![("crm.grantees".to_owned(), uuid_array(&self.grantees))];
        for t in &self.tables {
            out.push((format!("crm.read.{}", t.table), t.read.as_str().to_owned()));
            out.push((format!("crm.ids.{}", t.table), uuid_array(&t.people)));
            out.push((format!("crm.shared.{}", t.table), uuid_array(&t.shared)));
        }
        out
    }
}

/// `{a,b,…}`: PostgreSQL's text form of a `uuid[]`.
fn uuid_array(ids: &[Uuid]) -> String {
    let mut out = String::with_capacity(2 + ids.len() * 37);
    out.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_every_table_and_list_ids_as_arrays() {
        let (me, team, shared) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let b = ReadBinding {
            grantees: vec![me, team],
            tables: vec![
                TableBinding {
                    table: "accounts",
                    read: TableRead::Ids,
                    people: vec![me],
                    shared: vec![shared],
                },
                TableBinding {
                    table: "contacts",
                    read: TableRead::All,
                    people: vec![],
                    shared: vec![],
                },
            ],
        };
        let s = b.settings();
        assert!(s.contains(&("crm.grantees".to_owned(), format!("{{{me},{team}}}"))));
        assert!(s.contains(&("crm.read.accounts".to_owned(), "ids".to_owned())));
        assert!(s.contains(&("crm.ids.accounts".to_owned(), format!("{{{me}}}"))));
        assert!(s.contains(&("crm.shared.accounts".to_owned(), format!("{{{shared}}}"))));
        assert!(s.contains(&("crm.read.contacts".to_owned(), "all".to_owned())));
        assert!(s.contains(&("crm.ids.contacts".to_owned(), "{}".to_owned())));
        assert!(!s.iter().any(|(name, _)| name == "plan_cache_mode"));
    }
}
