//! Exact money: an ISO 4217 [`Currency`] and a [`Money`] amount in it.
//!
//! Amounts are [`rust_decimal::Decimal`] values that never carry more decimal
//! places than their currency's ISO 4217 exponent (JPY 0, SAR 2, KWD 3).
//! Conversions to integer minor units ([`Money::to_minor_units`]) and to major
//! units at the currency's scale ([`Money::to_major_decimal`]) are exact or
//! rejected; there is no binary floating point anywhere.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject, StringValidation};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a [`Currency`] or [`Money`] value could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not an ISO 4217 alphabetic currency code (codes are upper case).
    #[error("unknown currency code {code:?}: expected an ISO 4217 code such as \"EUR\"")]
    UnknownCurrency {
        /// The code as given.
        code: String,
    },
    /// The currency exists but has no minor unit (e.g. XAU, XXX), so no money
    /// amount in it can be exact.
    #[error("currency {code} has no ISO 4217 minor unit and is not supported for payments")]
    UnsupportedCurrency {
        /// The ISO 4217 code.
        code: String,
    },
    /// The amount has more decimal places than the currency allows.
    #[error("amount {amount} has {found} decimal places but {currency} allows at most {allowed}")]
    TooManyDecimals {
        /// The amount as given.
        amount: String,
        /// The ISO 4217 code.
        currency: String,
        /// The currency's exponent.
        allowed: u32,
        /// The significant decimal places of the amount.
        found: u32,
    },
    /// The amount text is not a plain decimal number (`-?digits[.digits]`).
    #[error(
        "invalid amount {input:?}: expected a plain decimal number such as \"24.98\" (no exponent, separators or sign other than a leading '-')"
    )]
    InvalidAmount {
        /// The text as given.
        input: String,
    },
    /// The amount does not fit the target representation (the 96-bit decimal
    /// mantissa, or an `i64` of minor units).
    #[error("amount {amount} {currency} is out of range: {detail}")]
    OutOfRange {
        /// The amount (or a description of it).
        amount: String,
        /// The ISO 4217 code.
        currency: String,
        /// What it did not fit.
        detail: &'static str,
    },
}

/// An ISO 4217 currency with a defined minor unit.
///
/// Backed by the maintained ISO 4217 table of the `iso_currency` crate.
/// Currencies without a minor unit (precious metals, `XXX`, `XDR`, ...) are
/// rejected by [`Currency::from_code`]. Serializes as its three-letter code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    inner: iso_currency::Currency,
    exponent: u32,
}

impl Currency {
    /// Looks up an upper-case ISO 4217 alphabetic code such as `"SAR"`.
    ///
    /// Unknown codes give [`MoneyError::UnknownCurrency`]; currencies without a
    /// minor unit give [`MoneyError::UnsupportedCurrency`].
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let inner =
            iso_currency::Currency::from_code(code).ok_or_else(|| MoneyError::UnknownCurrency {
                code: code.to_owned(),
            })?;
        let exponent = inner
            .exponent()
            .ok_or_else(|| MoneyError::UnsupportedCurrency {
                code: inner.code().to_owned(),
            })?;
        Ok(Currency {
            inner,
            exponent: u32::from(exponent),
        })
    }

    /// The three-letter ISO 4217 code, e.g. `"SAR"`.
    pub fn code(&self) -> &'static str {
        self.inner.code()
    }

    /// The ISO 4217 exponent: the number of decimal places of the minor unit
    /// (JPY 0, SAR 2, KWD 3).
    pub fn exponent(&self) -> u32 {
        self.exponent
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> String {
        "Currency".to_owned()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        let mut schema = SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            string: Some(Box::new(StringValidation {
                min_length: Some(3),
                max_length: Some(3),
                pattern: Some("^[A-Z]{3}$".to_owned()),
            })),
            ..SchemaObject::default()
        };
        schema.metadata().description =
            Some("ISO 4217 alphabetic currency code with a minor unit, e.g. \"EUR\".".to_owned());
        schema.into()
    }
}

