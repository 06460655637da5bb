//! Paging of the simple lists (users, organizations). Their items are crm-core's own types,
//! which describe themselves (feature `openapi` of crm-core).

use crm_core::Page;
use serde::Deserialize;
use uuid::Uuid;

/// Keyset paging of simple lists (users, organizations).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// Page size (1–100, default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<Uuid>,
}

impl Paging {
    /// The page size asked for.
    pub(crate) fn size(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 100)
    }

    /// A page from the rows read with [`Paging::size`]: a full page has a cursor (the next
    /// page may be empty: the core's simple lists read no extra row to know).
    pub(crate) fn page<T>(&self, rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> Page<T> {
        let next_cursor = if rows.len() >= self.size() as usize {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Page {
            data: rows,
            next_cursor,
        }
    }
}
