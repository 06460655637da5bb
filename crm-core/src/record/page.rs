//! [`Page`]: one page of any list (records, events, timelines), with the cursor of the next.

use serde::Serialize;

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The rows, in order.
    pub data: Vec<T>,
    /// Pass it as [`ListQuery::cursor`] for the next page; `None` on the last page.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}
