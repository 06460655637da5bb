//! Accounts: the companies an organization sells to.

use crate::entities::EntityKind;
use crate::id::Id;
use crate::money::{MAX_MINOR, Money};
use crate::record::{Entity, MatchOn, MatchRule};
use crate::users::UserId;
use crate::validation::Validator;

/// The id of an account.
pub type AccountId = Id<Account>;

crate::record_type! {
    /// A company: a customer, prospect or partner.
    pub struct Account / NewAccount / AccountPatch {
        /// Company name (required, at most 200 characters).
        name: String [sortable, max_length(200), title],
        /// Web domain, e.g. `acme.com`.
        domain: Option<String> [sortable, max_length(500), searchable],
        /// Website URL.
        website: Option<String> [max_length(500), searchable],
        /// Industry, free text.
        industry: Option<String> [max_length(500), searchable],
        /// Main phone number.
        phone: Option<String> [max_length(500), searchable],
        /// Street address.
        street: Option<String> [max_length(500)],
        /// City.
        city: Option<String> [max_length(500), searchable],
        /// State, province or region.
        region: Option<String> [max_length(500)],
        /// Postal code.
        postal_code: Option<String> [max_length(500)],
        /// Country (ISO 3166-1 alpha-2 recommended).
        country: Option<String> [max_length(500), searchable],
        /// Number of employees.
        employee_count: Option<i64> [range(0, i64::MAX)],
        /// Annual revenue in minor units of `annual_revenue_currency`.
        annual_revenue_minor: Option<i64> [range(0, MAX_MINOR)],
        /// ISO 4217 currency of `annual_revenue_minor`.
        annual_revenue_currency: Option<String> [currency],
        /// The user responsible for the account.
        owner_id: Option<UserId> [owner],
    }
}

impl Account {
    /// Its annual revenue, when known.
    pub fn annual_revenue(&self) -> Option<Money> {
        Money::from_columns(
            self.annual_revenue_minor,
            self.annual_revenue_currency.as_deref(),
        )
    }
}

impl Entity for Account {
    const KIND: EntityKind = EntityKind::Account;
    const MATCH_ON: &'static [MatchOn] = &[
        MatchOn::new(MatchRule::Domain, &["domain"]),
        MatchOn::company_name(&["name"]),
    ];
    const MERGEABLE: bool = true;

    fn validate(&self, v: &mut Validator) {
        v.check(
            self.annual_revenue_minor.is_none() || self.annual_revenue_currency.is_some(),
            "annual_revenue_currency",
            "required",
            "is required with annual_revenue_minor",
        );
    }
}
