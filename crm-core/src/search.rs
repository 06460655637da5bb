//! Full-text search across the entities whose columns are marked `[searchable]` (accounts,
//! contacts, leads, opportunities): ranked, prefix-matching for type-ahead, one organization
//! only, keyset-paged without a result cap.
//!
//! The index is written in the same transaction as the record (migration `0009_search`): on
//! PostgreSQL a GIN index on `(organization_id, tsvector of the row)` (btree_gin), on SQLite an
//! FTS5 table per entity kept by triggers. A write is found by the next search; a record in the
//! trash is not found, a purged or erased one is gone from the index with its row.
//!
//! Words are the runs of letters and digits of the query (at most [`MAX_SEARCH_TERMS`]), each
//! matched as a prefix of a word of the record (`lov` finds "Lovelace"); a record is found when
//! it has every word. Emails, domains and URLs count as their parts (`example` finds
//! "ada@example.com"). Neither side stems: names and addresses are not prose. SQLite also folds
//! diacritics (`jose` finds "José"); PostgreSQL's `simple` configuration does not.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::grants::Grants;
use crate::access::rules::{FieldRule, Need};
use crate::entities::EntityKind;
use crate::error::{Error, Result};
use crate::record::Page;
use crate::record::reach_scope;
use crate::storage::Sql;
use crate::tenant::Tenant;

/// The largest page of search hits.
pub const MAX_SEARCH_PAGE: u32 = 100;

/// The page size when none is asked for.
pub const DEFAULT_SEARCH_PAGE: u32 = 20;

/// The longest query, in characters.
pub const MAX_SEARCH_QUERY: usize = 200;

/// The most words a query may have.
pub const MAX_SEARCH_TERMS: usize = 16;

/// What to search for.
///
/// ```
/// use crm_core::{EntityKind, SearchQuery};
/// let q = SearchQuery { q: "ada lov".into(), kinds: vec![EntityKind::Contact], ..Default::default() };
/// assert_eq!(q.limit, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    /// The words to find, each as a prefix (at most [`MAX_SEARCH_QUERY`] characters).
    pub q: String,
    /// The kinds to search (each must be searchable); every searchable kind when empty.
    pub kinds: Vec<EntityKind>,
    /// Hits per page, 1–[`MAX_SEARCH_PAGE`] ([`DEFAULT_SEARCH_PAGE`] when `None`).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One record a search found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// Its kind.
    pub kind: EntityKind,
    /// Its id (read it at `/{kind's table}/{id}`).
    pub id: Uuid,
    /// What names it: its `[title]` columns joined by spaces (a contact's first and last name
    /// and email).
    pub title: String,
    /// How well it matches, higher first. Comparable within one search; on SQLite (BM25) it
    /// also moves as the organization's records change.
    pub rank: f64,
}

impl EntityKind {
    /// Whether full-text search covers it (it has `[searchable]` columns).
    pub fn searchable(self) -> bool {
        self.columns().iter().any(|c| c.searchable)
    }
}

/// Where the previous page ended: its last hit's rank, kind (table) and id.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    rank: f64,
    table: &'static str,
    id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        format!("{}~{}~{}", self.rank, self.table, self.id.simple())
    }

    fn decode(text: &str) -> Result<Self> {
        let mut parts = text.splitn(3, '~');
        let (rank, table, id) = (parts.next(), parts.next(), parts.next());
        (|| {
            let rank: f64 = rank?.parse().ok().filter(|r: &f64| r.is_finite())?;
            let table = EntityKind::from_table(table?)?.table();
            let id = Uuid::try_parse(id?).ok()?;
            Some(Cursor { rank, table, id })
        })()
        .ok_or_else(|| {
            Error::invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor this search returned",
            )
        })
    }
}

/// The words of `q`, lower-cased: runs of letters and digits.
fn terms(q: &str) -> Result<Vec<String>> {
    if q.chars().count() > MAX_SEARCH_QUERY {
        return Err(Error::invalid(
            "q",
            "too_long",
            format!("must be at most {MAX_SEARCH_QUERY} characters"),
        ));
    }
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return Err(Error::invalid(
            "q",
            "required",
            "needs at least one letter or digit",
        ));
    }
    if words.len() > MAX_SEARCH_TERMS {
        return Err(Error::invalid(
            "q",
            "too_many_terms",
            format!("must have at most {MAX_SEARCH_TERMS} words"),
        ));
    }
    Ok(words)
}

#[derive(sqlx::FromRow)]
struct Row {
    kind: String,
    id: Uuid,
    title: String,
    rank: f64,
}

