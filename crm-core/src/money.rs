//! Money: an amount in minor units of an ISO 4217 currency.
//!
//! Records store amounts as two columns (`amount_minor`, `currency`), as they travel in JSON;
//! [`Money`] is how Rust code reads them as one value (`opportunity.amount()`,
//! `invoice.total()`) and adds them up without mixing currencies or overflowing.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The largest amount the library stores, in minor units: 10^15 (ten trillion euros in
/// cents). Amount columns are capped at it, so that sums over any realistic number of records
/// stay within 64 bits.
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency code: three upper-case ASCII letters (`EUR`).
///
/// ```
/// use crm_core::Currency;
/// let eur: Currency = "EUR".parse().unwrap();
/// assert_eq!(eur.as_str(), "EUR");
/// assert!("eur".parse::<Currency>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The code.
    pub fn as_str(&self) -> &str {
        // Only upper-case ASCII gets in (`from_str`), which is UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(code: &str) -> Result<Self> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(Error::invalid(
                "currency",
                "invalid_format",
                "must be an ISO 4217 code like EUR",
            )),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

/// An amount in minor units of a currency (cents of `EUR`), within ±[`MAX_MINOR`].
///
/// ```
/// use crm_core::Money;
/// let a = Money::new(1_050, "EUR".parse().unwrap()).unwrap();
/// let b = Money::new(2_000, "EUR".parse().unwrap()).unwrap();
/// assert_eq!(a.checked_add(b).unwrap().minor(), 3_050);
/// let usd = Money::new(1, "USD".parse().unwrap()).unwrap();
/// assert!(a.checked_add(usd).is_none(), "currencies are never mixed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// `minor` units of `currency`; `out_of_range` beyond ±[`MAX_MINOR`].
    pub fn new(minor: i64, currency: Currency) -> Result<Self> {
        if minor.unsigned_abs() > MAX_MINOR.unsigned_abs() {
            return Err(Error::invalid(
                "amount_minor",
                "out_of_range",
                format!("must be between -{MAX_MINOR} and {MAX_MINOR}"),
            ));
        }
        Ok(Self { minor, currency })
    }

    /// The amount of a record's pair of columns: `None` when either is empty or does not make
    /// a valid amount (records are validated on write, so only for rows written otherwise).
    pub fn from_columns(minor: Option<i64>, currency: Option<&str>) -> Option<Self> {
        Self::new(minor?, currency?.parse().ok()?).ok()
    }

    /// The amount in minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The sum, if both are in the same currency and it stays within ±[`MAX_MINOR`].
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Money::new(self.minor.checked_add(other.minor)?, self.currency).ok()
    }
}

impl fmt::Display for Money {
    /// `1050 EUR` (minor units: how many decimals a currency has is the host's business).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_upper_case_letters() {
        for bad in ["", "EU", "EURO", "eur", "E1R", "ÉUR"] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
        assert_eq!("JPY".parse::<Currency>().unwrap().to_string(), "JPY");
    }

    #[test]
    fn amounts_are_bounded() {
        let eur: Currency = "EUR".parse().unwrap();
        assert!(Money::new(MAX_MINOR, eur).is_ok());
        assert!(Money::new(-MAX_MINOR, eur).is_ok());
        assert!(Money::new(MAX_MINOR + 1, eur).is_err());
        assert!(Money::new(i64::MIN, eur).is_err());
        let max = Money::new(MAX_MINOR, eur).unwrap();
        assert!(max.checked_add(Money::new(1, eur).unwrap()).is_none());
        assert_eq!(Money::from_columns(Some(5), Some("nope")), None);
        assert_eq!(Money::from_columns(Some(5), None), None);
        assert_eq!(
            Money::from_columns(Some(5), Some("EUR")).unwrap().minor(),
            5
        );
    }
}
