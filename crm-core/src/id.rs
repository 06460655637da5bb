//! Typed record ids: `Id<Account>` cannot be passed where an `Id<Contact>` is expected.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};
use uuid::Uuid;

/// The id of a record of kind `E`: a UUIDv7 (time ordered, so index friendly) with the kind in
/// its type.
///
/// It serializes as the plain UUID string and is stored as the database's UUID type (a 16-byte
/// blob on SQLite).
///
/// ```
/// use crm_core::{AccountId, ContactId};
/// let a = AccountId::new();
/// let same: AccountId = a.to_string().parse().unwrap();
/// assert_eq!(a, same);
/// // let c: ContactId = a; // does not compile: an account id is not a contact id
/// # let _ = ContactId::new();
/// ```
pub struct Id<E>(Uuid, PhantomData<fn() -> E>);

impl<E> Id<E> {
    /// A new time-ordered id (UUIDv7).
    pub fn new() -> Self {
        Self::from_uuid(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid, PhantomData)
    }

    /// The UUID inside.
    pub const fn uuid(self) -> Uuid {
        self.0
    }
}

impl<E> Default for Id<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Clone for Id<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Id<E> {}
impl<E> PartialEq for Id<E> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<E> Eq for Id<E> {}
impl<E> PartialOrd for Id<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Id<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}
impl<E> Hash for Id<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}
impl<E> fmt::Debug for Id<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
impl<E> fmt::Display for Id<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl<E> FromStr for Id<E> {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self::from_uuid)
    }
}
impl<E> From<Uuid> for Id<E> {
    fn from(uuid: Uuid) -> Self {
        Self::from_uuid(uuid)
    }
}
impl<E> From<Id<E>> for Uuid {
    fn from(id: Id<E>) -> Self {
        id.0
    }
}

impl<E> Serialize for Id<E> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
impl<'de, E> Deserialize<'de> for Id<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Uuid::deserialize(d).map(Self::from_uuid)
    }
}

impl<E, DB: Database> Type<DB> for Id<E>
where
    Uuid: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <Uuid as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <Uuid as Type<DB>>::compatible(ty)
    }
}
impl<'q, E, DB: Database> Encode<'q, DB> for Id<E>
where
    Uuid: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        self.0.encode_by_ref(buf)
    }
}
impl<'r, E, DB: Database> Decode<'r, DB> for Id<E>
where
    Uuid: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Uuid::decode(value).map(Self::from_uuid)
    }
}
