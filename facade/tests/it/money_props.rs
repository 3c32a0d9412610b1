//! Exactness of `Money`: property tests over many currencies and amounts, and
//! the fixed examples the adapters depend on.

use proptest::prelude::*;
use refunds::{Currency, Money, MoneyError};
use rust_decimal::Decimal;

/// Currencies the property tests cover: exponents 0, 2 and 3.
const CURRENCIES: &[&str] = &[
    "JPY", "KRW", "SAR", "AUD", "PLN", "EUR", "USD", "KWD", "BHD", "JOD", "OMR", "TND",
];

fn currency(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn any_currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(CURRENCIES).prop_map(currency)
}

proptest! {
    #[test]
    fn minor_units_round_trip(c in any_currency(), minor in any::<i64>()) {
        let money = Money::from_minor_units(minor, c);
        prop_assert_eq!(money.to_minor_units(), Ok(minor));
        prop_assert_eq!(money.currency(), c);
    }

    #[test]
    fn amount_never_has_more_decimals_than_the_currency(c in any_currency(), minor in any::<i64>()) {
        let money = Money::from_minor_units(minor, c);
        prop_assert!(money.amount().normalize().scale() <= c.exponent());
        // Stored and rendered at exactly the currency's scale.
        prop_assert_eq!(money.to_major_decimal().scale(), c.exponent());
    }

    #[test]
    fn one_decimal_too_many_is_rejected(
        c in any_currency(),
        minor in any::<i64>(),
        last_digit in 1_i128..=9,
    ) {
        // `minor` followed by one more non-zero decimal: exponent + 1 significant decimals.
        let mantissa = i128::from(minor) * 10 + last_digit;
        let amount = Decimal::from_i128_with_scale(mantissa, c.exponent() + 1);
        let err = Money::new(amount, c).unwrap_err();
        prop_assert!(
            matches!(err, MoneyError::TooManyDecimals { allowed, found, .. }
                if allowed == c.exponent() && found == c.exponent() + 1),
            "unexpected error {err:?}"
        );
        // The same text is rejected by `parse` too.
        prop_assert!(Money::parse(&amount.to_string(), c.code()).is_err());
    }

    #[test]
    fn display_parses_back(c in any_currency(), minor in any::<i64>()) {
        let money = Money::from_minor_units(minor, c);
        let text = money.to_string();
        prop_assert_eq!(text.parse::<Money>(), Ok(money));
        let (code, amount) = text.split_once(' ').unwrap();
        prop_assert_eq!(code, c.code());
        prop_assert_eq!(Money::parse(amount, code), Ok(money));
    }

    #[test]
    fn json_round_trip(c in any_currency(), minor in any::<i64>()) {
        let money = Money::from_minor_units(minor, c);
        let json = serde_json::to_value(money).unwrap();
        prop_assert!(json["amount"].is_string());
        prop_assert_eq!(serde_json::from_value::<Money>(json).unwrap(), money);
    }

    #[test]
    fn trailing_zeros_are_accepted(c in any_currency(), minor in any::<i64>(), zeros in 1_u32..=4) {
        let money = Money::from_minor_units(minor, c);
        let padded = Decimal::from_i128_with_scale(
            i128::from(minor) * 10_i128.pow(zeros),
            c.exponent() + zeros,
        );
        prop_assert_eq!(Money::new(padded, c), Ok(money));
    }

    #[test]
    fn checked_add_sub_are_exact(c in any_currency(), a in any::<i32>(), b in any::<i32>()) {
        let x = Money::from_minor_units(i64::from(a), c);
        let y = Money::from_minor_units(i64::from(b), c);
        let sum = x.checked_add(&y).unwrap();
        prop_assert_eq!(sum.to_minor_units(), Ok(i64::from(a) + i64::from(b)));
        prop_assert_eq!(sum.checked_sub(&y), Some(x));
    }
}