impl Tenant {
    /// One page of the records of the organization that have every word of `query.q` (as a
    /// prefix), best first. Every member may search; what a hit names, they may read.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, EntityKind, NewContact, NewOrganization, SearchQuery, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let ada = t.contacts().create(NewContact {
    ///     first_name: Some("Ada".into()),
    ///     last_name: Some("Lovelace".into()),
    ///     ..Default::default()
    /// }).await?;
    /// let page = t.search(&SearchQuery { q: "lov".into(), ..Default::default() }).await?;
    /// assert_eq!(page.data[0].id, ada.id.uuid());
    /// assert_eq!(page.data[0].kind, EntityKind::Contact);
    /// assert_eq!(page.data[0].title, "Ada Lovelace");
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Validation`] for a query without words, too long or with too many words, a kind
    /// that is not searchable, a `limit` out of range, or a cursor this search did not return.
    #[tracing::instrument(level = "debug", skip_all, fields(org = %self.context().organization_id()))]
    pub async fn search(&self, query: &SearchQuery) -> Result<Page<SearchHit>> {
        let words = terms(&query.q)?;
        let limit = query.limit.unwrap_or(DEFAULT_SEARCH_PAGE);
        crate::validation::page_limit(limit, MAX_SEARCH_PAGE)?;
        if let Some(kind) = query.kinds.iter().find(|k| !k.searchable()) {
            return Err(Error::invalid(
                "kinds",
                "not_searchable",
                format!("{} records are not searchable", kind.name()),
            ));
        }
        let after = query.cursor.as_deref().map(Cursor::decode).transpose()?;
        let grants = self.grants().await?;
        let kinds = searched_kinds(&grants, &query.kinds)?;
        if kinds.is_empty() {
            return Ok(Page::of(Vec::new(), limit as usize, |_: &SearchHit| {
                String::new()
            }));
        }

        let org = self.context().organization_id();
        let mut s = self.reading(&grants).await?;
        let mut conn = s.conn();
        let backend = conn.backend();
        let matching = backend.search_match(&words);
        let mut q = Sql::new("select kind, id, title, rank from (");
        for (i, kind) in kinds.into_iter().enumerate() {
            if i > 0 {
                q.push(" union all ");
            }
            let titles = kind.columns().iter().filter(|c| c.title).map(|c| c.name);
            let tables = (kind.table(), kind.search_table());
            backend.push_search_select(&mut q, tables, titles, org.uuid(), &matching);
            let scope = reach_scope("r", kind.table(), kind.name(), kind.columns());
            grants.push_reach(&mut q, scope, Need::Read);
        }
        q.push(") h");
        if let Some(c) = after {
            q.push(" where rank < ").bind(c.rank);
            q.push(" or (rank = ").bind(c.rank);
            q.push(" and (kind > ").bind(c.table);
            q.push(" or (kind = ").bind(c.table);
            q.push(" and id > ").bind(c.id).push(")))");
        }
        q.push(" order by rank desc, kind, id").limit(limit + 1);
        let rows: Vec<Row> = conn.fetch_all(&q).await?;
        let data: Vec<SearchHit> = rows
            .into_iter()
            .filter_map(|r| {
                Some(SearchHit {
                    kind: EntityKind::from_table(&r.kind)?,
                    id: r.id,
                    title: r.title.split_whitespace().collect::<Vec<_>>().join(" "),
                    rank: r.rank,
                })
            })
            .collect();
        Ok(Page::of(data, limit as usize, |last| {
            Cursor {
                rank: last.rank,
                table: last.kind.table(),
                id: last.id,
            }
            .encode()
        }))
    }
}

/// The kinds a search of `requested` (every searchable kind when empty) reads for a caller
/// with `grants`: a kind the caller may not read at all, or whose searched text holds a field
/// hidden from them (a hit would reveal it), is left out; named explicitly, it is refused. A
/// kind out of an API key's scopes is refused either way (403 `out_of_scope`).
fn searched_kinds(grants: &Grants, requested: &[EntityKind]) -> Result<Vec<EntityKind>> {
    let mut kinds = Vec::new();
    for kind in EntityKind::ALL.iter().copied() {
        if !kind.searchable() || !(requested.is_empty() || requested.contains(&kind)) {
            continue;
        }
        let table = kind.table();
        let hidden = kind
            .columns()
            .iter()
            .find(|c| c.searchable && grants.field_rule(table, c.name) == Some(FieldRule::Hidden));
        // An API key searches the kinds of its scopes, named or not, as it always has.
        grants.require_in_scope(table)?;
        match (grants.require_some(table, Need::Read), hidden) {
            (Ok(()), None) => kinds.push(kind),
            _ if requested.is_empty() => {}
            (Err(e), _) => return Err(e),
            (Ok(()), Some(column)) => {
                return Err(Error::invalid(
                    "kinds",
                    "hidden_field",
                    format!(
                        "{table} are searched by {}, which is hidden from this caller",
                        column.name
                    ),
                ));
            }
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits() {
        assert_eq!(
            terms("Ada  LOVE-lace, ada@Example.com José").unwrap(),
            ["ada", "love", "lace", "ada", "example", "com", "josé"]
        );
        for (q, code) in [
            ("", "required"),
            (" -- '' ", "required"),
            (&"a ".repeat(17), "too_many_terms"),
            (&"a".repeat(201), "too_long"),
        ] {
            let Err(Error::Validation(errors)) = terms(q) else {
                panic!("{q:?} passed");
            };
            assert_eq!(errors[0].code, code, "{q:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            rank: 0.060_792_7,
            table: "contacts",
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "x~contacts~1",
            "1~invoicez~00",
            "NaN~contacts~0",
            "1~contacts",
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