/// An exact amount of money in one [`Currency`].
///
/// The amount never has more decimal places than the currency's exponent and
/// is stored at exactly that scale (`Money::parse("24.9", "AUD")` holds
/// `24.90`). It may be zero or negative (e.g. the result of
/// [`Money::checked_sub`]); refund requests check positivity separately.
///
/// Serializes as `{"amount": "24.98", "currency": "AUD"}`: the amount is a
/// string so that no consumer parses it as a binary float.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

/// `10^n` as an `i128`, for `n` up to 38.
fn pow10(n: u32) -> Option<i128> {
    10_i128.checked_pow(n)
}

/// Whether `s` is a plain decimal number: `-?[0-9]+(\.[0-9]+)?`.
fn is_plain_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

impl Money {
    /// Builds a money value, rejecting amounts with more significant decimal
    /// places than the currency allows (`10.00` JPY is fine, `10.5` JPY is not).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let exponent = currency.exponent();
        let normalized = amount.normalize();
        let found = normalized.scale();
        if found > exponent {
            return Err(MoneyError::TooManyDecimals {
                amount: amount.to_string(),
                currency: currency.code().to_owned(),
                allowed: exponent,
                found,
            });
        }
        let out_of_range = || MoneyError::OutOfRange {
            amount: amount.to_string(),
            currency: currency.code().to_owned(),
            detail: "the amount at the currency's scale exceeds 28 significant digits",
        };
        let mantissa = pow10(exponent - found)
            .and_then(|factor| normalized.mantissa().checked_mul(factor))
            .ok_or_else(out_of_range)?;
        let mut amount =
            Decimal::try_from_i128_with_scale(mantissa, exponent).map_err(|_| out_of_range())?;
        if amount.is_zero() {
            // No negative zero: `-0.00` and `0.00` are the same money.
            amount.set_sign_positive(true);
        }
        Ok(Money { amount, currency })
    }

    /// Parses a plain decimal amount (`"24.98"`, `"-1"`, `"1000000.01"`) in the
    /// currency with the given ISO 4217 code.
    ///
    /// Scientific notation, digit separators, a leading `+` and surrounding
    /// whitespace are rejected.
    pub fn parse(amount: &str, currency: &str) -> Result<Money, MoneyError> {
        let currency = Currency::from_code(currency)?;
        if !is_plain_decimal(amount) {
            return Err(MoneyError::InvalidAmount {
                input: amount.to_owned(),
            });
        }
        let decimal = Decimal::from_str_exact(amount).map_err(|_| MoneyError::OutOfRange {
            amount: amount.to_owned(),
            currency: currency.code().to_owned(),
            detail: "a decimal holds at most 28 significant digits",
        })?;
        Money::new(decimal, currency)
    }

    /// Builds a money value from an integer count of minor units
    /// (`from_minor_units(2498, AUD)` is AUD 24.98; `from_minor_units(1, JPY)` is JPY 1).
    ///
    /// Every `i64` is representable, so this cannot fail.
    pub fn from_minor_units(minor: i64, currency: Currency) -> Money {
        let mut amount = Decimal::from_i128_with_scale(i128::from(minor), currency.exponent());
        if amount.is_zero() {
            amount.set_sign_positive(true);
        }
        Money { amount, currency }
    }

    /// The exact amount as an integer count of minor units (AUD 24.98 is 2498,
    /// KWD 1.234 is 1234, JPY 1 is 1). Amounts beyond `i64` give
    /// [`MoneyError::OutOfRange`].
    pub fn to_minor_units(&self) -> Result<i64, MoneyError> {
        // The amount is always stored at exactly the currency's scale, so the
        // mantissa is the number of minor units.
        debug_assert_eq!(self.amount.scale(), self.currency.exponent());
        i64::try_from(self.amount.mantissa()).map_err(|_| MoneyError::OutOfRange {
            amount: self.amount.to_string(),
            currency: self.currency.code().to_owned(),
            detail: "the number of minor units does not fit in an i64",
        })
    }

    /// The amount in major units with exactly the currency's number of decimal
    /// places (AUD `100.00`, JPY `10`, KWD `1.230`), for providers that take
    /// decimal JSON numbers (Optty, AfterPay).
    pub fn to_major_decimal(&self) -> Decimal {
        self.amount
    }

    /// The amount in major units (same value as [`Money::to_major_decimal`]).
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is strictly greater than zero.
    pub fn is_positive(&self) -> bool {
        self.amount > Decimal::ZERO
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// `self + other`; `None` if the currencies differ or the sum overflows.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let sum = self.amount.checked_add(other.amount)?;
        Money::new(sum, self.currency).ok()
    }

    /// `self - other`; `None` if the currencies differ or the difference overflows.
    pub fn checked_sub(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let difference = self.amount.checked_sub(other.amount)?;
        Money::new(difference, self.currency).ok()
    }

    /// `self * factor` (e.g. a unit price times a quantity); `None` on overflow.
    pub fn checked_mul(&self, factor: u32) -> Option<Money> {
        let product = self.amount.checked_mul(Decimal::from(factor))?;
        Money::new(product, self.currency).ok()
    }

    /// The zero amount in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor_units(0, currency)
    }
}

