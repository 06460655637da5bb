//! Accounts: the companies an organization sells to.

use crate::entities::EntityKind;
use crate::id::Id;
use crate::record::Entity;
use crate::users::UserId;
use crate::validation::Validator;

/// The id of an account.
pub type AccountId = Id<Account>;

crate::record_type! {
    /// A company: a customer, prospect or partner.
    pub struct Account / NewAccount / AccountPatch {
        /// Company name (required, at most 200 characters).
        name: String [sortable],
        /// Web domain, e.g. `acme.com`.
        domain: Option<String> [sortable],
        /// Website URL.
        website: Option<String>,
        /// Industry, free text.
        industry: Option<String>,
        /// Main phone number.
        phone: Option<String>,
        /// Street address.
        street: Option<String>,
        /// City.
        city: Option<String>,
        /// State, province or region.
        region: Option<String>,
        /// Postal code.
        postal_code: Option<String>,
        /// Country (ISO 3166-1 alpha-2 recommended).
        country: Option<String>,
        /// Number of employees.
        employee_count: Option<i64>,
        /// Annual revenue in minor units of `annual_revenue_currency`.
        annual_revenue_minor: Option<i64>,
        /// ISO 4217 currency of `annual_revenue_minor`.
        annual_revenue_currency: Option<String>,
        /// The user responsible for the account.
        owner_id: Option<UserId>,
    }
}

impl Entity for Account {
    const KIND: EntityKind = EntityKind::Account;

    fn validate(&self, v: &mut Validator) {
        v.text("name", &self.name, true, 200);
        for (field, value) in [
            ("domain", &self.domain),
            ("website", &self.website),
            ("industry", &self.industry),
            ("phone", &self.phone),
            ("street", &self.street),
            ("city", &self.city),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country", &self.country),
        ] {
            v.opt_text(field, value.as_deref(), 500);
        }
        v.non_negative("employee_count", self.employee_count);
        v.non_negative("annual_revenue_minor", self.annual_revenue_minor);
        match (&self.annual_revenue_minor, &self.annual_revenue_currency) {
            (Some(_), None) => v.push(
                "annual_revenue_currency",
                "required",
                "is required with annual_revenue_minor",
            ),
            (_, Some(c)) => v.currency("annual_revenue_currency", c),
            (None, None) => {}
        }
    }

    fn owner(&self) -> Option<UserId> {
        self.owner_id
    }
}
