//! The entity registry: the one list of the CRM's entities, and the [`EntityVisitor`] that runs
//! generic code for each of them.
//!
//! Everything that iterates entities — the REST routes, custom-field targets, activity links,
//! erasure referrers, the CLI's choices, the index proof, the tenancy tests — derives its list
//! from [`EntityKind::ALL`] or visits each kind with [`EntityKind::visit`]. An entity type cannot
//! exist without its entry: [`Entity`](crate::record::Entity) requires `const KIND`, and the
//! registry checks at compile time that each entry's type names its own kind.

use crate::record::Entity;

/// Generic code to run for one entity type, chosen at run time by an [`EntityKind`](crate::EntityKind).
///
/// ```
/// use crm_core::{Entity, EntityKind, EntityVisitor};
///
/// struct Table;
/// impl EntityVisitor for Table {
///     type Output = &'static str;
///     fn visit<E: Entity>(self) -> &'static str {
///         E::TABLE
///     }
/// }
/// assert_eq!(EntityKind::Contact.visit(Table), "contacts");
/// ```
pub trait EntityVisitor {
    /// What the visit returns.
    type Output;
    /// Runs with `E` the entity type of the visited kind.
    fn visit<E: Entity>(self) -> Self::Output;
}

/// Declares [`EntityKind`] from one line per entity:
/// `Type(plural) = "singular", timeline: bool`, where `Type` is the entity type (in scope),
/// `plural` its table, URL segment and `Tenant` accessor, `"singular"` its name in errors, the
/// event log and activity links, and `timeline` whether activities attach to it.
macro_rules! registry {
    (
        $(
            $(#[doc = $doc:expr])*
            $ty:ident($plural:ident) = $name:literal, timeline: $timeline:literal
        );+ $(;)?
    ) => {
        $crate::text_enum! {
            /// The kinds of record of the CRM: the entity registry. Serialized, stored and
            /// parsed as the singular name (`"account"`).
            pub enum EntityKind {
                $(
                    $(#[doc = $doc])*
                    $ty = $name
                ),+
            }
        }

        impl EntityKind {
            /// Its table, which is also its URL segment (`"accounts"`).
            pub const fn table(self) -> &'static str {
                match self {
                    $(EntityKind::$ty => stringify!($plural),)+
                }
            }

            /// Its full-text table on SQLite (`"accounts_search"`, migration `0009_search`).
            pub(crate) const fn search_table(self) -> &'static str {
                match self {
                    $(EntityKind::$ty => concat!(stringify!($plural), "_search"),)+
                }
            }

            /// Its singular name (`"account"`), as in errors, events and activity links.
            pub const fn name(self) -> &'static str {
                self.as_str()
            }

            /// Whether activities attach to records of this kind (and so it has a timeline).
            pub const fn has_timeline(self) -> bool {
                match self {
                    $(EntityKind::$ty => $timeline,)+
                }
            }

            /// Its own columns (the common ones are in [`crate::record::COMMON_FIELDS`]).
            pub fn columns(self) -> &'static [$crate::record::Column] {
                match self {
                    $(EntityKind::$ty => <$ty as $crate::record::Fields>::COLUMNS,)+
                }
            }

            /// Runs `visitor` with the entity type of this kind.
            pub fn visit<V: EntityVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $(EntityKind::$ty => visitor.visit::<$ty>(),)+
                }
            }

            /// The kind whose table (URL segment) is `table`.
            pub fn from_table(table: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.table() == table)
            }
        }

        /// How many kinds have a timeline.
        const WITH_TIMELINE_COUNT: usize = {
            let mut n = 0;
            let mut i = 0;
            while i < EntityKind::ALL.len() {
                if EntityKind::ALL[i].has_timeline() {
                    n += 1;
                }
                i += 1;
            }
            n
        };

        impl EntityKind {
            /// The names of the kinds with a timeline: what activities may attach to.
            pub const WITH_TIMELINE: &'static [&'static str] = &{
                let mut out = [""; WITH_TIMELINE_COUNT];
                let (mut i, mut n) = (0, 0);
                while i < EntityKind::ALL.len() {
                    if EntityKind::ALL[i].has_timeline() {
                        out[n] = EntityKind::ALL[i].name();
                        n += 1;
                    }
                    i += 1;
                }
                out
            };
        }

        // Each entry's type names its own kind.
        $(
            const _: () = assert!(
                matches!(<$ty as $crate::record::Entity>::KIND, EntityKind::$ty),
                concat!(stringify!($ty), "::KIND must be EntityKind::", stringify!($ty)),
            );
        )+

        impl $crate::tenant::Tenant {
            $(
                #[doc = concat!("The ", stringify!($plural), " of the organization.")]
                pub fn $plural(&self) -> $crate::record::Records<'_, $ty> {
                    self.records()
                }
            )+
        }
    };
}
pub(super) use registry;