impl PartialOrd for Money {
    /// Amounts in the same currency compare by value; different currencies are unordered.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.amount.cmp(&other.amount))
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl fmt::Display for Money {
    /// `AUD 24.98`: the code, a space, and the amount with exactly the
    /// currency's number of decimal places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.amount)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Parses the [`Display`](fmt::Display) form, `"AUD 24.98"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(' ') {
            Some((code, amount)) => Money::parse(amount, code),
            None => Err(MoneyError::InvalidAmount {
                input: s.to_owned(),
            }),
        }
    }
}

// The wire form of `Money` (also its JSON Schema; the doc comment below is the
// schema's description).
/// An exact amount of money: a decimal string in major units and an ISO 4217
/// currency code. The amount has at most the currency's number of decimal places.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Money")]
struct MoneyWire {
    /// Decimal amount in major units as a string, with at most the currency's
    /// ISO 4217 number of decimal places, e.g. "24.98".
    #[schemars(regex(pattern = r"^-?[0-9]+(\.[0-9]+)?$"))]
    amount: String,
    /// ISO 4217 alphabetic currency code, e.g. "AUD".
    currency: Currency,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyWire {
            amount: self.amount.to_string(),
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(deserializer)?;
        Money::parse(&wire.amount, wire.currency.code()).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> String {
        "Money".to_owned()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        MoneyWire::json_schema(generator)
    }
}

/// Serde/JSON Schema helpers for a [`Decimal`] carried as a string.
pub(crate) mod decimal_string {
    use super::is_plain_decimal;
    use rust_decimal::Decimal;
    use schemars::r#gen::SchemaGenerator;
    use schemars::schema::{InstanceType, Schema, SchemaObject, StringValidation};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Decimal,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !is_plain_decimal(&text) {
            return Err(serde::de::Error::custom(format!(
                "invalid decimal {text:?}: expected a plain decimal number such as \"25.5\""
            )));
        }
        Decimal::from_str_exact(&text).map_err(serde::de::Error::custom)
    }

    /// JSON Schema of a decimal string.
    pub(crate) struct DecimalString;

    impl schemars::JsonSchema for DecimalString {
        fn is_referenceable() -> bool {
            false
        }

        fn schema_name() -> String {
            "DecimalString".to_owned()
        }

        fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
            SchemaObject {
                instance_type: Some(InstanceType::String.into()),
                string: Some(Box::new(StringValidation {
                    pattern: Some(r"^-?[0-9]+(\.[0-9]+)?$".to_owned()),
                    ..StringValidation::default()
                })),
                ..SchemaObject::default()
            }
            .into()
        }
    }
}
