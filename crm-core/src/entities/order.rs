//! The order entities depend on each other in, derived from the registry.

use super::EntityKind;
use crate::record::Kind;

impl EntityKind {
    /// Every kind, each before the kinds it links to: deleting records in this order never
    /// leaves a link to a deleted record (a trash purge, an import undone). Derived from the
    /// registry: a kind links to the targets of its link columns, and a kind without a timeline
    /// (activities, which are what timelines show) to every kind with one. Self-links (an
    /// account's parent) impose no order.
    ///
    /// ```
    /// use crm_core::EntityKind;
    /// let order = EntityKind::referrers_first();
    /// let at = |k| order.iter().position(|o| *o == k).unwrap();
    /// assert!(at(EntityKind::Activity) < at(EntityKind::Contact));
    /// assert!(at(EntityKind::Contact) < at(EntityKind::Account));
    /// ```
    pub fn referrers_first() -> Vec<EntityKind> {
        let mut left: Vec<EntityKind> = EntityKind::ALL.to_vec();
        let mut order = Vec::with_capacity(left.len());
        while !left.is_empty() {
            // The first kind no remaining kind links to (on a cycle, the first left).
            let next = left
                .iter()
                .position(|&k| !left.iter().any(|&other| links_to(other, k)))
                .unwrap_or(0);
            order.push(left.remove(next));
        }
        order
    }
}

/// Whether records of `from` may link to records of `to` (another kind).
fn links_to(from: EntityKind, to: EntityKind) -> bool {
    from != to
        && ((!from.has_timeline() && to.has_timeline())
            || from
                .columns()
                .iter()
                .any(|c| matches!(c.kind, Kind::Ref { table, .. } if table == to.table())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kind_comes_after_a_kind_it_links_to() {
        let order = EntityKind::referrers_first();
        assert_eq!(order.len(), EntityKind::ALL.len());
        for (i, &earlier) in order.iter().enumerate() {
            for &later in &order[i + 1..] {
                assert!(!links_to(later, earlier), "{later:?} links to {earlier:?}");
            }
        }
    }
}
