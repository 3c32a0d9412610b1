//! Exact money helpers: ISO 4217 exponents and major/minor unit conversion.
//!
//! Everything here works on `rust_decimal::Decimal` and integers; no float
//! ever touches an amount.

use rust_decimal::Decimal;

/// The number of decimal places of `currency` per ISO 4217 (JPY 0, SAR 2,
/// KWD 3), or `None` for a code ISO 4217 does not know.
pub fn exponent(currency: &str) -> Option<u32> {
    iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .map(u32::from)
}

/// Converts a major-unit amount to integer minor units with `exp` decimals.
/// `None` when the amount has more decimals than `exp` (the conversion would
/// not be exact) or does not fit an `i64`.
pub fn to_minor(amount: Decimal, exp: u32) -> Option<i64> {
    let scaled = amount.checked_mul(Decimal::from(10_i64.checked_pow(exp)?))?;
    if scaled.fract() != Decimal::ZERO {
        return None;
    }
    i64::try_from(scaled.trunc()).ok()
}

/// Converts integer minor units with `exp` decimals to a major-unit amount.
pub fn from_minor(minor: i64, exp: u32) -> Decimal {
    Decimal::new(minor, exp)
}

/// Renders `amount` for the wire: trailing zeros beyond the currency's
/// exponent are dropped and at least `exp` decimals are kept, so `60.000`
/// (a product of `12.00 * 5.0`) becomes `60.00` for a 2-decimal currency.
pub fn normalize(amount: Decimal, exp: u32) -> Decimal {
    let mut n = amount.normalize();
    if n.scale() < exp {
        n.rescale(exp);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(exponent("JPY"), Some(0));
        assert_eq!(exponent("SAR"), Some(2));
        assert_eq!(exponent("KWD"), Some(3));
        assert_eq!(exponent("XYZ"), None);
    }

    #[test]
    fn minor_conversion_is_exact_or_refused() {
        assert_eq!(to_minor(d("24.98"), 2), Some(2498));
        assert_eq!(to_minor(d("1.234"), 3), Some(1234));
        assert_eq!(to_minor(d("1.005"), 2), None);
        assert_eq!(to_minor(d("100"), 0), Some(100));
        assert_eq!(from_minor(2498, 2), d("24.98"));
        assert_eq!(normalize(d("60.000"), 2).to_string(), "60.00");
        assert_eq!(normalize(d("300"), 2).to_string(), "300.00");
        assert_eq!(normalize(d("1.2345"), 2).to_string(), "1.2345");
    }
}