fn minor(amount: &str, code: &str) -> i64 {
    Money::parse(amount, code)
        .unwrap()
        .to_minor_units()
        .unwrap()
}

#[test]
fn known_minor_unit_conversions() {
    assert_eq!(minor("0.1", "AUD"), 10);
    assert_eq!(minor("0.29", "AUD"), 29);
    assert_eq!(minor("24.98", "AUD"), 2498);
    assert_eq!(minor("1000000.01", "AUD"), 100_000_001);
    assert_eq!(minor("1.234", "KWD"), 1234);
    assert_eq!(minor("1", "JPY"), 1);
    assert_eq!(minor("10.00", "JPY"), 10);
    assert_eq!(minor("262346", "JPY"), 262_346);
    assert_eq!(minor("2623.46", "SAR"), 262_346);
}

#[test]
fn exponents_come_from_the_iso_table() {
    for (code, exponent) in [
        ("JPY", 0),
        ("KRW", 0),
        ("SAR", 2),
        ("AUD", 2),
        ("PLN", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
    ] {
        assert_eq!(currency(code).exponent(), exponent, "{code}");
        assert_eq!(currency(code).code(), code);
    }
}

#[test]
fn too_many_decimals_is_rejected_with_the_allowed_count() {
    let err = Money::parse("10.5", "JPY").unwrap_err();
    assert_eq!(
        err,
        MoneyError::TooManyDecimals {
            amount: "10.5".into(),
            currency: "JPY".into(),
            allowed: 0,
            found: 1,
        }
    );
    assert!(err.to_string().contains("at most 0"), "{err}");
    let err = Money::parse("24.985", "AUD").unwrap_err();
    assert!(err.to_string().contains("at most 2"), "{err}");
    assert!(Money::parse("1.2345", "KWD").is_err());
}

#[test]
fn unknown_and_unsupported_currencies_are_rejected() {
    // XXX ("no currency") exists in ISO 4217 but has no minor unit.
    for code in ["XXX", "XAU", "XDR"] {
        assert!(
            matches!(
                Currency::from_code(code),
                Err(MoneyError::UnsupportedCurrency { .. })
            ),
            "{code}"
        );
    }
    for code in ["ABC", "aud", "", "EURO", "€"] {
        assert!(
            matches!(
                Currency::from_code(code),
                Err(MoneyError::UnknownCurrency { .. })
            ),
            "{code}"
        );
    }
    assert!(Money::parse("1", "ABC").is_err());
    assert!(Money::parse("1", "XXX").is_err());
}

#[test]
fn only_plain_decimal_text_is_accepted() {
    for bad in [
        "", "1e3", "1E3", "+1", " 1", "1 ", "1_000", "1,00", ".5", "5.", "--1", "0x10", "NaN",
        "inf", "1.2.3",
    ] {
        assert!(
            matches!(
                Money::parse(bad, "AUD"),
                Err(MoneyError::InvalidAmount { .. })
            ),
            "{bad:?} should be rejected"
        );
    }
    assert_eq!(minor("-1.50", "AUD"), -150);
    assert_eq!(minor("007.10", "AUD"), 710);
}

#[test]
fn display_uses_exactly_the_currency_exponent() {
    assert_eq!(
        Money::parse("24.98", "AUD").unwrap().to_string(),
        "AUD 24.98"
    );
    assert_eq!(
        Money::parse("100", "AUD").unwrap().to_string(),
        "AUD 100.00"
    );
    assert_eq!(
        Money::parse("24.9", "AUD").unwrap().to_string(),
        "AUD 24.90"
    );
    assert_eq!(Money::parse("10.00", "JPY").unwrap().to_string(), "JPY 10");
    assert_eq!(
        Money::parse("1.23", "KWD").unwrap().to_string(),
        "KWD 1.230"
    );
    assert_eq!(
        Money::parse("-0.00", "EUR").unwrap().to_string(),
        "EUR 0.00"
    );
}

#[test]
fn major_decimal_has_the_currency_scale() {
    let m = Money::parse("100", "AUD").unwrap();
    assert_eq!(m.to_major_decimal().to_string(), "100.00");
    assert_eq!(
        serde_json::to_string(&json_decimal::JsonDecimal(m.to_major_decimal())).unwrap(),
        "100.00",
        "the wire type writes an exact JSON number"
    );
    let m = Money::parse("24.98", "AUD").unwrap();
    assert_eq!(
        serde_json::to_string(&json_decimal::JsonDecimal(m.to_major_decimal())).unwrap(),
        "24.98"
    );
}

#[test]
fn out_of_range_is_an_error_not_a_wrap() {
    let big = Money::parse("99999999999999999999.99", "USD").unwrap();
    assert!(matches!(
        big.to_minor_units(),
        Err(MoneyError::OutOfRange { .. })
    ));
    // 29 significant digits do not fit a decimal.
    assert!(matches!(
        Money::parse("123456789012345678901234567890", "JPY"),
        Err(MoneyError::OutOfRange { .. })
    ));
    let max = Money::from_minor_units(i64::MAX, currency("USD"));
    assert_eq!(max.to_minor_units(), Ok(i64::MAX));
    let min = Money::from_minor_units(i64::MIN, currency("KWD"));
    assert_eq!(min.to_minor_units(), Ok(i64::MIN));
}

#[test]
fn arithmetic_needs_one_currency() {
    let aud = Money::parse("1.00", "AUD").unwrap();
    let nzd = Money::parse("1.00", "NZD").unwrap();
    assert_eq!(aud.checked_add(&nzd), None);
    assert_eq!(aud.checked_sub(&nzd), None);
    assert_eq!(aud.partial_cmp(&nzd), None);
    assert!(aud.is_positive());
    assert!(!aud.checked_sub(&aud).unwrap().is_positive());
    assert!(aud.checked_sub(&aud).unwrap().is_zero());
    assert_eq!(
        aud.checked_mul(3),
        Some(Money::parse("3.00", "AUD").unwrap())
    );
}

#[test]
fn serde_shape_and_validation() {
    let m = Money::parse("24.98", "AUD").unwrap();
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"amount":"24.98","currency":"AUD"}"#
    );
    assert_eq!(
        serde_json::to_string(&Money::parse("7", "JPY").unwrap()).unwrap(),
        r#"{"amount":"7","currency":"JPY"}"#
    );
    let ok: Money = serde_json::from_str(r#"{"amount":"1.230","currency":"KWD"}"#).unwrap();
    assert_eq!(ok.to_minor_units(), Ok(1230));
    for bad in [
        r#"{"amount":"10.5","currency":"JPY"}"#,
        r#"{"amount":24.98,"currency":"AUD"}"#,
        r#"{"amount":"1e2","currency":"AUD"}"#,
        r#"{"amount":"1","currency":"ABC"}"#,
        r#"{"amount":"1","currency":"XAU"}"#,
        r#"{"amount":"1"}"#,
        r#"{"amount":"1","currency":"AUD","extra":1}"#,
    ] {
        assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
    }
    assert_eq!(serde_json::to_string(&currency("SAR")).unwrap(), r#""SAR""#);
    assert!(serde_json::from_str::<Currency>(r#""sar""#).is_err());
}

#[test]
fn json_schema_describes_the_string_amount() {
    let schema = serde_json::to_value(schemars::schema_for!(Money)).unwrap();
    assert_eq!(schema["properties"]["amount"]["type"], "string");
    assert_eq!(
        schema["properties"]["currency"]["allOf"][0]["$ref"],
        "#/definitions/Currency"
    );
    assert_eq!(schema["definitions"]["Currency"]["pattern"], "^[A-Z]{3}$");
    assert_eq!(schema["additionalProperties"], false);
    assert!(
        schema["description"]
            .as_str()
            .unwrap()
            .starts_with("An exact amount of money")
    );
}
