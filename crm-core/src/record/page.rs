//! [`Page`]: one page of any list (records, events, timelines), with the cursor of the next.

use serde::Serialize;

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The rows, in order.
    pub data: Vec<T>,
    /// Pass it as `ListQuery::cursor` for the next page; `None` on the last page.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `rows` read with a limit of `limit + 1`: at most `limit` of them, and, when
    /// the extra row came back (more are waiting), `cursor` of the last one kept.
    pub(crate) fn of(mut rows: Vec<T>, limit: usize, cursor: impl FnOnce(&T) -> String) -> Self {
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor)
        } else {
            None
        };
        Page {
            data: rows,
            next_cursor,
        }
    }
}
