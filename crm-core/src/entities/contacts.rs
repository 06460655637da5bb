//! Contacts: the people an organization deals with.

use crate::entities::AccountId;
use crate::entities::EntityKind;
use crate::id::Id;
use crate::record::{Entity, MatchOn, MatchRule};
use crate::users::UserId;
use crate::validation::Validator;

/// The id of a contact.
pub type ContactId = Id<Contact>;

crate::record_type! {
    /// A person, usually working at an account.
    pub struct Contact / NewContact / ContactPatch {
        /// Given name.
        first_name: Option<String> [sortable, max_length(200), personal, title],
        /// Family name.
        last_name: Option<String> [sortable, max_length(200), personal, title],
        /// Email address.
        email: Option<String> [sortable, email, personal, title],
        /// Phone number.
        phone: Option<String> [max_length(200), personal, searchable],
        /// Mobile number.
        mobile: Option<String> [max_length(200), personal, searchable],
        /// Job title.
        title: Option<String> [max_length(200), searchable],
        /// The account (company) the contact works at; must be a live account of the same
        /// organization.
        account_id: Option<AccountId>,
        /// The user responsible for the contact.
        owner_id: Option<UserId> [owner],
    }
}

impl Entity for Contact {
    const KIND: EntityKind = EntityKind::Contact;
    const MATCH_ON: &'static [MatchOn] = &[
        MatchOn::new(MatchRule::Email, &["email"]),
        MatchOn::new(MatchRule::Name, &["first_name", "last_name"]),
    ];
    const MERGEABLE: bool = true;

    fn validate(&self, v: &mut Validator) {
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        if blank(&self.first_name) && blank(&self.last_name) && blank(&self.email) {
            v.push(
                "last_name",
                "required",
                "a contact needs a first name, a last name or an email",
            );
        }
    }
}

impl crate::record::Records<'_, Contact> {
    /// Erases a contact for good (GDPR): unlinks the opportunities and converted leads that
    /// point at it, removes its activities, blanks what the event log recorded about it, and
    /// leaves an `erased` tombstone event. Company admins only.
    pub async fn erase(&self, id: ContactId) -> crate::Result<crate::record::Erasure> {
        self.erase_with(id).await
    }
}
